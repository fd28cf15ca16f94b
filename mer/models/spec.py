"""A model named by its registry id and arguments, so that what a run trains is data.

``Spec("atm_gcn", num_classes=5, config="quick")`` builds a fresh model each time it is
called, and :meth:`Spec.key` is what a run's cache key takes from the model: the registry
id, every argument, and what is built per fold. A key is never written by hand, so an
argument cannot be forgotten in it.
"""
from __future__ import annotations

from typing import Callable

from torch import nn

from mer.paths import describe


class Spec:
    """``Spec(name, **kwargs)``: ``spec()`` is ``mer.models.create(name, **kwargs)``.

    ``per_fold`` (optional) gives arguments that depend on the fold, computed from its
    training clips only (MER-GCN's co-occurrence graph): ``per_fold(fold) -> dict``. It is
    called with each fold by the training loop; ``spec()`` without a fold builds the
    architecture alone. Its ``key()`` (or qualified name) enters :meth:`key`."""

    takes_fold = True  # the training loop passes the fold (mer.train.engine.build_model)

    def __init__(self, name: str, per_fold: Callable[[object], dict] | None = None, **kwargs):
        self.name, self.per_fold, self.kwargs = name, per_fold, kwargs

    def __call__(self, fold=None) -> nn.Module:
        from mer.models import create
        extra = self.per_fold(fold) if self.per_fold is not None and fold is not None else {}
        return create(self.name, **self.kwargs, **extra)

    def variant(self, **changes) -> "Spec":
        """The same model with some arguments changed (an ablation row)."""
        return Spec(self.name, self.per_fold, **{**self.kwargs, **changes})

    def key(self) -> dict:
        out = {"model": self.name, "args": describe(self.kwargs)}
        if self.per_fold is not None:
            out["per_fold"] = describe(self.per_fold)
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"Spec({self.name!r}{', ' + args if args else ''})"
