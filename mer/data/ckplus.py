"""CK+ loader (Lucey et al. 2010): posed macro-expression sequences, the pre-training
source p3 uses for SAMM.

Looks in ``root`` for
- frames ``cohn-kanade-images/S005/001/S005_001_00000001.png``: one folder per subject and
  sequence, each sequence running from a neutral face (first frame) to the peak (last
  frame);
- labels ``Emotion/S005/001/S005_001_00000011_emotion.txt``: one float code
  (``3.0000000e+00``; 1 anger, 2 contempt, 3 disgust, 4 fear, 5 happy, 6 sadness,
  7 surprise, 0 neutral), present for 327 of the 593 sequences; a sequence without one is
  dropped with that reason;
- AUs ``FACS/S005/001/S005_001_00000011_facs.txt``: one "AU intensity" pair of floats per
  line, for the peak frame (intensity 0: not given).
Each top folder may also sit one level down, as the release's zips unpack
(``Emotion_labels/Emotion``, ``FACS_labels/FACS``, ``extended-cohn-kanade-images/cohn-kanade-images``);
hidden files (``.DS_Store``) and ``__MACOSX`` are ignored.
A sequence becomes a clip with onset = its first frame, apex = offset = its last frame.
Protocol ``ckplus-7`` (the seven emotions; neutral is not a sequence label). 30 fps.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from mer.data.builder import Record, TableBuilder
from mer.data.clips import ClipTable, check_root, numbered_frames
from mer.data.protocols import get_protocol

FPS = 30.0
EMOTION_CODES = {0: "neutral", 1: "anger", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sadness",
                 7: "surprise"}
_TOP = {"frames": ("cohn-kanade-images", "extended-cohn-kanade-images"), "labels": ("Emotion", "Emotion_labels"),
        "facs": ("FACS", "FACS_labels")}


def _top(root: Path, kind: str) -> Path | None:
    """``root/<name>`` or ``root/<zip name>/<name>`` for one of the release's top folders."""
    inner = _TOP[kind][0]
    for outer in _TOP[kind]:
        for cand in (root / outer / inner, root / outer):
            if cand.is_dir() and (cand.name == inner or not (cand / inner).is_dir()):
                return cand
    return None


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__MACOSX")))


def read_code(path: Path) -> tuple[int | None, str]:
    """The emotion code of an ``_emotion.txt`` file, or (None, why)."""
    text = path.read_text(errors="replace").strip()
    try:
        value = float(text.split()[0])
    except (ValueError, IndexError):
        return None, f"{path}: emotion code {text[:30]!r} is not a number"
    if not value.is_integer() or int(value) not in EMOTION_CODES:
        return None, f"{path}: emotion code {value:g} is not one of 0-7"
    return int(value), ""


def read_facs(path: Path | None) -> str:
    """The AU numbers of a ``_facs.txt`` file as "1+2+5" ("" when absent or empty)."""
    if path is None:
        return ""
    aus = []
    for line in path.read_text(errors="replace").splitlines():
        parts = line.split()
        if parts:
            try:
                aus.append(str(int(float(parts[0]))))
            except ValueError:
                aus.append(parts[0])  # kept as written; the AU parser reports it
    return "+".join(aus)


def _one(folder: Path, suffix: str) -> Path | None:
    hits = sorted(folder.glob(f"*{suffix}")) if folder.is_dir() else []
    return hits[-1] if hits else None


def load_ckplus(root: str | os.PathLike, protocol: str = "ckplus-7", annotation=None,
                dataset: str = "ckplus") -> ClipTable:
    root = check_root(root)
    proto = get_protocol(protocol)
    frames_root, labels_root, facs_root = _top(root, "frames"), _top(root, "labels"), _top(root, "facs")
    if frames_root is None:
        raise FileNotFoundError(f"{root}: no cohn-kanade-images/ folder (frames S005/001/S005_001_00000001.png)")
    if labels_root is None:
        raise FileNotFoundError(f"{root}: no Emotion/ folder (labels S005/001/S005_001_000000NN_emotion.txt)")
    build = TableBuilder(dataset, proto)
    for subject_dir in _visible_dirs(frames_root):
        for seq_dir in _visible_dirs(subject_dir):
            subject, seq = subject_dir.name, seq_dir.name
            pattern = rf"{re.escape(subject)}_{re.escape(seq)}_(\d+)\.png"
            numbers = list(numbered_frames(seq_dir, pattern))
            label_file = _one(labels_root / subject / seq, "_emotion.txt")
            rec = Record(row=f"{subject}/{seq}", subject=subject, clip=seq, emotion=None,
                         onset=numbers[0] if numbers else None, apex=numbers[-1] if numbers else None,
                         offset=numbers[-1] if numbers else None,
                         au=read_facs(_one(facs_root / subject / seq, "_facs.txt") if facs_root else None),
                         frame_dir=seq_dir, pattern=pattern, fps=FPS)
            if label_file is None:
                build.drop(rec, "no emotion label (CK+ labels 327 of its 593 sequences)")
                continue
            code, why = read_code(label_file)
            if code is None:
                build.drop(rec, why)
                continue
            rec.emotion = EMOTION_CODES[code]
            if not numbers:
                build.drop(rec, f"no frames matching {pattern} in {seq_dir}")
                continue
            build.add(rec)
    return build.table(root, {"frames": str(frames_root), "labels": str(labels_root),
                              "facs": str(facs_root) if facs_root else "absent"})
