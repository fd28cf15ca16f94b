"""p4 ATM-GCN: Adaptive Temporal Motion guided Graph Convolution Network.

Pipeline (paper section III):
1. Temporal motion pairing: differences f_i - f_onset for i = 2..T, each with a temporal
   positional encoding of i, through an MMNet-style CA motion encoder -> m_i.
2. Graph: one local node per pair plus a Global Motion Node initialised from the
   onset-apex pair. Local edges within a window w (self included), every local node
   linked to the global node, the global node linked to every node. Edge weight
   A_ij = (1 - arccos(cos_sim(h_i, h_j)) / pi) * exp(-|t_i - t_j| / tau), multiplied by
   lambda_global on the global node's edges and lambda_local on the others
   (lambda_local < lambda_global).
3. TM-GCN layers; before each layer after the first, Adaptive-TM updates the adjacency:
   A(l) = FC(A(l-1)) * (1 - f_l) + A(0) * f_l.
4. Self-attention over the final node features, mean pooling, FC. Loss: focal (engine).

Assumptions (not stated in the paper; each is a parameter):
- assumption: a clip is T frames (uniform over onset..offset, the apex frame among them)
  so that a batch is one tensor; the paper resamples to 30 Hz with a variable length.
  ``frames`` = T; paper_small uses T = 10 (about a CASME II/SAMM clip at 30 Hz).
- assumption: the temporal positional encoding is a sinusoidal code of the frame index
  mapped by a linear layer (zero-initialised) to one bias per input channel, added to the
  difference image; differences are multiplied by ``diff_gain`` first (micro-motion
  changes pixels by a few grey levels, which the encoding and BatchNorm would swamp).
- assumption: the global node's temporal position is the apex index; the global node is
  encoded by its own pass of the encoder on f_apex - f_onset.
- assumption: messages flow along the directed edges (i -> j: node j sums A_ij h_i), so
  the global node's edges (lambda_global) carry its feature to every local node; no
  degree normalisation (it would cancel the lambdas), a LayerNorm after each layer.
- assumption: the TM-GCN layer is h' = h + dropout(ReLU(LN(A^T h W + h W_self))).
- assumption: Adaptive-TM's FC is a linear map on each row of A (N -> N), initialised to
  the identity, its output kept non-negative and on the graph's edges; f_l is a learned
  forgetting rate sigmoid(p_l), p_l initialised to 0 (f = 0.5).
- assumption: A(0) comes from the initial node features h(0); without Adaptive-TM every
  layer uses A(0) (the paper's "w/o ATM" variant).
- assumption: "w/o motion" feeds the frames f_i themselves (not differences) to the
  encoder; "w/o GCN" mean-pools the motion features before the classifier.

How the quick profile's settings were chosen (tuning probes on SynthME, synthetic numbers) is
in params/atm_gcn/NOTES.md.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from mer.models import register
from mer.models.blocks import MotionEncoder

CONFIGS: dict[str, dict] = {
    # CASME II / SAMM: 2 CA blocks, 2 layers, w = 1, 224 px input
    "paper_small": dict(stem=180, channels=(128, 128), strides=(1, 2), layers=2, window=1, hidden=256, frames=10,
                        grid=1),
    # CAS(ME)^3: 4 CA blocks, 4 layers, w = 2
    "paper_large": dict(stem=180, channels=(128, 128, 256, 512), strides=(1, 2, 2, 2), layers=4, window=2,
                        hidden=256, frames=12, grid=1),
    # CPU-sized for SynthME: 64 px input, narrow encoder 64 -> 32 -> 16 -> 8, pooled to a 4x4 grid
    "quick": dict(stem=32, channels=(32, 64), strides=(2, 2), layers=2, window=1, hidden=64, frames=4, grid=4),
}


def edge_mask(n_local: int, window: int) -> torch.Tensor:
    """(N, N) bool, N = n_local + 1 (global last): row i holds the edges (v_i, v_j)."""
    n = n_local + 1
    idx = torch.arange(n_local)
    mask = torch.zeros(n, n, dtype=torch.bool)
    mask[:n_local, :n_local] = (idx[:, None] - idx[None, :]).abs() <= window
    mask[:n_local, -1] = True  # local -> global
    mask[-1, :] = True  # global -> every node (itself included)
    return mask


def edge_weights(h: torch.Tensor, times: torch.Tensor, mask: torch.Tensor, tau: float = 10.0,
                 lambda_local: float = 1.0, lambda_global: float = 2.0) -> torch.Tensor:
    """Equations 7-8 for a batch: h (B, N, D), times (B, N) -> A (B, N, N), global node last."""
    hn = F.normalize(h, dim=-1)
    cos = (hn @ hn.transpose(1, 2)).clamp(-1 + 1e-6, 1 - 1e-6)
    sim = 1 - torch.arccos(cos) / math.pi
    decay = torch.exp(-(times[:, :, None] - times[:, None, :]).abs() / tau)
    lam = torch.full(mask.shape, lambda_local, dtype=h.dtype, device=h.device)
    lam[-1, :] = lambda_global
    return sim * decay * lam * mask.to(h.dtype)


class AdaptiveTM(nn.Module):
    """A(l) = FC(A(l-1)) * (1 - f) + A(0) * f, FC acting on each row, kept on the edges."""

    def __init__(self, n: int, forget_logit: float = 0.0):
        super().__init__()
        self.fc = nn.Linear(n, n)
        with torch.no_grad():
            self.fc.weight.copy_(torch.eye(n))
            self.fc.bias.zero_()
        self.forget = nn.Parameter(torch.tensor(float(forget_logit)))

    @property
    def f(self) -> torch.Tensor:
        return torch.sigmoid(self.forget)

    def forward(self, a_prev: torch.Tensor, a0: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        fc = F.relu(self.fc(a_prev)) * mask.to(a_prev.dtype)
        return fc * (1 - self.f) + a0 * self.f


class TMGCNLayer(nn.Module):
    def __init__(self, dim: int, dropout: float = 0.1):
        super().__init__()
        self.w = nn.Linear(dim, dim, bias=False)
        self.w_self = nn.Linear(dim, dim)
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        msg = a.transpose(1, 2) @ self.w(h)  # node j sums A_ij * W h_i over its in-edges
        return h + self.drop(F.relu(self.norm(msg + self.w_self(h))))


def sinusoid(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """(..., dim) sinusoidal code of integer positions."""
    freqs = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=pos.device) * (-math.log(100.0) / dim))
    ang = pos.float()[..., None] * freqs
    return torch.cat([ang.sin(), ang.cos()], dim=-1)


class ATMGCN(nn.Module):
    def __init__(self, num_classes: int = 5, config: str = "quick", in_chans: int = 3, frames: int | None = None,
                 stem: int | None = None, channels=None, strides=None, layers: int | None = None,
                 window: int | None = None, hidden: int | None = None, tau: float = 10.0,
                 lambda_local: float = 1.0, lambda_global: float = 2.0, heads: int = 4, dropout: float = 0.1,
                 pos_dim: int = 16, diff_gain: float = 10.0, grid: int | None = None, use_gcn: bool = True, use_motion: bool = True,
                 use_atm: bool = True):
        super().__init__()
        if config not in CONFIGS:
            raise KeyError(f"unknown ATM-GCN config {config!r}; known: {sorted(CONFIGS)}")
        c = dict(CONFIGS[config])
        for k, v in dict(frames=frames, stem=stem, channels=channels, strides=strides, layers=layers,
                         window=window, hidden=hidden, grid=grid).items():
            if v is not None:
                c[k] = v
        if not lambda_local < lambda_global:
            raise ValueError(f"the paper requires lambda_local < lambda_global ({lambda_local} vs {lambda_global})")
        self.frames, self.window, self.tau = c["frames"], c["window"], tau
        self.lambda_local, self.lambda_global = lambda_local, lambda_global
        self.use_gcn, self.use_motion, self.use_atm = use_gcn, use_motion, use_atm
        self.pos_dim, self.diff_gain = pos_dim, diff_gain
        self.pos = nn.Linear(pos_dim, in_chans)
        nn.init.zeros_(self.pos.weight)
        nn.init.zeros_(self.pos.bias)
        self.encoder = MotionEncoder(in_chans, c["stem"], c["channels"], c["strides"], c["grid"])
        self.proj = nn.Sequential(nn.Linear(self.encoder.out_dim, c["hidden"]), nn.LayerNorm(c["hidden"]))
        n = self.frames  # T - 1 local nodes + the global node
        self.gcn = nn.ModuleList(TMGCNLayer(c["hidden"], dropout) for _ in range(c["layers"]))
        self.adapt = nn.ModuleList(AdaptiveTM(n) for _ in range(c["layers"] - 1))
        self.attn = nn.MultiheadAttention(c["hidden"], heads, dropout=dropout, batch_first=True)
        self.attn_norm = nn.LayerNorm(c["hidden"])
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c["hidden"], num_classes))
        self.register_buffer("mask", edge_mask(n - 1, self.window), persistent=False)
        self.config = c

    def _inputs(self, frames: torch.Tensor, apex_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, t = frames.shape[:2]
        if t != self.frames:
            raise ValueError(f"ATM-GCN built for {self.frames} frames per clip, got {t}")
        onset = frames[:, :1]
        apex = frames[torch.arange(b, device=frames.device), apex_index]
        seq = (frames[:, 1:] - onset) * self.diff_gain if self.use_motion else frames[:, 1:]
        glob = (apex - onset[:, 0]) * self.diff_gain if self.use_motion else apex
        pos = torch.arange(1, t, device=frames.device).expand(b, t - 1)
        seq = seq + self.pos(sinusoid(pos, self.pos_dim))[..., None, None]
        glob = glob + self.pos(sinusoid(apex_index, self.pos_dim))[..., None, None]
        return seq, glob

    def node_features(self, frames: torch.Tensor, apex_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial node features h(0) (B, N, D), global node last, and node times (B, N)."""
        seq, glob = self._inputs(frames, apex_index)
        b, n_local = seq.shape[:2]
        m = self.encoder(torch.cat([seq.flatten(0, 1), glob]))
        h = self.proj(m)
        h = torch.cat([h[: b * n_local].view(b, n_local, -1), h[b * n_local:, None]], dim=1)
        times = torch.cat([torch.arange(1, n_local + 1, device=frames.device).expand(b, n_local),
                           apex_index[:, None]], dim=1).float()
        return h, times

    def adjacencies(self, h0: torch.Tensor, times: torch.Tensor) -> list[torch.Tensor]:
        """The adjacency used by each TM-GCN layer (A(0), then Adaptive-TM updates)."""
        a0 = edge_weights(h0, times, self.mask, self.tau, self.lambda_local, self.lambda_global)
        out = [a0]
        for adapt in self.adapt:
            out.append(adapt(out[-1], a0, self.mask) if self.use_atm else a0)
        return out

    def forward(self, frames: torch.Tensor, apex_index: torch.Tensor) -> torch.Tensor:
        h, times = self.node_features(frames, apex_index)
        if self.use_gcn:
            for layer, a in zip(self.gcn, self.adjacencies(h, times)):
                h = layer(h, a)
        else:
            return self.head(h.mean(dim=1))
        att, _ = self.attn(h, h, h, need_weights=False)
        h = self.attn_norm(h + att)
        return self.head(h.mean(dim=1))

    @torch.no_grad()
    def attention_maps(self, frames: torch.Tensor, apex_index: torch.Tensor, block: int = 0) -> torch.Tensor:
        """First CA block's attention maps of each local pair: (B, T-1, h, w) (the paper's Fig. 5)."""
        seq, _ = self._inputs(frames, apex_index)
        b, n = seq.shape[:2]
        _, maps = self.encoder(seq.flatten(0, 1), return_maps=True)
        m = maps[block]
        return m.view(b, n, *m.shape[-2:])

    @torch.no_grad()
    def adaptation_drift(self, frames: torch.Tensor, apex_index: torch.Tensor) -> list[dict]:
        """How far Adaptive-TM moved the adjacency on these clips: per later TM-GCN layer l,
        its learned forget rate f and mean |A(l) - A(0)| / mean A(0) (0 when the layer keeps
        the initial adjacency)."""
        h0, times = self.node_features(frames, apex_index)
        adj = self.adjacencies(h0, times)
        return [{"layer": layer, "forget rate f": float(self.adapt[layer - 1].f),
                 "mean |A(l) - A(0)| / mean A(0)": float((a - adj[0]).abs().mean() / adj[0].mean())}
                for layer, a in enumerate(adj[1:], start=1)]


# The paper's Table IV: each row's change to the full model.
ABLATIONS = {"w/o GCN": {"use_gcn": False}, "w/o motion": {"use_motion": False}, "w/o ATM": {"use_atm": False},
             "full": {}}


@register("atm_gcn")
def atm_gcn(num_classes: int = 5, **cfg) -> nn.Module:
    return ATMGCN(num_classes=num_classes, **cfg)
