"""p3 TDSGCN: the p+q graph, coarsening and pooling, the Chebyshev convolution, the model,
early stopping on training subjects, and macro -> micro transfer with the subject guard."""
import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from mer import models
from mer.models.pixel_graph import candidate_offsets, coarsen, grid_coordinates, pq_graph, rescaled_laplacian
from mer.models.tdsgcn import SGCN, ChebConv, _sparse
from mer.train import engine, transfer
from mer.train.splits import Fold, loso
from tests.test_engine import ToyData
from tests.training import tiny_batch_losses

TINY = ((3, 4, 1), (2, 4, 1))  # two layers, one coarsening each


def test_pq_graph_keeps_p_nearest_and_q_random_within_T():
    side, p, q, T = 12, 8, 2, 2 * math.sqrt(5)
    g = pq_graph(side, p, q, T, seed=0)
    z = grid_coordinates(side)
    centre = 6 * side + 6
    d = np.hypot(*(z - z[centre]).T)
    assert np.array_equal(np.sort(g.neighbours[centre, :p]), np.flatnonzero((d > 0) & (d < 1.5)))  # the 3x3 ring
    for i in range(side * side):
        picked = g.neighbours[i][g.neighbours[i] >= 0]
        dist = np.hypot(*(z[picked] - z[i]).T)
        assert len(set(picked)) == len(picked) and i not in picked and (dist <= T + 1e-9).all()
        near = np.sort(np.hypot(*(z - z[i]).T))[1:p + 1]
        assert np.allclose(np.sort(dist[:p]), near)  # the first p are the p nearest
        assert (dist[p:] >= dist[:p].max() - 1e-9).all()  # the random ones come from the rest
    a = g.adjacency.toarray()
    assert np.allclose(a, a.T) and (np.diag(a) == 0).all()
    for i in range(side * side):
        for j in g.neighbours[i][g.neighbours[i] >= 0]:
            assert a[i, j] == pytest.approx(math.exp(-((z[i] - z[j]) ** 2).sum() / g.sigma ** 2))
    assert g.sigma == pytest.approx(np.mean([max(np.hypot(*(z[j] - z[i]).T) for j in range(side * side)
                                                 if 0 < np.hypot(*(z[j] - z[i]).T) <= T + 1e-9)
                                             for i in range(side * side)]))
    same, other = pq_graph(side, p, q, T, seed=0), pq_graph(side, p, q, T, seed=1)
    assert np.array_equal(same.neighbours, g.neighbours)
    assert np.array_equal(other.neighbours[:, :p], g.neighbours[:, :p])  # the fixed part does not depend on the seed
    assert not np.array_equal(other.neighbours[:, p:], g.neighbours[:, p:])
    assert (pq_graph(side, 4, 0).neighbours >= 0).all()
    with pytest.raises(ValueError, match="candidates"):
        pq_graph(side, 8, 2, T=1.0)


def test_the_window_reading_of_T_keeps_fig_3s_24_candidates():
    side, p, q = 12, 8, 2
    assert len(candidate_offsets(2 * math.sqrt(5), "radius")) == 68 and len(candidate_offsets(candidates="window")) == 24
    g = pq_graph(side, p, q, seed=0, candidates="window")
    z = grid_coordinates(side)
    for i in range(side * side):
        picked = g.neighbours[i][g.neighbours[i] >= 0]
        assert (np.abs(z[picked] - z[i]).max(axis=1) <= 2).all()  # inside the 5 x 5 window
    centre = 6 * side + 6
    assert np.array_equal(np.sort(g.neighbours[centre, :p]), np.sort(pq_graph(side, p, q).neighbours[centre, :p]))
    assert g.sigma == pytest.approx(2 * math.sqrt(2), abs=0.1)  # the window's corner, bar the border
    with pytest.raises(ValueError, match="candidates must be"):
        pq_graph(side, p, q, candidates="disc")


def test_two_sgcns_with_the_same_p_q_draw_two_graphs():
    m = models.create("tdsgcn", num_classes=3, side=12, layers=TINY, fc=8, graphs=[(8, 2), (8, 2)],
                      branches=["spatial"])
    a, b = m.nets["spatial"].nets
    assert (a.graph_seed, b.graph_seed) == (0, 1)
    assert np.array_equal(a.neighbours[:, :8].numpy(), b.neighbours[:, :8].numpy())  # the p nearest: fixed
    assert not torch.equal(a.neighbours[:, 8:], b.neighbours[:, 8:])  # the q random ones: two draws
    single = models.create("tdsgcn", num_classes=3, side=12, layers=TINY, fc=8, graphs=[(8, 2)], branches=["spatial"])
    assert torch.equal(single.nets["spatial"].nets[0].neighbours, a.neighbours)  # the first SGCN keeps graph_seed
    # a p+0 graph has no random edges: its coarsening draw still refuses foreign weights
    four = [SGCN(side=12, p=4, q=0, layers=TINY, fc=8, graph_seed=s) for s in (0, 1)]
    assert torch.equal(four[0].neighbours, four[1].neighbours) and not torch.equal(four[0].gather, four[1].gather)
    with pytest.raises(RuntimeError, match="gather: the weights were trained on another 4\\+0 graph or coarsening"):
        four[1].load_state_dict(four[0].state_dict())


def test_coarsening_pools_each_parent_over_exactly_its_children():
    g = pq_graph(10, 4, 2, seed=0)
    c = coarsen(g.adjacency, 3, seed=0)
    assert [len(p) for p in c.perms] == [len(c.perms[3]) * 2 ** (3 - l) for l in range(4)]
    assert c.n_real[0] == 100 and c.n_real[1] < 100 and c.n_real[3] == len(c.perms[3])
    for lvl in range(4):  # every real node appears exactly once; fake nodes are isolated
        real = c.perms[lvl][c.real_mask(lvl)]
        assert np.array_equal(np.sort(real), np.arange(c.n_real[lvl]))
        w = c.graphs[lvl]
        fake = np.flatnonzero(~c.real_mask(lvl))
        assert w[fake].nnz == 0 and w[:, fake].nnz == 0
    # pooling with negative values: a max over a parent's real children only, never a fake node's 0
    real0 = torch.from_numpy(c.real_mask(0))
    x = -torch.rand(len(c.perms[0]), 2, 3) - 1.0
    x[~real0] = 0.0
    pooled = SGCN.pool(x, real0, 8)
    for k in range(pooled.shape[0]):
        kids = torch.arange(8 * k, 8 * k + 8)
        kids = kids[real0[kids]]
        expect = x[kids].amax(0) if len(kids) else torch.zeros(2, 3)
        assert torch.equal(pooled[k], expect)
    assert (pooled < 0).sum() > 0 and c.real_mask(3).all()
    # the coarse graph merges exactly the matched pairs: parent weights are sums over children
    assert float(c.graphs[1].sum()) <= float(c.graphs[0].sum())


def test_chebconv_matches_torch_geometric_and_k1_is_a_per_node_linear_map():
    from torch_geometric.nn import ChebConv as PygCheb
    torch.manual_seed(0)
    g = pq_graph(6, 4, 2, seed=0)
    lap = rescaled_laplacian(g.adjacency)
    w = g.adjacency.tocoo()
    edge_index = torch.tensor(np.vstack([w.row, w.col]), dtype=torch.long)
    edge_weight = torch.tensor(w.data, dtype=torch.float32)
    # the largest eigenvalue our rescaling used, recovered from L~ = 2 L / lambda - I
    n = 36
    deg = np.asarray(g.adjacency.sum(1)).ravel()
    norm = sp.identity(n) - sp.diags(deg ** -0.5) @ g.adjacency @ sp.diags(deg ** -0.5)
    lam = float(np.linalg.eigvalsh(norm.toarray()).max())
    ours = ChebConv(4, 3, 5)
    ref = PygCheb(3, 5, K=4, normalization="sym")
    with torch.no_grad():
        for k in range(4):
            ref.lins[k].weight.copy_(ours.weight[k].T)
        ref.bias.copy_(torch.randn(5))
        ours.bias.copy_(ref.bias)
    x = torch.randn(2, n, 3)
    expect = torch.stack([ref(x[b], edge_index, edge_weight, lambda_max=torch.tensor(lam)) for b in range(2)])
    got = ours(x.transpose(0, 1).contiguous(), _sparse(lap)).transpose(0, 1)
    assert torch.allclose(got, expect, atol=1e-4)
    one = ChebConv(1, 3, 5)
    assert torch.allclose(one(x.transpose(0, 1), _sparse(lap)).transpose(0, 1), x @ one.weight[0] + one.bias,
                          atol=1e-6)


def test_model_shapes_variants_and_graph_check():
    x = dict(spatial=torch.randn(3, 1, 12, 12), temporal=torch.randn(3, 3, 12, 12))
    m = models.create("tdsgcn", num_classes=4, side=12, layers=TINY, fc=8).eval()
    assert m(**x).shape == (3, 4) and len(m.nets["spatial"].nets) == 2
    only_t = models.create("tdsgcn", num_classes=4, side=12, layers=TINY, fc=8, branches=["temporal"],
                           graphs=[(4, 0)]).eval()
    assert only_t(temporal=x["temporal"]).shape == (3, 4)
    with pytest.raises(ValueError, match="spatial branch"):
        m(temporal=x["temporal"])
    with pytest.raises(ValueError, match="built for 12x12"):
        m(spatial=torch.randn(3, 1, 16, 16), temporal=x["temporal"])
    paper = models.create("tdsgcn", num_classes=5, config="paper", side=16).eval()
    assert [(c.k, c.weight.shape[2]) for c in paper.nets["spatial"].nets[0].convs] == [(9, 32), (9, 32), (6, 64),
                                                                                      (6, 64), (4, 128), (4, 128)]
    assert paper.nets["spatial"].nets[0].pools == [4, 4, 2, 2, 2, 2] and paper.nets["spatial"].nets[0].fc.out_features == 512
    # weights trained on one random draw do not load into a model built on another
    other = models.create("tdsgcn", num_classes=4, side=12, layers=TINY, fc=8, graph_seed=1)
    with pytest.raises(RuntimeError, match="another 8\\+2 graph"):
        other.load_state_dict(m.state_dict())


def test_loss_falls_on_a_tiny_batch_and_runs_are_deterministic():
    torch.manual_seed(0)
    x = dict(spatial=torch.randn(6, 1, 12, 12), temporal=torch.randn(6, 3, 12, 12))
    y = torch.tensor([0, 1, 2, 0, 1, 2])

    class Pos(torch.nn.Module):  # tiny_batch_losses calls model(*inputs)
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, s, t):
            return self.m(spatial=s, temporal=t)

    losses = tiny_batch_losses(Pos(models.create("tdsgcn", num_classes=3, side=12, layers=TINY, fc=16, dropout=0.0)),
                               (x["spatial"], x["temporal"]), y)
    assert losses[-1] < 0.5 * losses[0]
    outs = []
    for _ in range(2):
        torch.manual_seed(5)
        outs.append(models.create("tdsgcn", num_classes=3, side=12, layers=TINY, fc=8).eval()(**x))
    assert torch.equal(outs[0], outs[1])


def test_trains_under_mixed_precision():
    """The sparse Chebyshev products run in float32 inside autocast (bf16 and fp16 backward
    used to fail on the float32 Laplacian: what a CUDA run gets by default)."""
    x = dict(spatial=torch.randn(4, 1, 12, 12), temporal=torch.randn(4, 3, 12, 12))
    for dtype in (torch.bfloat16, torch.float16):
        torch.manual_seed(0)
        model = models.create("tdsgcn", num_classes=3, side=12, layers=TINY, fc=8)
        with torch.autocast("cpu", dtype=dtype):
            loss = torch.nn.functional.cross_entropy(model(**x).float(), torch.tensor([0, 1, 2, 0]))
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.requires_grad]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)


class ToySGCNData(ToyData):
    """The engine's toy data as TDSGCN inputs (one spatial channel, the blob image's mean)."""

    def subset(self, idx, train):
        base = super().subset(idx, train)
        return [({"spatial": torch.from_numpy(self.x[j].mean(0, keepdims=True))}, int(self.labels[j]))
                for j in base.idx]


def test_early_stopping_watches_held_out_training_subjects_only(tmp_path):
    data = ToyData(n_subjects=5)
    subjects = data.clips["subject"].to_numpy()
    fold = loso(data.clips)[0]
    tr, va = engine.validation_split(subjects, fold.train_idx, 0.25, seed=1)
    assert set(subjects[va]).isdisjoint(subjects[tr]) and fold.test_subjects[0] not in set(subjects[va])
    assert len(set(subjects[va])) == 1 and len(tr) + len(va) == len(fold.train_idx)
    with pytest.raises(ValueError, match="two training subjects"):
        engine.validation_split(subjects, np.flatnonzero(subjects == "s1"), 0.5, 0)
    cfg = engine.TrainConfig(epochs=30, batch_size=8, lr=0.05, seed=0, device="cpu", patience=2)
    from tests.test_engine import small_model
    r = engine.run_cv(data, [fold], small_model, cfg, tmp_path, ("a", "b", "c"), progress=False)
    curve = r.curves
    assert "val_loss" in curve and len(curve) < 30  # stopped early
    best = curve.loc[curve["best"], "epoch"].item()  # the last epoch that lowered the validation loss (by > 1e-6)
    assert curve["epoch"].max() == best + 2  # then patience = 2 epochs without improvement
    best_loss = curve.loc[curve["best"], "val_loss"].item()
    assert (curve.loc[curve["epoch"] < best, "val_loss"] > best_loss).all()
    assert (curve.loc[curve["epoch"] > best, "val_loss"] > best_loss - 1e-6).all()


def test_transfer_pretrains_without_test_subjects_and_loads_the_sgcns(tmp_path):

    macro = ToySGCNData(n_subjects=4, per_subject=6, seed=1)
    macro.clips["subject"] = ["s0", "s0", "s0", "s0", "s0", "s0"] + [f"m{i // 6}" for i in range(18)]  # s0 shared

    def build(n):
        return models.Spec("tdsgcn", num_classes=n, side=12, layers=TINY, fc=8, branches=["spatial"],
                           graphs=[(4, 0)])

    cfg = engine.TrainConfig(epochs=2, batch_size=8, lr=0.01, seed=0, device="cpu", val_subjects=0.3)
    pre = transfer.Pretrainer(macro, build(3), cfg, tmp_path / "pre", ("a", "b", "c"), progress=False)
    rec = pre(("s0",))
    assert "s0" not in rec["subjects"] + rec["val_subjects"] and rec["clips"] == 18
    assert len(rec["curve"]) == 2 and 0 <= rec["val_acc"] <= 1
    assert len(list((tmp_path / "pre").glob("pretrain_*.pt"))) == 1
    assert pre.key(("s0",)) != pre.key(("m1",))  # another exclusion, another pre-training
    again = transfer.Pretrainer(macro, build(3), cfg, tmp_path / "pre", ("a", "b", "c"), progress=False)
    torch.manual_seed(9)
    state_before = torch.get_rng_state()
    cached = again(("s0",))  # read from disk, RNG untouched
    assert torch.equal(torch.get_rng_state(), state_before)
    assert all(torch.equal(cached["state"][k], rec["state"][k]) for k in rec["state"])
    with pytest.raises(AssertionError, match="test-fold subject"):
        from mer.train.splits import guard_pretraining
        guard_pretraining(macro.clips, ("s0",))

    fold = Fold("s0", np.arange(6, 18), np.arange(6), ("s0",))
    model = transfer.transferred(build(2), pre)(fold)
    sgcn = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    assert all(torch.equal(v, rec["state"][k]) for k, v in sgcn.items())
    assert model.head.out_features == 2  # a fresh head for the micro classes
    assert isinstance(transfer.transferred(build(2), pre)(None), torch.nn.Module)  # architecture only
    bigger = models.create("tdsgcn", num_classes=2, side=12, layers=TINY, fc=8, graphs=[(4, 0)])
    with pytest.raises(ValueError, match="pre-train with the same branches"):
        bigger.load_sgcns(rec["state"])

    # the paper's transfer: the SGCNs frozen as feature extractors, only the head trains
    frozen = transfer.transferred(build(2), pre, freeze=True)
    assert frozen.key()["freeze"] is True and transfer.transferred(build(2), pre).key()["freeze"] is False
    model = frozen(fold)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    micro = ToySGCNData(n_subjects=3, per_subject=6, seed=2)
    micro.labels = micro.labels % 2
    engine.fit(model, micro.subset(np.arange(18), train=True), cfg, 0, torch.device("cpu"), progress=False)
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before if not k.startswith("head."))  # unchanged
    assert not torch.equal(after["head.weight"], before["head.weight"])  # the head learned
    model.train()
    assert not model.nets.training and model.head.training


def test_two_stream_items_flip_both_branches_together(tmp_path):
    from mer import data
    from mer.data.synth import SynthConfig, generate
    from mer.preprocess.two_stream import TwoStream
    root = generate(tmp_path / "s", SynthConfig(subjects=1, clips_per_subject=2, size=96, frames=(12, 14), workers=1),
                    progress=False)
    t = data.load("synth", root)
    ds = TwoStream(t.clips, side=16, flow_size=32, cache_dir=tmp_path / "c", progress=False)
    x, y = ds[0]
    assert x["spatial"].shape == (1, 16, 16) and x["temporal"].shape == (3, 16, 16) and y == t.clips.iloc[0]["label"]
    flipped = ds.item(0, flip=True)
    assert torch.equal(flipped["spatial"], x["spatial"].flip(-1))
    assert torch.equal(flipped["temporal"][0], -x["temporal"][0].flip(-1))  # u changes sign
    assert torch.equal(flipped["temporal"][1:], x["temporal"][1:].flip(-1))
    assert set(ds.branch_view(["temporal"])[0][0]) == {"temporal"}
    with pytest.raises(ValueError, match="branches"):
        TwoStream(t.clips, branches=["audio"])
