"""Named class protocols: which raw emotion labels map to which class index.

A protocol maps normalised (lower-case, stripped) emotion strings to class names; rows
whose emotion is not in the map are dropped by the loader with the reason
"emotion '<x>' not in protocol <name>".
"""
from __future__ import annotations

from dataclasses import dataclass


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


_FIVE = ("happiness", "disgust", "repression", "surprise", "others")
_FIVE_MAP = {c: c for c in _FIVE} | {"other": "others"}

PROTOCOLS: dict[str, Protocol] = {
    # CASME II 5 classes; sadness and fear are dropped (and reported).
    "casme2-5": Protocol("casme2-5", _FIVE, _FIVE_MAP),
    # SynthME uses CASME II's five classes.
    "synth-5": Protocol("synth-5", _FIVE, _FIVE_MAP),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise KeyError(f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}") from None
