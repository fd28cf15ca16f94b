"""SMIC loader: labels from the folder structure, no sheet.

Reads ``root/[SMIC_all_cropped/]{HS|VIS|NIR}/s1/micro/{negative|positive|surprise}/s1_ne_01/
reg_00001.bmp`` (``variant`` HS by default). Subject and clip ids are normalised to the
MEGC spelling (``s1`` and ``s01`` are the same subject ``s01``; clip ``s01_ne_01``), the
folder's own name kept in ``clip_folder``. Onset and offset are the first and last frame;
the apex is not annotated, so it is estimated (the frame most different from onset) and
flagged ``apex_estimated``. HS is 100 fps, VIS and NIR 25 fps.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, check_root, numbered_frames, subject_id
from mer.data.protocols import get_protocol

VARIANT_FPS = {"HS": 100.0, "VIS": 25.0, "NIR": 25.0}
PATTERN = r"(?:reg_)?(?:image)?(\d+)\.(?:bmp|jpg|jpeg|png)"


def smic_subject(name: object) -> str | None:
    """"s1" or "s01" -> "s01" (the MEGC spelling)."""
    return subject_id(name, "s", 2)


def smic_clip(name: str) -> str:
    """``s1_ne_01`` -> ``s01_ne_01`` (MEGC spelling)."""
    return re.sub(r"^s0*(\d+)", lambda m: f"s{int(m.group(1)):02d}", str(name).strip(), flags=re.IGNORECASE)


def variant_root(root: Path, variant: str) -> Path:
    if variant not in VARIANT_FPS:
        raise ValueError(f"SMIC variant must be one of {list(VARIANT_FPS)}, got {variant!r}")
    base = root / "SMIC_all_cropped" if (root / "SMIC_all_cropped").is_dir() else root
    path = base / variant
    if not path.is_dir():
        have = sorted(p.name for p in base.iterdir() if p.is_dir())
        raise FileNotFoundError(f"{path} does not exist (found {have}); expected "
                                f"[SMIC_all_cropped/]{variant}/s1/micro/<emotion>/<clip>/")
    return path


def load_smic(root: str | os.PathLike, protocol: str = "smic-3", annotation=None, variant: str = "HS",
              dataset: str = "smic") -> ClipTable:
    if annotation is not None:
        raise ValueError("SMIC has no annotation sheet: labels come from the folder structure")
    root = check_root(root)
    proto = get_protocol(protocol)
    base = variant_root(root, variant)
    build = TableBuilder(dataset, proto)
    subjects = sorted((p for p in base.iterdir() if p.is_dir()), key=lambda p: (smic_subject(p.name) or "", p.name))
    for sdir in subjects:
        subject = smic_subject(sdir.name)
        micro = sdir / "micro"
        if subject is None or not micro.is_dir():
            build.drop(Record(row=str(sdir.relative_to(root)), subject=subject, clip=None, emotion="", onset=None,
                              apex=None, offset=None, au=None, frame_dir=None, pattern=PATTERN, fps=0),
                       f"not a subject folder with micro/ inside: {sdir}")
            continue
        for edir in sorted(p for p in micro.iterdir() if p.is_dir()):
            for cdir in sorted(p for p in edir.iterdir() if p.is_dir()):
                numbers = list(numbered_frames(cdir, PATTERN))
                build.add(Record(row=str(cdir.relative_to(root)), subject=subject, clip=smic_clip(cdir.name),
                                 emotion=edir.name, onset=numbers[0] if numbers else None, apex=None,
                                 offset=numbers[-1] if numbers else None, au=None, frame_dir=cdir, pattern=PATTERN,
                                 fps=VARIANT_FPS[variant], has_aus=False,
                                 extra={"clip_folder": cdir.name, "variant": variant}))
    return build.table(root, {"frames": str(base), "labels": "folder names (no sheet)"})
