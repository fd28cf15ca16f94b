"""The fold engine: train a fresh model per fold for a fixed number of epochs, predict the
held-out subjects, persist the fold, pool the predictions.

Honesty rules built in: no test data is seen before the fold's final prediction (no
early stopping or epoch selection on the test subject); every fold is seeded from
(seed, fold name) so a resumed run equals an uninterrupted one; each fold's predictions,
curve and metrics are written atomically when it finishes, keyed by a hash of
everything that determines them, and reused on a rerun.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Collection

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from mer.progress import tqdm

from mer.paths import content_key, replace_atomic, safe_name
from mer.train.losses import make_loss
from mer.train.metrics import HEADLINE, headline, scores
from mer.train.provenance import code_version, frames_key
from mer.train.parallel import Parallel
from mer.train.splits import Fold, check_disjoint


@dataclass
class TrainConfig:
    epochs: int = 15
    batch_size: int = 16
    lr: float = 1e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"  # adamw | adam | sgd
    momentum: float = 0.9  # sgd only
    scheduler: str = "cosine"  # cosine | exp | milestones | none
    exp_gamma: float = 0.95  # exp only: per-epoch decay
    decay_epochs: int | None = None  # exp only: decay during the first this-many epochs, then hold (None: always)
    loss: str = "ce"  # ce | focal
    focal_gamma: float = 2.0
    grad_accum: int = 1
    seed: int = 0
    device: str = "auto"
    focal_alpha: float = 1.0  # focal only: the weighting factor alpha (p3's grid)
    patience: int = 0  # > 0: early stopping on the validation loss of held-out *training* subjects
    val_subjects: float = 0.2  # with patience: that share of the fold's training subjects (at least 1)
    lr_milestones: tuple[int, ...] = ()  # milestones only: optimizer steps (iterations) at which the lr is
    milestone_gamma: float = 0.5  # multiplied by this (p1: halved at 20 000 iterations)
    amp: str = "auto"  # mixed precision: bf16 | fp16 | off; auto: bf16 on CUDA, off on CPU
    # diagnostic, off by default: after every epoch also predict the fold's test subjects and keep
    # those predictions in the fold's record, to measure what picking an epoch on the test subject
    # would report (:func:`mer.train.metrics.test_selection`). They never feed training, selection
    # or the run's predictions (the block runs with the RNGs preserved); not part of the cache key.
    test_epochs: bool = False


AMP = {"bf16": torch.bfloat16, "fp16": torch.float16, "off": None}


DIAGNOSTIC_FIELDS = ("test_epochs",)  # settings that add to a fold's record without changing its predictions


def config_ident(cfg: TrainConfig) -> dict:
    """The training settings as they enter a run's cache key: every field but the
    diagnostics (:data:`DIAGNOSTIC_FIELDS`), which change what a record holds, not its
    predictions."""
    return {k: v for k, v in asdict(cfg).items() if k not in DIAGNOSTIC_FIELDS}


class PerFold:
    """A model factory that needs the fold, e.g. to pre-train without the fold's test
    subjects: ``PerFold(fn, key)``; :func:`run_cv` passes the fold (None when only the
    architecture is wanted). ``key`` describes what it builds, as :meth:`Spec.key
    <mer.models.spec.Spec.key>` does."""

    takes_fold = True

    def __init__(self, fn: Callable[[Fold | None], nn.Module], key: dict,
                 requires: Callable[[Fold], tuple[str, Callable[[], object]]] | None = None):
        self.fn, self._key, self._requires = fn, key, requires

    def __call__(self, fold: Fold | None = None) -> nn.Module:
        return self.fn(fold)

    def key(self) -> dict:
        return self._key

    def requirement(self, fold: Fold) -> tuple[str, Callable[[], object]] | None:
        """What building the fold's model needs done first, as ``(key, do)`` (a
        pre-training, cached by ``do`` under its key), or None. Folds whose requirements
        share a key share one: on Dask workers it runs once, before those folds."""
        return self._requires(fold) if self._requires is not None else None


def build_model(model_fn: Callable, fold: Fold | None) -> nn.Module:
    return model_fn(fold) if getattr(model_fn, "takes_fold", False) else model_fn()


def run_key(dataset, model_fn) -> dict:
    """What a run's cache key takes from its dataset and its model, both derived from the
    objects themselves (``key()``: every setting that shapes the items, every model
    argument), so no setting can be left out by hand."""
    missing = [name for name, obj in (("dataset", dataset), ("model", model_fn)) if not callable(getattr(obj, "key", None))]
    if missing:
        raise TypeError(f"run_cv derives its cache key from the dataset and the model: the {' and '.join(missing)} "
                        f"has no key() (pass a mer.preprocess dataset and a mer.models.Spec)")
    return {"data": dataset.key(), "model": model_fn.key()}


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of ``amp`` on ``device`` (None: full precision). ``auto`` is bf16
    on CUDA (fp16 on a GPU without bf16, such as a V100 or T4) and off on the CPU, where
    autocast is slower than float32."""
    if amp == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if not torch.cuda.is_available() or torch.cuda.is_bf16_supported() else torch.float16
    if amp not in AMP:
        raise ValueError(f"unknown amp {amp!r}; known: auto, {', '.join(AMP)}")
    return AMP[amp]


def autocast(amp: str, device: torch.device):
    """``torch.autocast`` for ``amp`` on ``device``, disabled when it resolves to off."""
    dtype = amp_dtype(amp, device)
    return torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def preserved_rng():
    """Run a block without disturbing the global RNGs: what follows draws the same numbers
    whether the block trained a model or read it from the cache."""
    states = (random.getstate(), np.random.get_state())
    # torch's CPU generator and, on a GPU, the current device's (forking every GPU's would
    # open a context on each, e.g. on every GPU from every Dask worker)
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])


FOLD_THREADS = 1  # torch threads of every fold (and pre-training) trained on the CPU, wherever it runs;
# $MER_FOLD_THREADS replaces it (e.g. with workers: 1 on a many-core machine): results then
# equal those of other runs with that same count, not of runs with another


def fold_thread_count() -> int:
    value = os.environ.get("MER_FOLD_THREADS")
    try:
        n = int(value) if value else FOLD_THREADS
    except ValueError:
        raise ValueError(f"MER_FOLD_THREADS must be a positive number, got {value!r}") from None
    if n < 1:
        raise ValueError(f"MER_FOLD_THREADS must be a positive number, got {value!r}")
    return n


@contextlib.contextmanager
def fold_threads(device: torch.device):
    """Train on the CPU with :func:`fold_thread_count` torch threads whatever process runs the
    fold (the notebook's, or a Dask worker's), then restore the thread count. A float sum's
    order, and so its last bits, depends on the thread count, and twelve epochs of training
    grow those bits into other predictions (measured: in-process 2 threads against 1-thread
    workers gave probabilities 0.068 apart and another UF1); with the count fixed, one
    worker and two give the same bytes."""
    if device.type != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(fold_thread_count())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def fold_seed(seed: int, fold_name: str) -> int:
    digest = hashlib.sha256(f"{seed}/{fold_name}".encode()).hexdigest()
    return int(digest[:8], 16)


def _write_json_atomic(path: Path, data: dict) -> None:
    replace_atomic(path, lambda tmp: tmp.write_text(json.dumps(data)))


def _make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}")


def _make_scheduler(opt: torch.optim.Optimizer, cfg: TrainConfig):
    if cfg.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(cfg.epochs, 1))
    if cfg.scheduler == "exp":
        if cfg.decay_epochs is None:
            return torch.optim.lr_scheduler.ExponentialLR(opt, gamma=cfg.exp_gamma)
        until = int(cfg.decay_epochs)
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda epoch: cfg.exp_gamma ** min(epoch, until))
    if cfg.scheduler == "milestones":  # stepped once per optimizer step, not per epoch
        marks = sorted(int(m) for m in cfg.lr_milestones)
        if not marks:
            raise ValueError("the milestones scheduler needs lr_milestones (optimizer steps)")
        return torch.optim.lr_scheduler.LambdaLR(opt, lambda it: cfg.milestone_gamma ** sum(it >= m for m in marks))
    if cfg.scheduler == "none":
        return None
    raise ValueError(f"unknown scheduler {cfg.scheduler!r}")


def _forward(model: nn.Module, x, device: torch.device) -> torch.Tensor:
    """``model`` on a batch's inputs: a dict as keywords, a tuple as arguments, else one
    tensor; copied to ``device`` asynchronously (from pinned memory on CUDA)."""
    if isinstance(x, dict):
        return model(**{k: v.to(device, non_blocking=True) for k, v in x.items()})
    if isinstance(x, (list, tuple)):
        return model(*[v.to(device, non_blocking=True) for v in x])
    return model(x.to(device, non_blocking=True))


def loader(ds, batch_size: int, device: torch.device, **kw) -> DataLoader:
    """A DataLoader of ``ds`` whose batches are pinned in page-locked memory when the
    model is on CUDA (so the copy to the GPU overlaps the work); items are built in this
    process, as on the CPU, so a seed draws the same augmentations everywhere."""
    return DataLoader(ds, batch_size=batch_size, pin_memory=device.type == "cuda", **kw)


@dataclass
class FitResult:
    curve: list[dict]
    seconds: float
    watched: list = field(default_factory=list)  # what ``watch`` returned after each epoch


def fit(model: nn.Module, train_ds, cfg: TrainConfig, seed: int, device: torch.device,
        desc: str = "epochs", progress: bool = True, val_ds=None, watch: Callable | None = None) -> FitResult:
    """Train ``model`` on ``train_ds`` for ``cfg.epochs``; returns the per-epoch curve.

    With ``val_ds`` (which must hold training subjects only) each epoch also scores it
    (``val_loss``, ``val_acc``); with ``cfg.patience`` > 0 as well (early stopping),
    training stops after ``patience`` epochs without a lower validation loss and the
    weights of the best epoch are restored.

    ``watch(model)``, when given, is called after every epoch with the global RNGs preserved
    and gradients off; its return values are kept in ``watched`` and never used here (the
    test-epoch diagnostic: ``TrainConfig.test_epochs``).
    """
    gen = torch.Generator().manual_seed(seed)
    drop_last = len(train_ds) > cfg.batch_size and len(train_ds) % cfg.batch_size == 1  # BN needs >1
    batches = loader(train_ds, cfg.batch_size, device, shuffle=True, generator=gen, drop_last=drop_last)
    loss_fn = make_loss(cfg.loss, gamma=cfg.focal_gamma, alpha=cfg.focal_alpha).to(device)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(cfg.amp, device) == torch.float16)
    opt = _make_optimizer(model, cfg)
    sched = _make_scheduler(opt, cfg)
    per_step = cfg.scheduler == "milestones"
    stopping = val_ds is not None and cfg.patience > 0
    best_loss, best_state, waited = float("inf"), None, 0
    curve, watched, t0 = [], [], time.perf_counter()
    bar = tqdm(range(cfg.epochs), desc=desc, leave=False, disable=not progress)
    for epoch in bar:
        model.train()
        # summed on the device and read once per epoch: no host sync per step on a GPU
        total = 0
        correct = torch.zeros((), dtype=torch.long, device=device)
        loss_sum = torch.zeros((), dtype=torch.float32 if device.type == "mps" else torch.float64, device=device)
        opt.zero_grad(set_to_none=True)
        for step, (x, y) in enumerate(batches):
            y = y.to(device, non_blocking=True)
            with autocast(cfg.amp, device):
                logits = _forward(model, x, device)
            logits = logits.float()  # the loss in full precision
            loss = loss_fn(logits, y)
            scaler.scale(loss / cfg.grad_accum).backward()
            if (step + 1) % cfg.grad_accum == 0 or step + 1 == len(batches):
                scaler.step(opt)
                scaler.update()
                opt.zero_grad(set_to_none=True)
                if per_step:
                    sched.step()
            loss_sum += loss.detach().to(loss_sum.dtype) * len(y)
            correct += (logits.argmax(1) == y).sum()
            total += len(y)
        lr = opt.param_groups[0]["lr"]  # per-step schedules: the lr the epoch ended with
        if sched is not None and not per_step:
            sched.step()
        row = {"epoch": epoch + 1, "loss": float(loss_sum) / max(total, 1), "train_acc": int(correct) / max(total, 1),
               "lr": lr}
        if val_ds is not None:
            val_loss, val_acc = evaluate(model, val_ds, loss_fn, device, amp=cfg.amp)
            row.update(val_loss=val_loss, val_acc=val_acc)
        if stopping:
            if val_loss < best_loss - 1e-6:
                best_loss, waited = val_loss, 0
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
        curve.append(row)
        if watch is not None:
            with preserved_rng(), torch.no_grad():
                watched.append(watch(model))
        bar.set_postfix(loss=f"{row['loss']:.3f}", acc=f"{row['train_acc']:.2f}")
        if stopping and waited >= cfg.patience:
            break
    if best_state is not None:
        model.load_state_dict(best_state)
        for row in curve:
            row["best"] = row["val_loss"] == best_loss
    return FitResult(curve, time.perf_counter() - t0, watched)


@torch.no_grad()
def evaluate(model: nn.Module, ds, loss_fn: nn.Module, device: torch.device, batch_size: int = 64,
             amp: str = "off") -> tuple[float, float]:
    """Mean loss and accuracy of ``model`` on ``ds`` (eval mode; train mode is restored)."""
    was_training = model.training
    model.eval()
    total, correct, loss_sum = 0, 0, 0.0
    for x, y in loader(ds, batch_size, device, shuffle=False):
        y = y.to(device, non_blocking=True)
        with autocast(amp, device):
            logits = _forward(model, x, device).float()
        loss_sum += float(loss_fn(logits, y)) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        total += len(y)
    model.train(was_training)
    return loss_sum / max(total, 1), correct / max(total, 1)


def validation_split(subjects: np.ndarray, idx: np.ndarray, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``idx`` split by subject into (train, validation): ``share`` of the subjects
    (at least one, and at least one left to train on), drawn with ``seed``."""
    subj = np.asarray(subjects)[idx].astype(str)
    names = np.array(sorted(set(subj)))
    if len(names) < 2:
        raise ValueError("early stopping needs at least two training subjects (one to validate on)")
    n_val = min(len(names) - 1, max(1, int(round(share * len(names)))))
    val = set(np.random.default_rng(seed).choice(names, size=n_val, replace=False))
    in_val = np.array([s in val for s in subj])
    return idx[~in_val], idx[in_val]


@torch.no_grad()
def predict(model: nn.Module, ds, device: torch.device, batch_size: int = 64, amp: str = "off") -> np.ndarray:
    """Class probabilities (N, C) for ``ds`` in order."""
    model.eval()
    out = []
    for x, _ in loader(ds, batch_size, device, shuffle=False):
        with autocast(amp, device):
            logits = _forward(model, x, device)
        out.append(torch.softmax(logits.float(), dim=1).cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0))


@dataclass
class CVResult:
    metrics: dict
    predictions: pd.DataFrame  # fold, subject, clip, y_true, y_pred, p_<class>...
    per_fold: pd.DataFrame  # per-fold acc/uf1/uar: secondary, labelled as such
    curves: pd.DataFrame  # fold, epoch, loss, train_acc, lr
    classes: tuple[str, ...]
    folds_resumed: int = 0
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)
    folds_stale: int = 0  # records found on disk from other code, settings or source frames: recomputed
    # with TrainConfig.test_epochs: fold name -> (test clips x epochs) predicted classes, the
    # clips in the order of ``predictions``; a diagnostic, never the run's result
    epoch_preds: dict | None = None

    def test_selection(self) -> dict | None:
        """What picking epochs on the test subjects would have reported beside this run's
        honest (fixed-epoch) scores (:func:`mer.train.metrics.test_selection`); None without
        the diagnostic."""
        if self.epoch_preds is None:
            return None
        if "test_selection" not in self.extra:  # the notebook, metrics.json and the reference rows all ask
            from mer.train.metrics import test_selection
            self.extra["test_selection"] = test_selection(self.predictions, self.epoch_preds, self.classes)
        return self.extra["test_selection"]

    @property
    def resume_note(self) -> str:
        """How many folds came from disk and how many old records were stale, for the notebook."""
        note = f"{self.folds_resumed} of {len(self.per_fold)} folds resumed from disk"
        if self.folds_stale:
            note += (f"; {self.folds_stale} stale fold record(s) (other code, settings or source frames) "
                     "recomputed")
        return f"[{note}]"


def run_ident(dataset, model_fn, cfg: TrainConfig, classes) -> dict:
    """Everything a cross-validated run's results depend on, before the fold: the training
    settings, the dataset's and the model's keys (:func:`run_key`), the classes, the clips
    and their labels, the code and the source frames. Each fold's cache key adds the fold."""
    clips = dataset.clips
    with preserved_rng():  # building the architecture draws its initial weights
        code = code_version(build_model(model_fn, None), dataset)
    return {"cfg": config_ident(cfg), "run": run_key(dataset, model_fn), "classes": tuple(classes), "code": code,
            "data": content_key([clips["subject"].tolist(), clips["clip"].tolist(), dataset.labels.tolist()], 16),
            "frames": frames_key(clips)}


def run_cv(dataset, folds: list[Fold], model_fn: Callable[[], nn.Module], cfg: TrainConfig,
           out_dir: str | os.PathLike, classes: tuple[str, ...] | list[str], desc: str = "folds", progress: bool = True,
           save_models: bool | Collection[str] = False, parallel: Parallel | None = None) -> CVResult:
    """Cross-validate: a fresh ``model_fn()`` per fold (``model_fn(fold)`` for a :class:`PerFold`,
    which gets None when only the architecture is wanted), trained on
    ``dataset.subset(train, True)``; with ``cfg.patience`` a share of the training subjects
    is held out of training to early-stop on (never the test subject).

    A fold's record is reused only when its key matches: the training settings, the
    dataset's and the model's own keys (:func:`run_key`), the classes, the clips and
    labels, the code that trains it and the source frames (:mod:`mer.train.provenance`);
    a record with another key is counted in ``folds_stale`` and recomputed.

    ``dataset`` needs ``.clips`` (the clip table, row order = indices of ``folds``),
    ``.labels``, ``.subset(idx, train)`` and ``.key()``; ``model_fn`` is a
    :class:`~mer.models.spec.Spec` (or anything callable with a ``key()``).
    ``save_models`` (True, or a collection of fold names) also keeps those folds' trained
    weights beside their records (``<fold>.pt``), for figures drawn from a fold's own model
    (:func:`load_fold_model`) without training it again.
    ``parallel`` (:class:`~mer.train.parallel.Parallel`; default: in this process) trains
    the folds that are not on disk on Dask workers; each record is written here as its
    fold finishes, and the pooled results are assembled in the order of ``folds``.
    """
    t0 = time.perf_counter()
    plan = plan_cv(dataset, folds, model_fn, cfg, out_dir, classes, save_models)
    _execute([plan], parallel, desc, progress)
    return plan.result(desc, time.perf_counter() - t0)


@dataclass(frozen=True)
class FoldJob:
    """A fold to train: the fold, its record's key, and whether its weights are kept."""
    fold: Fold
    key: str
    keep: bool


@dataclass
class CVPlan:
    """One cross-validated run before training: what it trains (``todo``), the records
    already on disk (``records``, fold name -> record), and where the new ones go."""
    dataset: object
    folds: list[Fold]
    model_fn: Callable
    cfg: TrainConfig
    out: Path
    classes: tuple[str, ...]
    code: dict
    records: dict
    todo: list[FoldJob]
    resumed: int
    stale: int

    def finished(self, job: FoldJob, record: dict, state: dict | None) -> None:
        """Write a fold's record (and kept weights) as it comes back."""
        if state is not None:
            replace_atomic(fold_file(self.out, job.fold.name, ".pt"),
                            lambda tmp: torch.save({"key": job.key, "state": state}, tmp))
        _write_json_atomic(fold_file(self.out, job.fold.name, ".json"), record)
        self.records[job.fold.name] = record

    def result(self, desc: str, seconds: float) -> CVResult:
        """The pooled result, in the order of the folds whatever order they finished in."""
        rows, curves, fold_scores = [], [], []
        for fold in self.folds:
            record = self.records[fold.name]
            for i in range(len(record["clip"])):
                row = {"fold": record["fold"], "subject": record["subject"][i], "clip": record["clip"][i],
                       "y_true": record["y_true"][i], "y_pred": record["y_pred"][i]}
                row.update({f"p_{c}": record["probs"][i][j] for j, c in enumerate(self.classes)})
                rows.append(row)
            curves += [{"fold": record["fold"], **c} for c in record["curve"]]
            fold_scores.append({"fold": record["fold"], **record["metrics"]})
        preds = pd.DataFrame(rows)
        pooled = scores(preds["y_true"], preds["y_pred"], self.classes)
        per_fold = pd.DataFrame(fold_scores, columns=["fold", *HEADLINE])
        if self.stale:
            print(f"{desc}: {self.stale} stale fold record(s) in {self.out} (other code, settings or source frames) "
                  "recomputed")
        epoch_preds = None
        if self.cfg.test_epochs and all("epoch_preds" in self.records[f.name] for f in self.folds):
            epoch_preds = {self.records[f.name]["fold"]: np.asarray(self.records[f.name]["epoch_preds"], dtype=int).T
                           .reshape(len(self.records[f.name]["clip"]), -1) for f in self.folds}
        return CVResult(pooled, preds, per_fold, pd.DataFrame(curves), self.classes, self.resumed, seconds,
                        folds_stale=self.stale, epoch_preds=epoch_preds)


def plan_cv(dataset, folds: list[Fold], model_fn, cfg: TrainConfig, out_dir: str | os.PathLike, classes,
            save_models: bool | Collection[str] = False) -> CVPlan:
    """What :func:`run_cv` has to train: each fold's key, its record when one with that key
    is on disk (reused), else a :class:`FoldJob`."""
    out = Path(out_dir) / "folds"
    out.mkdir(parents=True, exist_ok=True)
    clips = dataset.clips
    classes = tuple(classes)
    ident = run_ident(dataset, model_fn, cfg, classes)
    records, todo, resumed, stale = {}, [], 0, 0
    for fold in folds:
        check_disjoint(clips["subject"], fold)
        key = content_key(ident | {"fold": fold.name, "test": fold.test_idx.tolist()}, 16)
        record = _read_fold(fold_file(out, fold.name, ".json"))
        if record is not None and record.get("key") != key:
            record, stale = None, stale + 1
        keep = save_models is True or bool(save_models and fold.name in save_models)
        if record is not None and keep and _saved_state(out, fold.name, key) is None:
            record = None  # the weights are wanted but missing or stale: train the fold again
        if record is not None and cfg.test_epochs and "epoch_preds" not in record:
            record = None  # the test-epoch diagnostic is wanted and this record has none: train it again
        if record is None:
            todo.append(FoldJob(fold, key, keep))
        else:
            records[fold.name] = record
            resumed += 1
    return CVPlan(dataset, list(folds), model_fn, cfg, out, classes, ident["code"], records, todo, resumed, stale)


def _execute(plans: list[CVPlan], parallel: Parallel | None, desc: str, progress: bool) -> None:
    """Train every plan's missing folds (together, on Dask workers, when ``parallel``
    says so), writing each record as it comes back; one progress bar over all folds."""
    total = sum(len(p.folds) for p in plans)
    resumed = sum(p.resumed for p in plans)
    bar = tqdm(total=total, initial=resumed, desc=desc, disable=not progress)
    bar.set_postfix(resumed=resumed)
    units = [(plan, job) for plan in plans for job in plan.todo]
    try:
        with contextlib.closing(train_folds(units, parallel, progress)) as finishing:
            for (plan, job), record, state in finishing:
                plan.finished(job, record, state)
                bar.update(1)
                bar.set_postfix(fold=job.fold.name, resumed=resumed)
    finally:
        bar.close()


def train_fold(dataset, model_fn, cfg: TrainConfig, job: FoldJob, code: dict, classes: tuple[str, ...],
               device: torch.device, progress: bool = True) -> tuple[dict, dict | None]:
    """Train and test one fold from its own seed; its record and (when kept) its weights on
    the CPU. The same on whatever process or machine it runs."""
    with fold_threads(device):
        return _train_fold(dataset, model_fn, cfg, job, code, classes, device, progress)


def _train_fold(dataset, model_fn, cfg: TrainConfig, job: FoldJob, code: dict, classes: tuple[str, ...],
                device: torch.device, progress: bool) -> tuple[dict, dict | None]:
    fold, clips = job.fold, dataset.clips
    seed = fold_seed(cfg.seed, fold.name)
    seed_everything(seed)
    model = build_model(model_fn, fold).to(device)
    train_idx, val_ds = fold.train_idx, None
    if cfg.patience > 0:
        train_idx, val_idx = validation_split(clips["subject"].to_numpy(), fold.train_idx, cfg.val_subjects, seed)
        val_ds = dataset.subset(val_idx, train=False)
    test_ds = dataset.subset(fold.test_idx, train=False)
    watch = (lambda m: predict(m, test_ds, device, amp=cfg.amp).argmax(1).tolist()) if cfg.test_epochs else None
    fitted = fit(model, dataset.subset(train_idx, train=True), cfg, seed, device, desc=f"fold {fold.name}",
                 progress=progress, val_ds=val_ds, watch=watch)
    probs = predict(model, test_ds, device, amp=cfg.amp)
    test = clips.iloc[fold.test_idx]
    y_true = dataset.labels[fold.test_idx]
    y_pred = probs.argmax(1)
    record = {"key": job.key, "fold": fold.name, "test_subjects": list(fold.test_subjects),
              "subject": test["subject"].astype(str).tolist(), "clip": test["clip"].astype(str).tolist(),
              "y_true": y_true.tolist(), "y_pred": y_pred.tolist(), "probs": probs.round(6).tolist(),
              "curve": fitted.curve, "seconds": fitted.seconds, "code": code, "device": str(device),
              "threads": torch.get_num_threads(),  # a float sum's last bits depend on it (not in the key)
              "metrics": headline(scores(y_true, y_pred, classes))}
    if cfg.test_epochs:  # diagnostic only (TrainConfig.test_epochs): epoch -> the test clips' predicted classes
        record["epoch_preds"] = fitted.watched
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()} if job.keep else None
    return record, state


def _requirement_on_worker(model_fn: "PerFold", fold: Fold) -> None:
    """A fold's requirement (:meth:`PerFold.requirement`) as a Dask task: done and cached
    where the folds read it (the outputs folder, shared by the workers)."""
    from mer.train.parallel import worker_device
    worker_device("auto")  # on a machine with several GPUs, this worker's own
    with preserved_rng():
        model_fn.requirement(fold)[1]()


def _fold_on_worker(dataset, model_fn, cfg: TrainConfig, job: FoldJob, code: dict, classes: tuple[str, ...],
                    after=None):
    """:func:`train_fold` as a Dask task (once ``after``, its requirement, is done): on the
    worker's device, without per-epoch bars."""
    from mer.train.parallel import worker_device
    return train_fold(dataset, model_fn, cfg, job, code, classes, worker_device(cfg.device), progress=False)


def train_folds(units: list[tuple[CVPlan, FoldJob]], parallel: Parallel | None = None, progress: bool = True):
    """Train each ``(plan, job)``, yielding ``((plan, job), record, state)`` as each fold
    finishes: in this process in order, or on the Dask workers of ``parallel`` in the
    order they finish. On Dask each dataset and model factory is sent once, and a
    requirement several folds share (:meth:`PerFold.requirement`, e.g. one pre-training)
    runs once, before them."""
    if not units:
        return
    if parallel is None or parallel.in_process:
        for plan, job in units:
            device = resolve_device(plan.cfg.device)
            yield (plan, job), *train_fold(plan.dataset, plan.model_fn, plan.cfg, job, plan.code, plan.classes, device,
                                           progress)
        return
    from distributed import as_completed
    from mer.train.parallel import client
    dask = client(parallel)
    tag = f"{os.getpid()}-{time.time_ns()}"
    sent: dict[int, object] = {}  # id of a dataset or model factory -> its future on the cluster
    for plan, _ in units:
        for obj in (plan.dataset, plan.model_fn):
            if id(obj) not in sent:
                sent[id(obj)] = dask.scatter(obj, broadcast=False, hash=False)
    needs, first = {}, {}
    for plan, job in units:
        need = plan.model_fn.requirement(job.fold) if hasattr(plan.model_fn, "requirement") else None
        if need is not None:  # the key is computed here; the work is sent as (factory, fold), not as a closure
            if need[0] not in first:
                first[need[0]] = dask.submit(_requirement_on_worker, sent[id(plan.model_fn)], job.fold, pure=False,
                                             key=f"needs-{need[0]}-{tag}")
            needs[job.key] = first[need[0]]
    futures = {dask.submit(_fold_on_worker, sent[id(plan.dataset)], sent[id(plan.model_fn)], plan.cfg, job, plan.code,
                           plan.classes, needs.get(job.key), pure=False, key=f"fold-{job.key}-{tag}"): (plan, job)
               for plan, job in units}
    failure = None
    try:
        for future in as_completed(list(futures), loop=dask.loop):
            unit = futures.pop(future)  # released once written: results do not pile up on the workers
            if future.status != "finished":
                failure = (unit, future)
                break
            yield (unit, *future.result())
        if failure is not None:  # folds that finished meanwhile keep their records
            for future in [f for f in futures if f.status == "finished"]:
                yield (futures.pop(future), *future.result())
    finally:
        left = [*futures, *first.values()]
        if left:
            dask.cancel(left, force=True)
    if failure is not None:
        (plan, job), future = failure
        exc = future.exception()
        if parallel.scheduler is None:  # a fresh local cluster next time: the failed worker may be unusable
            from mer.train.parallel import forget
            forget(parallel)
        raise RuntimeError(f"fold {job.fold.name} of {plan.out.parent} failed on a Dask worker: "
                           f"{type(exc).__name__}: {exc}") from exc


def fold_file(folds_dir: Path, fold_name: str, suffix: str) -> Path:
    """Where a fold's record (``.json``) or weights (``.pt``) live: the fold's name made
    path-safe (a composite's ``casme2/sub01`` has a slash); the real name stays in the record."""
    return Path(folds_dir) / (safe_name(fold_name) + suffix)


def _saved_state(folds: Path, fold_name: str, key: str) -> dict | None:
    """The weights kept for a fold (``<fold>.pt``) if they belong to the run with ``key``."""
    weights = fold_file(folds, fold_name, ".pt")
    if not weights.is_file():
        return None
    try:
        saved = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file: report it; the fold is retrained
        print(f"warning: {weights} is unreadable ({exc}); retraining fold {fold_name}")
        return None
    return saved["state"] if isinstance(saved, dict) and saved.get("key") == key else None


def load_fold_model(out_dir: str | os.PathLike, fold_name: str, model_fn: Callable[[], nn.Module]) -> nn.Module | None:
    """The trained model of one fold of a :func:`run_cv` run with ``save_models``, on the CPU
    in eval mode; None when its weights are absent or belong to another run of that fold."""
    folds = Path(out_dir) / "folds"
    record = _read_fold(fold_file(folds, fold_name, ".json"))
    state = None if record is None else _saved_state(folds, fold_name, record.get("key"))
    if state is None:
        return None
    model = build_model(model_fn, None)
    model.load_state_dict(state)
    return model.eval()


def _read_fold(path: Path) -> dict | None:
    """A finished fold's record, whatever its key, or None (absent or unreadable)."""
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        print(f"warning: {path} is unreadable ({exc}); recomputing this fold")
        return None
    return record


def run_variants(variants: dict[str, tuple], folds: list[Fold], cfg: TrainConfig, out_dir: str | os.PathLike,
                 classes, folds_label: str, progress: bool = True, results: dict | None = None,
                 parallel: Parallel | None = None) -> pd.DataFrame:
    """Ablations: each variant ``name -> (dataset, model_fn)`` or ``(dataset, model_fn,
    config)`` (its own training settings; ``cfg`` otherwise) under the same folds; one row
    per variant (acc, UF1, UAR pooled over its folds). Pass a dict as ``results`` to also get
    each variant's :class:`CVResult` (predictions included). In this process the variants
    run one after another; on Dask workers (``parallel``) every variant's folds are
    queued together, so the workers stay busy across variants."""
    plans = {}
    for name, spec in variants.items():
        if not 2 <= len(spec) <= 3:
            raise ValueError(f"ablation {name!r}: give (dataset, model) or (dataset, model, TrainConfig)")
        dataset, model_fn, own_cfg = (*spec, cfg) if len(spec) == 2 else spec
        plans[name] = plan_cv(dataset, folds, model_fn, own_cfg or cfg, Path(out_dir) / safe_name(name), classes)
    rows = []
    together = parallel is not None and not parallel.in_process
    if together:  # each variant's seconds are then the whole batch's
        t0 = time.perf_counter()
        _execute(list(plans.values()), parallel, f"ablations ({len(plans)} variants)", progress)
        batch = time.perf_counter() - t0
    for name, plan in plans.items():
        if not together:
            t0 = time.perf_counter()
            _execute([plan], parallel, f"ablation: {name}", progress)
        r = plan.result(f"ablation: {name}", batch if together else time.perf_counter() - t0)
        rows.append({"variant": name, "folds": folds_label, "acc": r.metrics["acc"], "uf1": r.metrics["uf1"],
                     "uar": r.metrics["uar"]})
        if results is not None:
            results[name] = r
    return pd.DataFrame(rows, columns=["variant", "folds", "acc", "uf1", "uar"])
