"""Kill anywhere, lose nothing: `mer study` (the baseline and GAM-MM-MER on a tiny SynthME set,
the magnifier trained for a few steps) is killed with SIGKILL during preprocessing, during a
fold, during the magnifier's training and once the notebooks are done (while the report is
written), each time rerun; the last rerun finishes, reuses what was finished, and ends with
the same predictions as an uninterrupted run. No half-written file is left anywhere."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

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
    proc, t0, gam_seen = _study(data_root, home, log), time.time(), None
    while proc.poll() is None and time.time() - t0 < timeout:
        time.sleep(0.2)
        folds = _files(out / "baseline" / "main" / "folds", "*.json")
        if stage == "preprocessing" and _files(home / "cache", "*.npz") and not folds:
            break
        if stage == "fold" and 1 <= len(folds) < 3:
            break
        if stage == "magnifier" and (out / "gam_mm_mer").is_dir() and not _files(home / "weights", "*.pt"):
            gam_seen = gam_seen or time.time()
            if time.time() - gam_seen > 4:
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
        assert ".tmp" not in path.name, f"a half-written file was left: {path}"
        if path.suffix == ".json":
            json.loads(path.read_text())  # every record, metrics.json and cache index whole
