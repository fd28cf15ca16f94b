"""GAM-MER's node inputs: patches around the landmark regions of the magnified apex frame
and their change from the onset frame, precomputed for every magnification factor used.

Training items draw one of the training factors per sample (the paper magnifies with
alpha in {8, 10, 12, 15} "to augment the dataset and mitigate the category imbalance");
with ``balance`` a training fold holds more magnified copies of its minority classes'
clips (:meth:`MagnifiedRegions.copies`). Test items use the test factor (5 in the paper).
``magnify=None`` is the raw-image row of Table 4 (no magnification). Other test factors
(Table 4) and other regions (Table 3) are views sharing the magnified frames. With
``landmarks="magnified"`` (p2 Eq. 7) the region crops are placed by dlib's landmarks of
each magnified apex frame (found inside the box of the aligned apex's landmarks);
``"apex"`` uses the aligned apex frame's landmarks for every factor.
The magnifier is passed in (e.g. :func:`mer.magnify.eulerian.eulerian_many` or ST-MEMM's
``as_magnifier``): preprocessing does not import the later magnify stage.
"""
from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import torch
from mer.progress import tqdm

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
                 diff_gain: float = 5.0, jitter: float = 0.1, colour: float = 0.1, balance: bool = True,
                 landmarks: str = "magnified", extra_alphas: Sequence[float] = (), progress: bool = True):
        self._keep(locals())
        self.settings.pop("extra_alphas")  # precomputed for views; the test factor is in the key
        if pairs.recipe != "pair" or not pairs.align:
            raise ValueError("MagnifiedRegions needs an aligned ClipDataset with the 'pair' recipe (landmarks)")
        if landmarks not in ("magnified", "apex"):
            raise ValueError(f"landmarks must be 'magnified' (p2 Eq. 7) or 'apex', not {landmarks!r}")
        self.clips, self.labels = pairs.clips, pairs.labels
        self.regions = dict(regions or REGIONS)
        self.patch = patch or max(8, pairs.size // 4)
        self.train_alphas = [float(a) for a in train_alphas]
        self.test_alpha = float(test_alpha)
        self.diff_gain, self.jitter, self.colour, self.balance = diff_gain, jitter, colour, balance
        self.landmarks = landmarks
        self.magnified = magnify is not None
        self.onsets = np.stack([d[0] for d in pairs.data])
        apexes = np.stack([d[1] for d in pairs.data])
        self.frames: dict[float, np.ndarray] = {}  # magnified apex frames per alpha
        for alpha in tqdm(sorted(set(self.train_alphas) | {self.test_alpha} | {float(a) for a in extra_alphas}),
                          desc="magnifying apex frames", disable=not progress):
            self.frames[alpha] = apexes if magnify is None else magnify(self.onsets, apexes, alpha)
        self.points: dict[float, list[np.ndarray]] = {}  # the landmarks placing each factor's crops
        by_stack: dict[int, list[np.ndarray]] = {}
        for alpha, frames in tqdm(self.frames.items(), desc="landmarks of the magnified apex frames",
                                  disable=not progress or landmarks == "apex"):
            if id(frames) not in by_stack:
                by_stack[id(frames)] = (list(self.clips["landmarks_apex"]) if landmarks == "apex"
                                        else magnified_landmarks(frames, self.clips["landmarks_apex"]))
            self.points[alpha] = by_stack[id(frames)]
        self._crop()

    def _patches(self, frames: np.ndarray, points) -> np.ndarray:
        """Region patches (N, R, P, P, C) of ``frames``, clip i's crops placed by ``points[i]``."""
        return np.stack([region_patches(f, p, self.regions, self.patch) for f, p in zip(frames, points)])

    def _crop(self) -> None:
        cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}  # raw apex stacks share their crops
        self.apex_patches, self.onset_patches_at = {}, {}
        for alpha, frames in self.frames.items():
            ident = (id(frames), id(self.points[alpha]))
            if ident not in cache:  # the onset is cropped where its apex is, so the difference is motion
                cache[ident] = (self._patches(frames, self.points[alpha]), self._patches(self.onsets, self.points[alpha]))
            self.apex_patches[alpha], self.onset_patches_at[alpha] = cache[ident]
        self.onset_patches = self.onset_patches_at[self.test_alpha]

    def with_test_alpha(self, alpha: float) -> "MagnifiedRegions":
        """The same items tested at another magnification factor (one precomputed via
        ``extra_alphas``); training alphas unchanged."""
        if float(alpha) not in self.frames:
            raise ValueError(f"alpha {alpha} was not precomputed (have {sorted(self.frames)}); pass it in extra_alphas")
        view = copy.copy(self)
        view.test_alpha = float(alpha)
        view.settings = {**self.settings, "test_alpha": float(alpha)}
        view.onset_patches = view.onset_patches_at[view.test_alpha]
        return view

    def with_regions(self, regions: dict[str, list[int]]) -> "MagnifiedRegions":
        """The same magnified frames cropped around other landmark regions."""
        view = copy.copy(self)
        view.regions = dict(regions)
        view.settings = {**self.settings, "regions": describe(view.regions)}
        view._crop()
        return view

    def item(self, i: int, alpha: float, train: bool = False) -> torch.Tensor:
        apex = torch.from_numpy(self.apex_patches[alpha][i]).float().permute(0, 3, 1, 2) / 255.0
        onset = torch.from_numpy(self.onset_patches_at[alpha][i]).float().permute(0, 3, 1, 2) / 255.0
        if train and self.colour > 0:  # colour: one gain per channel, the same for both frames
            gain = 1 + torch.empty(1, apex.shape[1], 1, 1).uniform_(-self.colour, self.colour)
            apex, onset = apex * gain, onset * gain
        apex, onset = apex - 0.5, onset - 0.5
        if train and self.jitter > 0:  # one brightness/contrast draw for both frames
            contrast = 1 + float(torch.empty(()).uniform_(-self.jitter, self.jitter))
            bright = float(torch.empty(()).uniform_(-self.jitter, self.jitter)) * 0.5
            apex, onset = apex * contrast + bright, onset * contrast + bright
        return torch.cat([apex, (apex - onset) * self.diff_gain], dim=1)

    def fixed_patches(self, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """(apex, onset) region patches at ``alpha`` cropped where the aligned apex's
        landmarks are, whatever ``landmarks`` is: crops that line up across magnifiers."""
        points = list(self.clips["landmarks_apex"])
        return self._patches(self.frames[float(alpha)], points), self._patches(self.onsets, points)

    def copies(self, idx: np.ndarray) -> np.ndarray:
        """Magnified copies per clip of a training fold ``idx``, by class: with ``balance``,
        a class with n clips gets round(n_max / n) copies, at most one per training factor
        (the largest class: 1), each drawing its own factor; without it, 1 each."""
        labels = self.labels[np.asarray(idx)]
        if not self.balance or len(labels) == 0:
            return np.ones(len(labels), dtype=int)
        counts = np.bincount(labels)
        per_class = np.clip(np.round(counts.max() / np.maximum(counts, 1)), 1, len(self.train_alphas)).astype(int)
        return per_class[labels]

    def subset(self, idx: np.ndarray, train: bool):
        """A fold's view; a training fold repeats each clip by :meth:`copies` (minority
        classes get more magnified copies, the paper's use of alpha against imbalance)."""
        idx = np.asarray(idx)
        return super().subset(np.repeat(idx, self.copies(idx)) if train else idx, train)

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


def magnified_landmarks(frames: np.ndarray, reference: Sequence[np.ndarray], margin: float = 0.15) -> list[np.ndarray]:
    """dlib's 68 landmarks of each frame (p2 Eq. 7 on the magnified apex), found inside the
    box of that clip's ``reference`` landmarks grown by ``margin`` of its size."""
    from mer import landmarks as lm
    out = []
    for frame, ref in zip(frames, reference):
        lo, hi = ref.min(axis=0), ref.max(axis=0)
        pad = (hi - lo) * margin
        (x0, y0), (x1, y1) = lo - pad, hi + pad
        out.append(lm.landmarks(frame, (int(round(x0)), int(round(y0)), int(round(x1)), int(round(y1)))).astype(np.float32))
    return out


def most_changed(pairs: ClipDataset, regions: dict[str, list[int]], patch: int) -> int:
    """The clip whose landmark-region patches change most (mean absolute difference) from
    its onset to its apex frame: the one to show magnified."""
    change = [np.abs(region_patches(d[1], pts, regions, patch).astype(np.float32)
                     - region_patches(d[0], pts, regions, patch)).mean()
              for d, pts in zip(pairs.data, pairs.clips["landmarks_apex"])]
    return int(np.argmax(change))
