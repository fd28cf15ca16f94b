"""Every loader on a fixture tree in its release's exact layout, quirks included."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mer import data
from mer.cli import main
from mer.data import protocols
from mer.data.casme3 import Patch, load_casme3_macro
from mer.train import splits
from mer.train.metrics import scores_by_group
from tests.datasets import (casme3_tree, casme_sq_tree, ckplus_tree, composite_official, mmew_macro_tree, mmew_tree,
                            samm_tree, smic_tree, xlsx)


def reasons(t) -> dict:
    return {(r.subject, r.clip): r.reason for r in t.dropped.itertuples()}


def names(files) -> list[str]:
    return [Path(f).name for f in files]


# ----------------------------------------------------------------------------- SAMM

@pytest.mark.parametrize("with_level", [True, False])
def test_samm(tmp_path, with_level):
    t = data.load("samm", samm_tree(tmp_path / "SAMM_root", with_level))
    c = t.clips.set_index(["subject", "clip"])
    assert len(t.clips) == 4 and t.clips["subject"].nunique() == 2
    assert set(t.clips["subject"]) == {"006", "007"}  # 6 and "007" normalised
    assert t.classes[c.loc[("006", "006_1_2"), "label"]] == "anger"
    assert t.classes[c.loc[("006", "006_2_1"), "label"]] == "others"  # "Other"
    assert t.classes[c.loc[("007", "007_5_2"), "label"]] == "others"  # "Others"
    happy = c.loc[("007", "007_3_1")]
    assert happy["aus"] == [12, 14] and bool(happy["au_uncertain"]) and "note: unilateral" in happy["notes"]
    assert names(happy["frames"])[:6] == [f"007_{n:05d}.jpg" for n in range(95, 101)]
    assert c.loc[("006", "006_1_2"), "fps"] == 200
    r = reasons(t)
    assert r[("006", "006_3_3")] == "emotion 'disgust' not in protocol samm-5"
    assert "frame folder missing" in r[("008", "008_1_1")]
    assert len(t.dropped) == 2
    assert t.dropped["row"].min() == 9  # spreadsheet rows below the 4-line preamble + header


# ----------------------------------------------------------------------------- SMIC

@pytest.mark.parametrize("cropped_level", [True, False])
def test_smic(tmp_path, cropped_level):
    t = data.load("smic", smic_tree(tmp_path / "smic", cropped_level))
    c = t.clips.set_index(["subject", "clip"])
    assert set(c.index) == {("s01", "s01_ne_01"), ("s01", "s01_po_02"), ("s02", "s02_sur_01")}
    assert c.loc[("s01", "s01_ne_01"), "clip_folder"] == "s1_ne_01"
    po = c.loc[("s01", "s01_po_02")]
    assert names(po["frames"])[4:7] == ["reg_99.bmp", "reg_100.bmp", "reg_101.bmp"]  # numeric order
    assert (po["onset"], po["offset"]) == (95, 104)
    assert bool(po["apex_estimated"]) and po["apex"] == 100  # the frame most different from onset
    assert c.loc[("s01", "s01_ne_01"), "apex"] == 7 and (t.clips["fps"] == 100).all()
    assert t.classes[c.loc[("s02", "s02_sur_01"), "label"]] == "surprise"
    assert not any("AUs unknown" in n for n in t.clips["notes"])
    r = reasons(t)
    assert "first missing 5" in r[("s02", "s02_ne_03")]
    assert r[("s03", "s03_ot_01")] == "emotion 'other' not in protocol smic-3"
    vis = data.load("smic", tmp_path / "smic", variant="VIS")
    assert len(vis.clips) == 1 and (vis.clips["fps"] == 25).all()


# ----------------------------------------------------------------------------- CAS(ME)^2

def test_casme_sq(tmp_path):
    root = casme_sq_tree(tmp_path / "casme_sq")
    t = data.load("casme_sq", root)
    c = t.clips.set_index(["subject", "clip"])
    assert set(c.index) == {("s15", "anger1_1"), ("s15", "happy1_2"), ("s19", "happy1_1")}
    assert Path(c.loc[("s19", "happy1_1"), "frame_dir"]).name == "23_0502funnyerrors"
    a = c.loc[("s15", "anger1_1")]
    assert Path(a["frame_dir"]).name == "15_0401girlcrashing"
    assert names(a["frames"]) == [f"img{n}.jpg" for n in range(10, 21)]  # cut from the long video
    assert c.loc[("s15", "happy1_2"), "emotion_detail"] == "happiness"  # the "happyiness" typo
    assert t.classes[a["label"]] == "negative" and (t.clips["fps"] == 30).all()
    r = reasons(t)
    assert "offset 0" in r[("s16", "disgust2_3")]
    assert r[("23", "anger1_1")] == "subject number 23 not in 1..22"
    assert "unknown video prefix 'sad1'" in r[("s15", "sad1_1")]
    assert len(t.dropped) == 3 and "1 rows not micro-expression" in t.source["other expression type"]
    est = data.load("casme_sq", root, estimate_offset=True).clips.set_index("clip")
    assert bool(est.loc["disgust2_3", "offset_estimated"]) and est.loc["disgust2_3", "offset"] == 56
    macro = data.load("casme_sq", root, expression="macro")
    assert list(macro.clips["clip"]) == ["disgust1_1"]


# ----------------------------------------------------------------------------- CAS(ME)^3

def test_casme3(tmp_path):
    root = casme3_tree(tmp_path / "casme3")
    t = data.load("casme3", root)
    c = t.clips.set_index(["subject", "clip"])
    assert set(c.index) == {("spNO.1", "a_95"), ("spNO.1", "a_200"), ("spNO.2", "d_30")}  # one video, two clips
    assert c.loc[("spNO.1", "a_95"), "video"] == c.loc[("spNO.1", "a_200"), "video"] == "a"
    assert names(c.loc[("spNO.1", "a_95"), "frames"])[3:7] == ["98.jpg", "99.jpg", "100.jpg", "101.jpg"]
    assert t.classes[c.loc[("spNO.2", "d_30"), "label"]] == "others"  # "Others"
    r = reasons(t)
    assert r[("spNO.1", "b_50")] == "apex 45 outside onset..offset 50..60"
    assert "onset/offset unusable" in r[("spNO.2", "c_10")]
    assert r[("spNO.3", "e_5")] == "emotion 'contempt' not in protocol casme3-7"
    four = data.load("casme3", root, protocol="casme3-4")
    assert [four.classes[i] for i in four.clips.sort_values("clip")["label"]] == ["positive", "negative", "others"]
    patched = data.load("casme3", root, patches=(Patch("spNO.1", "b", 50, "Apex", 55, "apex before onset"),))
    b = patched.clips.set_index("clip").loc["b_50"]
    assert b["apex"] == 55 and "patched Apex 45 -> 55: apex before onset" in b["notes"]
    assert patched.source["patched"].startswith("1: spNO.1/b@50")


def test_casme3_macro_guard(tmp_path):
    root = casme3_tree(tmp_path / "casme3")
    macro = load_casme3_macro(root, annotation=root / "cas(me)3_part_A_MaE_label.xlsx")
    assert set(macro.clips["subject"]) == {"spNO.1", "spNO.9"} and macro.dataset == "casme3_macro"
    micro = data.load("casme3", root)
    for fold in splits.loso(micro.clips):
        if "spNO.1" in fold.test_subjects:
            with pytest.raises(AssertionError, match="spNO.1"):
                splits.guard_pretraining(macro.clips, fold.test_subjects)
        clean = splits.without_subjects(macro.clips, fold.test_subjects)
        splits.guard_pretraining(clean, fold.test_subjects)
        assert not set(clean["subject"]) & set(fold.test_subjects)


# ----------------------------------------------------------------------------- MMEW

def test_mmew(tmp_path):
    t = data.load("mmew", mmew_tree(tmp_path / "mmew"))
    c = t.clips.set_index(["subject", "clip"])
    assert set(c.index) == {("S01", "S01-01-001"), ("S01", "S01-02-003"), ("S02", "S02-03-001")}
    moved = c.loc[("S01", "S01-02-003")]
    assert "found under disgust/ although the sheet says 'surprise'" in moved["notes"]
    assert t.classes[moved["label"]] == "surprise" and (t.clips["fps"] == 90).all()
    assert "remark: slightly blurred" in c.loc[("S02", "S02-03-001"), "notes"]
    assert names(c.loc[("S01", "S01-01-001"), "frames"])[8:11] == ["9.jpg", "10.jpg", "11.jpg"]
    r = reasons(t)
    assert r[("S02", "S02-01-002")] == "emotion 'others' not in protocol mmew-5"
    assert "frame folder missing" in r[("S03", "S03-01-001")]


# ----------------------------------------------------------------------------- pre-training sources of p3

@pytest.mark.parametrize("zipped", [False, True])
def test_ckplus_sequences_neutral_to_peak(tmp_path, zipped):
    t = data.load_pretraining("ckplus", ckplus_tree(tmp_path / "ckplus", zipped))
    c = t.clips.set_index(["subject", "clip"])
    assert set(c.index) == {("S005", "001"), ("S010", "004")} and t.protocol == "ckplus-7"
    first = c.loc[("S005", "001")]
    assert (first["onset"], first["apex"], first["offset"]) == (1, 11, 11)  # neutral first frame, peak last
    assert t.classes[first["label"]] == "disgust" and first["aus"] == [9, 17]
    assert t.classes[c.loc[("S010", "004"), "label"]] == "happy" and c.loc[("S010", "004"), "aus"] == [6, 12, 25]
    assert names(first["frames"])[:2] == ["S005_001_00000001.png", "S005_001_00000002.png"]
    r = reasons(t)
    assert r[("S005", "002")].startswith("no emotion label")
    assert "emotion code 'seven' is not a number" in r[("S011", "001")]
    with pytest.raises(FileNotFoundError, match="cohn-kanade-images"):
        data.load_pretraining("ckplus", tmp_path)


def test_mmew_macro_stills_share_the_micro_subject_ids(tmp_path):
    root = mmew_macro_tree(mmew_tree(tmp_path / "mmew"))
    macro = data.load_pretraining("mmew_macro", root)
    c = macro.clips.set_index("clip")
    assert set(c.index) == {"S01-07-001", "S01-07-002", "S01-01-001", "S02-02-003"}
    still = c.loc["S01-07-002"]
    assert still["subject"] == "S01" and (still["onset"], still["apex"], still["offset"]) == (2, 2, 2)
    assert names(still["frames"]) == ["S01-07-002.jpg"] and macro.classes[still["label"]] == "anger"
    r = reasons(macro)
    assert r[("S02", "S02-04-001")] == "emotion 'others' not in protocol mmew_macro-6"
    assert r[("S02", "notes")] == "file name 'notes.jpg' is not Sxx-EE-NNN.jpg"
    micro = data.load("mmew", root)  # the same people: a fold's test subjects leave its pre-training
    for fold in splits.loso(micro.clips):
        clean = splits.without_subjects(macro.clips, fold.test_subjects)
        assert len(clean) < len(macro.clips) and not set(clean["subject"]) & set(fold.test_subjects)
        if "S01" in fold.test_subjects:
            with pytest.raises(AssertionError, match="S01"):
                splits.guard_pretraining(macro.clips, fold.test_subjects)


def test_data_check_reads_pretraining_sets(tmp_path, capsys):
    assert main(["data", "check", str(ckplus_tree(tmp_path / "ck")), "--dataset", "ckplus"]) == 0
    out = capsys.readouterr().out
    assert "dataset ckplus  protocol ckplus-7" in out and "no emotion label" in out


# ----------------------------------------------------------------------------- composite

def composite_roots(tmp_path, casme2_root):
    return {"casme2": casme2_root, "samm": samm_tree(tmp_path / "samm"), "smic": smic_tree(tmp_path / "smic")}


def test_composite_derived(tmp_path, casme2_root):
    roots = composite_roots(tmp_path, casme2_root)
    t = data.load("composite", roots=roots)
    assert t.classes == ("negative", "positive", "surprise")
    by_source = t.clips.groupby("source_dataset")["clip"].apply(sorted).to_dict()
    # CASME II: disgust -> negative; happiness -> positive; surprise; others dropped
    assert by_source["casme2"] == ["EP01_01", "EP02_01f", "EP07_01", "EP09_01"]
    # SAMM: anger -> negative, happiness -> positive, others dropped; disgust (now negative) kept
    assert by_source["samm"] == ["006_1_2", "006_3_3", "007_3_1"]
    assert by_source["smic"] == ["s01_ne_01", "s01_po_02", "s02_sur_01"]
    assert {s.split("/")[0] for s in t.clips["subject"]} == {"casme2", "samm", "smic"}
    assert "casme2/sub01" in set(t.clips["subject"]) and "samm/006" in set(t.clips["subject"])
    assert "smic/s01" in set(t.clips["subject"])
    assert t.dropped["subject"].str.match(r"^(casme2|samm|smic)/").all()
    folds = splits.loso(t.clips)
    assert len(folds) == t.clips["subject"].nunique()
    groups = t.clips["source_dataset"].to_numpy()
    per = scores_by_group(t.clips["label"], t.clips["label"], groups, t.classes)
    assert set(per) == {"casme2", "samm", "smic"} and all(v["acc"] == 1.0 for v in per.values())


def test_composite_official_file_is_the_truth(tmp_path, casme2_root):
    roots = composite_roots(tmp_path, casme2_root)
    official = composite_official(tmp_path / "combined_3class_gt.csv", [
        ["casme2", "sub01", "EP02_01f", 0],
        ["casme2", "sub10", "EP09_01", 2],   # derived says positive: the file wins
        ["casme2", "sub04", "EP01_01", 0],   # no frames in the release copy
        ["samm", "6", "006_1_2", 0],          # SAMM subject written without padding
        ["smic", "s01", "s01_ne_01", 0],
        ["smic", "s1", "s01_po_02", 1],       # SMIC subject unpadded
    ])
    t = data.load("composite", roots=roots, annotation=official)
    got = {(r.source_dataset, r.clip): t.classes[r.label] for r in t.clips.itertuples()}
    assert got == {("casme2", "EP02_01f"): "negative", ("casme2", "EP09_01"): "surprise",
                   ("samm", "006_1_2"): "negative", ("smic", "s01_ne_01"): "negative",
                   ("smic", "s01_po_02"): "positive"}
    relabelled = t.clips.set_index("clip").loc["EP09_01", "notes"]
    assert "label surprise from the official file (derived: positive)" in relabelled
    r = reasons(t)
    assert r[("casme2/sub04", "EP01_01")].startswith("in the official file but not loadable: frame folder missing")
    assert r[("samm/007", "007_3_1")] == "not in the official combined_3class_gt.csv"
    assert "5 matched, 1 relabelled" in t.source["official"]
    bad = composite_official(tmp_path / "bad.csv", [["casme", "sub01", "EP02_01f", 0]])
    with pytest.raises(ValueError, match="unknown dataset 'casme'"):
        data.load("composite", roots=roots, annotation=bad)
    with pytest.raises(ValueError, match=r"missing \['smic'\]"):
        data.load("composite", roots={"casme2": casme2_root, "samm": roots["samm"]})


# ----------------------------------------------------------------------------- errors, protocols, CLI

BUILDERS = {"samm": samm_tree, "smic": smic_tree, "casme_sq": casme_sq_tree, "casme3": casme3_tree, "mmew": mmew_tree}


@pytest.mark.parametrize("name", ["casme2", "samm", "smic", "casme_sq", "casme3", "mmew", "composite"])
def test_wrong_root_is_a_clear_error(tmp_path, name):
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        data.load(name, tmp_path / "nowhere")


@pytest.mark.parametrize("name,expect", [("samm", "SAMM_Micro_FACS_Codes"), ("casme_sq", "CAS\\(ME\\)\\^2code_final"),
                                         ("casme3", "cas\\(me\\)3_part_A_ME_label"), ("mmew", "MMEW_Micro_Exp"),
                                         ("smic", "HS does not exist")])
def test_missing_sheet_is_a_clear_error(tmp_path, name, expect):
    root = BUILDERS[name](tmp_path / name)
    for p in root.glob("*.xlsx"):
        p.unlink()
    if name == "smic":
        import shutil
        shutil.rmtree(root / "SMIC_all_cropped" / "HS")
    with pytest.raises(FileNotFoundError, match=expect):
        data.load(name, root)


@pytest.mark.parametrize("name,sheet,rows,expect", [
    ("samm", "SAMM_Micro_FACS_Codes_v2.xlsx", [["Subject", "Filename", "Onset Frame"], [6, "x", 1]],
     r"missing column\(s\) \['Apex Frame'"),
    ("samm", "SAMM_Micro_FACS_Codes_v2.xlsx", [["preamble only"], ["no header here"]], "no row whose first cell"),
    ("casme3", "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", [["Subject", "Filename"], ["spNO.1", "a"]],
     r"missing column\(s\)"),
    ("mmew", "MMEW_Micro_Exp.xlsx", [["Subject", "Filename"], ["S01", "x"]], r"missing column\(s\)"),
    ("casme_sq", "CAS(ME)^2code_final.xlsx", [[1, "anger1_1", 1, 2, 3]], "expected 9 columns"),
])
def test_sheet_without_expected_columns(tmp_path, name, sheet, rows, expect):
    root = BUILDERS[name](tmp_path / name)
    xlsx(root / sheet, rows, sheet="label" if name == "casme3" else "Sheet1")
    with pytest.raises(ValueError, match=expect):
        data.load(name, root)


def test_casme3_sheet_named_label_is_required(tmp_path):
    root = casme3_tree(tmp_path / "c3")
    xlsx(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", [["Subject"]], sheet="Sheet1")
    with pytest.raises(ValueError, match="label"):
        data.load("casme3", root)


def test_every_protocol_listed_and_unmapped_emotions_dropped():
    table = protocols.describe()
    assert set(table["protocol"]) == {"casme2-5", "synth-5", "samm-5", "smic-3", "composite-3", "casme2-megc",
                                      "casme3-7", "casme3-4", "casme_sq-4", "mmew-5", "samm-p3", "ckplus-7",
                                      "mmew_macro-6"}
    assert protocols.get_protocol("mmew-5").label_of("Others") is None
    p3 = protocols.get_protocol("samm-p3")  # p3's SAMM five: contempt, sadness and others are dropped
    assert p3.label_of("Anger") == 2 and p3.label_of("Fear") == 4 and p3.label_of("Contempt") is None
    assert protocols.get_protocol("casme3-4").label_of("Sad") == 0


@pytest.mark.parametrize("name", ["samm", "smic", "casme_sq", "casme3", "mmew"])
def test_data_check_command_for_every_dataset(tmp_path, capsys, name):
    root = BUILDERS[name](tmp_path / name)
    assert main(["data", "check", str(root), "--dataset", name]) == 0
    out = capsys.readouterr().out
    assert f"dataset {name}" in out and "clips:" in out and "dropped row" in out


def test_data_check_composite_from_a_parent_folder(tmp_path, capsys, casme2_root):
    parent = tmp_path / "megc"
    parent.mkdir()
    (parent / "CASME2").symlink_to(casme2_root)
    samm_tree(parent / "SAMM")
    smic_tree(parent / "SMIC")
    assert main(["data", "check", str(parent), "--dataset", "composite"]) == 0
    assert "dataset composite" in capsys.readouterr().out


def test_composite_metrics_per_source(tmp_path, casme2_root):
    from types import SimpleNamespace
    from mer.report.results import per_source
    t = data.load("composite", roots=composite_roots(tmp_path, casme2_root))
    y = t.clips["label"].to_numpy()
    wrong = np.where(t.clips["source_dataset"] == "smic", (y + 1) % 3, y)  # every SMIC clip wrong
    result = SimpleNamespace(predictions=pd.DataFrame({"subject": t.clips["subject"], "y_true": y, "y_pred": wrong}))
    table = per_source(result, t).set_index("source")
    assert table.loc["casme2", "acc"] == 1.0 and table.loc["samm", "acc"] == 1.0 and table.loc["smic", "acc"] == 0.0
    assert table["n"].sum() == len(t.clips)
    assert per_source(result, data.load("samm", tmp_path / "samm")) is None
