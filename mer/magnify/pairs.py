"""Procedural training data for learning-based motion magnification (p2's ST-MEMM).

Oh et al. (ECCV 2018) train on COCO/VOC objects pasted on backgrounds; nothing is
downloaded here, so the scenes are built from the photos scikit-image ships plus
procedural noise:
- background: a crop of a photo (or pure noise texture), sometimes moving as a whole;
- 1-4 foreground objects: textured ellipses/polygons, each moving by a sub-pixel
  amount d (``motion`` px at the output size, random direction);
- frames A (objects at p), C (at p + d), target (at p + alpha * d), rendered on a
  ``supersample``-times larger canvas with integer canvas shifts and area-downsampled,
  so motion of 1/16 px survives; quantised to uint8 after downsampling;
- B = C with a per-object RGB offset (about +-10/255); the target gets the same offsets
  (so the network must take colour from B and motion from A -> B); C keeps A's colours
  (the texture of C matches A, the shape of C matches B: the two consistency losses);
- Poisson-like noise on A, B and C only; the target is clean.
Each sample records its true motion (quantised to the canvas grid), per object.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from mer.paths import content_key
from mer.preprocess.cache import save_npz

PHOTOS_RGB = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
PHOTOS_GREY = ("camera", "coins", "moon", "text", "page", "clock", "grass", "gravel", "brick", "cell")


@dataclass(frozen=True)
class PairConfig:
    size: int = 48                      # output frame side, px
    supersample: int = 16               # canvas = size * supersample
    motion: tuple[float, float] = (0.05, 1.0)   # |d| per object, px at the output size
    alpha: tuple[float, float] = (2.0, 20.0)    # magnification factors, drawn uniformly
    max_magnified: float = 6.0          # alpha * |d| capped at this many px (alpha redrawn lower)
    objects: tuple[int, int] = (1, 4)
    moving_background: float = 0.3      # fraction of samples whose background moves too
    colour_offset: float = 10 / 255
    # Poisson-like noise: photon count at white. 2000-30000 is a grey-level sigma of about
    # 1-4 at mid-grey, the level of SynthME (1-2.5) and of the datasets' frames; 200-2000
    # (sigma 8-25) made quick training slower (params/gam_mm_mer/NOTES.md).
    noise_peak: tuple[float, float] = (2000.0, 30000.0)

    def key(self) -> str:
        return content_key(asdict(self), 12)


@lru_cache(maxsize=None)
def _photo(name: str) -> np.ndarray:
    import skimage.data
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.float32) / 255.0


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side x side RGB texture in [0, 1]: a random photo crop, or smooth procedural noise,
    with fine noise on top so every scale has detail."""
    if rng.random() < 0.75:
        photo = _photo(str(rng.choice(PHOTOS_RGB + PHOTOS_GREY)))
        h, w = photo.shape[:2]
        crop = int(rng.integers(min(h, w) // 4, min(h, w) + 1))
        y, x = int(rng.integers(0, h - crop + 1)), int(rng.integers(0, w - crop + 1))
        tex = cv2.resize(photo[y:y + crop, x:x + crop], (side, side), interpolation=cv2.INTER_LINEAR)
    else:
        cells = int(rng.integers(4, 32))
        tex = cv2.resize(rng.random((cells, cells, 3)).astype(np.float32), (side, side),
                         interpolation=cv2.INTER_CUBIC)
    fine = cv2.resize(rng.normal(0, 0.06, (side // 8 + 1, side // 8 + 1, 3)).astype(np.float32), (side, side),
                      interpolation=cv2.INTER_LINEAR)
    return np.clip(tex + fine, 0, 1).astype(np.float32)


def _mask(rng: np.random.Generator, side: int, margin: int) -> np.ndarray:
    m = np.zeros((side, side), np.uint8)
    lo, hi = side // 10, side // 3
    margin = min(margin, side // 2 - lo - 1)  # tiny frames: the object may leave the canvas a little
    cx, cy = (int(rng.integers(margin + lo, side - margin - lo)) for _ in range(2))
    if rng.random() < 0.5:
        axes = (int(rng.integers(lo, hi)), int(rng.integers(lo, hi)))
        cv2.ellipse(m, (cx, cy), axes, float(rng.uniform(0, 180)), 0, 360, 1, -1)
    else:
        n = int(rng.integers(3, 8))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = rng.uniform(lo, hi, n)
        pts = np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1).astype(np.int32)
        cv2.fillPoly(m, [pts], 1)
    return m.astype(np.float32)


def _shift(img: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Integer translation with zeros coming in (exact: no resampling)."""
    h, w = img.shape[:2]
    out = np.zeros_like(img)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = img[ys, xs]
    return out


def _noisy(rng: np.random.Generator, img: np.ndarray, peak: float) -> np.ndarray:
    return np.clip(rng.poisson(np.clip(img, 0, 1) * peak) / peak, 0, 1)


def _u8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.round(img * 255), 0, 255).astype(np.uint8)


def make_pair(rng: np.random.Generator, cfg: PairConfig = PairConfig()) -> dict:
    """One training sample: uint8 frames A, B, C, target (size x size x 3), alpha, and the
    true motion: ``motion`` (objects, 2) px (dx, dy) from A to C, ``bg_motion`` (2,), and
    ``masks`` (objects, size, size) float coverage of each object in A."""
    ss, side = cfg.supersample, cfg.size * cfg.supersample
    n_obj = int(rng.integers(cfg.objects[0], cfg.objects[1] + 1))
    # motion per object (canvas px, integers) and alpha, with alpha * |d| capped
    mags = rng.uniform(*cfg.motion, n_obj)
    alpha = float(rng.uniform(*cfg.alpha))
    alpha = min(alpha, cfg.max_magnified / float(mags.max()))
    angles = rng.uniform(0, 2 * np.pi, n_obj)
    d_canvas = np.stack([np.round(mags * np.cos(angles) * ss), np.round(mags * np.sin(angles) * ss)], 1).astype(int)
    bg_d = np.zeros(2, int)
    if rng.random() < cfg.moving_background:
        m, a = rng.uniform(*cfg.motion), rng.uniform(0, 2 * np.pi)
        bg_d = np.round(np.array([m * np.cos(a), m * np.sin(a)]) * ss).astype(int)
    reach = int(np.ceil(alpha * max(np.abs(d_canvas).max(), np.abs(bg_d).max(), 1))) + ss
    bg = _texture(rng, side + 2 * reach)
    objs = [(_texture(rng, side), _mask(rng, side, reach)) for _ in range(n_obj)]
    offsets = rng.uniform(-cfg.colour_offset, cfg.colour_offset, (n_obj + 1, 3)).astype(np.float32)

    def render(scale: float, colour: bool) -> np.ndarray:
        bx, by = np.round(bg_d * scale).astype(int)
        canvas = bg[reach + by:reach + by + side, reach + bx:reach + bx + side].copy()
        if colour:
            canvas += offsets[0]
        for i, (tex, mask) in enumerate(objs):
            dx, dy = np.round(d_canvas[i] * scale).astype(int)
            t = tex + offsets[i + 1] if colour else tex
            m = _shift(mask, dx, dy)[..., None]
            canvas = canvas * (1 - m) + _shift(t * mask[..., None], dx, dy)
        return cv2.resize(canvas, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA)

    a_img, c_img = render(0.0, False), render(1.0, False)
    b_img, target = render(1.0, True), render(alpha, True)
    peak = float(rng.uniform(*cfg.noise_peak))
    masks = np.stack([cv2.resize(mk, (cfg.size, cfg.size), interpolation=cv2.INTER_AREA) for _, mk in objs])
    return {"A": _u8(_noisy(rng, a_img, peak)), "B": _u8(_noisy(rng, b_img, peak)),
            "C": _u8(_noisy(rng, c_img, peak)), "target": _u8(target), "alpha": np.float32(alpha),
            "motion": (d_canvas / ss).astype(np.float32), "bg_motion": (bg_d / ss).astype(np.float32),
            "masks": masks.astype(np.float32)}


def make_pairs(n: int, seed: int, cfg: PairConfig = PairConfig(), progress: bool = True) -> dict:
    """``n`` samples stacked: A, B, C, target (n, size, size, 3) uint8; alpha (n,)."""
    from mer.progress import tqdm
    keys = ("A", "B", "C", "target")
    out = {k: np.empty((n, cfg.size, cfg.size, 3), np.uint8) for k in keys}
    out["alpha"] = np.empty(n, np.float32)
    for i in tqdm(range(n), desc="procedural pairs", disable=not progress):
        s = make_pair(np.random.default_rng([seed, i]), cfg)
        for k in keys:
            out[k][i] = s[k]
        out["alpha"][i] = s["alpha"]
    return out


def cached_pairs(n: int, seed: int, cfg: PairConfig, cache_dir: str | Path, progress: bool = True) -> dict:
    """:func:`make_pairs` through an .npz cache keyed by (config, n, seed)."""
    return cached_npz(Path(cache_dir) / f"pairs_{cfg.key()}_{n}_{seed}.npz", lambda: make_pairs(n, seed, cfg, progress))


def cached_npz(path: Path, make, what: str = "pairs") -> dict:
    """The arrays in ``path`` when it is readable, else ``make()``'s, saved there first."""
    if path.is_file():
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            print(f"[{what}] {path} unreadable ({e}); generating again")
    data = make()
    save_npz(path, data)
    return data
