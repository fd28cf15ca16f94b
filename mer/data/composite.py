"""MEGC 2019 composite (3 classes) from CASME II, SAMM and SMIC.

``load("composite", roots={"casme2": ..., "samm": ..., "smic": ...}, protocol="composite-3")``
loads each source with its composite mapping (CASME II: negative = disgust + repression;
SAMM: negative = anger, contempt, disgust, fear, sadness; positive = happiness; surprise;
others dropped; SMIC's own three folders), namespaces subjects by source
("casme2/sub01", "samm/006", "smic/s01") and keeps the source in ``source_dataset``.

With the challenge's official ``combined_3class_gt.csv`` (no header: dataset, subject,
filename, label 0 negative / 1 positive / 2 surprise) given as ``annotation=``, that file's
membership and labels are the truth: a derived clip not in the file is dropped with that
reason, a file entry with no usable derived clip is reported with the source's own
reason, and a label disagreement is noted on the clip (the file's label wins).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd

from mer.data.clips import ClipTable, DROP_COLUMNS
from mer.data.protocols import get_protocol

SOURCES = ("casme2", "samm", "smic")
SOURCE_PROTOCOL = {"casme2": "casme2-megc", "samm": "composite-3", "smic": "composite-3"}
# How the sources are spelled in the official file and in folder names (lower-cased).
SOURCE_ALIASES = {"casme2": "casme2", "casmeii": "casme2", "casme_ii": "casme2", "samm": "samm", "smic": "smic"}


def _norm_subject(source: str, value: object) -> str:
    """The official file's subject spelling (sub01, 6, s01) -> the loader's id."""
    from mer.data.casme2 import casme2_subject
    from mer.data.samm import samm_subject
    from mer.data.smic import smic_subject
    norm = {"casme2": casme2_subject, "samm": samm_subject, "smic": smic_subject}[source]
    return norm(value) or str(value).strip()


def _norm_clip(source: str, value: object) -> str:
    text = str(value).strip()
    if source == "smic":
        from mer.data.smic import smic_clip
        return smic_clip(text)
    return text


def read_official(path: str | os.PathLike) -> pd.DataFrame:
    """The official ground-truth file as (source, subject, clip, label) with normalised ids."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"official composite file {path} does not exist")
    raw = pd.read_csv(path, header=None, dtype=str, skipinitialspace=True)
    if raw.shape[1] < 4:
        raise ValueError(f"{path}: expected 4 columns (dataset, subject, filename, label), found {raw.shape[1]}")
    rows = []
    for i, r in raw.iterrows():
        key = re.sub(r"[\s\-]", "", str(r[0]).lower())
        source = SOURCE_ALIASES.get(key)
        if source is None:
            raise ValueError(f"{path} line {i + 1}: unknown dataset {r[0]!r} (expected casme2, samm or smic)")
        try:
            label = int(str(r[3]).strip())
        except ValueError:
            raise ValueError(f"{path} line {i + 1}: label {r[3]!r} is not 0, 1 or 2") from None
        if label not in (0, 1, 2):
            raise ValueError(f"{path} line {i + 1}: label {label} is not 0, 1 or 2")
        rows.append({"source": source, "subject": _norm_subject(source, r[1]), "clip": _norm_clip(source, r[2]),
                     "label": label, "line": i + 1})
    return pd.DataFrame(rows)


def load_composite(roots: dict[str, str | os.PathLike], protocol: str = "composite-3", annotation=None,
                   smic_variant: str = "HS") -> ClipTable:
    from mer.data import load
    proto = get_protocol(protocol)
    missing = [s for s in SOURCES if s not in (roots or {})]
    if missing:
        raise ValueError(f"the composite needs roots for {list(SOURCES)}; missing {missing} "
                         "(roots={'casme2': ..., 'samm': ..., 'smic': ...})")
    parts, drops = [], []
    for source in SOURCES:
        kw = {"variant": smic_variant} if source == "smic" else {}
        t = load(source, roots[source], protocol=SOURCE_PROTOCOL[source], **kw)
        if t.classes != proto.classes:
            raise ValueError(f"{source}: protocol {t.protocol} classes {t.classes} differ from {proto.classes}")
        c = t.clips.copy()
        c["source_dataset"] = source
        c["source_subject"] = c["subject"]
        c["subject"] = source + "/" + c["subject"].astype(str)
        c["dataset"] = "composite"
        parts.append(c)
        d = t.dropped.copy()
        d["subject"] = source + "/" + d["subject"].astype(str)
        d["row"] = source + ":" + d["row"].astype(str)
        d["dataset"] = "composite"
        drops.append(d)
    clips = pd.concat(parts, ignore_index=True)
    dropped = pd.concat(drops, ignore_index=True)
    source_info = {s: str(roots[s]) for s in SOURCES}
    if annotation is not None:
        clips, extra, summary = _apply_official(clips, dropped, read_official(annotation), proto.classes)
        dropped = pd.concat([dropped, extra], ignore_index=True)
        source_info["official"] = f"{annotation}: {summary}"
    clips["notes"] = clips["notes"].fillna("")
    clips = clips.sort_values(["subject", "clip"], kind="stable").reset_index(drop=True)
    return ClipTable("composite", proto.name, proto.classes, clips, dropped[DROP_COLUMNS].reset_index(drop=True),
                     None, source_info)


def _apply_official(clips: pd.DataFrame, dropped: pd.DataFrame, official: pd.DataFrame, classes):
    key = list(zip(clips["source_dataset"], clips["source_subject"], clips["clip"]))
    index = {k: i for i, k in enumerate(key)}
    wanted = {(r.source, r.subject, r.clip): r for r in official.itertuples()}
    keep, extra, relabelled = [], [], 0
    for k, i in index.items():
        if k in wanted:
            keep.append(i)
            file_label = wanted[k].label
            if clips.at[i, "label"] != file_label:
                derived = classes[clips.at[i, "label"]]
                clips.at[i, "label"] = file_label
                clips.at[i, "notes"] = "; ".join(filter(None, [clips.at[i, "notes"],
                                                   f"label {classes[file_label]} from the official file "
                                                   f"(derived: {derived})"]))
                relabelled += 1
        else:
            extra.append({"dataset": "composite", "row": f"{k[0]}:derived", "subject": f"{k[0]}/{k[1]}",
                          "clip": k[2], "emotion": clips.at[i, "emotion"],
                          "reason": "not in the official combined_3class_gt.csv"})
    absent = 0
    for k, r in wanted.items():
        if k in index:
            continue
        absent += 1
        subj = f"{k[0]}/{k[1]}"
        why = dropped[(dropped["subject"] == subj) & (dropped["clip"] == k[2])]["reason"].tolist()
        reason = why[0] if why else "no such clip in the release's annotation or frames"
        extra.append({"dataset": "composite", "row": f"official:{r.line}", "subject": subj, "clip": k[2],
                      "emotion": classes[r.label], "reason": f"in the official file but not loadable: {reason}"})
    summary = (f"{len(official)} entries; {len(keep)} matched, {relabelled} relabelled, "
               f"{len(index) - len(keep)} derived clips not in the file, {absent} file entries not loadable")
    return clips.iloc[sorted(keep)].reset_index(drop=True), pd.DataFrame(extra, columns=DROP_COLUMNS), summary
