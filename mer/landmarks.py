"""dlib's frontal face detector and 68-point landmark model, shared by every stage, and
the named landmark groups and face regions built from them.

The 68-point model file ships inside the PyPI package ``face-recognition-models``. That
package's ``__init__`` imports ``pkg_resources`` (absent on modern setuptools), so the
file is located through the import system's spec without executing the package.
"""
from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

import numpy as np

# 0-based index groups of the iBUG 68-point scheme (subject's right = image left).
JAW = list(range(0, 17))
RIGHT_BROW = list(range(17, 22))
LEFT_BROW = list(range(22, 27))
NOSE_BRIDGE = list(range(27, 31))
NOSE_BASE = list(range(31, 36))
RIGHT_EYE = list(range(36, 42))
LEFT_EYE = list(range(42, 48))
OUTER_MOUTH = list(range(48, 60))
INNER_MOUTH = list(range(60, 68))

# Face regions for region patches (p2's GAM-MER nodes, the ``regions`` recipe): brows,
# eyes, nose tip, mouth; the jaw contour is left out (p2).
REGIONS: dict[str, list[int]] = {
    "right_brow": list(RIGHT_BROW), "left_brow": list(LEFT_BROW),
    "glabella": RIGHT_BROW[-1:] + LEFT_BROW[:1] + NOSE_BRIDGE[:1],    # 21, 22, 27
    "right_eye": list(RIGHT_EYE), "left_eye": list(LEFT_EYE),
    "nose_tip": NOSE_BRIDGE[-1:] + NOSE_BASE,                          # 30-35
    "mouth_right": OUTER_MOUTH[:2] + OUTER_MOUTH[-1:] + INNER_MOUTH[:1],  # 48, 49, 59, 60
    "mouth_left": OUTER_MOUTH[5:8] + INNER_MOUTH[4:5],                 # 53, 54, 55, 64
    "upper_lip": OUTER_MOUTH[2:5] + INNER_MOUTH[1:4],                  # 50-52, 61-63
    "lower_lip": OUTER_MOUTH[8:11] + INNER_MOUTH[5:8],                 # 56-58, 65-67
}

# Every landmark region: :data:`REGIONS` plus the nose bridge and the jaw contour in three
# parts (p2 Table 3's "all regions").
ALL_REGIONS: dict[str, list[int]] = {
    **REGIONS,
    "nose_bridge": list(NOSE_BRIDGE),
    "jaw_right": JAW[:6], "chin": JAW[6:11], "jaw_left": JAW[11:],
}


def predictor_path() -> Path:
    """Path of ``shape_predictor_68_face_landmarks.dat``; ``MER_DLIB_68`` overrides."""
    env = os.environ.get("MER_DLIB_68")
    if env:
        path = Path(env)
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise FileNotFoundError(
                "the 68-landmark model needs the package face-recognition-models "
                "(pip install face-recognition-models) or MER_DLIB_68=/path/to/.dat")
        pkg = Path(list(spec.submodule_search_locations)[0])
        path = pkg / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise FileNotFoundError(f"dlib 68-landmark model not found at {path}")
    return path


@lru_cache(maxsize=1)
def _detector():
    import dlib
    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=1)
def _predictor():
    import dlib
    return dlib.shape_predictor(str(predictor_path()))


def detect_faces(image: np.ndarray, upsample: int = 0) -> list[tuple[int, int, int, int, float]]:
    """Face boxes ``(left, top, right, bottom, score)`` best first, on an RGB/grey uint8 image."""
    img = np.ascontiguousarray(image)
    rects, scores, _ = _detector().run(img, upsample, 0.0)
    boxes = [(r.left(), r.top(), r.right(), r.bottom(), float(s)) for r, s in zip(rects, scores)]
    return sorted(boxes, key=lambda b: -b[4])


def landmarks(image: np.ndarray, box: tuple[int, int, int, int, float] | tuple[int, int, int, int]) -> np.ndarray:
    """68 landmark points ``(68, 2)`` float x, y inside a face box."""
    import dlib
    rect = dlib.rectangle(int(box[0]), int(box[1]), int(box[2]), int(box[3]))
    shape = _predictor()(np.ascontiguousarray(image), rect)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)


def eye_centres(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the subject's right eye (image left) and left eye (image right)."""
    return points[RIGHT_EYE].mean(axis=0), points[LEFT_EYE].mean(axis=0)
