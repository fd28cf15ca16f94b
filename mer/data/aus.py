"""Parse the messy Action Unit strings of micro-expression annotation sheets.

Examples found in the releases: ``4+L10``, ``R1+R2``, ``L12``, ``AU4 + R12C``, ``5B``,
``(R6 or R12)+R15``, ``R14A or 17A or 24A``, ``?``, commas, a Chinese comma, ``(k)``.
The result keeps every AU number mentioned (sorted, unique), the side (L/R/B/U) and the
intensity letter (A-E) where given; "or" marks the code as uncertain (all alternatives
are kept); "?" or an empty cell marks it unknown. Text that is not an AU code is
returned in ``unparsed`` so a loader can report it instead of dropping it silently.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

_TOKEN = re.compile(r"(?<![A-Za-z])(?:AU\s*)?([LRBU])?(\d{1,2})([A-E])?(?![0-9A-Za-z])", re.IGNORECASE)
_NOISE = re.compile(r"\(k\)|\bor\b|[+,，;/()&\s]|\band\b", re.IGNORECASE)


@dataclass
class AUCode:
    raw: str
    aus: list[int] = field(default_factory=list)
    sides: dict[int, str] = field(default_factory=dict)
    intensities: dict[int, str] = field(default_factory=dict)
    uncertain: bool = False
    unknown: bool = False
    unparsed: str = ""


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
    return str(value).strip()


def parse_aus(value: object) -> AUCode:
    """Parse one AU cell (str, int, float or NaN) into an :class:`AUCode`."""
    text = _as_text(value)
    code = AUCode(raw=text)
    if text in ("", "?", "/", "-"):
        code.unknown = True
        return code
    code.uncertain = re.search(r"\bor\b", text, re.IGNORECASE) is not None
    found: set[int] = set()
    for side, num, inten in _TOKEN.findall(text):
        au = int(num)
        found.add(au)
        if side:
            code.sides[au] = side.upper()
        if inten:
            code.intensities[au] = inten.upper()
    rest = _NOISE.sub("", _TOKEN.sub("", text))
    rest = rest.replace("?", "")
    if "?" in text:
        code.uncertain = True
    code.aus = sorted(found)
    code.unparsed = rest
    if not found:
        code.unknown = True
    return code


# p5's AU vector: "a binary vector of length 21 representing the activity states of twenty-one
# AUs"; its footnote's example "01001 indicating AU2 and AU5 being active" reads position i as
# AU i, so the default vocabulary is AU1..AU21 (an assumption: the paper names no list).
AU_VECTOR_PAPER: tuple[int, ...] = tuple(range(1, 22))


def au_vectors(aus: Iterable[Iterable[int]], vocabulary: Sequence[int] = AU_VECTOR_PAPER) -> tuple[np.ndarray, list[list[int]]]:
    """Binary AU activation vectors, one row per clip (``aus``: the clip table's sorted AU
    lists). Returns (N, len(vocabulary)) float32 and, per clip, the AUs the vocabulary does
    not cover, so callers can report what the vector leaves out instead of losing it silently."""
    vocabulary = list(vocabulary)
    if len(set(vocabulary)) != len(vocabulary):
        raise ValueError(f"AU vocabulary has duplicates: {vocabulary}")
    index = {au: i for i, au in enumerate(vocabulary)}
    rows = [list(a) for a in aus]
    out = np.zeros((len(rows), len(vocabulary)), dtype=np.float32)
    outside: list[list[int]] = []
    for r, clip_aus in enumerate(rows):
        missing = []
        for au in clip_aus:
            if int(au) in index:
                out[r, index[int(au)]] = 1.0
            else:
                missing.append(int(au))
        outside.append(missing)
    return out, outside


@dataclass
class Coverage:
    """How an AU vocabulary covers a clip table's AU annotations: ``per_au`` (clips per AU of
    the vocabulary), ``outside`` (annotated AUs the vocabulary leaves out, with their clip
    counts) and ``empty`` (clips with no AU of the vocabulary) of ``clips``."""
    per_au: pd.DataFrame
    outside: pd.DataFrame
    empty: int
    clips: int

    def describe(self) -> str:
        left = ", ".join(f"AU{a} ({n})" for a, n in self.outside.itertuples(index=False)) or "none"
        return (f"annotated AUs outside the vocabulary (clips): {left}\n"
                f"clips with no AU of the vocabulary annotated: {self.empty} of {self.clips}")


def coverage(aus: Iterable[Iterable[int]], vocabulary: Sequence[int]) -> Coverage:
    """:class:`Coverage` of ``vocabulary`` over the AU lists ``aus`` (the clip table's)."""
    vectors, outside = au_vectors(aus, vocabulary)
    counts: dict[int, int] = {}
    for missing in outside:
        for au in missing:
            counts[au] = counts.get(au, 0) + 1
    per_au = pd.DataFrame({"AU": [f"AU{a}" for a in vocabulary], "clips": vectors.sum(0).astype(int)}).set_index("AU").T
    return Coverage(per_au, pd.DataFrame(sorted(counts.items()), columns=["AU outside the vocabulary", "clips"]),
                    int((vectors.sum(1) == 0).sum()), len(vectors))
