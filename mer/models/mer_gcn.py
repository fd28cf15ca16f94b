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
  centripetal subset when nearer, centrifugal when farther. The paper (like ST-GCN's
  paper) measures "nearer" geometrically, against the average coordinate of all nodes:
  ``centre_distance="euclidean"``, the default and the paper profiles'. ST-GCN's reference
  code counts hops instead: ``"hops"``, hop counts from a full breadth-first search
  started at the node nearest the mean position (the *anchor*; the reference code caps
  the search at max_hop, so farther nodes get distance inf and all fall into the root
  subset: not done here). Co-occurrence graphs are dense and shallow, so hops put many
  edges at "the same distance";
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

Section 1.2 reads two ways, and both are here (``reading``; the notebook runs Table 2 under
each, side by side):
- ``"stgcn"`` (default; the paper's Fig. 2 and its three-subset partition): the AU graph
  is the skeleton of an ST-GCN over per-frame AU node features, as above.
- ``"mlgcn"``: the ML-GCN / MER-GCN (Lo et al. 2020) design the same section also
  describes ("stacked GCNs ... obtain H^L; the learned AU information is applied to the
  sequence-level features"): learned AU embeddings go through two GCN layers over the
  fold's co-occurrence graph (LeakyReLU 0.2 between the layers, as ML-GCN) to H^L, one d_model vector per AU; the frames go
  through the same CNN, globally average-pooled, projected and through the Transformer
  encoder to one sequence feature f; the class scores are an FC over the per-AU products
  H^L f. Its Table 2 rows: "GCN" without the Transformer (f the mean over frames),
  "Transformer model" without H^L (f straight into the FC).

Assumptions (not stated in the paper; each is a parameter or a table here):
- assumption: the AU regions of :data:`AU_REGIONS` (FACS descriptions mapped to the
  68-point scheme) and the default vocabulary of the 17 AUs they cover.
- assumption: A[i, j] = P(j | i), counted from the training clips' AU annotations (the
  paper: "data mining" of co-occurrence, no formula).
- assumption: a component of the co-occurrence graph without the anchor gets its own
  anchor, its node nearest the centre (``centre_distance="hops"`` only; the paper's graph
  is presumably connected; co-occurrence graphs need not be, SynthME's is not).
- assumption: node features read one CNN's feature map at the landmarks; the paper says
  only "a small window based on landmarks". A CNN per landmark patch (54 of them) cost ten
  times as much on a CPU. The per-AU embedding tells apart AUs whose regions overlap
  (AU12, AU14). Every frame is read at the apex frame's landmarks (faces are aligned once
  per clip; only the onset and apex frames have landmarks).
- assumption: the graph-conv unit is ST-GCN's (1x1 convolution to 3 x C, BN, ReLU,
  temporal convolution, BN, dropout, residual; none on the first unit), with ST-GCN's
  temporal kernel 9 and strides 2 at the width changes in the paper config; the edge
  importance starts at ones.
- assumption: the pyramid pools over the nodes of each frame; the paper pools the "node
  graph" without saying along which axis, and pooling per frame keeps the sequence for
  the Transformer. Levels 1, 2, 4 with max pooling (METHODS.md); nodes ordered top to
  bottom on the face. Bins are adaptive: the paper's size ceil(a/n) and stride floor(a/n)
  give n bins only for some a.
- assumption: 8 attention heads, feed-forward 2048, dropout 0.1 (the paper gives d_model
  and N only; these are the Transformer's standard values).
- assumption: sinusoidal positions added to the frame features and a learned class
  token whose output, after a LayerNorm, is the sequence feature (the paper: "position
  insertion ... relative position", no form given).
- simplification: the paper's encoder-decoder, whose decoder emits class scores, is the
  encoder with a classification head.
- assumption: the ML-GCN reading propagates over P(j | i) with self loops, rows
  normalised, not ML-GCN's thresholded and re-weighted correlation matrix.
- assumption: the ML-GCN reading's AU embeddings are learned (ML-GCN starts from word
  vectors, which MER has no counterpart for), its hidden width ``ml_hidden`` (1024 in the
  paper config, as ML-GCN's first layer; 64 in quick).
- assumption: the 150 frames are the clip's frames nearest 150 uniform points of
  onset..offset (frames repeat in a short clip; the paper's "regularise the number of
  frames" names no interpolation), the apex among them.
- assumption: the five crops take 0.875 of the side (224 of 256) and are resized back;
  at test the centre crop of the same share is used (``test_crop``; "full": the whole
  face, seen 1.14x smaller than in training).

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
                  dropout=0.1, levels=(1, 2, 4), ml_hidden=1024),
    # CPU-sized for SynthME: the same 9 units at a quarter of the width, no temporal stride
    # (8 frames), a 2-layer encoder at d_model 64
    "quick": dict(cnn=(16, 32), cnn_strides=(2, 1), node_dim=32, channels=(16, 16, 16, 32, 32, 32, 64, 64, 64),
                  strides=(1,) * 9, t_kernel=3, d_model=64, layers=2, heads=4, ff=128, dropout=0.1,
                  levels=(1, 2, 4), ml_hidden=64),
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


CENTRE_DISTANCES = ("euclidean", "hops")


def centre_distances(adjacency: np.ndarray, positions: np.ndarray, centre_distance: str = "euclidean") -> np.ndarray:
    """Each node's distance to the centre of the face, the quantity the partition compares:
    ``euclidean`` (the paper's and ST-GCN's paper's reading) the distance of its position
    from the mean position of all nodes; ``hops`` (ST-GCN's reference code) the hop count
    from its component's anchor (:func:`anchors`)."""
    if centre_distance == "euclidean":
        positions = np.asarray(positions, dtype=np.float64)
        return np.linalg.norm(positions - positions.mean(axis=0), axis=1)
    if centre_distance == "hops":
        return hop_distances(adjacency, anchors(adjacency, positions))
    raise ValueError(f"centre_distance must be one of {CENTRE_DISTANCES}, got {centre_distance!r}")


def partition(adjacency: np.ndarray, positions: np.ndarray,
              centre_distance: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """ST-GCN's spatial partition of ``adjacency`` (V, V; A[i, j] the weight of j in i's
    neighbourhood; self loops added): neighbour j of root i goes to the root subset when
    r_j = r_i, centripetal when r_j < r_i, centrifugal when r_j > r_i, r the distance to the
    centre (:func:`centre_distances`; Euclidean distances equal within 1e-9 of the face's
    scale count as equal). Returns (3, V, V) root / centripetal / centrifugal matrices, rows
    normalised over the three subsets, and the distances r used."""
    a = np.asarray(adjacency, dtype=np.float64).copy()
    np.fill_diagonal(a, 1.0)
    dist = centre_distances(a, positions, centre_distance)
    di, dj = dist[:, None], dist[None, :]  # finite: every component has its anchor
    tol = 1e-9 * max(1.0, float(np.nanmax(dist))) if centre_distance == "euclidean" else 0.0
    same, nearer = np.abs(dj - di) <= tol, dj < di - tol
    subsets = np.stack([np.where(same, a, 0.0), np.where(nearer, a, 0.0), np.where(~same & ~nearer, a, 0.0)])
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
    distances: np.ndarray  # (V,) each node's distance to the centre, as the partition measured it
    clips: int  # training clips it was counted from
    centre_distance: str = "euclidean"  # euclidean (positions) | hops (from the anchor)

    @property
    def order(self) -> np.ndarray:
        """Nodes from the top of the face to the bottom (then left to right): the axis the
        pyramid pooling bins."""
        return np.lexsort((self.positions[:, 0], self.positions[:, 1]))


def au_graph(aus: Iterable[Iterable[int]], landmarks: np.ndarray, vocabulary: Sequence[int] = DEFAULT_AUS,
             centre_distance: str = "euclidean") -> AUGraph:
    """The graph of one fold: pass the *training* clips' AU lists and aligned landmarks;
    ``centre_distance`` picks the partition's distance (:func:`centre_distances`)."""
    aus = [list(a) for a in aus]
    vocabulary = tuple(int(a) for a in vocabulary)
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError(f"AU vocabulary has duplicates: {vocabulary}")
    counts = cooccurrence(aus, vocabulary)
    adjacency = conditional(counts)
    positions = au_positions(landmarks, vocabulary)
    subsets, distances = partition(adjacency, positions, centre_distance)
    return AUGraph(vocabulary, counts, adjacency, positions, subsets, distances, len(aus), centre_distance)


def fold_graph(clips, train_idx: np.ndarray, vocabulary: Sequence[int] = DEFAULT_AUS,
               centre_distance: str = "euclidean") -> AUGraph:
    """The AU graph of a fold, from the rows ``train_idx`` of an aligned clip table (AU
    lists and apex landmarks) and nothing else."""
    train = clips.iloc[np.asarray(train_idx)]
    return au_graph(train["aus"], clip_table_landmarks(train), vocabulary, centre_distance)


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
READINGS = ("stgcn", "mlgcn")  # section 1.2's two readings (module docstring)
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


def label_graph(adjacency: np.ndarray) -> np.ndarray:
    """The ML-GCN reading's propagation matrix: P(j | i) with self loops, rows normalised
    (each AU's new vector a weighted mean of its co-occurring AUs' and its own)."""
    a = np.asarray(adjacency, dtype=np.float64).copy()
    np.fill_diagonal(a, 1.0)
    return a / a.sum(axis=1, keepdims=True)


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
    (:class:`~mer.preprocess.landmark_frames.LandmarkFrames`; the ML-GCN reading ignores the
    points); output class logits. The AU graph's subsets and node order (ST-GCN reading)
    and its propagation matrix (ML-GCN reading) are buffers, so a saved fold model carries
    the graph it was trained with."""

    def __init__(self, num_classes: int, graph: AUGraph | None = None, vocabulary: Sequence[int] | None = None,
                 config: str = "quick", use_gcn: bool = True, use_transformer: bool = True,
                 reading: str = "stgcn", **overrides):
        super().__init__()
        if reading not in READINGS:
            raise ValueError(f"reading must be one of {READINGS}, got {reading!r}")
        self.reading = reading
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
        propagation = torch.eye(v) if graph is None else torch.from_numpy(label_graph(graph.adjacency)).float()
        self.register_buffer("propagation", propagation)

        layers, cin = [], 6
        for cout, stride in zip(cfg["cnn"], cfg["cnn_strides"]):
            layers += [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
            cin = cout
        self.cnn = nn.Sequential(*layers, nn.Conv2d(cin, cfg["node_dim"], 1))
        self.node_embedding = nn.Parameter(torch.zeros(v, cfg["node_dim"]))
        self.data_bn = nn.BatchNorm1d(v * cfg["node_dim"]) if reading == "stgcn" else None
        width = cfg["node_dim"]
        self.units, self.au_layers = nn.ModuleList(), None
        d = cfg["d_model"]
        if reading == "mlgcn":  # a GCN over AU embeddings; the CNN's pooled frame features feed the Transformer
            nn.init.normal_(self.node_embedding)  # the AU vectors the GCN starts from: learned, not word vectors
            if use_gcn:
                self.au_layers = nn.ModuleList([nn.Linear(cfg["node_dim"], cfg["ml_hidden"], bias=False),
                                                nn.Linear(cfg["ml_hidden"], d, bias=False)])
        elif use_gcn:
            if len(cfg["channels"]) != len(cfg["strides"]):
                raise ValueError("channels and strides need one entry per graph-conv unit")
            for k, (cout, stride) in enumerate(zip(cfg["channels"], cfg["strides"])):
                self.units.append(GraphConvUnit(width, cout, v, 3, cfg["t_kernel"], stride, cfg["dropout"],
                                                residual=k > 0))
                width = cout
        pooled_width = width if reading == "mlgcn" else width * sum(self.levels)
        self.project = nn.Sequential(nn.Linear(pooled_width, d), nn.ReLU(inplace=True),
                                     nn.Dropout(cfg["dropout"]))
        if use_transformer:
            self.cls = nn.Parameter(torch.zeros(1, 1, d))
            layer = nn.TransformerEncoderLayer(d, cfg["heads"], cfg["ff"], cfg["dropout"], batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, cfg["layers"], enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(v if reading == "mlgcn" and use_gcn else d, num_classes)

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

    def sequence(self, z: torch.Tensor) -> torch.Tensor:
        """(B, T', d) frame features -> (B, d): the Transformer's class token, or (without the
        Transformer) the mean over frames."""
        if self.use_transformer:
            z = torch.cat([self.cls.expand(len(z), -1, -1), z], dim=1)
            z = z + sinusoid(z.shape[1], z.shape[2]).to(z)
            return self.encoder(z)[:, 0]
        return z.mean(dim=1)

    def au_vectors(self) -> torch.Tensor:
        """The ML-GCN reading's H^L (V, d_model): the AU embeddings through the stacked GCN
        layers over the fold's co-occurrence graph (LeakyReLU between layers, none after
        the last, as ML-GCN)."""
        h = self.node_embedding
        for k, layer in enumerate(self.au_layers):
            h = self.propagation @ layer(h)
            if k < len(self.au_layers) - 1:
                h = F.leaky_relu(h, 0.2)
        return h

    def forward(self, frames: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        if self.reading == "mlgcn":
            b, t = frames.shape[:2]
            fmap = self.cnn(frames.reshape(b * t, *frames.shape[2:]))
            z = self.norm(self.sequence(self.project(fmap.mean(dim=(2, 3)).reshape(b, t, -1))))
            # H^L applied to the sequence-level feature: one score per AU, then the FC
            return self.head(z @ self.au_vectors().t() if self.au_layers is not None else z)
        h = self.node_features(frames, points)
        for unit in self.units:
            h = unit(h, self.subsets)
        z = self.project(spatial_pyramid(h[..., self.order], self.levels))  # (B, T', d)
        return self.head(self.norm(self.sequence(z)))


@register("mer_gcn")
def mer_gcn(num_classes: int, **cfg) -> MERGCN:
    return MERGCN(num_classes, **cfg)


# ------------------------------------------------------------------ runs
class FoldGraphs:
    """The per-fold argument of a MER-GCN :class:`~mer.models.spec.Spec`: each fold's AU
    graph, counted from that fold's training clips only (:func:`fold_graph`)."""

    def __init__(self, clips, vocabulary: Sequence[int], centre_distance: str = "euclidean"):
        self.clips, self.vocabulary = clips, tuple(int(a) for a in vocabulary)
        self.centre_distance = centre_distance

    def __call__(self, fold) -> dict:
        return {"graph": fold_graph(self.clips, fold.train_idx, self.vocabulary, self.centre_distance)}

    def key(self) -> dict:
        return {"fold_graph": list(self.vocabulary), "centre_distance": self.centre_distance}


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
    distances: np.ndarray
    largest: list[str]
    unseen: dict[int, int]
    alone: list[str]
    centre_distance: str = "euclidean"

    def describe(self) -> str:
        v = self.vocabulary
        return ("largest changes of one P(j | i) between folds: " + (", ".join(self.largest) or "none") + "\n"
                "AU nodes no training clip of a fold has (a zero row, self loop only), in how many folds: "
                + (", ".join(f"AU{a} ({n})" for a, n in self.unseen.items() if n) or "none") + "\n"
                f"AU nodes with no co-occurring AU in any fold: {len(self.alone)} of {len(v)} "
                f"({', '.join(self.alone) or '-'})")

    @property
    def distance_name(self) -> str:
        return "px to the centre" if self.centre_distance == "euclidean" else "hops from the anchor"

    def nodes(self):
        """Per AU node: its distance to the centre (px on the aligned face, or hops from the
        anchor), neighbours, and its centripetal, centrifugal and same-distance neighbours in
        the mean graph (a DataFrame, AUs as columns)."""
        import pandas as pd
        edges = (self.mean > 0) & ~np.eye(len(self.vocabulary), dtype=bool)
        s = self.subsets
        return pd.DataFrame([{"AU": f"AU{a}", self.distance_name: round(float(h), 2), "neighbours": int(edges[i].sum()),
                              "centripetal": int((s[1, i] > 0).sum()), "centrifugal": int((s[2, i] > 0).sum()),
                              "same distance": int((s[0, i] > 0).sum()) - 1}
                             for i, (a, h) in enumerate(zip(self.vocabulary, self.distances))]).set_index("AU").T


def graph_summary(graphs: Sequence[AUGraph], top: int = 5) -> GraphSummary:
    """:class:`GraphSummary` of one run's fold graphs (``top``: how many of the largest
    between-fold changes to name)."""
    vocabulary = graphs[0].vocabulary
    adj = np.stack([g.adjacency for g in graphs])
    mean, spread = adj.mean(0), adj.max(0) - adj.min(0)
    positions = np.mean([g.positions for g in graphs], axis=0)
    centre_distance = graphs[0].centre_distance
    subsets, distances = partition(mean, positions, centre_distance)
    off = ~np.eye(len(vocabulary), dtype=bool)
    order = np.argsort(-(spread * off), axis=None)[:top]
    largest = [f"P(AU{vocabulary[j]} | AU{vocabulary[i]}) {spread[i, j]:.2f}"
               for i, j in zip(*np.unravel_index(order, spread.shape)) if spread[i, j] > 0 and i != j]
    unseen = {a: int(sum(g.counts[k, k] == 0 for g in graphs)) for k, a in enumerate(vocabulary)}
    alone = [f"AU{a}" for k, a in enumerate(vocabulary) if not (mean[k] * off[k]).any()]
    return GraphSummary(tuple(vocabulary), mean, spread, positions, subsets, distances, largest, unseen, alone,
                        centre_distance)


# The paper's Table 2: each row's change to the full model.
ABLATIONS = {"GCN": {"use_transformer": False}, "Transformer model": {"use_gcn": False}, "GCN + Transformer": {}}
FULL = "GCN + Transformer"
READING_NAMES = {"stgcn": "ST-GCN reading", "mlgcn": "ML-GCN reading"}


def table2_plan(rows: Sequence[str], readings: Sequence[str], main_reading: str) -> tuple[dict, dict]:
    """Table 2 under each of ``readings``: ``variants`` (name -> the model's changes; the
    main reading's rows keep the paper's names, another reading's get it in brackets) and
    ``tables`` (reading -> (title, its rows))."""
    unknown = [r for r in [*readings, main_reading] if r not in READINGS]
    if unknown:
        raise ValueError(f"unknown reading(s) {unknown}; known: {list(READINGS)}")
    unknown = [row for row in rows if row not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown Table 2 row(s) {unknown}; known: {list(ABLATIONS)}")
    variants, tables = {}, {}
    for reading in sorted(dict.fromkeys(readings), key=lambda r: r != main_reading):  # the main reading first
        main = reading == main_reading
        names = [row if main else f"{row} [{READING_NAMES[reading]}]" for row in rows]
        variants.update({name: {**ABLATIONS[row], **({} if main else {"reading": reading})}
                         for name, row in zip(names, rows)})
        tables[reading] = (f"Table 2, {READING_NAMES[reading]}", names)
    return variants, tables
