"""On-disk cache of preprocessing results.

An entry is keyed by a hash of its source files' identity (path, size, mtime), every
parameter that changes the output, and :data:`PREPROCESS_VERSION`; bump the version when
the code changes what it produces. Entries are ``.npz`` files written atomically (temp
file, then rename), so an interrupted run never leaves a half-written entry under a real
name; an entry that cannot be read anyway (truncated by a full disk, edited by hand) is
reported, deleted and recomputed.

Location: the ``root`` argument, else ``MER_CACHE``, else ``outputs/cache``.
"""
from __future__ import annotations

import contextvars
import os
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from mer.paths import content_key, replace_atomic

PREPROCESS_VERSION = "2"  # 2: area pre-shrink before the alignment warp


def save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``arrays`` to ``path`` (.npz) atomically, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file handle: numpy would append .npz to a temporary name
            np.savez(f, **arrays)
    replace_atomic(path, write)


class NotCached(Exception):
    """Raised by :meth:`Cache.get_or_compute` under :data:`LOOKUP_ONLY` for an entry that is
    not on disk."""


# True: get_or_compute reads entries but computes none (the preprocessing pool reads what is
# cached in the calling process and sends only the rest to its workers)
LOOKUP_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("mer_cache_lookup_only", default=False)


def default_root() -> Path:
    env = os.environ.get("MER_CACHE")
    if env:
        return Path(env)
    from mer.paths import outputs_dir
    return outputs_dir() / "cache"


def file_identity(paths: Iterable[str | os.PathLike]) -> list[tuple[str, int, int]]:
    """(absolute path, size, mtime_ns) per file; a missing file raises naming it."""
    out = []
    for p in paths:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            raise FileNotFoundError(f"source file {p} is missing") from None
        out.append((str(Path(p).resolve()), st.st_size, st.st_mtime_ns))
    return out


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    corrupt: list[str] = field(default_factory=list)

    def __add__(self, other: "CacheStats") -> "CacheStats":
        return CacheStats(self.hits + other.hits, self.misses + other.misses, self.corrupt + other.corrupt)


class Cache:
    """``get_or_compute(kind, files, params, fn)`` returns ``fn()``'s arrays, from disk when cached."""

    def __init__(self, root: str | os.PathLike | None = None, enabled: bool = True):
        self.root = Path(root) if root is not None else default_root()
        self.enabled = enabled
        self.stats = CacheStats()

    def key(self, kind: str, files: Iterable[str | os.PathLike], params: dict) -> str:
        return content_key({"version": PREPROCESS_VERSION, "kind": kind, "files": file_identity(files),
                            "params": params})

    def path(self, kind: str, key: str) -> Path:
        return self.root / kind / key[:2] / f"{key}.npz"

    def get(self, kind: str, key: str) -> dict[str, np.ndarray] | None:
        path = self.path(kind, key)
        if not self.enabled or not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
            msg = f"cache entry {path} is unreadable ({type(exc).__name__}: {exc}); recomputing it"
            print(f"warning: {msg}", file=sys.stderr)
            self.stats.corrupt.append(str(path))
            path.unlink(missing_ok=True)
            return None

    def put(self, kind: str, key: str, arrays: dict[str, np.ndarray]) -> None:
        if not self.enabled:
            return
        save_npz(self.path(kind, key), arrays)

    def get_or_compute(self, kind: str, files: Iterable[str | os.PathLike], params: dict,
                       fn: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
        key = self.key(kind, list(files), params)
        hit = self.get(kind, key)
        if hit is not None:
            self.stats.hits += 1
            return hit
        if LOOKUP_ONLY.get():
            raise NotCached(kind)
        self.stats.misses += 1
        arrays = fn()
        self.put(kind, key, arrays)
        return arrays
