"""Builders of tiny fixture trees in the exact layout of each real release (DATASETS.md)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
from openpyxl import Workbook

from tests.conftest import write_frames


def xlsx(path: Path, rows: list[list], sheet: str = "Sheet1") -> Path:
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    for r in rows:
        ws.append(r)
    path.parent.mkdir(parents=True, exist_ok=True)
    wb.save(path)
    return path


def samm_tree(root: Path, with_samm_level: bool = True) -> Path:
    frames = root / "SAMM" if with_samm_level else root
    write_frames(frames / "006" / "006_1_2", range(5562, 5571), pattern="006_{:05d}.jpg")
    write_frames(frames / "007" / "007_3_1", range(95, 106), pattern="007_{:05d}.jpg")
    write_frames(frames / "006" / "006_2_1", range(10, 21), pattern="006_{:05d}.jpg")
    write_frames(frames / "007" / "007_5_2", range(50, 61), pattern="007_{:05d}.jpg")
    write_frames(frames / "006" / "006_3_3", range(30, 37), pattern="006_{:05d}.jpg")
    header = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
              "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]
    xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", [
        ["SAMM micro-movement FACS codes"], ["Coded by two FACS coders; see the paper."], [],
        header,
        [6, "006_1_2", 1, 5562, 5566, 5570, 9, "Micro - 1/2", "4+7", "Anger", "III", None],
        ["007", "007_3_1", 3, 95, 99, 105, 11, "Micro - 1/2", "R12A or 14A", "Happiness", "I", "unilateral"],
        [6, "006_2_1", 2, 10, 15, 20, 11, "Micro - 1/2", "12", "Other", "VII", None],
        [7, "007_5_2", 5, 50, 55, 60, 11, "Micro - 1/2", "AU4 + R12C", "Others", "VII", None],
        [6, "006_3_3", 3, 30, 33, 36, 7, "Micro - 1/2", "9", "Disgust", "III", None],
        [8, "008_1_1", 1, 1, 2, 3, 3, "Micro - 1/2", "1", "Surprise", "VI", None],
    ])
    return root


def smic_tree(root: Path, cropped_level: bool = True) -> Path:
    base = (root / "SMIC_all_cropped" if cropped_level else root) / "HS"
    write_frames(base / "s1" / "micro" / "negative" / "s1_ne_01", range(1, 13), pattern="reg_{:05d}.bmp", bump=7)
    write_frames(base / "s1" / "micro" / "positive" / "s1_po_02", range(95, 105), pattern="reg_{}.bmp", bump=100)
    write_frames(base / "s2" / "micro" / "surprise" / "s2_sur_01", range(1, 9), pattern="reg_{:05d}.bmp", bump=3)
    write_frames(base / "s2" / "micro" / "negative" / "s2_ne_03",
                 [n for n in range(1, 10) if n != 5], pattern="reg_{:05d}.bmp")  # a frame missing
    write_frames(base / "s3" / "micro" / "other" / "s3_ot_01", range(1, 6), pattern="reg_{:05d}.bmp")
    write_frames((root / "SMIC_all_cropped" if cropped_level else root) / "VIS" / "s1" / "micro" / "negative"
                 / "s1_ne_01", range(1, 6), pattern="reg_{:05d}.bmp", bump=2)
    return root


def casme_sq_tree(root: Path) -> Path:
    raw = root / "rawpic"
    write_frames(raw / "s15" / "15_0401girlcrashing", range(1, 61))
    write_frames(raw / "s15" / "15_0502funnyerrors", range(1, 61))
    write_frames(raw / "s16" / "16_0102eatingworms", range(1, 61))
    write_frames(raw / "s16" / "16_0101disgustingteeth", range(1, 61))
    write_frames(raw / "s19" / "23_0502funnyerrors", range(1, 61))  # a folder named for another subject
    xlsx(root / "CAS(ME)^2code_final.xlsx", [
        [1, "anger1_1", 10, 15, 20, "4+7", "negative", "micro-expression", "anger"],
        [1, "happy1_2", 30, 34, 40, "12", "positive", "micro-expression", "happyiness"],
        [2, "disgust1_1", 5, 8, 12, "9", "negative", "macro-expression", "disgust"],
        [2, "disgust2_3", 50, 53, 0, "10", "negative", "micro-expression", "disgust"],
        [3, "happy1_1", 1, 3, 6, "12", "positive", "micro-expression", "happy"],
        [23, "anger1_1", 1, 3, 6, "4", "negative", "micro-expression", "anger"],
        [1, "sad1_1", 1, 3, 6, "15", "negative", "micro-expression", "sad"],
    ])
    return root


CASME3_HEADER = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "Objective class", "emotion"]


def casme3_tree(root: Path) -> Path:
    write_frames(root / "spNO.1" / "a" / "color", range(95, 215), pattern="{}.jpg")
    write_frames(root / "spNO.1" / "b" / "color", range(40, 66), pattern="{}.jpg")
    write_frames(root / "spNO.2" / "c" / "color", range(5, 20), pattern="{}.jpg")
    write_frames(root / "spNO.2" / "d" / "color", range(28, 41), pattern="{}.jpg")
    write_frames(root / "spNO.3" / "e" / "color", range(1, 12), pattern="{}.jpg")
    xlsx(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", [
        CASME3_HEADER,
        ["spNO.1", "a", 95, 101, 110, "4+7", 3, "disgust"],
        ["spNO.1", "a", 200, 203, 208, "12", 1, "happy"],
        ["spNO.1", "b", 50, 45, 60, "1+2", 6, "surprise"],
        ["spNO.2", "c", 10, 12, 0, "4", 5, "fear"],
        ["spNO.2", "d", 30, 33, 37, None, 7, "Others"],
        ["spNO.3", "e", 5, 7, 9, "?", 7, "contempt"],
    ], sheet="label")
    xlsx(root / "cas(me)3_part_A_MaE_label.xlsx", [
        CASME3_HEADER,
        ["spNO.1", "a", 1, 20, 60, "12", 1, "happy"],
        ["spNO.9", "k", 1, 2, 3, "4", 3, "disgust"],
    ])
    write_frames(root / "spNO.1" / "a" / "color", range(1, 95), pattern="{}.jpg")
    write_frames(root / "spNO.9" / "k" / "color", range(1, 4), pattern="{}.jpg")
    return root


def mmew_tree(root: Path) -> Path:
    me = root / "Micro_Expression"
    write_frames(me / "happiness" / "S01-01-001", range(1, 13), pattern="{}.jpg")
    write_frames(me / "disgust" / "S01-02-003", range(1, 10), pattern="{}.jpg")  # the sheet says surprise
    write_frames(me / "others" / "S02-01-002", range(1, 9), pattern="{}.jpg")
    write_frames(me / "disgust" / "S02-03-001", range(1, 12), pattern="{}.jpg")
    xlsx(root / "MMEW_Micro_Exp.xlsx", [
        ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
         "remarks"],
        ["S01", "S01-01-001", 1, 5, 12, "12", "happiness", None],
        [1, "S01-02-003", 1, 4, 9, "1+2", "surprise", None],
        ["S02", "S02-01-002", 1, 3, 8, "4", "others", None],
        ["S02", "S02-03-001", 1, 6, 11, "9", "disgust", "slightly blurred"],
        ["S03", "S03-01-001", 1, 3, 6, "15", "sadness", None],
    ])
    return root


def composite_official(path: Path, rows: list[list]) -> Path:
    pd.DataFrame(rows).to_csv(path, header=False, index=False)
    return path


def ckplus_tree(root: Path, zipped: bool = False) -> Path:
    """CK+ as released (``zipped``: each top folder one level down, as its zips unpack):
    labelled sequences, one without a label file, one with an unreadable code, a .DS_Store."""
    frames = root / ("extended-cohn-kanade-images/cohn-kanade-images" if zipped else "cohn-kanade-images")
    labels = root / ("Emotion_labels/Emotion" if zipped else "Emotion")
    facs = root / ("FACS_labels/FACS" if zipped else "FACS")
    seqs = {("S005", "001"): ("3.0000000e+00", ["9 4", "17 2"]), ("S005", "002"): (None, ["12 0"]),
            ("S010", "004"): ("   5.0000000e+00\n", ["6 3", "12 4", "25 0"]), ("S011", "001"): ("seven", ["1 0"])}
    for (subject, seq), (code, aus) in seqs.items():
        write_frames(frames / subject / seq, range(1, 12), pattern=f"{subject}_{seq}_{{:08d}}.png", bump=11)
        last = f"{subject}_{seq}_00000011"
        (labels / subject / seq).mkdir(parents=True, exist_ok=True)
        if code is not None:
            (labels / subject / seq / f"{last}_emotion.txt").write_text(code)
        (facs / subject / seq).mkdir(parents=True, exist_ok=True)
        (facs / subject / seq / f"{last}_facs.txt").write_text(
            "".join(f"   {float(a.split()[0]):.7e}   {float(a.split()[1]):.7e}\n" for a in aus))
    (frames / ".DS_Store").write_bytes(b"\0")
    (frames / "S005" / ".DS_Store").write_bytes(b"\0")
    return root


def mmew_macro_tree(root: Path) -> Path:
    """MMEW's macro stills ``Macro_Expression/S01/anger/S01-07-001.jpg`` beside its micro part."""
    for subject, emotion, code, n in [("S01", "anger", "07", 1), ("S01", "anger", "07", 2),
                                      ("S01", "happiness", "01", 1), ("S02", "surprise", "02", 3)]:
        write_frames(root / "Macro_Expression" / subject / emotion, [n], pattern=f"{subject}-{code}-{{:03d}}.jpg")
    write_frames(root / "Macro_Expression" / "S02" / "others", [1], pattern="S02-04-{:03d}.jpg")  # not an emotion
    (root / "Macro_Expression" / "S02" / "surprise" / "notes.jpg").write_bytes(b"")
    return root
