"""Torch datasets built from a clip table plus a recipe.

Recipes (all from aligned frames unless ``align=False``, which only resizes):
- ``diff``: apex - onset, (C, S, S), scaled by ``diff_gain`` (micro-motion is a few grey levels)
- ``apex`` / ``onset``: one frame, (C, S, S), centred to [-0.5, 0.5]
- ``pair``: onset and apex, (2, C, S, S)
- ``sequence``: T frames, (T, C, S, S): ``sampling`` "uniform" (T frame numbers spread
  over onset..offset), "interpolate" (every frame, linearly interpolated to T, TIM-style)
  or "rate" (resampled to ``target_fps``, then interpolated to T when T is given). With
  ``include_apex`` the frames are those nearest each 1 / ``target_fps`` step (the apex
  among them): "uniform" gives exactly T; "rate" gives a clip's own number L <= T
  (a longer clip is thinned evenly to T and counted in ``thinned``), padded to T by
  repeating the last frame, and items carry ``length`` = L
- ``flow``: u, v and optical strain from onset to apex, (3, S, S)
- ``regions``: patches around landmark groups of the apex frame, (R, C, P, P)
With ``au_vocabulary`` (p5's AU vector) each item also carries the clip's binary AU vector.
C is 3 (greyscale sources such as SAMM are replicated to RGB) or 1 with ``grey=True``.
Arrays are computed once through the cache and shared by every fold's subsets; training
subsets apply :class:`Augment`, drawn once per sample and applied identically to every
frame of the clip.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from mer.data.aus import au_vectors
from mer.landmarks import REGIONS  # the default regions of the ``regions`` recipe
from mer.paths import describe
from mer.preprocess import faces, prepare
from mer.preprocess.cache import CacheStats
from mer.preprocess.frames import (interpolate_sequence, rate_numbers, rate_positions, sample_at, uniform_numbers,
                                   with_apex)

RECIPES = ("diff", "apex", "onset", "pair", "sequence", "flow", "regions")


def region_patches(frame: np.ndarray, points: np.ndarray, regions: dict[str, list[int]], patch: int) -> np.ndarray:
    """(R, patch, patch, C) crops of ``frame`` centred on the mean of each region's
    landmarks (68 x 2, frame coordinates); edges are padded by replication."""
    half = patch // 2
    size = frame.shape[0]
    padded = np.pad(frame, ((half, half), (half, half), (0, 0)), mode="edge")
    out = []
    for idx in regions.values():
        cx, cy = np.round(np.asarray(points)[idx].mean(axis=0)).astype(int)
        cx, cy = int(np.clip(cx, 0, size - 1)), int(np.clip(cy, 0, size - 1))
        out.append(padded[cy:cy + 2 * half, cx:cx + 2 * half])
    return np.stack(out)


@dataclass
class Augment:
    """Train-only augmentation: horizontal flip, rotation up to ``rotate`` degrees, crop
    after padding by ``pad`` px, brightness/contrast jitter; one draw per sample."""
    flip: bool = True
    rotate: float = 3.0
    pad: int = 4
    jitter: float = 0.1

    def __call__(self, x: torch.Tensor, kind: str) -> torch.Tensor:
        """``x``: (F, C, H, W); ``kind``: image | diff | flow | patches."""
        if kind != "patches" and self.flip and torch.rand(()) < 0.5:
            x = x.flip(-1)
            if kind == "flow":
                x = x.clone()
                x[:, 0] = -x[:, 0]  # u changes sign under a horizontal flip
        if kind != "patches" and self.rotate > 0:
            angle = math.radians(float(torch.empty(()).uniform_(-self.rotate, self.rotate)))
            x = _rotate(x, angle, rotate_vectors=kind == "flow")
        if self.pad > 0:
            h, w = x.shape[-2:]
            dy, dx = torch.randint(0, 2 * self.pad + 1, (2,)).tolist()
            x = F.pad(x, (self.pad,) * 4, mode="replicate")[..., dy:dy + h, dx:dx + w]
        if self.jitter > 0 and kind in ("image", "diff", "patches"):
            contrast = 1 + float(torch.empty(()).uniform_(-self.jitter, self.jitter))
            bright = float(torch.empty(()).uniform_(-self.jitter, self.jitter)) * 0.5 if kind != "diff" else 0.0
            x = x * contrast + bright
        return x


def _rotate(x: torch.Tensor, angle: float, rotate_vectors: bool) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    theta = torch.tensor([[c, -s, 0.0], [s, c, 0.0]], dtype=x.dtype).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    if rotate_vectors:  # flow vectors turn with the image
        u, v = out[:, 0].clone(), out[:, 1].clone()
        out[:, 0], out[:, 1] = c * u + s * v, -s * u + c * v
    return out


class ClipSet(Dataset):
    """What every clip dataset of the study shares: ``clips`` (the clip table; its row order
    is the fold indices), ``labels``, ``draw(i, train)`` (item ``i`` as a fold sees it,
    augmented when ``train``), ``subset(idx, train)`` (a fold's view) and ``key()``.

    ``key()`` describes everything that shapes the items: the class and every setting it
    was built with (a dataset it wraps by that dataset's key), so a run's cache key is
    derived from the dataset, never written by hand. A subclass records its settings with
    ``self._keep(locals())`` first thing in ``__init__``; the settings named in
    :attr:`UNKEYED` change how fast items are made or where they are cached, not what
    they are (the clips enter the run key on their own, with their source frames)."""

    UNKEYED = ("self", "clips", "cache_dir", "use_cache", "workers", "progress", "__class__")

    def _keep(self, args: dict) -> None:
        self.settings = {k: describe(v) for k, v in args.items() if k not in self.UNKEYED}

    def key(self) -> dict:
        return {"dataset": type(self).__name__, **self.settings}

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, idx: np.ndarray, train: bool) -> "FoldView":
        return FoldView(self, np.asarray(idx), train)


class ClipDataset(ClipSet):
    """All clips of a table, preprocessed once; items are (tensor, label) without augmentation.

    ``subset(idx, train)`` gives a fold's view (augmented when ``train``). ``self.clips`` is
    the table with the alignment columns (``face_found``, ``align_method``, landmarks) added.
    """

    def __init__(self, clips: pd.DataFrame, recipe: str = "diff", size: int = 64, align: bool = True,
                 T: int | None = 8, sampling: str = "uniform", target_fps: float = 30.0, flow: str = "tvl1",
                 regions: dict[str, list[int]] | None = None, patch: int | None = None, grey: bool = False,
                 diff_gain: float = 10.0, augment: Augment | None = None, iod: float = faces.IOD_FRACTION,
                 eye_y: float = faces.EYE_Y, include_apex: bool = False, au_vocabulary: Sequence[int] | None = None,
                 cache_dir=None, use_cache: bool = True, workers: int = 1, progress: bool = True):
        self._keep(locals())
        if recipe not in RECIPES:
            raise ValueError(f"unknown recipe {recipe!r}; known: {RECIPES}")
        if recipe == "sequence" and sampling not in ("uniform", "interpolate", "rate"):
            raise ValueError(f"unknown sampling {sampling!r}")
        if recipe == "sequence" and sampling != "rate" and not T:
            raise ValueError("the sequence recipe needs T (frames per clip)")
        if include_apex and (recipe != "sequence" or sampling not in ("uniform", "rate") or not T):
            raise ValueError("include_apex works with the sequence recipe, uniform or rate sampling, and T")
        self.include_apex, self.sampling = include_apex, sampling
        self.lengths, self.thinned = None, 0
        self.recipe, self.size, self.align, self.grey, self.diff_gain = recipe, size, align, grey, diff_gain
        self.augment = augment if augment is not None else Augment()
        self.regions = regions or REGIONS
        self.patch = patch or max(8, size // 4)
        self.stats = CacheStats()
        common = dict(cache_dir=cache_dir, use_cache=use_cache, workers=workers, progress=progress)
        clips = clips.reset_index(drop=True)
        if align:
            clips, st = prepare.align_table(clips, size, iod, eye_y, **common)
            self.stats = self.stats + st
        else:
            clips = clips.assign(face_found=None, align_method="resize")
        self.clips = clips
        self.labels = clips["label"].to_numpy(dtype=np.int64)
        self.au_vocabulary = list(au_vocabulary) if au_vocabulary is not None else None
        self.aus, self.aus_outside = None, None
        if self.au_vocabulary is not None:
            vectors, self.aus_outside = au_vectors(clips["aus"], self.au_vocabulary)
            self.aus = torch.from_numpy(vectors)
        self.kind = {"diff": "diff", "flow": "flow", "regions": "patches"}.get(recipe, "image")
        self.data = self._build(recipe, T, sampling, target_fps, flow, common)

    # -------------------------------------------------------------- building
    def _frames(self, numbers, common, desc="aligning frames") -> list[np.ndarray]:
        frames, st = prepare.aligned_frames(self.clips, numbers, self.size, self.align, desc=desc, **common)
        self.stats = self.stats + st
        return frames

    def _build(self, recipe, T, sampling, target_fps, flow, common) -> list[np.ndarray]:
        rows = list(self.clips.itertuples(index=False))
        if recipe == "flow":
            uvs, st = prepare.clip_flow(self.clips, [(r.onset, r.apex) for r in rows], self.size, flow, self.align,
                                        **common)
            self.stats = self.stats + st
            return [u.astype(np.float32) for u in uvs]
        if recipe in ("diff", "pair", "apex", "onset", "regions"):
            pairs = self._frames([[r.onset, r.apex] for r in rows], common)
            if recipe == "diff":
                return [(p[1].astype(np.int16) - p[0].astype(np.int16)) for p in pairs]
            if recipe == "pair":
                return pairs
            if recipe == "regions":
                if not self.align:
                    raise ValueError("the regions recipe needs landmarks: use align=True")
                return [region_patches(p[1], r.landmarks_apex, self.regions, self.patch) for p, r in zip(pairs, rows)]
            return [p[0 if recipe == "onset" else 1][None] for p in pairs]
        # sequence
        if sampling == "uniform":
            numbers = [uniform_numbers(r.onset, r.offset, T) for r in rows]
            if self.include_apex:
                numbers = [with_apex(n, r.apex) for n, r in zip(numbers, rows)]
                self.apex_index = np.array([n.index(r.apex) for n, r in zip(numbers, rows)], dtype=np.int64)
            return self._frames(numbers, common)
        if sampling == "rate" and self.include_apex:
            numbers = []
            for r in rows:
                picked = with_apex(rate_numbers(r.onset, r.offset, float(r.fps), target_fps), r.apex)
                if len(picked) > T:  # longer than T frames at the target rate: thinned evenly
                    self.thinned += 1
                    picked = with_apex([picked[i] for i in uniform_numbers(0, len(picked) - 1, T)], r.apex)
                numbers.append(picked)
            self.apex_index = np.array([n.index(r.apex) for n, r in zip(numbers, rows)], dtype=np.int64)
            self.lengths = np.array([len(n) for n in numbers], dtype=np.int64)
            frames = self._frames(numbers, common)
            return [np.concatenate([f, np.repeat(f[-1:], T - len(f), axis=0)]) for f in frames]
        full = self._frames([list(range(r.onset, r.offset + 1)) for r in rows], common, "aligning sequences")
        out = []
        for f, r in zip(full, rows):
            if sampling == "rate":
                f = sample_at(f, rate_positions(len(f), float(r.fps), target_fps))
            out.append(np.clip(interpolate_sequence(f, T) if T else f, 0, 255).round().astype(np.uint8))
        return out

    # -------------------------------------------------------------- access
    @property
    def in_chans(self) -> int:
        return 1 if self.grey else 3

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.tensor(0).shape)

    def tensor(self, i: int, augment: Augment | None = None) -> torch.Tensor:
        """Sample ``i`` as a float tensor in the recipe's shape, optionally augmented."""
        a = self.data[i]
        if self.kind == "flow":
            x = torch.from_numpy(a).float()[None]  # (1, 3, S, S)
        else:
            # frames (F, H, W, 3) uint8 or int16 diff -> (F, C, H, W)
            arr = a if a.ndim == 4 else a[None]
            x = torch.from_numpy(np.ascontiguousarray(arr)).float().permute(0, 3, 1, 2)
            if self.grey:
                x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
            x = x / 255.0
            x = x * self.diff_gain if self.kind == "diff" else x - 0.5
        if augment is not None:
            x = augment(x, self.kind)
        if self.recipe in ("diff", "apex", "onset", "flow"):
            x = x[0]
        return x.contiguous()

    def item(self, i: int, augment: Augment | None = None):
        """Model input of sample ``i``: a tensor, or a dict {"frames", "apex_index", "aus"}
        (the keys that apply) when the model needs more than the frames."""
        x = self.tensor(i, augment)
        if not self.include_apex and self.aus is None:
            return x
        out = {"frames": x}
        if self.include_apex:
            out["apex_index"] = torch.tensor(int(self.apex_index[i]))
        if self.lengths is not None:
            out["length"] = torch.tensor(int(self.lengths[i]))
        if self.aus is not None:
            out["aus"] = self.aus[i]
        return out

    def au_only(self) -> "AUVectors":
        """The same clips with their AU vectors only (no frames): the "AU vector alone" reference."""
        if self.aus is None:
            raise ValueError("this dataset has no AU vectors (au_vocabulary=None)")
        return AUVectors(self.clips, self.labels, self.aus, self.au_vocabulary)

    def aus_outside_summary(self) -> pd.DataFrame:
        """AUs annotated on clips but not in the AU vector's vocabulary, with clip counts."""
        if self.aus_outside is None:
            raise ValueError("this dataset has no AU vectors (au_vocabulary=None)")
        counts: dict[int, int] = {}
        for missing in self.aus_outside:
            for au in missing:
                counts[au] = counts.get(au, 0) + 1
        return pd.DataFrame(sorted(counts.items()), columns=["AU outside the vector", "clips"])

    def __getitem__(self, i: int):
        return self.item(i), int(self.labels[i])

    def draw(self, i: int, train: bool):
        """Sample ``i`` as a fold's view gives it: augmented when ``train``."""
        return self.item(i, self.augment if train else None)


class FoldView(Dataset):
    """Rows ``idx`` of a clip dataset (anything with ``labels`` and ``draw(i, train)``, which
    gives item i, with its training-time draws from torch's seeded RNG when ``train``)."""

    def __init__(self, base, idx: np.ndarray, train: bool):
        self.base, self.idx, self.train = base, idx, train

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        j = int(self.idx[i])
        return self.base.draw(j, self.train), int(self.base.labels[j])


class AUVectors(ClipSet):
    """Clips as their binary AU vectors only; items ({"aus": vector}, label), nothing to
    augment. ``au_vocabulary``: the AUs of the vector, in order."""

    def __init__(self, clips: pd.DataFrame, labels: np.ndarray, aus: torch.Tensor, au_vocabulary: Sequence[int]):
        self.settings = {"au_vocabulary": [int(a) for a in au_vocabulary]}
        self.clips, self.labels, self.aus = clips, labels, aus

    def draw(self, i: int, train: bool):
        return {"aus": self.aus[i]}

    def __getitem__(self, i: int):
        return self.draw(i, False), int(self.labels[i])
