"""Losses: multi-class focal loss (p3, p4) beside cross-entropy."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FocalLoss(nn.Module):
    """FL = -alpha_c (1 - p_t)^gamma log p_t, averaged over the batch (multi-class form).

    ``alpha`` is a scalar or one weight per class (e.g. computed from the training fold);
    gamma = 0 and alpha = 1 give cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, alpha: float | Sequence[float] | torch.Tensor = 1.0):
        super().__init__()
        if gamma < 0:
            raise ValueError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = float(gamma)
        self.register_buffer("alpha", torch.as_tensor(alpha, dtype=torch.float32))

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits, dim=-1).gather(1, target[:, None]).squeeze(1)
        p = logp.exp()
        alpha = self.alpha if self.alpha.ndim == 0 else self.alpha.to(logits.device)[target]
        return (-alpha * (1 - p).clamp(min=0) ** self.gamma * logp).mean()


def make_loss(name: str = "ce", **kw) -> nn.Module:
    if name == "ce":
        return nn.CrossEntropyLoss(label_smoothing=kw.get("label_smoothing", 0.0))
    if name == "focal":
        return FocalLoss(gamma=kw.get("gamma", 2.0), alpha=kw.get("alpha", 1.0))
    raise ValueError(f"unknown loss {name!r}; use 'ce' or 'focal'")
