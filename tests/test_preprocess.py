from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import cv2

from mer import data
from mer import landmarks as lm
from mer.data.synth import SynthConfig, generate
from mer.preprocess import ClipDataset, faces, prepare
from mer.preprocess.cache import Cache
from mer.preprocess.dataset import Augment
from mer.preprocess.flow import optical_flow, optical_strain
from mer.preprocess.frames import interpolate_sequence, rate_numbers, rate_positions, resample_rate, uniform_numbers


@pytest.fixture(scope="module")
def synth_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    return generate(root / "s", SynthConfig(subjects=2, clips_per_subject=3, size=160, frames=(12, 16), workers=1),
                    progress=False)


@pytest.fixture(scope="module")
def static_root(tmp_path_factory):
    """Clips with no expression and no nuisance: every frame the same face."""
    root = tmp_path_factory.mktemp("static")
    cfg = SynthConfig(subjects=1, clips_per_subject=2, size=160, frames=(10, 10), amplitude=(0.0, 0.0),
                      blink_prob=0, drift_px=0, rotation_deg=0, flicker=0, noise_sigma=(0, 0), workers=1)
    return generate(root / "s", cfg, progress=False)


def _rotate(img: np.ndarray, deg: float) -> np.ndarray:
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


@pytest.mark.parametrize("deg", [-12.0, 8.0])
def test_rotated_face_is_levelled(synth_root, deg):
    t = data.load("synth", synth_root)
    onset = cv2.cvtColor(cv2.imread(t.clips.iloc[0]["frames"][0]), cv2.COLOR_BGR2RGB)
    rotated = _rotate(onset, deg)
    det = faces.detect(rotated)
    assert det.box is not None
    assert abs(abs(faces.eye_angle_deg(det.points)) - abs(deg)) < 3  # the rotation is really there
    size = 128
    matrix = faces.similarity(det.points, size)
    aligned = faces.warp(rotated, matrix, size)
    again = faces.detect(aligned)  # measure on the aligned image itself
    assert abs(faces.eye_angle_deg(again.points)) < 1.0
    right, left = lm.eye_centres(again.points)
    assert abs(np.linalg.norm(left - right) - faces.IOD_FRACTION * size) < 0.08 * faces.IOD_FRACTION * size
    assert abs((left + right)[0] / 2 - size / 2) < 3  # face centred


def test_static_clip_aligned_frames_barely_differ(static_root, tmp_path):
    t = data.load("synth", static_root)
    ds = ClipDataset(t.clips, "sequence", size=96, T=6, cache_dir=tmp_path, progress=False)
    assert (ds.clips["align_method"] == "detect").all() and ds.clips["face_found"].all()
    for i in range(len(ds)):
        seq = ds.tensor(i)  # (T, C, H, W) in [-0.5, 0.5]
        assert (seq - seq[0]).abs().mean() < 2 / 255


def test_second_call_hits_the_cache(synth_root, tmp_path, monkeypatch):
    t = data.load("synth", synth_root)
    first = ClipDataset(t.clips, "flow", size=64, cache_dir=tmp_path, progress=False)
    assert first.stats.misses > 0
    # nothing may be recomputed: detection and flow would fail loudly if called
    monkeypatch.setattr(faces, "detect", lambda *a: (_ for _ in ()).throw(AssertionError("detect called")))
    monkeypatch.setattr(prepare, "flow_uvs", lambda *a: (_ for _ in ()).throw(AssertionError("flow called")))
    second = ClipDataset(t.clips, "flow", size=64, cache_dir=tmp_path, progress=False)
    assert second.stats.misses == 0 and second.stats.hits == first.stats.misses
    for a, b in zip(first.data, second.data):
        np.testing.assert_array_equal(a, b)
    pd.testing.assert_frame_equal(first.clips.drop(columns=["align_matrix", "landmarks_onset", "landmarks_apex"]),
                                  second.clips.drop(columns=["align_matrix", "landmarks_onset", "landmarks_apex"]))


def test_parallel_workers_give_the_same_arrays(synth_root, tmp_path):
    t = data.load("synth", synth_root)
    one = ClipDataset(t.clips, "diff", size=64, cache_dir=tmp_path / "a", workers=1, progress=False)
    two = ClipDataset(t.clips, "diff", size=64, cache_dir=tmp_path / "b", workers=2, progress=False)
    for a, b in zip(one.data, two.data):
        np.testing.assert_array_equal(a, b)


def test_truncated_cache_entry_is_detected_and_recomputed(synth_root, tmp_path, capsys):
    t = data.load("synth", synth_root)
    first = ClipDataset(t.clips, "diff", size=64, cache_dir=tmp_path, progress=False)
    entry = sorted((tmp_path / "frames").rglob("*.npz"))[0]
    entry.write_bytes(entry.read_bytes()[:100])
    again = ClipDataset(t.clips, "diff", size=64, cache_dir=tmp_path, progress=False)
    assert again.stats.corrupt == [str(entry)] and again.stats.misses == 1
    assert "is unreadable" in capsys.readouterr().err
    for a, b in zip(first.data, again.data):
        np.testing.assert_array_equal(a, b)
    assert entry.is_file() and len(entry.read_bytes()) > 100  # rewritten whole
    assert not list(tmp_path.rglob("*.tmp.npz"))  # no temp files left behind


def test_cache_key_follows_file_identity_and_params(tmp_path):
    f = tmp_path / "a.bin"
    f.write_bytes(b"x")
    c = Cache(tmp_path / "cache")
    k = c.key("k", [f], {"size": 64})
    assert k == c.key("k", [f], {"size": 64})
    assert k != c.key("k", [f], {"size": 96})
    f.write_bytes(b"xy")
    assert k != c.key("k", [f], {"size": 64})
    with pytest.raises(FileNotFoundError, match="missing"):
        c.key("k", [tmp_path / "gone.bin"], {})


def _texture(size=96, seed=0):
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    return cv2.normalize(img, None, 0, 255, cv2.NORM_MINMAX)


@pytest.mark.parametrize("dx,dy", [(0.5, 0.0), (0.3, -0.4)])
def test_tvl1_recovers_a_subpixel_shift(dx, dy):
    a = _texture()
    m = np.float32([[1, 0, dx], [0, 1, dy]])  # content moves by (dx, dy)
    b = cv2.warpAffine(a, m, a.shape[::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    flow = optical_flow(a.astype(np.uint8), b.astype(np.uint8), "tvl1")
    inner = flow[16:-16, 16:-16].reshape(-1, 2)
    med = np.median(inner, axis=0)
    assert abs(med[0] - dx) < 0.1 and abs(med[1] - dy) < 0.1
    fb = np.median(optical_flow(a.astype(np.uint8), b.astype(np.uint8), "farneback")[16:-16, 16:-16].reshape(-1, 2), 0)
    assert abs(fb[0] - dx) < 0.2 and abs(fb[1] - dy) < 0.2
    # a pure translation has (almost) no strain
    assert np.median(optical_strain(flow)[16:-16, 16:-16]) < 0.05


def test_strain_of_a_known_field():
    ys, xs = np.mgrid[0:20, 0:20].astype(np.float32)
    flow = np.stack([0.1 * xs, np.zeros_like(xs)], axis=-1)  # u = 0.1 x: ux = 0.1
    assert np.allclose(optical_strain(flow)[2:-2, 2:-2], 0.1, atol=1e-5)


def test_augmentation_identical_across_frames():
    torch.manual_seed(0)
    frame = torch.rand(1, 3, 32, 32)
    clip = frame.repeat(6, 1, 1, 1)
    aug = Augment(flip=True, rotate=3.0, pad=4, jitter=0.2)
    for _ in range(10):
        out = aug(clip, "image")
        assert out.shape == clip.shape
        assert torch.equal(out, out[:1].expand_as(out))
    changed = sum(not torch.equal(aug(clip, "image"), clip) for _ in range(5))
    assert changed == 5


def test_flow_flip_negates_u():
    x = torch.zeros(1, 3, 8, 8)
    x[:, 0] = 1.0  # u = +1 everywhere
    aug = Augment(flip=True, rotate=0, pad=0, jitter=0)
    seen = {float(aug(x, "flow")[0, 0].mean()) for _ in range(20)}
    assert seen == {1.0, -1.0}


def test_frame_selection():
    assert uniform_numbers(10, 19, 4) == [10, 13, 16, 19]
    seq = np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 2), np.float32)
    out = interpolate_sequence(seq, 9)
    assert np.allclose(out[:, 0], np.linspace(0, 4, 9))
    pos = rate_positions(61, 200, 30)  # 0.3 s at 200 fps -> 30 Hz
    assert len(pos) == 10 and np.isclose(pos[1], 200 / 30)
    r = resample_rate(np.arange(61, dtype=np.float32), 200, 30)
    assert np.allclose(r, pos)
    # the frames nearest each 1/30 s of a 200 fps clip (10..70: 0.3 s); a 25 fps clip keeps every frame
    assert rate_numbers(10, 70, 200, 30) == [10, 17, 23, 30, 37, 43, 50, 57, 63, 70]
    assert rate_numbers(5, 9, 25, 30) == [5, 6, 7, 8, 9]


def test_recipes_shapes_and_landmarks(synth_root, tmp_path):
    t = data.load("synth", synth_root)
    shapes = {}
    for recipe in ("diff", "apex", "onset", "pair", "sequence", "flow", "regions"):
        ds = ClipDataset(t.clips, recipe, size=64, T=5, cache_dir=tmp_path, progress=False)
        x, y = ds.subset(np.arange(len(ds)), train=True)[0]
        assert x.shape == ds.sample_shape and isinstance(y, int)
        shapes[recipe] = ds.sample_shape
    assert shapes == {"diff": (3, 64, 64), "apex": (3, 64, 64), "onset": (3, 64, 64), "pair": (2, 3, 64, 64),
                      "sequence": (5, 3, 64, 64), "flow": (3, 64, 64), "regions": (10, 3, 16, 16)}
    grey = ClipDataset(t.clips, "sequence", size=64, T=5, sampling="interpolate", grey=True, cache_dir=tmp_path,
                       progress=False)
    assert grey.sample_shape == (5, 1, 64, 64) and grey.in_chans == 1
    rate = ClipDataset(t.clips, "sequence", size=64, T=4, sampling="rate", target_fps=30, cache_dir=tmp_path,
                       progress=False)
    assert rate.sample_shape == (4, 3, 64, 64)
    pts = ds.clips.iloc[0]["landmarks_apex"]
    assert pts.shape == (68, 2) and (pts >= 0).all() and (pts < 64).all()
    right, left = lm.eye_centres(ds.clips.iloc[0]["landmarks_onset"])
    assert abs(right[1] - left[1]) < 1.5 and abs(right[1] - faces.EYE_Y * 64) < 1.5


def test_fallbacks_are_flagged(synth_root, tmp_path):
    t = data.load("synth", synth_root)
    clips = t.clips.copy()
    blank = tmp_path / "blank"
    blank.mkdir()
    # the second clip of sub01 and the first of sub02 lose their face
    for i in (1, 3):
        row = clips.iloc[i]
        files = []
        for j, f in enumerate(row["frames"]):
            p = blank / f"{i}_{j}.jpg"
            cv2.imwrite(str(p), np.full((160, 160, 3), 120, np.uint8))
            files.append(str(p))
        clips.at[clips.index[i], "frames"] = files
    ds = ClipDataset(clips, "diff", size=64, cache_dir=tmp_path / "c", progress=False)
    methods = ds.clips["align_method"].tolist()
    assert methods[1] == "subject_previous" and methods[3] == "centred_crop"
    assert methods[0] == "detect" and not ds.clips["face_found"][1] and not ds.clips["face_found"][3]
    np.testing.assert_allclose(ds.clips["align_matrix"][1], ds.clips["align_matrix"][0])


def test_bad_frame_names_the_file(synth_root, tmp_path):
    t = data.load("synth", synth_root)
    clips = t.clips.head(1).copy()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    files = list(clips.iloc[0]["frames"])
    files[-1] = str(bad)
    clips.at[clips.index[0], "frames"] = files
    clips.at[clips.index[0], "apex"] = clips.iloc[0]["offset"]
    clip_id = f"synth/{clips.iloc[0]['subject']}/{clips.iloc[0]['clip']}"
    with pytest.raises(ValueError, match=f"clip {clip_id}: .*broken.jpg: missing or unreadable"):
        ClipDataset(clips, "diff", size=32, align=False, cache_dir=tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match=f"clip {clip_id}: .*broken.jpg"):
        ClipDataset(clips, "diff", size=32, align=True, cache_dir=tmp_path / "c", workers=2, progress=False)


def test_greyscale_source_is_replicated_to_rgb(tmp_path):
    folder = tmp_path / "006" / "006_1_2"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    files = []
    for n in range(1, 5):
        p = folder / f"006_{n:05d}.jpg"
        cv2.imwrite(str(p), rng.integers(0, 255, (40, 40), dtype=np.uint8))  # single-channel JPEG
        files.append(str(p))
    assert cv2.imread(files[0], cv2.IMREAD_UNCHANGED).ndim == 2
    clips = pd.DataFrame([{"dataset": "samm", "subject": "006", "clip": "006_1_2", "frame_dir": str(folder),
                           "frames": files, "onset": 1, "apex": 3, "offset": 4, "fps": 200.0, "label": 0}])
    ds = ClipDataset(clips, "apex", size=32, align=False, cache_dir=tmp_path / "c", progress=False)
    x = ds.tensor(0)
    assert x.shape == (3, 32, 32) and torch.equal(x[0], x[1]) and torch.equal(x[1], x[2])


def test_shrinking_warp_is_antialiased():
    """A pure downscale through the alignment warp equals an area resize: a plain cubic
    warp to a much smaller size aliases, and the aliasing swamps one-pixel motion."""
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 255, (224, 224, 3)).astype(np.float32)  # full of high frequencies
    s = 64 / 224
    m = np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5]])
    area = cv2.resize(img, (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(faces.warp(img, m, 64)[2:-2, 2:-2], area[2:-2, 2:-2], atol=1e-3)
    naive = cv2.warpAffine(img, m, (64, 64), flags=cv2.INTER_CUBIC)
    assert np.abs(naive - area)[2:-2, 2:-2].mean() > 10  # what the pre-shrink prevents


FORKED_AFTER_OPENCV = """
import sys
import cv2
import numpy as np


def main():
    from mer import data
    from mer.preprocess import ClipDataset
    a = np.random.default_rng(0).integers(0, 255, (512, 512), dtype=np.uint8)
    for _ in range(3):  # OpenCV's thread pool busy in this process, as after a magnifier check
        cv2.calcOpticalFlowFarneback(a, a, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    clips = data.load("casme2", sys.argv[1]).clips
    ds = ClipDataset(clips, "pair", size=16, align=False, workers=2, cache_dir=sys.argv[2], progress=False)
    print("prepared", len(ds))


if __name__ == "__main__":
    main()
"""


def test_preprocessing_workers_start_clean_after_opencv_ran_in_the_caller(casme2_root, tmp_path):
    """Workers come from a fresh server process: forked from a process whose OpenCV thread
    pool had run (GAM-MM-MER's notebook after its magnifier check), they hung for ever."""
    import subprocess
    import sys
    script = tmp_path / "prepare_after_opencv.py"
    script.write_text(FORKED_AFTER_OPENCV)
    done = subprocess.run([sys.executable, str(script), str(casme2_root), str(tmp_path / "cache")],
                          capture_output=True, text=True, timeout=180, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "prepared 5" in done.stdout


def test_a_warm_cache_is_read_without_starting_the_worker_pool(synth_root, tmp_path, monkeypatch):
    """With several workers, cached entries are read in this process (a pool's start costs
    more than reading them) and only the missing ones go to the pool."""
    from mer.preprocess import ClipDataset, prepare
    t = data.load("synth", synth_root)
    cold = ClipDataset(t.clips, "flow", size=32, cache_dir=tmp_path / "cache", workers=1, progress=False)

    def no_pool(*args, **kwargs):
        raise AssertionError("the pool started although every entry is cached")
    monkeypatch.setattr(prepare, "ProcessPoolExecutor", no_pool)
    warm = ClipDataset(t.clips, "flow", size=32, cache_dir=tmp_path / "cache", workers=2, progress=False)
    assert warm.stats.misses == 0 and warm.stats.hits > 0
    assert all(np.array_equal(a, b) for a, b in zip(cold.data, warm.data))
    with pytest.raises(AssertionError, match="pool started"):  # an entry missing: the pool is used for it
        ClipDataset(t.clips, "flow", size=24, cache_dir=tmp_path / "cache", workers=2, progress=False)
