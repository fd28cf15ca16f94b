"""Where things live: the project root, outputs, the default SynthME location; atomic file
replacement and content keys for cached results."""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Callable


def project_root() -> Path:
    """The checkout holding ``pyproject.toml`` (editable install), else the working dir.

    Notebooks run with their own folder as working directory in JupyterLab and with the
    project root under papermill; resolving defaults against this root makes both work.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "pyproject.toml").is_file() and (here / "mer").is_dir():
        return here
    return Path.cwd()


def outputs_dir() -> Path:
    """Results root; ``MER_OUTPUTS`` overrides ``<root>/outputs``."""
    env = os.environ.get("MER_OUTPUTS")
    return Path(env) if env else project_root() / "outputs"


def smoke_dir() -> Path:
    """Where smoke runs write (``outputs/smoke``): their runs, weights and report, never
    beside real results."""
    return outputs_dir() / "smoke"


def synth_quick_root() -> Path:
    """Default location of the generated SynthME quick set."""
    return outputs_dir() / "data" / "synth_quick"


def run_dir(dataset: str, method: str, output_dir: str | os.PathLike | None = None) -> Path:
    """``outputs/<dataset>/<method>/`` unless an explicit output_dir is given."""
    path = Path(output_dir) if output_dir else outputs_dir() / dataset / method
    path.mkdir(parents=True, exist_ok=True)
    return path


def method_notebooks(root: str | os.PathLike | None = None) -> dict[str, list[Path]]:
    """Each method (a ``params/<method>/`` folder under ``root``, default the project root)
    -> its notebooks ``notebooks/NN_<method>[_words].ipynb``, sorted by name (empty if none).

    Method ids hold underscores, so a notebook belongs to the longest method id ``m`` for
    which its stem is ``NN_m`` or starts with ``NN_m_``: with methods ``gam`` and
    ``gam_mm_mer``, ``02_gam_mm_mer.ipynb`` is ``gam_mm_mer``'s."""
    root = Path(root) if root is not None else project_root()
    params = root / "params"
    methods = sorted(p.name for p in params.iterdir() if p.is_dir()) if params.is_dir() else []
    found: dict[str, list[Path]] = {m: [] for m in methods}
    for nb in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        rest = nb.stem[3:]
        matches = [m for m in methods if rest == m or rest.startswith(m + "_")]
        if matches:
            found[max(matches, key=len)].append(nb)
    return found


def notebook_order(root: str | os.PathLike | None = None) -> dict[str, int]:
    """Method -> its notebook's number ``NN`` (the first, if it has several), for each
    method with a notebook: the order of the study and the report (00_baseline first)."""
    return {m: int(nbs[0].name[:2]) for m, nbs in method_notebooks(root).items() if nbs}


_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def safe_name(name: object) -> str:
    """``name`` (a fold, clip or variant name) as one path component: unchanged when it is
    already plain (letters, digits, ``.``, ``_``, ``-``), otherwise every other character
    becomes ``_`` and a short hash of the original is appended, so two names never share a
    file (``casme2/sub01`` -> ``casme2_sub01-<hash>``). The only place a name becomes a path."""
    text = str(name)
    if _SAFE.fullmatch(text) and len(text) <= 120:
        return text
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")[:80] or "name"
    return f"{plain}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"


def replace_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``path``, then rename it into place: a crash never
    leaves a half-written ``path``. A write that fails (a full disk, a read-only folder)
    removes its temporary file and raises an OSError naming ``path`` and what to do."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + f".tmp{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise OSError(exc.errno, write_failure(path, exc), str(path)) from exc


def write_failure(path: Path, exc: OSError) -> str:
    """One sentence on a failed write of ``path``: why, and what to do."""
    why = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return (f"{path}: could not be written: the disk is full ({why}); free space and run again: finished "
                "folds, cache entries and weights are kept and reused")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"{path}: could not be written: the folder is read-only ({why}); set output_dir or MER_OUTPUTS "
                "(cache_dir or MER_CACHE for the cache) to a writable folder")
    return f"{path}: could not be written ({why})"


def ensure_writable(folder: Path) -> Path:
    """Create ``folder`` and check a file can be written there, before any work is spent;
    an OSError naming the folder otherwise (:func:`write_failure`)."""
    folder = Path(folder)
    probe = folder / f".write-test-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise OSError(exc.errno, write_failure(folder, exc), str(folder)) from exc
    return folder


def describe(value: object) -> object:
    """``value`` as plain JSON data for a cache key: an object with ``key()`` (a dataset, a
    model spec, a magnifier) by its key, a dataclass by its fields, arrays and tuples as
    lists, a function by its qualified name, anything else by ``str``."""
    import dataclasses
    if hasattr(value, "key") and callable(value.key):
        return value.key()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: describe(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ndarray":
        return [describe(v) for v in list(value)]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return value.item()
    if callable(value) and hasattr(value, "__qualname__"):
        return f"{value.__module__}.{value.__qualname__}"
    return str(value)


def content_key(obj: object, length: int | None = None) -> str:
    """SHA-256 of ``obj`` as sorted JSON (non-JSON values by ``str``), optionally cut to
    ``length`` hex digits: the key under which a result computed from ``obj`` is cached."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]
