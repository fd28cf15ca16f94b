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


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(x, (0, 0), sigma) if sigma > 0 else x


def fitted_share(a_clean: np.ndarray, output: np.ndarray, disp: np.ndarray, region: np.ndarray,
                 shares=np.linspace(0.0, 2.0, 101), smooth: float = 1.0) -> float:
    """The share k of the true motion ``disp`` (output px) whose rendering of ``a_clean``
    (A warped by k * disp) best matches ``output`` over ``region`` (least squares after a
    Gaussian of ``smooth`` px): how much of the asked motion the output carries, read off the
    whole moving face rather than an optical-flow estimate (which on smooth skin falls
    short even on the exact target)."""
    h, w = a_clean.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a32, out = a_clean.astype(np.float32), _smooth(output.astype(np.float32), smooth)
    disp = disp.astype(np.float32)
    errors = [float(((out - _smooth(cv2.remap(a32, xs - np.float32(k) * disp[..., 0], ys - np.float32(k) * disp[..., 1], cv2.INTER_CUBIC,
                                               borderMode=cv2.BORDER_REFLECT), smooth))[region] ** 2).mean())
              for k in shares]
    return float(shares[int(np.argmin(errors))])


def face_check(magnifiers: dict[str, Callable[[np.ndarray, np.ndarray, float], np.ndarray]], n: int, seed: int = 0,
               alphas=(5.0, 10.0), smooth: float = 1.0, method: str = "farneback") -> pd.DataFrame:
    """Each magnifier on ``n`` held-out face pairs per alpha (:func:`mer.magnify.face_pairs.check_face_pairs`:
    identities no training pair uses), against the exact target, and the row "true target"
    (the target measured the same way: the floor of each measure):

    - ``cosine``: median over pairs of the cosine between the magnified change (output - A)
      and the true magnified change (target - A), A taken before its sensor noise and both
      smoothed by a Gaussian of ``smooth`` px (noise is not motion), over the pixels that
      move (|alpha * d| >= 0.1 px);
    - ``median ratio``: median over pairs of :func:`fitted_share` of alpha * d (1: the output
      moves the face exactly alpha times as far as B does), over the moving pixels;
    - ``within 25%``: the share of pairs whose ratio is within 25% of 1;
    - ``flow ratio``: median of the optical-flow motion A -> output projected on alpha * d,
      over the pixels moving at least half the pair's most (the procedural check's measure;
      on faces the estimator itself falls short, see the true target's row)."""
    from mer.magnify.face_pairs import check_face_pairs
    rows = []
    for alpha in alphas:
        pairs = check_face_pairs(n, seed, alpha)
        named = {**magnifiers, "true target": None}
        for name, fn in named.items():
            out = pairs["target"] if fn is None else fn(pairs["A"], pairs["B"], alpha)
            cos, ratios, flows = [], [], []
            for a, a_clean, o, t, d in zip(pairs["A"], pairs["A_clean"], out, pairs["target"], pairs["disp"]):
                move = np.linalg.norm(d, axis=-1) * alpha
                a32 = a_clean.astype(np.float32)
                change, true = _smooth(o.astype(np.float32) - a32, smooth), _smooth(t.astype(np.float32) - a32, smooth)
                sel = move >= 0.1
                c, tr = change[sel].ravel(), true[sel].ravel()
                cos.append(float(c @ tr / (np.linalg.norm(c) * np.linalg.norm(tr) + 1e-8)))
                ratios.append(fitted_share(a_clean, o, d * alpha, sel, smooth=smooth))
                strong = move >= 0.5 * move.max()
                ad = d[strong] * alpha
                flows.append(float((optical_flow(a, o, method)[strong] * ad).sum() / ((ad * ad).sum() + 1e-8)))
            r = np.array(ratios)
            rows.append({"magnifier": name, "alpha": float(alpha), "pairs": len(r),
                         "cosine": float(np.median(cos)), "median ratio": float(np.median(r)),
                         "within 25%": float(np.mean(np.abs(r - 1) <= 0.25)), "flow ratio": float(np.median(flows))})
    return pd.DataFrame(rows)


def face_verdict(check: pd.DataFrame, name: str, *, source: str, faces: str | None = None, cosine: float = 0.90,
                 tolerance: float = 0.25) -> tuple[bool, str]:
    """Whether every ``name`` row of a :func:`face_check` table has a median cosine of at
    least ``cosine`` and a median ratio within ``tolerance`` of 1, and the sentence saying
    so, with where the check's faces come from (``faces``: the user's photo folder, or None)."""
    rows = check[check["magnifier"] == name]
    met = bool(((rows["cosine"] >= cosine) & ((rows["median ratio"] - 1).abs() <= tolerance)).all())
    parts = ", ".join(f"cosine {r['cosine']:.2f} and ratio {r['median ratio']:.2f} at alpha {r['alpha']:g}"
                      for _, r in rows.iterrows())
    origin = (f"identities derived from the photos in {faces}" if faces else
              "identities all derived from one photo (scikit-image's astronaut): new faces of the same person; "
              "give `faces` (a folder of neutral photos) to check on other people")
    return met, (f"{name} ({source}) on held-out faces: {parts}; the target (cosine >= {cosine:.2f}, ratio within "
                 f"{tolerance:.0%}) is {'met' if met else 'NOT met'}. The check's faces: {origin}.")
