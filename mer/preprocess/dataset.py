"""Torch datasets built from a clip table plus a recipe.

Recipes (frames read and resized only):
- ``diff``: apex - onset, RGB, scaled by ``diff_gain`` (micro-motion is a few grey levels)
- ``apex`` / ``onset``: a single frame, centred to [-0.5, 0.5]
- ``pair``: onset and apex stacked on the channel axis (6 channels)
Arrays are computed once for the whole table (tqdm) and shared by every fold's subsets.
Training subsets apply random horizontal flips and small integer shifts.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from mer.preprocess.frames import frame_path, read_frame

RECIPES = ("diff", "apex", "onset", "pair")


class ClipDataset:
    """All clips of a table as preprocessed arrays; ``subset(idx, train)`` gives a torch Dataset."""

    def __init__(self, clips: pd.DataFrame, recipe: str = "diff", size: int = 64, diff_gain: float = 10.0,
                 shift: int = 2, flip: bool = True, progress: bool = True):
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known: {RECIPES}")
        self.clips = clips.reset_index(drop=True)
        self.recipe, self.size, self.diff_gain = recipe, size, diff_gain
        self.shift, self.flip = shift, flip
        self.labels = self.clips["label"].to_numpy(dtype=np.int64)
        arrays = [self._make(row) for _, row in tqdm(self.clips.iterrows(), total=len(self.clips),
                                                     desc=f"reading {recipe} @ {size}px", disable=not progress)]
        self.x = np.stack(arrays) if arrays else np.zeros((0, 3, size, size), np.float32)

    def _make(self, row) -> np.ndarray:
        def frame(n: int) -> np.ndarray:
            return read_frame(frame_path(row, n), self.size).astype(np.float32) / 255.0
        if self.recipe == "diff":
            img = (frame(row["apex"]) - frame(row["onset"])) * self.diff_gain
        elif self.recipe == "pair":
            img = np.concatenate([frame(row["onset"]), frame(row["apex"])], axis=2) - 0.5
        else:
            img = frame(row[self.recipe]) - 0.5
        return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)

    @property
    def in_chans(self) -> int:
        return int(self.x.shape[1])

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray, train: bool) -> "ArraySubset":
        return ArraySubset(self.x, self.labels, np.asarray(idx), train and self.flip, self.shift if train else 0)


class ArraySubset(Dataset):
    """Rows ``idx`` of a preloaded array; augmentation draws from torch's seeded RNG."""

    def __init__(self, x: np.ndarray, y: np.ndarray, idx: np.ndarray, flip: bool, shift: int):
        self.x, self.y, self.idx, self.flip, self.shift = x, y, idx, flip, shift

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        j = self.idx[i]
        img = torch.from_numpy(self.x[j])
        if self.flip and torch.rand(()) < 0.5:
            img = img.flip(-1)
        if self.shift:
            dy, dx = torch.randint(-self.shift, self.shift + 1, (2,)).tolist()
            img = torch.roll(img, shifts=(dy, dx), dims=(-2, -1))
        return img, int(self.y[j])
