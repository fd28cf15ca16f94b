import math

import numpy as np
import pytest
import torch

from mer import models
from mer.models.atm_gcn import AdaptiveTM, edge_mask, edge_weights
from mer.models.blocks import CABackbone
from tests.training import tiny_batch_losses


def test_output_shapes_and_variants():
    x, a = torch.randn(4, 6, 3, 32, 32), torch.tensor([1, 3, 5, 2])
    for variant in ({}, {"use_gcn": False}, {"use_motion": False}, {"use_atm": False}):
        m = models.create("atm_gcn", frames=6, num_classes=5, config="quick", **variant)
        assert m(frames=x, apex_index=a).shape == (4, 5)
    m = models.create("atm_gcn", frames=6, num_classes=3)
    assert m.attention_maps(x, a).shape == (4, 5, 8, 8)  # quick: 32 px -> stem 16 -> block 1 at 8
    with pytest.raises(ValueError, match="built for 6 frames"):
        m(torch.randn(2, 8, 3, 32, 32), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="lambda_local < lambda_global"):
        models.create("atm_gcn", frames=6, lambda_local=2.0, lambda_global=1.0)


def test_mmnet_backbone_sizes():
    """MMNet at 224 px: stem stride 2 then strides 1, 2, 2, 2: 112 -> 14, 512 channels."""
    bb = CABackbone()
    feat, maps = bb(torch.zeros(1, 3, 224, 224))
    assert feat.shape == (1, 512, 14, 14)
    assert [m.shape[-1] for m in maps] == [112, 56, 28, 14] and all(m.shape[1] == 1 for m in maps)


def test_edge_weights_of_a_four_node_example_by_hand():
    # four nodes at t = 1, 2, 3 and (the earlier "extra" layout) a global copy last, at the apex t = 2
    h = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [1.0, 1.0]]])
    times = torch.tensor([[1.0, 2.0, 3.0, 2.0]])
    glob = torch.tensor([3])
    mask = edge_mask(4, window=1, glob=glob)
    a = edge_weights(h, times, mask, glob, tau=10.0, lambda_local=1.0, lambda_global=2.0)[0]
    e = math.exp(-0.1)
    # 1 - arccos(cos)/pi: cos 1 -> 1, cos 1/sqrt2 -> 0.75, cos 0 -> 0.5, cos -1/sqrt2 -> 0.25, cos -1 -> 0
    expected = torch.tensor([
        [1.0, 0.5 * e, 0.0, 0.75 * e],           # node 1: window w = 1 excludes node 3
        [0.5 * e, 1.0, 0.5 * e, 0.75],           # node 2: the global node sits at the same time
        [0.0, 0.5 * e, 1.0, 0.25 * e],
        [2 * 0.75 * e, 2 * 0.75, 2 * 0.25 * e, 2 * 1.0],  # global row: lambda_global, linked to all
    ])
    assert torch.allclose(a, expected, atol=1e-3)
    assert mask[0].tolist() == [[True, True, False, True], [True, True, True, True], [False, True, True, True],
                                [True, True, True, True]]


def test_the_apex_node_is_the_global_node():
    """The paper: nodes v_2..v_L (L - 1 of them), the onset-apex pair's node is the Global
    Motion Node, with no window edges of its own (Eq. 3 "i != global"): it links to every
    node and every node links to it."""
    m = models.create("atm_gcn", frames=6, num_classes=5, window=1).eval()
    x, apex = torch.randn(2, 6, 3, 32, 32), torch.tensor([3, 5])
    h, times = m.node_features(x, apex)
    glob, valid = m.graph_nodes(apex)
    assert h.shape[1] == 5 == m.nodes and valid.all()  # L - 1 nodes, no extra copy
    assert glob.tolist() == [2, 4]  # node k holds frame k + 1: the apex frames 3 and 5
    assert times[0].tolist() == [1, 2, 3, 4, 5] and times[0, glob[0]] == apex[0]
    # the global node is encoded from f_apex - f_onset like every pair, once
    seq, g_in = m._inputs(x, apex)
    assert torch.allclose(seq[0, 2], g_in[0]) and torch.allclose(seq[1, 4], g_in[1])
    mask = edge_mask(5, 1, glob)
    assert mask[0, 2].all() and mask[0, :, 2].all()  # global row and column: every node
    assert mask[0, 0].tolist() == [True, True, True, False, False]  # local node 0: window + the global node
    assert mask[1, 0].tolist() == [True, True, False, False, True]
    a0 = m.adjacencies(h, times, glob, valid)[0]
    off = ~torch.eye(5, dtype=torch.bool)
    lam_g = a0[0, 2][off[2]] / a0[0, :, 2][off[2]]  # same similarity and decay both ways: the ratio is the lambdas
    assert torch.allclose(lam_g, torch.full_like(lam_g, 2.0), atol=1e-5)
    # the earlier reading stays available: T nodes, the apex pair twice with identical h(0)
    extra = models.create("atm_gcn", frames=6, num_classes=5, global_node="extra").eval()
    h2, _ = extra.node_features(x, apex)
    assert h2.shape[1] == 6 and torch.allclose(h2[0, -1], h2[0, 2], atol=1e-5)
    with pytest.raises(ValueError, match="global_node"):
        models.create("atm_gcn", frames=6, global_node="copy")


def test_padded_clips_ignore_their_padding():
    """30 Hz clips shorter than T are padded; the padding changes nothing in the output."""
    torch.manual_seed(0)
    m = models.create("atm_gcn", frames=6, num_classes=3).eval()
    x, apex = torch.randn(1, 6, 3, 32, 32), torch.tensor([2])
    out = m(x, apex, torch.tensor([4]))
    x2 = x.clone()
    x2[:, 4:] = torch.randn(1, 2, 3, 32, 32)  # other padding
    assert torch.allclose(m(x2, apex, torch.tensor([4])), out, atol=1e-5)
    assert not torch.allclose(m(x2, apex), out, atol=1e-3)  # read as 6 real frames, it differs


def test_adaptive_adjacency_update_follows_the_formula():
    torch.manual_seed(0)
    n = 4
    mask = edge_mask(n, window=1, glob=torch.tensor([n - 1, 1]))
    a0 = torch.rand(2, n, n) * mask
    adapt = AdaptiveTM(n)
    # identity initialisation: FC(A(0)) = A(0), so A(1) = A(0)
    assert torch.allclose(adapt(a0, a0, mask), a0, atol=1e-6)
    with torch.no_grad():
        adapt.fc.weight.copy_(torch.randn(n, n))
        adapt.fc.bias.copy_(torch.randn(n))
        adapt.forget.fill_(0.7)
    a_prev = torch.rand(2, n, n) * mask
    f = 1 / (1 + math.exp(-0.7))
    fc = torch.relu(a_prev @ adapt.fc.weight.T + adapt.fc.bias) * mask
    assert torch.allclose(adapt(a_prev, a0, mask), fc * (1 - f) + a0 * f, atol=1e-6)
    # a model without Adaptive-TM uses A(0) in every layer
    m = models.create("atm_gcn", frames=6, use_atm=False)
    apex = torch.tensor([2, 5])
    h, t = m.node_features(torch.randn(2, 6, 3, 32, 32), apex)
    adj = m.adjacencies(h, t, *m.graph_nodes(apex))
    assert len(adj) == 2 and torch.equal(adj[0], adj[1])


def test_loss_falls_on_a_tiny_batch():
    torch.manual_seed(0)
    m = models.create("atm_gcn", frames=6, num_classes=3)
    x, a, y = torch.randn(6, 6, 3, 32, 32), torch.randint(1, 6, (6,)), torch.tensor([0, 1, 2, 0, 1, 2])
    losses = tiny_batch_losses(m, (x, a), y)
    assert losses[-1] < 0.5 * losses[0]


def test_identical_outputs_for_one_seed():
    x, a = torch.randn(3, 6, 3, 32, 32), torch.tensor([1, 4, 5])
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        m = models.create("atm_gcn", frames=6, num_classes=5).eval()
        outs.append(m(x, a))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(124)
    assert not torch.equal(models.create("atm_gcn", frames=6, num_classes=5).eval()(x, a), outs[0])


def test_sequence_dataset_carries_the_apex(tmp_path):
    from mer import data
    from mer.data.synth import SynthConfig, generate
    from mer.preprocess import ClipDataset
    root = generate(tmp_path / "s", SynthConfig(subjects=1, clips_per_subject=3, size=96, frames=(20, 30), workers=1),
                    progress=False)
    t = data.load("synth", root)
    ds = ClipDataset(t.clips, "sequence", size=32, T=8, include_apex=True, align=False, cache_dir=tmp_path / "c",
                     progress=False)
    x, y = ds[0]
    assert set(x) == {"frames", "apex_index"} and x["frames"].shape == (8, 3, 32, 32)
    row = t.clips.iloc[0]
    from mer.preprocess.frames import uniform_numbers, with_apex
    numbers = with_apex(uniform_numbers(row["onset"], row["offset"], 8), row["apex"])
    assert numbers[int(x["apex_index"])] == row["apex"] and numbers[0] == row["onset"]
    batch = torch.utils.data.default_collate([ds.subset(np.arange(3), True)[i] for i in range(3)])
    assert batch[0]["frames"].shape == (3, 8, 3, 32, 32) and batch[0]["apex_index"].shape == (3,)
    # 30 Hz (the paper's small-dataset reading): each clip's own length, the apex among its frames
    rate = ClipDataset(t.clips, "sequence", size=32, T=8, sampling="rate", target_fps=30, include_apex=True,
                       align=False, cache_dir=tmp_path / "c", progress=False)
    for i, row in enumerate(t.clips.itertuples()):
        from mer.preprocess.frames import rate_numbers
        picked = with_apex(rate_numbers(row.onset, row.offset, row.fps, 30), row.apex)
        assert rate.lengths[i] == len(picked) <= 8  # 20-30 frames at 200 fps: 3-5 frames at 30 Hz
        x, _ = rate[i]
        assert x["frames"].shape == (8, 3, 32, 32) and int(x["length"]) == len(picked)
        assert torch.equal(x["frames"][len(picked) - 1], x["frames"][-1])  # padded with the last frame
        assert picked[int(x["apex_index"])] == row.apex
    out = models.create("atm_gcn", frames=8, num_classes=5)(**torch.utils.data.default_collate([rate[i][0] for i in range(3)]))
    assert out.shape == (3, 5)
