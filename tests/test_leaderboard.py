"""The report's leaderboard: the reference networks as rows, the strongest marked, and each
method's paired UF1 difference from the baseline and from the strongest reference."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from mer.report import leaderboard
from mer.report.html import build_report
from mer.train.metrics import scores

CLASSES = ["negative", "positive", "surprise"]


def _preds(y_true: np.ndarray, accuracy: float, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    right = rng.random(len(y_true)) < accuracy
    y_pred = np.where(right, y_true, (y_true + 1 + rng.integers(0, 2, len(y_true))) % 3)
    subjects = [f"s{i // 10:02d}" for i in range(len(y_true))]
    return pd.DataFrame({"fold": subjects, "subject": subjects, "clip": [f"c{i}" for i in range(len(y_true))],
                         "y_true": y_true, "y_pred": y_pred})


def _write(folder, method, preds, **extra):
    folder.mkdir(parents=True, exist_ok=True)
    preds.to_csv(folder / "predictions.csv", index=False)
    m = scores(preds["y_true"], preds["y_pred"], CLASSES)
    (folder / "metrics.json").write_text(json.dumps({
        "method": method, "dataset": "casme2", "protocol": "casme2-megc", "acc": m["acc"], "uf1": m["uf1"],
        "uar": m["uar"], "labels": CLASSES, "per_class": m["per_class"], "confusion": m["confusion"], "n_clips": 300,
        "n_subjects": 30, "runtime_s": 1.0, "device": "cpu", **extra}, default=float))
    return m


def test_leaderboard_marks_the_strongest_reference_and_gives_paired_differences(tmp_path, monkeypatch):
    monkeypatch.setattr(leaderboard, "N_BOOT", 300)
    y = np.arange(300) % 3
    out = tmp_path / "outputs" / "casme2"
    _write(out / "baseline", "baseline", _preds(y, 0.55, 1))
    weak, strong = _preds(y, 0.45, 2), _preds(y, 0.75, 3)
    ref = out / "reference"
    for name, p in (("ststnet", strong), ("sssnet", weak)):
        (ref / name).mkdir(parents=True)
        p.to_csv(ref / name / "predictions.csv", index=False)
    nets = [{"network": n, "name": shown, "predictions": f"{n}/predictions.csv",
             **{k: v for k, v in scores(p["y_true"], p["y_pred"], CLASSES).items() if k in ("acc", "uf1", "uar")}}
            for n, shown, p in (("ststnet", "STSTNet", strong), ("sssnet", "SSSNet", weak))]
    _write(ref, "reference", strong, networks=nets, strongest="ststnet")
    _write(out / "good_method", "good_method", _preds(y, 0.97, 4))
    _write(out / "same_method", "same_method", strong.copy())

    runs = [json.loads((d / "metrics.json").read_text()) | {"_path": d / "metrics.json"}
            for d in (out / "baseline", ref, out / "good_method", out / "same_method")]
    board = leaderboard.table(runs).set_index("method")
    assert list(board.index) == ["baseline", "STSTNet (strongest reference)", "SSSNet (reference)", "good_method",
                                 "same_method"]
    against_ref = board["UF1 minus strongest reference [95%]"]
    assert against_ref["good_method"].endswith("ahead")
    assert against_ref["SSSNet (reference)"].endswith("behind")
    assert against_ref["same_method"].startswith("+0.000") and against_ref["same_method"].endswith(
        "not distinguishable")
    assert against_ref["STSTNet (strongest reference)"] == ""
    assert board.loc["baseline", "UF1 minus baseline [95%]"] == ""
    assert board.loc["good_method", "UF1 minus baseline [95%]"].endswith("ahead")
    delta = float(against_ref["good_method"].split()[0])
    assert abs(delta - (board.loc["good_method", "UF1"] - board.loc["STSTNet (strongest reference)", "UF1"])) < 6e-4

    html = build_report(tmp_path / "outputs").read_text()
    assert "Leaderboard: CASME II" in html and "STSTNet (strongest reference)" in html


def test_a_run_on_other_clips_is_not_compared(tmp_path, monkeypatch):
    monkeypatch.setattr(leaderboard, "N_BOOT", 100)
    y = np.arange(60) % 3
    out = tmp_path / "casme2"
    _write(out / "baseline", "baseline", _preds(y, 0.6, 1))
    _write(out / "m", "m", _preds(y, 0.6, 2).iloc[:30])
    runs = [json.loads((d / "metrics.json").read_text()) | {"_path": d / "metrics.json"}
            for d in (out / "baseline", out / "m")]
    board = leaderboard.table(runs).set_index("method")
    assert board.loc["m", "UF1 minus baseline [95%]"].startswith("not comparable")
    assert board.loc["m", "UF1 minus strongest reference [95%]"] == "no run"


def test_seed_spread_pairs_selection_and_label_derived_rows(tmp_path, monkeypatch):
    """A method whose further training seeds reverse its lead is not told apart; a label-derived
    reference is a marked row; the test-epoch diagnostic gives the inflation table; the report
    holds every section."""
    monkeypatch.setattr(leaderboard, "N_BOOT", 300)
    y = np.arange(300) % 3
    out = tmp_path / "outputs" / "casme2"
    base = _preds(y, 0.55, 1)
    _write(out / "baseline", "baseline", base,
           seed_runs=[{"seed": 0, "acc": 0, "uf1": 0.50, "uar": 0, "predictions": "predictions.csv"},
                      {"seed": 1, "acc": 0, "uf1": 0.60, "uar": 0, "predictions": "predictions.csv"},
                      {"seed": 2, "acc": 0, "uf1": 0.55, "uar": 0, "predictions": "predictions.csv"}])
    strong = _preds(y, 0.9, 2)
    selection = {"honest_uf1": 0.9, "honest_uar": 0.9, "fold_best_uf1": 0.95, "fold_best_uar": 0.95,
                 "epoch_best_uf1": 0.92, "epoch_best_uar": 0.92, "best_epoch": 7, "epochs": 12,
                 "inflation_uf1": 0.05, "uf1_by_epoch": [0.5] * 12}
    # clearly ahead on the subject bootstrap, but with seed 1 it scores below the baseline's seed 1
    (out / "strong" / "au_only").mkdir(parents=True)
    _preds(y, 0.99, 5).to_csv(out / "strong" / "au_only" / "predictions.csv", index=False)
    _write(out / "strong", "strong", strong, test_selection=selection,
           seed_runs=[{"seed": 0, "acc": 0, "uf1": 0.9, "uar": 0, "predictions": "predictions.csv"},
                      {"seed": 1, "acc": 0, "uf1": 0.58, "uar": 0, "predictions": "predictions.csv"},
                      {"seed": 2, "acc": 0, "uf1": 0.88, "uar": 0, "predictions": "predictions.csv"}],
           label_derived={"name": "AU vector alone", "acc": 0.99, "uf1": 0.99, "uar": 0.99,
                          "predictions": "au_only/predictions.csv"})
    _write(out / "good", "good", _preds(y, 0.97, 4))
    runs = [json.loads((d / "metrics.json").read_text()) | {"_path": d / "metrics.json"}
            for d in (out / "baseline", out / "strong", out / "good")]
    board = leaderboard.build(runs)
    table = board.table().set_index("method")
    assert list(table.index) == ["baseline", "strong", "AU vector alone [strong]", "good"]
    assert table.loc["AU vector alone [strong]", "kind"] == "label-derived input"
    assert table.loc["baseline", "seeds"] == 3 and table.loc["baseline", "UF1 over seeds"] == "0.550 [0.500, 0.600]"
    low, high = (float(x) for x in table.loc["good", "UF1 95%"].strip("[]").split(", "))
    assert low < table.loc["good", "UF1"] < high
    assert table.loc["strong", "UF1 minus baseline [95%]"].endswith("not distinguishable (a training seed reverses it)")
    assert table.loc["good", "UF1 minus baseline [95%]"].endswith("ahead")  # one seed: the bootstrap decides
    pairs = {(p["a"], p["b"]): p for p in board.pairs}
    assert len(pairs) == 6  # 4 comparable rows
    assert not pairs[("baseline", "strong")]["told apart"] and pairs[("baseline", "good")]["told apart"]
    assert pairs[("baseline", "strong")]["seed differences"] == "-0.400, +0.020, -0.330"
    matrix = leaderboard.pair_matrix(board)
    assert matrix.loc["good", "baseline"].startswith(">") and matrix.loc["baseline", "good"].startswith("<")
    assert matrix.loc["baseline", "strong"].startswith("~")
    assert [r["method"] for r in leaderboard.test_selection_rows(board)] == ["strong"]

    html = build_report(tmp_path / "outputs").read_text()
    for section in ("Which methods can be told apart", "Test-fold epoch selection, measured",
                    "Label-derived inputs, measured", "Reported vs reproduced", "the amplitude sweep",
                    "What reproducible means here", "Training seeds: 3"):
        assert section in html, section
    assert "http://" not in html and "https://" not in html  # nothing to fetch
