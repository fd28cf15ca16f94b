"""CASME II loader (also reads SynthME, which is written in CASME II's layout).

Looks in ``root`` for
- the sheet: the single ``CASME2-coding*.xlsx`` in ``root`` (``annotation=`` names another
  file); header ``Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units,
  Estimated Emotion``, extra unnamed columns ignored;
- frames: ``root/CASME2_RAW_selected/subXX/<Filename>/img{N}.jpg`` or
  ``root/Cropped/subXX/<Filename>/reg_img{N}.jpg`` (``frames="raw"|"cropped"`` chooses when
  both are present).
Quirks handled: Subject as an integer (folder ``sub{:02d}``), apex written ``/`` or blank
(kept; apex estimated as the frame most different from onset, flagged
``apex_estimated``), AU strings like ``4+L10`` or ``?``, emotions outside the protocol
(sadness, fear in casme2-5) dropped with a reason.
"""
from __future__ import annotations

import os
from pathlib import Path

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, as_int, check_root, find_one, read_sheet, subject_id
from mer.data.protocols import get_protocol

FPS = 200.0
COLUMNS = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
           "Estimated Emotion"]
FRAME_TREES = {"raw": ("CASME2_RAW_selected", r"img(\d+)\.jpg"),
               "cropped": ("Cropped", r"reg_img(\d+)\.jpg")}


def find_sheet(root: Path, annotation: str | os.PathLike | None) -> Path:
    return find_one(root, r"CASME2-coding.*\.xlsx", "CASME2-coding*.xlsx", annotation)


def find_frames(root: Path, frames: str) -> tuple[Path, str]:
    present = {k: root / d for k, (d, _) in FRAME_TREES.items() if (root / d).is_dir()}
    if frames != "auto":
        if frames not in FRAME_TREES:
            raise ValueError(f"frames must be 'auto', 'raw' or 'cropped', got {frames!r}")
        if frames not in present:
            raise FileNotFoundError(f"{root / FRAME_TREES[frames][0]} does not exist")
        return present[frames], FRAME_TREES[frames][1]
    if not present:
        raise FileNotFoundError(f"{root}: neither CASME2_RAW_selected/ nor Cropped/ found")
    if len(present) > 1:
        raise ValueError(f"{root}: both CASME2_RAW_selected/ and Cropped/ exist; pass frames='raw' "
                         "or frames='cropped'")
    (kind, path), = present.items()
    return path, FRAME_TREES[kind][1]


def casme2_subject(value: object) -> str | None:
    """1, "01" or "sub01" -> "sub01" (the folder name)."""
    return subject_id(value, "sub", 2)


def load_casme2(root: str | os.PathLike, protocol: str = "casme2-5", annotation: str | os.PathLike | None = None,
                frames: str = "auto", dataset: str = "casme2") -> ClipTable:
    root = check_root(root)
    proto = get_protocol(protocol)
    sheet_path = find_sheet(root, annotation)
    frame_root, pattern = find_frames(root, frames)
    sheet = read_sheet(sheet_path, COLUMNS)
    build = TableBuilder(dataset, proto)
    for row_no, r in sheet.iterrows():
        if r.isna().all():
            continue  # a fully blank spreadsheet row is not an annotation
        subject, clip = casme2_subject(r["Subject"]), str(r["Filename"]).strip()
        build.add(Record(row=row_no, subject=subject, clip=clip if clip != "nan" else "",
                         emotion=r["Estimated Emotion"], onset=as_int(r["OnsetFrame"]), apex=as_int(r["ApexFrame"]),
                         offset=as_int(r["OffsetFrame"]), au=r["Action Units"],
                         frame_dir=frame_root / subject / clip if subject else None, pattern=pattern, fps=FPS,
                         apex_raw=r["ApexFrame"]))
    return build.table(root, {"sheet": str(sheet_path), "frames": str(frame_root)})
