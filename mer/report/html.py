"""The combined report: ``outputs/report.html`` from every ``outputs/<dataset>/<method>/metrics.json``.

Self-contained: figures are embedded as base64 PNG, notebooks are linked by relative path,
so the file opens from disk in a browser with no server. SynthME numbers are labelled
synthetic; paper numbers sit in their own "reported" table.
"""
from __future__ import annotations

import base64
import html
import io
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import pandas as pd

from mer.paths import notebook_order, outputs_dir, smoke_dir
from mer.report.reported import AGGREGATIONS, DATASET_NAMES, load_reported

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}.syn{color:#8a4b00;font-weight:600}
.rep{background:#fff8e6}.note{color:#555;font-size:.9em}section{border-top:2px solid #ddd;margin-top:2em}
img{max-width:100%}.smoke{background:#ffe9e9;border:2px solid #c00;padding:.6em;font-weight:600}
"""


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


def _img(path: Path) -> str:
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()}">'


def _confusion_img(run: dict) -> str:
    fig_path = run["_path"].parent / "figures" / "confusion.png"
    if fig_path.is_file():
        return _img(fig_path)
    from mer.report.plots import confusion_matrix
    import matplotlib.pyplot as plt
    fig = confusion_matrix(run["confusion"], run["labels"])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="confusion" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _dataset_label(ds: str) -> str:
    name = html.escape(DATASET_NAMES.get(ds, ds))
    return f'<span class="syn">{name}</span>' if ds == "synth" else name


def _commit(run: dict) -> str:
    sha = str(run.get("git_commit", "unknown"))
    dirty = sha.endswith("+dirty")
    return html.escape(sha.removesuffix("+dirty")[:12]) + (" with uncommitted changes" if dirty else "")


def _fmt(x) -> str:
    return "" if x is None or (isinstance(x, float) and pd.isna(x)) else f"{x:.3f}"


LEADERBOARD_NOTE = (
    "Pooled scores of every run on this dataset. Each method's UF1 is set against the ResNet-18 baseline and "
    "against the strongest reference network (STSTNet, OFF-ApexNet, SSSNet, RCN-A on optical flow: the networks "
    "MER papers compare with): the paired difference on the same clips and folds with its 95% interval from "
    "resampling subjects (training-seed variance is not in it); <i>not distinguishable</i> when the interval holds "
    "0. The strongest reference is picked by its pooled UF1 on these same test folds, after testing: an optimistic "
    "reading of the reference.")


def _leaderboard(dataset: str, runs: list[dict]) -> str:
    from mer.report import leaderboard
    board = leaderboard.table(runs)
    return (f"<h2>Leaderboard: {_dataset_label(dataset)}</h2><p class='note'>{LEADERBOARD_NOTE}</p>"
            + board.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0, classes="board", escape=True))


SMOKE_BANNER = ("<p class='smoke'>SMOKE RUNS: every run below trained with its compute shrunk (one epoch, "
                "two-fold ablations, 32 px inputs, a few magnifier steps) to check that the setup runs end to "
                "end on this data. Their numbers say nothing about the methods.</p>")


def build_report(root: Path | None = None, smoke: bool = False) -> Path:
    """``report.html`` in ``root`` (default: the outputs folder; for smoke runs
    ``outputs/smoke``) from the runs under it."""
    root = root or (smoke_dir() if smoke else outputs_dir())
    root.mkdir(parents=True, exist_ok=True)
    runs = collect(root, smoke=smoke)
    ok = [r for r in runs if "_error" not in r]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>MER study report"
             f"{' (smoke runs)' if smoke else ''}</title><style>{CSS}</style></head><body>",
             "<h1>Micro-expression recognition study: report" + (" of smoke runs" if smoke else "") + "</h1>",
             SMOKE_BANNER if smoke else "",
             f"<p class='note'>Built {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC from {len(ok)} run(s). "
             "Protocol: leave-one-subject-out, metrics over the pooled predictions of all folds (MEGC): "
             "accuracy, UF1 (mean per-class F1), UAR (mean per-class recall). "
             "<span class='syn'>SynthME numbers are synthetic</span>: a test bench with a known answer, "
             "not a substitute for the real datasets.</p>"]
    parts.append("<h2>This study's results (acc / UF1 / UAR)</h2>")
    if ok:
        datasets = sorted({r["dataset"] for r in ok})
        methods = list(dict.fromkeys(r["method"] for r in ok))
        parts.append("<table><tr><th class='l'>method</th>" +
                     "".join(f"<th>{_dataset_label(d)}</th>" for d in datasets) + "</tr>")
        for m in methods:
            cells = []
            for d in datasets:
                r = next((r for r in ok if r["method"] == m and r["dataset"] == d), None)
                cells.append("<td></td>" if r is None else
                             f"<td>{_fmt(r['acc'])} / <b>{_fmt(r['uf1'])}</b> / {_fmt(r['uar'])}</td>")
            mark = " &dagger;" if any(r.get("notes") for r in ok if r["method"] == m) else ""
            parts.append(f"<tr><td class='l'><a href='#{m}'>{html.escape(m)}</a>{mark}</td>{''.join(cells)}</tr>")
        parts.append("</table>")
        for r in ok:
            for note in r.get("notes") or []:
                parts.append(f"<p class='note'>&dagger; {html.escape(r['method'])} on {_dataset_label(r['dataset'])}: "
                             f"{html.escape(note)}</p>")
    else:
        parts.append("<p>No finished runs yet: run <code>make study</code>.</p>")
    for r in runs:
        if "_error" in r:
            parts.append(f"<p><b>{html.escape(str(r['_path']))}</b>: {html.escape(r['_error'])}</p>")
    for dataset in sorted({r["dataset"] for r in ok}):
        parts.append(_leaderboard(dataset, [r for r in ok if r["dataset"] == dataset]))
    parts.append("<h2>Reported in the papers (not our numbers)</h2><table class='rep'>"
                 "<tr><th class='l'>method</th><th class='l'>dataset</th><th class='l'>source</th>"
                 "<th>acc</th><th>UF1 / F1</th><th>UAR</th></tr>")
    key = method_sort_key()
    for rep in sorted(load_reported().to_dict("records"), key=lambda r: key(r["method"])):  # stable: file order
        parts.append(f"<tr class='rep'><td class='l'>{rep['method']}</td>"
                     f"<td class='l'>{html.escape(DATASET_NAMES.get(rep['dataset'], rep['dataset']))}</td>"
                     f"<td class='l'>reported: {html.escape(rep['source'])}"
                     f"{' (' + AGGREGATIONS[rep['aggregation']] + ')' if rep['aggregation'] else ''}"
                     f"{'; split: ' + html.escape(rep['split']) if rep['split'] else ''}</td>"
                     f"<td>{_fmt(rep['acc'])}</td><td>{_fmt(rep['uf1'])}</td><td>{_fmt(rep['uar'])}</td></tr>")
    parts.append("</table>")
    for r in ok:
        run_dir = r["_path"].parent
        parts.append(f"<section id='{html.escape(r['method'])}'><h2>{html.escape(r['method'])} on "
                     f"{_dataset_label(r['dataset'])}</h2>")
        parts.append(f"<p>protocol {html.escape(r['protocol'])}; {r['n_clips']} clips, {r['n_subjects']} subjects, "
                     f"{r.get('n_dropped', 0)} annotation rows dropped; device {html.escape(str(r['device']))}; "
                     f"runtime {r['runtime_s']} s; commit <code>{_commit(r)}</code></p>")
        links = [p for p in sorted(run_dir.glob("*.html"))]
        if links:
            parts.append("<p>Executed notebook: " + ", ".join(
                f"<a href='{html.escape(p.relative_to(root).as_posix())}'>{html.escape(p.name)}</a>" for p in links)
                + "</p>")
        for note in r.get("notes") or []:
            parts.append(f"<p class='note'><b>Note:</b> {html.escape(note)}</p>")
        pc = pd.DataFrame(r["per_class"]).T.astype({"support": int})
        parts.append(pc.to_html(float_format=lambda x: f"{x:.3f}", classes="pc", border=0))
        parts.append(_confusion_img(r))
        if r.get("ablations"):
            ab = pd.DataFrame(r["ablations"])
            parts.append("<h3>Ablations</h3>" + ab.to_html(index=False, float_format=lambda x: f"{x:.3f}", border=0))
        parts.append("</section>")
    parts.append("</body></html>")
    path = root / "report.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
