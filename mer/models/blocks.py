"""Layers shared by several papers.

MMNet-style Continuous Attention (CA) backbone (p4's motion encoder, p5's main stream):
a 3x3 stride-2 stem, then residual blocks (conv3x3 -> BN -> ReLU -> conv1x1 -> BN, plus a
shortcut, ReLU), each followed by an attention map that is multiplied by the previous
block's map (brought to the new size) before it weights the features: the attention is
"continuous" across blocks. The attention is pluggable, built as ``attention(channels,
prev_channels=...)``: :class:`SpatialAttention` is MMNet's (p4); p5 swaps in
:class:`CoordinateAttention` (vertical).
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn


def shrink_to(prev: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The previous block's attention map max-pooled (3x3, stride 2) until its height and
    width are no larger than ``like``'s (an axis of size 1 stays 1)."""
    while prev.shape[-1] > like.shape[-1] or prev.shape[-2] > like.shape[-2]:
        kh = 3 if prev.shape[-2] > like.shape[-2] else 1
        kw = 3 if prev.shape[-1] > like.shape[-1] else 1
        prev = F.max_pool2d(prev, kernel_size=(kh, kw), stride=(2 if kh == 3 else 1, 2 if kw == 3 else 1),
                            padding=(kh // 2, kw // 2))
    return prev


class SpatialAttention(nn.Module):
    """sigmoid(BN(conv1x1([mean_c, max_c]))) -> (B, 1, H, W); chained by multiplying with
    the previous block's map, max-pooled (3x3, stride 2) down to this block's size."""

    def __init__(self, channels: int, prev_channels: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size=1, bias=False)
        self.bn = nn.BatchNorm2d(1)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        a = torch.sigmoid(self.bn(self.conv(pooled)))
        return a if prev is None else a * shrink_to(prev, a)


class CoordinateAttention(nn.Module):
    """p5's continuous vertical attention (CVA), and its horizontal / both-direction variants.

    vertical: average over width -> (B, C, H, 1); 1x1 conv to max(8, C/32) channels, BN,
    hard-swish x * ReLU6(x + 3) / 6 (``act="hswish"``; assumption: Eq. 3 prints ReLU, not
    ReLU6, and ``act="relu"`` is that literal reading), 1x1 conv back to C, sigmoid -> a_h (B, C, H, 1), which
    re-weights every column of the features. horizontal: the same over height -> (B, C, 1, W).
    both: a_h * a_w (assumption: two independent branches; coordinate attention proper shares
    the first conv between them). Chained (``chained=True``, the paper's "continuous"): the map
    is multiplied by the previous block's map, max-pooled to this size and 1x1-conv'd from the
    previous block's channel count to this one's; ``chained=False`` is the "independent" ablation.
    """

    def __init__(self, channels: int, prev_channels: int | None = None, direction: str = "vertical",
                 chained: bool = True, act: str = "hswish"):
        super().__init__()
        if direction not in ("vertical", "horizontal", "both"):
            raise ValueError(f"direction must be vertical, horizontal or both, not {direction!r}")
        if act not in ACTIVATIONS:
            raise ValueError(f"act must be one of {sorted(ACTIVATIONS)}, not {act!r}")
        self.direction, self.chained = direction, chained
        mip = max(8, channels // 32)
        axes = {"vertical": ("h",), "horizontal": ("w",), "both": ("h", "w")}[direction]
        self.branches = nn.ModuleDict({ax: nn.Sequential(nn.Conv2d(channels, mip, 1, bias=False), nn.BatchNorm2d(mip),
                                                         ACTIVATIONS[act](), nn.Conv2d(mip, channels, 1))
                                       for ax in axes})
        self.prev_proj = (nn.Conv2d(prev_channels, channels, 1) if chained and prev_channels is not None else None)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> torch.Tensor:
        a = None
        for ax, branch in self.branches.items():
            pooled = x.mean(dim=3, keepdim=True) if ax == "h" else x.mean(dim=2, keepdim=True)
            m = torch.sigmoid(branch(pooled))
            a = m if a is None else a * m
        if self.prev_proj is not None and prev is not None:
            a = a * self.prev_proj(shrink_to(prev, a))
        return a


class LiteralReLUSwish(nn.Module):
    """p5's Eq. 3 as printed: x * ReLU(x + 3) / 6 (unbounded above, unlike h-swish's ReLU6)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * F.relu(x + 3) / 6


# The attention's activation: hard-swish x * ReLU6(x + 3) / 6 (coordinate attention's, and
# almost certainly what Eq. 3 means), or Eq. 3's literal ReLU.
ACTIVATIONS = {"hswish": nn.Hardswish, "relu": LiteralReLUSwish}


class CABlock(nn.Module):
    """Residual block + continuous attention; returns (features, attention map)."""

    def __init__(self, cin: int, cout: int, stride: int,
                 attention: Callable[..., nn.Module] = SpatialAttention, prev_channels: int | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        self.attention = attention(cout, prev_channels=prev_channels)

    def forward(self, x: torch.Tensor, prev: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        y = F.relu(self.bn1(self.conv1(x)))
        y = F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))
        a = self.attention(y, prev)
        return y * a, a


class CABackbone(nn.Module):
    """Stem + CA blocks. MMNet at 224 px: stem 180, blocks (128, 128, 256, 512) with strides
    (1, 2, 2, 2): 112 -> 14. ``forward`` returns the last feature map and every block's
    attention map (for the attention figures)."""

    def __init__(self, in_chans: int = 3, stem: int = 180, channels: Sequence[int] = (128, 128, 256, 512),
                 strides: Sequence[int] = (1, 2, 2, 2), attention: Callable[..., nn.Module] = SpatialAttention):
        super().__init__()
        if len(channels) != len(strides):
            raise ValueError("channels and strides need one entry per CA block")
        self.stem = nn.Sequential(nn.Conv2d(in_chans, stem, 3, stride=2, padding=1, bias=False),
                                  nn.BatchNorm2d(stem), nn.ReLU(inplace=True))
        cins = [stem, *channels[:-1]]
        prevs = [None, *channels[:-1]]  # the channels of the map each block's attention is chained to
        self.blocks = nn.ModuleList(CABlock(ci, co, s, attention, pc)
                                    for ci, co, s, pc in zip(cins, channels, strides, prevs))
        self.out_channels = channels[-1]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        x = self.stem(x)
        maps, prev = [], None
        for block in self.blocks:
            x, prev = block(x, prev)
            maps.append(prev)
        return x, maps


class MotionEncoder(nn.Module):
    """A CA backbone pooled to a feature vector: difference image -> motion feature m.

    ``grid`` > 1 average-pools to grid x grid and flattens, keeping where on the face the
    motion happened (a global average, grid = 1, keeps only how much)."""

    def __init__(self, in_chans: int = 3, stem: int = 180, channels: Sequence[int] = (128, 128, 256, 512),
                 strides: Sequence[int] = (1, 2, 2, 2), grid: int = 1):
        super().__init__()
        self.backbone = CABackbone(in_chans, stem, channels, strides)
        self.grid = grid
        self.out_dim = self.backbone.out_channels * grid * grid

    def forward(self, x: torch.Tensor, return_maps: bool = False):
        feat, maps = self.backbone(x)
        m = F.adaptive_avg_pool2d(feat, self.grid).flatten(1)
        return (m, maps) if return_maps else m
