"""Magnification pairs on faces, with exact targets, for training and checking ST-MEMM.

SynthME moves a face photo by a known dense displacement field (a thin-plate spline through
moved landmarks, :mod:`mer.data.synth`). The same machinery renders exact magnification
targets: frame A is the neutral face, C the face moved by the field d, the target the face
moved by alpha * d; B is C with a colour offset that the target shares (as in
:mod:`mer.magnify.pairs`), and A, B, C get sensor noise while the target stays clean.

- Identities: :func:`mer.data.synth.make_subject` with the generator seed ``identity_seed``
  (training pairs: 1000 + seed; held-out check pairs: 2000 + seed). No evaluated SynthME set
  uses these seeds (the quick set uses seed 0), so no recognition subject is ever a
  magnifier training face. Every identity derives from one photo (scikit-image's astronaut)
  unless ``faces`` names a folder of the user's own neutral photos (SynthME's ``--faces``).
- Expressions: an emotion's AU set as in SynthME (with the same landmark moves), weights
  0.8-1.2, an apex amplitude of ``amplitude`` px at 224 px, plus in a third of the pairs a
  small rigid shift of the whole head; alpha * max |d| capped at ``max_magnified`` px.
- Geometry: faces are rendered in SynthME's canonical frame, which is the aligned crop of
  :mod:`mer.preprocess.faces` (eyes level at 40% height, 30% inter-ocular distance), at
  ``supersample`` times the output size, then area-downsampled, so sub-pixel motion survives.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from mer.progress import tqdm

from mer.data import synth
from mer.magnify.pairs import _noisy, _u8, cached_npz
from mer.paths import content_key

TRAIN_SEED, CHECK_SEED = 1000, 2000  # identity generator seeds: + the pairs' seed


@dataclass(frozen=True)
class FacePairConfig:
    size: int = 64                       # output frame side, px (the aligned face crop)
    crop: int | None = None              # > 0: a random crop of this side from each frame (training)
    supersample: int = 4                 # rendered at size * supersample, then area-downsampled
    identities: int = 40                 # distinct faces; pairs cycle through them
    amplitude: tuple[float, float] = (0.5, 3.5)  # apex amplitude, px at 224 px (SynthME: 1-3)
    alpha: tuple[float, float] = (2.0, 20.0)
    max_magnified: float = 10.0          # alpha * max |d| capped at this many px at the output size (GAM-MER
                                         #   magnifies SynthME's faces by 8-15 at training: up to ~13 px)
    rigid_share: float = 1 / 3           # pairs whose head also shifts a little (up to rigid_px)
    rigid_px: float = 1.0                # px at 224 px
    colour_offset: float = 10 / 255
    noise_peak: tuple[float, float] = (2000.0, 30000.0)  # as the procedural pairs
    faces: str | None = None             # folder of neutral face photos (None: the astronaut)

    def key(self) -> str:
        return content_key({**asdict(self), "generator": synth.GENERATOR_VERSION}, 12)


class _Identity:
    """One face at the render size with its AU displacement fields (computed once)."""

    def __init__(self, number: int, seed: int, side: int, sources: list[str | None]):
        cfg = synth.SynthConfig(seed=seed, size=side, faces=None)
        self.subject = synth.make_subject(number, cfg, sources)
        self.image = self.subject.image.astype(np.float32)
        self.fields = _au_fields(self.subject.points, side)
        self.xs, self.ys = synth._identity_grid(side)

    def warp(self, disp: np.ndarray) -> np.ndarray:
        """The face moved by ``disp`` (forward displacement, render px), as SynthME renders it."""
        return cv2.remap(self.image, self.xs - disp[..., 0], self.ys - disp[..., 1], cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT)


def _au_fields(points: np.ndarray, side: int) -> dict[int, np.ndarray]:
    """Every AU's unit displacement field for a face's landmarks, as SynthME draws them
    (:func:`mer.data.synth._au_fields`), all AUs through one thin-plate spline evaluation."""
    aus = list(synth.AU_MOVES)
    moves = np.zeros((len(points), 2 * len(aus)))
    for k, au in enumerate(aus):
        for idx, (dx, dy) in synth.AU_MOVES[au].items():
            moves[idx, 2 * k:2 * k + 2] = (dx, dy)
    fields = synth._tps_field(points, moves, side)
    return {au: fields[..., 2 * k:2 * k + 2] for k, au in enumerate(aus)}


def _downsample(img: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)


def make_face_pairs(n: int, seed: int, cfg: FacePairConfig = FacePairConfig(), identity_seed: int | None = None,
                    clean: bool = False, progress: bool = True) -> dict:
    """``n`` pairs: A, B, C, target (n, s, s, 3) uint8 with s = ``crop`` or ``size``, alpha (n,),
    and ``disp`` (n, s, s, 2) float32, the true displacement A -> C in output px (the target
    is A moved by alpha * disp). Identities come from generator seed ``identity_seed``
    (default :data:`TRAIN_SEED` + ``seed``). ``clean``: also ``A_clean``, frame A before
    its sensor noise."""
    side = cfg.size * cfg.supersample
    sources = synth.face_sources(cfg.faces)
    id_seed = TRAIN_SEED + seed if identity_seed is None else identity_seed
    out_side = cfg.crop or cfg.size
    keys = ("A", "B", "C", "target")
    out = {k: np.empty((n, out_side, out_side, 3), np.uint8) for k in keys}
    out["alpha"] = np.empty(n, np.float32)
    out["disp"] = np.empty((n, out_side, out_side, 2), np.float32)
    if clean:
        out["A_clean"] = np.empty((n, out_side, out_side, 3), np.uint8)
    identities: dict[int, _Identity] = {}
    emotions = list(synth.EMOTION_AUS)
    for i in tqdm(range(n), desc="face pairs", disable=not progress):
        rng = np.random.default_rng([id_seed, 7, i])
        number = i % cfg.identities + 1
        if number not in identities:
            identities[number] = _Identity(number, id_seed, side, sources)
        face = identities[number]
        options = synth.EMOTION_AUS[emotions[int(rng.integers(len(emotions)))]]
        aus = options[int(rng.integers(len(options)))]
        amp = rng.uniform(*cfg.amplitude) * side / 224.0
        disp = sum(rng.uniform(0.8, 1.2) * face.fields[a] for a in aus) * amp
        if rng.random() < cfg.rigid_share:
            angle = rng.uniform(0, 2 * np.pi)
            disp = disp + (rng.uniform(0, cfg.rigid_px) * side / 224.0) * np.array([np.cos(angle), np.sin(angle)],
                                                                                  np.float32)
        peak_px = float(np.abs(disp).max()) / cfg.supersample
        alpha = min(float(rng.uniform(*cfg.alpha)), cfg.max_magnified / max(peak_px, 1e-6))
        frames = {"A": face.warp(disp * 0), "C": face.warp(disp), "target": face.warp(disp * alpha)}
        frames = {k: _downsample(v, cfg.size) / 255.0 for k, v in frames.items()}
        offset = rng.uniform(-cfg.colour_offset, cfg.colour_offset, 3).astype(np.float32)
        frames["B"] = frames["C"] + offset
        frames["target"] = frames["target"] + offset
        small = _downsample(disp, cfg.size) / cfg.supersample
        y0 = x0 = 0
        if cfg.crop:
            y0, x0 = (int(rng.integers(0, cfg.size - cfg.crop + 1)) for _ in range(2))
        cut = lambda a: a[y0:y0 + out_side, x0:x0 + out_side]
        peak = float(rng.uniform(*cfg.noise_peak))
        for k in keys:
            img = frames[k] if k == "target" else _noisy(rng, frames[k], peak)
            out[k][i] = cut(_u8(img))
        if clean:
            out["A_clean"][i] = cut(_u8(frames["A"]))
        out["alpha"][i] = alpha
        out["disp"][i] = cut(small)
    return out


def cached_face_pairs(n: int, seed: int, cfg: FacePairConfig, cache_dir: str | Path, progress: bool = True) -> dict:
    """:func:`make_face_pairs` through an .npz cache keyed by (config, n, seed)."""
    return cached_npz(Path(cache_dir) / f"face_pairs_{cfg.key()}_{n}_{seed}.npz",
                      lambda: make_face_pairs(n, seed, cfg, progress=progress), "face pairs")


def check_face_pairs(n: int, seed: int = 0, alpha: float = 5.0, cfg: FacePairConfig = FacePairConfig(),
                     progress: bool = False) -> dict:
    """Held-out face pairs at one ``alpha`` (identities of seed :data:`CHECK_SEED` + ``seed``,
    never a training face): full aligned frames with SynthME's amplitudes (1-3 px at 224 px),
    the target at exactly ``alpha`` * d, no colour offset between A and B (only motion
    differs), sensor noise on A and B, and ``A_clean``."""
    from dataclasses import replace
    fixed = replace(cfg, crop=None, alpha=(alpha, alpha), max_magnified=1e9, amplitude=(1.0, 3.0), colour_offset=0.0)
    return make_face_pairs(n, seed, fixed, identity_seed=CHECK_SEED + seed, clean=True, progress=progress)
