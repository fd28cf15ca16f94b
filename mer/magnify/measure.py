"""How far a magnifier moved things: optical flow from frame A to its output, over the
interior of each moving object of a procedural pair, against the known alpha * d.

Farneback flow is the estimator here: on these sub-pixel motions TV-L1's regularisation
shrinks them (A -> C ratios about 0.7 where Farneback gives about 1.0), so the check
would measure the estimator instead of the magnifier. :func:`compare_magnifiers` also
reports the same measurement on the true target, the estimator's own error."""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np
import pandas as pd

from mer.magnify.pairs import PairConfig, make_pair
from mer.preprocess.flow import optical_flow


def object_motion(a: np.ndarray, b: np.ndarray, mask: np.ndarray, method: str = "farneback") -> np.ndarray | None:
    """Median flow (dx, dy) from ``a`` to ``b`` over the eroded interior of ``mask``
    (coverage in [0, 1]); None when fewer than 30 interior pixels remain."""
    inner = cv2.erode((mask > 0.99).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if inner.sum() < 30:
        return None
    return np.median(optical_flow(a, b, method)[inner], axis=0)


def check_pairs(n: int, seed: int, size: int = 64, motion: tuple[float, float] = (0.2, 0.5),
                alpha: float = 1.0, supersample: int = 8) -> list[dict]:
    """Held-out evaluation pairs: one object on a static background, motion ``motion`` px;
    the target rendered at ``alpha`` * d (the canvas margin grows with ``alpha``, so the
    rendered scenes differ between alphas). Motions are whole canvas pixels, so the known d
    is exact at any ``supersample``; 8 renders a 64 px pair 7x faster than 16."""
    cfg = PairConfig(size=size, supersample=supersample, objects=(1, 1), moving_background=0.0, motion=motion,
                     alpha=(alpha, alpha), max_magnified=1e9)
    return [make_pair(np.random.default_rng([seed, 7919, i]), cfg) for i in range(n)]


def magnification_check(magnify: Callable[[np.ndarray, np.ndarray, float], np.ndarray], pairs: list[dict],
                        alphas=(5.0, 10.0), method: str = "farneback") -> pd.DataFrame:
    """Per alpha: the median over pairs of (measured motion A -> output) / (alpha * d),
    projected on d's direction, and the share of pairs within 25%. ``magnify(a, b, alpha)``
    gets A and B (B = A's scene moved by d, with colour offsets) and returns the output."""
    rows = []
    for alpha in alphas:
        ratios = []
        for p in pairs:
            true = p["motion"][0] * alpha
            est = object_motion(p["A"], magnify(p["A"], p["B"], alpha), p["masks"][0], method)
            if est is not None and float(true @ true) > 0:
                ratios.append(float(est @ true / (true @ true)))
        r = np.array(ratios)
        rows.append({"alpha": alpha, "pairs": len(r), "median ratio": float(np.median(r)) if len(r) else np.nan,
                     "within 25%": float(np.mean(np.abs(r - 1) <= 0.25)) if len(r) else np.nan})
    return pd.DataFrame(rows)


def compare_magnifiers(magnifiers: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]], n: int,
                       seed: int, alphas=(5.0, 10.0), method: str = "farneback") -> pd.DataFrame:
    """:func:`magnification_check` of each named magnifier on ``n`` held-out pairs, plus the
    row "true target": the pairs' own rendering at alpha * d, measured the same way (the
    flow estimator's error, the floor of this check)."""
    tables = []
    for alpha in alphas:
        pairs = check_pairs(n, seed, alpha=alpha)  # every magnifier sees the same pairs at this alpha
        targets = {id(p["A"]): p["target"] for p in pairs}
        named = {**magnifiers, "true target": lambda a, b, _alpha: targets[id(a)]}
        for name, fn in named.items():
            tables.append(magnification_check(fn, pairs, (alpha,), method).assign(magnifier=name))
    out = pd.concat(tables, ignore_index=True)
    return out[["magnifier", "alpha", "pairs", "median ratio", "within 25%"]]


def identity_error(magnify: Callable[[np.ndarray, np.ndarray, float], np.ndarray], n: int, seed: int = 1) -> float:
    """Mean |output - B| in grey levels (of 255) at alpha = 1, where a magnifier should
    return B unchanged, over the stacked frames of ``check_pairs(n, seed)``."""
    pairs = check_pairs(n, seed=seed)
    a, b = np.stack([p["A"] for p in pairs]), np.stack([p["B"] for p in pairs])
    return float(np.abs(magnify(a, b, 1.0).astype(np.float32) - b).mean())


def verdict(check: pd.DataFrame, name: str = "ST-MEMM", *, source: str) -> tuple[bool, str]:
    """Whether every ``name`` row of a :func:`compare_magnifiers` table has a median ratio
    within 25% of 1, and the sentence that says so (with the Eulerian rows' ratios);
    ``source`` names where the magnifier came from (its config, or "loaded")."""
    rows = check[check["magnifier"] == name]
    met = bool((np.abs(rows["median ratio"] - 1) <= 0.25).all())
    ratios = ", ".join(f"{r['median ratio']:.2f} at alpha {r['alpha']:g}" for _, r in rows.iterrows())
    eu = ", ".join(f"{r['median ratio']:.2f}" for _, r in check[check["magnifier"] == "Eulerian"].iterrows())
    text = (f"{name} ({source}) moves objects by {ratios} of alpha * d (Eulerian: {eu}): the 25% target is "
            + ("met." if met else "NOT met; its magnified frames are weaker than asked."))
    return met, text


def change_fidelity(raw_apex: np.ndarray, onset: np.ndarray, magnified_apex: np.ndarray, alpha: float) -> dict:
    """How well a magnified apex keeps the true change on real items: per item (the first
    axis; e.g. region patches (N, R, P, P, C)), the cosine between the magnified change
    (magnified apex - onset) and the true change (raw apex - onset), and the ratio of their
    norms divided by ``alpha`` (1: magnified exactly ``alpha`` times). Returns the medians
    and the cosine's 10th percentile."""
    raw, on = raw_apex.astype(np.float32), onset.astype(np.float32)
    true_change = (raw - on).reshape(len(raw), -1)
    change = (magnified_apex.astype(np.float32) - on).reshape(len(raw), -1)
    cos = (change * true_change).sum(1) / (np.linalg.norm(change, axis=1) * np.linalg.norm(true_change, axis=1) + 1e-8)
    gain = np.linalg.norm(change, axis=1) / (np.linalg.norm(true_change, axis=1) + 1e-8) / float(alpha)
    return {"alpha": float(alpha), "cosine, median": float(np.median(cos)),
            "cosine, 10th percentile": float(np.percentile(cos, 10)), "gain / alpha, median": float(np.median(gain))}
