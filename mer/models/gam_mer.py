"""p2 GAM-MER: the recogniser of GAM-MM-MER. Magnified apex -> patches around dlib
landmark regions -> a small CNN per patch -> node features -> graph attention layers over
a region graph -> pooling -> FC.

Regions are the landmark groups of :data:`mer.landmarks.REGIONS` (brows,
glabella, eyes, nose tip, mouth corners, lips; the jaw contour left out, paper section
2.2); :data:`ALL_REGIONS` adds the jaw contour and the nose bridge (Table 3's "all
facial key areas").

The region graph: anatomical neighbours (:data:`ANATOMICAL_EDGES`) plus the prior
long-range edges of the "optimised" graph (:data:`PRIOR_EDGES`: regions that move
together in FACS terms though they are far apart, e.g. a brow and the mouth corner of the
same side, the two mouth corners, cheek-raiser eye with lip-corner puller).

Assumptions (not stated in the paper; each is a parameter):
- assumption: a node sees its region's patch of the magnified apex and the patch's
  change from the onset frame (6 channels); the paper names only "magnified images".
- assumption: one CNN shared by all regions (2 conv blocks, global average pool) plus a
  learned per-region embedding so that nodes know which region they are.
- assumption: the "raw facial graph" of Table 3 is the anatomical-neighbour graph alone
  (the optimised graph without the prior long-range edges); "all facial key areas" uses
  :data:`ALL_REGIONS` with the anatomical edges extended to the jaw.
- assumption: GAT layers are PyG's DenseGATConv (heads concatenated, ELU, dropout), the
  graph is fixed, so a batch is one dense tensor; GCN variant: DenseGCNConv.
- assumption: node features are mean-pooled over regions before the FC.

How the quick profile's settings were chosen (tuning probes on SynthME, synthetic numbers) is
in params/gam_mm_mer/NOTES.md.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import DenseGATConv, DenseGCNConv

from mer.landmarks import ALL_REGIONS, REGIONS
from mer.models import register

ANATOMICAL_EDGES: list[tuple[str, str]] = [
    ("right_brow", "glabella"), ("left_brow", "glabella"), ("right_brow", "right_eye"), ("left_brow", "left_eye"),
    ("right_eye", "glabella"), ("left_eye", "glabella"), ("right_eye", "nose_tip"), ("left_eye", "nose_tip"),
    ("glabella", "nose_tip"), ("nose_tip", "upper_lip"), ("upper_lip", "mouth_right"), ("upper_lip", "mouth_left"),
    ("lower_lip", "mouth_right"), ("lower_lip", "mouth_left"), ("upper_lip", "lower_lip"),
    # only with ALL_REGIONS
    ("glabella", "nose_bridge"), ("nose_bridge", "nose_tip"), ("jaw_right", "mouth_right"),
    ("jaw_left", "mouth_left"), ("chin", "lower_lip"), ("jaw_right", "chin"), ("jaw_left", "chin"),
    ("jaw_right", "right_eye"), ("jaw_left", "left_eye"),
]

PRIOR_EDGES: list[tuple[str, str]] = [
    ("right_brow", "left_brow"),      # AU1/AU2/AU4 act on both brows
    ("right_brow", "mouth_right"), ("left_brow", "mouth_left"),  # brow <-> mouth corner
    ("right_eye", "mouth_right"), ("left_eye", "mouth_left"),    # AU6 + AU12 (cheek raiser, lip corner puller)
    ("mouth_right", "mouth_left"),    # AU12 / AU14 / AU15 act on both corners
    ("glabella", "lower_lip"),        # AU4 with AU17 / AU24 in negative expressions
]


def region_graph(regions: list[str], graph: str = "optimised") -> torch.Tensor:
    """Symmetric 0/1 adjacency (R, R) without self loops over ``regions`` (edges whose
    ends are both present). ``graph``: optimised (anatomical + prior) | raw (anatomical)."""
    if graph not in ("optimised", "raw"):
        raise ValueError(f"graph must be optimised or raw, not {graph!r}")
    index = {r: i for i, r in enumerate(regions)}
    adj = torch.zeros(len(regions), len(regions))
    edges = ANATOMICAL_EDGES + (PRIOR_EDGES if graph == "optimised" else [])
    for a, b in edges:
        if a in index and b in index:
            adj[index[a], index[b]] = adj[index[b], index[a]] = 1.0
    isolated = [r for r, i in index.items() if adj[i].sum() == 0]
    if isolated:
        raise ValueError(f"regions without any edge in the {graph} graph: {isolated}")
    return adj


class PatchCNN(nn.Module):
    def __init__(self, in_chans: int, widths=(16, 32)):
        super().__init__()
        layers, c = [], in_chans
        for i, w in enumerate(widths):
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            c = w
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.out_dim = c

    def forward(self, x):
        return self.net(x)


class GAMMER(nn.Module):
    """``forward(patches)``: patches (B, R, C, P, P), one per region in ``regions`` order."""

    def __init__(self, num_classes: int = 5, regions: list[str] | None = None, graph: str = "optimised",
                 layers: int = 2, conv: str = "gat", in_chans: int = 6, cnn=(16, 32), hidden: int = 64,
                 heads: int = 4, dropout: float = 0.3):
        super().__init__()
        self.regions = list(regions or REGIONS)
        unknown = set(self.regions) - set(ALL_REGIONS)
        if unknown:
            raise ValueError(f"unknown region(s) {sorted(unknown)}; known: {list(ALL_REGIONS)}")
        if conv not in ("gat", "gcn"):
            raise ValueError(f"conv must be gat or gcn, not {conv!r}")
        if layers < 1:
            raise ValueError("at least one graph layer")
        if conv == "gat" and hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.register_buffer("adj", region_graph(self.regions, graph))
        self.cnn = PatchCNN(in_chans, cnn)
        self.embed = nn.Parameter(torch.zeros(len(self.regions), self.cnn.out_dim))
        dims = [self.cnn.out_dim] + [hidden] * layers
        self.convs = nn.ModuleList(
            DenseGATConv(i, hidden // heads, heads=heads, dropout=dropout) if conv == "gat" else DenseGCNConv(i, hidden)
            for i in dims[:-1])
        self.dropout = dropout
        self.fc = nn.Linear(hidden, num_classes)

    def node_features(self, patches: torch.Tensor) -> torch.Tensor:
        b, r = patches.shape[:2]
        if r != len(self.regions):
            raise ValueError(f"got {r} region patches, the model has {len(self.regions)} regions")
        return self.cnn(patches.flatten(0, 1)).view(b, r, -1) + self.embed

    def graph_features(self, patches: torch.Tensor) -> torch.Tensor:
        """Node features after the graph layers, (B, R, hidden)."""
        h = self.node_features(patches)
        for conv in self.convs:
            h = F.elu(conv(F.dropout(h, self.dropout, self.training), self.adj))
        return h

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        return self.fc(self.graph_features(patches).mean(1))


@register("gam_mm_mer")
def gam_mer(num_classes: int = 5, **cfg) -> nn.Module:
    return GAMMER(num_classes=num_classes, **cfg)


# ------------------------------------------------------------------ runs
REGION_SETS = {"micro": REGIONS, "all": ALL_REGIONS}


def ablation_tables(layers: int, conv: str, graph: str, regions: str, table4_alphas) -> dict:
    """The paper's Tables 3 and 4 around the main configuration (``layers`` GAT layers,
    ``conv``, ``graph``, the ``regions`` set): ``id -> (title, {row: changes})``. A row's
    changes are model arguments (``layers``, ``conv``, ``graph``) or node-input changes:
    ``regions`` (the other set of :data:`REGION_SETS`), ``magnifier`` ("none": the raw
    apex) or ``test_alpha`` (one of ``table4_alphas``)."""
    other_regions = "all" if regions == "micro" else "micro"
    other_graph = "raw" if graph == "optimised" else "optimised"
    t3 = {"add one GAT layer": {"layers": layers + 1}, "remove one GAT layer": {"layers": max(1, layers - 1)},
          "GCN instead of GAT": {"conv": "gcn" if conv == "gat" else "gat"},
          ("all facial key areas" if regions == "micro" else "micro-expression areas only"): {"regions": other_regions},
          ("raw facial graph" if graph == "optimised" else "optimised graph"): {"graph": other_graph}}
    t4 = {"raw image (no magnification)": {"magnifier": "none"},
          **{f"alpha = {a:g} at test": {"test_alpha": float(a)} for a in table4_alphas}}
    return {"T3": ("Table 3: the recogniser", t3), "T4": ("Table 4: the magnification", t4)}
