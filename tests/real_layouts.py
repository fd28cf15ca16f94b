"""Fixture trees in each real release's exact layout (../shared/DATASETS.md), with real faces.

The frames come from a small SynthME set (identities made from a real face photo, which
dlib detects), re-laid in each release's folders, file names, frame numbering and image
format (SAMM greyscale JPEG, SMIC BMP, CK+ PNG), with each release's annotation sheet
written with its documented columns and quirks. Emotions are assigned round robin over
each dataset's own labels, so every class of every protocol has clips: these trees check
that a setup runs end to end, not what a method learns.

``build_all(root)`` writes every tree once and returns where each is, plus the extra
parameters a run needs (the composite's official csv, the pre-training sources).
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import pandas as pd

from mer.data.synth import SynthConfig, generate, is_generated
from tests.conftest import casme2_sheet
from tests.datasets import CASME3_HEADER, xlsx

# 4 subjects x 6 clips of 12-16 frames at 160 px: about 6 s to generate on 2 cores.
SOURCE = SynthConfig(subjects=4, clips_per_subject=6, size=160, frames=(12, 16), seed=7, amplitude=(2.0, 4.0))


@dataclass
class Clip:
    subject: int  # 1..4
    index: int  # 0..23 over the whole set
    frames: list[Path]  # onset..offset, in order
    onset: int
    apex: int
    offset: int
    aus: str

    @property
    def apex_pos(self) -> int:
        return self.apex - self.onset


def source_clips(root: Path) -> list[Clip]:
    """The SynthME clips every tree is made from (generated into ``root`` once)."""
    if not is_generated(root):
        generate(root, SOURCE, progress=False)
    sheet = pd.read_excel(root / "CASME2-coding-synth.xlsx")
    clips = []
    for i, r in enumerate(sheet.itertuples(index=False)):
        folder = root / "CASME2_RAW_selected" / f"sub{int(r.Subject):02d}" / r.Filename
        frames = [folder / f"img{n}.jpg" for n in range(int(r.OnsetFrame), int(r.OffsetFrame) + 1)]
        clips.append(Clip(int(r.Subject), i, frames, int(r.OnsetFrame), int(r.ApexFrame), int(r.OffsetFrame),
                          str(r[5])))
    return clips


def put(frames: list[Path], folder: Path, names: list[str], grey: bool = False) -> None:
    """Write ``frames`` into ``folder`` under ``names``, converted to the names' format
    (JPEG frames are copied as they are unless ``grey``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for src, name in zip(frames, names):
        dest = folder / name
        if dest.suffix == ".jpg" and not grey:
            shutil.copyfile(src, dest)
            continue
        img = cv2.imread(str(src), cv2.IMREAD_GRAYSCALE if grey else cv2.IMREAD_COLOR)
        cv2.imwrite(str(dest), img)


def cycle(labels: list[str], i: int) -> str:
    return labels[i % len(labels)]


# ----------------------------------------------------------------------------- CASME II
CASME2_EMOTIONS = ["happiness", "disgust", "repression", "surprise", "others"]
MEGC = {"disgust": 0, "repression": 0, "anger": 0, "contempt": 0, "fear": 0, "sadness": 0, "happiness": 1,
        "surprise": 2}


def casme2_tree(root: Path, clips: list[Clip]) -> list[tuple]:
    """``CASME2_RAW_selected/subXX/<Filename>/img{N}.jpg`` and ``CASME2-coding-20140508.xlsx``
    (two unnamed columns; an apex written "/", an AU cell "?", a sadness row, a row whose
    folder is missing). Returns the MEGC entries (dataset, subject, filename, label)."""
    rows, megc = [], []
    for c in clips:
        name = f"EP{c.index + 1:02d}_0{c.subject}"
        emotion = cycle(CASME2_EMOTIONS, c.index)
        put(c.frames, root / "CASME2_RAW_selected" / f"sub{c.subject:02d}" / name,
            [f"img{n}.jpg" for n in range(c.onset, c.offset + 1)])
        apex = "/" if c.index == 3 else c.apex
        rows.append([c.subject, name, c.onset, apex, c.offset, "?" if c.index == 4 else c.aus, emotion])
        if emotion in MEGC:
            megc.append(("casme2", f"sub{c.subject:02d}", name, MEGC[emotion]))
    rows.append([1, "EP99_09", 10, 12, 15, "4", "sadness"])  # outside casme2-5
    first = clips[0]  # a copy of the first clip whose apex lies after its offset
    put(first.frames, root / "CASME2_RAW_selected" / f"sub{first.subject:02d}" / "EP98_01",
        [f"img{n}.jpg" for n in range(first.onset, first.offset + 1)])
    rows.append([first.subject, "EP98_01", first.onset, first.offset + 4, first.offset, first.aus, "happiness"])
    rows.append([9, "EP30_01", 10, 12, 15, "4", "disgust"])  # no frame folder
    casme2_sheet(rows, root / "CASME2-coding-20140508.xlsx")
    return megc


# ----------------------------------------------------------------------------- SAMM
SAMM_EMOTIONS = ["Anger", "Happiness", "Surprise", "Contempt", "Other", "Disgust", "Fear", "Others"]
SAMM_HEADER = ["Subject", "Filename", "Inducement Code", "Onset Frame", "Apex Frame", "Offset Frame", "Duration",
               "Micro", "Action Units", "Estimated Emotion", "Objective Classes", "Notes"]


def samm_tree(root: Path, clips: list[Clip]) -> list[tuple]:
    """``SAMM/{subject}/{filename}/{subject}_{frame:05d}.jpg`` (greyscale) and
    ``SAMM_Micro_FACS_Codes_v2.xlsx`` with its preamble above the header row; subjects
    written 6 and "007"; "Other" and "Others"; "or" and intensity letters in AUs."""
    rows, megc = [], []
    for c in clips:
        sid = f"{c.subject + 5:03d}"
        name = f"{sid}_{c.index % 6 + 1}_{c.subject}"
        emotion = cycle(SAMM_EMOTIONS, c.index)
        first = 5000 + c.onset
        put(c.frames, root / "SAMM" / sid / name, [f"{sid}_{first + k:05d}.jpg" for k in range(len(c.frames))],
            grey=True)
        aus = {1: "R12A or 14A", 2: "AU4 + R12C"}.get(c.index, c.aus)
        subject = int(sid) if c.subject % 2 else sid
        rows.append([subject, name, 1, first, first + c.apex_pos, first + len(c.frames) - 1, len(c.frames),
                     "Micro - 1/2", aus, emotion, "I", None])
        if emotion.lower() in MEGC:
            megc.append(("samm", str(int(sid)), name, MEGC[emotion.lower()]))
    rows.append([20, "020_1_1", 1, 1, 2, 3, 3, "Micro - 1/2", "1", "Surprise", "VI", None])  # no frames
    xlsx(root / "SAMM_Micro_FACS_Codes_v2.xlsx", [["SAMM micro-movement FACS codes"],
                                                  ["Coded by two FACS coders."], [], SAMM_HEADER, *rows])
    return megc


# ----------------------------------------------------------------------------- SMIC
SMIC_EMOTIONS = [("negative", "ne"), ("positive", "po"), ("surprise", "sur")]


def smic_tree(root: Path, clips: list[Clip]) -> list[tuple]:
    """``SMIC_all_cropped/HS/s1/micro/{negative,positive,surprise}/s1_ne_01/reg_{N:05d}.bmp``
    (HS at 100 fps: every other frame of the 200 fps source); no sheet, apex not annotated."""
    megc = []
    for c in clips:
        emotion, short = cycle(SMIC_EMOTIONS, c.index)
        name = f"s{c.subject}_{short}_{c.index + 1:02d}"
        frames = c.frames[::2]
        put(frames, root / "SMIC_all_cropped" / "HS" / f"s{c.subject}" / "micro" / emotion / name,
            [f"reg_{k + 1:05d}.bmp" for k in range(len(frames))])
        megc.append(("smic", f"s{c.subject:02d}", f"s{c.subject:02d}_{short}_{c.index + 1:02d}",
                     ["negative", "positive", "surprise"].index(emotion)))
    return megc


# ----------------------------------------------------------------------------- CAS(ME)^2
CASME_SQ_SUBJECTS = {1: "s15", 2: "s16", 3: "s19", 4: "s20"}
CASME_SQ_VIDEOS = [("disgust1", "0101disgustingteeth"), ("disgust2", "0102eatingworms"),
                   ("anger1", "0401girlcrashing"), ("anger2", "0402beatingpregnantwoman"),
                   ("happy1", "0502funnyerrors"), ("happy2", "0503unnyfarting")]
CASME_SQ_CATEGORY = [("negative", "disgust"), ("positive", "happyiness"), ("surprise", "surprise"),
                     ("others", "others")]
PAD = 5  # frames of the long video before and after each expression


def casme_sq_tree(root: Path, clips: list[Clip]) -> None:
    """``rawpic/s15/15_0101disgustingteeth/img{N}.jpg`` long videos (each expression with
    frames before and after it) and ``CAS(ME)^2code_final.xlsx`` without a header; the
    "happyiness" typo; an offset 0 row; a macro-expression row."""
    rows = []
    for c in clips:
        folder = CASME_SQ_SUBJECTS[c.subject]
        prefix, video = CASME_SQ_VIDEOS[c.index % 6]
        frames = [c.frames[0]] * PAD + c.frames + [c.frames[-1]] * PAD
        put(frames, root / "rawpic" / folder / f"{folder[1:]}_{video}", [f"img{n + 1}.jpg" for n in range(len(frames))])
        category, emotion = cycle(CASME_SQ_CATEGORY, c.index)
        onset = PAD + 1
        rows.append([c.subject, f"{prefix}_1", onset, onset + c.apex_pos, onset + len(c.frames) - 1, c.aus, category,
                     "micro-expression", emotion])
    first = clips[0]
    rows.append([first.subject, f"{CASME_SQ_VIDEOS[0][0]}_2", 1, 3, len(first.frames) + 2 * PAD, "12", "positive",
                 "macro-expression", "happy"])
    rows.append([first.subject, f"{CASME_SQ_VIDEOS[0][0]}_3", 2, 4, 0, "4", "negative", "micro-expression",
                 "disgust"])  # offset 0: unknown
    xlsx(root / "CAS(ME)^2code_final.xlsx", rows)


# ----------------------------------------------------------------------------- CAS(ME)^3
CASME3_SUBJECTS = {1: "spNO.1", 2: "spNO.2", 3: "spNO.3", 4: "spNO.5"}
CASME3_EMOTIONS = ["disgust", "surprise", "others", "fear", "anger", "sad", "happy", "Others"]
CASME3_MACRO = "cas(me)3_part_A_MaE_label.xlsx"


def casme3_tree(root: Path, clips: list[Clip]) -> Path:
    """``{Subject}/{Filename}/color/{frame}.jpg`` with two micro-expressions in one video
    (clip ids ``{Filename}_{Onset}``), ``cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx`` (sheet
    ``label``), an apex outside onset..offset, and the macro-expression sheet for
    pre-training. Returns the macro sheet."""
    micro, macro = [CASME3_HEADER], [CASME3_HEADER]
    for c in clips:
        subject = CASME3_SUBJECTS[c.subject]
        video = "abc"[c.index % 6 // 2]  # two expressions per video
        start = 1 + 100 * (c.index % 2)
        put(c.frames, root / subject / video / "color", [f"{start + k}.jpg" for k in range(len(c.frames))])
        end = start + len(c.frames) - 1
        apex = end + 3 if c.index == 5 else start + c.apex_pos
        micro.append([subject, video, start, apex, end, c.aus, 1, cycle(CASME3_EMOTIONS, c.index)])
        macro.append([subject, video, start, start + c.apex_pos, end, c.aus, 1, cycle(CASME3_EMOTIONS[:7],
                                                                                       c.index + 3)])
    xlsx(root / "cas(me)3_part_A_ME_label_JpgIndex_v2.xlsx", micro, sheet="label")
    return xlsx(root / CASME3_MACRO, macro)


# ----------------------------------------------------------------------------- MMEW
MMEW_EMOTIONS = ["happiness", "surprise", "disgust", "fear", "sadness", "others", "anger"]
MMEW_CODES = {"happiness": "01", "surprise": "02", "disgust": "03", "others": "04", "fear": "05", "sadness": "06",
              "anger": "07"}
MMEW_MACRO_EMOTIONS = ["anger", "disgust", "fear", "happiness", "sadness", "surprise"]


def mmew_tree(root: Path, clips: list[Clip]) -> None:
    """``Micro_Expression/{emotion}/{Filename}/{frame}.jpg`` (numbered from 1) with
    ``MMEW_Micro_Exp.xlsx`` (Subject as 1 or "S02"; one clip filed under another emotion's
    folder), and the macro-expression stills ``Macro_Expression/S01/{emotion}/S01-EE-00k.jpg``."""
    header = ["Subject", "Filename", "OnsetFrame", "ApexFrame", "OffsetFrame", "Action Units", "Estimated Emotion",
              "remarks"]
    rows = [header]
    for c in clips:
        emotion = cycle(MMEW_EMOTIONS, c.index)
        name = f"S{c.subject:02d}-{MMEW_CODES[emotion]}-{c.index + 1:03d}"
        folder_emotion = "others" if c.index == 2 else emotion  # filed under another emotion
        put(c.frames, root / "Micro_Expression" / folder_emotion / name,
            [f"{k + 1}.jpg" for k in range(len(c.frames))])
        rows.append([c.subject if c.subject % 2 else f"S{c.subject:02d}", name, 1, 1 + c.apex_pos, len(c.frames),
                     c.aus, emotion, "slightly blurred" if c.index == 1 else None])
    xlsx(root / "MMEW_Micro_Exp.xlsx", rows)
    for c in clips:  # stills: the apex frames of the micro clips' faces, two per subject and emotion
        emotion = cycle(MMEW_MACRO_EMOTIONS, c.index)
        for k in range(2):
            still = c.frames[min(c.apex_pos + k, len(c.frames) - 1)]
            name = f"S{c.subject:02d}-{MMEW_CODES[emotion]}-{c.index // 6 * 2 + k + 1:03d}.jpg"
            put([still], root / "Macro_Expression" / f"S{c.subject:02d}" / emotion, [name])


# ----------------------------------------------------------------------------- CK+
CKPLUS_SUBJECTS = {1: "S005", 2: "S010", 3: "S011", 4: "S014"}


def ckplus_tree(root: Path, clips: list[Clip]) -> None:
    """``cohn-kanade-images/S005/001/S005_001_00000001.png`` (neutral first, peak last: the
    onset..apex frames), ``Emotion/.../S005_001_000000NN_emotion.txt`` (one float code) for
    all but one sequence per subject (an empty folder: no label), ``FACS/..._facs.txt``
    (AU and intensity per line), and a stray ``.DS_Store``."""
    for c in clips:
        subject, seq = CKPLUS_SUBJECTS[c.subject], f"{c.index % 6 + 1:03d}"
        frames = c.frames[:c.apex_pos + 1]
        names = [f"{subject}_{seq}_{k + 1:08d}.png" for k in range(len(frames))]
        put(frames, root / "cohn-kanade-images" / subject / seq, names)
        last = Path(names[-1]).stem
        emotion_dir = root / "Emotion" / subject / seq
        emotion_dir.mkdir(parents=True, exist_ok=True)
        if c.index % 6 != 5:
            (emotion_dir / f"{last}_emotion.txt").write_text(f"   {float(c.index % 7 + 1):.7e}\n")
        facs = root / "FACS" / subject / seq
        facs.mkdir(parents=True, exist_ok=True)
        (facs / f"{last}_facs.txt").write_text("".join(f"   {float(a):.7e}   {0.0:.7e}\n"
                                                        for a in c.aus.replace("?", "").split("+") if a.isdigit()))
    (root / "cohn-kanade-images" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")


IMAGE_SUFFIXES = {".jpg", ".bmp", ".png"}


def break_frames(tree: Path, skip: tuple[str, ...] = ()) -> dict[str, Path]:
    """The faults a real copy of a release can hold, put into a micro-expression tree: one
    frame cut to half its bytes (a truncated JPEG or BMP), one empty frame (0 bytes), and one
    clip whose every frame is a flat grey picture with no face to detect. Returns which file
    or folder got which fault; folders under a name in ``skip`` (clips the protocol leaves out) are
    not touched."""
    def frames(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)

    # clip folders (a still's single image is no clip)
    folders = [f for f in sorted({p.parent for p in tree.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES})
               if len(frames(f)) >= 4 and not set(skip) & set(f.relative_to(tree).parts)]
    faults = {}
    cut = frames(folders[1])[2]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    faults["truncated"] = cut
    empty = frames(folders[2])[2]
    empty.write_bytes(b"")
    faults["empty"] = empty
    for frame in frames(folders[3]):
        img = cv2.imread(str(frame), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(frame), img * 0 + 128)
    faults["no face"] = folders[3]
    return faults


def build_all(root: Path) -> dict[str, dict]:
    """Every tree under ``root``; per dataset id, the parameters a run on it needs. Each
    micro-expression tree holds the faults of :func:`break_frames`, and CASME II's and
    CAS(ME)^3's sheets an apex outside onset..offset: the runs must complete without those
    clips, each dropped with its reason."""
    clips = source_clips(root / "source")
    trees = {name: root / name for name in ("casme2", "samm", "smic", "casme_sq", "casme3", "mmew", "composite",
                                            "ckplus")}
    casme2_tree(trees["casme2"], clips)
    samm_tree(trees["samm"], clips)
    smic_tree(trees["smic"], clips)
    casme_sq_tree(trees["casme_sq"], clips)
    casme3_macro = casme3_tree(trees["casme3"], clips)
    mmew_tree(trees["mmew"], clips)
    ckplus_tree(trees["ckplus"], clips)
    comp = trees["composite"]
    megc = (casme2_tree(comp / "CASME2", clips) + samm_tree(comp / "SAMM", clips) + smic_tree(comp / "SMIC", clips))
    for name in ("casme2", "samm", "smic", "casme_sq", "casme3"):
        break_frames(trees[name])
    # not the macro stills (p3's pre-training source), nor clips mmew-5 leaves out anyway
    break_frames(trees["mmew"] / "Micro_Expression", skip=("anger", "others"))
    for part in ("CASME2", "SAMM", "SMIC"):
        break_frames(comp / part)
    megc[0] = (*megc[0][:3], (megc[0][3] + 1) % 3)  # the official file disagrees with one derived label
    official = comp / "combined_3class_gt.csv"
    pd.DataFrame(megc[:-1]).to_csv(official, header=False, index=False)  # and leaves out one clip
    # What each dataset's runs need beyond data_root: the composite's official file, and a
    # pre-training source for p3 (the paper's: CK+ for SAMM, MMEW's macro part for MMEW).
    macro_casme3 = {"macro_root": str(trees["casme3"]), "macro_annotation": str(casme3_macro)}
    return {
        "casme2": {"data_root": str(trees["casme2"]), **macro_casme3},
        "samm": {"data_root": str(trees["samm"]), "macro_root": str(trees["ckplus"])},
        "smic": {"data_root": str(trees["smic"])},
        "casme_sq": {"data_root": str(trees["casme_sq"])},
        "casme3": {"data_root": str(trees["casme3"]), **macro_casme3},
        "mmew": {"data_root": str(trees["mmew"]), "macro_root": str(trees["mmew"])},
        "composite": {"data_root": str(comp), "annotation": str(official)},
    }
