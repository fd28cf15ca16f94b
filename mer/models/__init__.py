"""Model registry, as timm does: ``create(name, num_classes=..., **cfg)``.

Each paper module registers its main model under its method id; the baseline's model is
``resnet18_diff``. Pretrained weights load only from a local path (``pretrained_path``).
"""
from __future__ import annotations

import importlib
from typing import Callable

from torch import nn

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_MODULES = ["mer.models.resnet", "mer.models.atm_gcn", "mer.models.cva_fpf", "mer.models.gam_mer", "mer.models.tdsgcn",
            "mer.models.mer_gcn"]


def register(name: str):
    def deco(fn: Callable[..., nn.Module]):
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise KeyError(f"model {name!r} registered twice")
        _REGISTRY[name] = fn
        return fn
    return deco


def _load_all() -> None:
    for mod in _MODULES:
        importlib.import_module(mod)


def available() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def create(name: str, **cfg) -> nn.Module:
    _load_all()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name](**cfg)
