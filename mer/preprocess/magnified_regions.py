"""GAM-MER's node inputs: patches around the landmark regions of the magnified apex frame
and their change from the onset frame, precomputed for every magnification factor used.

Training items draw one of the training factors per sample (the paper magnifies with
alpha in {8, 10, 12, 15} as augmentation); test items use the test factor (5 in the
paper). ``magnify=None`` is the raw-image row of Table 4 (no magnification). Other test
factors (Table 4) and other regions (Table 3) are views sharing the magnified frames.
The magnifier is passed in (e.g. :func:`mer.magnify.eulerian.eulerian_many` or ST-MEMM's
``as_magnifier``): preprocessing does not import the later magnify stage.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from mer.landmarks import REGIONS
from mer.paths import describe
from mer.preprocess.dataset import ClipDataset, ClipSet, region_patches

Magnify = Callable[[np.ndarray, np.ndarray, float], np.ndarray]  # stacks (N, H, W, 3) uint8 -> (N, H, W, 3)


class MagnifiedRegions(ClipSet):
    """Items (R, 6, P, P): the magnified apex patch (centred to [-0.5, 0.5]) and its
    difference from the onset patch times ``diff_gain``; crops centred on the apex
    frame's landmarks in both frames. Same ``clips`` / ``labels`` / ``subset`` interface
    as :class:`~mer.preprocess.dataset.ClipDataset`."""

    def __init__(self, pairs: ClipDataset, magnify: Magnify | None, train_alphas: Sequence[float] = (8, 10, 12, 15),
                 test_alpha: float = 5.0, regions: dict[str, list[int]] | None = None, patch: int | None = None,
                 diff_gain: float = 5.0, jitter: float = 0.1, extra_alphas: Sequence[float] = (),
                 progress: bool = True):
        self._keep(locals())
        self.settings.pop("extra_alphas")  # precomputed for views; the test factor is in the key
        if pairs.recipe != "pair" or not pairs.align:
            raise ValueError("MagnifiedRegions needs an aligned ClipDataset with the 'pair' recipe (landmarks)")
        self.clips, self.labels = pairs.clips, pairs.labels
        self.regions = dict(regions or REGIONS)
        self.patch = patch or max(8, pairs.size // 4)
        self.train_alphas = [float(a) for a in train_alphas]
        self.test_alpha = float(test_alpha)
        self.diff_gain, self.jitter = diff_gain, jitter
        self.magnified = magnify is not None
        self.onsets = np.stack([d[0] for d in pairs.data])
        apexes = np.stack([d[1] for d in pairs.data])
        self.frames: dict[float, np.ndarray] = {}  # magnified apex frames per alpha
        for alpha in tqdm(sorted(set(self.train_alphas) | {self.test_alpha} | {float(a) for a in extra_alphas}),
                          desc="magnifying apex frames", disable=not progress):
            self.frames[alpha] = apexes if magnify is None else magnify(self.onsets, apexes, alpha)
        self._crop()

    def _crop(self) -> None:
        points = list(self.clips["landmarks_apex"])
        crop = lambda frames: np.stack([region_patches(f, p, self.regions, self.patch) for f, p in zip(frames, points)])
        self.onset_patches = crop(self.onsets)
        by_stack: dict[int, np.ndarray] = {}  # without a magnifier every alpha holds the same raw apex stack
        self.apex_patches = {}
        for alpha, frames in self.frames.items():
            if id(frames) not in by_stack:
                by_stack[id(frames)] = crop(frames)
            self.apex_patches[alpha] = by_stack[id(frames)]

    def with_test_alpha(self, alpha: float) -> "MagnifiedRegions":
        """The same items tested at another magnification factor (one precomputed via
        ``extra_alphas``); training alphas unchanged."""
        if float(alpha) not in self.frames:
            raise ValueError(f"alpha {alpha} was not precomputed (have {sorted(self.frames)}); pass it in extra_alphas")
        view = copy.copy(self)
        view.test_alpha = float(alpha)
        view.settings = {**self.settings, "test_alpha": float(alpha)}
        return view

    def with_regions(self, regions: dict[str, list[int]]) -> "MagnifiedRegions":
        """The same magnified frames cropped around other landmark regions."""
        view = copy.copy(self)
        view.regions = dict(regions)
        view.settings = {**self.settings, "regions": describe(view.regions)}
        view._crop()
        return view

    def item(self, i: int, alpha: float, train: bool = False) -> torch.Tensor:
        apex = torch.from_numpy(self.apex_patches[alpha][i]).float().permute(0, 3, 1, 2) / 255.0 - 0.5
        onset = torch.from_numpy(self.onset_patches[i]).float().permute(0, 3, 1, 2) / 255.0 - 0.5
        if train and self.jitter > 0:  # one brightness/contrast draw for both frames
            contrast = 1 + float(torch.empty(()).uniform_(-self.jitter, self.jitter))
            bright = float(torch.empty(()).uniform_(-self.jitter, self.jitter)) * 0.5
            apex, onset = apex * contrast + bright, onset * contrast + bright
        return torch.cat([apex, (apex - onset) * self.diff_gain], dim=1)

    def __getitem__(self, i: int):
        return self.item(i, self.test_alpha), int(self.labels[i])

    def draw(self, i: int, train: bool) -> torch.Tensor:
        """Item ``i`` at a training alpha drawn per item (torch's seeded RNG) when ``train``,
        else at the test alpha."""
        if train:
            alpha = self.train_alphas[int(torch.randint(len(self.train_alphas), ()))]
        else:
            alpha = self.test_alpha
        return self.item(i, alpha, train)


def most_changed(pairs: ClipDataset, regions: dict[str, list[int]], patch: int) -> int:
    """The clip whose landmark-region patches change most (mean absolute difference) from
    its onset to its apex frame: the one to show magnified."""
    change = [np.abs(region_patches(d[1], pts, regions, patch).astype(np.float32)
                     - region_patches(d[0], pts, regions, patch)).mean()
              for d, pts in zip(pairs.data, pairs.clips["landmarks_apex"])]
    return int(np.argmax(change))
