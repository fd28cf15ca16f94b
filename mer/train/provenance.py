"""What a trained result was computed from, beyond its settings: the version of the code
that made it and the identity of the source frames.

A fold record (and a pre-trained model) is reused only when these match, so a fix to a
model or to the preprocessing, or a ``data_root`` pointed at another copy of the frames
(``Cropped/`` instead of ``CASME2_RAW_selected/``), recomputes instead of silently
returning old results.

- **Code**: derived from the source files, not bumped by hand: the ``mer`` modules that
  define the model's layers (every class in ``model.modules()``), the dataset's classes
  and the whole preprocessing stage, and the training loop and losses. Editing any of
  them, a comment included, makes earlier fold records stale: a recompute is cheaper than
  a wrong number.
- **Frames**: (path, size, mtime) of every frame file of every clip, the same identity the
  preprocessing cache keys its entries by, plus each clip's onset, apex and offset.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pandas as pd
from torch import nn

from mer.paths import content_key
from mer.preprocess.cache import PREPROCESS_VERSION, file_identity

_TRAIN_MODULES = ("mer.train.engine", "mer.train.losses")


def _module_digest(name: str) -> str:
    """SHA-256 (12 hex digits) of a loaded module's source file."""
    module = sys.modules.get(name)
    path = getattr(module, "__file__", None)
    if not path:
        return "unknown"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:12]


def _digest(names) -> str:
    return content_key({n: _module_digest(n) for n in sorted(set(names))}, 12)


def _preprocess_digest() -> str:
    """SHA-256 of every source file of the preprocessing stage (the folder, not what happens
    to be imported, so the digest is the same in every process)."""
    import mer.preprocess
    digest = hashlib.sha256()
    for path in sorted(Path(mer.preprocess.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _mer_classes(obj) -> set[str]:
    return {c.__module__ for c in type(obj).__mro__ if c.__module__.startswith("mer.")}


def code_version(model: nn.Module | None, dataset: object | None) -> dict[str, str]:
    """Digests of the code behind a result: ``model`` (the modules of its layers),
    ``preprocess`` (the dataset's classes, the preprocessing stage and its cache version)
    and ``train`` (the training loop and losses)."""
    model_mods = set() if model is None else {n for m in model.modules() for n in _mer_classes(m)}
    data_mods = set() if dataset is None else _mer_classes(dataset)
    return {"model": _digest(model_mods),
            "preprocess": f"{_digest(data_mods)}/{_preprocess_digest()}/v{PREPROCESS_VERSION}",
            "train": _digest(_TRAIN_MODULES)}


def frames_key(clips: pd.DataFrame) -> str:
    """The identity of a clip table's source frames: every frame file's (path, size, mtime)
    and each clip's onset, apex and offset; "no frames" for a table without a ``frames``
    column (generated data). A missing frame file raises, naming it."""
    if "frames" not in clips.columns:
        return "no frames"
    digest = hashlib.sha256()
    for row in clips[["frames", "onset", "apex", "offset"]].itertuples(index=False):
        digest.update(repr((file_identity(list(row.frames)), int(row.onset), int(row.apex),
                            int(row.offset))).encode())
    return digest.hexdigest()[:16]
