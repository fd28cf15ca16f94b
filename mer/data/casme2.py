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
import re
from pathlib import Path

from mer.data.aus import parse_aus
from mer.data.clips import ClipTable, as_int, clip_frames, estimate_apex, make_tables, read_sheet
from mer.data.protocols import get_protocol, normalise_emotion

FPS = 200.0
COLUMNS = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units",
           "Estimated Emotion"]
FRAME_TREES = {"raw": ("CASME2_RAW_selected", r"img(\d+)\.jpg"),
               "cropped": ("Cropped", r"reg_img(\d+)\.jpg")}


def find_sheet(root: Path, annotation: str | os.PathLike | None) -> Path:
    if annotation is not None:
        path = Path(annotation)
        if not path.is_absolute() and not path.exists():
            path = root / path
        if not path.is_file():
            raise FileNotFoundError(f"annotation sheet {path} does not exist")
        return path
    found = sorted(p for p in root.glob("CASME2-coding*.xlsx") if not p.name.startswith("~$"))
    if not found:
        raise FileNotFoundError(f"{root}: no CASME2-coding*.xlsx sheet; is this the CASME II root? "
                                "(pass annotation= to name the sheet)")
    if len(found) > 1:
        raise ValueError(f"{root}: several candidate sheets {[p.name for p in found]}; "
                         "pass annotation= to choose one")
    return found[0]


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


def _subject(value: object) -> str | None:
    n = as_int(value)
    if n is None and value is not None:
        m = re.fullmatch(r"(?:sub)?0*(\d+)", str(value).strip(), re.IGNORECASE)
        n = int(m.group(1)) if m else None
    return None if n is None else f"sub{n:02d}"


def load_casme2(root: str | os.PathLike, protocol: str = "casme2-5", annotation: str | os.PathLike | None = None,
                frames: str = "auto", dataset: str = "casme2") -> ClipTable:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a directory")
    proto = get_protocol(protocol)
    sheet_path = find_sheet(root, annotation)
    frame_root, pattern = find_frames(root, frames)
    sheet = read_sheet(sheet_path, COLUMNS)
    rows, drops, seen = [], [], set()
    for row_no, r in sheet.iterrows():
        subject, clip = _subject(r["Subject"]), str(r["Filename"]).strip()
        emotion = normalise_emotion(r["Estimated Emotion"])

        def drop(reason: str) -> None:
            drops.append({"dataset": dataset, "row": row_no, "subject": subject, "clip": clip,
                          "emotion": emotion, "reason": reason})
        if r.isna().all():
            continue  # a fully blank spreadsheet row is not an annotation
        if subject is None:
            drop(f"unreadable Subject {r['Subject']!r}")
            continue
        if clip in ("", "nan"):
            drop("empty Filename")
            continue
        if (subject, clip) in seen:
            drop("duplicate of an earlier row (same Subject and Filename)")
            continue
        label = proto.label_of(emotion)
        if label is None:
            drop(f"emotion {emotion!r} not in protocol {proto.name}")
            continue
        onset, offset = as_int(r["OnsetFrame"]), as_int(r["OffsetFrame"])
        if onset is None or offset is None or offset <= onset:
            drop(f"onset/offset unusable (OnsetFrame={r['OnsetFrame']!r}, OffsetFrame={r['OffsetFrame']!r})")
            continue
        files, why = clip_frames(frame_root / subject / clip, pattern, onset, offset)
        if files is None:
            drop(why)
            continue
        apex, estimated = as_int(r["ApexFrame"]), False
        if apex is None:
            apex, estimated = estimate_apex(files, onset), True
        elif not onset <= apex <= offset:
            drop(f"apex {apex} outside onset..offset {onset}..{offset}")
            continue
        au = parse_aus(r["Action Units"])
        notes = []
        if au.unknown:
            notes.append(f"AUs unknown ({au.raw!r})")
        if au.unparsed:
            notes.append(f"AU text not understood: {au.unparsed!r}")
        if estimated:
            notes.append(f"apex not annotated ({r['ApexFrame']!r}); estimated")
        seen.add((subject, clip))
        rows.append({"dataset": dataset, "subject": subject, "clip": clip,
                     "frame_dir": str(frame_root / subject / clip), "frames": files, "onset": onset,
                     "apex": apex, "offset": offset, "fps": FPS, "aus": au.aus, "au_raw": au.raw,
                     "au_uncertain": au.uncertain, "emotion": emotion, "label": label,
                     "apex_estimated": estimated, "notes": "; ".join(notes)})
    clips, dropped = make_tables(rows, drops)
    return ClipTable(dataset, proto.name, proto.classes, clips, dropped, root,
                     {"sheet": str(sheet_path), "frames": str(frame_root)})
