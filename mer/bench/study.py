"""``mer bench study``: how long ``make study`` takes on this machine, cold (a fresh clone:
no generated data, no cache, no results) and warm (nothing changed), per notebook; and how
much faster the baseline's LOSO runs on two fold workers than on one.

The study runs as a subprocess of a checkout (``repo``, default this one) with its outputs
and cache in a scratch folder (``MER_OUTPUTS``; ``MER_CACHE``, ``MER_WORKERS`` and
``MER_SCHEDULER`` unset), so the benchmark never touches the checkout's own results;
another checkout (an older commit) gives the "before" numbers with the same harness. The
fold-parallel speedup runs this checkout's code on the scratch folder's data.
"""
from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

DONE = re.compile(r"^\[study\] (\S+) done in (\d+) s", re.M)
ISOLATED = ("MER_CACHE", "MER_WORKERS", "MER_SCHEDULER")  # unset for the timed runs


def machine() -> dict:
    """The machine a benchmark ran on, for its JSON and the README."""
    import torch
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "gpu": gpu, "python": platform.python_version(),
            "torch": torch.__version__, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def git_commit(repo: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(repo), "describe", "--always", "--dirty"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def timed_study(repo: Path, outputs: Path, log: Path, extra: list[str] | None = None) -> dict:
    """Run ``mer study`` of checkout ``repo`` with its outputs under ``outputs``; wall time
    in total and per notebook (the study's own ``[study] <method> done in N s`` lines)."""
    env = {**os.environ, "MER_OUTPUTS": str(outputs), "PYTHONPATH": str(repo)}
    for name in ISOLATED:  # the defaults of a fresh shell: cache under outputs, local workers
        env.pop(name, None)
    cmd = [sys.executable, "-m", "mer.cli", "study", *(extra or [])]
    t0 = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run(cmd, cwd=repo, env=env, stdout=fh, stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - t0
    text = log.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"mer study in {repo} failed (exit {proc.returncode}); its log: {log}")
    return {"seconds": round(seconds, 1), "notebooks": {m: int(s) for m, s in DONE.findall(text)}, "log": str(log)}


def bench_study(repo: str | os.PathLike | None = None, scratch: str | os.PathLike | None = None,
                speedup: bool = True, out: str | os.PathLike | None = None, progress: bool = True,
                seed_weights: str | os.PathLike | None = None) -> dict:
    """Cold and warm ``mer study`` of ``repo`` (default: this checkout) in ``scratch`` (a new
    temporary folder, removed afterwards unless given), then (``speedup``) the baseline's
    LOSO on one and on two fold workers; written to ``out`` as JSON. ``seed_weights``: a
    folder of magnifier weights (``stmemm_*.pt``) copied into the cold run's
    ``outputs/weights`` first, for a commit that did not ship them, whose cold run then
    leaves their training out (recorded in the JSON with each file's training seconds)."""
    from mer.paths import project_root
    repo = Path(repo or project_root()).resolve()
    own = scratch is None
    scratch = Path(scratch or tempfile.mkdtemp(prefix="mer-bench-study-"))
    outputs = scratch / "outputs"
    if outputs.exists():
        shutil.rmtree(outputs)
    outputs.mkdir(parents=True)
    result = {"what": "mer study on SynthME (synthetic), cold: a fresh clone (no data, cache or results; the install "
                      "not counted); warm: the same again with nothing changed",
              "repo": str(repo), "commit": git_commit(repo), "machine": machine()}
    if seed_weights:
        import torch
        (outputs / "weights").mkdir()
        result["seeded_weights"] = {}
        for path in sorted(Path(seed_weights).glob("stmemm_*.pt")):
            shutil.copy(path, outputs / "weights" / path.name)
            saved = torch.load(path, map_location="cpu", weights_only=True)
            result["seeded_weights"][path.name] = {"training_seconds": saved.get("seconds"),
                                                   "steps": saved.get("config", {}).get("steps")}
    try:
        if progress:
            print(f"[bench study] cold run of {repo} ({result['commit']}) into {outputs}", flush=True)
        result["cold"] = timed_study(repo, outputs, scratch / "cold.log")
        if progress:
            print(f"[bench study] cold: {result['cold']['seconds']:.0f} s; warm run", flush=True)
        result["warm"] = timed_study(repo, outputs, scratch / "warm.log")
        if progress:
            print(f"[bench study] warm: {result['warm']['seconds']:.0f} s", flush=True)
        if speedup:  # this checkout's code, on the scratch folder's SynthME and cache
            from mer.bench.folds import fold_speedup
            saved = {k: os.environ.pop(k, None) for k in ("MER_OUTPUTS", *ISOLATED)}
            os.environ["MER_OUTPUTS"] = str(outputs)
            try:
                result["fold_parallel"] = fold_speedup(scratch / "speedup", progress=progress)
            finally:
                os.environ.pop("MER_OUTPUTS")
                os.environ.update({k: v for k, v in saved.items() if v is not None})
    finally:
        if out:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(result, indent=2))
        if own:
            for log in ("cold.log", "warm.log"):
                if (scratch / log).exists() and out:
                    shutil.copy(scratch / log, Path(out).with_suffix(f".{log}"))
            shutil.rmtree(scratch, ignore_errors=True)
    return result
