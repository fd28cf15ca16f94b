"""What used to be computed in notebook cells, now in the modules it belongs to: ablation
plans, graph summaries, AU coverage, diagnostics."""
import numpy as np
import pandas as pd
import pytest
import torch

from mer.data import aus
from mer.models import atm_gcn, cva_fpf, gam_mer, mer_gcn, tdsgcn


def test_tdsgcn_ablation_plan_rows_around_the_main_configuration():
    main = [(8, 2), (4, 0)]
    variants, rows, grid = tdsgcn.ablation_plan(["transfer", "T6", "T7", "focal"], main, ["4+0", "8+2 and 4+0"],
                                                {"alpha": [1.0], "gamma": [0.5, 1.0]}, (1.0, 1.0), pretrain=True,
                                                freeze=True)
    assert variants["from scratch"] == {"transferred": False}
    assert variants["SGCNs fine-tuned (all weights)"] == {"freeze": False}  # the other transfer mode
    # Table VI as the paper ran it: cross-entropy, each branch alone, every architecture
    assert rows["T6"] == ["4+0, spatial + CE", "4+0, temporal + CE", "8+2 and 4+0, spatial + CE",
                          "8+2 and 4+0, temporal + CE"]
    assert variants["4+0, temporal + CE"] == {"graphs": [(4, 0)], "branches": ("temporal",), "loss": "ce"}
    # Table VII: all six of the paper's rows, the two same-(p, q) pairs included; rows shared
    # with Table VI are one run
    assert rows["T7"] == ["8+2 and 4+0, spatial + CE", "8+2 and 4+0, temporal + CE",
                          "8+2 and 8+2, spatial + temporal + CE", "4+0 and 4+0, spatial + temporal + CE",
                          "8+2 and 4+0, spatial + temporal + CE", "main configuration"]
    assert variants["8+2 and 8+2, spatial + temporal + CE"] == {"graphs": [(8, 2), (8, 2)],
                                                                "branches": ("spatial", "temporal"), "loss": "ce"}
    assert variants["focal alpha 1, gamma 0.5"] == {"focal_alpha": 1.0, "focal_gamma": 0.5}
    assert len(variants) == 1 + 2 + 4 + 3 + 1
    assert rows["focal"] == ["focal alpha 1, gamma 0.5", "main configuration"]
    assert grid == [("focal alpha 1, gamma 0.5", 1.0, 0.5), ("main configuration", 1.0, 1.0)]
    assert tdsgcn.ablation_plan(["transfer"], main, [], {}, (1.0, 1.0), pretrain=True)[1]["transfer"][1] \
        == "SGCNs frozen (head only)"
    with pytest.raises(ValueError, match="needs pretrain"):
        tdsgcn.ablation_plan(["transfer"], main, [], {}, (1.0, 1.0), pretrain=False)
    with pytest.raises(ValueError, match="unknown ablation"):
        tdsgcn.ablation_plan(["T9"], main, [], {}, (1.0, 1.0), pretrain=True)
    assert tdsgcn.parse_graphs("12+0 and 4+6") == [(12, 0), (4, 6)]
    with pytest.raises(ValueError, match="write p\\+q"):
        tdsgcn.parse_graphs("8-2")


def test_tdsgcn_graph_rows_count_nodes_per_level():
    (p, q, graph, row), = tdsgcn.graph_rows(12, [(4, 0)], tdsgcn.PAPER_T, 0, "quick")
    assert (p, q) == (4, 0) and row["graph"] == "4+0" and row["edges per node"] > 0
    levels = row["real nodes per level"].split()
    assert levels[0] == "144" and all(int(a) >= int(b) for a, b in zip(levels, levels[1:]))


def test_gam_mer_tables_swap_each_choice_of_the_main_configuration():
    tables = gam_mer.ablation_tables(2, "gat", "optimised", "micro", [10.0, 20.0])
    t3 = tables["T3"][1]
    assert t3["add one GAT layer"] == {"layers": 3} and t3["GCN instead of GAT"] == {"conv": "gcn"}
    assert t3["all facial key areas"] == {"regions": "all"} and t3["raw facial graph"] == {"graph": "raw"}
    assert list(tables["T4"][1].values()) == [{"magnifier": "none"}, {"test_alpha": 10.0}, {"test_alpha": 20.0}]
    other = gam_mer.ablation_tables(1, "gcn", "raw", "all", [])["T3"][1]
    assert other["remove one GAT layer"] == {"layers": 1} and other["micro-expression areas only"] == {"regions": "micro"}
    assert other["optimised graph"] == {"graph": "optimised"} and set(gam_mer.REGION_SETS) == {"micro", "micro+eyes", "all"}
    # Fig. 8's rows: the raw apex, the main configuration at the test factor, then the other factors
    assert gam_mer.per_alpha_rows(tables, "main configuration", 5.0) == {
        "raw image (no magnification)": "raw image (no magnification)",
        "alpha = 5 at test (main)": "main configuration", "alpha = 10 at test": "alpha = 10 at test",
        "alpha = 20 at test": "alpha = 20 at test"}


def test_cva_fpf_tables_need_each_variant_once():
    assert cva_fpf.table_variants(["T3", "T7"]) == [cva_fpf.FULL, "horizontal", "both directions", "without AU"]
    assert all(v in cva_fpf.ABLATIONS for t in cva_fpf.TABLES for v in cva_fpf.table_variants([t]))
    assert "nothing measurable" in cva_fpf.au_reference_verdict(0.8, 1.0)
    assert "0.300 below the full model" in cva_fpf.au_reference_verdict(0.8, 0.5)


def test_cva_row_weight_maps_cover_the_frame():
    model = cva_fpf.CVAFPF(num_classes=3, config="quick", size=32, n_aus=21).eval()
    maps = model.row_weight_maps(torch.randn(2, 2, 3, 32, 32))
    assert maps.shape[0] == 2 and maps.shape[-2:] == (32, 32) and maps.shape[1] >= 1
    assert torch.allclose(maps[..., :1].expand_as(maps), maps)  # one weight per row, spread over the width


def test_atm_adaptation_starts_as_the_identity():
    model = atm_gcn.ATMGCN(num_classes=3, config="quick", frames=4).eval()
    rows = model.adaptation_drift(torch.randn(2, 4, 3, 32, 32), torch.tensor([2, 3]))
    assert len(rows) == atm_gcn.CONFIGS["quick"]["layers"] - 1
    assert all(r["forget rate f"] == pytest.approx(0.5) for r in rows)
    # FC starts as the identity: A(1) = relu(A(0)) (1 - f) + A(0) f = A(0) on the (non-negative) edges
    assert all(r["mean |A(l) - A(0)| / mean A(0)"] == pytest.approx(0, abs=1e-6) for r in rows)
    assert set(atm_gcn.ABLATIONS) == {"w/o GCN", "w/o motion", "w/o ATM", "full"}


def test_mer_gcn_table_2_under_each_reading():
    variants, tables = mer_gcn.table2_plan(["GCN", "GCN + Transformer"], ["stgcn", "mlgcn"], "stgcn")
    assert variants == {"GCN": {"use_transformer": False}, "GCN + Transformer": {},
                        "GCN [ML-GCN reading]": {"use_transformer": False, "reading": "mlgcn"},
                        "GCN + Transformer [ML-GCN reading]": {"reading": "mlgcn"}}
    assert tables == {"stgcn": ("Table 2, ST-GCN reading", ["GCN", "GCN + Transformer"]),
                      "mlgcn": ("Table 2, ML-GCN reading", ["GCN [ML-GCN reading]",
                                                            "GCN + Transformer [ML-GCN reading]"])}
    only_ml, tables = mer_gcn.table2_plan(["GCN"], ["mlgcn"], "mlgcn")  # the main reading keeps the plain names
    assert only_ml == {"GCN": {"use_transformer": False}} and list(tables) == ["mlgcn"]
    with pytest.raises(ValueError, match="unknown reading"):
        mer_gcn.table2_plan(["GCN"], ["gat"], "stgcn")
    with pytest.raises(ValueError, match="unknown Table 2 row"):
        mer_gcn.table2_plan(["GAT"], ["stgcn"], "stgcn")


def test_mer_gcn_graph_summary_of_fold_graphs():
    vocabulary = (1, 2, 4)
    landmarks = np.tile(np.stack([np.linspace(0, 60, 68), np.linspace(0, 60, 68)], 1), (3, 1, 1))
    g1 = mer_gcn.au_graph([[1, 2], [1, 2], [4]], landmarks, vocabulary)
    g2 = mer_gcn.au_graph([[1], [1, 2], [2]], landmarks, vocabulary)
    s = mer_gcn.graph_summary([g1, g2])
    np.testing.assert_allclose(s.mean, (g1.adjacency + g2.adjacency) / 2)
    assert s.spread[0, 1] == pytest.approx(abs(g1.adjacency[0, 1] - g2.adjacency[0, 1]))
    assert s.unseen == {1: 0, 2: 0, 4: 1}  # AU4 in no training clip of the second fold
    assert s.alone == ["AU4"] and "AU4 (1)" in s.describe()
    nodes = s.nodes()
    assert list(nodes.columns) == ["AU1", "AU2", "AU4"] and nodes.loc["neighbours", "AU4"] == 0
    clips = pd.DataFrame({"aus": [[1, 2], [4]], "landmarks_apex": list(landmarks[:2])})
    per_fold = mer_gcn.FoldGraphs(clips, vocabulary)
    assert per_fold.key() == {"fold_graph": [1, 2, 4], "centre_distance": "euclidean"}
    assert mer_gcn.FoldGraphs(clips, vocabulary, "hops").key()["centre_distance"] == "hops"

    class Fold:
        train_idx = np.array([0])
    assert per_fold(Fold())["graph"].clips == 1  # counted from the fold's training rows only


def test_au_coverage_lists_what_the_vocabulary_leaves_out():
    cover = aus.coverage([[1, 2], [4, 45], [45], []], [1, 2, 4])
    assert cover.per_au.loc["clips"].tolist() == [1, 1, 1] and cover.empty == 2 and cover.clips == 4
    assert cover.outside.values.tolist() == [[45, 2]]
    assert "AU45 (2)" in cover.describe() and "2 of 4" in cover.describe()


def test_tdsgcn_flow_statistics_are_fig_8s_mean_and_variance_over_clips():
    flows = np.zeros((3, 3, 4, 4))
    flows[:, 0, 1, 2] = [3.0, 0.0, 0.0]  # one pixel moves in one clip only
    flows[:, 1, 0, 0] = [4.0, 4.0, 4.0]  # another moves the same way in every clip
    st = tdsgcn.flow_statistics(flows)
    assert st["mean"][1, 2] == pytest.approx(1.0) and st["var"][1, 2] == pytest.approx(2.0)
    assert st["mean"][0, 0] == pytest.approx(4.0) and st["var"][0, 0] == 0.0
    assert st["spread"] == pytest.approx(2.0 / 16) and st["clips"] == 3
    with pytest.raises(ValueError, match="flow inputs"):
        tdsgcn.flow_statistics(flows[:1])
