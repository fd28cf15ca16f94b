"""CAS(ME)^3 part A loader.

Looks in ``root`` for
- the sheet ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (any ``cas(me)3_part_A_ME_label*.xlsx``;
  ``annotation=`` names another), sheet ``label``, columns Subject, Filename, Onset, Apex,
  Offset, AU, Objective class, emotion;
- frames ``root/{Subject}/{Filename}/color/{frame}.jpg`` (numbers unpadded).
Several micro-expressions share one video (same Subject and Filename): each gets its own
clip id ``{Filename}_{Onset}`` (the video is kept in ``video``).
Known label errors (apex before onset, onset after apex, offset 0) go through the explicit
patch table :data:`PATCHES` (each entry: subject, filename, onset as written, field, fix,
reason); a patched row is noted in its clip and counted in the table's ``source``. Rows
with such errors and no patch are dropped with the reason. The table ships empty: no fix
has been verified against the release here; add entries (or pass ``patches=``) as you
confirm them.
Protocols ``casme3-7`` (the seven emotions) and ``casme3-4``. 30 fps.

:func:`load_casme3_macro` reads the macro-expression sheet (same columns) as a separate
table for pre-training; :func:`mer.train.splits.guard_pretraining` refuses macro clips of a
subject in the current test fold.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, as_int, check_root, find_one, read_sheet
from mer.data.protocols import get_protocol

FPS = 30.0
SHEET = "label"
COLUMNS = ["Subject", "Filename", "Onset", "Apex", "Offset", "AU", "emotion"]
OPTIONAL = ["Objective class"]
PATTERN = r"(\d+)\.jpg"


@dataclass(frozen=True)
class Patch:
    subject: str
    filename: str
    onset: int  # as written in the sheet, to find the row
    field: str  # "Onset" | "Apex" | "Offset"
    fix: int
    reason: str


PATCHES: tuple[Patch, ...] = ()  # verified fixes only; see the module docstring


def _apply(values: dict, subject: str, filename: str, patches, applied: list) -> list[str]:
    notes = []
    for p in patches:
        if (p.subject, p.filename, p.onset) == (subject, filename, values["Onset"]):
            notes.append(f"patched {p.field} {values[p.field]} -> {p.fix}: {p.reason}")
            applied.append(f"{subject}/{filename}@{p.onset}: {p.field} -> {p.fix}")
            values[p.field] = p.fix
    return notes


def _load(root, protocol, annotation, pattern_name, what, patches, dataset, sheet_name=SHEET) -> ClipTable:
    root = check_root(root)
    proto = get_protocol(protocol)
    sheet_path = find_one(root, pattern_name, what, annotation)
    sheet = read_sheet(sheet_path, COLUMNS, sheet_name=sheet_name, optional=OPTIONAL)
    build = TableBuilder(dataset, proto)
    applied: list[str] = []
    for row_no, r in sheet.iterrows():
        if r[COLUMNS].isna().all():
            continue
        subject = None if r.isna()["Subject"] else str(r["Subject"]).strip()
        filename = "" if r.isna()["Filename"] else str(r["Filename"]).strip()
        values = {k: as_int(r[k]) for k in ("Onset", "Apex", "Offset")}
        notes = _apply(values, subject, filename, patches, applied) if subject else []
        clip = f"{filename}_{values['Onset']}" if filename else ""
        build.add(Record(row=row_no, subject=subject, clip=clip, emotion=r["emotion"], onset=values["Onset"],
                         apex=values["Apex"], offset=values["Offset"], au=r["AU"],
                         frame_dir=root / subject / filename / "color" if subject and filename else None,
                         pattern=PATTERN, fps=FPS, apex_raw=r["Apex"], notes=notes,
                         extra={"video": filename, "objective_class": r["Objective class"]}))
    source = {"sheet": f"{sheet_path} [{sheet_name}]", "frames": str(root)}
    if applied:
        source["patched"] = f"{len(applied)}: " + "; ".join(applied)
    return build.table(root, source)


def load_casme3(root: str | os.PathLike, protocol: str = "casme3-7", annotation=None,
                patches: tuple[Patch, ...] | None = None, dataset: str = "casme3") -> ClipTable:
    return _load(root, protocol, annotation, r"cas\(me\)3_part_A_ME_label.*\.xlsx",
                 "cas(me)3_part_A_ME_label*.xlsx", PATCHES if patches is None else patches, dataset)


def load_casme3_macro(root: str | os.PathLike, annotation: str | os.PathLike, protocol: str = "casme3-7",
                      sheet_name: str | int = 0, patches: tuple[Patch, ...] = ()) -> ClipTable:
    """The macro-expressions of part A as their own table (for pre-training only)."""
    return _load(root, protocol, annotation, r".*\.xlsx", "macro-expression", patches, "casme3_macro",
                 sheet_name=sheet_name)
