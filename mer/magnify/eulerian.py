"""Classical Eulerian (linear) video magnification (Wu et al., SIGGRAPH 2012) for a frame
pair: the baseline magnifier of p2's Fig. 1.

Each frame is split into a Laplacian pyramid; for two frames the temporal band-pass
signal of a band is its change from the reference frame A to B. Output band = B's band +
(alpha_l - 1) * (B's band - A's band), so a motion d from A to B appears as about
alpha_l * d from A (Oh et al.'s convention for alpha). As in Wu et al., the finest and
the coarsest bands are not amplified, and bands whose representative wavelength
lambda_l (about 2^(l+1) px for band l, finest l = 0) is below the cutoff ``lambda_c`` get
alpha scaled down in proportion (alpha_l = 1 + (alpha - 1) * lambda_l / lambda_c): the
linear approximation holds only while the magnified motion stays small against the
wavelength, and breaking it is what blurs and rings in Fig. 1.
"""
from __future__ import annotations

import cv2
import numpy as np


def _laplacian(img: np.ndarray, levels: int) -> list[np.ndarray]:
    bands, cur = [], img
    for _ in range(levels):
        down = cv2.pyrDown(cur)
        up = cv2.pyrUp(down, dstsize=(cur.shape[1], cur.shape[0]))
        bands.append(cur - up)
        cur = down
    bands.append(cur)  # the low-pass residual
    return bands


def _collapse(bands: list[np.ndarray]) -> np.ndarray:
    cur = bands[-1]
    for band in reversed(bands[:-1]):
        cur = cv2.pyrUp(cur, dstsize=(band.shape[1], band.shape[0])) + band
    return cur


def band_alphas(alpha: float, levels: int, lambda_c: float = 16.0) -> list[float]:
    """The factor per band (finest first, the low-pass residual last)."""
    out = []
    for l in range(levels + 1):
        if l == 0 or l == levels:
            out.append(1.0)  # finest band and low-pass residual: not amplified
            continue
        wavelength = 2.0 ** (l + 1)
        out.append(alpha if wavelength >= lambda_c else 1.0 + (alpha - 1.0) * wavelength / lambda_c)
    return out


def magnify_pair(a: np.ndarray, b: np.ndarray, alpha: float, levels: int | None = None,
                 lambda_c: float = 16.0) -> np.ndarray:
    """Magnify the change from ``a`` to ``b`` (uint8 or float images, same shape) by
    ``alpha``; returns uint8. ``levels``: pyramid bands (default: down to about 8 px)."""
    if a.shape != b.shape:
        raise ValueError(f"frames differ in shape: {a.shape} vs {b.shape}")
    if alpha < 1:
        raise ValueError(f"alpha must be >= 1 (1 returns b), not {alpha}")
    fa, fb = a.astype(np.float32), b.astype(np.float32)
    if levels is None:
        levels = max(1, int(np.log2(min(a.shape[:2]) / 8)))
    la, lb = _laplacian(fa, levels), _laplacian(fb, levels)
    factors = band_alphas(alpha, levels, lambda_c)
    out = [bb + (f - 1.0) * (bb - ba) for ba, bb, f in zip(la, lb, factors)]
    return np.clip(np.round(_collapse(out)), 0, 255).astype(np.uint8)


def eulerian_many(onsets: np.ndarray, apexes: np.ndarray, alpha: float) -> np.ndarray:
    """:func:`magnify_pair` over stacks (N, H, W, 3): the ``magnify`` callable of
    :class:`~mer.preprocess.magnified_regions.MagnifiedRegions`."""
    return np.stack([magnify_pair(a, b, alpha) for a, b in zip(onsets, apexes)])
