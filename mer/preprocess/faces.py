"""Face alignment: dlib detection + 68 landmarks on the onset frame, one similarity
transform (eyes level, fixed inter-ocular distance, face centred) applied to every frame
of the clip, so the subtle motion between frames is kept and not re-estimated per frame.

Fallbacks when no face is found on the onset frame, each flagged in the clip table
(``face_found``, ``align_method``):
1. ``detect``: found at the original scale;
2. ``detect_upsampled``: found after upsampling the image once;
3. ``subject_previous``: the transform of the same subject's previous clip (table order)
   that had a face;
4. ``centred_crop``: the largest centred square, resized.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mer import landmarks as lm

IOD_FRACTION = 0.30  # inter-ocular distance as a fraction of the output size
EYE_Y = 0.40  # height of the eye line as a fraction of the output size
METHODS = ("detect", "detect_upsampled", "subject_previous", "centred_crop")


@dataclass
class Detection:
    """What dlib saw on the raw onset frame (source pixel coordinates)."""
    box: tuple[int, int, int, int] | None
    points: np.ndarray | None  # (68, 2)
    upsampled: bool
    shape: tuple[int, int]  # source image (h, w)


def detect(image: np.ndarray) -> Detection:
    """Best face and its landmarks; upsampling once when the first pass finds nothing."""
    for upsample in (0, 1):
        boxes = lm.detect_faces(image, upsample=upsample)
        if boxes:
            box = tuple(int(v) for v in boxes[0][:4])
            return Detection(box, lm.landmarks(image, box), upsample > 0, image.shape[:2])
    return Detection(None, None, False, image.shape[:2])


def similarity(points: np.ndarray, size: int, iod: float = IOD_FRACTION, eye_y: float = EYE_Y) -> np.ndarray:
    """2x3 matrix taking the eye centres of ``points`` to the canonical positions at ``size``."""
    right, left = lm.eye_centres(points)
    src = left - right
    dist = float(np.hypot(*src))
    if dist < 1e-6:
        raise ValueError("degenerate landmarks: the two eye centres coincide")
    scale = iod * size / dist
    angle = np.arctan2(src[1], src[0])  # rotate by -angle to level the eyes
    c, s = scale * np.cos(-angle), scale * np.sin(-angle)
    rot = np.array([[c, -s], [s, c]])
    mid = (left + right) / 2
    t = np.array([size / 2, eye_y * size]) - rot @ mid
    return np.hstack([rot, t[:, None]])


def centred_crop(shape: tuple[int, int], size: int) -> np.ndarray:
    """2x3 matrix for the largest centred square of an (h, w) image, resized to ``size``."""
    h, w = shape
    side = min(h, w)
    scale = size / side
    return np.array([[scale, 0, -(w - side) / 2 * scale], [0, scale, -(h - side) / 2 * scale]])


def warp(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Apply a 2x3 transform and crop to size x size (cubic, border replicated).

    When the transform shrinks the image, it is first area-averaged down to about the
    target scale: a cubic warp straight to a much smaller size aliases, and aliasing
    noise swamps the one-pixel motion of a micro-expression.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale < 0.8:
        h, w = image.shape[:2]
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
        pre = np.array([[nw / w, 0, 0.5 * nw / w - 0.5], [0, nh / h, 0.5 * nh / h - 0.5]])  # pixel-centre mapping
        inv_pre = cv2.invertAffineTransform(pre)
        matrix = np.hstack([matrix[:, :2] @ inv_pre[:, :2], (matrix[:, :2] @ inv_pre[:, 2] + matrix[:, 2])[:, None]])
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def eye_angle_deg(points: np.ndarray) -> float:
    """Angle of the line between the eye centres (0 = level)."""
    right, left = lm.eye_centres(points)
    d = left - right
    return float(np.degrees(np.arctan2(d[1], d[0])))


def box_of(matrix: np.ndarray, size: int) -> tuple[int, int, int, int]:
    """The source-image box that maps onto the central face area of the aligned output
    (used to place landmarks when the onset frame gave no detection)."""
    inv = cv2.invertAffineTransform(matrix)
    corners = transform_points(np.array([[0.18 * size, 0.22 * size], [0.82 * size, 0.95 * size]]), inv)
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    return int(x0), int(y0), int(x1), int(y1)
