"""MMEW loader.

Looks in ``root`` for
- the sheet: the single ``MMEW_Micro_Exp*.xlsx`` (``annotation=`` names another), columns
  Subject, Filename, OnsetFrame, ApexFrame, OffsetFrame, Action Units, Estimated Emotion,
  remarks;
- frames ``root/Micro_Expression/{emotion}/{Filename}/{frame}.jpg`` (onset usually 1).
When a clip's folder is not under its sheet emotion but under another emotion folder, it
is used and the mismatch is noted in the clip (never silently). Protocol ``mmew-5``
(happiness, surprise, disgust, fear, sadness, as in p3). 90 fps.
"""
from __future__ import annotations

import os
from pathlib import Path

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, as_int, check_root, find_one, read_sheet, subject_id
from mer.data.protocols import get_protocol, normalise_emotion

FPS = 90.0
COLUMNS = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion"]
OPTIONAL = ["remarks"]
PATTERN = r"(\d+)\.jpg"


def mmew_subject(value: object) -> str | None:
    """1 or "S01" -> "S01"."""
    return subject_id(value, "S", 2)


def load_mmew(root: str | os.PathLike, protocol: str = "mmew-5", annotation=None, dataset: str = "mmew") -> ClipTable:
    root = check_root(root)
    proto = get_protocol(protocol)
    sheet_path = find_one(root, r"MMEW_Micro_Exp.*\.xlsx", "MMEW_Micro_Exp*.xlsx", annotation)
    frames = root / "Micro_Expression"
    if not frames.is_dir():
        raise FileNotFoundError(f"{frames} does not exist (frames are read from Micro_Expression/<emotion>/<clip>/)")
    by_name: dict[str, list[Path]] = {}
    for edir in (p for p in frames.iterdir() if p.is_dir()):
        for cdir in (p for p in edir.iterdir() if p.is_dir()):
            by_name.setdefault(cdir.name, []).append(cdir)
    sheet = read_sheet(sheet_path, COLUMNS, optional=OPTIONAL)
    build = TableBuilder(dataset, proto)
    for row_no, r in sheet.iterrows():
        if r[COLUMNS].isna().all():
            continue
        clip = "" if r.isna()["Filename"] else str(r["Filename"]).strip()
        emotion = normalise_emotion(r["Estimated Emotion"])
        notes = [f"remark: {r['remarks']}"] if isinstance(r["remarks"], str) and r["remarks"].strip() else []
        folder = frames / emotion / clip
        if not folder.is_dir() and len(by_name.get(clip, [])) == 1:
            folder = by_name[clip][0]
            notes.append(f"frames found under {folder.parent.name}/ although the sheet says {emotion!r}")
        build.add(Record(row=row_no, subject=mmew_subject(r["Subject"]), clip=clip, emotion=emotion,
                         onset=as_int(r["OnsetFrame"]), apex=as_int(r["ApexFrame"]), offset=as_int(r["OffsetFrame"]),
                         au=r["Action Units"], frame_dir=folder, pattern=PATTERN, fps=FPS,
                         apex_raw=r["ApexFrame"], notes=notes))
    return build.table(root, {"sheet": str(sheet_path), "frames": str(frames)})
