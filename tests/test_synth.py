import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from mer import data
from mer import landmarks as lm
from mer.cli import main
from mer.data.synth import CASME2_HEADER, SynthConfig, generate

TINY = dict(subjects=2, clips_per_subject=3, size=96, frames=(8, 12), workers=1)


def digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = generate(tmp_path / "a", SynthConfig(seed=7, **TINY), progress=False)
    b = generate(tmp_path / "b", SynthConfig(seed=7, **{**TINY, "workers": 2}), progress=False)
    c = generate(tmp_path / "c", SynthConfig(seed=8, **TINY), progress=False)
    da, db, dc = digest(a), digest(b), digest(c)
    assert da == db  # sheet, meta and every frame byte-identical, whatever the worker count
    assert sum(da[k] != dc.get(k) for k in da if k.endswith(".jpg")) > len(da) // 2


def test_workers_are_never_forked_from_the_caller(tmp_path, monkeypatch):
    # A kernel that has run torch holds thread and OpenMP locks; a forked worker inherits
    # them locked and hangs (seen: `mer study` stuck generating the macro set in a notebook).
    import torch
    from mer.data import synth
    torch.ones(64, 64) @ torch.ones(64, 64)  # the caller has run torch
    contexts = []
    real = synth.ProcessPoolExecutor

    def recording(*args, **kw):
        contexts.append(kw.get("mp_context"))
        return real(*args, **kw)
    monkeypatch.setattr(synth, "ProcessPoolExecutor", recording)
    generate(tmp_path / "s", SynthConfig(seed=3, **{**TINY, "workers": 2}), progress=False)
    assert contexts and all(c is not None and c.get_start_method() != "fork" for c in contexts)


def test_layout_sheet_and_meta(tmp_path):
    root = generate(tmp_path / "s", SynthConfig(seed=1, **TINY), progress=False)
    sheet = pd.read_excel(root / "CASME2-coding-synth.xlsx")
    assert list(sheet.columns) == CASME2_HEADER
    assert len(sheet) == 6
    meta = json.loads((root / "synth_meta.json").read_text())
    assert meta["version"] and meta["seed"] == 1 and meta["size"] == 96 and meta["synthetic"] is True
    assert len(meta["clips"]) == 6
    for row, clip in zip(sheet.itertuples(index=False), meta["clips"]):
        folder = root / "CASME2_RAW_selected" / f"sub{row.Subject:02d}" / row.Filename
        numbers = sorted(int(p.stem[3:]) for p in folder.glob("img*.jpg"))
        assert numbers == list(range(row.OnsetFrame, row.OffsetFrame + 1))  # numbered from onset
        assert row.OnsetFrame < row.ApexFrame < row.OffsetFrame
        assert "+".join(map(str, clip["aus"])) == str(row[5])
        assert {"amplitude_px", "aus", "nuisances"} <= set(clip)
        assert 1.0 * 96 / 224 <= clip["amplitude_px"] <= 3.0 * 96 / 224
    img = cv2.imread(str(next((root / "CASME2_RAW_selected").rglob("*.jpg"))))
    assert img.shape == (96, 96, 3)
    t = data.load("synth", root)  # the CASME II loader reads it unchanged
    assert len(t.clips) == 6 and t.dropped.empty and t.protocol == "synth-5"


def test_expression_moves_pixels_at_apex_only_slightly(tmp_path):
    root = generate(tmp_path / "s", SynthConfig(seed=2, subjects=1, clips_per_subject=2, frames=(20, 20),
                                                 blink_prob=0, drift_px=0, rotation_deg=0, flicker=0,
                                                 noise_sigma=(0, 0), workers=1), progress=False)
    t = data.load("synth", root)
    for row in t.clips.itertuples():
        on = cv2.imread(row.frames[0]).astype(float)
        ap = cv2.imread(row.frames[row.apex - row.onset]).astype(float)
        end = cv2.imread(row.frames[-1]).astype(float)
        assert np.abs(ap - on).mean() > 2 * np.abs(end - on).mean()  # rises to the apex, falls back
        assert np.abs(ap - on).max() > 8  # visible where the AUs act ...
        assert np.abs(ap - on).mean() < 3  # ... and subtle overall


def test_macro_mode_uses_distinct_subjects_and_larger_motion(tmp_path):
    root = generate(tmp_path / "m", SynthConfig(mode="macro", seed=0, **TINY), progress=False)
    meta = json.loads((root / "synth_meta.json").read_text())
    assert sorted(meta["subjects"]) == ["sub101", "sub102"]
    assert min(c["amplitude_px"] for c in meta["clips"]) >= 6 * 96 / 224


def test_dlib_finds_the_face_in_onset_frames(tmp_path):
    root = generate(tmp_path / "d", SynthConfig(seed=3, subjects=4, clips_per_subject=3, frames=(8, 10)),
                    progress=False)
    t = data.load("synth", root)
    found = sum(bool(lm.detect_faces(cv2.cvtColor(cv2.imread(f[0]), cv2.COLOR_BGR2RGB))) for f in t.clips["frames"])
    assert found / len(t.clips) >= 0.95


def test_cli_and_errors(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "o"), "--subjects", "1", "--clips-per-subject", "1", "--size", "64",
                 "--workers", "1"]) == 0
    assert (tmp_path / "o" / "CASME2-coding-synth.xlsx").is_file()
    assert main(["synth", str(tmp_path / "o"), "--subjects", "1", "--clips-per-subject", "1"]) == 2
    assert "already holds frames" in capsys.readouterr().err
    faces = tmp_path / "faces"
    faces.mkdir()
    cv2.imwrite(str(faces / "wall.png"), np.full((120, 120, 3), 128, np.uint8))
    with pytest.raises(ValueError, match="wall.png: dlib found no face"):
        generate(tmp_path / "f", SynthConfig(faces=str(faces), **TINY), progress=False)
