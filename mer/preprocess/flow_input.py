"""Onset -> apex optical flow as the field's small reference networks read it (STSTNet,
OFF-ApexNet, SSSNet, RCN): a few channels of flow at a small side.

Per clip: TV-L1 flow (u, v) from the onset to the apex frame and its optical strain,
computed on aligned faces at ``flow_size`` px (micro-motion is a fraction of a pixel at
28 px, so the flow is computed where it is visible) and cached like every other recipe
(the ``flow`` recipe of :class:`~mer.preprocess.dataset.ClipDataset`), then area-resized to
the network's input side ``size``. The values stay in pixels at ``flow_size``: resizing a
flow image, as the papers do, keeps its values.

``channels`` picks and orders the maps: ``u``, ``v``, ``strain`` (optical strain) and
``magnitude`` (sqrt(u^2 + v^2)). ``normalise`` is per clip, so nothing is learned from other
clips (no statistic crosses a fold's boundary):

- ``none``: the values as computed;
- ``minmax``: each channel of each clip to [0, 1] (a flat channel gives 0);
- ``maxabs``: u and v divided by the clip's largest |u|, |v| together (their directions
  stay comparable), strain and magnitude by their own maximum;
- ``standard``: each channel of each clip to zero mean and unit standard deviation.

Training subsets augment with :class:`~mer.preprocess.dataset.Augment` of kind ``flow``
(a horizontal flip negates u; a rotation turns the vectors; strain and magnitude move as
scalar maps), or not at all (``augment=None``, the papers' reading).

assumption: TV-L1 (``flow="tvl1"``), as STSTNet's authors point to; MEB computes its flow
with Sun et al.'s "classic+nl-fast" (MATLAB), not available here.
assumption: the flow is computed on dlib-aligned faces (the study's alignment) at
``flow_size`` px; MEB uses its cropped faces at their own resolution.
assumption: area-resize to ``size`` first, then the per-clip normalisation, so a channel
spans exactly [0, 1] under ``minmax``; MEB min-max normalises at the computed resolution and
then resizes with an anti-aliased filter without normalising again (``normalise``).
assumption: optical strain from ``np.gradient`` as sqrt(ux^2 + vy^2 + (uy + vx)^2 / 2)
(:func:`mer.preprocess.flow.optical_strain`); MEB uses Sobel derivatives and
(uy^2 + vx^2) / 2 for the shear term.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mer.preprocess.dataset import Augment, ClipDataset, ClipSet

CHANNELS = ("u", "v", "strain", "magnitude")
NORMALISE = ("none", "minmax", "maxabs", "standard")
NO_AUGMENT = Augment(flip=False, rotate=0.0, pad=0, jitter=0.0)


def normalise_clip(x: torch.Tensor, names: Sequence[str], how: str) -> torch.Tensor:
    """``x`` (C, H, W), channel ``i`` named ``names[i]``, normalised per clip (module docstring)."""
    if how == "none":
        return x
    flat = x.reshape(len(names), -1)
    if how == "minmax":
        lo, hi = flat.min(1).values, flat.max(1).values
        span = (hi - lo).clamp_min(1e-12)
        out = (flat - lo[:, None]) / span[:, None]
        return torch.where((hi - lo)[:, None] > 1e-12, out, torch.zeros_like(out)).reshape(x.shape)
    if how == "standard":
        return ((flat - flat.mean(1, keepdim=True)) / flat.std(1, keepdim=True).clamp_min(1e-12)).reshape(x.shape)
    if how == "maxabs":
        vector = [i for i, n in enumerate(names) if n in ("u", "v")]
        scale = flat.abs().max(1).values
        if vector:
            scale[vector] = scale[vector].max()
        return (flat / scale.clamp_min(1e-12)[:, None]).reshape(x.shape)
    raise ValueError(f"unknown normalise {how!r}; known: {NORMALISE}")


class FlowInput(ClipSet):
    """Items (tensor (len(channels), size, size), label): see the module docstring.

    ``flow`` is the flow method (``tvl1`` or ``farneback``); ``align`` as every recipe (dlib
    on the onset frame, or a plain resize)."""

    def __init__(self, clips: pd.DataFrame, size: int = 28, flow_size: int = 112,
                 channels: Sequence[str] = ("u", "v", "strain"), normalise: str = "minmax", flow: str = "tvl1",
                 augment: Augment | None = None, align: bool = True, cache_dir=None, workers: int = 1,
                 progress: bool = True):
        self._keep(locals())
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown or not channels:
            raise ValueError(f"channels must name some of {CHANNELS}, got {list(channels)}")
        if normalise not in NORMALISE:
            raise ValueError(f"unknown normalise {normalise!r}; known: {NORMALISE}")
        if size > flow_size:
            raise ValueError(f"the input side ({size} px) exceeds the side the flow is computed at "
                             f"({flow_size} px): upsampling the flow adds nothing; raise flow_size")
        self.size, self.channels, self.normalise = size, tuple(channels), normalise
        self.augment = augment if augment is not None else NO_AUGMENT
        self.flows = ClipDataset(clips, "flow", size=flow_size, flow=flow, align=align, augment=NO_AUGMENT,
                                 cache_dir=cache_dir, workers=workers, progress=progress)
        self.clips, self.labels, self.stats = self.flows.clips, self.flows.labels, self.flows.stats
        self._maps = [self._make(i) for i in range(len(self.labels))]
        # what a fold reads without augmentation, made once: a draw is then an index
        self._plain = [self.tensor(i) for i in range(len(self.labels))]

    def _make(self, i: int) -> torch.Tensor:
        """Clip ``i``'s u, v, strain and magnitude at the input side (before normalising)."""
        uvs = self.flows.tensor(i)  # (3, flow_size, flow_size): u, v, strain
        maps = torch.cat([uvs, uvs[:2].pow(2).sum(0, keepdim=True).sqrt()])
        if maps.shape[-1] != self.size:
            maps = F.interpolate(maps[None], size=(self.size, self.size), mode="area")[0]
        return maps.contiguous()

    @property
    def in_chans(self) -> int:
        return len(self.channels)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (len(self.channels), self.size, self.size)

    def tensor(self, i: int, augment: Augment | None = None) -> torch.Tensor:
        x = self._maps[i]
        if augment is not None:  # flip and rotate as a flow, before picking: u and v turn, strain and
            x = augment(x[None], "flow")[0]  # magnitude (computed before the resize, as unaugmented) move as maps
        x = x[[CHANNELS.index(c) for c in self.channels]]
        return normalise_clip(x, self.channels, self.normalise).contiguous()

    def __getitem__(self, i: int):
        return self._plain[i], int(self.labels[i])

    def draw(self, i: int, train: bool) -> torch.Tensor:
        """Item ``i`` as a fold sees it: augmented when ``train`` (torch's seeded RNG) and
        the augmentation does anything."""
        if train and self.augment != NO_AUGMENT:
            return self.tensor(i, self.augment)
        return self._plain[i]
