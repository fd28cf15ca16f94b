"""Write a run's results: metrics.json, predictions.csv, the MEGC-style log, per-fold table."""
from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mer import machine
from mer.paths import project_root, replace_atomic
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


@dataclass
class Comparison:
    """Two runs set side by side: both runs' scores (``table``) and the subject bootstrap of
    the UF1 difference (``boot``), or ``skipped``: one sentence saying why they were not
    compared (no other run, another protocol, other classes, clips, labels or folds)."""
    table: pd.DataFrame | None = None
    boot: dict | None = None
    skipped: str | None = None

    def interval(self) -> str:
        """"+0.012 [-0.080, +0.100]" (this run minus the other), or why there is none."""
        return self.skipped or format_difference(self.boot)


def format_difference(d: dict) -> str:
    """A difference and its interval (``delta``, ``low``, ``high``): "+0.012 [-0.080, +0.100]"."""
    return f"{d['delta']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}]"


def compare_runs(preds: pd.DataFrame, other_dir: str | os.PathLike, classes, name: str, other_name: str,
                 n_boot: int = 2000, seed: int = 0, protocol: str | None = None) -> Comparison:
    """This run's pooled predictions against the finished run in ``other_dir`` (its
    ``predictions.csv`` and ``metrics.json``), as :func:`compare_predictions`. Skipped, with
    the reason, when that run is absent or unfinished, or was run under another protocol
    (``protocol``: this run's) or other classes."""
    folder = Path(other_dir)
    path, mpath = folder / "predictions.csv", folder / "metrics.json"
    if not path.is_file() or not mpath.is_file():
        return Comparison(skipped=f"No finished {other_name} run in {folder} (no predictions.csv and "
                                  "metrics.json): run it on the same dataset first to compare.")
    try:
        meta = json.loads(mpath.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return Comparison(skipped=f"Not compared with {other_name}: {mpath} is unreadable ({exc}).")
    if protocol is not None and meta.get("protocol") != protocol:
        return Comparison(skipped=f"Not compared with {other_name}: it was run under protocol "
                                  f"{meta.get('protocol')}, this run under {protocol}; run it with protocol "
                                  f"{protocol} to compare.")
    if list(meta.get("labels", classes)) != list(classes):
        return Comparison(skipped=f"Not compared with {other_name}: its classes {meta.get('labels')} differ from "
                                  f"this run's {list(classes)}.")
    other = pd.read_csv(path, dtype={"subject": str, "clip": str, "fold": str})
    return compare_predictions(preds, other, classes, name, other_name, n_boot, seed, source=str(path))


def compare_predictions(preds: pd.DataFrame, other: pd.DataFrame, classes, name: str, other_name: str,
                        n_boot: int = 2000, seed: int = 0, source: str = "the other run") -> Comparison:
    """Two runs' pooled predictions on the same clips, labels and folds: a table of both runs'
    scores and :func:`~mer.train.metrics.paired_bootstrap` of the UF1 difference (this run
    minus the other). Skipped, with the reason, when the clips, labels or the fold of any
    clip differ."""
    mine = preds.assign(subject=preds["subject"].astype(str), clip=preds["clip"].astype(str))
    other = other.assign(subject=other["subject"].astype(str), clip=other["clip"].astype(str))
    joined = mine.merge(other, on=["subject", "clip"], how="outer", suffixes=("", "_other"), indicator=True)
    unmatched = int((joined["_merge"] != "both").sum())
    if unmatched:
        return Comparison(skipped=f"Not compared with {other_name}: {source} holds other clips than this run "
                                  f"({unmatched} clips in only one of the two); rerun it on the same data.")
    if (joined["y_true"] != joined["y_true_other"]).any():
        return Comparison(skipped=f"Not compared with {other_name}: {source} gives "
                                  f"{int((joined['y_true'] != joined['y_true_other']).sum())} clips another label "
                                  "(another protocol or annotation).")
    if "fold" in joined and "fold_other" in joined:
        moved = int((joined["fold"].astype(str) != joined["fold_other"].astype(str)).sum())
        if moved:
            return Comparison(skipped=f"Not compared with {other_name}: {source} tests {moved} clips in another "
                                      "fold than this run (other folds); rerun it with the same folds.")
    classes = list(classes)
    table = pd.DataFrame([{"method": n, **{k: v for k, v in headline(scores(joined["y_true"], joined[col],
                                                                             classes)).items() if k != "n"}}
                          for n, col in ((other_name, "y_pred_other"), (name, "y_pred"))])
    boot = paired_bootstrap(joined["y_true"], joined["y_pred"], joined["y_pred_other"], joined["subject"], classes,
                            n=n_boot, seed=seed)
    return Comparison(table, boot)


def describe_difference(boot: dict, name: str, other_name: str, where: str) -> str:
    """One sentence for a :func:`compare_predictions` bootstrap: beats / is below / is not
    distinguishable from, with the UF1 difference and its interval."""
    verdict = "beats" if boot["low"] > 0 else "is below" if boot["high"] < 0 else "is not distinguishable from"
    return (f"{name} {verdict} {other_name} on {where}: UF1 difference {boot['delta']:+.3f}, "
            f"{boot['level']:.0%} interval [{boot['low']:+.3f}, {boot['high']:+.3f}] over {boot['n_subjects']} "
            f"subjects; {name} ahead in {boot['a_ahead']:.0%} of {boot['n_boot']} resamples")


SUBJECT_MEAN_NOTE = ("secondary: scores per subject, then their mean (the aggregation some papers use, e.g. "
                     "p4); the headline metrics pool all folds' predictions")


def subject_scores(result, classes) -> dict:
    """This run's scores averaged over subjects (:func:`mer.train.metrics.subject_mean`)."""
    from mer.train.metrics import subject_mean
    p = result.predictions
    return subject_mean(p["y_true"], p["y_pred"], p["subject"].astype(str), list(classes))


def write_predictions(out_dir: str | os.PathLike, result, table) -> Path:
    """``<out_dir>/predictions.csv``: a run's pooled predictions with the dataset and the
    class names (what :func:`compare_runs` and the report read); returns its path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(table.classes)
    preds = result.predictions.copy()
    preds.insert(0, "dataset", table.dataset)
    preds["true_class"] = [classes[i] for i in preds["y_true"]]
    preds["pred_class"] = [classes[i] for i in preds["y_pred"]]
    replace_atomic(out / "predictions.csv", lambda tmp: preds.to_csv(tmp, index=False))
    return out / "predictions.csv"


def write_run(out_dir: str | os.PathLike, *, method: str, table, result, params: dict,
              ablations: pd.DataFrame | None = None, runtime_s: float, device: str,
              notes: list[str] | None = None, extra: dict | None = None) -> dict:
    """Write the run's files under ``out_dir`` and return the metrics dict. ``notes``: what a
    reader of the headline number must know (e.g. label-derived inputs); the report shows them
    beside the number. ``extra``: further entries of metrics.json (a notebook's own results,
    such as the reference networks' rows)."""
    out = Path(out_dir)
    classes = list(table.classes)
    write_predictions(out, result, table)
    # every file written whole or not at all, metrics.json last: it marks a finished run
    replace_atomic(out / "predictions_megc.txt",
                   lambda tmp: tmp.write_text(megc_log(result.predictions, table.dataset, classes)))
    replace_atomic(out / "per_fold.csv", lambda tmp: result.per_fold.to_csv(tmp, index=False))
    replace_atomic(out / "curves.csv", lambda tmp: result.curves.to_csv(tmp, index=False))
    m = result.metrics
    metrics = {
        "method": method, "dataset": table.dataset, "protocol": table.protocol,
        "synthetic": table.dataset == "synth",
        "smoke": bool(params.get("smoke")),  # compute shrunk to check a setup: the numbers mean nothing
        "n_clips": int(len(table.clips)), "n_subjects": int(table.clips["subject"].nunique()),
        "n_dropped": int(len(table.dropped)),
        # every annotation row or clip left out, with its reason (an unreadable frame names its file)
        "dropped": table.dropped.astype(object).where(table.dropped.notna(), None).to_dict(orient="records"),
        "acc": m["acc"], "uf1": m["uf1"], "uar": m["uar"], "per_class": m["per_class"],
        "confusion": m["confusion"], "labels": classes,
        "per_fold": {"note": PER_FOLD_NOTE, "folds": result.per_fold.to_dict(orient="records")},
        "ablations": [] if ablations is None else ablations.to_dict(orient="records"),
        "per_source": None if (ps := per_source(result, table)) is None else ps.to_dict(orient="records"),
        "subject_mean": {"note": SUBJECT_MEAN_NOTE, **subject_scores(result, classes)},
        "test_selection": result.test_selection() if hasattr(result, "test_selection") else None,
        "runtime_s": round(float(runtime_s), 1), "device": device, "machine": machine.describe(device),
        "date": machine.today(), "git_commit": git_commit(),
        "params": params, "notes": list(notes or []), **(extra or {}),
    }
    replace_atomic(out / "metrics.json", lambda tmp: tmp.write_text(json.dumps(metrics, indent=1, default=str)))
    return metrics
