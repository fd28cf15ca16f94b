"""Datasets as clip tables: ``load(name, root, protocol=None, annotation=None)``."""
from __future__ import annotations

import os
from pathlib import Path

from mer.data.clips import ClipTable
from mer.data.protocols import PROTOCOLS, get_protocol

DEFAULT_PROTOCOL = {"casme2": "casme2-5", "synth": "synth-5"}


def load(name: str, root: str | os.PathLike | None = None, protocol: str | None = None,
         annotation: str | os.PathLike | None = None, **kwargs) -> ClipTable:
    """Load dataset ``name`` from ``root`` as a :class:`ClipTable` (``.clips``, ``.dropped``).

    ``synth`` with no root uses the SynthME quick set under ``outputs/data`` and generates
    it first when absent.
    """
    if name not in DEFAULT_PROTOCOL:
        raise KeyError(f"unknown dataset {name!r}; known: {', '.join(DEFAULT_PROTOCOL)}")
    protocol = protocol or DEFAULT_PROTOCOL[name]
    if name == "synth":
        from mer.data import synth
        root = synth.ensure(root)
        from mer.data.casme2 import load_casme2
        return load_casme2(root, protocol, annotation, dataset="synth", **kwargs)
    if root is None:
        raise ValueError(f"dataset {name!r} needs data_root: the folder holding your copy of the release")
    from mer.data.casme2 import load_casme2
    return load_casme2(Path(root), protocol, annotation, **kwargs)


__all__ = ["load", "ClipTable", "PROTOCOLS", "get_protocol", "DEFAULT_PROTOCOL"]
