"""Every method's main model with a random batch shaped like its notebook's dataset items,
so a benchmark can time inference and training steps at any params file's sizes without
the data on disk.

``example(method, method_params(method, "casme2"))`` builds the model exactly as the
method's notebook builds the model of its main run (the ``models.Spec(...)`` handed to
``run.main``), with the same arguments read from the same parameter names, and one batch
of inputs with the shapes, dtypes and extra fields (AU vectors, landmark points, apex
positions, lengths) that the notebook's dataset gives the model per clip, stacked as the
training loop's DataLoader stacks them. Only values are invented: random frames, and
where a model is built from training data, a stand-in of the right shape (see
:func:`example`). Time per step does not depend on those values.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from mer.study import method_params  # noqa: F401  (what the notebook runs with: the benchmarks' sizes)

# Method ids in notebook order (00_baseline ... 05_cva_fpf): every method with a notebook.
METHODS: tuple[str, ...] = ("baseline", "mer_gcn", "gam_mm_mer", "tdsgcn", "atm_gcn", "cva_fpf", "reference")


@dataclass
class Example:
    """One method's main model and one batch for it. ``inputs`` is a tuple (positional
    arguments) or a dict (keyword arguments), as the training loop passes a batch."""
    method: str
    model: nn.Module        # built as the notebook builds its main model, eval mode, on CPU
    inputs: tuple | dict    # one batch: model(*inputs) or model(**inputs)
    labels: torch.Tensor    # (batch,) int64 class indices
    item: str               # one line: what one clip's input is (shapes)

    def forward(self):
        """The model on the batch, called the way mer.train.engine calls it."""
        if isinstance(self.inputs, dict):
            return self.model(**self.inputs)
        return self.model(*self.inputs)


def num_classes_of(params: dict) -> int:
    """Classes of the params' protocol (or the dataset's default protocol); 5 when neither
    names a known protocol."""
    from mer.data import DEFAULT_PROTOCOL, get_protocol
    name = params.get("protocol") or DEFAULT_PROTOCOL.get(params.get("dataset"))
    if not name:
        return 5
    try:
        return get_protocol(name).num_classes
    except KeyError:
        return 5


def example(method: str, params: dict, batch: int = 1, num_classes: int | None = None) -> Example:
    """The method's main model at the sizes in ``params`` (input_size, frames, config,
    patch, side, ... whatever that notebook uses) with a random batch of ``batch`` clips.

    ``params`` holds the notebook's parameter names (:func:`method_params`, possibly passed
    through ``mer.notebook.smoke_params``). Classes: ``num_classes``, else the protocol's.
    The model's weights are freshly initialised (seeded by ``params["seed"]`` without
    touching torch's global generator) and the inputs are drawn from a fixed seed.

    What stands in for data the notebooks compute from the dataset:

    - baseline: ``pretrained_path`` is not loaded (random weights of the same network).
    - mer_gcn: the AU graph, which the notebook counts per fold from the training clips
      (``FoldGraphs``), is :func:`mer.models.mer_gcn.au_graph` over a seeded random set of
      AU lists (every AU of the vocabulary occurs, with 0-2 others) and the landmarks of a
      schematic 68-point face at ``input_size``; the points input is that face's
      landmarks of the AU regions in grid coordinates with a little jitter per clip.
    - gam_mm_mer: the magnifier (ST-MEMM) only prepares the inputs and is not part of the
      model; the region patches are random.
    - tdsgcn: the pixel graphs come from the model itself (no data); the macro
      pre-training that the notebook loads into the SGCNs is left out (random weights),
      but with ``pretrain`` and ``freeze_sgcns`` the SGCNs are frozen as in the main run.
    - atm_gcn: every clip has all T frames (``length`` = T with sampling "rate") and a
      random apex position in 1..T-1.
    - cva_fpf: the AU vectors are random binary vectors of the vocabulary's length.
    - reference: the notebook trains several networks; the example is the first of its
      ``networks`` (STSTNet in every profile) on random flow maps in [0, 1] at that network's
      side, trained with that network's own settings (:func:`train_settings`).
    """
    if method not in BUILDERS:
        raise KeyError(f"no benchmark model for {method!r}; known: {', '.join(METHODS)}")
    classes = int(num_classes) if num_classes is not None else num_classes_of(params)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(params.get("seed", 0) or 0))
        model, inputs, item = BUILDERS[method](params, classes, batch, torch.Generator().manual_seed(0))
    labels = torch.arange(batch, dtype=torch.int64) % classes
    return Example(method, model.cpu().eval(), inputs, labels, item)


# ------------------------------------------------------------------ random inputs
def _shape(t: torch.Tensor) -> str:
    return str(tuple(t.shape[1:]))


def _frames(g: torch.Generator, *shape: int) -> torch.Tensor:
    """Aligned frames centred to [-0.5, 0.5], as the datasets give them."""
    return torch.rand(*shape, generator=g) - 0.5


def _change(g: torch.Generator, gain: float, *shape: int) -> torch.Tensor:
    """A frame difference (a few grey levels of 255) times ``gain``."""
    return torch.randn(*shape, generator=g) * (3.0 / 255.0) * gain


def _sequence(g: torch.Generator, batch: int, t: int, c: int, size: int) -> torch.Tensor:
    """T frames whose later frames differ slightly from the first (an onset-to-offset clip)."""
    first = _frames(g, batch, 1, c, size, size)
    return (first + _change(g, 1.0, batch, t, c, size, size)).clamp(-0.5, 0.5)


def schematic_face(size: int) -> np.ndarray:
    """(68, 2) pixel coordinates of a drawn frontal face in the iBUG 68-point order, eyes
    where the aligner puts them (eye line at faces.EYE_Y, inter-ocular distance
    faces.IOD_FRACTION of ``size``): a stand-in for a dataset's aligned landmarks."""
    from mer.preprocess.faces import EYE_Y, IOD_FRACTION
    pts: list[tuple[float, float]] = []
    for k in range(17):  # jaw: the lower half of an ellipse, ear to ear through the chin
        theta = math.pi - k * math.pi / 16
        pts.append((0.5 + 0.32 * math.cos(theta), EYE_Y + 0.02 + 0.50 * math.sin(theta)))
    for x0 in (0.24, 0.56):  # brows, image left then right, slightly arched
        for k in range(5):
            u = k / 4
            pts.append((x0 + 0.20 * u, EYE_Y - 0.09 - 0.03 * math.sin(math.pi * u)))
    for k in range(4):  # nose bridge
        pts.append((0.5, EYE_Y + 0.02 + 0.16 * k / 3))
    for k in range(5):  # nose base
        pts.append((0.44 + 0.03 * k, 0.62 + (0.01 if k == 2 else 0.0)))
    for cx in (0.5 - IOD_FRACTION / 2, 0.5 + IOD_FRACTION / 2):  # eyes: corner, upper lid, corner, lower lid
        for deg in (180, 120, 60, 0, -60, -120):
            a = math.radians(deg)
            pts.append((cx + 0.06 * math.cos(a), EYE_Y - 0.02 * math.sin(a)))
    for k in range(12):  # outer lips from the image-left corner over the upper lip
        a = math.radians(180 - 30 * k)
        pts.append((0.5 + 0.10 * math.cos(a), 0.74 - 0.04 * math.sin(a)))
    for k in range(8):  # inner lips
        a = math.radians(180 - 45 * k)
        pts.append((0.5 + 0.07 * math.cos(a), 0.74 - 0.015 * math.sin(a)))
    return np.asarray(pts, dtype=np.float64) * size


def standin_au_lists(vocabulary, clips_per_au: int = 3, seed: int = 0) -> list[list[int]]:
    """Seeded random AU annotations in which every AU of ``vocabulary`` occurs: per AU,
    ``clips_per_au`` clips holding it and 0-2 other AUs (a co-occurrence of the right size
    and a plausible sparsity, standing in for a fold's training clips)."""
    rng = np.random.default_rng(seed)
    vocabulary = [int(a) for a in vocabulary]
    out = []
    for au in vocabulary:
        for _ in range(clips_per_au):
            others = rng.choice(vocabulary, size=int(rng.integers(0, 3)), replace=False)
            out.append(sorted({au, *(int(o) for o in others)}))
    return out


# ------------------------------------------------------------------ per method
def _baseline(p: dict, classes: int, batch: int, g: torch.Generator):
    from mer import models
    size = int(p["input_size"])
    # ClipDataset(recipe "diff"): (C, S, S) with C = 3 (RGB; grey is not used by the notebook)
    x = _change(g, 10.0, batch, 3, size, size)
    spec = models.Spec("resnet18_diff", num_classes=classes, in_chans=3, pretrained_path=None)
    return spec(), (x,), f"apex - onset {_shape(x)}"


def _mer_gcn(p: dict, classes: int, batch: int, g: torch.Generator):
    from mer import models
    from mer.models import mer_gcn
    from mer.preprocess.landmark_frames import to_grid
    size, t = int(p["input_size"]), int(p["frames"])
    vocabulary = tuple(int(a) for a in (p.get("au_vocabulary") or mer_gcn.DEFAULT_AUS))
    face = schematic_face(size)
    graph = mer_gcn.au_graph(standin_au_lists(vocabulary), face[None], vocabulary, p["centre_distance"])
    spec = models.Spec("mer_gcn", num_classes=classes, config=p["config"], vocabulary=vocabulary,
                       reading=p["reading"])
    model = spec.variant(graph=graph)()  # what FoldGraphs hands the model for a fold
    # LandmarkFrames: RGB centred plus each frame's change from the first times diff_gain
    rgb = _sequence(g, batch, t, 3, size)
    frames = torch.cat([rgb, (rgb - rgb[:, :1]) * float(p["diff_gain"])], dim=2)
    landmark_ids, _ = mer_gcn.region_membership(vocabulary)
    grid = torch.from_numpy(to_grid(face[landmark_ids], size))
    points = (grid[None] + torch.randn(batch, *grid.shape, generator=g) * (1.0 / size)).clamp(-1, 1)
    inputs = {"frames": frames, "points": points}
    return model, inputs, f"frames {_shape(frames)} + points {_shape(points)}"


def _gam_mm_mer(p: dict, classes: int, batch: int, g: torch.Generator):
    from mer import models
    from mer.models import gam_mer
    size = int(p["input_size"])
    regions = gam_mer.REGION_SETS[p["regions"]]
    patch = int(p.get("patch") or max(8, size // 4))
    side = 2 * (patch // 2)  # region_patches crops 2 * (patch // 2) px around each centre
    # MagnifiedRegions: per region the magnified apex patch and its change from the onset
    apex = _frames(g, batch, len(regions), 3, side, side)
    x = torch.cat([apex, _change(g, float(p["diff_gain"]) * float(p["test_alpha"]), batch, len(regions), 3, side,
                                 side)], dim=2)
    spec = models.Spec("gam_mm_mer", num_classes=classes, regions=list(regions), layers=p["gat_layers"],
                       conv=p["conv"], graph=p["graph"])
    return spec(), (x,), f"region patches {_shape(x)} ({p['regions']} regions)"


def _tdsgcn(p: dict, classes: int, batch: int, g: torch.Generator):
    from mer import models
    from mer.models import tdsgcn
    side = int(p["side"])
    spec = models.Spec("tdsgcn", num_classes=classes, graphs=[tuple(x) for x in p["graphs"]],
                       branches=tdsgcn.BRANCHES, config=p["config"], side=side, T=p["graph_T"],
                       graph_seed=p["graph_seed"], dropout=p["dropout"], candidates=p["graph_candidates"])
    model = spec()
    if p.get("pretrain") and p.get("freeze_sgcns"):  # transfer.transferred with freeze, minus the loaded weights
        model.freeze_sgcns()
    # TwoStream: grey apex (or apex - onset times 10) and u, v, strain at the graph's side
    spatial = _frames(g, batch, 1, side, side) if p["spatial"] == "apex" else _change(g, 10.0, batch, 1, side, side)
    temporal = torch.randn(batch, 3, side, side, generator=g) * 0.05
    temporal[:, :2] *= float(p["flow_gain"])
    inputs = {"spatial": spatial, "temporal": temporal}
    return model, inputs, f"spatial {p['spatial']} {_shape(spatial)} + temporal u, v, strain {_shape(temporal)}"


def _atm_gcn(p: dict, classes: int, batch: int, g: torch.Generator):
    from mer import models
    size, t = int(p["input_size"]), int(p["frames"])
    spec = models.Spec("atm_gcn", num_classes=classes, config=p["config"], frames=t, global_node=p["global_node"])
    # ClipDataset(recipe "sequence", include_apex): T RGB frames, the onset first, and the apex's position
    frames = _sequence(g, batch, t, 3, size)
    inputs = {"frames": frames, "apex_index": torch.randint(1, max(2, t), (batch,), generator=g)}
    item = f"frames {_shape(frames)} + apex_index ()"
    if p.get("sampling") == "rate":  # 30 Hz sampling pads to T and says how many frames are real
        inputs["length"] = torch.full((batch,), t, dtype=torch.int64)
        item += " + length ()"
    return spec(), inputs, item


def _cva_fpf(p: dict, classes: int, batch: int, g: torch.Generator):
    from mer import models
    from mer.data.aus import AU_VECTOR_PAPER
    size = int(p["input_size"])
    vocab = p.get("au_vocabulary", "paper")
    vocabulary = list(AU_VECTOR_PAPER) if vocab == "paper" else [int(a) for a in vocab]
    overrides = {k: v for k, v in {"fpf_sum": p.get("fpf_sum"), "attention_act": p.get("attention_act")}.items()
                 if v is not None}
    spec = models.Spec("cva_fpf", num_classes=classes, config=p["config"], size=size, n_aus=len(vocabulary),
                       **overrides)
    # ClipDataset(recipe "pair", au_vocabulary): onset and apex, and the clip's binary AU vector
    frames = _sequence(g, batch, 2, 3, size)
    aus = (torch.rand(batch, len(vocabulary), generator=g) < 0.15).float()
    inputs = {"frames": frames, "aus": aus}
    return spec(), inputs, f"onset, apex {_shape(frames)} + aus {_shape(aus)}"


def _reference(p: dict, classes: int, batch: int, g: torch.Generator):
    from mer import models
    from mer.models import reference
    name = p["networks"][0]
    shown, side, channels = reference.input_of(name, p.get("rcn_side", 60))
    # FlowInput: (channels, side, side) per-clip min-max normalised flow maps
    x = torch.rand(batch, len(channels), side, side, generator=g)
    spec = models.Spec(name, num_classes=classes, in_chans=len(channels), input_size=side)
    return spec(), (x,), f"{shown}: {', '.join(channels)} {_shape(x)}"


BUILDERS: dict[str, Callable] = {"baseline": _baseline, "mer_gcn": _mer_gcn, "gam_mm_mer": _gam_mm_mer,
                                 "tdsgcn": _tdsgcn, "atm_gcn": _atm_gcn, "cva_fpf": _cva_fpf, "reference": _reference}


def train_settings(method: str, params: dict) -> dict:
    """Training settings the notebook gives the example's model beyond the parameters named
    like TrainConfig fields (the reference networks' own optimizer, lr, epochs and batch)."""
    if method == "reference":
        from mer.models import reference
        return reference.training(params["networks"][0], params.get("network_epochs"))
    return {}
