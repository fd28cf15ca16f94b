"""Frame reading and resizing (no alignment; the dlib pipeline is a separate stage)."""
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
