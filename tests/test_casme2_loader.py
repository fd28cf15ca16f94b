from pathlib import Path

import pytest

from mer import data
from mer.cli import main
from tests.conftest import casme2_sheet, write_frames


def test_loader_handles_every_quirk(casme2_root: Path):
    t = data.load("casme2", casme2_root)
    clips = t.clips.set_index(["subject", "clip"])
    assert set(clips.index) == {("sub01", "EP02_01f"), ("sub01", "EP03_02"), ("sub02", "EP01_01"),
                                ("sub03", "EP07_01"), ("sub10", "EP09_01")}
    # frames sorted by number, covering onset..offset only
    f = clips.loc[("sub01", "EP02_01f"), "frames"]
    assert [Path(p).name for p in f[:6]] == ["img5.jpg", "img6.jpg", "img7.jpg", "img8.jpg", "img9.jpg", "img10.jpg"]
    assert len(f) == 11
    whole = clips.loc[("sub01", "EP03_02")]
    assert len(whole["frames"]) == 11 and Path(whole["frames"][0]).name == "img10.jpg"
    # AU strings
    assert clips.loc[("sub01", "EP02_01f"), "aus"] == [4, 10]
    assert clips.loc[("sub01", "EP02_01f"), "au_raw"] == "4+L10"
    assert whole["aus"] == [] and "AUs unknown" in whole["notes"]
    # apex "/" -> estimated at the frame most different from onset, flagged
    est = clips.loc[("sub02", "EP01_01")]
    assert bool(est["apex_estimated"]) and est["apex"] == 27
    assert not clips.loc[("sub01", "EP02_01f"), "apex_estimated"]
    # labels follow casme2-5; emotion normalised
    assert whole["emotion"] == "others" and t.classes[whole["label"]] == "others"
    assert t.classes[clips.loc[("sub10", "EP09_01"), "label"]] == "happiness"
    assert set(t.clips.columns) >= {"dataset", "subject", "clip", "frame_dir", "onset", "apex", "offset", "fps",
                                    "aus", "au_raw", "emotion", "label", "apex_estimated"}
    assert (t.clips["fps"] == 200).all()
    # every unusable row is reported with a reason
    reasons = {(r.subject, r.clip): r.reason for r in t.dropped.itertuples()}
    assert "not in protocol casme2-5" in reasons[("sub03", "EP05_01")]
    assert "'sadness'" in reasons[("sub03", "EP05_01")]
    assert "'fear'" in reasons[("sub03", "EP06_01")]
    assert "missing" in reasons[("sub02", "EP04_01")] and "first missing 14" in reasons[("sub02", "EP04_01")]
    assert "frame folder missing" in reasons[("sub04", "EP01_01")]
    assert "apex 25 outside onset..offset 10..20" in reasons[("sub01", "EP03_03")]
    dup_rows = t.dropped[t.dropped["reason"].str.contains("duplicate")]
    assert len(dup_rows) == 1 and dup_rows.iloc[0]["row"] == 11  # spreadsheet row of the second copy
    assert len(t.dropped) == 6
    assert len(t.clips) + len(t.dropped) == 11


def test_cropped_release_and_explicit_sheet(tmp_path: Path):
    root = tmp_path / "c2"
    write_frames(root / "Cropped" / "sub05" / "EP01_01", range(3, 12), pattern="reg_img{}.jpg")
    casme2_sheet([[5, "EP01_01", 3, 6, 11, "AU4 + R12C", "happiness"]], root / "mysheet.xlsx", extra_unnamed=False)
    t = data.load("casme2", root, annotation=root / "mysheet.xlsx")
    assert len(t.clips) == 1 and t.clips.iloc[0]["aus"] == [4, 12]
    assert Path(t.clips.iloc[0]["frames"][0]).name == "reg_img3.jpg"


def test_clear_errors(tmp_path: Path, casme2_root: Path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        data.load("casme2", tmp_path / "nope")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="CASME2-coding"):
        data.load("casme2", empty)
    (casme2_root / "CASME2-coding-20190701.xlsx").write_bytes((casme2_root / "CASME2-coding-20140508.xlsx").read_bytes())
    with pytest.raises(ValueError, match="several candidate CASME2-coding"):
        data.load("casme2", casme2_root)
    t = data.load("casme2", casme2_root, annotation="CASME2-coding-20190701.xlsx")
    assert len(t.clips) == 5
    (casme2_root / "Cropped").mkdir()
    with pytest.raises(ValueError, match="both CASME2_RAW_selected/ and Cropped/"):
        data.load("casme2", casme2_root, annotation="CASME2-coding-20190701.xlsx")
    bad = tmp_path / "bad"
    (bad / "CASME2_RAW_selected").mkdir(parents=True)
    import pandas as pd
    pd.DataFrame({"Subject": [1], "Filename": ["x"]}).to_excel(bad / "CASME2-coding-x.xlsx", index=False)
    with pytest.raises(ValueError, match=r"CASME2-coding-x.xlsx: missing column\(s\)"):
        data.load("casme2", bad)
    with pytest.raises(KeyError, match="unknown protocol"):
        data.load("casme2", casme2_root, protocol="nope-5")


def test_data_check_command_prints_drops(casme2_root: Path, capsys):
    assert main(["data", "check", str(casme2_root), "--dataset", "casme2"]) == 0
    out = capsys.readouterr().out
    assert "clips: 5" in out and "subjects: 4" in out
    assert "emotion 'fear' not in protocol casme2-5" in out
    assert "apex estimated" in out
    assert main(["data", "check", str(casme2_root / "missing")]) == 2
