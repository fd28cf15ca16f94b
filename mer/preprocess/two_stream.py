"""A frame and an optical-flow image per clip, for two-branch models (p3's spatial and
temporal branches): items are ({"spatial": (1, S, S), "temporal": (3, S, S)}, label),
restricted to the branches asked for.

- spatial: the apex frame, grey, centred to [-0.5, 0.5] (or, with ``spatial="diff"``, the
  apex - onset difference times ``diff_gain``), aligned at the graph's side S;
- temporal: u, v and optical strain from onset to apex, computed on ``flow_size`` px
  aligned frames (micro-motion is a fraction of a pixel at S) and area-resized to S;
  u and v are rescaled to px at S and multiplied by ``flow_gain``.
Training subsets flip horizontally with probability 1/2, both branches together (u
changes sign); that is the only augmentation (the pixel graph is tied to positions).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mer.preprocess.dataset import Augment, ClipDataset, ClipSet

NO_AUGMENT = Augment(flip=False, rotate=0.0, pad=0, jitter=0.0)


class TwoStream(ClipSet):
    def __init__(self, clips: pd.DataFrame, side: int = 32, branches: Sequence[str] = ("spatial", "temporal"),
                 spatial: str = "apex", flow_size: int = 64, flow: str = "tvl1", flow_gain: float = 4.0,
                 diff_gain: float = 10.0, flip: bool = True, align: bool = True, cache_dir=None, workers: int = 1,
                 progress: bool = True):
        self._keep(locals())
        if spatial not in ("apex", "diff"):
            raise ValueError(f"spatial must be 'apex' or 'diff', got {spatial!r}")
        self.branches = tuple(b for b in ("spatial", "temporal") if b in branches)
        if not self.branches or set(branches) - set(self.branches):
            raise ValueError(f"branches must be a non-empty subset of ('spatial', 'temporal'), got {list(branches)}")
        self.side, self.flip = side, flip
        common = dict(align=align, augment=NO_AUGMENT, cache_dir=cache_dir, workers=workers, progress=progress)
        self.frames = ClipDataset(clips, spatial, size=side, grey=True, diff_gain=diff_gain, **common) \
            if "spatial" in self.branches else None
        self.flows = ClipDataset(clips, "flow", size=flow_size, flow=flow, **common) \
            if "temporal" in self.branches else None
        base = self.frames if self.frames is not None else self.flows
        self.clips, self.labels = base.clips, base.labels
        self.flow_scale = side / flow_size * flow_gain
        self._temporal: dict[int, torch.Tensor] = {}

    def branch_view(self, branches: Sequence[str]) -> "TwoStream":
        """The same clips with fewer branches (shares the computed arrays)."""
        missing = set(branches) - set(self.branches)
        if missing:
            raise ValueError(f"this dataset was built without {sorted(missing)}")
        view = object.__new__(TwoStream)
        view.__dict__.update(self.__dict__)
        view.branches = tuple(b for b in self.branches if b in branches)
        view.settings = {**self.settings, "branches": list(view.branches)}
        return view

    def temporal(self, i: int) -> torch.Tensor:
        if i not in self._temporal:
            uvs = self.flows.tensor(i)[None]  # (1, 3, flow_size, flow_size)
            small = F.interpolate(uvs, size=(self.side, self.side), mode="area")[0]
            small[:2] *= self.flow_scale
            self._temporal[i] = small
        return self._temporal[i]

    def item(self, i: int, flip: bool = False) -> dict[str, torch.Tensor]:
        out = {}
        if "spatial" in self.branches:
            out["spatial"] = self.frames.tensor(i)
        if "temporal" in self.branches:
            out["temporal"] = self.temporal(i)
        if flip:
            out = {k: v.flip(-1) for k, v in out.items()}
            if "temporal" in out:
                out["temporal"] = out["temporal"].clone()
                out["temporal"][0] = -out["temporal"][0]
        return out

    def __getitem__(self, i: int):
        return self.item(i), int(self.labels[i])

    def draw(self, i: int, train: bool) -> dict[str, torch.Tensor]:
        """Item ``i``, flipped with probability 1/2 (torch's seeded RNG) when ``train`` and
        ``flip``."""
        return self.item(i, train and self.flip and bool(torch.rand(()) < 0.5))
