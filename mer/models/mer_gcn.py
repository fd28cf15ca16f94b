"""p1 MER-GCN + Transformer: AU nodes, a co-occurrence graph partitioned into root /
centripetal / centrifugal subsets, 9 graph-conv units, spatial pyramid pooling, a
Transformer encoder over the frame sequence, a classification head.

The graph (:func:`au_graph`, built per fold from the *training* clips only):
- nodes are the AUs of a vocabulary (:data:`AU_REGIONS`); each has a 2D position, the mean
  of its facial region's landmarks averaged over the training clips' aligned apex frames
  (bilateral regions average onto the midline);
- adjacency from AU co-occurrence: counts C[i, j] = training clips annotated with both i
  and j (C[i, i]: clips with i), A[i, j] = P(j | i) = C[i, j] / C[i, i]; an AU no training
  clip has gives a zero row (no NaN), and every node keeps its self loop;
- partition as ST-GCN's "spatial" strategy: the neighbours j of root i (A[i, j] > 0, self
  included) go to the root subset when j is as far from the centre as i, to the
  centripetal subset when nearer, centrifugal when farther. Distances are hop counts from
  a full breadth-first search (not capped at one hop: ST-GCN's reference code caps them at
  max_hop, so farther nodes get distance inf and all fall into the root subset). The
  paper's centre is the mean position of all nodes; the search starts from the node
  nearest that point (the *anchor*);
- each subset's matrix holds the A[i, j] of its edges, rows normalised so that the three
  subsets of a row sum to 1 (a weighted mean over the neighbourhood, as ST-GCN normalises).

The network (:class:`MERGCN`):
- node features per frame: a small CNN over the frame and its change from the onset frame
  (:class:`~mer.preprocess.landmark_frames.LandmarkFrames`), its feature map read at each
  landmark (bilinear), so a node sees the window its receptive field covers around the
  landmark (7 px at 64 px in the quick config, 15 px at 256 px in the paper config); an
  AU node is the mean over its region's landmarks plus a learned per-AU embedding;
- 9 graph-conv units (paper section 1.2: 3 each at 64, 128, 256 channels; the reference
  code's 10th unit is left out): a 1x1 convolution to 3 x out channels, the sum over
  subsets of X A_k (times a learnable edge-importance mask initialised to ones), BN, ReLU,
  a temporal convolution, BN, dropout, a residual connection (ST-GCN's unit);
- spatial pyramid pooling (levels 1, 2, 4; max pooling) over the nodes of each frame,
  nodes ordered top to bottom on the face, so the bins are bands of the face;
- a linear map to d_model, a learned class token, sinusoidal positions, a Transformer
  encoder (paper: N = 6, d_model = 512; post-norm, "LayerNorm(x + Sublayer(x))"), the
  class token's output -> LayerNorm -> FC.
- Table 2's ablation: ``use_transformer=False`` ("GCN") averages the projected frame
  features over time instead; ``use_gcn=False`` ("Transformer model") feeds the CNN node
  features straight to the pyramid pooling.

Assumptions (not stated in the paper; each is a parameter or a table here):
- assumption: the AU regions of :data:`AU_REGIONS` (FACS descriptions mapped to the
  68-point scheme) and the default vocabulary of the 17 AUs they cover.
- assumption: a component of the co-occurrence graph without the anchor gets its own
  anchor, its node nearest the centre (the paper's graph is presumably connected;
  co-occurrence graphs need not be, SynthME's is not).
- assumption: node features read one CNN's feature map at the landmarks; the paper says
  only "a small window based on landmarks". A CNN per landmark patch (54 of them) cost ten
  times as much on a CPU. The per-AU embedding tells apart AUs whose regions overlap
  (AU12, AU14). Every frame is read at the apex frame's landmarks (faces are aligned once
  per clip; only the onset and apex frames have landmarks).
- assumption: the pyramid pools over the nodes of each frame; the paper pools the "node
  graph" without saying along which axis, and pooling per frame keeps the sequence for
  the Transformer. Bins are adaptive: the paper's size ceil(a/n) and stride floor(a/n)
  give n bins only for some a.
- assumption: 8 attention heads (the paper gives none; 8 is the standard).
- simplification: the paper's encoder-decoder, whose decoder emits class scores, is the
  encoder with a classification head.

Paper settings not used by the quick profile: 150 frames, 256 px input, SGD lr 1e-3
momentum 0.9, batch 32, 400 epochs, lr halved at 20 000 iterations, five-crop augmentation
(params/mer_gcn/casme2.yaml). The paper's "learning rate decay 1e-10" is left out (it
changes nothing at that size). At 400 epochs of batch 32 a CASME II fold takes about
3 200 optimizer steps, so the 20 000-iteration halving is never reached; the notebook
prints the count for the data it runs on.

How the quick profile's settings were chosen (tuning probes on SynthME, synthetic numbers) is
in params/mer_gcn/NOTES.md.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mer.models import register
from mer.preprocess.landmark_frames import clip_table_landmarks

# AU -> 68-point landmark indices of the face region it moves (FACS descriptions; the jaw
# contour only where the AU moves the chin or the cheek).
AU_REGIONS: dict[int, list[int]] = {
    1: [20, 21, 22, 23],                  # inner brow raiser: inner brow ends
    2: [17, 18, 25, 26],                  # outer brow raiser: outer brow ends
    4: [19, 20, 21, 22, 23, 24, 27],      # brow lowerer: brows and glabella
    5: [37, 38, 43, 44],                  # upper lid raiser: upper lids
    6: [1, 2, 14, 15, 41, 46],            # cheek raiser: cheeks below the eyes
    7: [36, 39, 40, 41, 42, 45, 46, 47],  # lid tightener: lower lids and eye corners
    9: [27, 28, 29, 31, 35],              # nose wrinkler: nose bridge and wings
    10: [31, 35, 50, 52],                 # upper lip raiser: nose wings, upper lip
    12: [48, 54],                         # lip corner puller: mouth corners
    14: [48, 54, 60, 64],                 # dimpler: outer and inner mouth corners
    15: [48, 54, 55, 59],                 # lip corner depressor: corners and lower lip sides
    17: [7, 8, 9, 57],                    # chin raiser: chin, lower lip centre
    20: [4, 12, 48, 54],                  # lip stretcher: corners and lower cheeks
    23: [49, 53, 55, 59],                 # lip tightener: lip edges
    24: [51, 57, 62, 66],                 # lip pressor: lip centres
    25: [61, 62, 63, 65, 66, 67],         # lips part: inner lips
    26: [8, 57, 66],                      # jaw drop: chin and lower lip
}
DEFAULT_AUS: tuple[int, ...] = tuple(AU_REGIONS)

CONFIGS: dict[str, dict] = {
    # the paper: 9 units 64/128/256 (ST-GCN's temporal kernel 9 and strides 2 at the width
    # changes), 150 frames at 256 px, d_model 512, 6 layers, 8 heads
    "paper": dict(cnn=(32, 64, 64), cnn_strides=(2, 2, 1), node_dim=64, channels=(64, 64, 64, 128, 128, 128, 256, 256, 256),
                  strides=(1, 1, 1, 2, 1, 1, 2, 1, 1), t_kernel=9, d_model=512, layers=6, heads=8, ff=2048,
                  dropout=0.1, levels=(1, 2, 4)),
    # CPU-sized for SynthME: the same 9 units at a quarter of the width, no temporal stride
    # (8 frames), a 2-layer encoder at d_model 64
    "quick": dict(cnn=(16, 32), cnn_strides=(2, 1), node_dim=32, channels=(16, 16, 16, 32, 32, 32, 64, 64, 64),
                  strides=(1,) * 9, t_kernel=3, d_model=64, layers=2, heads=4, ff=128, dropout=0.1,
                  levels=(1, 2, 4)),
}


# ------------------------------------------------------------------ the AU graph
def cooccurrence(aus: Iterable[Iterable[int]], vocabulary: Sequence[int]) -> np.ndarray:
    """(V, V) counts: C[i, j] clips annotated with both vocabulary[i] and vocabulary[j];
    C[i, i] clips with vocabulary[i]. AUs outside the vocabulary are ignored."""
    index = {int(a): k for k, a in enumerate(vocabulary)}
    counts = np.zeros((len(index), len(index)), dtype=np.int64)
    for clip_aus in aus:
        present = sorted({index[int(a)] for a in clip_aus if int(a) in index})
        for i in present:
            counts[i, present] += 1
    return counts


def conditional(counts: np.ndarray) -> np.ndarray:
    """P(j | i) = C[i, j] / C[i, i]; rows of AUs never seen are zero (not NaN)."""
    counts = np.asarray(counts, dtype=np.float64)
    seen = np.diag(counts).copy()
    out = np.zeros_like(counts)
    rows = seen > 0
    out[rows] = counts[rows] / seen[rows, None]
    return out


def hop_distances(adjacency: np.ndarray, sources: Sequence[int]) -> np.ndarray:
    """Hops from the nearest of ``sources`` over the undirected support of ``adjacency``
    (a full breadth-first search); unreachable nodes get inf."""
    support = (np.asarray(adjacency) > 0) | (np.asarray(adjacency) > 0).T
    n = len(support)
    dist = np.full(n, np.inf)
    queue = deque()
    for s in sources:
        dist[s] = 0
        queue.append(s)
    while queue:
        i = queue.popleft()
        for j in np.flatnonzero(support[i]):
            if dist[j] == np.inf:
                dist[j] = dist[i] + 1
                queue.append(j)
    return dist


def anchors(adjacency: np.ndarray, positions: np.ndarray) -> list[int]:
    """One start node per connected component: the node nearest the centre (the mean
    position of all nodes); the first is the whole graph's nearest node."""
    positions = np.asarray(positions, dtype=np.float64)
    to_centre = np.linalg.norm(positions - positions.mean(axis=0), axis=1)
    out: list[int] = []
    unreached = np.ones(len(positions), dtype=bool)
    for node in np.argsort(to_centre, kind="stable"):
        if unreached[node]:
            out.append(int(node))
            unreached &= ~np.isfinite(hop_distances(adjacency, [int(node)]))
    return out


def partition(adjacency: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ST-GCN's spatial partition of ``adjacency`` (V, V; A[i, j] the weight of j in i's
    neighbourhood; self loops added). Returns (3, V, V) root / centripetal / centrifugal
    matrices, rows normalised over the three subsets, and the hop distances used."""
    a = np.asarray(adjacency, dtype=np.float64).copy()
    np.fill_diagonal(a, 1.0)
    dist = hop_distances(a, anchors(a, positions))
    di, dj = dist[:, None], dist[None, :]  # finite: every component has its anchor
    subsets = np.stack([np.where(dj == di, a, 0.0), np.where(dj < di, a, 0.0), np.where(dj > di, a, 0.0)])
    subsets /= subsets.sum(axis=(0, 2))[None, :, None]  # the diagonal keeps every row positive
    return subsets, dist


def au_positions(landmarks: np.ndarray, vocabulary: Sequence[int]) -> np.ndarray:
    """(V, 2) node positions: the mean of each AU's region landmarks over ``landmarks``
    (N, 68, 2) (aligned faces)."""
    mean_face = np.asarray(landmarks, dtype=np.float64).reshape(-1, 68, 2).mean(axis=0)
    missing = [a for a in vocabulary if int(a) not in AU_REGIONS]
    if missing:
        raise ValueError(f"no facial region is defined for AU {missing}; known: {sorted(AU_REGIONS)}")
    return np.stack([mean_face[AU_REGIONS[int(a)]].mean(axis=0) for a in vocabulary])


@dataclass
class AUGraph:
    vocabulary: tuple[int, ...]
    counts: np.ndarray  # (V, V) co-occurrence counts
    adjacency: np.ndarray  # (V, V) P(j | i)
    positions: np.ndarray  # (V, 2)
    subsets: np.ndarray  # (3, V, V) root / centripetal / centrifugal
    hops: np.ndarray  # (V,) hop distance from the component's anchor
    clips: int  # training clips it was counted from

    @property
    def order(self) -> np.ndarray:
        """Nodes from the top of the face to the bottom (then left to right): the axis the
        pyramid pooling bins."""
        return np.lexsort((self.positions[:, 0], self.positions[:, 1]))


def au_graph(aus: Iterable[Iterable[int]], landmarks: np.ndarray, vocabulary: Sequence[int] = DEFAULT_AUS) -> AUGraph:
    """The graph of one fold: pass the *training* clips' AU lists and aligned landmarks."""
    aus = [list(a) for a in aus]
    vocabulary = tuple(int(a) for a in vocabulary)
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError(f"AU vocabulary has duplicates: {vocabulary}")
    counts = cooccurrence(aus, vocabulary)
    adjacency = conditional(counts)
    positions = au_positions(landmarks, vocabulary)
    subsets, hops = partition(adjacency, positions)
    return AUGraph(vocabulary, counts, adjacency, positions, subsets, hops, len(aus))


def fold_graph(clips, train_idx: np.ndarray, vocabulary: Sequence[int] = DEFAULT_AUS) -> AUGraph:
    """The AU graph of a fold, from the rows ``train_idx`` of an aligned clip table (AU
    lists and apex landmarks) and nothing else."""
    train = clips.iloc[np.asarray(train_idx)]
    return au_graph(train["aus"], clip_table_landmarks(train), vocabulary)


def region_membership(vocabulary: Sequence[int]) -> tuple[list[int], torch.Tensor]:
    """The landmarks the AU nodes need (sorted) and the (V, L) matrix averaging each AU's
    region landmarks."""
    landmarks = sorted({i for a in vocabulary for i in AU_REGIONS[int(a)]})
    col = {lm: k for k, lm in enumerate(landmarks)}
    m = torch.zeros(len(vocabulary), len(landmarks))
    for v, a in enumerate(vocabulary):
        idx = [col[i] for i in AU_REGIONS[int(a)]]
        m[v, idx] = 1.0 / len(idx)
    return landmarks, m


# ------------------------------------------------------------------ the network
class GraphConvUnit(nn.Module):
    """ST-GCN unit: spatial graph conv over K subsets with learnable edge importance,
    then a temporal convolution, with a residual connection. x (B, C, T, V)."""

    def __init__(self, cin: int, cout: int, nodes: int, subsets: int = 3, t_kernel: int = 3, stride: int = 1,
                 dropout: float = 0.0, residual: bool = True):
        super().__init__()
        if t_kernel % 2 != 1:
            raise ValueError(f"the temporal kernel must be odd, got {t_kernel}")
        self.subsets, self.cout = subsets, cout
        self.gcn = nn.Conv2d(cin, cout * subsets, 1)
        self.importance = nn.Parameter(torch.ones(subsets, nodes, nodes))
        self.tcn = nn.Sequential(nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, (t_kernel, 1), (stride, 1), (t_kernel // 2, 0)),
                                 nn.BatchNorm2d(cout), nn.Dropout(dropout))
        if not residual:
            self.residual = None
        elif cin == cout and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, (stride, 1)), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
        b, _, t, v = x.shape
        y = self.gcn(x).view(b, self.subsets, self.cout, t, v)
        y = torch.einsum("bkctj,kij->bcti", y, adjacency * self.importance)
        y = self.tcn(y)
        if self.residual is not None:
            y = y + self.residual(x)
        return F.relu(y)


def spatial_pyramid(x: torch.Tensor, levels: Sequence[int]) -> torch.Tensor:
    """(B, C, T, V) -> (B, T, C * sum(levels)): max over n bins of the node axis per level."""
    b, c, t, v = x.shape
    flat = x.permute(0, 2, 1, 3).reshape(b * t, c, v)
    pooled = [F.adaptive_max_pool1d(flat, n).reshape(b, t, c * n) for n in levels]
    return torch.cat(pooled, dim=-1)


def sinusoid(length: int, dim: int) -> torch.Tensor:
    pos = torch.arange(length, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(length, dim)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return pe


class MERGCN(nn.Module):
    """Input: frames (B, T, 6, S, S) and the landmarks ``self.landmarks`` as points (B, L, 2)
    (:class:`~mer.preprocess.landmark_frames.LandmarkFrames`); output class logits. The AU graph's subsets and the node order are
    buffers, so a saved fold model carries the graph it was trained with."""

    def __init__(self, num_classes: int, graph: AUGraph | None = None, vocabulary: Sequence[int] | None = None,
                 config: str = "quick", use_gcn: bool = True, use_transformer: bool = True, **overrides):
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"unknown config {config!r}; known: {sorted(CONFIGS)}")
        cfg = {**CONFIGS[config], **overrides}
        unknown = set(overrides) - set(CONFIGS[config])
        if unknown:
            raise ValueError(f"unknown MER-GCN settings {sorted(unknown)}")
        if graph is not None and vocabulary is not None and tuple(int(a) for a in vocabulary) != graph.vocabulary:
            raise ValueError(f"vocabulary {tuple(vocabulary)} differs from the graph's {graph.vocabulary}")
        vocabulary = graph.vocabulary if graph is not None else (vocabulary or DEFAULT_AUS)
        self.vocabulary = tuple(int(a) for a in vocabulary)
        self.landmarks, membership = region_membership(self.vocabulary)
        v = len(self.vocabulary)
        self.use_gcn, self.use_transformer, self.levels = use_gcn, use_transformer, tuple(cfg["levels"])
        self.register_buffer("membership", membership)
        # without a graph (an architecture to load a saved fold into): identity subsets
        subsets = torch.zeros(3, v, v) if graph is None else torch.from_numpy(graph.subsets).float()
        if graph is None:
            subsets[0] = torch.eye(v)
        order = torch.arange(v) if graph is None else torch.from_numpy(graph.order.copy()).long()
        self.register_buffer("subsets", subsets)
        self.register_buffer("order", order)

        layers, cin = [], 6
        for cout, stride in zip(cfg["cnn"], cfg["cnn_strides"]):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.cnn = nn.Sequential(*layers, nn.Conv2d(cin, cfg["node_dim"], 1))
        self.node_embedding = nn.Parameter(torch.zeros(v, cfg["node_dim"]))
        self.data_bn = nn.BatchNorm1d(v * cfg["node_dim"])
        width = cfg["node_dim"]
        self.units = nn.ModuleList()
        if use_gcn:
            if len(cfg["channels"]) != len(cfg["strides"]):
                raise ValueError("channels and strides need one entry per graph-conv unit")
            for k, (cout, stride) in enumerate(zip(cfg["channels"], cfg["strides"])):
                self.units.append(GraphConvUnit(width, cout, v, 3, cfg["t_kernel"], stride, cfg["dropout"],
                                                residual=k > 0))
                width = cout
        d = cfg["d_model"]
        self.project = nn.Sequential(nn.Linear(width * sum(self.levels), d), nn.ReLU(inplace=True),
                                     nn.Dropout(cfg["dropout"]))
        if use_transformer:
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            layer = nn.TransformerEncoderLayer(d, cfg["heads"], cfg["ff"], cfg["dropout"], batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg["layers"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, num_classes)

    def node_features(self, frames: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """frames (B, T, 6, S, S), points (B, L, 2) in grid coordinates -> (B, C, T, V) AU node
        features per frame: the CNN's feature map read at each landmark (bilinear), averaged
        over the AU's region, plus the AU's embedding."""
        b, t = frames.shape[:2]
        if points.shape[1] != self.membership.shape[1]:
            raise ValueError(f"expected {self.membership.shape[1]} landmarks (AU regions of {self.vocabulary}), "
                             f"got {points.shape[1]}")
        fmap = self.cnn(frames.reshape(b * t, *frames.shape[2:]))  # (BT, C, h, w)
        grid = points[:, None].expand(b, t, -1, -1).reshape(b * t, 1, -1, 2)
        at = F.grid_sample(fmap, grid, mode="bilinear", padding_mode="border", align_corners=False)  # (BT, C, 1, L)
        nodes = torch.einsum("vl,ncl->ncv", self.membership, at[:, :, 0])  # (BT, C, V)
        nodes = nodes + self.node_embedding.t()
        c, v = nodes.shape[1:]
        nodes = self.data_bn(nodes.reshape(b, t, c, v).permute(0, 1, 3, 2).reshape(b * t, v * c))
        return nodes.reshape(b, t, v, c).permute(0, 3, 1, 2).contiguous()

    def forward(self, frames: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        h = self.node_features(frames, points)
        for unit in self.units:
            h = unit(h, self.subsets)
        z = self.project(spatial_pyramid(h[..., self.order], self.levels))  # (B, T', d)
        if self.use_transformer:
            z = torch.cat([self.cls.expand(len(z), -1, -1), z], dim=1)
            z = z + sinusoid(z.shape[1], z.shape[2]).to(z)
            z = self.encoder(z)[:, 0]
        else:
            z = z.mean(dim=1)
        return self.head(self.norm(z))


@register("mer_gcn")
def mer_gcn(num_classes: int, **cfg) -> MERGCN:
    return MERGCN(num_classes, **cfg)


# ------------------------------------------------------------------ runs
class FoldGraphs:
    """The per-fold argument of a MER-GCN :class:`~mer.models.spec.Spec`: each fold's AU
    graph, counted from that fold's training clips only (:func:`fold_graph`)."""

    def __init__(self, clips, vocabulary: Sequence[int]):
        self.clips, self.vocabulary = clips, tuple(int(a) for a in vocabulary)

    def __call__(self, fold) -> dict:
        return {"graph": fold_graph(self.clips, fold.train_idx, self.vocabulary)}

    def key(self) -> dict:
        return {"fold_graph": list(self.vocabulary)}


@dataclass
class GraphSummary:
    """The AU graphs of a run's folds, side by side: the mean P(j | i) and its spread between
    folds, the mean positions with the partition of the mean graph, and what a reader should
    know (the largest changes between folds, nodes a fold never saw, nodes with no
    co-occurring AU)."""
    vocabulary: tuple[int, ...]
    mean: np.ndarray
    spread: np.ndarray
    positions: np.ndarray
    subsets: np.ndarray
    hops: np.ndarray
    largest: list[str]
    unseen: dict[int, int]
    alone: list[str]

    def describe(self) -> str:
        v = self.vocabulary
        return ("largest changes of one P(j | i) between folds: " + (", ".join(self.largest) or "none") + "\n"
                "AU nodes no training clip of a fold has (a zero row, self loop only), in how many folds: "
                + (", ".join(f"AU{a} ({n})" for a, n in self.unseen.items() if n) or "none") + "\n"
                f"AU nodes with no co-occurring AU in any fold: {len(self.alone)} of {len(v)} "
                f"({', '.join(self.alone) or '-'})")

    def nodes(self):
        """Per AU node: hops from the anchor, neighbours, and its centripetal, centrifugal and
        same-distance neighbours in the mean graph (a DataFrame, AUs as columns)."""
        import pandas as pd
        edges = (self.mean > 0) & ~np.eye(len(self.vocabulary), dtype=bool)
        s = self.subsets
        return pd.DataFrame([{"AU": f"AU{a}", "hops from anchor": int(h), "neighbours": int(edges[i].sum()),
                              "centripetal": int((s[1, i] > 0).sum()), "centrifugal": int((s[2, i] > 0).sum()),
                              "same distance": int((s[0, i] > 0).sum()) - 1}
                             for i, (a, h) in enumerate(zip(self.vocabulary, self.hops))]).set_index("AU").T


def graph_summary(graphs: Sequence[AUGraph], top: int = 5) -> GraphSummary:
    """:class:`GraphSummary` of one run's fold graphs (``top``: how many of the largest
    between-fold changes to name)."""
    vocabulary = graphs[0].vocabulary
    adj = np.stack([g.adjacency for g in graphs])
    mean, spread = adj.mean(0), adj.max(0) - adj.min(0)
    positions = np.mean([g.positions for g in graphs], axis=0)
    subsets, hops = partition(mean, positions)
    off = ~np.eye(len(vocabulary), dtype=bool)
    order = np.argsort(-(spread * off), axis=None)[:top]
    largest = [f"P(AU{vocabulary[j]} | AU{vocabulary[i]}) {spread[i, j]:.2f}"
               for i, j in zip(*np.unravel_index(order, spread.shape)) if spread[i, j] > 0 and i != j]
    unseen = {a: int(sum(g.counts[k, k] == 0 for g in graphs)) for k, a in enumerate(vocabulary)}
    alone = [f"AU{a}" for k, a in enumerate(vocabulary) if not (mean[k] * off[k]).any()]
    return GraphSummary(tuple(vocabulary), mean, spread, positions, subsets, hops, largest, unseen, alone)


# The paper's Table 2: each row's change to the full model.
ABLATIONS = {"GCN": {"use_transformer": False}, "Transformer model": {"use_gcn": False}, "GCN + Transformer": {}}
