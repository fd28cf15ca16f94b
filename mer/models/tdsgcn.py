"""p3 TDSGCN: transferring dual stochastic graph convolutional network.

Model (paper section III; graphs in :mod:`mer.models.pixel_graph`):
- SGCN: a p+q pixel graph over a side x side face, six Chebyshev graph convolutions
  (Table I: K = 9, 9, 6, 6, 4, 4; channels 32, 32, 64, 64, 128, 128; coarsened 2, 2, 1, 1,
  1, 1 times after each, i.e. max-pools of 4, 4, 2, 2, 2, 2 nodes), ReLU, FC 512 + ReLU +
  dropout. The convolution is the Chebyshev recurrence on the fixed rescaled Laplacian
  of each level (T_0 = x, T_1 = L x, T_k = 2 L T_{k-1} - T_{k-2}), K terms T_0..T_{K-1} as
  torch-geometric's ChebConv (a test checks they agree); the graph is the same for every
  sample, so one sparse product serves the whole batch.
- DSGCN: two SGCNs with different graphs (p1+q1, p2+q2), features concatenated (Eq. 4);
  the k-th SGCN draws its graph with seed ``graph_seed + k``, so "8+2 and 8+2" (Table VII)
  is two draws.
- TDSGCN: a spatial DSGCN on the face image and a temporal DSGCN on the optical flow
  image, features concatenated (Eq. 5), one FC to the classes. Loss: focal (engine).
- Transfer: the whole network is pre-trained on macro-expression clips (its own class
  head), then its SGCNs initialise the micro model (:meth:`TDSGCN.load_sgcns`) with a
  fresh head (:mod:`mer.train.transfer`). As the paper describes it ("the trained models
  extract the features of micro-expression samples"; "we train a fully connected layer by
  the fused features"), the SGCNs then stay fixed and only the head trains
  (``freeze_sgcns``, on in the paper profiles); fine-tuning every weight is the option.
- Table VI as the paper ran it (cross-entropy, each branch trained and scored alone) and
  all six rows of Table VII: :func:`ablation_plan`; the paper's columns: :func:`table_vi`.
  Fig. 8 (the flow's mean and variance over clips): :func:`flow_statistics`.

Assumptions (not stated in the paper; each is a parameter):
- assumption: the spatial branch sees one frame, the apex (grey, centred to [-0.5, 0.5]);
  the paper selects frames "by optical flow" without saying how many or which.
- assumption: the temporal branch sees one flow image, onset -> apex (u, v and optical
  strain as three node channels, computed at ``flow_size`` and area-resized to the graph,
  u and v times ``flow_gain``).
- assumption: the graph is ``side`` x ``side`` pixels (32 in the paper profiles; the paper
  gives no size).
- assumption: T = 2*sqrt(5) read as a Euclidean radius (68 candidates; ``candidates=
  "radius"``); the 5 x 5 window of the paper's Fig. 3 (24 candidates) is ``"window"``.
  sigma is the mean distance to the farthest *candidate* (:mod:`mer.models.pixel_graph`).
- assumption: the graph's random draw and its coarsening are seeded by ``graph_seed`` (0;
  the k-th SGCN of a dual net ``graph_seed + k``) and stored in the state dict
  (``neighbours``, and the coarsening's leaf order ``gather``): loading weights trained on
  another draw is refused.
- assumption: dropout 0.5 after the FC 512 of each SGCN (Table I names the FC and a
  dropout, not its rate); frozen SGCNs run in eval mode, so without it.
- assumption: the focal loss is the multi-class form with one scalar alpha (Eq. 6-7 write
  a plain alpha, and the paper's grid holds alpha = 1.5 and 2, which rules out a binary
  alpha / 1 - alpha). A scalar alpha only scales the loss, which Adam's updates ignore
  (up to epsilon and weight decay): the alpha axis of the paper's grid has no effect
  here, and the notebook says so.
- assumption: the whole network (both branches, both SGCNs) is pre-trained on the macro
  clips with its own class head and the fold's loss (cross-entropy for the Table VI and
  VII rows that use it); the paper pre-trains "the SGCNs" in a source network.
- assumption: pre-training holds out a fifth of the macro subjects (``val_subjects``) to
  report its accuracy on unseen faces and to early-stop on; "decay 1e-6" (a Keras
  time-based lr decay) is left out; early stopping "when the loss stops improving" waits
  ``patience`` (10) epochs on held-out *training* subjects, never the test subject.
- assumption: the paper's split (one held-out test set of about 44 MMEW or 32 SAMM clips,
  read off its accuracies) is ``folds="holdout:N"`` (:func:`mer.train.splits.holdout`:
  whole subjects, seeded); this study's main run is LOSO.

How the quick profile's settings were chosen (tuning probes on SynthME, synthetic numbers) is
in params/tdsgcn/NOTES.md.
"""
from __future__ import annotations

import math
from functools import lru_cache
from typing import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from mer.models import register
from mer.models.pixel_graph import PAPER_T, coarsen, pq_graph, rescaled_laplacian

# Table I: (K, channels, coarsening times) per layer
TABLE_I: tuple[tuple[int, int, int], ...] = ((9, 32, 2), (9, 32, 2), (6, 64, 1), (6, 64, 1), (4, 128, 1), (4, 128, 1))

CONFIGS: dict[str, dict] = {
    "paper": dict(layers=TABLE_I, fc=512),
    # CPU-sized for SynthME: Table I's six layers and coarsening, lower orders and half the
    # channels (2.7 ms per clip per training step on 2 cores at 24 x 24, against 11 ms)
    "quick": dict(layers=((5, 16, 2), (5, 16, 2), (4, 32, 1), (4, 32, 1), (3, 64, 1), (3, 64, 1)), fc=128),
}


def _sparse(m: sp.csr_matrix) -> torch.Tensor:
    coo = m.tocoo()
    idx = torch.from_numpy(np.vstack([coo.row, coo.col]).astype(np.int64))
    return torch.sparse_coo_tensor(idx, torch.from_numpy(coo.data.astype(np.float32)), coo.shape,
                                   check_invariants=False).coalesce()


class ChebConv(nn.Module):
    """sum_k T_k(L~) X W_k + b over a fixed graph. X is node-major (N, B, C_in) so that
    one sparse product per term serves the whole batch; L~ is a sparse (N, N)."""

    def __init__(self, k: int, c_in: int, c_out: int):
        super().__init__()
        if k < 1:
            raise ValueError(f"Chebyshev order K must be >= 1, got {k}")
        self.k = k
        self.weight = nn.Parameter(torch.empty(k, c_in, c_out))
        self.bias = nn.Parameter(torch.zeros(c_out))
        bound = 1 / math.sqrt(k * c_in)
        nn.init.uniform_(self.weight, -bound, bound)

    def forward(self, x: torch.Tensor, lap: torch.Tensor) -> torch.Tensor:
        # In float32 even under mixed precision: the sparse products' backward refuses a
        # half-precision gradient against the float32 Laplacian.
        with torch.autocast(x.device.type, enabled=False):
            return self._filter(x.float(), lap)

    def _filter(self, x: torch.Tensor, lap: torch.Tensor) -> torch.Tensor:
        n, b, c = x.shape
        t0 = x.reshape(n, b * c)
        terms = [t0]
        if self.k > 1:
            terms.append(torch.sparse.mm(lap, t0))
        for _ in range(2, self.k):
            terms.append(2 * torch.sparse.mm(lap, terms[-1]) - terms[-2])
        t = torch.stack(terms, dim=1).reshape(n, self.k, b, c).transpose(1, 2).reshape(n * b, self.k * c)
        return (t @ self.weight.reshape(self.k * c, -1) + self.bias).reshape(n, b, -1)


@lru_cache(maxsize=32)
def graph_structure(side: int, p: int, q: int, T: float, graph_seed: int, levels: tuple[int, ...],
                    candidates: str = "radius") -> dict:
    """Everything an SGCN keeps of its graph, computed once per (side, p, q, T, seed, levels,
    candidates)
    and shared by every model built with them (an ablation grid builds dozens): the p+q
    neighbours, the level-0 gather (the pixel feeding each tree position; fake positions
    read a zero node), the rescaled Laplacians of the coarsened graphs used by a layer, the
    real-node masks and the number of output nodes. Callers copy the arrays."""
    graph = pq_graph(side, p, q, T, graph_seed, candidates)
    coarse = coarsen(graph.adjacency, levels[-1], seed=graph_seed)
    n = side * side
    gather = coarse.perms[0].copy()
    gather[gather >= n] = n
    return {"neighbours": graph.neighbours, "gather": gather,
            "laplacians": {lvl: rescaled_laplacian(coarse.graphs[lvl]) for lvl in sorted(set(levels[:-1]))},
            "real": {lvl: coarse.real_mask(lvl) for lvl in sorted(set(levels))},
            "n_out": len(coarse.perms[levels[-1]])}


class SGCN(nn.Module):
    """One stochastic graph network: (B, C, side, side) -> (B, fc) features."""

    def __init__(self, side: int = 32, p: int = 8, q: int = 2, in_chans: int = 1,
                 layers: Sequence[tuple[int, int, int]] = TABLE_I, fc: int = 512, dropout: float = 0.5,
                 T: float = PAPER_T, graph_seed: int = 0, candidates: str = "radius"):
        super().__init__()
        self.side, self.p, self.q, self.graph_seed = side, p, q, graph_seed
        self.pools = [2 ** s for _, _, s in layers]
        levels = [0]
        for _, _, s in layers:
            levels.append(levels[-1] + s)
        self.levels = levels
        graph = graph_structure(side, p, q, float(T), graph_seed, tuple(levels), candidates)
        self.register_buffer("neighbours", torch.from_numpy(graph["neighbours"].copy()))
        # saved with the weights: the coarsening's leaf order, so weights are never loaded onto
        # another coarsening draw (a p+0 graph has no random edges to tell the draws apart)
        self.register_buffer("gather", torch.from_numpy(graph["gather"].copy()))
        for lvl, lap in graph["laplacians"].items():
            self.register_buffer(f"lap{lvl}", _sparse(lap), persistent=False)
        for lvl, real in graph["real"].items():
            self.register_buffer(f"real{lvl}", torch.from_numpy(real.copy()), persistent=False)
        convs, c_in = [], in_chans
        for k, c_out, _ in layers:
            convs.append(ChebConv(k, c_in, c_out))
            c_in = c_out
        self.convs = nn.ModuleList(convs)
        self.n_out_nodes = graph["n_out"]
        self.fc = nn.Linear(self.n_out_nodes * c_in, fc)
        self.dropout = nn.Dropout(dropout)
        self.out_dim = fc

    def to_nodes(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, side, side) -> node-major (N0, B, C) in tree order, fake nodes zero."""
        b, c = x.shape[:2]
        flat = x.reshape(b, c, -1).permute(2, 0, 1)
        flat = torch.cat([flat, flat.new_zeros(1, b, c)], dim=0)
        return flat[self.gather]

    @staticmethod
    def pool(x: torch.Tensor, real: torch.Tensor, size: int) -> torch.Tensor:
        """Max over each group of ``size`` consecutive nodes of node-major ``x`` (N, B, C):
        one parent's descendants. Fake nodes are excluded; a parent with no real descendant
        gets 0."""
        if size == 1:
            return x * real[:, None, None]
        n, b, c = x.shape
        masked = x.masked_fill(~real[:, None, None], float("-inf"))
        out = masked.reshape(n // size, size, b, c).amax(dim=1)
        return torch.where(torch.isfinite(out), out, torch.zeros((), dtype=out.dtype, device=out.device))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.side, self.side):
            raise ValueError(f"SGCN({self.p}+{self.q}) is built for {self.side}x{self.side} inputs, got {tuple(x.shape)}")
        h = self.to_nodes(x)
        for conv, lvl, size in zip(self.convs, self.levels, self.pools):
            h = F.relu(conv(h, getattr(self, f"lap{lvl}")))
            h = self.pool(h, getattr(self, f"real{lvl}"), size)
        return self.dropout(F.relu(self.fc(h.transpose(0, 1).flatten(1))))

    forward = features

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name in ("neighbours", "gather"):
            saved, own = state_dict.get(prefix + name), getattr(self, name)
            if saved is not None and (saved.shape != own.shape or not torch.equal(saved.to(own.device), own)):
                error_msgs.append(f"{prefix}{name}: the weights were trained on another {self.p}+{self.q} graph or "
                                  f"coarsening (different side, T, candidates or graph_seed); build the model with "
                                  f"the same graph")
                return
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class DSGCN(nn.Module):
    """Dual SGCN (Eq. 4): each graph's features, concatenated. The k-th SGCN draws its graph
    (its q random neighbours and its coarsening) with seed ``graph_seed + k``, so two SGCNs
    with the same (p, q) ("8+2 and 8+2", Table VII) are two draws, not one graph twice."""

    def __init__(self, graphs: Sequence[tuple[int, int]], graph_seed: int = 0, **kw):
        super().__init__()
        if not graphs:
            raise ValueError("a DSGCN needs at least one (p, q) graph")
        self.nets = nn.ModuleList([SGCN(p=p, q=q, graph_seed=graph_seed + k, **kw) for k, (p, q) in enumerate(graphs)])
        self.out_dim = sum(n.out_dim for n in self.nets)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([n(x) for n in self.nets], dim=1)


BRANCHES = ("spatial", "temporal")


class TDSGCN(nn.Module):
    """Spatial and/or temporal DSGCN, fused (Eq. 5), FC to the classes.
    Input: keyword tensors ``spatial`` (B, 1, S, S) and ``temporal`` (B, 3, S, S)."""

    def __init__(self, num_classes: int, side: int = 32, graphs: Sequence[tuple[int, int]] = ((8, 2), (4, 0)),
                 branches: Sequence[str] = BRANCHES, spatial_chans: int = 1, temporal_chans: int = 3,
                 layers: Sequence[tuple[int, int, int]] = TABLE_I, fc: int = 512, dropout: float = 0.5,
                 T: float = PAPER_T, graph_seed: int = 0, candidates: str = "radius"):
        super().__init__()
        unknown = set(branches) - set(BRANCHES)
        if unknown or not branches:
            raise ValueError(f"branches must be a non-empty subset of {BRANCHES}, got {list(branches)}")
        self.branches = tuple(b for b in BRANCHES if b in branches)
        chans = {"spatial": spatial_chans, "temporal": temporal_chans}
        kw = dict(side=side, layers=layers, fc=fc, dropout=dropout, T=T, graph_seed=graph_seed, candidates=candidates)
        self.nets = nn.ModuleDict({b: DSGCN([tuple(g) for g in graphs], in_chans=chans[b], **kw)
                                   for b in self.branches})
        self.head = nn.Linear(sum(n.out_dim for n in self.nets.values()), num_classes)
        self.frozen = False

    def freeze_sgcns(self) -> "TDSGCN":
        """The paper's transfer: the SGCNs extract features (their weights fixed, in eval mode,
        so their dropout is off) and only the class head trains."""
        self.frozen = True
        for p in self.nets.parameters():
            p.requires_grad_(False)
        self.nets.eval()
        return self

    def train(self, mode: bool = True) -> "TDSGCN":
        super().train(mode)
        if self.frozen:
            self.nets.eval()
        return self

    def forward(self, spatial: torch.Tensor | None = None, temporal: torch.Tensor | None = None) -> torch.Tensor:
        inputs = {"spatial": spatial, "temporal": temporal}
        feats = []
        for b in self.branches:
            if inputs[b] is None:
                raise ValueError(f"this TDSGCN has a {b} branch: pass {b}=...")
            feats.append(self.nets[b](inputs[b]))
        return self.head(torch.cat(feats, dim=1))

    def sgcn_state(self) -> dict[str, torch.Tensor]:
        """The SGCN weights (everything but the class head): what transfers."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("head.")}

    def load_sgcns(self, state: dict[str, torch.Tensor]) -> None:
        """Initialise the SGCNs from a pre-trained model's :meth:`sgcn_state`; the head stays
        fresh. Raises when the branches or graphs do not match."""
        own = self.sgcn_state()
        missing = sorted(set(own) - set(state))
        if missing:
            raise ValueError(f"the pre-trained SGCNs lack {missing[:3]}{'...' if len(missing) > 3 else ''}: "
                             "pre-train with the same branches and graphs")
        result = self.load_state_dict({k: state[k] for k in own}, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"unexpected pre-trained keys {result.unexpected_keys[:3]}")


@register("tdsgcn")
def tdsgcn(num_classes: int, config: str = "paper", **kw) -> TDSGCN:
    """TDSGCN with a named size (``CONFIGS``); keyword arguments override it."""
    if config not in CONFIGS:
        raise KeyError(f"unknown TDSGCN config {config!r}; known: {', '.join(CONFIGS)}")
    return TDSGCN(num_classes, **{**CONFIGS[config], **kw})


# ------------------------------------------------------------------ runs
def parse_graphs(name: str) -> list[tuple[int, int]]:
    """``"8+2"`` -> [(8, 2)]; ``"8+2 and 4+0"`` -> [(8, 2), (4, 0)] (the paper's Table VI
    names)."""
    try:
        return [tuple(int(v) for v in part.strip().split("+")) for part in name.split(" and ")]
    except ValueError:
        raise ValueError(f"graph architecture {name!r}: write p+q, or two joined by ' and ' (e.g. '8+2 and 4+0')")


def graph_rows(side: int, graphs, T: float, graph_seed: int, config: str,
               candidates: str = "radius") -> list[tuple[int, int, object, dict]]:
    """Per (p, q) graph of the main model (the k-th drawn with seed ``graph_seed + k``, as
    :class:`DSGCN`): the graph (:func:`pq_graph`) and a row with its sigma, edges per node
    and the real (and padded) node counts of its coarsening levels."""
    levels = sum(s for _, _, s in CONFIGS[config]["layers"])
    out = []
    for k, (p, q) in enumerate(graphs):
        g = pq_graph(side, p, q, T, graph_seed + k, candidates)
        coarse = coarsen(g.adjacency, levels, seed=graph_seed + k)
        out.append((p, q, g, {"graph": f"{p}+{q}", "sigma": round(g.sigma, 3),
                              "edges per node": g.adjacency.nnz / side ** 2,
                              "real nodes per level": " ".join(map(str, coarse.n_real)),
                              "with fake nodes": " ".join(str(len(x)) for x in coarse.perms)}))
    return out


MAIN = "main configuration"
ABLATION_TABLES = {"transfer": "Transfer: macro pre-training vs from scratch, frozen vs fine-tuned SGCNs",
                   "T6": "Table VI: graph architectures, each branch alone, cross-entropy",
                   "T7": "Table VII: branches, graphs and loss", "focal": "Focal loss alpha x gamma"}


def graphs_name(graphs) -> str:
    """[(8, 2), (4, 0)] -> "8+2 and 4+0" (the paper's names)."""
    return " and ".join(f"{p}+{q}" for p, q in graphs)


def branch_row(graphs, branches, loss: str) -> str:
    """A variant's name: its graphs, branches and loss, as the paper's tables name them."""
    return f"{graphs_name(graphs)}, {' + '.join(branches)} + {'CE' if loss == 'ce' else 'FL'}"


def ablation_plan(tables, main_graphs, architectures, focal_grid: dict, focal: tuple[float, float],
                  pretrain: bool, freeze: bool = False) -> tuple[dict, dict, list]:
    """The rows of the paper's ablation ``tables`` (keys of :data:`ABLATION_TABLES`) around
    the main configuration (graphs ``main_graphs``, both branches, focal ``(alpha, gamma)``,
    pre-trained when ``pretrain``, its SGCNs frozen when ``freeze``). Returns ``variants``
    (name -> its changes: ``graphs``, ``branches``, ``transferred``, ``freeze``, or training
    settings ``loss``, ``focal_alpha``, ``focal_gamma``; :data:`MAIN` -> {}), ``rows``
    (table -> its row names, :data:`MAIN` where a row is the main configuration) and the
    focal grid's ``[(name, alpha, gamma)]``.

    Table VI as the paper ran it: every architecture with cross-entropy, the spatial and
    the temporal branch each trained and scored alone. Table VII: spatial + CE, temporal +
    CE, both + CE on each of the main graphs doubled ("8+2 and 8+2", "4+0 and 4+0": two
    draws of the same (p, q)) and on the main graphs, then the main configuration (FL)."""
    unknown = set(tables) - set(ABLATION_TABLES)
    if unknown:
        raise ValueError(f"unknown ablation(s) {sorted(unknown)}; known: {list(ABLATION_TABLES)}")
    if not pretrain and "transfer" in tables:
        raise ValueError("the transfer ablation needs pretrain = True")
    main_graphs = [tuple(g) for g in main_graphs]
    variants, rows, grid = {MAIN: {}}, {t: [] for t in tables}, []

    def add(graphs, branches, loss):
        name = branch_row(graphs, branches, loss)
        variants[name] = {"graphs": list(graphs), "branches": tuple(branches), "loss": loss}
        return name

    if "transfer" in tables:
        other = "SGCNs fine-tuned (all weights)" if freeze else "SGCNs frozen (head only)"
        variants["from scratch"] = {"transferred": False}
        variants[other] = {"freeze": not freeze}
        rows["transfer"] = ["from scratch", other]
    if "T6" in tables:
        for name in architectures:
            g = parse_graphs(name)
            rows["T6"] += [add(g, ("spatial",), "ce"), add(g, ("temporal",), "ce")]
    if "T7" in tables:
        doubled = [[g, g] for g in dict.fromkeys(main_graphs)]
        rows["T7"] = [add(main_graphs, ("spatial",), "ce"), add(main_graphs, ("temporal",), "ce"),
                      *[add(d, BRANCHES, "ce") for d in doubled], add(main_graphs, BRANCHES, "ce"), MAIN]
    if "focal" in tables:
        for a in focal_grid["alpha"]:
            for gm in focal_grid["gamma"]:
                name = f"focal alpha {a:g}, gamma {gm:g}" if (a, gm) != tuple(focal) else MAIN
                if name != MAIN:
                    variants[name] = {"focal_alpha": a, "focal_gamma": gm}
                grid.append((name, a, gm))
        rows["focal"] = [r[0] for r in grid]
    return variants, rows, grid


def table_vi(architectures, results: dict, pretraining: dict) -> "pd.DataFrame":
    """The paper's Table VI from this run: per architecture, the pre-training accuracy on
    held-out macro subjects (``pretraining``: name -> accuracy, or absent; the pre-training
    trains both branches together, and each branch alone loads its SGCNs), then for the
    spatial and the temporal branch alone (cross-entropy) the fine-tuning accuracy (the
    last epoch's training accuracy, mean over folds) and the test accuracy and UF1 pooled
    over folds (``results``: variant name -> its cross-validation result)."""
    import pandas as pd
    rows = []
    for name in architectures:
        g = parse_graphs(name)
        row = {"architecture": graphs_name(g),
               "pre-training, both branches (held-out macro acc)": pretraining.get(graphs_name(g))}
        for branch in BRANCHES:
            r = results.get(branch_row(g, (branch,), "ce"))
            if r is None:
                continue
            last = r.curves.sort_values("epoch").groupby("fold").tail(1)
            row[f"{branch}: fine-tuning acc"] = float(last["train_acc"].mean())
            row[f"{branch}: test acc"] = r.metrics["acc"]
            row[f"{branch}: test UF1"] = r.metrics["uf1"]
        rows.append(row)
    return pd.DataFrame(rows)


def flow_statistics(temporal: np.ndarray) -> dict:
    """The paper's Fig. 8 for one set of clips: ``temporal`` (N, C, S, S) graph inputs (u, v
    first). Returns the per-pixel mean and variance over clips of the flow magnitude
    (S, S each), and ``spread``, the variance averaged over the face: how much the flow
    varies from clip to clip."""
    temporal = np.asarray(temporal, dtype=np.float64)
    if temporal.ndim != 4 or temporal.shape[1] < 2 or len(temporal) < 2:
        raise ValueError(f"expected (N >= 2, C >= 2, S, S) flow inputs, got {temporal.shape}")
    mag = np.hypot(temporal[:, 0], temporal[:, 1])
    var = mag.var(axis=0)
    return {"mean": mag.mean(axis=0), "var": var, "spread": float(var.mean()), "clips": len(temporal)}
