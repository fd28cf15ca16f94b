"""The combined report: ``outputs/report.html`` from every ``outputs/<dataset>/<method>/metrics.json``,
rendered from the Jinja2 template ``templates/report.html.j2``.

Self-contained: figures are embedded as base64 PNG, notebooks are linked by relative path,
nothing is loaded from the network, so the file opens from disk in a browser with no
server. Sections: the results at a glance; per dataset the leaderboard (intervals, seed
spread, differences from the baseline and the strongest reference), which pairs of methods
can be told apart, the test-fold epoch selection diagnostic and the label-derived inputs;
the amplitude sweep; reported vs reproduced; each run with its date and machine. SynthME
numbers are labelled synthetic; paper numbers are labelled reported and never set beside a
SynthME run.
"""
from __future__ import annotations

import base64
import io
import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable


from mer.paths import notebook_order, outputs_dir, project_root, replace_atomic, smoke_dir
from mer.report.reported import DATASET_NAMES

TEMPLATES = Path(__file__).parent / "templates"


def collect(root: Path | None = None, smoke: bool = False) -> list[dict]:
    """Every run's metrics.json under the outputs root (the generated data folder skipped):
    real runs, or with ``smoke`` only smoke runs; the two are never mixed."""
    root = root or outputs_dir()
    runs = []
    for path in sorted(root.glob("*/*/metrics.json")):
        if path.parts[-3] == "data":
            continue
        try:
            m = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            runs.append({"_path": path, "_error": f"unreadable metrics.json: {exc}"})
            continue
        m["_path"] = path
        missing = [k for k in ("method", "dataset", "protocol", "acc", "uf1", "uar") if k not in m]
        if missing:
            m = {"_path": path, "_error": f"incomplete metrics.json (no {', '.join(missing)})", "smoke": m.get("smoke")}
        if bool(m.get("smoke")) == smoke:
            runs.append(m)
    key = method_sort_key()
    return sorted(runs, key=lambda r: (key(str(r.get("method"))), str(r.get("dataset"))))


def method_sort_key(root: Path | None = None) -> Callable[[str], tuple]:
    """Sort key for method ids: by notebook number (``notebooks/NN_<method>...``, so
    00_baseline first), then methods without a notebook, alphabetically."""
    order = notebook_order(root)
    return lambda method: (0, order[method], method) if method in order else (1, 0, method)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def _confusion_uri(run: dict) -> str:
    fig_path = run["_path"].parent / "figures" / "confusion.png"
    if fig_path.is_file():
        return _data_uri(fig_path.read_bytes())
    from mer.report.plots import add_stamp, confusion_matrix
    import matplotlib.pyplot as plt
    fig = add_stamp(confusion_matrix(run["confusion"], run["labels"]),
                    f"{run.get('date', 'date not recorded')}, {run.get('machine') or run.get('device')}")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return _data_uri(buf.getvalue())


def _dataset_name(ds: str) -> str:
    return DATASET_NAMES.get(ds, ds)


def _commit(run: dict) -> str:
    sha = str(run.get("git_commit", "unknown"))
    dirty = sha.endswith("+dirty")
    return sha.removesuffix("+dirty")[:12] + (" with uncommitted changes" if dirty else "")


def _html_id(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text)


def _anchor(run: dict) -> str:
    return _html_id(f"{run['dataset']}-{run['_path'].parent.name}")


def _machine_line(run: dict) -> str:
    return f"{run.get('date', 'date not recorded')}: {run.get('machine') or 'machine not recorded'}"


def paper_epochs(method: str, dataset: str, network: str | None = None) -> int | None:
    """The paper profile's epochs of ``method`` on ``dataset`` (its params file's ``epochs``), or
    of one reference network (its paper's); None where the profile does not set them."""
    if network:
        from mer.models import reference
        return reference.TRAINING.get(network, {}).get("epochs")
    import yaml
    path = project_root() / "params" / method / f"{dataset}.yaml"
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return None
    epochs = params.get("epochs") if isinstance(params, dict) else None
    return int(epochs) if isinstance(epochs, (int, float)) else None


BOARD_COLUMNS = ["method", "kind", "UF1", "UF1 95%", "UAR", "UAR 95%", "UF1 subject mean", "seeds", "UF1 over seeds",
                 "UF1 minus baseline [95%]", "UF1 minus strongest reference [95%]"]
SELECTION_COLUMNS = ["method", "epochs", "honest UF1 (fixed epochs)", "best epoch per test fold", "inflation",
                     "best single epoch", "UF1 at it"]


def _derived_sentences(board) -> list[str]:
    out = []
    base = next((e for e in board.entries if e.kind == "baseline"), None)
    for e in board.entries:
        if e.kind != "label-derived":
            continue
        owner = next((x for x in board.entries if x.method == e.method and x.kind == "method"), None)
        text = (f"{e.name.split(' [')[0]} scores UF1 {e.uf1:.3f} on the same folds"
                + (f", {owner.name} (which takes the same annotations as one of its inputs) {owner.uf1:.3f}"
                   if owner else "")
                + (f", and the image-only baseline {base.uf1:.3f}" if base else "") + ". ")
        text += ("The AU codes are annotations made from the same expression as the emotion label: where a classifier "
                 "on them alone scores near or above the full model, the full model's lead over image-only methods "
                 "comes from that input, not from reading the face. A fair comparison with image-only methods "
                 "leaves it out; on real data, annotated AUs are not available at test time.")
        out.append(text)
    return out


def _dataset_section(dataset: str, runs: list[dict]) -> dict:
    from mer.report import leaderboard
    board = leaderboard.build(runs)
    rows = []
    for r, e in zip(board.rows, board.entries):
        cls = {"reference": "ref", "label-derived": "derived"}.get(e.kind, "")
        rows.append({**r, "_class": cls})
    matrix = leaderboard.pair_matrix(board)
    matrix_rows = [{"": name, **row.to_dict()} for name, row in matrix.iterrows()] if len(matrix) else []
    apart = [f"{p['a']} {'>' if p['verdict'] == 'ahead' else '<'} {p['b']} ({p['difference']:+.3f})"
             for p in board.pairs if p["told apart"]]
    not_apart = [f"{p['a']} ~ {p['b']} ({p['difference']:+.3f})" for p in board.pairs if not p["told apart"]]
    return {"id": _html_id(dataset), "name": _dataset_name(dataset),
            "synthetic": dataset == "synth", "seeds": board.seeds, "columns": BOARD_COLUMNS, "rows": rows,
            "skipped": board.skipped, "matrix_columns": [""] + list(matrix.columns), "matrix_rows": matrix_rows,
            "apart": apart, "not_apart": not_apart,
            "pair_summary": f"{len(apart)} of {len(board.pairs)} pairs told apart.",
            "selection_columns": SELECTION_COLUMNS, "selection": leaderboard.test_selection_rows(board),
            "derived": _derived_sentences(board)}


def _sweep_section(root: Path) -> dict | None:
    path = root / "synth" / "sweep" / "sweep.json"
    if not path.is_file():
        return None
    try:
        sweep = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    figure = path.parent / sweep.get("figure", "figures/amplitude.png")
    rows = sweep.get("rows") or []
    columns = list(rows[0]) if rows else []
    return {"description": sweep.get("description", ""), "date": sweep.get("date", "?"),
            "machine": sweep.get("machine", "?"), "runtime": f"{sweep.get('runtime_s', 0) / 60:.0f} min",
            "image": _data_uri(figure.read_bytes()) if figure.is_file() else "", "columns": columns, "rows": rows}


REPORTED_COLUMNS = ["method", "dataset", "classes", "source", "reported acc", "reported uf1", "reported uar",
                    "ours acc", "ours uf1", "ours uar", "protocol differences"]


def _run_section(r: dict, root: Path) -> dict:
    run_dir = r["_path"].parent
    pc = [{"class": name, **v} for name, v in r["per_class"].items()]
    ablations = r.get("ablations") or []
    return {"anchor": _anchor(r), "method": r["method"] if run_dir.name == r["method"] else
            f"{r['method']} ({run_dir.name})", "dataset": _dataset_name(r["dataset"]),
            "synthetic": r["dataset"] == "synth", "protocol": r["protocol"], "n_clips": r["n_clips"],
            "n_subjects": r["n_subjects"], "n_dropped": r.get("n_dropped", 0), "device": r.get("device"),
            "machine": r.get("machine") or "machine not recorded", "date": r.get("date", "date not recorded"),
            "runtime": r.get("runtime_s"), "commit": _commit(r),
            "notebooks": [{"href": p.relative_to(root).as_posix(), "name": p.name} for p in sorted(run_dir.glob("*.html"))],
            "notes": r.get("notes") or [], "per_class_columns": ["class", "f1", "recall", "support"], "per_class": pc,
            "confusion": _confusion_uri(r), "ablation_columns": list(ablations[0]) if ablations else [],
            "ablations": ablations}


def build_report(root: Path | None = None, smoke: bool = False) -> Path:
    """``report.html`` in ``root`` (default: the outputs folder; for smoke runs
    ``outputs/smoke``) from the runs under it (module docstring for its sections)."""
    from jinja2 import Environment, FileSystemLoader, select_autoescape
    from mer.report import leaderboard
    from mer.report.reported import reproduced
    root = root or (smoke_dir() if smoke else outputs_dir())
    root.mkdir(parents=True, exist_ok=True)
    runs = collect(root, smoke=smoke)
    ok = [r for r in runs if "_error" not in r]
    datasets = sorted({r["dataset"] for r in ok})
    methods = list(dict.fromkeys(r["_path"].parent.name for r in ok))
    overview_rows, notes = [], []
    for m in methods:
        mine = [r for r in ok if r["_path"].parent.name == m]
        overview_rows.append({"method": m, "anchor": _anchor(mine[0]), "noted": any(r.get("notes") for r in mine),
                              "cells": [next(({"acc": r["acc"], "uf1": r["uf1"], "uar": r["uar"]} for r in mine
                                              if r["dataset"] == d), None) for d in datasets]})
        notes += [f"{r['method']} on {_dataset_name(r['dataset'])}: {n}" for r in mine for n in r.get("notes") or []]
    reported_rows = [{**row, "protocol differences": "; ".join(row["flags"]) or "none known",
                      "ours uf1": row["ours uf1"] if row["ours uf1"] is not None else row["ours"]}
                     for row in reproduced(ok, paper_epochs)]
    key = method_sort_key()
    reported_rows.sort(key=lambda row: key(row["method"]))  # notebook order; stable: each file's rows in order
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]))
    page = env.get_template("report.html.j2").render(
        smoke=smoke, built=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}", n_ok=len(ok),
        machines=sorted({_machine_line(r) for r in ok}), n_boot=leaderboard.N_BOOT,
        overview={"datasets": [_dataset_name(d) for d in datasets],
                  "rows": overview_rows, "notes": notes},
        errors=[{"path": str(r["_path"]), "error": r["_error"]} for r in runs if "_error" in r],
        datasets=[_dataset_section(d, [r for r in ok if r["dataset"] == d]) for d in datasets],
        sweep=None if smoke else _sweep_section(root), reported_columns=REPORTED_COLUMNS,
        reported_rows=reported_rows, only_synth=all(r["dataset"] == "synth" for r in ok),
        runs=[_run_section(r, root) for r in ok])
    path = root / "report.html"
    replace_atomic(path, lambda tmp: tmp.write_text(page, encoding="utf-8"))
    return path
