"""The report's leaderboard of one dataset: every method's pooled scores beside the ResNet-18
baseline's and the strongest reference network's (``notebooks/06_reference_flow_networks``),
with the paired UF1 difference from each and its subject-bootstrap 95% interval.

The reference networks are rows of their own, read from the reference run's
``metrics.json`` (``networks``: each with its predictions file). The strongest is the one
with the highest pooled UF1 on that run's test folds: picked after testing, so the
comparison with it is an optimistic reading of "the reference" (the report says so).
Differences are computed on the clips both runs predicted, in the same folds; a pair that
cannot be compared (other clips, folds or classes) says why instead.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from mer.report.results import compare_predictions

BASELINE, REFERENCE = "baseline", "reference"
N_BOOT = 1000


def _read(path: Path) -> pd.DataFrame | None:
    if not path.is_file():
        return None
    return pd.read_csv(path, dtype={"subject": str, "clip": str, "fold": str})


def _difference(preds: pd.DataFrame | None, other: pd.DataFrame | None, classes, name: str, other_name: str,
                seed: int) -> str:
    if preds is None or other is None:
        return "no predictions"
    cmp = compare_predictions(preds, other, classes, name, other_name, n_boot=N_BOOT, seed=seed)
    if cmp.skipped:
        return "not comparable (other clips, folds or classes)"
    b = cmp.boot
    verdict = "ahead" if b["low"] > 0 else "behind" if b["high"] < 0 else "not distinguishable"
    return f"{b['delta']:+.3f} [{b['low']:+.3f}, {b['high']:+.3f}] {verdict}"


def entries(runs: list[dict]) -> list[dict]:
    """One entry per row of one dataset's leaderboard (``runs``: that dataset's metrics.json
    dicts, each with ``_path``): name, method, kind (baseline | reference | method), scores,
    predictions and whether it is the strongest reference."""
    out = []
    for r in runs:
        folder = r["_path"].parent
        if r["method"] == REFERENCE and r.get("networks"):
            for net in r["networks"]:
                out.append({"name": net["name"], "method": REFERENCE, "kind": "reference", "acc": net["acc"],
                            "uf1": net["uf1"], "uar": net["uar"], "labels": r["labels"],
                            "predictions": folder / net["predictions"],
                            "strongest": net["network"] == r.get("strongest")})
            continue
        shown = r["method"] if folder.name == r["method"] else f"{r['method']} ({folder.name})"
        out.append({"name": shown, "method": r["method"],
                    "kind": "baseline" if r["method"] == BASELINE else "method", "acc": r["acc"], "uf1": r["uf1"],
                    "uar": r["uar"], "labels": r["labels"], "predictions": folder / "predictions.csv",
                    "strongest": False})
    return out


def table(runs: list[dict], seed: int = 0) -> pd.DataFrame:
    """The leaderboard of one dataset's runs (module docstring): rows in the runs' order,
    the reference networks where the reference run stands."""
    rows = entries(runs)
    base = next((e for e in rows if e["kind"] == "baseline"), None)
    best = next((e for e in rows if e["strongest"]), None)
    preds = {id(e): _read(e["predictions"]) for e in rows}
    out = []
    for e in rows:
        mark = " (strongest reference)" if e["strongest"] else " (reference)" if e["kind"] == "reference" else ""
        row = {"method": e["name"] + mark, "acc": e["acc"], "UF1": e["uf1"], "UAR": e["uar"]}
        for col, other in (("UF1 minus baseline [95%]", base), ("UF1 minus strongest reference [95%]", best)):
            if other is None:
                row[col] = "no run"
            elif other is e:
                row[col] = ""
            elif list(other["labels"]) != list(e["labels"]):
                row[col] = "other classes"
            else:
                row[col] = _difference(preds[id(e)], preds[id(other)], e["labels"], e["name"], other["name"], seed)
        out.append(row)
    return pd.DataFrame(out)
