"""The report's leaderboard of one dataset: every method's pooled scores with their
subject-bootstrap intervals, the spread over training seeds, the per-subject mean, and each
method's paired UF1 difference from the ResNet-18 baseline and from the strongest reference
network (``notebooks/06_reference_flow_networks``), then which pairs of methods the data can
and cannot tell apart.

Rows: each run's main result; the reference networks, each a row of its own, read from the
reference run's ``metrics.json`` (``networks``: each with its predictions file); a
label-derived reference (p5's AU vector alone, ``label_derived``) as a row marked so. The
strongest reference is the network with the highest pooled UF1 on that run's test folds:
picked after testing, so the comparison with it is an optimistic reading of "the reference".

A pair is *told apart* when the 95% interval of the paired UF1 difference (subjects drawn
with replacement, the same draws for every pair) excludes 0 and, when both rows were run with
the same further training seeds, the difference has that sign with every one of them; pairs
on other clips, folds or classes are not compared, and say so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mer.report.results import format_difference
from mer.train.metrics import bootstrap_scores, paired_differences, subject_mean

BASELINE, REFERENCE = "baseline", "reference"
N_BOOT = 1000
KINDS = {"baseline": "baseline", "method": "paper method", "reference": "reference network",
         "label-derived": "label-derived input"}


@dataclass
class Entry:
    """One leaderboard row: a run's main result or one reference network of the reference run."""
    name: str
    method: str
    kind: str  # baseline | method | reference | label-derived
    labels: list
    acc: float
    uf1: float
    uar: float
    predictions: Path
    strongest: bool = False
    seed_runs: list = field(default_factory=list)  # {"seed", "uf1", "uar", "predictions"} per training seed
    test_selection: dict | None = None
    folder: Path | None = None

    def seed_uf1(self) -> list[float]:
        return [float(r["uf1"]) for r in self.seed_runs]


def _read(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"subject": str, "clip": str, "fold": str})


def entries(runs: list[dict]) -> list[Entry]:
    """One entry per row of one dataset's leaderboard (``runs``: that dataset's metrics.json
    dicts, each with ``_path``), in the runs' order; the reference networks where the
    reference run stands, a label-derived reference right after the run that carries it."""
    out = []
    for r in runs:
        folder = r["_path"].parent
        if r["method"] == REFERENCE and r.get("networks"):
            for net in r["networks"]:
                out.append(Entry(net["name"], REFERENCE, "reference", list(r["labels"]), net["acc"], net["uf1"],
                                 net["uar"], folder / net["predictions"], net["network"] == r.get("strongest"),
                                 _seed_runs(net.get("seed_runs"), folder), net.get("test_selection"), folder))
            continue
        shown = r["method"] if folder.name == r["method"] else f"{r['method']} ({folder.name})"
        out.append(Entry(shown, r["method"], "baseline" if r["method"] == BASELINE else "method", list(r["labels"]),
                         r["acc"], r["uf1"], r["uar"], folder / "predictions.csv",
                         seed_runs=_seed_runs(r.get("seed_runs"), folder), test_selection=r.get("test_selection"),
                         folder=folder))
        ref = r.get("label_derived")
        if ref:
            out.append(Entry(f"{ref['name']} [{r['method']}]", r["method"], "label-derived", list(r["labels"]),
                             ref["acc"], ref["uf1"], ref["uar"], folder / ref["predictions"], folder=folder))
    return out


def _seed_runs(rows, folder: Path) -> list:
    return [{**row, "predictions": folder / row["predictions"]} for row in (rows or [])]


def _verdict(low: float, high: float, seed_signs: list[float] | None = None) -> str:
    if low > 0 or high < 0:
        sign = 1 if low > 0 else -1
        if seed_signs and any(np.sign(d) != sign for d in seed_signs):
            return "not distinguishable (a training seed reverses it)"
        return "ahead" if sign > 0 else "behind"
    return "not distinguishable"


@dataclass
class Board:
    """One dataset's leaderboard: ``rows`` (the table, one dict per entry), ``pairs`` (every
    comparable pair: a, b, the difference and its interval, told apart or not), ``skipped``
    (entries left out of the pairs, with why) and the entries themselves."""
    rows: list[dict]
    pairs: list[dict]
    skipped: list[str]
    entries: list[Entry]
    seeds: int

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows)


def _seed_diffs(a: Entry, b: Entry) -> list[float]:
    """UF1(a) - UF1(b) with each training seed both rows were run with (beyond one)."""
    sa = {int(r["seed"]): float(r["uf1"]) for r in a.seed_runs}
    sb = {int(r["seed"]): float(r["uf1"]) for r in b.seed_runs}
    common = sorted(set(sa) & set(sb))
    return [sa[s] - sb[s] for s in common] if len(common) > 1 else []


def build(runs: list[dict], seed: int = 0, n_boot: int = N_BOOT) -> Board:
    """The leaderboard of one dataset's runs (module docstring)."""
    rows_in = entries(runs)
    preds = {id(e): _read(e.predictions) for e in rows_in}
    usable = [e for e in rows_in if preds[id(e)] is not None]
    skipped = [f"{e.name}: no predictions file ({e.predictions})" for e in rows_in if preds[id(e)] is None]
    # the comparable set: the first usable entry's clips, labels and folds (the baseline's when it ran)
    anchor = next((e for e in usable if e.kind == "baseline"), usable[0] if usable else None)
    comparable = []
    if anchor is not None:
        ref = preds[id(anchor)].set_index(["subject", "clip"]).sort_index()
        for e in usable:
            p = preds[id(e)].set_index(["subject", "clip"]).sort_index()
            why = None
            if e.labels != anchor.labels:
                why = "other classes"
            elif len(p) != len(ref) or not p.index.equals(ref.index):
                why = "other clips"
            elif (p["y_true"].to_numpy() != ref["y_true"].to_numpy()).any():
                why = "other labels"
            elif "fold" in p and "fold" in ref and (p["fold"].astype(str).to_numpy() != ref["fold"].astype(str)
                                                    .to_numpy()).any():
                why = "other folds"
            if why:
                skipped.append(f"{e.name}: not compared with {anchor.name}'s clips ({why})")
            else:
                comparable.append((e, p))
    diffs = {}
    if comparable:
        ref = comparable[0][1]
        diffs = paired_differences(ref["y_true"].to_numpy(), {id(e): p["y_pred"].to_numpy() for e, p in comparable},
                                   ref.index.get_level_values("subject").to_numpy(), anchor.labels, n=n_boot,
                                   seed=seed)
    in_pairs = {id(e) for e, _ in comparable}
    base = next((e for e in rows_in if e.kind == "baseline"), None)
    best = next((e for e in rows_in if e.strongest), None)
    rows = []
    for e in rows_in:
        p = preds[id(e)]
        mark = " (strongest reference)" if e.strongest else " (reference)" if e.kind == "reference" else ""
        row = {"method": e.name + mark, "kind": KINDS[e.kind],
               "UF1": e.uf1, "UAR": e.uar, "UF1 95%": "", "UAR 95%": "", "UF1 subject mean": None,
               "seeds": len(e.seed_runs) or 1, "UF1 over seeds": ""}
        if p is not None:
            subjects = p["subject"].astype(str).to_numpy()
            b = bootstrap_scores(p["y_true"], p["y_pred"], subjects, e.labels, n=n_boot, seed=seed)
            row["UF1 95%"] = f"[{b['uf1_low']:.3f}, {b['uf1_high']:.3f}]"
            row["UAR 95%"] = f"[{b['uar_low']:.3f}, {b['uar_high']:.3f}]"
            row["UF1 subject mean"] = subject_mean(p["y_true"], p["y_pred"], subjects, e.labels)["uf1"]
        if len(e.seed_runs) > 1:
            u = e.seed_uf1()
            row["UF1 over seeds"] = f"{np.mean(u):.3f} [{min(u):.3f}, {max(u):.3f}]"
        for col, other in (("UF1 minus baseline [95%]", base), ("UF1 minus strongest reference [95%]", best)):
            if other is None:
                row[col] = "no run"
            elif other is e:
                row[col] = ""
            elif id(e) not in in_pairs or id(other) not in in_pairs:
                row[col] = "not comparable (other clips, folds or classes)"
            else:
                d = diffs[(id(e), id(other))]
                row[col] = f"{format_difference(d)} {_verdict(d['low'], d['high'], _seed_diffs(e, other))}"
        rows.append(row)
    pairs = []
    order = [e for e, _ in comparable]
    for i, a in enumerate(order):
        for b in order[i + 1:]:
            d = diffs[(id(a), id(b))]
            seed_d = _seed_diffs(a, b)
            verdict = _verdict(d["low"], d["high"], seed_d)
            pairs.append({"a": a.name, "b": b.name, "difference": d["delta"], "low": d["low"], "high": d["high"],
                          "seed differences": ", ".join(f"{x:+.3f}" for x in seed_d),
                          "told apart": verdict in ("ahead", "behind"), "verdict": verdict})
    seeds = max([len(e.seed_runs) or 1 for e in rows_in] or [1])
    return Board(rows, pairs, skipped, rows_in, seeds)


def table(runs: list[dict], seed: int = 0) -> pd.DataFrame:
    """The leaderboard of one dataset's runs as a table (:func:`build`)."""
    return build(runs, seed).table()


def pair_matrix(board: Board) -> pd.DataFrame:
    """The pairs as a square table: row minus column, its interval, and a mark: ``>`` / ``<``
    told apart (row ahead / behind), ``~`` not distinguishable."""
    names = list(dict.fromkeys([p["a"] for p in board.pairs] + [p["b"] for p in board.pairs]))
    cells = {n: {m: "" for m in names} for n in names}
    for p in board.pairs:
        mark = ">" if p["verdict"] == "ahead" else "<" if p["verdict"] == "behind" else "~"
        back = {">": "<", "<": ">", "~": "~"}[mark]
        cells[p["a"]][p["b"]] = f"{mark} {p['difference']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}]"
        cells[p["b"]][p["a"]] = f"{back} {-p['difference']:+.3f} [{-p['high']:+.3f}, {-p['low']:+.3f}]"
    return pd.DataFrame.from_dict(cells, orient="index")[names] if names else pd.DataFrame()


def test_selection_rows(board: Board) -> list[dict]:
    """Per entry run with the test-epoch diagnostic: the honest UF1 (fixed epochs) beside what
    picking epochs on the test subjects would have reported."""
    rows = []
    for e in board.entries:
        s = e.test_selection
        if not s:
            continue
        rows.append({"method": e.name, "epochs": s["epochs"], "honest UF1 (fixed epochs)": s["honest_uf1"],
                     "best epoch per test fold": s["fold_best_uf1"], "inflation": s["inflation_uf1"],
                     "best single epoch": s["best_epoch"], "UF1 at it": s["epoch_best_uf1"]})
    return rows
