"""The checks every loader applies to an annotation, in one place.

A loader turns each annotation (sheet row or folder) into a :class:`Record`; the
:class:`TableBuilder` then either adds it to ``.clips`` or reports it in ``.dropped``
with the reason: unreadable subject, duplicate, emotion outside the protocol, unusable
onset/offset, missing frames, apex outside onset..offset, a frame that cannot be read (an
empty file, a JPEG cut short, an onset or apex the decoder rejects). A missing apex is estimated
from the frames and flagged. AU strings are parsed, unreadable parts noted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mer.data.aus import parse_aus
from mer.data.clips import (BAD_FRAME, CLIP_COLUMNS, ClipTable, clip_frame_problem, clip_frames, estimate_apex,
                            frame_problem, make_tables)
from mer.data.protocols import Protocol, normalise_emotion


@dataclass
class Record:
    row: object  # spreadsheet row number, or the folder the annotation came from
    subject: str | None
    clip: str | None
    emotion: object
    onset: int | None
    apex: int | None  # None: not annotated, estimate it
    offset: int | None
    au: object
    frame_dir: Path | None
    pattern: str  # regex with one group: the frame number
    fps: float
    apex_raw: object = None  # the cell as written, for the note when apex is estimated
    extra: dict = field(default_factory=dict)  # dataset-specific columns
    notes: list[str] = field(default_factory=list)
    has_aus: bool = True  # False for datasets without AU coding (SMIC): no "AUs unknown" note
    still: bool = False  # a single image (onset = apex = offset), e.g. MMEW's macro stills


class TableBuilder:
    def __init__(self, dataset: str, protocol: Protocol):
        self.dataset, self.protocol = dataset, protocol
        self.rows: list[dict] = []
        self.drops: list[dict] = []
        self.seen: set[tuple[str, str]] = set()

    def drop(self, rec: Record, reason: str) -> None:
        self.drops.append({"dataset": self.dataset, "row": rec.row, "subject": rec.subject, "clip": rec.clip,
                           "emotion": normalise_emotion(rec.emotion), "reason": reason})

    def add(self, rec: Record) -> bool:
        """Apply every check; returns True when the record became a clip."""
        emotion = normalise_emotion(rec.emotion)
        if rec.subject is None:
            self.drop(rec, "unreadable subject")
            return False
        if not rec.clip:
            self.drop(rec, "empty clip name")
            return False
        if (rec.subject, rec.clip) in self.seen:
            self.drop(rec, "duplicate of an earlier annotation (same subject and clip)")
            return False
        label = self.protocol.label_of(emotion)
        if label is None:
            self.drop(rec, f"emotion {emotion!r} not in protocol {self.protocol.name}")
            return False
        if rec.onset is None or rec.offset is None or rec.offset < rec.onset or (rec.offset == rec.onset
                                                                                   and not rec.still):
            self.drop(rec, f"onset/offset unusable (onset={rec.onset!r}, offset={rec.offset!r})")
            return False
        if rec.frame_dir is None:
            self.drop(rec, "no frame folder for this annotation")
            return False
        files, why = clip_frames(Path(rec.frame_dir), rec.pattern, rec.onset, rec.offset)
        if files is None:
            self.drop(rec, why)
            return False
        apex, estimated = rec.apex, False
        if apex is not None and not rec.onset <= apex <= rec.offset:
            self.drop(rec, f"apex {apex} outside onset..offset {rec.onset}..{rec.offset}")
            return False
        # a clip with a frame that cannot be read is dropped with the file and the reason, never
        # run with a substitute (every frame's ends checked; onset and apex decoded)
        bad = clip_frame_problem(files, [0] if apex is None else [0, apex - rec.onset])
        if bad:
            self.drop(rec, f"{BAD_FRAME} {bad[0]}: {bad[1]}")
            return False
        if apex is None:
            apex, estimated = estimate_apex(files, rec.onset), True
            path = files[apex - rec.onset]  # its ends were checked above; now decoded too
            why = frame_problem(path, decode=True)
            if why:
                self.drop(rec, f"{BAD_FRAME} {path}: {why}")
                return False
        au = parse_aus(rec.au)
        notes = list(rec.notes)
        if au.unknown and rec.has_aus:
            notes.append(f"AUs unknown ({au.raw!r})")
        if au.unparsed:
            notes.append(f"AU text not understood: {au.unparsed!r}")
        if estimated:
            what = "apex not annotated" if rec.apex_raw is None else f"apex not annotated ({rec.apex_raw!r})"
            notes.append(f"{what}; estimated")
        self.seen.add((rec.subject, rec.clip))
        self.rows.append({"dataset": self.dataset, "subject": rec.subject, "clip": rec.clip,
                          "frame_dir": str(rec.frame_dir), "frames": files, "onset": rec.onset, "apex": apex,
                          "offset": rec.offset, "fps": rec.fps, "aus": au.aus, "au_raw": au.raw,
                          "au_uncertain": au.uncertain, "emotion": emotion, "label": label,
                          "apex_estimated": estimated, "notes": "; ".join(notes), **rec.extra})
        return True

    def table(self, root: Path | None, source: dict) -> ClipTable:
        extra = [k for r in self.rows for k in r if k not in CLIP_COLUMNS]
        clips, dropped = make_tables(self.rows, self.drops, list(dict.fromkeys(extra)))
        return ClipTable(self.dataset, self.protocol.name, self.protocol.classes, clips, dropped, root, source)
