"""Shared fixtures: small data trees built in the exact shape of the real releases."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Notebooks run by the tests train their folds in the kernel (workers: None reads this):
# a Dask cluster's start per notebook would outweigh the smoke runs' tiny folds. The Dask
# path has its own tests (test_parallel.py) and the TDSGCN notebook test runs on 2 workers.
os.environ.setdefault("MER_WORKERS", "1")
# ...on both cores of the test machine (the default, one thread per fold, is for workers);
# the Dask workers the tests start inherit it, so their bytes still equal the kernel's.
os.environ.setdefault("MER_FOLD_THREADS", "2")


def write_frames(folder: Path, numbers, pattern: str = "img{}.jpg", size: int = 24, bump: int | None = None,
                 seed: int = 0) -> None:
    """Tiny JPEG frames; frame ``bump`` differs strongly from the rest (an obvious apex)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = rng.integers(60, 190, (size, size, 3), dtype=np.uint8)
    for n in numbers:
        img = base.copy()
        if bump is not None:
            img = np.clip(img.astype(int) + int(80 * np.exp(-abs(n - bump) / 2)), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / pattern.format(n)), img)


def casme2_sheet(rows: list[list], path: Path, extra_unnamed: bool = True) -> None:
    """Write a CASME II coding sheet; with ``extra_unnamed`` two blank unnamed columns sit
    between Filename and OnsetFrame, as in some copies of the release."""
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
    df = pd.DataFrame(rows, columns=header)
    if extra_unnamed:
        df.insert(2, "Unnamed: 2", None)
        df.insert(3, "Unnamed: 3", None)
        df.columns = [c if not c.startswith("Unnamed") else None for c in df.columns]
    df.to_excel(path, index=False)


@pytest.fixture
def casme2_root(tmp_path: Path) -> Path:
    """A CASME II tree carrying every quirk DATASETS.md lists, plus broken rows."""
    root = tmp_path / "CASME2"
    raw = root / "CASME2_RAW_selected"
    # sub01 EP02_01f: trimmed onset..offset, numbers crossing a digit boundary (img9, img10)
    write_frames(raw / "sub01" / "EP02_01f", range(5, 16))
    # sub01 EP03_02: whole video present (frames before onset and after offset)
    write_frames(raw / "sub01" / "EP03_02", range(1, 40))
    write_frames(raw / "sub01" / "EP03_03", range(10, 21))
    # sub02 EP01_01: apex written "/": estimated from the frames (bump at 27)
    write_frames(raw / "sub02" / "EP01_01", range(20, 35), bump=27)
    # sub02 EP04_01: a frame missing in the middle
    write_frames(raw / "sub02" / "EP04_01", [n for n in range(10, 20) if n != 14])
    # sub03 EP05_01: sadness (outside casme2-5); sub03 EP06_01: fear; sub03 EP07_01: fine
    for clip in ("EP05_01", "EP06_01", "EP07_01"):
        write_frames(raw / "sub03" / clip, range(1, 11))
    # sub10 EP09_01: happiness, subject 10 -> folder sub10
    write_frames(raw / "sub10" / "EP09_01", range(100, 112))
    rows = [
        [1, "EP02_01f", 5, 9, 15, "4+L10", "disgust"],
        [1, "EP03_02", 10, 12, 20, "?", "Others"],          # AU unknown, capitalised emotion
        [2, "EP01_01", 20, "/", 34, "R1+R2", "surprise"],     # apex missing
        [2, "EP04_01", 10, 12, 19, "14", "repression"],       # frame 14 missing
        [3, "EP05_01", 1, 4, 10, "15", "sadness"],            # outside protocol
        [3, "EP06_01", 1, 4, 10, "4+5", "fear"],              # outside protocol
        [3, "EP07_01", 1, 5, 10, "12", "happiness"],
        [10, "EP09_01", 100, 105, 111, "6+12", "happiness"],
        [4, "EP01_01", 1, 3, 9, "4", "disgust"],              # no frame folder
        [3, "EP07_01", 1, 5, 10, "12", "happiness"],          # duplicate row
        [1, "EP03_03", 10, 25, 20, "4", "others"],            # apex after offset
    ]
    casme2_sheet(rows, root / "CASME2-coding-20140508.xlsx")
    return root
