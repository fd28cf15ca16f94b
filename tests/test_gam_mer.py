"""p2 GAM-MER recogniser: the region graph, shapes, attention along edges only, training."""
import pytest
import torch

from mer import models
from mer.landmarks import ALL_REGIONS, REGIONS
from mer.models.gam_mer import PRIOR_EDGES, REGION_SETS, region_graph
from tests.training import tiny_batch_losses

SELECTED = list(REGIONS)  # the "micro+eyes" set: brows, glabella, eyes, nose tip, mouth


def test_regions_keep_their_landmark_indices():
    """The region dicts built from mer.landmarks' named groups, exactly the literal values
    they had before they moved there (keys, order and indices: region patches and cache
    keys depend on them)."""
    micro = {
        "right_brow": [17, 18, 19, 20, 21], "left_brow": [22, 23, 24, 25, 26], "glabella": [21, 22, 27],
        "right_eye": [36, 37, 38, 39, 40, 41], "left_eye": [42, 43, 44, 45, 46, 47],
        "nose_tip": [30, 31, 32, 33, 34, 35], "mouth_right": [48, 49, 59, 60], "mouth_left": [53, 54, 55, 64],
        "upper_lip": [50, 51, 52, 61, 62, 63], "lower_lip": [56, 57, 58, 65, 66, 67],
    }
    every = {**micro, "nose_bridge": [27, 28, 29, 30], "jaw_right": [0, 1, 2, 3, 4, 5], "chin": [6, 7, 8, 9, 10],
             "jaw_left": [11, 12, 13, 14, 15, 16]}
    assert list(REGIONS.items()) == list(micro.items())
    assert list(ALL_REGIONS.items()) == list(every.items())
    from mer.models import gam_mer
    from mer.preprocess import dataset
    assert dataset.REGIONS is REGIONS and gam_mer.REGIONS is REGIONS and gam_mer.ALL_REGIONS is ALL_REGIONS


def test_region_graph_nodes_and_edges():
    opt, raw = region_graph(SELECTED, "optimised"), region_graph(SELECTED, "raw")
    assert opt.shape == (10, 10) and torch.equal(opt, opt.T) and opt.diagonal().sum() == 0
    assert "jaw_right" not in SELECTED and "jaw_right" in ALL_REGIONS  # the jaw contour is left out
    i = {r: k for k, r in enumerate(SELECTED)}
    assert opt[i["right_brow"], i["mouth_right"]] == 1 and raw[i["right_brow"], i["mouth_right"]] == 0
    assert opt[i["right_brow"], i["glabella"]] == 1 and raw[i["right_brow"], i["glabella"]] == 1
    assert int(raw.sum()) // 2 == 15 and int(opt.sum()) // 2 == 15 + len(PRIOR_EDGES)
    assert torch.equal(opt - raw, (opt - raw).clamp(min=0))  # the optimised graph only adds edges
    full = region_graph(list(ALL_REGIONS), "raw")
    assert full.shape == (14, 14) and full.sum(1).min() >= 1
    with pytest.raises(ValueError, match="without any edge"):
        region_graph(["right_brow", "chin"], "raw")
    with pytest.raises(ValueError, match="optimised or raw"):
        region_graph(SELECTED, "knn")


def test_region_sets_follow_section_2_2():
    """The paper's selection: eyebrows, nose tip and mouth (eyes and contour dropped: blinks and
    eye movements are interference); Table 3's "all areas" adds the eyes and the contour."""
    micro, every = REGION_SETS["micro"], REGION_SETS["all"]
    assert list(micro) == ["right_brow", "left_brow", "nose_tip", "mouth_right", "mouth_left", "upper_lip", "lower_lip"]
    assert set(every) - set(micro) == {"right_eye", "left_eye", "jaw_right", "chin", "jaw_left"}
    assert list(REGION_SETS["micro+eyes"]) == SELECTED
    assert all(ALL_REGIONS[r] == idx for s in REGION_SETS.values() for r, idx in s.items())
    for regions in REGION_SETS.values():
        for graph in ("optimised", "raw"):
            assert region_graph(list(regions), graph).sum(1).min() >= 1  # every region linked
    i = {r: k for k, r in enumerate(micro)}
    raw = region_graph(list(micro), "raw")  # across the dropped eyes and glabella: brow - nose tip, brow - brow
    assert raw[i["right_brow"], i["nose_tip"]] == 1 and raw[i["right_brow"], i["left_brow"]] == 1
    with_eyes = region_graph(SELECTED, "raw")
    j = {r: k for k, r in enumerate(SELECTED)}
    assert with_eyes[j["right_brow"], j["nose_tip"]] == 0  # the eye lies between: no bridge
    assert models.create("gam_mm_mer").regions == list(micro)  # the default is the paper's


def test_shapes_of_every_variant():
    x = torch.randn(3, 10, 6, 16, 16)
    for kw in [{}, dict(layers=1), dict(layers=3), dict(conv="gcn"), dict(graph="raw")]:
        m = models.create("gam_mm_mer", num_classes=4, regions=SELECTED, **kw).eval()
        assert m(x).shape == (3, 4), kw
        assert len(m.convs) == kw.get("layers", 2)
    m = models.create("gam_mm_mer", regions=list(ALL_REGIONS)).eval()
    assert m(torch.randn(2, 14, 6, 16, 16)).shape == (2, 5)
    with pytest.raises(ValueError, match="region patches"):
        m(x)
    with pytest.raises(ValueError, match="unknown region"):
        models.create("gam_mm_mer", regions=["forehead"])


def test_one_graph_layer_mixes_neighbours_only():
    torch.manual_seed(0)
    for conv in ("gat", "gcn"):
        m = models.create("gam_mm_mer", layers=1, conv=conv, regions=SELECTED).eval()
        i = {r: k for k, r in enumerate(SELECTED)}
        x = torch.randn(1, 10, 6, 16, 16)
        base = m.graph_features(x)[0, i["right_brow"]]
        far, near = x.clone(), x.clone()
        far[0, i["lower_lip"]] += 1.0  # not linked to the right brow
        near[0, i["mouth_right"]] += 1.0  # linked by a prior edge
        with torch.no_grad():
            assert torch.allclose(m.graph_features(far)[0, i["right_brow"]], base, atol=1e-6), conv
            assert not torch.allclose(m.graph_features(near)[0, i["right_brow"]], base, atol=1e-4), conv


def test_loss_falls_on_a_tiny_batch():
    torch.manual_seed(0)
    x, y = torch.randn(6, 10, 6, 16, 16), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = tiny_batch_losses(models.create("gam_mm_mer", num_classes=3, dropout=0.0, regions=SELECTED), (x,), y)
    assert losses[-1] < 0.5 * losses[0]


def test_identical_outputs_for_one_seed():
    x = torch.randn(2, 10, 6, 16, 16)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        outs.append(models.create("gam_mm_mer", regions=SELECTED).eval()(x))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(4)
    assert not torch.equal(models.create("gam_mm_mer", regions=SELECTED).eval()(x), outs[0])


def t_points(pairs):
    return list(pairs.clips["landmarks_apex"])


def test_magnified_regions_give_node_inputs_per_alpha(tmp_path):
    import numpy as np
    from mer import data
    from mer.data.synth import SynthConfig, generate
    from mer.magnify.eulerian import eulerian_many
    from mer.preprocess import ClipDataset
    from mer.preprocess.magnified_regions import MagnifiedRegions
    root = generate(tmp_path / "s", SynthConfig(subjects=1, clips_per_subject=3, size=96, frames=(20, 30), workers=1),
                    progress=False)
    t = data.load("synth", root)
    pairs = ClipDataset(t.clips, "pair", size=64, align=True, cache_dir=tmp_path / "c", progress=False)
    calls = []

    def spy(onsets, apexes, alpha):
        calls.append(alpha)
        return eulerian_many(onsets, apexes, alpha)

    reg = MagnifiedRegions(pairs, spy, train_alphas=(8, 12), test_alpha=5, progress=False)
    assert sorted(calls) == [5.0, 8.0, 12.0]
    x, y = reg[0]
    assert x.shape == (10, 6, 16, 16) and y == t.clips.iloc[0]["label"]
    # the difference channels are (magnified apex - onset) * gain
    assert torch.allclose(x[:, 3:], (x[:, :3] - (torch.from_numpy(reg.onset_patches[0]).float().permute(0, 3, 1, 2)
                                                 / 255 - 0.5)) * reg.diff_gain, atol=1e-5)
    test_view, train_view = reg.subset(np.arange(3), False), reg.subset(np.arange(3), True)
    assert torch.equal(test_view[1][0], reg.item(1, 5.0))
    torch.manual_seed(0)
    draws = {tuple(train_view[0][0][:, :3].flatten()[:50].tolist()) for _ in range(12)}
    assert len(draws) > 1  # training items vary (alpha drawn per item, jitter)
    reg20 = MagnifiedRegions(pairs, spy, train_alphas=(8,), test_alpha=5, extra_alphas=(20,), progress=False)
    at20 = reg20.with_test_alpha(20)
    assert torch.equal(at20[0][0], reg20.item(0, 20.0)) and reg20.test_alpha == 5.0  # a view; the original unchanged
    with pytest.raises(ValueError, match="not precomputed"):
        reg.with_test_alpha(20)
    wide = reg.with_regions(ALL_REGIONS)
    assert wide[0][0].shape == (len(ALL_REGIONS), 6, 16, 16) and reg[0][0].shape[0] == 10
    assert torch.equal(wide[0][0][:10], x)  # the shared regions come first, cropped the same way
    # Eq. 7: crops placed by dlib's landmarks of each magnified apex frame, near the aligned apex's
    assert set(reg.points) == {5.0, 8.0, 12.0} and reg.points[5.0][0].shape == (68, 2)
    assert np.abs(reg.points[5.0][0] - t_points(pairs)[0]).mean() < 3
    on_apex = MagnifiedRegions(pairs, spy, train_alphas=(8, 12), test_alpha=5, landmarks="apex", progress=False)
    assert all(np.array_equal(p, q) for p, q in zip(on_apex.points[8.0], t_points(pairs)))
    assert on_apex.key() != reg.key()
    fixed_apex, fixed_onset = reg.fixed_patches(5.0)  # aligned-landmark crops, whatever the placement
    assert np.array_equal(fixed_apex, on_apex.apex_patches[5.0]) and np.array_equal(fixed_onset, on_apex.onset_patches)
    # the paper's use of alpha against imbalance: minority classes get more magnified copies in training
    import copy
    fake = copy.copy(MagnifiedRegions(pairs, spy, train_alphas=(8, 10, 12, 15), test_alpha=5, progress=False))
    fake.labels = np.array([0, 0, 0, 0, 1, 2, 2])
    idx = np.arange(7)
    assert fake.copies(idx).tolist() == [1, 1, 1, 1, 4, 2, 2]
    assert len(fake.subset(idx, True)) == 12 and len(fake.subset(idx, False)) == 7
    fake.balance = False
    assert len(fake.subset(idx, True)) == 7
    raw = MagnifiedRegions(pairs, None, train_alphas=(8,), test_alpha=5, progress=False)
    assert np.array_equal(raw.frames[5.0], raw.frames[8.0])  # no magnifier: the raw apex at every alpha
    with pytest.raises(ValueError, match="'pair' recipe"):
        MagnifiedRegions(ClipDataset(t.clips, "diff", size=64, align=True, cache_dir=tmp_path / "c", progress=False),
                         None)
