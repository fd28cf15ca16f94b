"""MMEW's macro-expressions (Ben et al. 2021): the pre-training source p3 uses for MMEW.

No sheet ships for them and no public loader reads one; what the release's own page and
public loaders show (see the README's dataset notes):
- stills, one JPEG per sample, subject first: ``Macro_Expression/S01/anger/S01-07-001.jpg``
  (``{subject}-{emotion code}-{sample}``), 900 samples of 30 subjects in six emotions
  (anger, disgust, fear, happiness, sadness, surprise), about five per subject and emotion;
- the label is the emotion folder; the subject is the ``Sxx`` folder, the same people and
  the same ids (``S01``) as the micro-expressions, so a fold's test subjects are removed from
  its pre-training (:func:`mer.train.splits.guard_pretraining`).
assumption: a still is a clip of one frame (onset = apex = offset): its apex - onset
difference and its optical flow are zero, so only spatial (single-frame) inputs learn from
these samples. A subject folder may also sit under an emotion folder first
(``Macro_Expression/anger/S01/...``); both orders are read.
Protocol ``mmew_macro-6``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, check_root
from mer.data.mmew import FPS, mmew_subject
from mer.data.protocols import get_protocol

STILL = re.compile(r"(S\d+)-(\d+)-(\d+)\.jpe?g", re.IGNORECASE)


def load_mmew_macro(root: str | os.PathLike, protocol: str = "mmew_macro-6", annotation=None,
                    dataset: str = "mmew_macro") -> ClipTable:
    root = check_root(root)
    proto = get_protocol(protocol)
    base = root / "Macro_Expression"
    if not base.is_dir():
        raise FileNotFoundError(f"{base} does not exist (MMEW's macro stills: Macro_Expression/S01/<emotion>/*.jpg)")
    build = TableBuilder(dataset, proto)
    stills = sorted(p for p in base.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in stills:
        rel = path.relative_to(base).parts
        m = STILL.fullmatch(path.name)
        folders = list(rel[:-1])
        subject_folder = next((f for f in folders if re.fullmatch(r"S\d+", f, re.IGNORECASE)), None)
        emotion = next((f for f in folders if f != subject_folder), None)
        pattern = rf"{re.escape(m.group(1))}-{m.group(2)}-(\d+){re.escape(path.suffix)}" if m else ""
        rec = Record(row="/".join(rel), subject=mmew_subject(subject_folder or (m.group(1) if m else None)),
                     clip=path.stem, emotion=emotion, onset=None, apex=None, offset=None, au=None,
                     frame_dir=path.parent, pattern=pattern, fps=FPS, has_aus=False, still=True)
        if m is None:
            build.drop(rec, f"file name {path.name!r} is not Sxx-EE-NNN.jpg")
            continue
        if len(folders) != 2 or subject_folder is None:
            build.drop(rec, "expected Macro_Expression/<Sxx>/<emotion>/<file>")
            continue
        n = int(m.group(3))
        rec.onset, rec.apex, rec.offset = n, n, n
        build.add(rec)
    return build.table(root, {"stills": str(base)})
