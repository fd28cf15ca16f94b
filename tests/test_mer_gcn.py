from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from mer import models
from mer.models.mer_gcn import (AU_REGIONS, GraphConvUnit, au_graph, conditional, cooccurrence, fold_graph, partition,
                                region_membership, spatial_pyramid)
from mer.preprocess.dataset import Augment
from mer.preprocess.landmark_frames import LandmarkFrames, five_crop, to_grid
from mer.train import splits
from tests.training import tiny_batch_losses


def test_cooccurrence_of_three_clips_equals_a_hand_count():
    vocabulary = (1, 2, 4, 12, 5)
    clips = [[1, 2], [1, 2, 4], [12, 17]]  # AU17 is outside the vocabulary; AU5 occurs nowhere
    counts = cooccurrence(clips, vocabulary)
    assert counts.tolist() == [
        [2, 2, 1, 0, 0],
        [2, 2, 1, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],
    ]
    p = conditional(counts)
    assert np.allclose(p, [
        [1, 1, 0.5, 0, 0],      # P(j | AU1): AU1 in 2 clips, with AU2 in both, with AU4 in one
        [1, 1, 0.5, 0, 0],
        [1, 1, 1, 0, 0],        # AU4's one clip has AU1 and AU2
        [0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0],        # never seen: a zero row, not NaN
    ])
    subsets, _ = partition(p, np.random.default_rng(0).normal(size=(5, 2)))
    assert np.isfinite(subsets).all() and np.allclose(subsets.sum(axis=(0, 2)), 1.0)
    assert subsets[:, 4].sum() == subsets[0, 4, 4] == 1.0  # the unseen AU keeps only its self loop


def test_partition_by_euclidean_distance_to_the_mean_position():
    # The paper's reading: r = distance to the mean of the node positions. The graph of the
    # hop test below: the mean is node 0's position; r = 0, 1, 2, 3, sqrt 5, sqrt 17, 4.
    pos = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [2, 1], [-4, -1], [-4, 0]], dtype=float)
    a = np.zeros((7, 7))
    for i, j in [(0, 1), (1, 2), (2, 3), (2, 4), (3, 4), (5, 6)]:
        a[i, j] = a[j, i] = 1.0
    subsets, r = partition(a, pos, centre_distance="euclidean")
    assert np.allclose(r, [0, 1, 2, 3, np.sqrt(5), np.sqrt(17), 4])
    root, centripetal, centrifugal = (s > 0 for s in subsets)
    # hops put 3 and 4 at the same distance (each other's root subset); by position 4 is
    # nearer the centre than 3, so 3 -> 4 is centripetal and 4 -> 3 centrifugal
    expect = {0: ({0}, set(), {1}), 1: ({1}, {0}, {2}), 2: ({2}, {1}, {3, 4}), 3: ({3}, {2, 4}, set()),
              4: ({4}, {2}, {3}), 5: ({5}, {6}, set()), 6: ({6}, set(), {5})}
    for node, (rt, cp, cf) in expect.items():
        assert set(np.flatnonzero(root[node])) == rt, node
        assert set(np.flatnonzero(centripetal[node])) == cp, node
        assert set(np.flatnonzero(centrifugal[node])) == cf, node
    assert np.allclose(subsets.sum(axis=(0, 2)), 1.0)
    # nodes at equal distance on either side of the centre share the root subset
    sym, r2 = partition(np.ones((3, 3)), np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, 0.0]]))
    assert r2[0] == r2[1] and sym[0, 0, 1] > 0 and sym[0, 1, 0] > 0 and sym[1, 0, 2] > 0 and sym[2, 2, 0] > 0
    with pytest.raises(ValueError, match="centre_distance"):
        partition(a, pos, centre_distance="manhattan")


def test_partition_of_a_known_graph_reaches_past_one_hop():
    # main component: 0 - 1 - 2 - 3, 2 - 4, 3 - 4; second component 5 - 6. The mean position
    # is node 0's, so node 0 anchors the search; node 6 is its component's node nearest it.
    pos = np.array([[0, 0], [1, 0], [2, 0], [3, 0], [2, 1], [-4, -1], [-4, 0]], dtype=float)
    a = np.zeros((7, 7))
    for i, j in [(0, 1), (1, 2), (2, 3), (2, 4), (3, 4), (5, 6)]:
        a[i, j] = a[j, i] = 1.0
    a[2, 1] = 0.5  # an asymmetric weight: P(1 | 2) = 0.5
    subsets, hops = partition(a, pos, centre_distance="hops")
    assert hops.tolist() == [0, 1, 2, 3, 3, 1, 0]  # a max_hop = 1 search would leave 2, 3, 4 at inf
    root, centripetal, centrifugal = (s > 0 for s in subsets)
    expect = {  # node: (root subset, centripetal, centrifugal), self loops in the root subset
        0: ({0}, set(), {1}), 1: ({1}, {0}, {2}), 2: ({2}, {1}, {3, 4}), 3: ({3, 4}, {2}, set()),
        4: ({3, 4}, {2}, set()), 5: ({5}, {6}, set()), 6: ({6}, set(), {5}),
    }
    for node, (r, cp, cf) in expect.items():
        assert set(np.flatnonzero(root[node])) == r, node
        assert set(np.flatnonzero(centripetal[node])) == cp, node
        assert set(np.flatnonzero(centrifugal[node])) == cf, node
    # weights: row 2 is (self 1, node 1 0.5, node 3 1, node 4 1) / 3.5
    assert np.isclose(subsets[1, 2, 1], 0.5 / 3.5) and np.isclose(subsets[2, 2, 3], 1 / 3.5)
    assert np.allclose(subsets.sum(axis=(0, 2)), 1.0)


def _clip_table(aus_per_subject: dict[str, list[list[int]]]) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    base = rng.uniform(10, 50, size=(68, 2))
    rows = []
    for subject, clips in aus_per_subject.items():
        for k, aus in enumerate(clips):
            rows.append({"subject": subject, "clip": f"{subject}_{k}", "aus": aus, "label": k % 2,
                         "landmarks_apex": base + rng.normal(scale=0.5, size=(68, 2))})
    return pd.DataFrame(rows)


def test_the_graph_comes_from_training_subjects_only():
    clips = _clip_table({"s1": [[1, 2], [4, 7]], "s2": [[6, 12], [1, 2, 5]], "s3": [[12], [14, 24]]})
    fold = next(f for f in splits.loso(clips) if f.test_subjects == ("s3",))
    graph = fold_graph(clips, fold.train_idx)
    changed = clips.copy()
    changed.at[4, "aus"] = [1, 4, 9, 25]  # the test subject's AUs
    changed.at[5, "landmarks_apex"] = changed.at[5, "landmarks_apex"] + 5.0  # and its landmarks
    same = fold_graph(changed, fold.train_idx)
    assert np.array_equal(graph.counts, same.counts) and np.array_equal(graph.subsets, same.subsets)
    assert np.array_equal(graph.positions, same.positions)
    assert graph.clips == 4
    changed.at[0, "aus"] = [1, 4, 9, 25]  # a training subject's AUs do change it
    assert not np.array_equal(fold_graph(changed, fold.train_idx).counts, graph.counts)
    # the model of the fold carries that graph
    m = models.create("mer_gcn", num_classes=2, graph=graph)
    assert torch.allclose(m.subsets, torch.from_numpy(graph.subsets).float())
    with pytest.raises(ValueError, match="differs from the graph"):
        models.create("mer_gcn", num_classes=2, graph=graph, vocabulary=(1, 2))
    with pytest.raises(ValueError, match="landmarks_apex"):
        fold_graph(clips.drop(columns="landmarks_apex"), fold.train_idx)


def test_graph_conv_unit_aggregates_neighbours_into_the_root():
    torch.manual_seed(0)
    unit = GraphConvUnit(2, 3, nodes=3, residual=False).eval()
    adjacency = torch.zeros(3, 3, 3)
    adjacency[0] = torch.eye(3)
    adjacency[1, 0, 1] = 1.0  # node 0 receives node 1 (centripetal subset)
    x = torch.randn(1, 2, 4, 3)
    y = unit(x, adjacency)
    bumped = x.clone()
    bumped[..., 1] += 1.0
    changed = (unit(bumped, adjacency) - y).abs().sum(dim=(0, 1, 2))
    assert changed[0] > 0 and changed[1] > 0 and changed[2] == 0  # node 1 reaches node 0, not node 2
    bumped = x.clone()
    bumped[..., 0] += 1.0
    assert (unit(bumped, adjacency) - y)[..., 1].abs().sum() == 0  # no edge from node 0 into node 1


def test_spatial_pyramid_pools_levels_1_2_4_over_nodes():
    x = torch.tensor([1.0, 5.0, 2.0, 3.0]).view(1, 1, 1, 4)
    assert spatial_pyramid(x, (1, 2, 4)).flatten().tolist() == [5, 5, 3, 1, 5, 2, 3]
    assert spatial_pyramid(torch.randn(2, 8, 5, 17), (1, 2, 4)).shape == (2, 5, 56)


def _inputs(b=3, t=4, size=32, vocabulary=(1, 2, 4, 12)):
    landmarks, _ = region_membership(vocabulary)
    torch.manual_seed(1)
    return torch.randn(b, t, 6, size, size), torch.rand(b, len(landmarks), 2) * 1.6 - 0.8


def test_shapes_variants_and_the_paper_configuration():
    frames, points = _inputs()
    for variant in ({}, {"use_gcn": False}, {"use_transformer": False}):
        m = models.create("mer_gcn", num_classes=5, vocabulary=(1, 2, 4, 12), **variant)
        assert m(frames, points).shape == (3, 5)
    paper = models.create("mer_gcn", num_classes=3, config="paper", vocabulary=(1, 2, 4, 12))
    assert len(paper.units) == 9
    assert [u.cout for u in paper.units] == [64] * 3 + [128] * 3 + [256] * 3
    assert paper.encoder.layers[0].self_attn.num_heads == 8 and len(paper.encoder.layers) == 6
    assert paper.encoder.layers[0].self_attn.embed_dim == 512
    assert tuple(paper.units[0].importance.shape) == (3, 4, 4)
    assert paper(torch.randn(2, 5, 6, 32, 32), points[:2]).shape == (2, 3)
    with pytest.raises(ValueError, match="expected 13 landmarks"):
        m(frames, points[:, :3])
    with pytest.raises(ValueError, match="no facial region is defined for AU"):
        fold_graph(_clip_table({"s1": [[1]]}), np.array([0]), vocabulary=(1, 99))


def test_loss_falls_on_a_tiny_batch_and_seeded_models_are_identical():
    frames, points = _inputs(b=6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    torch.manual_seed(0)
    m = models.create("mer_gcn", num_classes=3, vocabulary=(1, 2, 4, 12))
    losses = tiny_batch_losses(m, (frames, points), y)
    assert losses[-1] < 0.5 * losses[0]
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        outs.append(models.create("mer_gcn", num_classes=3, vocabulary=(1, 2, 4, 12)).eval()(frames, points))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(8)
    assert not torch.equal(models.create("mer_gcn", num_classes=3, vocabulary=(1, 2, 4, 12)).eval()(frames, points),
                           outs[0])


def test_the_ml_gcn_reading_applies_the_au_graph_to_the_sequence_feature():
    frames, points = _inputs(b=6)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    vocabulary = (1, 2, 4, 12)
    landmarks = np.random.default_rng(0).uniform(0, 64, (4, 68, 2))
    graph = au_graph([[1, 2], [1, 2, 4], [12]], landmarks, vocabulary)
    torch.manual_seed(0)
    m = models.create("mer_gcn", num_classes=3, graph=graph, reading="mlgcn").eval()
    assert len(m.units) == 0 and len(m.au_layers) == 2 and m.data_bn is None
    # H^L: one d_model vector per AU, propagated over P(j | i) with self loops, rows summing to 1
    assert tuple(m.au_vectors().shape) == (4, 64)
    expected = graph.adjacency.copy()
    np.fill_diagonal(expected, 1.0)  # P(i | i) = 1 already for every AU a training clip has
    assert np.allclose(m.propagation.numpy(), expected / expected.sum(1, keepdims=True), atol=1e-6)
    assert m.head.in_features == 4  # the class scores come from the per-AU products
    out = m(frames, points)
    assert out.shape == (6, 3)
    # the graph enters: another co-occurrence graph, same weights, other outputs
    other = models.create("mer_gcn", num_classes=3, graph=au_graph([[1], [2], [4, 12]], landmarks, vocabulary),
                          reading="mlgcn").eval()
    other.load_state_dict({k: v for k, v in m.state_dict().items() if k != "propagation"}, strict=False)
    assert not torch.allclose(other(frames, points), out)
    # the landmarks do not (the sequence feature is the CNN's pooled frames)
    assert torch.equal(m(frames, torch.zeros_like(points)), out)
    # Table 2's variants exist in this reading too, and it learns
    for variant in ({"use_gcn": False}, {"use_transformer": False}):
        assert models.create("mer_gcn", num_classes=3, graph=graph, reading="mlgcn", **variant)(frames, points).shape \
            == (6, 3)
    torch.manual_seed(0)
    losses = tiny_batch_losses(models.create("mer_gcn", num_classes=3, graph=graph, reading="mlgcn"), (frames, points), y,
                               steps=60)
    assert losses[-1] < 0.6 * losses[0]  # slower than the ST-GCN reading: 4 AU scores are its only path
    with pytest.raises(ValueError, match="reading"):
        models.create("mer_gcn", num_classes=3, vocabulary=vocabulary, reading="gat")


def _fake_sequences(n=4, t=3, size=32):
    rng = np.random.default_rng(0)
    data = [rng.integers(0, 255, size=(t, size, size, 3), dtype=np.uint8) for _ in range(n)]
    points = [np.tile([[10.0, 20.0]], (68, 1)) for _ in range(n)]
    clips = pd.DataFrame({"subject": [f"s{i % 2}" for i in range(n)], "clip": [f"c{i}" for i in range(n)],
                          "label": [i % 2 for i in range(n)], "landmarks_apex": points})
    return SimpleNamespace(recipe="sequence", align=True, sampling="uniform", clips=clips,
                           labels=clips["label"].to_numpy(), size=size, data=data)


def test_landmark_frames_items_and_five_crop():
    seq = _fake_sequences()
    ds = LandmarkFrames(seq, [0, 5, 67], diff_gain=10.0)
    x, y = ds[1]
    assert x["frames"].shape == (3, 6, 32, 32) and x["points"].shape == (3, 2) and y == 1
    assert torch.equal(x["frames"][0, 3:], torch.zeros(3, 32, 32))  # the onset's change from itself
    expected = torch.from_numpy(seq.data[1][2]).float().permute(2, 0, 1) / 255 - 0.5
    assert torch.allclose(x["frames"][2, :3], expected)
    assert torch.allclose(x["frames"][2, 3:], (expected - x["frames"][0, :3]) * 10)
    assert np.allclose(x["points"][0].numpy(), [2 * 10.5 / 32 - 1, 2 * 20.5 / 32 - 1])
    # five crop: a bright dot at a landmark stays under the moved landmark
    frames = np.zeros((1, 32, 32, 3), dtype=np.uint8)
    frames[0, 20, 10] = 255
    for which in range(5):
        out, pts = five_crop(frames, np.array([[10.0, 20.0]]), which, 0.75)
        px, py = np.unravel_index(out[0, ..., 0].argmax(), out.shape[1:3])[::-1]
        assert abs(px - pts[0, 0]) <= 1 and abs(py - pts[0, 1]) <= 1, which
    # training items are augmented (one draw); evaluation items are not
    ds = LandmarkFrames(seq, [0], augment=Augment(flip=False, rotate=0.0, pad=0, jitter=0.2), five_crop=0.875)
    torch.manual_seed(0)
    train_item = ds.subset(np.array([1]), train=True)[0][0]
    assert not torch.equal(train_item["frames"], ds[1][0]["frames"])
    assert torch.equal(ds.subset(np.array([1]), train=False)[0][0]["frames"], ds[1][0]["frames"])
    # at test, five-crop training's zoom is matched by the centre crop (or the whole face with "full")
    centre, centre_pts = five_crop(seq.data[1], ds.points[1], 4, 0.875)
    expected = torch.from_numpy(centre[2]).float().permute(2, 0, 1) / 255 - 0.5
    assert torch.allclose(ds[1][0]["frames"][2, :3], expected)
    assert np.allclose(ds[1][0]["points"].numpy(), to_grid(centre_pts, 32))
    full = LandmarkFrames(seq, [0], five_crop=0.875, test_crop="full")
    assert torch.equal(full[1][0]["frames"], LandmarkFrames(seq, [0])[1][0]["frames"])
    assert full.key()["test_crop"] == "full" != ds.key()["test_crop"]
    with pytest.raises(ValueError, match="test_crop"):
        LandmarkFrames(seq, [0], five_crop=0.875, test_crop="corner")
    with pytest.raises(ValueError, match="68-point"):
        LandmarkFrames(seq, [68])
    with pytest.raises(ValueError, match="sequence"):
        LandmarkFrames(SimpleNamespace(**{**vars(seq), "recipe": "diff"}), [0])
    assert to_grid(np.array([[-0.5, 31.5]]), 32).tolist() == [[-1.0, 1.0]]


def test_every_au_region_is_a_valid_landmark_group():
    assert all(regions and all(0 <= i < 68 for i in regions) for regions in AU_REGIONS.values())
    landmarks, m = region_membership(tuple(AU_REGIONS))
    assert torch.allclose(m.sum(1), torch.ones(len(AU_REGIONS)))
    assert len(landmarks) == len(set(landmarks)) == m.shape[1]
