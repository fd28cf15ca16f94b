"""CAS(ME)^2 loader (dataset id ``casme_sq``).

Looks in ``root`` for
- the sheet: the single ``CAS(ME)^2code_final.xlsx`` (also without ``^``; ``annotation=``
  names another). It has no header: columns are read by position: subject number (1-22),
  expression name (e.g. ``anger1_1``), onset, apex, offset (0 = unknown), AUs, category
  (negative/positive/surprise/others), expression type (macro-/micro-expression),
  emotion (the typo "happyiness" occurs; kept in ``emotion_detail``, normalised);
- frames: the long video folders ``root/rawpic/s15/15_0101disgustingteeth/img1.jpg``; a
  clip is frames onset..offset of its video.
Name resolution (facts of the release, as public loaders use them): subject number n is
folder ``SUBJECT_FOLDERS[n]`` (1 -> s15, ..., 22 -> s40); the expression name's prefix
(``anger1`` of ``anger1_1``) is a 4-digit video code (:data:`VIDEO_CODES`), and the video
folder is the one in the subject's folder whose name is ``<digits>_<code>...``. A name
that does not resolve to exactly one folder is dropped with the reason.
Micro-expressions by default (``expression="macro"`` or ``"all"`` for the others; the rows
of the other type are counted in the table's ``source``). Offset 0 means unknown: dropped
with the reason, unless ``estimate_offset=True`` (offset = apex + (apex - onset), flagged
``offset_estimated``). Protocol ``casme_sq-4`` uses the category column. 30 fps.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, as_int, check_root, find_one, numbered_frames, read_raw_sheet
from mer.data.protocols import get_protocol, normalise_emotion

FPS = 30.0
SUBJECT_FOLDERS = {1: "s15", 2: "s16", 3: "s19", 4: "s20", 5: "s21", 6: "s22", 7: "s23", 8: "s24", 9: "s25",
                   10: "s26", 11: "s27", 12: "s29", 13: "s30", 14: "s31", 15: "s32", 16: "s33", 17: "s34",
                   18: "s35", 19: "s36", 20: "s37", 21: "s38", 22: "s40"}
VIDEO_CODES = {"disgust1": "0101", "disgust2": "0102", "anger1": "0401", "anger2": "0402", "happy1": "0502",
               "happy2": "0503", "happy3": "0505", "happy4": "0507", "happy5": "0508"}
EMOTION_TYPOS = {"happyiness": "happiness"}
TYPES = {"micro": "micro-expression", "macro": "macro-expression"}
PATTERN = r"img(\d+)\.jpg"


def video_folder(subject_dir: Path, name: str) -> tuple[Path | None, str]:
    prefix = name.split("_")[0].lower()
    code = VIDEO_CODES.get(prefix)
    if code is None:
        return None, f"expression name {name!r}: unknown video prefix {prefix!r} (known: {sorted(VIDEO_CODES)})"
    if not subject_dir.is_dir():
        return None, f"subject folder missing: {subject_dir}"
    hits = sorted(p for p in subject_dir.iterdir() if p.is_dir() and re.match(rf"\d+_{code}", p.name))
    if len(hits) != 1:
        return None, f"{len(hits)} video folders for code {code} ({name}) in {subject_dir}"
    return hits[0], ""


def load_casme_sq(root: str | os.PathLike, protocol: str = "casme_sq-4", annotation=None, expression: str = "micro",
                  estimate_offset: bool = False, dataset: str = "casme_sq") -> ClipTable:
    root = check_root(root)
    proto = get_protocol(protocol)
    if expression not in ("micro", "macro", "all"):
        raise ValueError(f"expression must be 'micro', 'macro' or 'all', got {expression!r}")
    sheet_path = find_one(root, r"CAS\(ME\)\^?2.*code.*\.xlsx", "CAS(ME)^2code_final.xlsx", annotation)
    sheet = read_raw_sheet(sheet_path)
    if sheet.shape[1] < 9:
        raise ValueError(f"{sheet_path}: expected 9 columns (subject, name, onset, apex, offset, AUs, category, "
                         f"expression type, emotion), found {sheet.shape[1]}")
    frames = root / "rawpic"
    if not frames.is_dir():
        raise FileNotFoundError(f"{frames} does not exist (frames are read from rawpic/sNN/<video>/img*.jpg)")
    build = TableBuilder(dataset, proto)
    other_type = 0
    for i, r in sheet.iterrows():
        row_no = i + 1
        cells = r.tolist()
        if all(str(c).strip() in ("", "nan", "None") for c in cells[:9]):
            continue
        number, name = as_int(cells[0]), str(cells[1]).strip()
        if number is None and row_no == 1:
            continue  # a header row some copies carry
        kind = str(cells[7]).strip().lower()
        if expression != "all" and kind != TYPES[expression]:
            other_type += 1
            continue
        folder = SUBJECT_FOLDERS.get(number) if number is not None else None
        detail = normalise_emotion(cells[8])
        rec = Record(row=row_no, subject=folder, clip=name, emotion=cells[6], onset=as_int(cells[2]),
                     apex=as_int(cells[3]), offset=as_int(cells[4]), au=cells[5], frame_dir=None, pattern=PATTERN,
                     fps=FPS, apex_raw=cells[3], extra={"emotion_detail": EMOTION_TYPOS.get(detail, detail),
                                                         "expression_type": kind, "offset_estimated": False})
        if folder is None:
            rec.subject = str(cells[0]).strip()  # as written, so the report names it
            build.drop(rec, f"subject number {cells[0]!r} not in 1..22")
            continue
        rec.frame_dir, why = video_folder(frames / folder, name)
        if rec.frame_dir is None:
            build.drop(rec, why)
            continue
        if rec.offset == 0:
            if not estimate_offset or rec.onset is None or rec.apex is None:
                build.drop(rec, "offset 0 (unknown in the sheet); estimate_offset=True estimates it")
                continue
            last = max(numbered_frames(rec.frame_dir, PATTERN) or [rec.apex])
            rec.offset = min(rec.apex + max(rec.apex - rec.onset, 1), last)
            rec.extra["offset_estimated"] = True
            rec.notes.append(f"offset 0 in the sheet; estimated as {rec.offset}")
        build.add(rec)
    skipped = {} if expression == "all" else {"other expression type": f"{other_type} rows not {TYPES[expression]}"}
    return build.table(root, {"sheet": str(sheet_path), "frames": str(frames), **skipped})
