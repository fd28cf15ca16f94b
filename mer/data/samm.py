"""SAMM loader.

Looks in ``root`` for
- the sheet: the single ``SAMM_Micro_FACS_Codes*.xlsx`` (``annotation=`` names another); the
  original has a text preamble above the header, so the header is the first row whose
  first cell is "Subject". Columns used: Subject, Filename, Onset Frame, Apex Frame,
  Offset Frame, Action Units, Estimated Emotion (Objective Classes and Notes kept);
- frames: ``root/SAMM/{subject}/{filename}/{subject}_{frame:05d}.jpg`` or the same
  without the ``SAMM`` level.
Quirks: Subject read as 6 or "006" normalises to "006"; "Other" and "Others"; AU strings
with "or" and intensity letters; 200 fps, greyscale frames (read as RGB).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, as_int, check_root, find_one, read_raw_sheet, read_sheet, subject_id
from mer.data.protocols import get_protocol

FPS = 200.0
COLUMNS = ["Subject", "Filename", "Onset Frame", "Apex Frame", "Offset Frame", "Action Units", "Estimated Emotion"]
OPTIONAL = ["Objective Classes", "Notes"]


def samm_subject(value: object) -> str | None:
    """6, 6.0 or "006" -> "006"."""
    return subject_id(value, "", 3)


def header_row(path: Path) -> int:
    """0-based index of the row whose first cell is "Subject" (below the preamble)."""
    raw = read_raw_sheet(path)
    for i, v in enumerate(raw.iloc[:, 0].tolist()):
        if str(v).strip().lower() == "subject":
            return i
    raise ValueError(f"{path}: no row whose first cell is 'Subject' (the header row of the SAMM sheet)")


def frames_root(root: Path) -> Path:
    return root / "SAMM" if (root / "SAMM").is_dir() else root


def load_samm(root: str | os.PathLike, protocol: str = "samm-5", annotation=None, dataset: str = "samm") -> ClipTable:
    root = check_root(root)
    proto = get_protocol(protocol)
    sheet_path = find_one(root, r"SAMM_Micro_FACS_Codes.*\.xlsx", "SAMM_Micro_FACS_Codes*.xlsx", annotation)
    sheet = read_sheet(sheet_path, COLUMNS, header_row=header_row(sheet_path), optional=OPTIONAL)
    frames = frames_root(root)
    build = TableBuilder(dataset, proto)
    for row_no, r in sheet.iterrows():
        if r[COLUMNS].isna().all():
            continue
        subject = samm_subject(r["Subject"])
        clip = "" if r.isna()["Filename"] else str(r["Filename"]).strip()
        notes = [f"note: {r['Notes']}"] if isinstance(r["Notes"], str) and r["Notes"].strip() else []
        build.add(Record(row=row_no, subject=subject, clip=clip, emotion=r["Estimated Emotion"],
                         onset=as_int(r["Onset Frame"]), apex=as_int(r["Apex Frame"]),
                         offset=as_int(r["Offset Frame"]), au=r["Action Units"],
                         frame_dir=frames / subject / clip if subject else None,
                         pattern=rf"{re.escape(subject or '')}_(\d+)\.jpg", fps=FPS, apex_raw=r["Apex Frame"],
                         extra={"objective_class": r["Objective Classes"]}, notes=notes))
    return build.table(root, {"sheet": str(sheet_path), "frames": str(frames)})
