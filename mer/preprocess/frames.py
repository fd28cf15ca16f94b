"""Frame reading and frame selection.

Selection: the onset/apex pair; T frame numbers uniform over onset..offset; linear
temporal interpolation of a sequence to T frames (TIM-style); resampling to a target rate
(p4 uses 30 Hz).
"""
from __future__ import annotations

import cv2
import numpy as np


def read_frame(path: str, size: int | None = None, grey: bool = False) -> np.ndarray:
    """RGB (H, W, 3) or grey (H, W) uint8, optionally resized to size x size (area filter)."""
    img = cv2.imread(path, cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{path}: missing or unreadable image")
    if not grey:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    if size is not None and img.shape[:2] != (size, size):
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


def frame_path(row, number: int) -> str:
    """Path of frame ``number`` of a clip-table row (frames list covers onset..offset)."""
    i = int(number) - int(row["onset"])
    if not 0 <= i < len(row["frames"]):
        raise IndexError(f"frame {number} outside {row['onset']}..{row['offset']} of {row['frame_dir']}")
    return row["frames"][i]


SAMPLINGS = ("uniform", "interpolate", "rate")


def uniform_numbers(onset: int, offset: int, t: int) -> list[int]:
    """``t`` frame numbers spread evenly over onset..offset (both ends included)."""
    if t < 1:
        raise ValueError(f"T must be >= 1, got {t}")
    if t == 1:
        return [int(onset)]
    return [int(round(x)) for x in np.linspace(onset, offset, t)]


def with_apex(numbers: list[int], apex: int) -> list[int]:
    """``numbers`` with the one nearest to ``apex`` replaced by it (the onset, first, is kept
    unless the apex is the onset), so a uniformly sampled clip contains its apex frame."""
    if apex in numbers:
        return list(numbers)
    out = list(numbers)
    candidates = range(1, len(out)) if len(out) > 1 else range(len(out))
    k = min(candidates, key=lambda i: (abs(out[i] - apex), i))
    out[k] = apex
    return sorted(out)


def interpolate_sequence(frames: np.ndarray, t: int) -> np.ndarray:
    """Linear temporal interpolation of (N, ...) frames to (t, ...) float32 (TIM-style)."""
    n = len(frames)
    if n == 0:
        raise ValueError("cannot interpolate an empty sequence")
    pos = np.linspace(0, n - 1, t) if t > 1 else np.zeros(1)
    return sample_at(frames, pos)


def sample_at(frames: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """Frames at fractional positions ``pos`` by linear interpolation of neighbours."""
    frames = np.asarray(frames, dtype=np.float32)
    lo = np.clip(np.floor(pos).astype(int), 0, len(frames) - 1)
    hi = np.clip(lo + 1, 0, len(frames) - 1)
    w = (pos - lo).reshape((-1,) + (1,) * (frames.ndim - 1)).astype(np.float32)
    return frames[lo] * (1 - w) + frames[hi] * w


def rate_positions(n: int, fps: float, target_fps: float) -> np.ndarray:
    """Fractional frame positions of an ``n``-frame clip at ``fps`` resampled to ``target_fps``."""
    if fps <= 0 or target_fps <= 0:
        raise ValueError(f"frame rates must be positive (fps={fps}, target={target_fps})")
    return np.arange(0, n - 1 + 1e-9, fps / target_fps)


def rate_numbers(onset: int, offset: int, fps: float, target_fps: float) -> list[int]:
    """The frame numbers of onset..offset nearest to each step of 1 / ``target_fps`` s (the
    clip downsampled to ``target_fps``; every frame when the clip's rate is lower)."""
    if fps <= 0 or target_fps <= 0:
        raise ValueError(f"frame rates must be positive (fps={fps}, target={target_fps})")
    step = max(fps / target_fps, 1.0)
    count = int(np.floor((offset - onset) / step + 1e-9)) + 1
    return sorted({int(round(onset + k * step)) for k in range(count)})


def resample_rate(frames: np.ndarray, fps: float, target_fps: float) -> np.ndarray:
    """A clip resampled from ``fps`` to ``target_fps`` (linear interpolation), first frame kept."""
    return sample_at(frames, rate_positions(len(frames), fps, target_fps))
