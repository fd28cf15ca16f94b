"""Macro -> micro transfer (p3): pre-train on macro-expression clips, fine-tune on micro.

Per fold, the macro table loses every subject of the fold's test set first
(:meth:`Pretrainer.kept`, then the guard :func:`~mer.train.splits.guard_pretraining`
checks it), so a test subject's face never
reaches the model through pre-training. Pre-training holds out a share of the macro
subjects to report its accuracy on unseen faces (and to early-stop on, with
``patience``). Each pre-trained model is cached under ``out_dir`` keyed by everything
that determines it (settings, the macro clips used), so folds whose macro sets are equal
(SynthME: the macro subjects are never micro subjects) share one pre-training.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from mer.paths import content_key, replace_atomic
from mer.train.engine import (PerFold, TrainConfig, config_ident, evaluate, fit, fold_threads, preserved_rng,
                              resolve_device, run_key, seed_everything, validation_split)
from mer.train.losses import make_loss
from mer.train.provenance import code_version, frames_key
from mer.train.splits import Fold, guard_pretraining


class Pretrainer:
    """Pre-trains ``model_fn()`` on ``macro`` (a dataset with ``clips``, ``labels``,
    ``subset``) minus given subjects; :meth:`__call__` returns the record
    {"state", "curve", "val_acc", "train_acc", "subjects", "val_subjects", "clips", "seconds"}."""

    def __init__(self, macro, model_fn: Callable[[], nn.Module], cfg: TrainConfig, out_dir: str | Path,
                 classes, progress: bool = True):
        self.macro, self.model_fn, self.cfg = macro, model_fn, cfg
        self.out_dir = Path(out_dir)
        self.classes = tuple(classes)
        self.progress = progress
        self._memo: dict[str, dict] = {}
        self._code: dict | None = None

    def kept(self, exclude=()) -> np.ndarray:
        """Rows of the macro table whose subject is not in ``exclude``."""
        return np.flatnonzero(~self.macro.clips["subject"].astype(str).isin({str(s) for s in exclude}).to_numpy())

    def key(self, exclude=()) -> str:
        """Everything the pre-trained model depends on: settings, the macro dataset's and the
        model's keys, classes, the macro clips kept, their source frames and the code
        (:mod:`mer.train.provenance`)."""
        keep = self.kept(exclude)
        clips = self.macro.clips.iloc[keep]
        if self._code is None:
            with preserved_rng():  # building the architecture draws its initial weights
                self._code = code_version(self.model_fn(), self.macro)
        return content_key({"cfg": config_ident(self.cfg), "run": run_key(self.macro, self.model_fn),
                            "classes": self.classes, "code": self._code, "frames": frames_key(clips),
                            "clips": [clips["subject"].astype(str).tolist(), clips["clip"].astype(str).tolist(),
                                      self.macro.labels[keep].tolist()]}, 16)

    def __call__(self, exclude=()) -> dict:
        key = self.key(exclude)
        if key in self._memo:
            return self._memo[key]
        path = self.out_dir / f"pretrain_{key}.pt"
        record = None
        if path.is_file():
            try:
                record = torch.load(path, map_location="cpu", weights_only=True)
            except Exception as exc:  # truncated or foreign: say so and train again
                print(f"warning: {path} is unreadable ({exc}); pre-training again")
        if record is None:
            with preserved_rng(), fold_threads(resolve_device(self.cfg.device)):  # the same bytes on any process
                record = self._train(exclude)
            record["key"] = key
            self.out_dir.mkdir(parents=True, exist_ok=True)
            replace_atomic(path, lambda tmp: torch.save(record, tmp))
        self._memo[key] = record
        return record

    def _train(self, exclude) -> dict:
        subjects = self.macro.clips["subject"].astype(str).to_numpy()
        keep = self.kept(exclude)
        guard_pretraining(self.macro.clips.iloc[keep], exclude)
        seed = self.cfg.seed
        train_idx, val_idx = validation_split(subjects, keep, self.cfg.val_subjects, seed)
        seed_everything(seed)
        device = resolve_device(self.cfg.device)
        model = self.model_fn().to(device)
        val = self.macro.subset(val_idx, train=False)
        fitted = fit(model, self.macro.subset(train_idx, train=True), self.cfg, seed, device, desc="pre-training",
                     progress=self.progress, val_ds=val)
        loss_fn = make_loss(self.cfg.loss, gamma=self.cfg.focal_gamma, alpha=self.cfg.focal_alpha).to(device)
        _, val_acc = evaluate(model, val, loss_fn, device, amp=self.cfg.amp)
        _, train_acc = evaluate(model, self.macro.subset(train_idx, train=False), loss_fn, device, amp=self.cfg.amp)
        return {"state": {k: v.cpu() for k, v in model.state_dict().items()}, "curve": fitted.curve,
                "val_acc": val_acc, "train_acc": train_acc, "seconds": fitted.seconds,
                "subjects": sorted(set(subjects[train_idx])), "val_subjects": sorted(set(subjects[val_idx])),
                "clips": int(len(keep))}


def transferred(model_fn: Callable[[], nn.Module], pretrainer: Pretrainer, freeze: bool = False) -> PerFold:
    """A per-fold factory: ``model_fn()`` with its SGCNs loaded from a pre-training on the
    macro clips of every subject except the fold's test subjects (``load_sgcns``); with
    ``freeze`` the loaded SGCNs only extract features (``freeze_sgcns``: fixed weights, eval
    mode) and the class head alone is trained, as the paper describes its transfer;
    without, every weight is fine-tuned."""
    def build(fold: Fold | None) -> nn.Module:
        model = model_fn()
        if fold is not None:
            model.load_sgcns(pretrainer(fold.test_subjects)["state"])
            if freeze:
                model.freeze_sgcns()
        return model
    def requires(fold: Fold):  # the fold's pre-training: on Dask workers, done once per distinct macro set
        return pretrainer.key(fold.test_subjects), lambda: pretrainer(fold.test_subjects)
    return PerFold(build, {**model_fn.key(), "pretraining": pretrainer.key(), "freeze": bool(freeze)}, requires)
