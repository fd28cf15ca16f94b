import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, recall_score

from mer.data.aus import parse_aus
from mer.train import splits
from mer.train.losses import FocalLoss
from mer.train.metrics import scores

LABELS = ["a", "b", "c", "d"]


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, 60)  # class "d" has no support: it must still count
    y_pred = rng.integers(0, 4, 60)
    s = scores(y_true, y_pred, LABELS)
    labels = list(range(4))
    assert s["acc"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert s["uf1"] == pytest.approx(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert s["uar"] == pytest.approx(recall_score(y_true, y_pred, labels=labels, average="macro", zero_division=0))
    assert s["confusion"] == confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert s["per_class"]["d"] == {"f1": 0.0, "recall": 0.0, "support": 0}


def test_scores_absent_class_lowers_uf1():
    perfect = scores([0, 1, 2], [0, 1, 2], ["a", "b", "c", "d"])
    assert perfect["acc"] == 1.0 and perfect["uf1"] == pytest.approx(0.75)
    with pytest.raises(ValueError):
        scores([0, 5], [0, 1], ["a", "b"])


def _clips(subjects):
    return pd.DataFrame({"subject": subjects, "clip": [f"c{i}" for i in range(len(subjects))]})


def test_loso_folds_disjoint_and_cover_every_clip():
    clips = _clips(["s1"] * 3 + ["s2"] * 2 + ["s3"] * 4 + ["s10"])
    folds = splits.make_folds(clips, "loso")
    assert [f.name for f in folds] == ["s1", "s10", "s2", "s3"]
    tested = np.concatenate([f.test_idx for f in folds])
    assert sorted(tested.tolist()) == list(range(len(clips)))
    for f in folds:
        assert not set(clips.subject[f.train_idx]) & set(clips.subject[f.test_idx])


def test_grouped_kfold_and_guard():
    clips = _clips([f"s{i % 7}" for i in range(40)])
    folds = splits.make_folds(clips, 3, seed=1)
    assert len(folds) == 3
    assert sorted(np.concatenate([f.test_idx for f in folds]).tolist()) == list(range(40))
    for f in folds:
        assert not set(clips.subject[f.train_idx]) & set(clips.subject[f.test_idx])
    assert [f.test_subjects for f in folds] == [f.test_subjects for f in splits.make_folds(clips, 3, seed=1)]
    leaky = splits.Fold("bad", np.array([0, 7]), np.array([14]), ("s0",))  # clip 0, 7, 14 are all s0
    with pytest.raises(AssertionError, match="both train and test"):
        splits.check_disjoint(clips.subject, leaky)
    with pytest.raises(ValueError):
        splits.make_folds(clips, 8)
    with pytest.raises(ValueError):
        splits.make_folds(clips, "leave-two-out")


def test_holdout_is_one_fixed_subject_disjoint_test_set_of_the_asked_size():
    sizes = np.random.default_rng(0).integers(2, 15, 30)  # 30 subjects, 2-14 clips each
    clips = _clips(np.repeat([f"s{i}" for i in range(30)], sizes).tolist())
    fold, = splits.make_folds(clips, "holdout:44", seed=0)
    assert not set(clips.subject[fold.train_idx]) & set(clips.subject[fold.test_idx])
    assert sorted([*fold.train_idx, *fold.test_idx]) == list(range(len(clips)))  # every clip, once
    assert set(clips.subject[fold.test_idx]) == set(fold.test_subjects)  # whole subjects
    assert abs(len(fold.test_idx) - 44) <= sizes.max() and fold.name == f"holdout{len(fold.test_idx)}"
    again, = splits.make_folds(clips, "holdout:44", seed=5)  # deterministic; the training seed does not move it
    assert np.array_equal(again.test_idx, fold.test_idx) and again.test_subjects == fold.test_subjects
    other, = splits.make_folds(clips, "holdout:44:1")  # another split seed, another test set
    assert other.test_subjects != fold.test_subjects
    default, = splits.make_folds(clips, "holdout", seed=0)  # about a fifth
    assert abs(len(default.test_idx) - 0.2 * len(clips)) <= sizes.max()
    for bad in ("holdout:", "holdout44", "holdout:x", "holdout:44:1:2"):
        with pytest.raises(ValueError, match="holdout"):
            splits.make_folds(clips, bad)
    with pytest.raises(ValueError, match="test clips asked for"):
        splits.make_folds(clips, f"holdout:{len(clips)}")
    from mer.notebook import folds_label  # what the notebooks' tables call it
    assert folds_label("holdout:44:1") == "one held-out test set (about 44 clips, whole subjects)"
    assert folds_label("loso") == "LOSO" and folds_label(3) == "grouped 3-fold"


def test_focal_loss():
    logits = torch.randn(8, 5)
    target = torch.randint(0, 5, (8,))
    ce = torch.nn.functional.cross_entropy(logits, target)
    assert FocalLoss(gamma=0.0)(logits, target) == pytest.approx(float(ce), rel=1e-5)
    assert float(FocalLoss(gamma=2.0)(logits, target)) < float(ce)
    alpha = torch.tensor([1.0, 0, 0, 0, 0])
    only0 = FocalLoss(gamma=0.0, alpha=alpha)(logits, target)
    expect = (torch.nn.functional.cross_entropy(logits, target, reduction="none") * (target == 0)).mean()
    assert float(only0) == pytest.approx(float(expect), abs=1e-6)
    # a confident correct prediction is down-weighted far more than a wrong one
    easy = torch.tensor([[6.0, 0, 0]])
    hard = torch.tensor([[0.0, 6.0, 0]])
    t = torch.tensor([0])
    fl = FocalLoss(gamma=2.0)
    assert float(fl(easy, t)) < 1e-4 < float(fl(hard, t))


@pytest.mark.parametrize("text,aus,uncertain,unknown", [
    ("4+L10", [4, 10], False, False), ("R1+R2", [1, 2], False, False), ("AU4 + R12C", [4, 12], False, False),
    ("5B", [5], False, False), ("(R6 or R12)+R15", [6, 12, 15], True, False),
    ("R14A or 17A or 24A", [14, 17, 24], True, False), ("?", [], False, True), ("4，7", [4, 7], False, False),
    ("12(k)", [12], False, False), (12.0, [12], False, False), (float("nan"), [], False, True)])
def test_au_strings(text, aus, uncertain, unknown):
    code = parse_aus(text)
    assert (code.aus, code.uncertain, code.unknown, code.unparsed) == (aus, uncertain, unknown, "")


def test_au_sides_intensities_and_junk():
    code = parse_aus("R14A or 17A or 24A")
    assert code.sides == {14: "R"} and code.intensities == {14: "A", 17: "A", 24: "A"}
    assert parse_aus("1+2+foo").unparsed == "foo"


def test_paired_bootstrap_of_uf1_difference():
    from mer.train.metrics import paired_bootstrap
    rng = np.random.default_rng(0)
    y = np.arange(60) % 3
    subjects = [f"s{i // 6}" for i in range(60)]
    same = paired_bootstrap(y, y, y, subjects, ["a", "b", "c"], n=200)
    assert same["delta"] == 0 and same["low"] == same["high"] == 0 and same["a_ahead"] == 0
    noisy = np.where(rng.random(60) < 0.6, rng.integers(0, 3, 60), y)
    better = paired_bootstrap(y, y, noisy, subjects, ["a", "b", "c"], n=200)
    assert better["delta"] == pytest.approx(1 - scores(y, noisy, ["a", "b", "c"])["uf1"])
    assert 0 < better["low"] <= better["delta"] <= better["high"] and better["a_ahead"] == 1.0
    assert better["n_subjects"] == 10
    # A wins on one subject only: the interval must reach below zero
    wrong = (y + 1) % 3
    lucky = np.where(np.arange(60) < 6, y, wrong)  # right on subject s0 only; B is always wrong
    mixed = paired_bootstrap(y, lucky, wrong, subjects, ["a", "b", "c"], n=500)
    assert mixed["delta"] > 0 and mixed["low"] <= 0 < mixed["a_ahead"] < 1
    with pytest.raises(ValueError, match="one entry per clip"):
        paired_bootstrap(y, y, y[:-1], subjects, ["a", "b", "c"])


def test_compare_runs_needs_the_same_protocol_clips_labels_and_folds(tmp_path):
    import json

    from mer.report.results import compare_runs, describe_difference
    y = np.arange(12) % 3
    preds = pd.DataFrame({"fold": [f"s{i // 4}" for i in range(12)], "subject": [f"s{i // 4}" for i in range(12)],
                          "clip": [f"c{i}" for i in range(12)], "y_true": y, "y_pred": y})
    absent = compare_runs(preds, tmp_path, "abc", "new", "old")  # no other run yet
    assert absent.table is None and absent.skipped.startswith("No finished old run in")
    preds.assign(y_pred=(y + 1) % 3).to_csv(tmp_path / "predictions.csv", index=False)
    (tmp_path / "metrics.json").write_text(json.dumps({"protocol": "p-3", "labels": list("abc")}))
    cmp = compare_runs(preds, tmp_path, "abc", "new", "old", n_boot=100, protocol="p-3")
    assert cmp.skipped is None and list(cmp.table["method"]) == ["old", "new"] and list(cmp.table["uf1"]) == [0.0, 1.0]
    assert cmp.boot["delta"] == 1.0 and cmp.interval().startswith("+1.000 [")
    assert describe_difference(cmp.boot, "new", "old", "toy").startswith("new beats old on toy: UF1 difference +1.000")
    assert "is below" in describe_difference({**cmp.boot, "low": -0.3, "high": -0.1}, "new", "old", "toy")
    assert "not distinguishable" in describe_difference({**cmp.boot, "low": -0.1, "high": 0.1}, "new", "old", "toy")

    # another protocol or other classes: skipped with the reason, never raised
    other_protocol = compare_runs(preds, tmp_path, "abc", "new", "old", protocol="p-5")
    assert other_protocol.table is None and "protocol p-3, this run under p-5" in other_protocol.skipped
    assert "classes" in compare_runs(preds, tmp_path, "abd", "new", "old").skipped
    # other clips, other labels, other folds
    preds.iloc[:-1].to_csv(tmp_path / "predictions.csv", index=False)
    assert "other clips" in compare_runs(preds, tmp_path, "abc", "new", "old").skipped
    preds.assign(y_true=(y + 2) % 3).to_csv(tmp_path / "predictions.csv", index=False)
    assert "another label" in compare_runs(preds, tmp_path, "abc", "new", "old").skipped
    preds.assign(fold=["k1"] * 6 + ["k2"] * 6).to_csv(tmp_path / "predictions.csv", index=False)
    moved = compare_runs(preds, tmp_path, "abc", "new", "old")
    assert "another fold" in moved.skipped and moved.interval() == moved.skipped


def test_reported_numbers_name_a_known_dataset_protocol_and_method():
    from mer.data.protocols import PROTOCOLS
    from mer.paths import notebook_order
    from mer.models import reference
    from mer.report.reported import DATASET_NAMES, load_reported
    rows = load_reported().to_dict("records")
    methods = notebook_order()  # every method with reported numbers has its notebook
    for row in rows:
        assert row["protocol"] in PROTOCOLS and row["dataset"] in DATASET_NAMES, row
        # a paper's own number names the paper (p1-p5); the reference networks' rows name the network first
        network = row["method"] == "reference" and row["source"].split(",")[0] in {
            shown for shown, _, _ in reference.INPUTS.values()}
        assert row["method"] in methods and (row["source"].startswith("p") or network), row
        assert any(not pd.isna(row[k]) for k in ("acc", "uf1", "uar")), row
        assert all(pd.isna(row[k]) or 0 < row[k] <= 1 for k in ("acc", "uf1", "uar")), row
    sources = [(r["method"], r["dataset"], r["source"], r["protocol"]) for r in rows]
    assert len(sources) == len(set(sources))  # no row entered twice


def test_subject_mean_averages_per_subject_scores():
    from mer.train.metrics import subject_mean
    labels = ["a", "b", "c"]
    # subject 1: acc 2/3, F1 of a and b 2/3 each (c absent from its labels and predictions), recall 1/2 and 1;
    # subject 2: one clip, right
    out = subject_mean([0, 0, 1, 2], [0, 1, 1, 2], ["s1", "s1", "s1", "s2"], labels)
    assert out["subjects"] == 2
    assert np.isclose(out["acc"], (2 / 3 + 1) / 2) and np.isclose(out["uf1"], (2 / 3 + 1) / 2)
    assert np.isclose(out["uar"], (0.75 + 1) / 2)
