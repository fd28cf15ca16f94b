"""SynthME: a synthetic micro-expression dataset with known ground truth.

Written in CASME II's own layout so the CASME II loader reads it unchanged::

    OUT/CASME2_RAW_selected/subXX/EPyy_zz/img{N}.jpg   (N from the clip's onset number)
    OUT/CASME2-coding-synth.xlsx                       (CASME II's header)
    OUT/synth_meta.json                                (version, seed, size, per clip truth)

How a clip is made
- Identity: a real face photo (scikit-image's ``astronaut`` by default, or the user's own
  neutral photos via ``faces``) is aligned to a canonical frame (eyes level, fixed
  inter-ocular distance), then changed by a thin-plate-spline warp driven by landmark
  moves (face width, eye distance, nose and mouth size, jaw, brow height), skin tone,
  gamma, an illumination gradient and a fixed texture-noise pattern.
- Expression: emotion -> one AU set (FACS-based, :data:`EMOTION_AUS`); each AU moves
  specific 68-point landmarks (:data:`AU_MOVES`); a smooth dense displacement field (a
  thin-plate spline through the moved landmarks, all other landmarks and the border
  pinned) warps the subject's neutral face with a smooth rise to the apex and fall to
  the offset. The apex amplitude is drawn from ``amplitude`` (px at 224 px, scaled with
  ``size``).
- Nuisances, independent of the label: blinks (AU45) in about a third of clips at a random
  time, slow rigid head drift (translation and a small rotation), illumination flicker,
  sensor noise and JPEG compression.
- Time: 200 fps, 40-100 frames (macro: 80-160), onset = first frame, offset = last.

Determinism: every random draw comes from ``numpy.random.default_rng([seed, subject,
...])``, so the same seed gives identical frames whatever the worker count, and the sheet
is written with fixed timestamps so its bytes are identical too.

Calibration: the baseline (ResNet-18 from scratch on the apex-onset difference, 64 px
input, AdamW lr 1e-3 with cosine decay, batch 16, LOSO on the quick set, seed 0) with the
defaults below (amplitude 1-3 px at 224 px, drift <= 1 px, rotation <= 0.2 deg, flicker
<= 2 %, noise sigma 1-2.5, JPEG 90, blinks in 1/3 of clips), all synthetic UF1:
    frames resized only, flip + 2 px shift:   15 epochs 0.675; 10 epochs 0.496
    (10 epochs at batch 32: 0.228, too few steps: collapses toward "others")
    dlib-aligned frames (the pipeline the notebooks use), flip + 2 px crop-pad:
        cubic warp straight to 64 px:          10 epochs 0.365 (aliasing; fixed)
        area pre-shrink, then warp:            10 epochs 0.406; 12 epochs 0.565
The quick profile uses 12 epochs (0.565): inside the 0.40-0.85 target band, clearly
learnable, with room above for the paper methods. The DESIGN.md prototype had given 0.44
at 1-3 px / 64 px and 0.56 at 2-5 px, so the amplitude stays at the realistic 1-3 px.
"""
from __future__ import annotations

import io
import json
import multiprocessing
import os
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from scipy.interpolate import RBFInterpolator
from mer.progress import tqdm

from mer import landmarks as lm

GENERATOR_VERSION = "1.0"
FPS = 200
SHEET_NAME = "CASME2-coding-synth.xlsx"
FRAMES_DIR = "CASME2_RAW_selected"
META_NAME = "synth_meta.json"
CASME2_HEADER = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame",
                 "Action Units", "Estimated Emotion"]

# Class shares like CASME II's five classes (others > disgust > happiness > repression > surprise).
EMOTION_SHARES = {"others": 99, "disgust": 63, "happiness": 32, "repression": 27, "surprise": 25}
EMOTION_AUS: dict[str, list[tuple[int, ...]]] = {
    "happiness": [(6, 12), (12,)],
    "disgust": [(9,), (10,), (4, 7)],
    "repression": [(14,), (15,), (17,), (24,)],
    "surprise": [(1, 2), (1, 2, 5)],
    "others": [(4,), (7,), (1,)],
}

# Mirror pairs of the 68-point scheme: (image-left index, image-right index).
_PAIRS = {17: 26, 18: 25, 19: 24, 20: 23, 21: 22, 36: 45, 37: 44, 38: 43, 39: 42, 40: 47,
          41: 46, 31: 35, 32: 34, 48: 54, 49: 53, 50: 52, 59: 55, 58: 56, 60: 64, 61: 63,
          67: 65, 0: 16, 1: 15, 2: 14, 3: 13, 4: 12, 5: 11, 6: 10, 7: 9}


def _sym(moves: dict[int, tuple[float, float]]) -> dict[int, tuple[float, float]]:
    """Expand moves given for image-left points (dx outward from the midline, dy down)."""
    out: dict[int, tuple[float, float]] = {}
    for idx, (dx, dy) in moves.items():
        if idx in _PAIRS:
            out[idx] = (-dx, dy)
            out[_PAIRS[idx]] = (dx, dy)
        else:  # a midline point
            out[idx] = (0.0, dy)
    return out


# Unit landmark moves per AU (multiplied by the clip's apex amplitude in px).
AU_MOVES: dict[int, dict[int, tuple[float, float]]] = {
    1: _sym({21: (0, -1.0), 20: (0, -0.7), 19: (0, -0.3)}),                    # inner brow raiser
    2: _sym({17: (0, -0.9), 18: (0, -1.0), 19: (0, -0.6)}),                    # outer brow raiser
    4: _sym({21: (-0.6, 0.8), 20: (-0.3, 0.7), 19: (0, 0.5), 18: (0, 0.3)}),   # brow lowerer
    5: _sym({37: (0, -0.8), 38: (0, -0.8)}),                                   # upper lid raiser
    6: _sym({40: (0, -0.6), 41: (0, -0.6), 36: (0.1, -0.3), 1: (0, -0.5), 2: (0, -0.5)}),
    7: _sym({40: (0, -0.7), 41: (0, -0.7), 37: (0, 0.3), 38: (0, 0.3)}),       # lid tightener
    9: _sym({31: (0.1, -0.8), 32: (0, -0.6), 33: (0, -0.4), 21: (0, 0.3), 29: (0, -0.2)}),
    10: _sym({49: (0, -0.8), 50: (0, -0.9), 51: (0, -0.8), 61: (0, -0.7), 62: (0, -0.7)}),
    12: _sym({48: (0.6, -0.8), 60: (0.5, -0.6), 49: (0.2, -0.3), 59: (0.2, -0.3)}),
    14: _sym({48: (0.8, 0.0), 60: (0.6, 0.0)}),                                # dimpler
    15: _sym({48: (0, 0.9), 60: (0, 0.7), 59: (0, 0.3)}),                      # lip corner depressor
    17: _sym({58: (0, -0.7), 57: (0, -0.7), 67: (0, -0.5), 66: (0, -0.5), 7: (0, -0.6), 8: (0, -0.6)}),
    24: _sym({50: (0, 0.4), 51: (0, 0.4), 58: (0, -0.4), 57: (0, -0.4), 61: (0, 0.3),
              62: (0, 0.3), 67: (0, -0.3), 66: (0, -0.3), 48: (-0.2, 0)}),     # lip pressor
}

# Canonical face frame at output size S: eye centres at (0.5 -/+ IOD/2, EYE_Y) * S.
CANON_IOD = 0.30
CANON_EYE_Y = 0.40


@dataclass
class SynthConfig:
    """Every knob of the generator; defaults are the calibrated micro setting."""
    subjects: int = 12
    clips_per_subject: int = 10
    seed: int = 0
    mode: str = "micro"  # micro | macro
    size: int = 224
    faces: str | None = None
    first_subject: int | None = None  # default 1 (micro) or 101 (macro: distinct subjects)
    amplitude: tuple[float, float] | None = None  # px at 224 px; default by mode
    frames: tuple[int, int] | None = None  # clip length range; default by mode
    apex_at: tuple[float, float] = (0.3, 0.65)  # apex position as a fraction of the clip
    blink_prob: float = 1 / 3
    drift_px: float = 1.0  # max rigid translation over a clip, px at 224
    rotation_deg: float = 0.2
    flicker: float = 0.02
    noise_sigma: tuple[float, float] = (1.0, 2.5)
    jpeg_quality: int = 90
    workers: int | None = None

    def resolved(self) -> "SynthConfig":
        if self.mode not in ("micro", "macro"):
            raise ValueError(f"mode must be 'micro' or 'macro', got {self.mode!r}")
        cfg = SynthConfig(**asdict(self))
        macro = self.mode == "macro"
        if cfg.first_subject is None:
            cfg.first_subject = 101 if macro else 1
        if cfg.amplitude is None:
            cfg.amplitude = (6.0, 15.0) if macro else (1.0, 3.0)
        if cfg.frames is None:
            cfg.frames = (80, 160) if macro else (40, 100)
        if self.subjects < 1 or self.clips_per_subject < 1:
            raise ValueError("subjects and clips_per_subject must be >= 1")
        return cfg


# ----------------------------------------------------------------------------- faces

@lru_cache(maxsize=8)
def _source_face(path: str | None) -> tuple[np.ndarray, np.ndarray]:
    """RGB image and its 68 landmarks; ``None`` is scikit-image's astronaut."""
    if path is None:
        from skimage import data as skdata
        image = skdata.astronaut()
        name = "skimage astronaut"
    else:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise ValueError(f"{path}: not a readable image")
        image = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        name = path
    boxes = lm.detect_faces(image, upsample=0) or lm.detect_faces(image, upsample=1)
    if not boxes:
        raise ValueError(f"{name}: dlib found no face; give a frontal neutral face photo")
    return image, lm.landmarks(image, boxes[0])


def face_sources(faces: str | os.PathLike | None) -> list[str | None]:
    """The base photos: the files of ``faces`` (sorted) or the astronaut."""
    if faces is None:
        return [None]
    folder = Path(faces)
    if not folder.is_dir():
        raise FileNotFoundError(f"--faces {folder}: not a directory")
    files = sorted(str(p) for p in folder.iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".bmp"))
    if not files:
        raise FileNotFoundError(f"--faces {folder}: no .jpg/.png/.bmp photos in it")
    for f in files:
        _source_face(f)  # fail early, naming the photo without a face
    return files


def _canonical(source: str | None, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Base photo aligned to the canonical frame at ``size``, with its landmarks."""
    image, pts = _source_face(source)
    right, left = lm.eye_centres(pts)
    dst_r = np.array([(0.5 - CANON_IOD / 2) * size, CANON_EYE_Y * size])
    dst_l = np.array([(0.5 + CANON_IOD / 2) * size, CANON_EYE_Y * size])
    src_v, dst_v = left - right, dst_l - dst_r
    scale = np.linalg.norm(dst_v) / np.linalg.norm(src_v)
    angle = np.arctan2(dst_v[1], dst_v[0]) - np.arctan2(src_v[1], src_v[0])
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    t = dst_r - rot @ right
    mat = np.hstack([rot, t[:, None]])
    out = cv2.warpAffine(image, mat, (size, size), flags=cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT)
    return out, pts @ rot.T + t


def _border_anchors(size: int, n: int = 6) -> np.ndarray:
    ticks = np.linspace(0, size - 1, n)
    pts = [(x, y) for x in ticks for y in (0, size - 1)] + [(x, y) for y in ticks[1:-1] for x in (0, size - 1)]
    return np.array(pts, dtype=np.float64)


def _tps_field(points: np.ndarray, moves: np.ndarray, size: int) -> np.ndarray:
    """Dense (size, size, 2) field through ``moves`` at ``points``, zero on the border;
    ``moves`` (n, 2k) gives k fields at once, (size, size, 2k), for one kernel evaluation."""
    anchors = _border_anchors(size)
    ctrl = np.vstack([points, anchors])
    vals = np.vstack([moves, np.zeros((len(anchors), moves.shape[1]))])
    interp = RBFInterpolator(ctrl, vals, kernel="thin_plate_spline")
    ys, xs = np.mgrid[0:size, 0:size]
    grid = np.stack([xs.ravel(), ys.ravel()], axis=1).astype(np.float64)
    return interp(grid).reshape(size, size, moves.shape[1]).astype(np.float32)


def _identity_grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return xs, ys


@dataclass
class Subject:
    number: int
    image: np.ndarray  # neutral face, RGB uint8, size x size
    points: np.ndarray  # its 68 landmarks
    identity: dict = field(default_factory=dict)


def make_subject(number: int, cfg: SynthConfig, sources: list[str | None]) -> Subject:
    """One identity: shape warp + appearance changes of a base photo."""
    rng = np.random.default_rng([cfg.seed, number, 0])
    size = cfg.size
    source = sources[(number - 1) % len(sources)]
    base, pts = _canonical(source, size)
    centre = pts.mean(axis=0)
    new = pts.copy()
    ident = {
        "face_width": float(rng.uniform(0.92, 1.08)),
        "eye_shift": float(rng.uniform(-0.025, 0.025)),
        "nose_scale": float(rng.uniform(0.88, 1.12)),
        "mouth_scale": float(rng.uniform(0.88, 1.12)),
        "jaw_drop": float(rng.uniform(-0.03, 0.03)),
        "brow_lift": float(rng.uniform(-0.015, 0.015)),
    }
    new[lm.JAW, 0] = centre[0] + (pts[lm.JAW, 0] - centre[0]) * ident["face_width"]
    for group, sign in ((lm.RIGHT_EYE + lm.RIGHT_BROW, -1), (lm.LEFT_EYE + lm.LEFT_BROW, 1)):
        new[group, 0] += sign * ident["eye_shift"] * size
    brows = lm.RIGHT_BROW + lm.LEFT_BROW
    new[brows, 1] -= ident["brow_lift"] * size
    for group, key in ((lm.NOSE_BASE, "nose_scale"), (lm.OUTER_MOUTH + lm.INNER_MOUTH, "mouth_scale")):
        c = pts[group].mean(axis=0)
        new[group] = c + (pts[group] - c) * ident[key]
    chin = list(range(5, 12))
    new[chin, 1] += ident["jaw_drop"] * size * np.hanning(len(chin) + 2)[1:-1]
    # backward map: for each output pixel, where to sample the base image
    back = _tps_field(new, pts - new, size)
    xs, ys = _identity_grid(size)
    warped = cv2.remap(base, xs + back[..., 0], ys + back[..., 1], cv2.INTER_CUBIC,
                       borderMode=cv2.BORDER_REFLECT).astype(np.float32) / 255.0
    # appearance
    tone = rng.uniform([0.85, 0.85, 0.8], [1.15, 1.1, 1.1]).astype(np.float32)
    gamma = float(rng.uniform(0.8, 1.25))
    direction = rng.uniform(0, 2 * np.pi)
    grad = float(rng.uniform(-0.25, 0.25))
    ramp = ((xs - size / 2) * np.cos(direction) + (ys - size / 2) * np.sin(direction)) / size
    texture = cv2.GaussianBlur(rng.standard_normal((size, size)).astype(np.float32), (0, 0), 1.2)
    img = np.clip(warped * tone, 0, 1) ** gamma
    img = img * (1 + grad * ramp)[..., None] + 0.02 * texture[..., None]
    ident.update(tone=tone.round(4).tolist(), gamma=round(gamma, 4), light_gradient=round(grad, 4),
                 source="astronaut" if source is None else Path(source).name)
    image = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    return Subject(number, image, new, ident)


# ----------------------------------------------------------------------------- clips

def _profile(n: int, apex: int) -> np.ndarray:
    """Smooth 0 -> 1 -> ~0 amplitude over frames 0..n-1 peaking at ``apex``."""
    t = np.arange(n, dtype=np.float64)
    up = np.sin(0.5 * np.pi * np.clip(t / max(apex, 1), 0, 1)) ** 2
    down = np.cos(0.5 * np.pi * np.clip((t - apex) / max(n - 1 - apex, 1), 0, 1)) ** 2
    return np.where(t <= apex, up, down)


def _blink_field(subject: Subject, size: int) -> np.ndarray:
    pts = subject.points
    moves = np.zeros_like(pts)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        gap = pts[lower, 1] - pts[upper, 1]
        moves[upper, 1] = 0.8 * gap
        moves[lower, 1] = -0.1 * gap
    return _tps_field(pts, moves, size)


def _au_fields(subject: Subject, aus: tuple[int, ...], size: int) -> dict[int, np.ndarray]:
    fields = {}
    for au in aus:
        moves = np.zeros_like(subject.points)
        for idx, (dx, dy) in AU_MOVES[au].items():
            moves[idx] = (dx, dy)
        fields[au] = _tps_field(subject.points, moves, size)
    return fields


def _choose_emotions(rng: np.random.Generator, n: int) -> list[str]:
    names = list(EMOTION_SHARES)
    p = np.array([EMOTION_SHARES[k] for k in names], dtype=np.float64)
    return [names[i] for i in rng.choice(len(names), size=n, p=p / p.sum())]


def _render_subject(args: tuple[int, SynthConfig, list[str | None], str]) -> list[dict]:
    number, cfg, sources, out = args
    cv2.setNumThreads(1)
    size = cfg.size
    scale = size / 224.0
    subject = make_subject(number, cfg, sources)
    rng = np.random.default_rng([cfg.seed, number, 1])
    emotions = _choose_emotions(rng, cfg.clips_per_subject)
    xs, ys = _identity_grid(size)
    centre = subject.points.mean(axis=0)
    blink = None
    episodes = rng.permutation(np.arange(1, 20))[: cfg.clips_per_subject] if cfg.clips_per_subject < 20 \
        else np.arange(1, cfg.clips_per_subject + 1)
    rows = []
    for k, emotion in enumerate(emotions):
        crng = np.random.default_rng([cfg.seed, number, 2, k])
        options = EMOTION_AUS[emotion]
        aus = options[int(crng.integers(len(options)))]
        n = int(crng.integers(cfg.frames[0], cfg.frames[1] + 1))
        apex = int(round(crng.uniform(*cfg.apex_at) * (n - 1)))
        onset_no = int(crng.integers(1, 300))
        amp = float(crng.uniform(*cfg.amplitude))
        weights = {au: float(crng.uniform(0.8, 1.2)) for au in aus}
        fields = _au_fields(subject, aus, size)
        expr = sum(weights[a] * fields[a] for a in aus) * (amp * scale)
        prof = _profile(n, apex)
        nuis: dict = {}
        blink_prof = np.zeros(n)
        if crng.random() < cfg.blink_prob:
            if blink is None:
                blink = _blink_field(subject, size)
            dur = int(crng.integers(20, 31))
            start = int(crng.integers(0, max(n - dur, 1)))
            depth = float(crng.uniform(0.6, 1.0))
            seg = np.sin(np.pi * np.arange(dur) / (dur - 1)) * depth
            blink_prof[start:start + dur] = seg[: n - start]
            nuis["blink"] = {"start": start, "frames": dur, "depth": round(depth, 3)}
        drift_dir = crng.uniform(0, 2 * np.pi)
        drift = float(crng.uniform(0, cfg.drift_px)) * scale
        rot = float(crng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
        flick_amp = float(crng.uniform(0, cfg.flicker))
        flick_hz = float(crng.uniform(1, 10))
        flick_phase = float(crng.uniform(0, 2 * np.pi))
        sigma = float(crng.uniform(*cfg.noise_sigma))
        nuis.update(drift_px=round(drift, 3), drift_dir=round(drift_dir, 3), rotation_deg=round(rot, 3),
                    flicker=round(flick_amp, 4), flicker_hz=round(flick_hz, 2), noise_sigma=round(sigma, 3),
                    jpeg_quality=cfg.jpeg_quality)
        filename = f"EP{int(episodes[k]):02d}_{k % 3 + 1:02d}"
        clip_dir = Path(out) / FRAMES_DIR / f"sub{number:02d}" / filename
        clip_dir.mkdir(parents=True, exist_ok=True)
        base = subject.image.astype(np.float32)
        for i in range(n):
            frac = i / max(n - 1, 1)
            disp = expr * prof[i]
            if blink_prof[i] > 0:
                disp = disp + blink * blink_prof[i]
            theta = np.deg2rad(rot * frac)
            tx, ty = drift * frac * np.cos(drift_dir), drift * frac * np.sin(drift_dir)
            # inverse rigid motion about the face centre, then inverse expression warp
            qx, qy = xs - centre[0] - tx, ys - centre[1] - ty
            c, s = np.cos(theta), np.sin(theta)
            mx = c * qx + s * qy + centre[0] - disp[..., 0]
            my = -s * qx + c * qy + centre[1] - disp[..., 1]
            frame = cv2.remap(base, mx.astype(np.float32), my.astype(np.float32), cv2.INTER_CUBIC,
                              borderMode=cv2.BORDER_REFLECT)
            gain = 1 + flick_amp * np.sin(2 * np.pi * flick_hz * i / FPS + flick_phase)
            noise = crng.standard_normal(frame.shape, dtype=np.float32) * sigma
            frame = np.clip(frame * gain + noise + 0.5, 0, 255).astype(np.uint8)
            ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR),
                                   [cv2.IMWRITE_JPEG_QUALITY, cfg.jpeg_quality])
            if not ok:
                raise RuntimeError(f"JPEG encoding failed for {clip_dir}")
            (clip_dir / f"img{onset_no + i}.jpg").write_bytes(buf.tobytes())
        rows.append({
            "subject": number, "filename": filename, "onset": onset_no, "apex": onset_no + apex,
            "offset": onset_no + n - 1, "aus": list(aus), "emotion": emotion,
            "amplitude_px": round(amp * scale, 4), "au_weights": {str(a): round(w, 3) for a, w in weights.items()},
            "nuisances": nuis, "identity": subject.identity,
        })
    return rows


# ----------------------------------------------------------------------------- output

def _deterministic_xlsx(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` as xlsx whose bytes depend on its content only (fixed timestamps)."""
    import datetime as dt
    from openpyxl import Workbook
    wb = Workbook()
    ws = wb.active
    ws.title = "Sheet1"
    ws.append(list(df.columns))
    for row in df.itertuples(index=False):
        ws.append([v.item() if hasattr(v, "item") else v for v in row])
    fixed = dt.datetime(2014, 5, 8)
    wb.properties.created = fixed
    wb.properties.modified = fixed
    buf = io.BytesIO()
    wb.save(buf)
    buf.seek(0)
    out = io.BytesIO()
    with zipfile.ZipFile(buf) as zin, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in sorted(zin.infolist(), key=lambda i: i.filename):
            data = zin.read(item.filename)
            if item.filename == "docProps/core.xml":  # openpyxl stamps 'modified' at save time
                import re
                data = re.sub(rb"<dcterms:modified[^>]*>[^<]*</dcterms:modified>",
                              b'<dcterms:modified xsi:type="dcterms:W3CDTF">2014-05-08T00:00:00Z</dcterms:modified>', data)
            info = zipfile.ZipInfo(item.filename, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
    path.write_bytes(out.getvalue())


def au_string(aus: list[int]) -> str:
    return "+".join(str(a) for a in aus)


def generate(out: str | os.PathLike, cfg: SynthConfig | None = None, progress: bool = True) -> Path:
    """Generate a SynthME dataset into ``out``; returns ``out`` as a Path."""
    cfg = (cfg or SynthConfig()).resolved()
    out = Path(out)
    if (out / FRAMES_DIR).exists() and any((out / FRAMES_DIR).iterdir()):
        raise FileExistsError(f"{out / FRAMES_DIR} already holds frames; choose an empty OUT")
    out.mkdir(parents=True, exist_ok=True)
    sources = face_sources(cfg.faces)
    numbers = list(range(cfg.first_subject, cfg.first_subject + cfg.subjects))
    jobs = [(n, cfg, sources, str(out)) for n in numbers]
    workers = cfg.workers or min(os.cpu_count() or 1, len(jobs))
    bar = tqdm(total=len(jobs), desc=f"SynthME {cfg.mode}: subjects", disable=not progress)
    results: dict[int, list[dict]] = {}
    if workers <= 1:
        for job in jobs:
            results[job[0]] = _render_subject(job)
            bar.update()
    else:
        # workers start from a fresh server process, never forked: a notebook kernel that has
        # run torch already (threads, OpenMP locks) deadlocks in forked children
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("forkserver")) as pool:
            for job, rows in zip(jobs, pool.map(_render_subject, jobs)):
                results[job[0]] = rows
                bar.update()
    bar.close()
    clips = [r for n in numbers for r in results[n]]
    sheet = pd.DataFrame([{
        "Subject": r["subject"], "Filename": r["filename"], "OnsetFrame": r["onset"],
        "ApexFrame": r["apex"], "OffsetFrame": r["offset"], "Action Units": au_string(r["aus"]),
        "Estimated Emotion": r["emotion"]} for r in clips], columns=CASME2_HEADER)
    _deterministic_xlsx(sheet, out / SHEET_NAME)
    meta = {"generator": "SynthME", "version": GENERATOR_VERSION, "seed": cfg.seed, "size": cfg.size,
            "mode": cfg.mode, "fps": FPS, "synthetic": True,
            "config": {k: v for k, v in asdict(cfg).items() if k != "workers"},  # workers: no effect on output
            "clips": [{k: v for k, v in r.items() if k != "identity"} for r in clips],
            "subjects": {f"sub{n:02d}": results[n][0]["identity"] for n in numbers}}
    (out / META_NAME).write_text(json.dumps(meta, indent=1, sort_keys=True))
    return out


def is_generated(root: str | os.PathLike) -> bool:
    """True when ``root`` holds a complete SynthME set (meta written last)."""
    root = Path(root)
    return (root / META_NAME).is_file() and (root / SHEET_NAME).is_file()


def ensure(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """Return a SynthME root, generating the quick set there when it is absent.

    ``None`` means the default quick location ``outputs/data/synth_quick``. An explicit
    root is returned as it is and never generated into (it may hold a user's real data);
    the loader then reports what is missing there.
    """
    from mer.paths import synth_quick_root
    return Path(root) if root is not None else _generated_at(synth_quick_root(), SynthConfig(), progress)


def ensure_macro(root: str | os.PathLike | None = None, progress: bool = True) -> Path:
    """A SynthME macro set (``mode="macro"``: subjects 101-112, 6-15 px expressions), the
    pre-training source for transfer (p3); ``None`` means ``outputs/data/synth_macro``,
    generated when absent. An explicit root is returned as it is."""
    from mer.paths import outputs_dir
    if root is not None:
        return Path(root)
    return _generated_at(outputs_dir() / "data" / "synth_macro", SynthConfig(mode="macro"), progress)


def _generated_at(root: Path, cfg: SynthConfig, progress: bool) -> Path:
    if not is_generated(root):
        if root.exists():
            import shutil
            shutil.rmtree(root)  # an interrupted generation: start over
        generate(root, cfg, progress=progress)
    return root
