"""Named class protocols: which raw emotion labels map to which class index.

A protocol maps normalised (lower-case, stripped) emotion strings to class names; rows
whose emotion is not in the map are dropped by the loader with the reason
"emotion '<x>' not in protocol <name>".
"""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Protocol:
    name: str
    classes: tuple[str, ...]
    mapping: dict[str, str]  # normalised raw emotion -> class name

    def label_of(self, emotion: object) -> int | None:
        """Class index of a raw emotion string, or None when the protocol drops it."""
        key = normalise_emotion(emotion)
        cls = self.mapping.get(key)
        return None if cls is None else self.classes.index(cls)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def normalise_emotion(emotion: object) -> str:
    text = "" if emotion is None else str(emotion).strip().lower()
    return " ".join(text.split())


def _identity(*names: str, **aliases: str) -> dict[str, str]:
    mapping = {n: n for n in names}
    mapping.update({k.replace("_", " "): v for k, v in aliases.items()})
    return mapping


_FIVE = ("happiness", "disgust", "repression", "surprise", "others")
_NPS = ("negative", "positive", "surprise")

PROTOCOLS: dict[str, Protocol] = {
    # CASME II 5 classes; sadness and fear are dropped (and reported).
    "casme2-5": Protocol("casme2-5", _FIVE, _identity(*_FIVE, other="others")),
    # SynthME uses CASME II's five classes.
    "synth-5": Protocol("synth-5", _FIVE, _identity(*_FIVE, other="others")),
    # SAMM 5 classes: anger, contempt, happiness, surprise, others ("Other" and "Others").
    "samm-5": Protocol("samm-5", ("anger", "contempt", "happiness", "surprise", "others"),
                       _identity("anger", "contempt", "happiness", "surprise", "others", other="others")),
    # SMIC: its three folder labels.
    "smic-3": Protocol("smic-3", _NPS, _identity(*_NPS)),
    # MEGC 2019 composite: negative = repression, anger, contempt, disgust, fear, sadness;
    # positive = happiness; surprise; others dropped. Each source keeps its own emotions, so
    # CASME II's negative is disgust + repression only (it has no anger or contempt, and
    # its sadness/fear clips are not in the official composite: see casme2-megc).
    "composite-3": Protocol("composite-3", _NPS, {
        "negative": "negative", "positive": "positive", "surprise": "surprise",
        "repression": "negative", "anger": "negative", "contempt": "negative", "disgust": "negative",
        "fear": "negative", "sadness": "negative", "happiness": "positive"}),
    # CASME II's part of the composite: only disgust and repression count as negative.
    "casme2-megc": Protocol("casme2-megc", _NPS, {"disgust": "negative", "repression": "negative",
                                                  "happiness": "positive", "surprise": "surprise"}),
    # CAS(ME)^3 part A: the seven emotions, and 4 classes.
    "casme3-7": Protocol("casme3-7", ("disgust", "surprise", "others", "fear", "anger", "sad", "happy"),
                         _identity("disgust", "surprise", "others", "fear", "anger", "sad", "happy",
                                   other="others")),
    "casme3-4": Protocol("casme3-4", ("negative", "positive", "surprise", "others"), {
        "disgust": "negative", "fear": "negative", "anger": "negative", "sad": "negative",
        "happy": "positive", "surprise": "surprise", "others": "others", "other": "others"}),
    # CAS(ME)^2 by its category column.
    "casme_sq-4": Protocol("casme_sq-4", ("negative", "positive", "surprise", "others"),
                           _identity("negative", "positive", "surprise", "others", other="others")),
    # SAMM as in the TDSGCN paper (p3, after Ben et al.'s survey): five emotions, 72 clips
    # (happiness 24, surprise 13, anger 20, disgust 8, fear 7); others, contempt, sadness dropped.
    "samm-p3": Protocol("samm-p3", ("happiness", "surprise", "anger", "disgust", "fear"),
                        _identity("happiness", "surprise", "anger", "disgust", "fear")),
    # MMEW as in the TDSGCN paper (p3): five emotions, others and anger dropped.
    "mmew-5": Protocol("mmew-5", ("happiness", "surprise", "disgust", "fear", "sadness"),
                       _identity("happiness", "surprise", "disgust", "fear", "sadness")),
    # Pre-training sources of p3. CK+'s seven sequence labels (neutral labels no sequence).
    "ckplus-7": Protocol("ckplus-7", ("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise"),
                         _identity("anger", "contempt", "disgust", "fear", "happy", "sadness", "surprise")),
    # MMEW's macro-expression stills: six emotion folders.
    "mmew_macro-6": Protocol("mmew_macro-6", ("anger", "disgust", "fear", "happiness", "sadness", "surprise"),
                             _identity("anger", "disgust", "fear", "happiness", "sadness", "surprise")),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}") from None


def describe() -> pd.DataFrame:
    """Every protocol with its classes and which raw emotions map to each."""
    rows = []
    for p in PROTOCOLS.values():
        for i, cls in enumerate(p.classes):
            rows.append({"protocol": p.name, "label": i, "class": cls,
                         "emotions": ", ".join(sorted(k for k, v in p.mapping.items() if v == cls))})
    return pd.DataFrame(rows)
