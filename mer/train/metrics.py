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


def test_selection(preds, epoch_preds: dict, labels: Sequence[str]) -> dict:
    """What choosing epochs on the test subjects would report, beside the honest score.

    ``preds``: a run's pooled predictions (columns fold, y_true, y_pred; each fold's clips
    in the order of ``epoch_preds[fold]``), ``epoch_preds``: fold -> (clips x epochs) array of
    the classes predicted after each epoch (``TrainConfig.test_epochs``). Two leaky readings,
    as public MER code does them:

    - ``fold_best``: in every fold, the epoch with the highest accuracy on that fold's test
      subjects (the first such epoch), then those predictions pooled (MMNet's, HTNet's
      "best accuracy per subject");
    - ``epoch_best``: the one epoch whose pooled UF1 over all folds is highest (a run
      reported at its best epoch), over the epochs every fold has.

    Returns the honest pooled UF1 / UAR (fixed epochs: ``preds``' own ``y_pred``), both
    readings' UF1 / UAR, the best epoch, the inflation (fold_best UF1 minus honest UF1) and
    the pooled UF1 after each epoch (``uf1_by_epoch``)."""
    labels = list(labels)
    order = list(dict.fromkeys(preds["fold"].astype(str)))
    by_fold = {str(k): np.asarray(v, dtype=int) for k, v in epoch_preds.items()}
    missing = [f for f in order if f not in by_fold]
    if missing:
        raise ValueError(f"no per-epoch predictions for fold(s) {missing}")
    truth = {f: preds.loc[preds["fold"].astype(str) == f, "y_true"].to_numpy(dtype=int) for f in order}
    for f in order:
        if by_fold[f].shape[0] != len(truth[f]):
            raise ValueError(f"fold {f}: {by_fold[f].shape[0]} clips with per-epoch predictions, {len(truth[f])} "
                             "predicted")
    y_true = np.concatenate([truth[f] for f in order])
    picked = []
    for f in order:
        acc = (by_fold[f] == truth[f][:, None]).mean(axis=0)
        picked.append(by_fold[f][:, int(np.argmax(acc))])
    fold_best = scores(y_true, np.concatenate(picked), labels)
    epochs = min(by_fold[f].shape[1] for f in order)
    uf1_by_epoch = [scores(y_true, np.concatenate([by_fold[f][:, e] for f in order]), labels)["uf1"]
                    for e in range(epochs)]
    best = int(np.argmax(uf1_by_epoch))
    epoch_best = scores(y_true, np.concatenate([by_fold[f][:, best] for f in order]), labels)
    honest = scores(preds["y_true"].to_numpy(dtype=int), preds["y_pred"].to_numpy(dtype=int), labels)
    return {"honest_uf1": honest["uf1"], "honest_uar": honest["uar"],
            "fold_best_uf1": fold_best["uf1"], "fold_best_uar": fold_best["uar"],
            "epoch_best_uf1": epoch_best["uf1"], "epoch_best_uar": epoch_best["uar"], "best_epoch": best + 1,
            "epochs": epochs, "inflation_uf1": fold_best["uf1"] - honest["uf1"], "uf1_by_epoch": uf1_by_epoch}


def _subject_confusions(y_true, y_pred, subjects, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Subject names and one confusion matrix per subject, (S, k, k)."""
    names, inverse = np.unique(np.asarray(subjects).astype(str), return_inverse=True)
    cms = np.zeros((len(names), k, k), dtype=np.int64)
    np.add.at(cms, (inverse, np.asarray(y_true, dtype=int), np.asarray(y_pred, dtype=int)), 1)
    return names, cms


def _uf1_uar(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """UF1 and UAR of a stack of confusion matrices (..., k, k), as :func:`scores` counts them."""
    tp = np.diagonal(cm, axis1=-2, axis2=-1).astype(float)
    fp = cm.sum(axis=-2) - tp
    support = cm.sum(axis=-1)
    fn = support - tp
    f1 = np.divide(2 * tp, 2 * tp + fp + fn, out=np.zeros_like(tp), where=(2 * tp + fp + fn) > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    return f1.mean(axis=-1), recall.mean(axis=-1)


def subject_draws(n_subjects: int, n: int, seed: int) -> np.ndarray:
    """(n, S) how often each subject is drawn in each of ``n`` subject-bootstrap resamples."""
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_subjects, (n, n_subjects))
    return np.stack([np.bincount(d, minlength=n_subjects) for d in draws])


def bootstrap_scores(y_true: Sequence[int], y_pred: Sequence[int], subjects: Sequence[str], labels: Sequence[str],
                     n: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Subject-bootstrap intervals of one run's pooled UF1 and UAR: subjects drawn with
    replacement, their clips pooled, the scores taken on each draw. Returns the observed
    scores and the central ``level`` interval of each (``uf1_low``, ``uf1_high``, ...)."""
    k = len(labels)
    _, cms = _subject_confusions(y_true, y_pred, subjects, k)
    counts = subject_draws(len(cms), n, seed)
    uf1, uar = _uf1_uar(np.einsum("ns,sij->nij", counts, cms))
    whole_uf1, whole_uar = _uf1_uar(cms.sum(axis=0))
    q = [(1 - level) / 2, (1 + level) / 2]
    (f_lo, f_hi), (r_lo, r_hi) = np.quantile(uf1, q), np.quantile(uar, q)
    return {"uf1": float(whole_uf1), "uf1_low": float(f_lo), "uf1_high": float(f_hi), "uar": float(whole_uar),
            "uar_low": float(r_lo), "uar_high": float(r_hi), "level": level, "n_boot": n, "n_subjects": len(cms)}


def paired_differences(y_true: Sequence[int], preds: dict, subjects: Sequence[str], labels: Sequence[str],
                       n: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Every pair of several runs' predictions on the same clips (``preds``: name -> y_pred),
    on one shared set of subject-bootstrap draws: ``(a, b) -> {delta, low, high}``, the UF1
    difference a minus b and its central ``level`` interval (as :func:`paired_bootstrap`,
    vectorised, for a whole leaderboard at once)."""
    k, names = len(labels), list(preds)
    cms = {m: _subject_confusions(y_true, preds[m], subjects, k)[1] for m in names}
    n_subjects = len(next(iter(cms.values()))) if cms else 0
    counts = subject_draws(n_subjects, n, seed)
    boot = {m: _uf1_uar(np.einsum("ns,sij->nij", counts, cms[m]))[0] for m in names}
    whole = {m: float(_uf1_uar(cms[m].sum(axis=0))[0]) for m in names}
    q = [(1 - level) / 2, (1 + level) / 2]
    out = {}
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            lo, hi = np.quantile(boot[a] - boot[b], q)
            out[(a, b)] = {"delta": whole[a] - whole[b], "low": float(lo), "high": float(hi)}
            out[(b, a)] = {"delta": whole[b] - whole[a], "low": float(-hi), "high": float(-lo)}
    return out
