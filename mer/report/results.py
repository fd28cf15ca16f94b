"""Write a run's results: metrics.json, predictions.csv, the MEGC-style log, per-fold table."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pandas as pd

from mer.paths import project_root
from mer.train.metrics import headline, paired_bootstrap, scores, scores_by_group

PER_FOLD_NOTE = ("secondary: per-fold scores; the headline metrics pool all folds' predictions "
                 "(MEGC convention), per-fold averages are lower and noisier")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True,
                             timeout=10)
        sha = out.stdout.strip()
        if out.returncode != 0 or not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=project_root(),
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def megc_log(preds: pd.DataFrame, dataset: str, classes) -> str:
    """Per fold a line ``db subject``, then ``clip gt pred`` per clip (class names)."""
    lines = []
    for fold, g in preds.groupby("fold", sort=False):
        lines.append(f"{dataset} {fold}")
        lines += [f"{r.clip} {classes[r.y_true]} {classes[r.y_pred]}" for r in g.itertuples()]
    return "\n".join(lines) + "\n"


def per_source(result, table) -> pd.DataFrame | None:
    """Pooled scores per source dataset of a composite (None for a single dataset)."""
    if "source_dataset" not in table.clips.columns:
        return None
    preds = result.predictions
    groups = preds["subject"].astype(str).str.split("/").str[0]
    by = scores_by_group(preds["y_true"], preds["y_pred"], groups, list(table.classes))
    return pd.DataFrame([{"source": g, **headline(v)} for g, v in by.items()])


def compare_runs(preds: pd.DataFrame, other_dir: str | os.PathLike, classes, name: str, other_name: str,
                 n_boot: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, dict] | None:
    """This run's pooled predictions against another run's ``predictions.csv`` on the same
    clips (see :func:`compare_predictions`). None when the other run is absent."""
    path = Path(other_dir) / "predictions.csv"
    if not path.is_file():
        return None
    other = pd.read_csv(path, dtype={"subject": str, "clip": str})
    return compare_predictions(preds, other, classes, name, other_name, n_boot, seed, source=str(path))


def compare_predictions(preds: pd.DataFrame, other: pd.DataFrame, classes, name: str, other_name: str,
                        n_boot: int = 2000, seed: int = 0, source: str = "the other run") -> tuple[pd.DataFrame, dict]:
    """Two runs' pooled predictions on the same clips: a table of both runs' scores and
    :func:`~mer.train.metrics.paired_bootstrap` of the UF1 difference (this run minus the other).
    Raises when the runs are on other clips or labels."""
    mine = preds.assign(subject=preds["subject"].astype(str), clip=preds["clip"].astype(str))
    other = other.assign(subject=other["subject"].astype(str), clip=other["clip"].astype(str))
    joined = mine.merge(other, on=["subject", "clip"], how="outer", suffixes=("", "_other"), indicator=True)
    unmatched = joined[joined["_merge"] != "both"]
    if len(unmatched) or (joined["y_true"] != joined["y_true_other"]).any():
        raise ValueError(f"{source} is a run on other clips or labels than this one "
                         f"({len(unmatched)} clips in only one of the two): rerun it on the same data and protocol")
    classes = list(classes)
    table = pd.DataFrame([{"method": n, **{k: v for k, v in headline(scores(joined["y_true"], joined[col],
                                                                             classes)).items() if k != "n"}}
                          for n, col in ((other_name, "y_pred_other"), (name, "y_pred"))])
    boot = paired_bootstrap(joined["y_true"], joined["y_pred"], joined["y_pred_other"], joined["subject"], classes,
                            n=n_boot, seed=seed)
    return table, boot


def describe_difference(boot: dict, name: str, other_name: str, where: str) -> str:
    """One sentence for a :func:`compare_predictions` bootstrap: beats / is below / is not
    distinguishable from, with the UF1 difference and its interval."""
    verdict = "beats" if boot["low"] > 0 else "is below" if boot["high"] < 0 else "is not distinguishable from"
    return (f"{name} {verdict} {other_name} on {where}: UF1 difference {boot['delta']:+.3f}, "
            f"{boot['level']:.0%} interval [{boot['low']:+.3f}, {boot['high']:+.3f}] over {boot['n_subjects']} "
            f"subjects; {name} ahead in {boot['a_ahead']:.0%} of {boot['n_boot']} resamples")


def write_run(out_dir: str | os.PathLike, *, method: str, table, result, params: dict,
              ablations: pd.DataFrame | None = None, runtime_s: float, device: str,
              notes: list[str] | None = None) -> dict:
    """Write the run's files under ``out_dir`` and return the metrics dict. ``notes``: what a
    reader of the headline number must know (e.g. label-derived inputs); the report shows them
    beside the number."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(table.classes)
    preds = result.predictions.copy()
    preds.insert(0, "dataset", table.dataset)
    preds["true_class"] = [classes[i] for i in preds["y_true"]]
    preds["pred_class"] = [classes[i] for i in preds["y_pred"]]
    preds.to_csv(out / "predictions.csv", index=False)
    (out / "predictions_megc.txt").write_text(megc_log(result.predictions, table.dataset, classes))
    result.per_fold.to_csv(out / "per_fold.csv", index=False)
    result.curves.to_csv(out / "curves.csv", index=False)
    m = result.metrics
    metrics = {
        "method": method, "dataset": table.dataset, "protocol": table.protocol,
        "synthetic": table.dataset == "synth",
        "n_clips": int(len(table.clips)), "n_subjects": int(table.clips["subject"].nunique()),
        "n_dropped": int(len(table.dropped)),
        "acc": m["acc"], "uf1": m["uf1"], "uar": m["uar"], "per_class": m["per_class"],
        "confusion": m["confusion"], "labels": classes,
        "per_fold": {"note": PER_FOLD_NOTE, "folds": result.per_fold.to_dict(orient="records")},
        "ablations": [] if ablations is None else ablations.to_dict(orient="records"),
        "per_source": None if (ps := per_source(result, table)) is None else ps.to_dict(orient="records"),
        "runtime_s": round(float(runtime_s), 1), "device": device, "git_commit": git_commit(),
        "params": params, "notes": list(notes or []),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, default=str))
    return metrics
