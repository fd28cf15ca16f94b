"""The clip table: one row per usable clip, plus the rows a loader could not use.

Shared helpers every loader needs: numbered frame listing (sorted by number, never
lexically), the onset..offset check, apex estimation and the summary printed by
``mer data check``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

CLIP_COLUMNS = ["dataset", "subject", "clip", "frame_dir", "frames", "onset", "apex", "offset", "fps",
                "aus", "au_raw", "au_uncertain", "emotion", "label", "apex_estimated", "notes"]
DROP_COLUMNS = ["dataset", "row", "subject", "clip", "emotion", "reason"]


@dataclass
class ClipTable:
    """``clips``: one row per usable clip; ``dropped``: one row per unusable row, with a reason."""
    dataset: str
    protocol: str
    classes: tuple[str, ...]
    clips: pd.DataFrame
    dropped: pd.DataFrame
    root: Path | None = None
    source: dict = field(default_factory=dict)  # which sheet / frame tree was read

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def class_counts(self) -> pd.Series:
        counts = self.clips["label"].value_counts().reindex(range(len(self.classes)), fill_value=0)
        counts.index = list(self.classes)
        return counts

    def summary(self) -> str:
        lines = [f"dataset {self.dataset}  protocol {self.protocol}  root {self.root}"]
        for k, v in self.source.items():
            lines.append(f"  {k}: {v}")
        lines.append(f"clips: {len(self.clips)}   subjects: {self.clips['subject'].nunique()}   "
                     f"dropped rows: {len(self.dropped)}")
        lines.append("class counts: " + ", ".join(f"{k} {v}" for k, v in self.class_counts().items()))
        est = int(self.clips["apex_estimated"].sum()) if len(self.clips) else 0
        if est:
            lines.append(f"apex estimated (not annotated): {est} clips")
        for _, d in self.dropped.iterrows():
            lines.append(f"  dropped row {d['row']} ({d['subject']} {d['clip']}, {d['emotion']}): {d['reason']}")
        return "\n".join(lines)


def numbered_frames(folder: Path, pattern: str) -> dict[int, str]:
    """Map frame number -> file name for files matching ``pattern`` (one int group)."""
    rx = re.compile(pattern)
    out: dict[int, str] = {}
    for p in folder.iterdir():
        m = rx.fullmatch(p.name)
        if m:
            out[int(m.group(1))] = p.name
    return dict(sorted(out.items()))


def clip_frames(folder: Path, pattern: str, onset: int, offset: int) -> tuple[list[str] | None, str]:
    """File paths for frames onset..offset, or (None, reason) when any is missing.

    Works whether the folder holds exactly onset..offset or the whole video.
    """
    if not folder.is_dir():
        return None, f"frame folder missing: {folder}"
    frames = numbered_frames(folder, pattern)
    if not frames:
        return None, f"no frames matching {pattern} in {folder}"
    missing = [n for n in range(onset, offset + 1) if n not in frames]
    if missing:
        return None, (f"{len(missing)} of {offset - onset + 1} frames onset..offset missing in {folder} "
                      f"(first missing {missing[0]}; folder has {min(frames)}..{max(frames)})")
    return [str(folder / frames[n]) for n in range(onset, offset + 1)], ""


def estimate_apex(frames: list[str], onset: int, size: int = 64) -> int:
    """Frame number whose grey image differs most from the onset frame (mean abs diff)."""
    def grey(path: str) -> np.ndarray:
        img = cv2.imread(path, cv2.IMREAD_GRAYSCALE)
        if img is None:
            raise ValueError(f"{path}: unreadable image")
        return cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32)
    ref = grey(frames[0])
    scores = [float(np.abs(grey(f) - ref).mean()) for f in frames]
    return onset + int(np.argmax(scores))


def as_int(value: object) -> int | None:
    """An integer cell (int, 12.0, '12') or None for blank, '/', text."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return None if np.isnan(value) or not float(value).is_integer() else int(value)
    text = str(value).strip()
    return int(text) if re.fullmatch(r"\d+", text) else None


def subject_id(value: object, prefix: str, width: int) -> str | None:
    """Normalise a subject cell to ``{prefix}{n:0{width}d}``: 6, 6.0, "6", "006" and
    "{prefix}6" all give the same id; anything else is None (the loader reports it)."""
    n = as_int(value)
    if n is None and value is not None:
        m = re.fullmatch(rf"(?:{re.escape(prefix)})?0*(\d+)", str(value).strip(), re.IGNORECASE)
        n = int(m.group(1)) if m else None
    return None if n is None else f"{prefix}{n:0{width}d}"


def make_tables(rows: list[dict], drops: list[dict], extra: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    columns = CLIP_COLUMNS + list(extra or [])
    clips = pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)
    if rows:
        clips = clips.astype({"onset": int, "apex": int, "offset": int, "label": int, "fps": float})
        clips = clips.sort_values(["subject", "clip"], kind="stable").reset_index(drop=True)
    dropped = pd.DataFrame(drops, columns=DROP_COLUMNS)
    return clips, dropped


def read_sheet(path: Path, required: list[str], header_row: int = 0, sheet_name: str | int = 0,
               optional: list[str] | None = None) -> pd.DataFrame:
    """Read an annotation sheet, match columns by name (case/space-insensitive), drop extras.

    ``optional`` columns are kept when present (filled with None otherwise). Raises a
    ValueError naming the file and the missing columns.
    """
    try:
        raw = pd.read_excel(path, sheet_name=sheet_name, header=header_row, dtype=object)
    except Exception as exc:  # openpyxl/pandas give many exception types for a bad file
        raise ValueError(f"{path}: cannot read as an Excel sheet ({exc})") from exc
    norm = {re.sub(r"\s+", "", str(c)).lower(): c for c in raw.columns}
    missing = [c for c in required if re.sub(r"\s+", "", c).lower() not in norm]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; found {list(map(str, raw.columns))}")
    out = raw[[norm[re.sub(r"\s+", "", c).lower()] for c in required]].copy()
    out.columns = required
    for c in optional or []:
        key = re.sub(r"\s+", "", c).lower()
        out[c] = raw[norm[key]] if key in norm else None
    out.index = out.index + header_row + 2  # spreadsheet row numbers (1-based, after header)
    return out


def read_raw_sheet(path: Path, sheet_name: str | int = 0) -> pd.DataFrame:
    """A sheet without a header row (every cell as an object); errors name the file."""
    try:
        return pd.read_excel(path, sheet_name=sheet_name, header=None, dtype=object)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"{path}: cannot read as an Excel sheet ({exc})") from exc


def find_one(root: Path, pattern: str, what: str, annotation=None) -> Path:
    """The single file in ``root`` whose name matches ``pattern`` (regex, case-insensitive),
    or ``annotation`` when given; a clear error for none or several."""
    if annotation is not None:
        path = Path(annotation)
        if not path.is_absolute() and not path.exists():
            path = root / path
        if not path.is_file():
            raise FileNotFoundError(f"annotation sheet {path} does not exist")
        return path
    rx = re.compile(pattern, re.IGNORECASE)
    found = sorted(p for p in root.iterdir() if p.is_file() and rx.fullmatch(p.name) and not p.name.startswith("~$"))
    if not found:
        raise FileNotFoundError(f"{root}: no {what} sheet (looked for {pattern}); is this the right root? "
                                "(pass annotation= to name the sheet)")
    if len(found) > 1:
        raise ValueError(f"{root}: several candidate {what} sheets {[p.name for p in found]}; "
                         "pass annotation= to choose one")
    return found[0]


def check_root(root) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a directory")
    return root


BAD_FRAME = "unreadable frame"  # the start of a dropped row's reason when a frame of its clip cannot be read


def frame_problem(path: str | Path, decode: bool = False) -> str | None:
    """What is wrong with one frame file, or None: missing, empty, a JPEG or PNG cut short (no
    end marker), a BMP shorter than its header says; with ``decode`` also an image the decoder
    rejects. Without ``decode`` only the file's ends are read (cheap enough for every frame
    of every clip at each load); a truncated JPEG often still decodes, padded with grey, so
    the end marker is what catches it."""
    p = Path(path)
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(16)
            fh.seek(max(0, size - 64))
            tail = fh.read()
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if size == 0:
        return "empty file (0 bytes)"
    suffix = p.suffix.lower()
    if suffix in (".jpg", ".jpeg"):
        if not head.startswith(b"\xff\xd8"):
            return "not a JPEG (no start-of-image marker)"
        if b"\xff\xd9" not in tail.rstrip(b"\x00\r\n "):
            return "truncated JPEG (no end-of-image marker)"
    elif suffix == ".png" and b"IEND" not in tail:
        return "truncated PNG (no end chunk)"
    elif suffix == ".bmp" and len(head) >= 6 and head[:2] == b"BM" and int.from_bytes(head[2:6], "little") > size:
        return f"truncated BMP ({size} of the {int.from_bytes(head[2:6], 'little')} bytes its header declares)"
    if decode and cv2.imread(str(p), cv2.IMREAD_UNCHANGED) is None:
        return "not a readable image (the decoder rejects it)"
    return None


def clip_frame_problem(files: list[str], key: list[int]) -> tuple[str, str] | None:
    """The first bad frame of a clip, as (path, what is wrong): every file's ends are checked,
    the frames at positions ``key`` (onset, apex) are also decoded."""
    for i, f in enumerate(files):
        why = frame_problem(f, decode=i in key)
        if why:
            return f, why
    return None


def deep_check(clips: pd.DataFrame, workers: int | None = None, progress: bool = True) -> list[dict]:
    """Decode every frame of every clip (threads: the decoder releases the GIL), with a
    progress bar; one dict per frame that cannot be read: subject, clip, path, problem."""
    import os
    from concurrent.futures import ThreadPoolExecutor
    from mer.progress import tqdm
    jobs = [(r.subject, r.clip, f) for r in clips.itertuples() for f in r.frames]
    problems = []
    with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
        results = pool.map(lambda job: frame_problem(job[2], decode=True), jobs)
        for (subject, clip, path), why in tqdm(zip(jobs, results), total=len(jobs), desc="decoding frames",
                                               disable=not progress):
            if why:
                problems.append({"subject": subject, "clip": clip, "path": path, "problem": why})
    return problems
