"""Subject-wise folds: leave-one-subject-out (default), grouped k-fold, and one fixed
held-out test set (``holdout``: the protocol some papers scored, e.g. p3 after the MMEW
survey; never this study's headline).

Every fold asserts that its training and test subjects are disjoint; a fold that broke
that would leak identity into the score.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Fold:
    name: str  # e.g. "sub01" (LOSO) or "k2of4"
    train_idx: np.ndarray  # row positions in the clip table
    test_idx: np.ndarray
    test_subjects: tuple[str, ...]


def check_disjoint(subjects: pd.Series | np.ndarray, fold: Fold) -> None:
    subjects = np.asarray(subjects)
    train = set(subjects[fold.train_idx])
    test = set(subjects[fold.test_idx])
    overlap = train & test
    if overlap:
        raise AssertionError(f"fold {fold.name}: subjects {sorted(overlap)} are in both train and test")
    if not len(fold.test_idx) or not len(fold.train_idx):
        raise AssertionError(f"fold {fold.name}: empty train or test set")


def loso(clips: pd.DataFrame) -> list[Fold]:
    """One fold per subject, in sorted subject order."""
    subjects = clips["subject"].to_numpy()
    folds = []
    for s in sorted(set(subjects)):
        test = np.flatnonzero(subjects == s)
        train = np.flatnonzero(subjects != s)
        fold = Fold(str(s), train, test, (str(s),))
        check_disjoint(subjects, fold)
        folds.append(fold)
    return folds


def grouped_kfold(clips: pd.DataFrame, k: int, seed: int = 0) -> list[Fold]:
    """k folds of whole subjects, subjects shuffled by ``seed`` and dealt round-robin."""
    subjects = clips["subject"].to_numpy()
    unique = sorted(set(subjects))
    if not 2 <= k <= len(unique):
        raise ValueError(f"grouped k-fold needs 2 <= k <= number of subjects ({len(unique)}), got {k}")
    order = np.random.default_rng(seed).permutation(len(unique))
    groups = [sorted(unique[i] for i in order[j::k]) for j in range(k)]
    folds = []
    for j, group in enumerate(groups):
        mask = np.isin(subjects, group)
        fold = Fold(f"k{j + 1}of{k}", np.flatnonzero(~mask), np.flatnonzero(mask), tuple(group))
        check_disjoint(subjects, fold)
        folds.append(fold)
    return folds


HOLDOUT_SHARE = 0.2  # "holdout" without a size: about a fifth of the clips


def holdout(clips: pd.DataFrame, test_clips: int | None = None, seed: int = 0) -> list[Fold]:
    """One fold: a fixed, seeded, subject-disjoint test set of about ``test_clips`` clips
    (default a fifth of them). Subjects are shuffled by ``seed`` and taken whole, in that
    order, while the total gets nearer ``test_clips``; at least one subject stays for
    training. The same clips, size and seed give the same split."""
    subjects = clips["subject"].astype(str).to_numpy()
    unique = sorted(set(subjects))
    if len(unique) < 2:
        raise ValueError(f"a held-out test set needs at least 2 subjects, got {len(unique)}")
    target = int(round(HOLDOUT_SHARE * len(subjects))) if test_clips is None else int(test_clips)
    if not 1 <= target < len(subjects):
        raise ValueError(f"holdout: {target} test clips asked for, the table has {len(subjects)}")
    order = [unique[i] for i in np.random.default_rng([seed, 7]).permutation(len(unique))]
    counts = pd.Series(subjects).value_counts()
    chosen, total = [], 0
    for s in order[:-1]:
        if chosen and abs(total + counts[s] - target) >= abs(total - target):
            break
        chosen.append(s)
        total += counts[s]
    mask = np.isin(subjects, chosen)
    fold = Fold(f"holdout{total}", np.flatnonzero(~mask), np.flatnonzero(mask), tuple(sorted(chosen)))
    check_disjoint(subjects, fold)
    return [fold]


def make_folds(clips: pd.DataFrame, folds: str | int = "loso", seed: int = 0) -> list[Fold]:
    """``"loso"``, an int k (grouped k-fold, subjects shuffled by ``seed``), or
    ``"holdout"`` / ``"holdout:N"`` / ``"holdout:N:S"`` (one fixed test set of about N clips
    drawn with split seed S, 0 by default, :func:`holdout`; the training ``seed`` does not
    move it)."""
    if folds == "loso":
        return loso(clips)
    if isinstance(folds, str) and folds.startswith("holdout"):
        parts = folds.split(":")
        if parts[0] != "holdout" or len(parts) > 3 or not all(p.isdigit() for p in parts[1:]):
            raise ValueError(f"folds {folds!r}: write holdout, holdout:N (N test clips) or holdout:N:S (split seed S)")
        return holdout(clips, int(parts[1]) if len(parts) > 1 else None, int(parts[2]) if len(parts) > 2 else 0)
    if isinstance(folds, str) and folds.isdigit():
        folds = int(folds)
    if isinstance(folds, int):
        return grouped_kfold(clips, folds, seed)
    raise ValueError(f"folds must be 'loso', an integer k or 'holdout[:N]', got {folds!r}")


def guard_pretraining(pretrain_clips: pd.DataFrame, test_subjects) -> None:
    """Refuse pre-training data (e.g. macro-expressions) from a subject of the test fold.

    Macro clips of the test subject would leak their face and style into the model that is
    then scored on them. Subjects are compared as written in both tables.
    """
    leaked = sorted(set(pretrain_clips["subject"].astype(str)) & {str(s) for s in test_subjects})
    if leaked:
        raise AssertionError(f"pre-training data contains test-fold subject(s) {leaked}; "
                             "use without_subjects() to remove them first")


def without_subjects(pretrain_clips: pd.DataFrame, subjects) -> pd.DataFrame:
    """The pre-training table minus the given subjects (the fold's test subjects)."""
    keep = ~pretrain_clips["subject"].astype(str).isin({str(s) for s in subjects})
    return pretrain_clips[keep].reset_index(drop=True)
