"""p5: Continuous Vertical Attention (CVA) + Facial Position Focalizer (FPF) + AU vector.

Pipeline (paper section 3, Fig. 1):
1. Main stream (motion): apex - onset -> MMNet-style CA backbone whose blocks use vertical
   coordinate attention, each block's map multiplied by the previous block's
   (:class:`mer.models.blocks.CoordinateAttention`) -> F_M, (512, 14, 14) at 224 px.
2. FPF (position): one Swin Transformer (depths 2, 2, 6; heads 4, 8, 16; embed 128;
   window 7; three stages, so no merging after the last) on the onset frame and on the
   apex frame with shared weights; the two maps are summed -> F_POS, (512, 14, 14).
3. F_M + F_POS, flattened, first FC; the 21-long binary AU vector is concatenated after
   that FC; an MLP gives the class scores.

Every part is a switch, so one class covers the paper's ablation tables:
``main`` cva | resnet (Table 2's base network: the skeleton's ResNet-18, timm), ``fpf``
swin | vit | None, ``fpf_frames`` dual | apex | onset (Table 6), ``use_au`` (Table 7),
``direction`` vertical | horizontal | both (Table 3), ``chained`` (Table 4).

Assumptions (not stated in the paper; each is a parameter):
- assumption: the AU vector joins after the first FC (hidden units), not beside the
  100k flattened features where 21 inputs would be lost; the MLP after it is
  FC(hidden + 21 -> mlp) -> ReLU -> dropout -> FC(classes). The paper says only
  "flattened and then concatenated with the AU information ... an MLP".
- assumption: the head's sizes: first FC to ``hidden`` 256, MLP width ``mlp`` 128, dropout
  0.5 after the first FC and inside the MLP (the paper gives none of them).
- assumption: the AU vector's 21 AUs are AU1..AU21 (:data:`mer.data.aus.AU_VECTOR_PAPER`,
  read off the footnote "01001 = AU2, AU5"); AUs outside it (CASME II's AU24, AU25, AU26)
  are counted and listed by the notebook, and ``au_vocabulary`` takes another list.
- assumption: the difference image is (apex - onset) * ``diff_gain`` on frames scaled to
  [-0.5, 0.5] (micro-motion changes pixels by a few grey levels), as the baseline's.
- assumption: Table 2's single-component rows are this model with the other parts off
  ("FPF block" = ResNet-18 trunk + FPF; "AU Embedding" = ResNet-18 trunk + AU vector;
  "CVA block" = CVA stream alone). The ResNet-18 trunk is timm's resnet18 without its
  pooling and classifier, under the same flatten + FC head as the CVA stream (so the
  rows differ in one part only); the skeleton's own ResNet-18 (global pool + FC) is
  00_baseline, compared beside it. Where the FPF map and the main map differ in size
  (ResNet-18 ends at 1/32, the FPF at 1/16) the FPF map is average-pooled to the main
  map's size; where channel counts differ a 1x1 conv brings the FPF to the main's. The
  other reading of the table (CVA attention inserted into ResNet-18) is not built.
- assumption: the ViT FPF (Table 5) is timm's VisionTransformer with patch 16 (so its
  token grid is the same 1/16 grid), width = the main stream's channels, depth = the
  Swin's total depth (10) and the Swin's last head count; the class token is dropped and
  the tokens are reshaped to a (C, S/16, S/16) map.
- assumption: the FPF's Swin shares its weights between the onset and the apex frame
  (METHODS.md; the paper is silent), window 7, stochastic depth 0.1 (timm's Swin
  default); no dropout elsewhere in the streams; head dropout ``dropout``.
- assumption: the "both directions" row of Table 3 multiplies two independent vertical
  and horizontal branches (coordinate attention proper shares their first conv).
- assumption: the attention's activation is hard-swish, x * ReLU6(x + 3) / 6
  (``attention_act="hswish"``, coordinate attention's); Eq. 3 prints ReLU, which is
  ``"relu"``.
- section 3's sum F_M + F_POS ("after adding F_POS and F_M together"; no equation number):
  plain in the paper config (``fpf_sum="plain"``, as the paper
  writes it). assumption (quick config only, ``fpf_sum="gated"``): F_POS enters through a
  learned per-channel scale initialised to 0, so training starts from the motion stream
  alone. On SynthME the Swin's layer-normed map (std about 2 for the onset + apex sum)
  swamped the difference stream (std about 0.07) and the quick model with the plain sum
  collapsed to the majority class (LOSO UF1 0.12); with the zero start the same run
  learns. The scale is weight-decayed with the rest.
- assumption: the augmentation draws one flip, rotation (uniform in +-3 degrees; the
  paper: "0-3") and crop for onset and apex together; the crop pads by replicating the
  border (torchvision pads with zeros).
- assumption: cross-entropy (the paper names no loss); the exponential decay rate 0.95
  per epoch over the first 50 epochs (the paper gives the span, not the rate).

How the quick profile's settings were chosen (tuning probes on SynthME, synthetic numbers) is
in params/cva_fpf/NOTES.md.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import torch
import torch.nn.functional as F
from timm.models.resnet import BasicBlock, ResNet
from timm.models.swin_transformer import SwinTransformer
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from mer.data.aus import AU_VECTOR_PAPER
from mer.models import register
from mer.models.blocks import CABackbone, CoordinateAttention
from mer.models.resnet import load_local_weights

FPF_SUMS = ("plain", "gated")

CONFIGS: dict[str, dict] = {
    # the paper's sizes at 224 px: CA backbone 180 -> (128, 128, 256, 512), 112 -> 14;
    # Swin embed 128 -> 256 -> 512 at 56 -> 28 -> 14; ResNet-18 at full width.
    "paper": dict(stem=180, channels=(128, 128, 256, 512), strides=(1, 2, 2, 2), embed=128, depths=(2, 2, 6),
                  heads=(4, 8, 16), window=7, resnet_channels=(64, 128, 256, 512), resnet_stem=64, hidden=256,
                  mlp=128, dropout=0.5, drop_path=0.1, fpf_sum="plain", attention_act="hswish"),
    # CPU-sized for SynthME at 64 px: the same topology at an eighth of the width
    # (CA 16 -> (16, 16, 32, 64) ending 4x4; Swin embed 16 -> 32 -> 64, window 4, and
    # depths (2, 2, 2), which keeps the quick notebook within its 4 minutes; ResNet-18
    # with channels (16, 32, 64, 64)).
    "quick": dict(stem=16, channels=(16, 16, 32, 64), strides=(1, 2, 2, 2), embed=16, depths=(2, 2, 2),
                  heads=(1, 2, 4), window=4, resnet_channels=(16, 32, 64, 64), resnet_stem=16, hidden=64, mlp=32,
                  dropout=0.2, drop_path=0.1, fpf_sum="gated", attention_act="hswish"),
}


def swin_fpf(size: int, in_chans: int, embed: int, depths, heads, window: int, drop_path: float) -> SwinTransformer:
    """The FPF's Swin: len(depths) stages, patch merging between them only (timm merges at
    the start of every stage after the first), so the output is (embed * 2^(stages-1)) at
    size / 4 / 2^(stages-1): (512, 14, 14) for the paper's 224 px."""
    return SwinTransformer(img_size=size, patch_size=4, in_chans=in_chans, num_classes=0, embed_dim=embed,
                           depths=tuple(depths), num_heads=tuple(heads), window_size=window,
                           drop_path_rate=drop_path)


class FPF(nn.Module):
    """Facial Position Focalizer: a transformer on one face frame -> a (B, C, h, w) map.

    timm's Swin ``forward_features`` is channels-last (B, h, w, C); ViT's is a token list
    (B, 1 + h*w, C) in row-major order after the class token. Both become (B, C, h, w)."""

    def __init__(self, kind: str, size: int, in_chans: int, embed: int, depths, heads, window: int,
                 drop_path: float, out_channels: int):
        super().__init__()
        if kind == "swin":
            self.net = swin_fpf(size, in_chans, embed, depths, heads, window, drop_path)
            self.out_channels = embed * 2 ** (len(depths) - 1)
        elif kind == "vit":
            if size % 16:
                raise ValueError(f"the ViT FPF needs an input size divisible by 16, not {size}")
            self.net = VisionTransformer(img_size=size, patch_size=16, in_chans=in_chans, num_classes=0,
                                         global_pool="", embed_dim=out_channels, depth=sum(depths),
                                         num_heads=heads[-1], drop_path_rate=drop_path)
            self.out_channels = out_channels
        else:
            raise ValueError(f"FPF kind must be swin or vit, not {kind!r}")
        self.kind = kind

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.net.forward_features(x)
        if self.kind == "swin":
            return f.permute(0, 3, 1, 2).contiguous()
        tokens = f[:, self.net.num_prefix_tokens:]
        side = int(round(tokens.shape[1] ** 0.5))
        return tokens.transpose(1, 2).reshape(f.shape[0], -1, side, side)


class ResNetTrunk(nn.Module):
    """timm ResNet-18 (BasicBlock, 2-2-2-2) without pooling and classifier: (B, C, S/32, S/32)."""

    def __init__(self, in_chans: int, channels, stem: int, pretrained_path: str | None = None):
        super().__init__()
        self.net = ResNet(block=BasicBlock, layers=(2, 2, 2, 2), channels=tuple(channels), stem_width=stem,
                          in_chans=in_chans, num_classes=0, global_pool="")
        if pretrained_path:
            load_local_weights(self.net, pretrained_path)
        self.out_channels = channels[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.net.forward_features(x), []


def _grid(size: int, main: str, strides) -> int:
    if main == "resnet":
        return -(-size // 32)
    side = -(-size // 2)  # the stem
    for s in strides:
        side = -(-side // s)
    return side


def checked_aus(aus: torch.Tensor | None, n_aus: int) -> torch.Tensor:
    """The batch's AU vectors, or a clear error when the dataset gave none or the wrong length."""
    if aus is None:
        raise ValueError("this model uses the AU vector: the dataset must give 'aus' (au_vocabulary=...)")
    if aus.shape[-1] != n_aus:
        raise ValueError(f"AU vector of length {aus.shape[-1]}, the model expects {n_aus}")
    return aus


class CVAFPF(nn.Module):
    """The p5 network. ``forward(frames, aus=None)``: frames (B, 2, C, S, S) = onset, apex
    (the ``pair`` recipe, centred); aus (B, n_aus) binary, required when ``use_au``."""

    def __init__(self, num_classes: int = 5, config: str = "quick", size: int = 64, in_chans: int = 3,
                 main: str = "cva", fpf: str | None = "swin", fpf_frames: str = "dual", use_au: bool = True,
                 direction: str = "vertical", chained: bool = True, n_aus: int = len(AU_VECTOR_PAPER),
                 diff_gain: float = 10.0, pretrained_path: str | None = None, fpf_pretrained_path: str | None = None,
                 **overrides):
        super().__init__()
        if config not in CONFIGS:
            raise KeyError(f"unknown CVA-FPF config {config!r}; known: {sorted(CONFIGS)}")
        c = dict(CONFIGS[config])
        unknown = set(overrides) - set(c)
        if unknown:
            raise TypeError(f"unknown CVA-FPF setting(s) {sorted(unknown)}; known: {sorted(c)}")
        c.update(overrides)
        if main not in ("cva", "resnet"):
            raise ValueError(f"main must be cva or resnet, not {main!r}")
        if c["fpf_sum"] not in FPF_SUMS:
            raise ValueError(f"fpf_sum must be one of {FPF_SUMS}, not {c['fpf_sum']!r}")
        if fpf_frames not in ("dual", "apex", "onset"):
            raise ValueError(f"fpf_frames must be dual, apex or onset, not {fpf_frames!r}")
        self.main_kind, self.fpf_frames, self.use_au, self.diff_gain = main, fpf_frames, use_au, diff_gain
        self.n_aus, self.size = n_aus, size
        if pretrained_path and main != "resnet":
            raise ValueError("pretrained_path holds ResNet-18 weights: it needs main='resnet' (the CVA stream trains "
                             "from scratch; FPF weights go in fpf_pretrained_path)")
        if main == "cva":
            attention = partial(CoordinateAttention, direction=direction, chained=chained, act=c["attention_act"])
            self.main = CABackbone(in_chans, c["stem"], c["channels"], c["strides"], attention)
        else:
            self.main = ResNetTrunk(in_chans, c["resnet_channels"], c["resnet_stem"], pretrained_path)
        cm = self.main.out_channels
        grid = _grid(size, main, c["strides"])  # the main map's side: fc1 takes it flattened
        self.fpf = None
        if fpf is not None:
            self.fpf = FPF(fpf, size, in_chans, c["embed"], c["depths"], c["heads"], c["window"], c["drop_path"],
                           out_channels=cm)
            if fpf_pretrained_path:
                load_local_weights(self.fpf.net, fpf_pretrained_path)
            self.fpf_proj = nn.Identity() if self.fpf.out_channels == cm else nn.Conv2d(self.fpf.out_channels, cm, 1)
            # section 3's plain sum, or a learned per-channel scale on F_POS started at 0 (quick)
            self.fpf_scale = nn.Parameter(torch.zeros(1, cm, 1, 1)) if c["fpf_sum"] == "gated" else None
        self.fc1 = nn.Linear(cm * grid * grid, c["hidden"])
        self.head = nn.Sequential(nn.Linear(c["hidden"] + (n_aus if use_au else 0), c["mlp"]), nn.ReLU(inplace=True),
                                  nn.Dropout(c["dropout"]), nn.Linear(c["mlp"], num_classes))
        self.dropout = nn.Dropout(c["dropout"])

    def position(self, onset: torch.Tensor, apex: torch.Tensor) -> torch.Tensor:
        """F_POS: the FPF on the chosen frames (shared weights), summed."""
        frames = {"dual": (onset, apex), "apex": (apex,), "onset": (onset,)}[self.fpf_frames]
        pos = self.fpf_proj(self.fpf(torch.cat(frames)))  # one pass over both frames: same weights, fewer calls
        return pos.view(len(frames), onset.shape[0], *pos.shape[1:]).sum(0)

    def features(self, frames: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """F_M (+ F_POS) as a map, and the main stream's attention maps."""
        if frames.dim() != 5 or frames.shape[1] != 2:
            raise ValueError(f"expected frames (B, 2, C, S, S) = onset, apex; got {tuple(frames.shape)}")
        if tuple(frames.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"input frames are {tuple(frames.shape[-2:])} px but the model was built for "
                             f"size={self.size}; build it with size = the dataset's input size")
        onset, apex = frames[:, 0], frames[:, 1]
        fmap, maps = self.main((apex - onset) * self.diff_gain)
        if self.fpf is not None:
            pos = self.position(onset, apex)
            if pos.shape[-2:] != fmap.shape[-2:]:
                pos = F.adaptive_avg_pool2d(pos, fmap.shape[-2:])
            fmap = fmap + (pos if self.fpf_scale is None else self.fpf_scale * pos)
        return fmap, maps

    def forward(self, frames: torch.Tensor, aus: torch.Tensor | None = None) -> torch.Tensor:
        fmap, _ = self.features(frames)
        z = self.dropout(F.relu(self.fc1(fmap.flatten(1))))
        if self.use_au:
            z = torch.cat([z, checked_aus(aus, self.n_aus).to(z.dtype)], dim=1)
        return self.head(z)

    @torch.no_grad()
    def attention_maps(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """The main stream's per-block attention maps (CVA only), in eval mode."""
        if self.main_kind != "cva":
            raise ValueError("attention maps exist for the CVA main stream only")
        was = self.training
        self.eval()
        _, maps = self.features(frames)
        self.train(was)
        return maps

    @torch.no_grad()
    def row_weight_maps(self, frames: torch.Tensor) -> torch.Tensor:
        """Each CVA block's (h, 1) row weights (channel mean), spread over the frame's width
        and height: (B, blocks, S, S), for drawing over the apex frame."""
        size = frames.shape[-1]
        return torch.cat([F.interpolate(a.mean(1, keepdim=True), size=(size, size), mode="nearest")
                          for a in self.attention_maps(frames)], dim=1)


class AUOnly(nn.Module):
    """The "AU vector alone" reference: an MLP on the binary AU vector; ignores the frames.
    Ground-truth AUs are label-derived annotations, so this shows how much of the label the
    AU input alone carries."""

    def __init__(self, num_classes: int = 5, n_aus: int = len(AU_VECTOR_PAPER), hidden: int = 32,
                 dropout: float = 0.2):
        super().__init__()
        self.n_aus = n_aus
        self.net = nn.Sequential(nn.Linear(n_aus, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout),
                                 nn.Linear(hidden, num_classes))

    def forward(self, frames: torch.Tensor | None = None, aus: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(checked_aus(aus, self.n_aus).float())


@register("cva_fpf")
def cva_fpf(num_classes: int = 5, **cfg) -> nn.Module:
    return CVAFPF(num_classes=num_classes, **cfg)


@register("au_only")
def au_only(num_classes: int = 5, **cfg) -> nn.Module:
    return AUOnly(num_classes=num_classes, **cfg)


# The paper's ablation tables: each variant's change to the full model, and each table's rows
# (a variant, or (variant, the row's name in that table)).
FULL = "CVA_FPF_AU (full)"
ABLATIONS = {"ResNet_18 (base)": dict(main="resnet", fpf=None, use_au=False), "CVA block": dict(fpf=None, use_au=False),
             "FPF block": dict(main="resnet", use_au=False), "AU embedding": dict(main="resnet", fpf=None), FULL: {},
             "horizontal": dict(direction="horizontal"), "both directions": dict(direction="both"),
             "independent": dict(chained=False), "FPF on ViT": dict(fpf="vit"), "apex input": dict(fpf_frames="apex"),
             "onset input": dict(fpf_frames="onset"), "without AU": dict(use_au=False)}
TABLES = {"T2": ("Table 2: components on the ResNet-18 base",
                 ["ResNet_18 (base)", "CVA block", "FPF block", "AU embedding", FULL]),
          "T3": ("Table 3: attention direction", [(FULL, "vertical (full)"), "horizontal", "both directions"]),
          "T4": ("Table 4: independent vs continuous attention", ["independent", (FULL, "continuous (full)")]),
          "T5": ("Table 5: the FPF's transformer", ["FPF on ViT", (FULL, "FPF on Swin (full)")]),
          "T6": ("Table 6: the FPF's input frames", ["apex input", "onset input", (FULL, "dual-frame (full)")]),
          "T7": ("Table 7: the AU vector", ["without AU", (FULL, "with AU (full)")])}


def table_variants(tables: Sequence[str]) -> list[str]:
    """The variants the chosen ``tables`` need, each once, in table order."""
    return list(dict.fromkeys(r[0] if isinstance(r, tuple) else r for t in tables for r in TABLES[t][1]))


def au_reference_verdict(full_uf1: float, au_only_uf1: float) -> str:
    """What the AU vector alone scoring ``au_only_uf1`` says about the full model's
    ``full_uf1``: the AU codes are annotations of the same expression as the label."""
    gap = au_only_uf1 - full_uf1
    return (f"The AU vector alone scores UF1 {au_only_uf1:.3f} here: "
            + ("at least as high as the full model, so on this data the images add nothing measurable to the AU "
               "annotation, and the full model's lead over the image-only baseline is no evidence for CVA or FPF. "
               if gap >= 0 else f"{-gap:.3f} below the full model: that is what the images add to the AU annotation. ")
            + "The image-only evidence is in the ablations: Table 2's CVA and FPF rows and Table 7's row without AU.")
