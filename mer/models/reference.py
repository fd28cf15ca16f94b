"""The field's reference networks on onset -> apex optical flow: STSTNet, OFF-ApexNet,
SSSNet and RCN-A. Every MER paper of recent years sets its numbers against these small
networks; the study runs them under the same protocol as the five paper methods
(``notebooks/06_reference_flow_networks.ipynb``), on :class:`~mer.preprocess.flow_input.FlowInput`.

Sources. STSTNet: Liong, Gan, See, Khor, Huang, "Shallow triple stream three-dimensional CNN
(STSTNet) for micro-expression recognition", FG 2019 (the layers as its authors' PyTorch code and
MEB define them). OFF-ApexNet: Gan, Liong, Yau, Huang, Tan, "OFF-ApexNet on
micro-expression recognition system", Signal Processing: Image Communication 74, 2019.
SSSNet: Varanka, Peng, Zhao, "Micro-expression recognition with noisy labels", HVEI 2021,
as defined in its authors' benchmark library MEB (tvaranka/meb). RCN-A: Xia, Peng, Zhao,
"Revealing the invisible with model and data shrinking for composite-database
micro-expression recognition", IEEE TIP 2020 (recurrent convolutional network with
parameter-free attention), as in its authors' code. Where a paper is silent, the setting of
the public benchmark MEB is taken and labelled ``assumption:`` below. Architectures were
read from those descriptions; no code was copied.

STSTNet: three parallel one-layer streams on the same u, v, strain input (28 px): 3x3
convolutions with 3, 5 and 8 filters (padding 2), each ReLU, batch norm, 3x3 max pool of
stride 3 (padding 1) and dropout; the 16 maps concatenated, 2x2 average pool, one fully
connected layer. 480 + 401 C parameters (1,683 for 3 classes).
  assumption: dropout 0.5 after each stream's pool (MEB; the authors' PyTorch code), ``dropout``.
  assumption: batch norm after the ReLU, as the authors' code orders it.
  assumption: the input is the [0, 1] flow of FlowInput; the authors' PyTorch code feeds 8-bit
  images of the normalised maps unscaled (0-255).

OFF-ApexNet: the horizontal (u) and vertical (v) flow of the apex each through its own
stream (28 px): 3x3 conv, 6 filters, ReLU, 2x2 max pool; 3x3 conv, 16 filters, ReLU, 2x2
max pool; the two streams' features concatenated, two fully connected layers of 1024, the
classifier (``streams="two"``, ``hidden=(1024, 1024)``: 2,661,211 parameters for 3 classes).
  assumption: u and v in two streams and two hidden layers of 1024: the paper's design as this
  study reads its description (the paper's text was not at hand; no author code was found;
  the count equals a third-party reimplementation's 2.66 M). ``streams="one", hidden=(1024,)``
  is MEB's reading (u and v as one 2-channel stream, one hidden layer: 807,909 parameters
  for 3 classes), ``streams`` and ``hidden``.
  assumption: convolutions padded to keep the side ("same"), so each stream ends at 7 x 7 x 16.
  assumption: dropout 0.5 before each fully connected layer (MEB), ``dropout``.

SSSNet: u, v, strain at 64 px; 5x5 conv, 32 filters, ReLU, 3x3 max pool, batch norm,
channel dropout; 3x3 conv, 64 filters, ReLU, 2x2 max pool, batch norm, channel dropout;
fully connected 256, ReLU, dropout; the classifier (1,348,480 + 257 C parameters).
  assumption: dropout 0.5 everywhere (MEB's default), ``dropout``.
  assumption: logits into the cross-entropy; MEB's 3-class notebook applied a softmax before
  its cross-entropy (a double softmax), which is not followed.

RCN-A: u, v, strain; 5x5 conv, F maps, batch norm, ReLU, 2x2 max pool, dropout; one
recurrent convolutional layer (a 1x1 feed-forward conv, then the same 3x3 conv applied
twice to the input plus the previous state, each with batch norm and ReLU), 2x2 max pool,
dropout; adaptive average pool to P x P; the features weighted by a parameter-free
spatial attention map; the classifier. The attention map is built from the classifier's
own weights: per class, its weights reshaped to (F, P, P) times the first block's pooled
maps, averaged over channels and min-max normalised per clip; then averaged over classes.
10 F^2 + 84 F + (P^2 F + 1) C parameters.
  assumption: input 60 px (MEB; the authors' code does not say), the notebook's ``rcn_side``.
  assumption: F = 64 feature maps and pool size P = 7, the authors' script's defaults
  (MEB uses P = 5), ``features`` and ``pool``.
  assumption: dropout 0.5 (torch's default, as in the authors' code), ``dropout``.
  assumption: weights initialised as the authors' code does: convolutions Kaiming-normal
  (fan out), batch norm 1 and 0, the classifier N(0, 0.01) with zero bias.

Training settings (:data:`TRAINING`): each network's own; no augmentation and no learning
rate schedule in any of them; cross-entropy (the notebook's TrainConfig default) for all.
STSTNet: Adam, lr 5e-5, batch 256 (its authors' MATLAB and PyTorch scripts).
  assumption: 500 epochs (the authors' MATLAB script; their PyTorch script trains 800) and no
  weight decay (their PyTorch script; MEB uses 1e-3 with batch 32, the probe "MEB's settings").
OFF-ApexNet:
  assumption: Adam, lr 1e-4, weight decay 1e-3, 3000 epochs, batch 32: MEB's setting for its
  one-stream reading, applied here to the two-stream one (the paper's own settings were not
  found in any source read here).
SSSNet: Adam, lr 1e-4, weight decay 1e-3, 200 epochs (MEB, its authors' library).
  assumption: batch 32 (MEB's benchmark and 3-class runs; other MEB experiments use 64-256).
RCN-A: SGD, lr 5e-4, momentum 0.9, no weight decay, 100 epochs, batch 64 (the authors'
script; its StepLR is created but never stepped, so the rate is constant).
  assumption: for all four, bf16 mixed precision on CUDA (the notebook's ``amp: auto``); the
  papers and MEB train in float32, which ``amp: off`` follows.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import torch
from torch import nn

from mer.models import register

# name -> (shown name, input side, flow channels): what each network reads
INPUTS = {
    "ststnet": ("STSTNet", 28, ("u", "v", "strain")),
    "off_apexnet": ("OFF-ApexNet", 28, ("u", "v")),
    "sssnet": ("SSSNet", 64, ("u", "v", "strain")),
    "rcn_a": ("RCN-A", 60, ("u", "v", "strain")),
}
def input_of(name: str, rcn_side: int = 60) -> tuple[str, int, tuple[str, ...]]:
    """(shown name, input side, channels) of ``name``; RCN-A reads any side (its adaptive
    pool fixes the classifier), ``rcn_side`` (60 px, MEB's; 32 in smoke mode)."""
    shown, side, channels = INPUTS[name]
    return shown, (int(rcn_side) if name == "rcn_a" else side), channels


# name -> each network's own training settings (module docstring), as TrainConfig fields
TRAINING = {
    "ststnet": dict(optimizer="adam", lr=5e-5, weight_decay=0.0, epochs=500, batch_size=256, scheduler="none"),
    "off_apexnet": dict(optimizer="adam", lr=1e-4, weight_decay=1e-3, epochs=3000, batch_size=32, scheduler="none"),
    "sssnet": dict(optimizer="adam", lr=1e-4, weight_decay=1e-3, epochs=200, batch_size=32, scheduler="none"),
    "rcn_a": dict(optimizer="sgd", lr=5e-4, momentum=0.9, weight_decay=0.0, epochs=100, batch_size=64,
                  scheduler="none"),
}


def _side_after(side: int, kernel: int, stride: int, padding: int = 0) -> int:
    return (side + 2 * padding - kernel) // stride + 1


class STSTNet(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 3, input_size: int = 28, widths: Sequence[int] = (3, 5, 8),
                 dropout: float = 0.5):
        super().__init__()
        self.streams = nn.ModuleList(nn.Sequential(
            nn.Conv2d(in_chans, w, 3, padding=2), nn.ReLU(), nn.BatchNorm2d(w),
            nn.MaxPool2d(3, stride=3, padding=1), nn.Dropout(dropout)) for w in widths)
        self.pool = nn.AvgPool2d(2, 2)
        side = _side_after(_side_after(input_size + 2, 3, 3, 1), 2, 2)
        if side < 1:
            raise ValueError(f"STSTNet: input {input_size} px is too small")
        self.fc = nn.Linear(sum(widths) * side * side, num_classes)

    def forward(self, x):
        x = torch.cat([s(x) for s in self.streams], 1)
        return self.fc(self.pool(x).flatten(1))


class OFFApexNet(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 2, input_size: int = 28, streams: str = "two",
                 widths: Sequence[int] = (6, 16), hidden: Sequence[int] = (1024, 1024), dropout: float = 0.5):
        super().__init__()
        if streams not in ("two", "one"):
            raise ValueError(f"streams must be 'two' (u and v apart, the paper) or 'one' (MEB), got {streams!r}")
        if in_chans != 2:
            raise ValueError(f"OFF-ApexNet reads u and v: 2 channels, got {in_chans}")
        self.two = streams == "two"

        def stream(c_in: int) -> nn.Sequential:
            layers, c = [], c_in
            for w in widths:
                layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, 2)]
                c = w
            return nn.Sequential(*layers, nn.Flatten())
        self.streams = nn.ModuleList([stream(1), stream(1)] if self.two else [stream(2)])
        side = input_size
        for _ in widths:
            side //= 2
        if side < 1:
            raise ValueError(f"OFF-ApexNet: input {input_size} px is too small")
        width = widths[-1] * side * side * len(self.streams)
        layers = []
        for h in hidden:
            layers += [nn.Dropout(dropout), nn.Linear(width, h), nn.ReLU()]
            width = h
        self.head = nn.Sequential(*layers, nn.Dropout(dropout), nn.Linear(width, num_classes))

    def forward(self, x):
        parts = [self.streams[0](x[:, :1]), self.streams[1](x[:, 1:2])] if self.two else [self.streams[0](x)]
        return self.head(torch.cat(parts, 1))


class SSSNet(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 3, input_size: int = 64, widths: Sequence[int] = (32, 64),
                 hidden: int = 256, dropout: float = 0.5):
        super().__init__()
        a, b = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, a, 5), nn.ReLU(), nn.MaxPool2d(3, 3), nn.BatchNorm2d(a), nn.Dropout2d(dropout),
            nn.Conv2d(a, b, 3), nn.ReLU(), nn.MaxPool2d(2, 2), nn.BatchNorm2d(b), nn.Dropout2d(dropout), nn.Flatten())
        side = _side_after(_side_after(_side_after(_side_after(input_size, 5, 1), 3, 3), 3, 1), 2, 2)
        if side < 1:
            raise ValueError(f"SSSNet: input {input_size} px is too small")
        self.head = nn.Sequential(nn.Linear(b * side * side, hidden), nn.ReLU(), nn.Dropout(dropout),
                                  nn.Linear(hidden, num_classes))

    def forward(self, x):
        return self.head(self.features(x))


def _conv_bn_relu(c_in: int, c_out: int, kernel: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2), nn.BatchNorm2d(c_out), nn.ReLU())


class RecurrentConv(nn.Module):
    """A recurrent convolutional layer: y0 = ff(x), then y = rr(x + y) ``steps`` times with
    the same 3x3 convolution and batch norm."""

    def __init__(self, channels: int, steps: int = 2):
        super().__init__()
        self.ff, self.rr, self.steps = _conv_bn_relu(channels, channels, 1), _conv_bn_relu(channels, channels, 3), steps

    def forward(self, x):
        y = self.ff(x)
        for _ in range(self.steps):
            y = self.rr(x + y)
        return y


class RCNA(nn.Module):
    def __init__(self, num_classes: int, in_chans: int = 3, features: int = 64, pool: int = 7, steps: int = 2,
                 dropout: float = 0.5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_chans, features, 5), nn.BatchNorm2d(features), nn.ReLU(),
                                  nn.MaxPool2d(2, 2), nn.Dropout(dropout))
        self.rcl = nn.Sequential(RecurrentConv(features, steps), nn.MaxPool2d(2, 2), nn.Dropout(dropout))
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.fc = nn.Linear(features * pool * pool, num_classes)
        self.features, self.pool_size = features, pool
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.normal_(self.fc.weight, 0.0, 0.01)
        nn.init.zeros_(self.fc.bias)

    def attention(self, early: torch.Tensor) -> torch.Tensor:
        """(N, 1, P, P): per class, the classifier's weights (F, P, P) times the first block's
        pooled maps, averaged over channels, min-max normalised per clip; averaged over classes."""
        w = self.fc.weight.view(-1, self.features, self.pool_size, self.pool_size)  # (C, F, P, P)
        maps = (early[:, None] * w[None]).mean(2)  # (N, C, P, P)
        flat = maps.flatten(2)
        lo, hi = flat.min(2, keepdim=True).values, flat.max(2, keepdim=True).values
        flat = (flat - lo) / (hi - lo).clamp_min(1e-12)
        return flat.mean(1).view(-1, 1, self.pool_size, self.pool_size)

    def forward(self, x):
        stem = self.stem(x)
        feats = self.pool(self.rcl(stem)) * self.attention(self.pool(stem))
        return self.fc(feats.flatten(1))


@register("ststnet")
def ststnet(num_classes: int, **kw) -> nn.Module:
    return STSTNet(num_classes, **kw)


@register("off_apexnet")
def off_apexnet(num_classes: int, **kw) -> nn.Module:
    return OFFApexNet(num_classes, **kw)


@register("sssnet")
def sssnet(num_classes: int, **kw) -> nn.Module:
    return SSSNet(num_classes, **kw)


@register("rcn_a")
def rcn_a(num_classes: int, input_size: int | None = None, **kw) -> nn.Module:
    return RCNA(num_classes, **kw)  # any input side: the adaptive pool fixes the classifier's width


# ----------------------------------------------------------------------------- the notebook's steps

def training(name: str, network_epochs=None) -> dict:
    """``name``'s training settings (:data:`TRAINING`) with the notebook's ``network_epochs``:
    None (each network's own), an integer (every network) or a dict (name -> epochs; a
    network it does not name keeps its own)."""
    out = dict(TRAINING[name])
    if isinstance(network_epochs, dict):
        out["epochs"] = int(network_epochs.get(name, out["epochs"]))
    elif network_epochs is not None:
        out["epochs"] = int(network_epochs)
    return out


def parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe(model: nn.Module, cfg) -> str:
    """"1,683 parameters; adam lr 5e-05, weight decay 0, batch 256, 200 epochs"."""
    return (f"{parameters(model):,} parameters; {cfg.optimizer} lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, "
            f"batch {cfg.batch_size}, {cfg.epochs} epochs")


def flow_examples(ds, classes, seed: int = 0):
    """For one clip per class of a :class:`~mer.preprocess.flow_input.FlowInput`: its
    channels min-max scaled for display; (rows, row titles, column titles) for
    :func:`mer.report.plots.image_grid`."""
    from mer.preprocess.flow_input import normalise_clip
    clips = ds.clips.reset_index(drop=True)
    picks = [g.sample(1, random_state=seed).index[0] for _, g in clips.groupby("label", sort=True)]
    rows = [[m.numpy() for m in normalise_clip(ds.tensor(int(i)), ds.channels, "minmax")] for i in picks]
    titles = [f"{clips.loc[i, 'subject']}/{clips.loc[i, 'clip']}\n{classes[clips.loc[i, 'label']]}" for i in picks]
    return rows, titles, list(ds.channels)


def seed_spread(seed_runs: dict):
    """One row per network: pooled UF1 and UAR over its runs with each seed (mean, min, max)
    and the mean training seconds of one LOSO run."""
    import pandas as pd
    rows = []
    for name, runs in seed_runs.items():
        uf1 = [r.metrics["uf1"] for r in runs.values()]
        uar = [r.metrics["uar"] for r in runs.values()]
        rows.append({"network": INPUTS[name][0], "seeds": ", ".join(str(s) for s in runs),
                     "UF1 mean": sum(uf1) / len(uf1), "UF1 min": min(uf1), "UF1 max": max(uf1),
                     "UAR mean": sum(uar) / len(uar), "UAR min": min(uar), "UAR max": max(uar),
                     "train s per run": sum(r.seconds for r in runs.values()) / len(runs)})
    return pd.DataFrame(rows)


# probe row names, by candidate cause; the first is the row each probe is read against
PROBE_REFERENCE = "STSTNet on flow (its own settings)"
PROBE_BASELINE = "ResNet-18 on apex - onset (the baseline)"
PROBES = {
    "input": [("STSTNet on apex - onset", PROBE_REFERENCE), ("ResNet-18 on flow", PROBE_BASELINE)],
    "training budget": [("STSTNet with MEB's settings (batch 32, weight decay 1e-3)", PROBE_REFERENCE),
                        ("STSTNet with the baseline's training settings", PROBE_REFERENCE),
                        ("ResNet-18 baseline, twice its epochs", PROBE_BASELINE)],
    "augmentation": [("STSTNet with the study's augmentation", PROBE_REFERENCE),
                     ("ResNet-18 baseline without augmentation", PROBE_BASELINE)],
    "model size": [("STSTNet with 8x its filters", PROBE_REFERENCE),
                   ("ResNet-18 on flow", "STSTNet with the baseline's training settings")],
}


def probes(table, inputs: dict, run, baseline: tuple, network_epochs, probe_epochs: int, flow_size: int,
           normalise: str, flow: str) -> dict:
    """The probe rows (:data:`PROBES`) as ablation variants ``name -> (dataset, model,
    TrainConfig)``, every one at the notebook's seed and device. STSTNet keeps its own
    settings but for the probe's change; the ResNet-18 rows take the baseline's settings on
    this dataset, ``baseline`` = (params, TrainConfig, Augment) (the notebook's
    ``run.settings_of("baseline")``); ``probe_epochs`` is the budget of the "baseline's
    training settings" row."""
    from mer.models.spec import Spec
    from mer.preprocess import ClipDataset
    from mer.preprocess.flow_input import FlowInput, NO_AUGMENT
    p = run.params
    _, side, channels = INPUTS["ststnet"]
    base_params, base_cfg, base_aug = baseline
    common = run.frames_args()
    same = dict(seed=p.get("seed", 0), device=p.get("device", "auto"), amp=p.get("amp", "auto"))
    stst_cfg = run.config(**training("ststnet", network_epochs))
    meb_cfg = dataclasses.replace(stst_cfg, batch_size=32, weight_decay=1e-3)  # the peer toolkit's STSTNet
    base_cfg = dataclasses.replace(base_cfg, **same)
    budget_cfg = dataclasses.replace(base_cfg, epochs=int(probe_epochs))
    long_cfg = dataclasses.replace(base_cfg, epochs=2 * base_cfg.epochs)
    flow_small = inputs.get((side, channels))
    if flow_small is None:  # the notebook ran no network on STSTNet's input
        flow_small = FlowInput(table.clips, size=side, flow_size=flow_size, channels=channels, normalise=normalise,
                               flow=flow, **common)
    stst = Spec("ststnet", num_classes=table.num_classes, in_chans=3, input_size=side)
    size = int(base_params.get("input_size", 64))
    diff = ClipDataset(table.clips, "diff", augment=base_aug, **{**common, "size": size})
    diff_plain = ClipDataset(table.clips, "diff", augment=NO_AUGMENT, **{**common, "size": size})
    diff_small = ClipDataset(table.clips, "diff", augment=NO_AUGMENT, **{**common, "size": side})
    flow_big = FlowInput(table.clips, size=size, flow_size=max(flow_size, size), channels=("u", "v", "strain"),
                         normalise=normalise, flow=flow, augment=base_aug, **common)
    flow_aug = FlowInput(table.clips, size=side, flow_size=flow_size, channels=channels, normalise=normalise,
                         flow=flow, augment=run.augment(), **common)
    resnet = Spec("resnet18_diff", num_classes=table.num_classes, in_chans=3, pretrained_path=None)
    return {
        PROBE_REFERENCE: (flow_small, stst, stst_cfg),
        "STSTNet on apex - onset": (diff_small, stst, stst_cfg),
        "STSTNet with MEB's settings (batch 32, weight decay 1e-3)": (flow_small, stst, meb_cfg),
        "STSTNet with the baseline's training settings": (flow_small, stst, budget_cfg),
        "STSTNet with the study's augmentation": (flow_aug, stst, stst_cfg),
        "STSTNet with 8x its filters": (flow_small, stst.variant(widths=(24, 40, 64)), stst_cfg),
        PROBE_BASELINE: (diff, resnet, base_cfg),
        "ResNet-18 on flow": (flow_big, resnet, base_cfg),
        "ResNet-18 baseline, twice its epochs": (diff, resnet, long_cfg),
        "ResNet-18 baseline without augmentation": (diff_plain, resnet, base_cfg),
    }


def probe_findings(probe_table, compare=None) -> str:
    """One markdown line per probe: its UF1 against the row it changes (:data:`PROBES`), with
    the paired subject-bootstrap 95% interval of the difference when ``compare(row,
    against)`` gives that comparison (the notebook's ``run.compare`` on the two runs)."""
    uf1 = probe_table.set_index("variant")["uf1"]
    lines = []
    for cause, rows in PROBES.items():
        for row, against in rows:
            if row not in uf1 or against not in uf1:
                continue
            cmp = compare(row, against) if compare is not None else None
            interval = f", 95% interval [{cmp.boot['low']:+.3f}, {cmp.boot['high']:+.3f}]" \
                if cmp is not None and not cmp.skipped else ""
            lines.append(f"- **{cause}**: {row}: UF1 {uf1[row]:.3f}, {uf1[row] - uf1[against]:+.3f}{interval} against "
                         f"{against} ({uf1[against]:.3f})")
    return "\n".join(lines)


def summary(results: dict, strongest: str, spread, predictions: dict, network_epochs,
            seed_rows: dict | None = None) -> dict:
    """What ``metrics.json`` carries beside the headline (the strongest network's scores):
    each network's row, with ``predictions[name]``, its predictions file relative to the run's
    folder (the notebook's ``run.save_predictions``), ``seed_rows[name]`` (per training seed
    its scores and predictions file: the notebook's ``run.seed_rows``) and, with the
    test-epoch diagnostic on, what test-fold epoch selection would have reported."""
    rows = []
    by_name = spread.set_index("network") if spread is not None else None
    for name, r in results.items():
        shown = INPUTS[name][0]
        row = {"network": name, "name": shown, "acc": r.metrics["acc"], "uf1": r.metrics["uf1"],
               "uar": r.metrics["uar"], "epochs": training(name, network_epochs)["epochs"],
               "train_s": round(r.seconds, 1), "predictions": predictions[name]}
        if by_name is not None and shown in by_name.index:
            row["seeds"] = by_name.loc[shown].to_dict()
        if seed_rows and seed_rows.get(name):
            row["seed_runs"] = seed_rows[name]
        selection = r.test_selection() if hasattr(r, "test_selection") else None
        if selection is not None:
            row["test_selection"] = selection
        rows.append(row)
    return {"networks": rows, "strongest": strongest,
            "headline": f"the strongest of {len(results)} reference networks by pooled UF1 on this run's own test "
                        f"folds ({INPUTS[strongest][0]}): picked after testing, an optimistic reading"}
