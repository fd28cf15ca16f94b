"""Faults a long run meets: a full disk in the middle of the folds, an outputs folder that
cannot be written. The run stops with a message naming the path and what to do, no
half-written file is left, and a rerun after the fault resumes from what was finished."""
import errno
import os

import pandas as pd
import pytest

from mer import paths
from mer.train import engine, splits
from tests.test_engine import CFG, CLASSES, ToyData, small_model


def test_a_full_disk_stops_the_folds_and_a_rerun_resumes(tmp_path, monkeypatch):
    ds = ToyData()
    folds = splits.loso(ds.clips)
    whole = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "whole", CLASSES, progress=False)
    real_replace, calls = os.replace, []

    def full_after_two(src, dst):
        calls.append(dst)
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(paths.os, "replace", full_after_two)
    with pytest.raises(OSError, match="could not be written: the disk is full") as err:
        engine.run_cv(ds, folds, small_model, CFG, tmp_path / "run", CLASSES, progress=False)
    assert err.value.errno == errno.ENOSPC and str(tmp_path / "run" / "folds") in str(err.value)
    monkeypatch.setattr(paths.os, "replace", real_replace)
    left = sorted(p.name for p in (tmp_path / "run" / "folds").iterdir())
    assert len(left) == 2 and not [n for n in left if ".tmp" in n]  # two whole records, no half file
    resumed = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "run", CLASSES, progress=False)
    assert resumed.folds_resumed == 2
    pd.testing.assert_frame_equal(resumed.predictions, whole.predictions)


def test_an_outputs_folder_that_cannot_be_written_is_named_before_any_work(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(OSError, match=rf"{blocker / 'run'}: could not be written"):
        paths.ensure_writable(blocker / "run")
    assert paths.ensure_writable(tmp_path / "ok" / "run").is_dir()


def test_a_read_only_outputs_folder_says_so(tmp_path, monkeypatch):
    """A read-only folder (chmod as a user; as root, which writes anyway, the refusal is
    simulated where the probe file is written)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        def refuse(self, data):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        monkeypatch.setattr(paths.Path, "write_bytes", refuse)
    else:
        folder.chmod(0o500)
    try:
        with pytest.raises(OSError, match=rf"{folder}: could not be written: the folder is read-only"):
            paths.ensure_writable(folder)
    finally:
        folder.chmod(0o700)
