"""The baseline: ResNet-18 (timm) on the apex-minus-onset difference image.

p5 uses this network as its base ("Baseline(ResNet)", Table 2). Trained from scratch by
default; ImageNet weights only from a local file (``pretrained_path``), never downloaded.
"""
from __future__ import annotations

import os

import timm
import torch
from torch import nn

from mer.models import register


def load_local_weights(model: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a local state dict, skipping tensors whose shapes differ (e.g. the classifier)."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained weights {path} not found (weights are never downloaded)")
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{path}: no tensor matches the model's parameter names and shapes")
    model.load_state_dict(usable, strict=False)
    return model


@register("resnet18_diff")
def resnet18_diff(num_classes: int = 5, in_chans: int = 3, drop_rate: float = 0.0,
                  pretrained_path: str | None = None) -> nn.Module:
    model = timm.create_model("resnet18", pretrained=False, num_classes=num_classes, in_chans=in_chans,
                              drop_rate=drop_rate)
    if pretrained_path:
        load_local_weights(model, pretrained_path)
    return model
