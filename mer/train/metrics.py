"""MEGC metrics over pooled predictions: accuracy, UF1, UAR, per-class F1/recall, confusion.

UF1 = mean over classes of 2TP/(2TP+FP+FN); UAR = mean over classes of TP/N_c. Every
class of the protocol counts, including one with no support (its F1 and recall are 0),
so a model is never rewarded for a class missing from the test data.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def confusion(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return cm


def scores(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, UF1, UAR, per-class F1 and recall, confusion matrix (as lists)."""
    k = len(labels)
    y_true, y_pred = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in length: {y_true.shape} vs {y_pred.shape}")
    if len(y_true) and (min(y_true.min(), y_pred.min()) < 0 or max(y_true.max(), y_pred.max()) >= k):
        raise ValueError(f"labels must lie in 0..{k - 1}")
    cm = confusion(y_true, y_pred, k)
    tp = np.diag(cm).astype(float)
    fp = cm.sum(axis=0) - tp
    fn = cm.sum(axis=1) - tp
    denom_f1 = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom_f1, out=np.zeros(k), where=denom_f1 > 0)
    support = cm.sum(axis=1).astype(float)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    acc = float(tp.sum() / len(y_true)) if len(y_true) else 0.0
    return {
        "n": int(len(y_true)), "acc": acc, "uf1": float(f1.mean()), "uar": float(recall.mean()),
        "per_class": {name: {"f1": float(f1[i]), "recall": float(recall[i]), "support": int(support[i])}
                      for i, name in enumerate(labels)},
        "confusion": cm.tolist(), "labels": list(labels),
    }


HEADLINE = ("n", "acc", "uf1", "uar")


def headline(s: dict) -> dict:
    """The scalar scores of a :func:`scores` result: n, acc, UF1, UAR."""
    return {k: s[k] for k in HEADLINE}


def scores_by_group(y_true: Sequence[int], y_pred: Sequence[int], groups: Sequence[str],
                    labels: Sequence[str]) -> dict[str, dict]:
    """Pooled scores per group (e.g. per source dataset of the MEGC composite)."""
    y_true, y_pred, groups = np.asarray(y_true), np.asarray(y_pred), np.asarray(groups)
    return {str(g): scores(y_true[groups == g], y_pred[groups == g], labels) for g in sorted(set(groups))}


def paired_bootstrap(y_true: Sequence[int], pred_a: Sequence[int], pred_b: Sequence[int], subjects: Sequence[str],
                     labels: Sequence[str], n: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """How sure is "A's UF1 beats B's" on these clips? A subject-level (cluster) bootstrap:
    draw subjects with replacement, pool their clips, take UF1(A) - UF1(B) on the draw.

    Returns the observed difference, the central ``level`` interval of the resampled
    differences and the share of draws in which A is ahead. It measures the uncertainty
    from which subjects happen to be in the data, not from training seeds.
    """
    y_true, pred_a, pred_b = (np.asarray(v, dtype=int) for v in (y_true, pred_a, pred_b))
    subjects = np.asarray(subjects).astype(str)
    if not (len(y_true) == len(pred_a) == len(pred_b) == len(subjects)):
        raise ValueError("y_true, pred_a, pred_b and subjects must have one entry per clip")
    names, inverse = np.unique(subjects, return_inverse=True)
    members = [np.flatnonzero(inverse == s) for s in range(len(names))]
    rng = np.random.default_rng(seed)

    def uf1_diff(idx: np.ndarray) -> float:
        return scores(y_true[idx], pred_a[idx], labels)["uf1"] - scores(y_true[idx], pred_b[idx], labels)["uf1"]

    diffs = np.array([uf1_diff(np.concatenate([members[s] for s in rng.integers(0, len(names), len(names))]))
                      for _ in range(n)])
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    return {"delta": uf1_diff(np.arange(len(y_true))), "low": float(lo), "high": float(hi), "level": level,
            "a_ahead": float((diffs > 0).mean()), "n_boot": n, "n_subjects": len(names)}


def subject_mean(y_true: Sequence[int], y_pred: Sequence[int], subjects: Sequence[str], labels: Sequence[str]) -> dict:
    """Scores averaged over subjects instead of pooled (the aggregation some papers use,
    e.g. p4: "averaging the performances of all subjects"): per subject, accuracy and UF1 /
    UAR over the classes present in that subject's labels or predictions (a class absent
    from both says nothing about the subject), then the mean over subjects."""
    y_true, y_pred, subjects = np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int), np.asarray(subjects)
    rows = []
    for s in sorted(set(subjects.tolist())):
        t, p = y_true[subjects == s], y_pred[subjects == s]
        sc = scores(t, p, labels)
        present = sorted(set(t.tolist()) | set(p.tolist()))
        f1 = [sc["per_class"][labels[c]]["f1"] for c in present]
        recall = [sc["per_class"][labels[c]]["recall"] for c in sorted(set(t.tolist()))]
        rows.append((sc["acc"], float(np.mean(f1)), float(np.mean(recall))))
    acc, uf1, uar = (float(np.mean(col)) for col in zip(*rows)) if rows else (0.0, 0.0, 0.0)
    return {"subjects": len(rows), "acc": acc, "uf1": uf1, "uar": uar}
