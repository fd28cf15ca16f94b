"""Frames with their landmarks, for models whose nodes sit at facial landmarks (p1's AU
nodes): items are ({"frames": (T, 6, S, S), "points": (L, 2)}, label).

- ``frames``: T aligned frames (the ``sequence`` recipe of
  :class:`~mer.preprocess.dataset.ClipDataset`, uniform over onset..offset, optionally
  with the apex frame among them; the first is the onset frame), RGB centred to [-0.5, 0.5], with each frame's change from the first
  frame times ``diff_gain`` as three more channels;
- ``points``: the landmarks ``landmark_ids`` (68-point indices) of the *apex* frame in
  grid coordinates ([-1, 1], ``torch.nn.functional.grid_sample`` with
  ``align_corners=False``). Faces are aligned with one transform per clip and only the
  onset and apex frames have landmarks; the apex frame's are where the movement is, so
  they serve every frame.
- Training items draw, once per item and identically for every frame, an
  :class:`~mer.preprocess.dataset.Augment` (by default crop-pad shift and
  brightness/contrast jitter; the landmarks do not follow the shift, so a node sees a
  slightly displaced window, as a crop-padded patch would) and, with ``five_crop``, one
  of the paper's five crops (four corners and the centre, ``five_crop`` of the side,
  resized back; the landmarks follow). Test items use the centre crop at the same share
  (``test_crop="centre"``), so the face is seen at the scale it was trained at, or the
  whole aligned face (``"full"``: 1/share times smaller than in training).
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import pandas as pd
import torch

from mer.preprocess.dataset import Augment, ClipDataset, ClipSet

# Order of the five crops: top-left, top-right, bottom-left, bottom-right, centre.
FIVE_CROPS = ((0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.5, 0.5))
CENTRE_CROP = 4


def five_crop(frames: np.ndarray, points: np.ndarray, which: int, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Crop ``scale`` of the side at corner/centre ``which`` (:data:`FIVE_CROPS`) from every
    frame (T, S, S, C) and resize back to S; returns the frames and the moved ``points``
    (pixel coordinates)."""
    size = frames.shape[1]
    side = int(round(size * scale))
    if not 0 < side <= size:
        raise ValueError(f"five_crop scale must be in (0, 1], got {scale}")
    fx, fy = FIVE_CROPS[which]
    x0, y0 = int(round(fx * (size - side))), int(round(fy * (size - side)))
    out = np.stack([cv2.resize(f[y0:y0 + side, x0:x0 + side], (size, size), interpolation=cv2.INTER_LINEAR)
                    for f in frames])
    if out.ndim == 3:
        out = out[..., None]
    # pixel centres: x_out + 0.5 = (x_in + 0.5 - x0) * size / side
    return out, (np.asarray(points, dtype=np.float64) + 0.5 - [x0, y0]) * (size / side) - 0.5


def to_grid(points: np.ndarray, size: int) -> np.ndarray:
    """Pixel coordinates (x, y) of an S x S image -> grid_sample's [-1, 1] (align_corners=False)."""
    return (2.0 * (np.asarray(points, dtype=np.float64) + 0.5) / size - 1.0).astype(np.float32)


def clip_table_landmarks(clips: pd.DataFrame, column: str = "landmarks_apex") -> np.ndarray:
    """(N, 68, 2) landmarks of a clip table after alignment; a clear error without them."""
    if column not in clips.columns:
        raise ValueError(f"the clip table has no {column!r} column: build the dataset with align=True")
    pts = [np.asarray(p, dtype=np.float64) if p is not None else np.zeros(0) for p in clips[column]]
    bad = [i for i, p in enumerate(pts) if p.shape != (68, 2) or not np.isfinite(p).all()]
    if bad:
        raise ValueError(f"clips {clips.iloc[bad]['clip'].astype(str).tolist()[:5]} have no usable 68-point "
                         f"{column}")
    return np.stack(pts)


class LandmarkFrames(ClipSet):
    """Items ({"frames": (T, 6, S, S), "points": (L, 2)}, label). Same ``clips`` /
    ``labels`` / ``subset`` interface as :class:`ClipDataset`."""

    def __init__(self, frames: ClipDataset, landmark_ids: Sequence[int], diff_gain: float = 10.0,
                 augment: Augment | None = None, five_crop: float | None = None, test_crop: str = "centre"):
        self._keep(locals())
        if frames.recipe != "sequence" or not frames.align:
            raise ValueError("LandmarkFrames needs an aligned ClipDataset with the 'sequence' recipe (landmarks)")
        if frames.sampling != "uniform":
            raise ValueError("LandmarkFrames treats the first frame as the onset: build the sequence with uniform "
                             "sampling (include_apex keeps the onset first)")
        self.landmark_ids = [int(i) for i in landmark_ids]
        bad = [i for i in self.landmark_ids if not 0 <= i < 68]
        if bad:
            raise ValueError(f"landmark indices must be in 0..67 (68-point scheme), got {bad}")
        if five_crop is not None and not 0 < five_crop <= 1:
            raise ValueError(f"five_crop scale must be in (0, 1], got {five_crop}")
        if test_crop not in ("centre", "full"):
            raise ValueError(f"test_crop must be 'centre' or 'full', got {test_crop!r}")
        self.test_crop = test_crop
        self.clips, self.labels = frames.clips, frames.labels
        self.size, self.diff_gain, self.five_crop = frames.size, float(diff_gain), five_crop
        self.augment = augment if augment is not None else Augment(flip=False, rotate=0.0, pad=1, jitter=0.1)
        self.frames = frames.data  # per clip (T, S, S, 3) uint8
        self.points = [p[self.landmark_ids] for p in clip_table_landmarks(self.clips)]

    @property
    def sample_shape(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.item(0).items()}

    def item(self, i: int, train: bool = False) -> dict[str, torch.Tensor]:
        frames, points = self.frames[i], self.points[i]
        if self.five_crop is not None and (train or self.test_crop == "centre"):
            which = int(torch.randint(len(FIVE_CROPS), ())) if train else CENTRE_CROP
            frames, points = five_crop(frames, points, which, self.five_crop)
        x = torch.from_numpy(np.ascontiguousarray(frames)).float().permute(0, 3, 1, 2) / 255.0 - 0.5
        if train:
            x = self.augment(x, "image")  # one draw for every frame
        x = torch.cat([x, (x - x[:1]) * self.diff_gain], dim=1)
        return {"frames": x.contiguous(), "points": torch.from_numpy(to_grid(points, self.size))}

    def __getitem__(self, i: int):
        return self.item(i), int(self.labels[i])

    def draw(self, i: int, train: bool) -> dict[str, torch.Tensor]:
        return self.item(i, train)
