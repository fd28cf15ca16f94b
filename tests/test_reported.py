"""Reported paper numbers as data (params/<method>/reported.csv) and the notebook order of
methods that the study and the report share."""
import math

import pandas as pd
import pytest

from mer.paths import method_notebooks, notebook_order
from mer.report.reported import COLUMNS, compare, load_reported, reported

NA = None
# The table that was the REPORTED literal in mer/report/reported.py, before it became data:
# rows per method, and spot checks (dataset, source, protocol, acc, uf1, uar) in file order.
EXPECTED_COUNTS = {"atm_gcn": 11, "baseline": 2, "cva_fpf": 24, "gam_mm_mer": 37, "mer_gcn": 6, "reference": 14,
                   "tdsgcn": 52}
SPOT = {
    "baseline": {0: ("casme2", "p5 (CVA+FPF) Table 2, Baseline(ResNet)", "casme2-5", 0.8112, 0.7582, NA),
                 1: ("samm", "p5 (CVA+FPF) Table 2, Baseline(ResNet)", "samm-5", 0.7353, 0.6345, NA)},
    "cva_fpf": {0: ("casme2", "p5 Table 1/2, CVA+FPF+AU (the full model)", "casme2-5", 0.9435, 0.9402, NA),
                22: ("casme2", "p5 Table 7, with AU embedding", "casme2-5", 0.9435, 0.9112, NA),
                23: ("samm", "p5 Table 7, with AU embedding", "samm-5", 0.8673, 0.8171, NA)},
    "gam_mm_mer": {0: ("casme2", "p2 Table 1, GAM-MM-MER, 3 classes", "casme2-megc", 0.9157, 0.9122, NA),
                   4: ("samm", "p2 Table 2, GAM-MM-MER, 5 classes", "samm-5", 0.8788, 0.8817, NA),
                   36: ("samm", "p2 Table 4, alpha = 10, 5 classes", "samm-5", 0.8447, 0.8468, NA)},
    "tdsgcn": {0: ("mmew", "p3 Table II, TDSGCN (spatial + temporal + focal loss, 8+2 and 4+0)", "mmew-5", 0.727,
                   NA, NA),
               5: ("samm", "p3 Table VII, temporal branch + CE", "samm-p3", 0.369, NA, NA),
               7: ("samm", "p3 Table VII, spatial + temporal + CE", "samm-p3", 0.688, NA, NA)},
    "mer_gcn": {0: ("casme2", "p1 Table 2 ablation, GCN only", "casme2-5", 0.5965, NA, NA),
                5: ("casme_sq", "p1 Tables 2-3, GCN + Transformer (the full model)", "casme_sq-4", 0.6911, NA, NA)},
    "atm_gcn": {0: ("casme3", "p4 Table I, ATM-GCN, 7 classes", "casme3-7", NA, 0.4308, 0.4283),
                2: ("composite", "p4 Table II, ATM-GCN", "composite-3", NA, 0.912, 0.9022),
                10: ("casme3", "p4 Table IV ablation, w/o ATM, 4 classes", "casme3-4", NA, 0.522, 0.5279)},
}


def _same(value, expected) -> bool:
    return math.isnan(value) if expected is None else value == expected


def test_loaded_table_equals_the_former_literal():
    table = load_reported()
    assert list(table.columns) == COLUMNS
    assert len(table) == 146
    assert table["method"].value_counts().to_dict() == EXPECTED_COUNTS
    for method, spots in SPOT.items():
        rows = reported(method)
        assert len(rows) == EXPECTED_COUNTS[method]
        for i, (dataset, source, protocol, acc, uf1, uar) in spots.items():
            row = rows.iloc[i]
            assert (row["method"], row["dataset"], row["source"], row["protocol"]) == (method, dataset, source,
                                                                                       protocol), (method, i)
            for col, want in (("acc", acc), ("uf1", uf1), ("uar", uar)):
                assert _same(row[col], want), (method, i, col, row[col], want)


def test_compare_labels_reported_rows_and_this_run():
    out = compare("atm_gcn", "synth", "synth-3", {"acc": 0.5, "uf1": 0.4, "uar": 0.3})
    assert len(out) == 12 and list(out["kind"][:-1].unique()) == ["reported"]
    assert out.iloc[-1]["kind"] == "this run (synthetic)" and out.iloc[-1]["uf1"] == 0.4
    # p4 averages over subjects: its rows say so, and this run's subject mean stands beside its pooled number
    assert set(out["aggregation"][:-1]) == {"mean over subjects"}
    assert out.iloc[-1]["aggregation"].startswith("pooled over subjects")
    both = compare("atm_gcn", "synth", "synth-3", {"acc": 0.5, "uf1": 0.4, "uar": 0.3},
                   {"acc": 0.6, "uf1": 0.45, "uar": 0.35})
    assert len(both) == 13 and both.iloc[-1]["uf1"] == 0.45
    assert both.iloc[-1]["aggregation"] == "mean over subjects (the paper's aggregation)"
    # a paper that does not say how it aggregates gets no second row of ours
    assert len(compare("mer_gcn", "synth", "synth-5", {"acc": 0.5, "uf1": 0.4, "uar": 0.3},
                       {"acc": 0.6, "uf1": 0.45, "uar": 0.35})) == 7
    assert out.iloc[2]["dataset"] == "MEGC 2019 composite" and pd.isna(out.iloc[2]["acc"])
    # each reported number's split beside this run's: p3 scored one held-out test set
    p3 = compare("tdsgcn", "mmew", "mmew-5", {"acc": 0.5, "uf1": 0.4, "uar": 0.3}, split="one held-out test set")
    assert all("held-out test set" in s for s in p3["split"][:-1]) and p3.iloc[-1]["split"] == "one held-out test set"
    assert out.iloc[-1]["split"] == "LOSO" and set(out["split"][:-1]) == {"LOSO"}
    rows7 = reported("tdsgcn")["source"]
    assert rows7.str.contains("Table VII").sum() == 10 and rows7.str.contains("Table VI,").sum() == 40


HEADER = "# a comment\ndataset,protocol,source,acc,uf1,uar\n"


@pytest.mark.parametrize("body, problem", [
    ("# no uar column\ndataset,protocol,source,acc,uf1\ncasme2,casme2-5,p9 Table 1,0.5,0.5\n", "missing column"),
    (HEADER + "casme2,casme2-5,p9 Table 1,0.5,n/a,\n", "uf1 'n/a' is not a number"),
    (HEADER + "casme2,casme2-5,p9 Table 1,,,\n", "no metric"),
    (HEADER + "casme2,casme2-5,p9 Table 1,,51.2,\n", r"outside \[0, 1\]"),
    ("dataset,protocol,source,acc,uf1,uar,aggregation\ncasme2,casme2-5,p9 Table 1,0.5,,,mean\n",
     "aggregation 'mean' is not one of"),
    (HEADER + "casme2,casme2-5,p9 Table 1,0.5\n", "fields"),
])
def test_a_malformed_reported_file_names_the_file_and_the_problem(tmp_path, body, problem):
    (tmp_path / "params" / "good").mkdir(parents=True)
    (tmp_path / "params" / "good" / "reported.csv").write_text(HEADER + 'casme2,casme2-5,"p9 Table 1, full",0.5,,\n')
    (tmp_path / "params" / "bad").mkdir()
    (tmp_path / "params" / "bad" / "reported.csv").write_text(body)
    with pytest.raises(ValueError, match=problem) as err:
        load_reported(tmp_path / "params")
    assert "bad/reported.csv" in str(err.value).replace("\\", "/")


def test_a_params_tree_without_reported_files_gives_an_empty_table(tmp_path):
    (tmp_path / "params" / "m").mkdir(parents=True)
    good = tmp_path / "params" / "m" / "reported.csv"
    assert load_reported(tmp_path / "params").empty
    good.write_text(HEADER + 'casme2,casme2-5,"p9 Table 1, full",0.5,,\n')
    row = load_reported(tmp_path / "params").iloc[0]
    assert (row["method"], row["source"], row["acc"]) == ("m", "p9 Table 1, full", 0.5) and pd.isna(row["uf1"])


def test_notebook_order_puts_methods_by_notebook_number(tmp_path):
    from mer.report.html import method_sort_key
    for m in ("baseline", "toy", "gam", "gam_mm_mer", "mer_gcn", "unlisted"):
        (tmp_path / "params" / m).mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    for name in ("00_baseline", "06_toy", "01_mer_gcn_transformer", "02_gam_mm_mer", "03_gam", "notes"):
        (tmp_path / "notebooks" / f"{name}.ipynb").write_text("{}")
    order = notebook_order(tmp_path)
    assert order == {"baseline": 0, "mer_gcn": 1, "gam_mm_mer": 2, "gam": 3, "toy": 6}
    assert method_notebooks(tmp_path)["gam"] == [tmp_path / "notebooks" / "03_gam.ipynb"]
    key = method_sort_key(tmp_path)
    assert sorted(["unlisted", "toy", "gam", "baseline", "zzz", "gam_mm_mer"], key=key) == \
        ["baseline", "gam_mm_mer", "gam", "toy", "unlisted", "zzz"]


def test_every_method_of_this_project_has_one_notebook():
    nbs = method_notebooks()
    assert {m: len(v) for m, v in nbs.items()} == {m: 1 for m in nbs}
    assert list(sorted(notebook_order(), key=notebook_order().get))[:6] == [
        "baseline", "mer_gcn", "gam_mm_mer", "tdsgcn", "atm_gcn", "cva_fpf"]


def test_reported_vs_reproduced_rows_flags_and_never_synth():
    from mer.report.reported import FLAGS, protocol_flags, reproduced
    row = {"split": "one fixed held-out test set", "aggregation": "subject mean", "flags": "gt_au"}
    flags = protocol_flags(row, ours_epochs=12, paper_epochs=400)
    assert flags == ["fixed held-out split (ours: LOSO)", "per-subject averaging (ours: pooled)", FLAGS["gt_au"],
                     "fewer epochs in our run (12 of the paper's 400)"]
    assert protocol_flags({"split": "LOSO (test-fold epoch selection)"}) == [FLAGS["test_epochs"]]
    assert protocol_flags({"split": "LOSO"}, ours_epochs=400, paper_epochs=400) == []
    full = {"method": "cva_fpf", "dataset": "casme2", "protocol": "casme2-5", "acc": 0.5, "uf1": 0.4, "uar": 0.45,
            "params": {"epochs": 10}}
    synth = {**full, "dataset": "synth"}
    rows = [r for r in reproduced([synth, full], lambda m, d, n: 50) if r["method"] == "cva_fpf"]
    full_model = next(r for r in rows if r["source"].startswith("p5 Table 1/2") and r["dataset"] == "CASME II")
    assert full_model["ours uf1"] == 0.4 and full_model["reported uf1"] == pytest.approx(0.9402)
    assert FLAGS["gt_au"] in full_model["flags"] and "fewer epochs in our run (10 of the paper's 50)" in full_model["flags"]
    samm = next(r for r in rows if r["dataset"] == "SAMM")
    assert samm["ours uf1"] is None and samm["ours"] == "no run on SAMM (samm-5)"  # the SynthME run is never beside it
    cva_block = next(r for r in rows if r["source"] == "p5 Table 2, CVA block" and r["dataset"] == "CASME II")
    assert FLAGS["gt_au"] not in cva_block["flags"]
