"""Folds in parallel on Dask: where :func:`mer.train.engine.run_cv` trains the folds that
are not already on disk.

- ``workers: 1`` (and no scheduler): in this process, one fold after another, as before.
- ``workers: N`` > 1: a ``dask.distributed`` ``LocalCluster`` of N worker processes, one
  fold at a time each. On the CPU each worker runs torch on one thread (N = the number of
  cores is the default); with CUDA, N defaults to the number of GPUs and worker i trains
  on GPU i.
- ``dask_scheduler: ADDRESS`` (``tcp://host:8786``; also ``MER_SCHEDULER``; ``mer study
  --scheduler``): an existing
  cluster, e.g. one started through dask-jobqueue on SLURM or dask-kubernetes, with as many
  workers as it has. Its workers need this package installed, the dataset's arrays travel
  to them from here, and each fold's record comes back here to be written; a model that
  pre-trains per fold reads and writes its cache under the outputs folder, which must
  then be on a filesystem the workers share.

Fold records stay the unit of resume (written here as each fold finishes), and each fold
is seeded from (seed, fold name) and trains on the CPU with
:data:`~mer.train.engine.FOLD_THREADS` torch threads wherever it runs, so the results do
not depend on the number of workers: on the CPU, in this process, one worker and two give
the same bytes (tested). (With the thread count free, the last bits of float sums differ
and grow over training into other predictions.)

One cluster is started per process and settings, on first use, and reused by every later
run (a notebook's main run and its ablations); :func:`shutdown` closes them.
"""
from __future__ import annotations

import atexit
import logging
import os
from dataclasses import dataclass

from mer.preprocess.prepare import available_cores  # noqa: F401  (also this module's)

ENV_WORKERS = "MER_WORKERS"
ENV_SCHEDULER = "MER_SCHEDULER"


@dataclass(frozen=True)
class Parallel:
    """Where the folds train: ``workers`` local processes (1: in this process) or the
    cluster at ``scheduler``."""
    workers: int = 1
    scheduler: str | None = None

    @property
    def in_process(self) -> bool:
        return self.scheduler is None and self.workers <= 1

    def describe(self) -> str:
        if self.scheduler:
            return f"folds on the Dask cluster at {self.scheduler}"
        if self.in_process:
            return "folds in this process, one after another"
        return f"folds on {self.workers} local Dask workers"


def default_workers(device: str = "auto") -> int:
    """One worker per GPU when training on CUDA, else one per core."""
    import torch
    on_cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if on_cuda and torch.cuda.is_available():
        return max(1, torch.cuda.device_count())
    return available_cores()


def resolve(workers: int | str | None = None, scheduler: str | None = None, device: str = "auto") -> Parallel:
    """The parallel setting of a run: ``scheduler`` (else ``$MER_SCHEDULER``) wins; then
    ``workers`` (else ``$MER_WORKERS``; None or "auto": :func:`default_workers`)."""
    scheduler = scheduler or os.environ.get(ENV_SCHEDULER) or None
    if workers is None:
        workers = os.environ.get(ENV_WORKERS) or "auto"
    if workers == "auto":
        n = default_workers(device)
    else:
        try:
            n = int(workers)
        except (TypeError, ValueError):
            raise ValueError(f"workers must be a positive number or 'auto', got {workers!r}") from None
        if n < 1:
            raise ValueError(f"workers must be at least 1, got {n}")
    return Parallel(n, str(scheduler) if scheduler else None)


_CLIENTS: dict[Parallel, object] = {}


def client(par: Parallel):
    """The ``distributed.Client`` of ``par`` (started on first use, then reused)."""
    found = _CLIENTS.get(par)
    if found is not None:
        if found.status == "running":
            return found
        forget(par)
    from distributed import Client, LocalCluster
    if par.scheduler:
        made = Client(par.scheduler, set_as_default=False)
    else:
        # no memory limit: Dask's default (RAM / workers) pauses a worker at 80% and kills it at
        # 95%, which a fold of a large dataset can reach with no word about memory
        # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers to hand memory back to the system;
        # with torch, which frees and reallocates large buffers every step, that costs a
        # page fault per buffer and doubled a fold's time (7.2 -> 14.5 s, measured): unset
        import dask
        with dask.config.set({"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}):
            cluster = LocalCluster(n_workers=par.workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR, memory_limit=0,
                                   env={"TQDM_DISABLE": "1"})
        made = Client(cluster, set_as_default=False)
    _CLIENTS[par] = made
    return made


def forget(par: Parallel) -> None:
    """Close ``par``'s client (and its local cluster); the next run starts a new one."""
    c = _CLIENTS.pop(par, None)
    if c is not None:
        _close(c)


def _close(c) -> None:
    cluster = getattr(c, "cluster", None)
    try:
        c.close()
        if cluster is not None:
            cluster.close()
    except Exception:  # already gone (interpreter exit, a dead scheduler)
        pass


@atexit.register
def shutdown() -> None:
    """Close every cluster this process started (and its connections to external ones)."""
    while _CLIENTS:
        _close(_CLIENTS.popitem()[1])


def worker_device(device: str):
    """The torch device of a fold on a Dask worker: ``device`` resolved there; on a worker of
    a machine with several GPUs and a bare ``cuda``, the GPU numbered like the worker
    (LocalCluster names its workers 0, 1, ...). An explicit ``cuda:0``, or workers whose
    names are not numbers (dask-jobqueue's), keep the device as given: give each such
    worker one GPU (``CUDA_VISIBLE_DEVICES``), as a GPU job on a cluster has."""
    import torch
    from mer.train.engine import resolve_device
    dev = resolve_device(device)
    if dev.type == "cuda":  # Dask sets one CPU thread per worker; a GPU's worker builds batches with its share
        torch.set_num_threads(max(1, available_cores() // max(1, torch.cuda.device_count())))
    if dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1:
        try:
            from distributed import get_worker
            index = int(get_worker().name) % torch.cuda.device_count()
        except (ValueError, TypeError):
            return dev
        torch.cuda.set_device(index)
        return torch.device("cuda", index)
    return dev
