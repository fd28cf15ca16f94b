"""Model registry, as timm does: ``create(name, num_classes=..., **cfg)``.

Each paper module registers its main model under its method id; the baseline's model is
``resnet18_diff``. Pretrained weights load only from a local path (``pretrained_path``).
Every module of this package is imported on first use, so a new ``mer/models/<method>.py``
needs no entry here.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register(name: str):
    def deco(fn: Callable[..., nn.Module]):
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise KeyError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn
    return deco


def _load_all() -> None:
    """Import every public module of this package, so each ``@register`` runs: a new method's
    module is found without a list (modules named ``_x`` are skipped)."""
    for info in pkgutil.iter_modules(__path__, __name__ + "."):
        if not info.name.rsplit(".", 1)[-1].startswith("_"):
            importlib.import_module(info.name)


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def create(name: str, **cfg) -> nn.Module:
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**cfg)


from mer.models.spec import Spec  # noqa: E402  (a model by registry id and arguments; its key() enters run keys)
