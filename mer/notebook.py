"""Steps every notebook shares: the smoke mode, the run's label and output folder.

**Smoke mode** (``smoke: true``, ``mer study --smoke``) runs a notebook with the same params
file and the same architecture, with only the compute shrunk, so a researcher can check a
whole setup on their copy of a dataset in minutes before spending a GPU-day on it:
every clip is still loaded, aligned and preprocessed as in the real run, every figure is
drawn and every table filled, but each model trains :data:`SMOKE` ``epochs`` (1), the
ablations use two folds, the magnifier trains a few steps on a few pairs, pre-training
runs one epoch, and images and frame counts are cut to the smallest the architecture
accepts (:data:`SMOKE_SIZES`). Smoke results go to ``outputs/smoke/<dataset>/<method>/``
and are labelled smoke in ``metrics.json`` and in the report; their numbers mean nothing.
"""
from __future__ import annotations

import os
from pathlib import Path

from mer import paths

# Compute settings every notebook that has them takes in smoke mode.
SMOKE = {"epochs": 1, "pretrain_epochs": 1, "reference_epochs": 1, "ablation_folds": 2, "magnifier_steps": 2,
         "magnifier_pairs": 8, "check_pairs": 4}
# Input sizes in smoke mode: image side 32 px (every architecture of the study accepts it:
# checked by tests/test_smoke.py) and the fewest frames a sequence model takes with the
# apex among them. TDSGCN's graph side is part of its architecture (the coarsening
# levels): it stays, and the flow is computed at that side.
SMOKE_SIZES = {"input_size": 32, "frames": 3}
SMOKE_PATCH_MIN = 8  # px: GAM-MER's region patches scale with the image, down to this


def smoke_params(params: dict) -> dict:
    """``params`` with the compute shrunk for a smoke run (see the module docstring);
    ``smoke`` set True. Settings a notebook does not have are not added."""
    out = dict(params)
    out.update({name: value for name, value in {**SMOKE, **SMOKE_SIZES}.items() if name in out})
    if "patch" in params and "input_size" in params:  # region patches keep their share of the face
        out["patch"] = max(SMOKE_PATCH_MIN, round(params["patch"] * out["input_size"] / params["input_size"]))
    if "flow_size" in params and "side" in params:
        out["flow_size"] = params["side"]
    if "weights_dir" in params and params["weights_dir"] is None:  # smoke weights never sit beside real ones
        out["weights_dir"] = str(paths.smoke_dir() / "weights")
    out["smoke"] = True
    return out


def label(dataset: str, smoke: bool = False) -> str:
    """What every number of a run is, after its dataset name: synthetic, smoke, or nothing."""
    marks = (["synthetic"] if dataset == "synth" else []) + (["smoke run: compute shrunk"] if smoke else [])
    return f" ({', '.join(marks)})" if marks else ""


def output_dir(dataset: str, method: str, output_dir: str | os.PathLike | None = None,
               smoke: bool = False) -> Path:
    """``outputs/<dataset>/<method>/``, ``outputs/smoke/<dataset>/<method>/`` for a smoke
    run, or an explicit ``output_dir``."""
    return paths.run_dir(dataset, method, output_dir or (paths.smoke_dir() / dataset / method if smoke else None))
