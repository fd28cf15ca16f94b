"""p2's magnification pieces: procedural pairs, the Eulerian baseline, the motion check."""
import cv2
import numpy as np
import pytest

from mer.magnify.eulerian import band_alphas, magnify_pair
from mer.magnify.measure import check_pairs, magnification_check, object_motion
from mer.magnify.pairs import PairConfig, cached_pairs, make_pair


def test_pairs_carry_the_requested_motion_measured_by_flow():
    cfg = PairConfig(size=64, objects=(1, 1), moving_background=0.0, motion=(0.3, 0.6), alpha=(4.0, 8.0),
                     supersample=8)
    to_c, to_target = [], []
    for i in range(10):
        s = make_pair(np.random.default_rng([3, i]), cfg)
        d = s["motion"][0]
        assert 0.3 - 1 / 16 <= np.hypot(*d) <= 0.6 + 1 / 16  # quantised to the canvas grid
        for key, scale, out in (("C", 1.0, to_c), ("target", float(s["alpha"]), to_target)):
            est = object_motion(s["A"], s[key], s["masks"][0])
            if est is not None:
                true = d * scale
                out.append(float(est @ true / (true @ true)))
    assert len(to_c) >= 6 and abs(np.median(to_c) - 1) < 0.15
    assert abs(np.median(to_target) - 1) < 0.15


def test_pair_frames_colours_noise_and_determinism():
    cfg = PairConfig(size=32, supersample=8, noise_peak=(1e7, 1e7))  # noise negligible
    s = make_pair(np.random.default_rng(1), cfg)
    assert all(s[k].shape == (32, 32, 3) and s[k].dtype == np.uint8 for k in ("A", "B", "C", "target"))
    assert s["alpha"] * np.abs(s["motion"]).max() <= cfg.max_magnified + 1e-6
    # B is C with colour offsets of at most 10/255 (one per object and the background)
    diff = s["B"].astype(int) - s["C"].astype(int)
    assert np.abs(diff).max() <= 11 and np.abs(diff).mean() > 1
    again = make_pair(np.random.default_rng(1), cfg)
    assert all(np.array_equal(s[k], again[k]) for k in ("A", "B", "C", "target"))
    assert not np.array_equal(make_pair(np.random.default_rng(2), cfg)["A"], s["A"])
    noisy = make_pair(np.random.default_rng(1), PairConfig(size=32, supersample=8, noise_peak=(50.0, 50.0)))
    assert np.array_equal(noisy["target"], s["target"]) and not np.array_equal(noisy["A"], s["A"])


def test_cached_pairs_reuse_the_file(tmp_path):
    cfg = PairConfig(size=16, supersample=4)
    first = cached_pairs(3, 0, cfg, tmp_path, progress=False)
    files = list(tmp_path.glob("pairs_*.npz"))
    assert len(files) == 1 and first["A"].shape == (3, 16, 16, 3) and first["alpha"].shape == (3,)
    assert np.array_equal(cached_pairs(3, 0, cfg, tmp_path, progress=False)["B"], first["B"])
    files[0].write_bytes(b"broken")
    assert np.array_equal(cached_pairs(3, 0, cfg, tmp_path, progress=False)["B"], first["B"])  # regenerated


def test_eulerian_band_factors_and_identity():
    assert band_alphas(10.0, 4, lambda_c=16) == [1.0, 1 + 9 * 4 / 16, 1 + 9 * 8 / 16, 10.0, 1.0]
    rng = np.random.default_rng(0)
    a = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + 3, 0, 255).astype(np.uint8)
    assert np.abs(magnify_pair(a, b, 1.0).astype(int) - b).max() <= 1
    with pytest.raises(ValueError, match="alpha must be >= 1"):
        magnify_pair(a, b, 0.5)
    with pytest.raises(ValueError, match="differ in shape"):
        magnify_pair(a, b[:16], 2.0)


def test_eulerian_magnifies_smooth_motion_where_the_linear_model_holds():
    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.random((96, 96)).astype(np.float32), (0, 0), 5)
    big = (big - big.min()) / (big.max() - big.min()) * 200 + 20
    shift = lambda img, dx: cv2.warpAffine(img, np.float32([[1, 0, dx], [0, 1, 0]]), (96, 96),
                                           flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    a = np.repeat(np.round(big)[..., None], 3, 2).astype(np.uint8)
    b = np.repeat(np.round(shift(big, 0.2))[..., None], 3, 2).astype(np.uint8)
    mask = np.zeros((96, 96), np.float32)
    mask[24:72, 24:72] = 1
    out = magnify_pair(a, b, 5.0, lambda_c=4)
    est = object_motion(a, out, mask)
    assert abs(est[0] / 1.0 - 1) < 0.25 and abs(est[1]) < 0.2  # 5 x 0.2 px


def test_magnification_check_scores_the_identity_and_a_perfect_magnifier():
    pairs = check_pairs(8, 0, size=64)
    ident = magnification_check(lambda a, b, alpha: b, pairs, alphas=(1.0, 4.0))
    assert ident.loc[0, "median ratio"] == pytest.approx(1.0, abs=0.1)
    assert ident.loc[1, "median ratio"] == pytest.approx(0.25, abs=0.05)  # moved d, asked for 4d
    assert ident.loc[0, "pairs"] >= 5
