"""The fold-parallel speedup: the baseline notebook's main run (ResNet-18 on apex - onset,
LOSO, its SynthME params) trained on one worker (this process, as before) and on several
local Dask workers, each from scratch."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np


def baseline_run(params: dict | None = None):
    """The baseline notebook's main run on SynthME as its notebook builds it: (dataset,
    folds, spec, TrainConfig, classes), from the notebook's defaults and its synth params."""
    from mer import data, models
    from mer.notebook import augment_of, train_config
    from mer.preprocess import ClipDataset
    from mer.study import method_params
    from mer.train import parallel, splits
    p = {**method_params("baseline", "synth"), **(params or {})}
    table = data.load(p["dataset"], p.get("data_root"), protocol=p.get("protocol"))
    ds = ClipDataset(table.clips, "diff", size=p["input_size"], align=p["align"], augment=augment_of(p),
                     workers=parallel.available_cores(), cache_dir=p.get("cache_dir"))
    spec = models.Spec("resnet18_diff", num_classes=table.num_classes, in_chans=ds.in_chans,
                       pretrained_path=p.get("pretrained_path"))
    return ds, splits.make_folds(table.clips, p.get("folds", "loso"), p.get("seed", 0)), spec, train_config(p), \
        table.classes


def fold_speedup(scratch: str | Path, workers: tuple[int, ...] = (1, 2), progress: bool = True) -> dict:
    """Seconds of the baseline's LOSO on each number of ``workers`` (1: in this process; N: a
    new LocalCluster of N workers, its start included; every fold on one torch thread),
    the speedup over the first, and whether their predictions agree."""
    from mer.train import engine, parallel
    ds, folds, spec, cfg, classes = baseline_run()
    scratch = Path(scratch)
    rows, preds = [], {}
    for n in workers:
        out = scratch / f"workers{n}"
        shutil.rmtree(out, ignore_errors=True)
        parallel.shutdown()  # a cold cluster for each measurement
        t0 = time.perf_counter()
        r = engine.run_cv(ds, folds, spec, cfg, out, classes, desc=f"baseline LOSO, {n} worker(s)", progress=progress,
                          parallel=parallel.Parallel(n))
        seconds = time.perf_counter() - t0
        preds[n] = r.predictions
        rows.append({"workers": n, "seconds": round(seconds, 1), "uf1": r.metrics["uf1"],
                     "speedup": round(rows[0]["seconds"] / seconds, 2) if rows else 1.0})
    parallel.shutdown()
    first = preds[workers[0]]
    for row in rows:
        p = preds[row["workers"]]
        row["same_predictions_as_1"] = bool((p["y_pred"].to_numpy() == first["y_pred"].to_numpy()).all())
        row["max_prob_difference"] = float(np.abs(p.filter(like="p_").to_numpy() - first.filter(like="p_").to_numpy()).max())
    return {"what": "the baseline's main run (ResNet-18, apex - onset, SynthME quick set, synthetic), LOSO, "
                    f"{len(folds)} folds x {cfg.epochs} epochs", "runs": rows}
