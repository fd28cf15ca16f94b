"""p2 GAM-MER: the recogniser of GAM-MM-MER. Magnified apex -> patches around dlib
landmark regions -> a small CNN per patch -> node features -> graph attention layers over
a region graph -> pooling -> FC.

Regions (:data:`REGION_SETS`): "micro" is p2 section 2.2's selection, the eyebrows, the
nose tip and the mouth (brows, nose tip, mouth corners, lips); the paper drops the facial
contour and names blinking and eye movement as interference that magnification
amplifies. "micro+eyes" adds the eyes and the glabella (this study's earlier set), "all"
adds the eyes and the jaw contour to "micro" (Table 3's "all facial key areas").

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
  (the optimised graph without the prior long-range edges); "all facial key areas" adds
  the eyes and the jaw contour in three parts, with the anatomical edges extended to them.
- assumption: the landmark groups of each region (:data:`mer.landmarks.REGIONS`: each
  brow, the nose tip with the nostrils, each mouth corner, upper and lower lip); where a
  region between two others is left out (the eyes, the glabella), its neighbours are
  linked across it (:data:`BRIDGE_EDGES`).
- assumption: GAT layers are PyG's DenseGATConv (heads concatenated, ELU, dropout), the
  graph is fixed, so a batch is one dense tensor; GCN variant: DenseGCNConv.
- assumption: node features are mean-pooled over regions before the FC.
- assumption (node inputs, :class:`mer.preprocess.magnified_regions.MagnifiedRegions`):
  the paper magnifies with alpha in {8, 10, 12, 15} "to augment the dataset and mitigate
  the category imbalance": each training clip is magnified at one drawn factor per copy,
  and a class with n clips gets round(n_max / n) copies per epoch, at most as many copies
  as training factors, each copy drawing its factor independently
  (``balance``); alpha 5 at test.
- assumption: "colour" augmentation is one gain per RGB channel in 1 +- ``aug_colour``
  (0.1), brightness and contrast a shift and gain in +- ``aug_jitter`` (0.1), the same draw
  for the apex and onset patches of a clip.
- assumption: Eq. 7's landmarks of the magnified apex come from dlib's 68-point predictor
  run inside the box of the aligned apex's landmarks (grown by 15%); the onset patch is
  cropped at the same place (``landmarks="apex"`` crops every factor at the aligned apex's
  landmarks).

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

_MICRO = ("right_brow", "left_brow", "nose_tip", "mouth_right", "mouth_left", "upper_lip", "lower_lip")
_EYES = ("right_eye", "left_eye")
_CONTOUR = ("jaw_right", "chin", "jaw_left")
REGION_SETS: dict[str, dict[str, list[int]]] = {
    "micro": {r: ALL_REGIONS[r] for r in _MICRO},                                  # p2 section 2.2
    "micro+eyes": dict(REGIONS),                                                   # + eyes, glabella
    "all": {r: ALL_REGIONS[r] for r in _MICRO[:2] + _EYES + _MICRO[2:] + _CONTOUR},  # Table 3's "all areas"
}

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

# Edges across a left-out region: (a, b, regions between them); used only when none of those is present.
BRIDGE_EDGES: list[tuple[str, str, tuple[str, ...]]] = [
    ("right_brow", "left_brow", ("glabella",)), ("right_brow", "nose_tip", ("right_eye", "glabella")),
    ("left_brow", "nose_tip", ("left_eye", "glabella")),
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
    bridges = [(a, b) for a, b, between in BRIDGE_EDGES if not any(r in index for r in between)]
    edges = ANATOMICAL_EDGES + bridges + (PRIOR_EDGES if graph == "optimised" else [])
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
        self.regions = list(regions or REGION_SETS["micro"])
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

def ablation_tables(layers: int, conv: str, graph: str, regions: str, table4_alphas) -> dict:
    """The paper's Tables 3 and 4 around the main configuration (``layers`` GAT layers,
    ``conv``, ``graph``, the ``regions`` set): ``id -> (title, {row: changes})``. A row's
    changes are model arguments (``layers``, ``conv``, ``graph``) or node-input changes:
    ``regions`` (another set of :data:`REGION_SETS`), ``magnifier`` ("none": the raw
    apex) or ``test_alpha`` (one of ``table4_alphas``)."""
    other_regions = "all" if regions != "all" else "micro"
    other_graph = "raw" if graph == "optimised" else "optimised"
    t3 = {"add one GAT layer": {"layers": layers + 1}, "remove one GAT layer": {"layers": max(1, layers - 1)},
          "GCN instead of GAT": {"conv": "gcn" if conv == "gat" else "gat"},
          ("all facial key areas" if regions != "all" else "micro-expression areas only"): {"regions": other_regions},
          ("raw facial graph" if graph == "optimised" else "optimised graph"): {"graph": other_graph}}
    t4 = {"raw image (no magnification)": {"magnifier": "none"},
          **{f"alpha = {a:g} at test": {"test_alpha": float(a)} for a in table4_alphas}}
    return {"T3": ("Table 3: the recogniser", t3), "T4": ("Table 4: the magnification", t4)}


def per_alpha_rows(tables: dict, main: str, test_alpha: float) -> dict[str, str]:
    """The rows of the paper's Fig. 8 (per-class accuracy at each factor), shown name ->
    ablation variant: Table 4's raw-image row, the main configuration at ``test_alpha``,
    then Table 4's other factors."""
    t4 = tables["T4"][1]
    raw = [name for name, changes in t4.items() if changes.get("magnifier") == "none"]
    alphas = [name for name, changes in t4.items() if "test_alpha" in changes]
    return {**{r: r for r in raw}, f"alpha = {test_alpha:g} at test (main)": main, **{a: a for a in alphas}}
