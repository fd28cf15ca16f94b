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
