"""Datasets as clip tables: ``load(name, root, protocol=None, annotation=None, **kw)``.

Names: synth, casme2, samm, smic, casme_sq (CAS(ME)^2), casme3 (CAS(ME)^3 part A), mmew,
composite (MEGC 2019, with ``roots={"casme2": ..., "samm": ..., "smic": ...}``). Each
loader's docstring says which files it looks for; ``mer data check ROOT --dataset NAME``
prints what it found and every row it could not use.
"""
from __future__ import annotations

import os
from pathlib import Path

from mer.data.clips import BAD_FRAME, ClipTable
from mer.data.protocols import PROTOCOLS, get_protocol

DEFAULT_PROTOCOL = {"synth": "synth-5", "casme2": "casme2-5", "samm": "samm-5", "smic": "smic-3",
                    "casme_sq": "casme_sq-4", "casme3": "casme3-7", "mmew": "mmew-5", "composite": "composite-3"}


def _loader(name: str):
    if name in ("casme2", "synth"):
        from mer.data.casme2 import load_casme2
        return load_casme2
    if name == "samm":
        from mer.data.samm import load_samm
        return load_samm
    if name == "smic":
        from mer.data.smic import load_smic
        return load_smic
    if name == "casme_sq":
        from mer.data.casme_sq import load_casme_sq
        return load_casme_sq
    if name == "casme3":
        from mer.data.casme3 import load_casme3
        return load_casme3
    if name == "mmew":
        from mer.data.mmew import load_mmew
        return load_mmew
    from mer.data.composite import load_composite
    return load_composite


ON_BAD_FRAME = ("drop", "error")


def load(name: str, root: str | os.PathLike | None = None, protocol: str | None = None,
         annotation: str | os.PathLike | None = None, on_bad_frame: str = "drop", **kwargs) -> ClipTable:
    """Load dataset ``name`` from ``root`` as a :class:`ClipTable` (``.clips``, ``.dropped``).

    ``synth`` with no root uses the SynthME quick set under ``outputs/data`` and generates
    it first when absent. A clip with a frame that cannot be read (an empty file, a JPEG cut
    short, an onset or apex the decoder rejects) is dropped with the file and the reason
    (``on_bad_frame="drop"``), or stops the load with every such file listed (``"error"``).
    """
    if on_bad_frame not in ON_BAD_FRAME:
        raise ValueError(f"on_bad_frame must be one of {ON_BAD_FRAME}, got {on_bad_frame!r}")
    table = _load(name, root, protocol, annotation, **kwargs)
    bad = table.dropped[table.dropped["reason"].astype(str).str.startswith(BAD_FRAME)]
    if on_bad_frame == "error" and len(bad):
        raise ValueError(f"{name}: {len(bad)} clip(s) with a frame that cannot be read (on_bad_frame: drop runs "
                         "without them):\n" + "\n".join(f"  {r.subject}/{r.clip}: {r.reason}"
                                                         for r in bad.itertuples()))
    return table


def _load(name: str, root, protocol, annotation, **kwargs) -> ClipTable:
    if name not in DEFAULT_PROTOCOL:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DEFAULT_PROTOCOL)}")
    protocol = protocol or DEFAULT_PROTOCOL[name]
    if name == "synth":
        from mer.data import synth
        return _loader(name)(synth.ensure(root), protocol, annotation, dataset="synth", **kwargs)
    if name == "composite":
        roots = kwargs.pop("roots", None)
        if roots is None and root is not None:
            roots = discover_composite_roots(Path(root))
        return _loader(name)(roots or {}, protocol, annotation, **kwargs)
    if root is None:
        raise ValueError(f"dataset {name!r} needs data_root: the folder holding your copy of the release")
    return _loader(name)(Path(root), protocol, annotation, **kwargs)


PRETRAINING = ("synth_macro", "casme3_macro", "casme_sq_macro", "ckplus", "mmew_macro")


def load_pretraining(name: str, root: str | os.PathLike | None = None, protocol: str | None = None,
                     annotation: str | os.PathLike | None = None) -> ClipTable:
    """Macro-expression clips for pre-training (p3's transfer), as a :class:`ClipTable`.

    ``synth_macro``: a SynthME macro set (``root`` None: ``outputs/data/synth_macro``,
    generated when absent; subjects 101-112, never SynthME micro subjects);
    ``casme3_macro``: CAS(ME)^3 part A's macro-expression sheet (``annotation`` names it);
    ``casme_sq_macro``: CAS(ME)^2's macro-expression rows; ``ckplus``: CK+'s labelled
    sequences (p3's source for SAMM; :mod:`mer.data.ckplus`); ``mmew_macro``: MMEW's macro
    stills, ``root`` being the MMEW release (p3's source for MMEW; :mod:`mer.data.mmew_macro`).
    """
    if name == "synth_macro":
        from mer.data import synth
        return _loader("synth")(synth.ensure_macro(root), protocol or "synth-5", annotation, dataset="synth_macro")
    if root is None:
        raise ValueError(f"pre-training set {name!r} needs macro_root: the folder holding your copy of the release")
    if name == "casme3_macro":
        if annotation is None:
            raise ValueError("casme3_macro needs macro_annotation: the macro-expression sheet of CAS(ME)^3 part A")
        from mer.data.casme3 import load_casme3_macro
        return load_casme3_macro(Path(root), annotation, protocol or "casme3-7")
    if name == "ckplus":
        from mer.data.ckplus import load_ckplus
        return load_ckplus(Path(root), protocol or "ckplus-7")
    if name == "mmew_macro":
        from mer.data.mmew_macro import load_mmew_macro
        return load_mmew_macro(Path(root), protocol or "mmew_macro-6")
    if name == "casme_sq_macro":
        return _loader("casme_sq")(Path(root), protocol or "casme_sq-4", annotation, expression="macro",
                                   dataset="casme_sq_macro")
    raise KeyError(f"unknown pre-training set {name!r}; known: {', '.join(PRETRAINING)}")


def discover_composite_roots(root: Path) -> dict[str, Path]:
    """Sub-folders of ``root`` named like the three sources (case-insensitive: CASME2 or
    CASME_II, SAMM, SMIC): a convenience for ``mer data check ROOT --dataset composite``."""
    if not root.is_dir():
        raise FileNotFoundError(f"dataset root {root} is not a directory")
    from mer.data.composite import SOURCE_ALIASES
    found: dict[str, Path] = {}
    for p in sorted(root.iterdir()):
        key = SOURCE_ALIASES.get(p.name.lower().replace(" ", "_"))
        if p.is_dir() and key:
            if key in found:
                raise ValueError(f"{root}: two folders for {key}: {found[key].name} and {p.name}")
            found[key] = p
    return found


__all__ = ["load", "ClipTable", "PROTOCOLS", "get_protocol", "DEFAULT_PROTOCOL"]
