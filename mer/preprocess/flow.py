"""Optical flow between two frames and optical strain.

TV-L1 (OpenCV contrib ``cv2.optflow``) by default, Farneback as the option. MER papers
feed u, v and the optical strain as three channels.
"""
from __future__ import annotations

import cv2
import numpy as np

METHODS = ("tvl1", "farneback")


def _grey(img: np.ndarray) -> np.ndarray:
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    if img.dtype != np.uint8:
        img = np.clip(img, 0, 255).astype(np.uint8)
    return img


def optical_flow(a: np.ndarray, b: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Flow (H, W, 2) float32 from frame ``a`` to frame ``b``: b(x + flow(x)) ~ a(x)."""
    ga, gb = _grey(a), _grey(b)
    if ga.shape != gb.shape:
        raise ValueError(f"frames differ in shape: {ga.shape} vs {gb.shape}")
    if method == "tvl1":
        return cv2.optflow.DualTVL1OpticalFlow_create().calc(ga, gb, None)
    if method == "farneback":
        return cv2.calcOpticalFlowFarneback(ga, gb, None, pyr_scale=0.5, levels=3, winsize=9, iterations=5,
                                            poly_n=5, poly_sigma=1.1, flags=0)
    raise ValueError(f"unknown flow method {method!r}; known: {METHODS}")


def optical_strain(flow: np.ndarray) -> np.ndarray:
    """Magnitude of the flow's symmetric gradient: sqrt(ux^2 + vy^2 + (uy + vx)^2 / 2)."""
    u, v = flow[..., 0], flow[..., 1]
    uy, ux = np.gradient(u)
    vy, vx = np.gradient(v)
    return np.sqrt(ux ** 2 + vy ** 2 + 0.5 * (uy + vx) ** 2).astype(np.float32)


def flow_uvs(a: np.ndarray, b: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """(3, H, W) float32: u, v and optical strain."""
    f = optical_flow(a, b, method)
    return np.stack([f[..., 0], f[..., 1], optical_strain(f)]).astype(np.float32)
