"""Kill anywhere, lose nothing: `mer study` (the baseline and GAM-MM-MER on a tiny SynthME set,
the magnifier trained for a few steps) is killed with SIGKILL during preprocessing, during a
fold, during the magnifier's training and once the notebooks are done (while the report is
written), each time rerun; the last rerun finishes, reuses what was finished, and ends with
the same predictions as an uninterrupted run. Every file under its final name is whole (a
killed write leaves at most its temporary ``.tmp<pid>`` file, which nothing reads)."""
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import torch

from tests.test_notebook import tiny_synth

GAM = ["-p", "patch=8", "-p", "magnifier_steps=40", "-p", "magnifier_pairs=8", "-p", "magnifier_face_pairs=4",
       "-p", "check_pairs=2", "-p", "face_check_pairs=2", "-p", "latency_repeats=1", "-p", "latency_onnx=false",
       "-p", "compare_magnifiers=['none']", "-p", "compare_manipulators=['official']", "-p", "figure_alphas=[5]"]


def _study(data_root: Path, home: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "mer.cli", "study", "--only", "baseline", "gam_mm_mer", "--data-root",
           str(data_root), "--workers", "1", "-p", "input_size=32", "-p", "epochs=2", "-p", "batch_size=8",
           "-p", "ablations=[]", "-p", f"weights_dir={home / 'weights'}", *GAM]
    env = {**os.environ, "MER_OUTPUTS": str(home / "outputs"), "MER_CACHE": str(home / "cache")}
    return subprocess.Popen(cmd, env=env, stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the study and everything it started (the notebook kernel detaches into its own
    session), as an out-of-memory killer or a pulled plug would."""
    try:
        family = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        family = []
    for p in [psutil.Process(proc.pid), *family] if proc.poll() is None else family:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    proc.wait(timeout=60)


def _files(root: Path, pattern: str) -> list[Path]:
    return list(root.rglob(pattern)) if root.exists() else []


def _run_until(data_root, home, log, stage: str, timeout: float = 400) -> str:
    """Run the study and SIGKILL it when ``stage`` is reached; returns what happened."""
    out = home / "outputs" / "synth"
    proc, t0 = _study(data_root, home, log), time.time()
    while proc.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.2)
        folds = _files(out / "baseline" / "main" / "folds", "*.json")
        if stage == "preprocessing" and _files(home / "cache", "*.npz") and not folds:
            break
        if stage == "fold" and 1 <= len(folds) < 3:
            break
        # the magnifier's training pairs are cached right before its training steps begin
        if stage == "magnifier" and _files(home / "cache", "face_pairs_*.npz") and not _files(home / "weights",
                                                                                               "*.pt"):
            break
        if stage == "report" and "[study] gam_mm_mer done" in log.read_text():
            break
    if proc.poll() is not None:
        return f"finished before {stage} (rc {proc.returncode})"
    _kill_tree(proc)
    return f"killed during {stage}"


@pytest.mark.slow
def test_killed_at_every_stage_the_study_resumes_to_the_same_predictions(tmp_path):
    data_root = tiny_synth(tmp_path)
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    done = _study(data_root, whole, tmp_path / "whole.log")
    assert done.wait(timeout=600) == 0, (tmp_path / "whole.log").read_text()[-3000:]

    log = tmp_path / "broken.log"
    events = [_run_until(data_root, broken, log, stage) for stage in ("preprocessing", "fold", "magnifier", "report")]
    assert events[:3] == ["killed during preprocessing", "killed during fold", "killed during magnifier"], events
    last = _study(data_root, broken, log)
    assert last.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert "folds resumed from disk" in (broken / "outputs" / "synth" / "baseline" / "00_baseline.ipynb").read_text()

    for method in ("baseline", "gam_mm_mer"):
        a = pd.read_csv(whole / "outputs" / "synth" / method / "predictions.csv")
        b = pd.read_csv(broken / "outputs" / "synth" / method / "predictions.csv")
        pd.testing.assert_frame_equal(a, b)
    assert (broken / "outputs" / "report.html").is_file()
    for path in _files(broken, "*"):
        if not path.is_file():
            continue
        if re.search(r"\.tmp\d+$", path.name):  # a killed write's temporary file: never read, never renamed
            continue
        # every file under its final name is whole: records, metrics.json, cache entries, weights, tables
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                [z[k] for k in z.files]
        elif path.suffix == ".pt":
            torch.load(path, map_location="cpu", weights_only=True)
        elif path.suffix == ".csv":
            pd.read_csv(path)
