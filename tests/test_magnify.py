"""p2's magnification pieces: procedural pairs, the Eulerian baseline, the motion check."""
import cv2
import numpy as np
import pytest
import torch

from mer.magnify.eulerian import band_alphas, magnify_pair
from mer.magnify.measure import check_pairs, magnification_check, object_motion
from mer.magnify.pairs import PairConfig, cached_pairs, make_pair, make_pairs


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


def test_compare_magnifiers_reports_the_estimator_floor():
    from mer.magnify.measure import compare_magnifiers
    t = compare_magnifiers({"identity": lambda a, b, alpha: b}, 8, 0, alphas=(4.0,)).set_index("magnifier")
    assert t.loc["true target", "median ratio"] == pytest.approx(1.0, abs=0.1)  # flow recovers alpha * d
    assert t.loc["identity", "median ratio"] == pytest.approx(0.25, abs=0.05)
    assert t.loc["identity", "within 25%"] == 0.0


def _frames(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(n, 3, size, size, generator=g) * 2 - 1 for _ in range(4)]


def test_stmemm_shapes_and_alpha_one_keeps_b_shape():
    from mer.magnify.stmemm import STMEMM
    torch.manual_seed(0)
    m = STMEMM("quick").eval()
    a, b, _, _ = _frames(size=40)  # 20 x 20 at half size: not a multiple of the window
    with torch.no_grad():
        tex, shape = m.encode(a)
        assert tex.shape == (2, 24, 10, 10) and shape.shape == (2, 24, 20, 20)
        assert m(a, b, 5.0).shape == (2, 3, 40, 40)
        assert m(a, b, torch.tensor([2.0, 8.0])).shape == (2, 3, 40, 40)
        _, shape_a = m.encode(a)
        _, shape_b = m.encode(b)
        assert torch.equal(m.manipulate(shape_a, shape_b, 1.0), shape_b)  # alpha = 1: no change added
        assert not torch.allclose(m.manipulate(shape_a, shape_b, 5.0), shape_b)
    with pytest.raises(ValueError, match="divisible by 4"):
        m.encode(torch.zeros(1, 3, 30, 30))


def test_stmemm_loss_falls_and_is_deterministic():
    from mer.magnify.stmemm import STMEMM
    g = torch.Generator().manual_seed(0)
    a, b = (torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8, generator=g) * 2 - 1, size=(32, 32),
                                            mode="bilinear") for _ in range(2))
    c, t = a.clone(), 0.5 * b  # smooth frames, a target the inputs determine
    alpha = torch.tensor([3.0, 6.0])
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        m = STMEMM("quick")
        opt = torch.optim.Adam(m.parameters(), lr=3e-3)
        losses = []
        for _ in range(30):
            loss, parts = m.loss(a, b, c, t, alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(parts["l1"])
        runs.append(losses)
    assert runs[0][-1] < 0.8 * runs[0][0]
    assert runs[0] == runs[1]


def test_train_magnifier_caches_its_weights(tmp_path):
    from mer.magnify.training import MagnifierConfig, as_magnifier, load_magnifier, train_magnifier, weights_path
    from mer.magnify.face_pairs import FacePairConfig
    cfg = MagnifierConfig(pairs=PairConfig(size=16, supersample=4), n_pairs=6, steps=4, batch_size=2,
                          face_pairs=FacePairConfig(size=32, crop=16, identities=2), n_face_pairs=4)
    model, rec = train_magnifier(cfg, tmp_path / "w", tmp_path / "c", progress=False)
    assert len(list((tmp_path / "c").glob("face_pairs_*.npz"))) == 1  # face pairs beside the procedural ones
    path = weights_path(cfg, tmp_path / "w")
    assert path.is_file() and rec["curve"][-1]["step"] == 4 and rec["config"]["steps"] == 4
    again, rec2 = train_magnifier(cfg, tmp_path / "w", tmp_path / "c", progress=False)
    assert rec2["curve"] == rec["curve"]
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), again.state_dict().values()))
    assert MagnifierConfig(steps=5).key() != MagnifierConfig(steps=4).key()
    assert MagnifierConfig(manipulator="paper").key() != MagnifierConfig().key() != MagnifierConfig(skip=False).key()
    with pytest.raises(ValueError, match="face pairs of 48 px"):
        train_magnifier(MagnifierConfig(pairs=PairConfig(size=16, supersample=4), n_pairs=2, steps=1),
                        tmp_path / "w", tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match="schedule 'linear'"):  # refused before any pair is generated
        MagnifierConfig(schedule="linear")
    a = np.zeros((16, 16, 3), np.uint8)
    out = as_magnifier(model)(a, a, 5.0)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert as_magnifier(model)(np.stack([a, a]), np.stack([a, a]), 5.0).shape == (2, 16, 16, 3)
    loaded, rec_loaded = load_magnifier(path)  # a checkpoint given by path, as the notebook's magnifier_weights
    assert rec_loaded["curve"] == rec["curve"]
    assert all(torch.equal(p, q) for p, q in zip(model.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(FileNotFoundError, match="nowhere.pt"):
        load_magnifier(tmp_path / "nowhere.pt")
    path.write_bytes(b"truncated")
    with pytest.raises(ValueError, match=path.name):
        load_magnifier(path)
    _, rec3 = train_magnifier(cfg, tmp_path / "w", tmp_path / "c", progress=False)  # retrained, not crashed
    assert rec3["curve"][-1]["step"] == 4


def test_trained_stmemm_at_alpha_one_returns_nearly_frame_b(tmp_path):
    """Untrained, the residual decoder adds noise of its own; a short training already
    brings the alpha = 1 output within a few grey levels of B (the manipulator leaves B's
    shape code untouched at alpha = 1, so what remains is the decoder's reconstruction)."""
    from mer.magnify.training import MagnifierConfig, as_magnifier, train_magnifier
    from mer.magnify.stmemm import STMEMM
    pairs = PairConfig(size=32, supersample=4)
    held_out = make_pairs(8, 99, pairs, progress=False)

    def error(model):
        out = as_magnifier(model)(held_out["A"], held_out["B"], 1.0).astype(np.float32)
        return float(np.abs(out - held_out["B"]).mean())

    torch.manual_seed(0)
    before = error(STMEMM("quick").eval())
    model, _ = train_magnifier(MagnifierConfig(pairs=pairs, n_pairs=32, n_face_pairs=0, steps=40, lr=1e-3),
                               tmp_path / "w", tmp_path / "c", progress=False)
    after = error(model)
    assert after < 0.7 * before and after < 6.0, (before, after)


def test_train_magnifier_command(tmp_path, capsys):
    from mer.cli import main
    rc = main(["train-magnifier", "--steps", "2", "--pairs", "8", "--face-pairs", "2", "--manipulator", "paper",
               "--weights-dir", str(tmp_path / "w"), "--cache-dir", str(tmp_path / "c"), "--check", "3"])
    out = capsys.readouterr().out
    assert rc == 0 and "ST-MEMM (quick, 2 steps)" in out and "measured / requested motion" in out
    assert "held-out face pairs" in out and "cosine" in out
    assert all(name in out for name in ("ST-MEMM", "Eulerian", "true target"))
    assert len(list((tmp_path / "w").glob("stmemm_*.pt"))) == 1


def test_magnifier_config_by_name():
    from mer.magnify.training import PAPER, MagnifierConfig
    assert MagnifierConfig.named("quick") == MagnifierConfig() and MagnifierConfig.named("paper") == PAPER
    cfg = MagnifierConfig.named("paper", steps=10, pairs=20)
    assert (cfg.steps, cfg.n_pairs, cfg.model, cfg.lr) == (10, 20, "paper", PAPER.lr)
    assert MagnifierConfig.named("quick", steps=None, pairs=None).key() == MagnifierConfig().key()
    own = MagnifierConfig.named("quick", manipulator="paper", faces="/photos", face_pairs=3)
    assert own.net() == {"manipulator": "paper"} and own.n_face_pairs == 3 and own.face_pairs.faces == "/photos"
    with pytest.raises(ValueError, match="'fast'.*'quick', 'paper'"):
        MagnifierConfig.named("fast")


def test_change_fidelity_of_identity_linear_and_reversed_magnifiers():
    from mer.magnify.measure import change_fidelity
    rng = np.random.default_rng(0)
    onset = rng.integers(60, 120, (6, 3, 4, 4, 3)).astype(np.uint8)
    apex = (onset.astype(int) + rng.integers(-3, 4, onset.shape)).astype(np.uint8)
    assert not (apex == onset).reshape(6, -1).all(1).any()  # every item changes
    same = change_fidelity(apex, onset, apex, 5.0)  # "magnifier" returning the raw apex
    assert list(same) == ["alpha", "cosine, median", "cosine, 10th percentile", "gain / alpha, median"]
    assert same["alpha"] == 5.0
    assert same["cosine, median"] == pytest.approx(1.0, abs=1e-6)
    assert same["cosine, 10th percentile"] == pytest.approx(1.0, abs=1e-6)
    assert same["gain / alpha, median"] == pytest.approx(1 / 5, rel=1e-6)
    linear = onset.astype(np.float32) + 5.0 * (apex.astype(np.float32) - onset)  # exactly alpha times the change
    exact = change_fidelity(apex, onset, linear, 5.0)
    assert exact["cosine, median"] == pytest.approx(1.0, abs=1e-6)
    assert exact["gain / alpha, median"] == pytest.approx(1.0, rel=1e-6)
    back = change_fidelity(apex, onset, 2 * onset.astype(np.float32) - apex, 2.0)  # the change reversed
    assert back["cosine, median"] == pytest.approx(-1.0, abs=1e-6) and back["gain / alpha, median"] == pytest.approx(0.5)


def test_identity_error_at_alpha_one():
    from mer.magnify.measure import identity_error
    assert identity_error(lambda a, b, alpha: b, 3) == 0.0
    pairs = check_pairs(3, seed=1)
    moved = float(np.mean([np.abs(p["A"].astype(np.float32) - p["B"]).mean() for p in pairs]))
    assert identity_error(lambda a, b, alpha: a, 3, seed=1) == pytest.approx(moved, rel=1e-6) and moved > 0


def test_verdict_sentence():
    import pandas as pd
    from mer.magnify.measure import verdict
    check = pd.DataFrame({"magnifier": ["ST-MEMM", "Eulerian", "true target", "ST-MEMM", "Eulerian", "true target"],
                          "alpha": [5.0, 5.0, 5.0, 10.0, 10.0, 10.0],
                          "median ratio": [0.79, 0.30, 1.0, 0.791, 0.224, 0.99]})
    met, text = verdict(check, source="quick")
    assert met is True
    assert text == ("ST-MEMM (quick) moves objects by 0.79 at alpha 5, 0.79 at alpha 10 of alpha * d "
                    "(Eulerian: 0.30, 0.22): the 25% target is met.")
    check.loc[3, "median ratio"] = 0.74
    met, text = verdict(check, source="loaded")
    assert met is False
    assert text == ("ST-MEMM (loaded) moves objects by 0.79 at alpha 5, 0.74 at alpha 10 of alpha * d "
                    "(Eulerian: 0.30, 0.22): the 25% target is NOT met; its magnified frames are weaker than asked.")


def test_both_readings_of_eq3_and_the_paper_decoder():
    """Eq. 3 as written scales by alpha around frame A's code (alpha = 0 gives A's code);
    Oh et al.'s code scales by alpha - 1 around B's (alpha = 1 gives B's). The paper config
    is Eq. 3 and Eq. 5 as written: no residual to B, no skip."""
    from mer.magnify.stmemm import CONFIGS, STMEMM
    torch.manual_seed(0)
    a, b, _, _ = _frames(size=32)
    paper, official = STMEMM("quick", manipulator="paper").eval(), STMEMM("quick").eval()
    with torch.no_grad():
        _, sa = paper.encode(a)
        _, sb = paper.encode(b)
        assert torch.equal(paper.manipulate(sa, sb, 0.0), sa)
        assert not torch.allclose(paper.manipulate(sa, sb, 1.0), sb)
        _, sa = official.encode(a)
        _, sb = official.encode(b)
        assert torch.equal(official.manipulate(sa, sb, 1.0), sb)
    assert CONFIGS["paper"]["manipulator"] == "paper" and not CONFIGS["paper"]["residual"] and not CONFIGS["paper"]["skip"]
    bare = STMEMM("quick", residual=False, skip=False)
    assert bare.out.in_channels == 24 and official.out.in_channels == 48
    with pytest.raises(ValueError, match="manipulator"):
        STMEMM("quick", manipulator="oh")
    with pytest.raises(TypeError, match="unknown ST-MEMM setting"):
        STMEMM("quick", resid=False)


def test_face_pairs_move_faces_by_the_recorded_field():
    from mer.magnify.face_pairs import TRAIN_SEED, FacePairConfig, check_face_pairs, make_face_pairs
    from mer.magnify.measure import fitted_share
    cfg = FacePairConfig(size=48, identities=2)
    p = make_face_pairs(3, 0, cfg, progress=False)
    assert p["A"].shape == (3, 48, 48, 3) and p["disp"].shape == (3, 48, 48, 2)
    assert (p["alpha"] * np.abs(p["disp"]).max(axis=(1, 2, 3)) <= cfg.max_magnified + 1e-4).all()
    again = make_face_pairs(3, 0, cfg, progress=False)
    assert all(np.array_equal(p[k], again[k]) for k in ("A", "B", "target"))  # deterministic
    crop = make_face_pairs(2, 0, FacePairConfig(size=48, crop=32, identities=2), progress=False)
    assert crop["A"].shape == (2, 32, 32, 3) and crop["disp"].shape == (2, 32, 32, 2)
    # held-out pairs: other identities, exact alpha; the target is A moved by alpha * d, which the fitted
    # share reads as 1, and B (moved by d) as 1 / alpha
    held = check_face_pairs(2, 0, alpha=5.0, cfg=cfg)
    assert not np.array_equal(held["A_clean"][0], make_face_pairs(1, 0, cfg, clean=True, progress=False)["A_clean"][0])
    assert TRAIN_SEED == 1000
    for i in range(2):
        d = held["disp"][i] * 5.0
        region = np.linalg.norm(d, axis=-1) >= 0.1
        assert abs(fitted_share(held["A_clean"][i], held["target"][i], d, region) - 1.0) <= 0.1
        assert abs(fitted_share(held["A_clean"][i], held["B"][i], d, region) - 0.2) <= 0.1


def test_face_check_floor_and_verdict():
    from mer.magnify.measure import face_check, face_verdict
    table = face_check({"B itself": lambda a, b, alpha: b}, 2, alphas=(5.0,))
    target = table[table["magnifier"] == "true target"].iloc[0]
    assert target["cosine"] > 0.999 and abs(target["median ratio"] - 1) <= 0.05
    b_row = table[table["magnifier"] == "B itself"].iloc[0]
    assert abs(b_row["median ratio"] - 0.2) <= 0.1 and b_row["within 25%"] == 0
    met, text = face_verdict(table, "B itself", source="quick")
    assert not met and "NOT met" in text and "astronaut" in text
    assert face_verdict(table, "true target", source="x", faces="/photos")[0]


def test_latency_bench_times_both_networks(tmp_path):
    import json
    from mer.magnify.latency import REPORTED_MS, bench_latency
    r = bench_latency("quick", size=32, patch=8, warmup=0, repeats=1, out=tmp_path / "latency.json")
    rows = {(row["network"], row["mode"]): row for row in r["rows"]}
    assert set(rows) == {(n, m) for n in ("ST-MEMM", "GAM-MER") for m in ("pytorch", "onnx", "fp16", "tensorrt")}
    for n in ("ST-MEMM", "GAM-MER"):
        assert rows[(n, "pytorch")]["ms"] > 0 and rows[(n, "onnx")]["ms"] > 0, rows[(n, "onnx")]["how"]
        assert rows[(n, "tensorrt")]["ms"] is None and rows[(n, "pytorch")]["reported A10 ms"] == REPORTED_MS[n]["pytorch"]
        if not torch.cuda.is_available():
            assert rows[(n, "fp16")]["ms"] is None and "needs CUDA" in rows[(n, "fp16")]["how"]
    assert json.loads((tmp_path / "latency.json").read_text())["rows"] == json.loads(json.dumps(r["rows"]))
