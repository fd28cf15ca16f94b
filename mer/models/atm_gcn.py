"""p4 ATM-GCN: Adaptive Temporal Motion guided Graph Convolution Network.

Pipeline (paper section III):
1. Temporal motion pairing: differences f_i - f_onset for i = 2..T, each with a temporal
   positional encoding of i, through an MMNet-style CA motion encoder -> m_i.
2. Graph: nodes v_2..v_T, one per pair (Eq. 3 "i != global"). The onset-apex pair's node is
   the Global Motion Node; all other nodes are Local Motion Nodes. Local edges within a
   window w (self included), every local node linked to the global node, the global node
   linked to every node. Edge weight
   A_ij = (1 - arccos(cos_sim(h_i, h_j)) / pi) * exp(-|t_i - t_j| / tau), multiplied by
   lambda_global on the global node's edges and lambda_local on the others
   (lambda_local < lambda_global).
3. TM-GCN layers; before each layer after the first, Adaptive-TM updates the adjacency:
   A(l) = FC(A(l-1)) * (1 - f_l) + A(0) * f_l.
4. Self-attention over the final node features, mean pooling, FC. Loss: focal (engine).

The paper's settings: CASME II / SAMM 2 CA blocks, 2 layers, w = 1; CAS(ME)^3 4 blocks,
4 layers, w = 2; tau = 10; 224 px; AdamW lr 1e-4 decaying exponentially over 50 epochs;
batch 16 per GPU on 4 GPUs (64: the paper profiles take batch 16 with ``grad_accum`` 4);
small datasets resampled to 30 Hz (``sampling="rate"`` in the notebook); metrics averaged
over subjects (shown beside this study's pooled metrics).

Assumptions (not stated in the paper; each is a parameter):
- assumption: ``global_node="apex"`` (default; the paper's reading): T - 1 nodes, the apex
  pair's node is the global one, with no window edges of its own. ``"extra"``: the earlier
  reading of this study: T - 1 local nodes (the apex pair among them, with window edges)
  plus a separately encoded global copy of the apex pair (identical h(0), so the apex
  counts twice in the pooling). An apex on the onset frame (apex_index 0) makes the first
  pair the global node.
- assumption: a clip is T frames so that a batch is one tensor: ``sampling="uniform"`` in the
  notebook spreads T frames over onset..offset with the apex among them (quick and the
  default); ``"rate"`` takes the frames nearest each 1/30 s (the paper's 30 Hz; apex among
  them) and pads shorter clips to T, with the padding nodes masked out of the graph, the
  attention and the pooling. The paper profiles take up to T = 16 frames at 30 Hz (shorter
  clips padded, longer ones thinned evenly); paper_small's own default is T = 10.
- assumption: the motion encoder is MMNet's CA backbone, its first two blocks in
  paper_small (stem 180, channels 128, 128, strides 1, 2) and all four in paper_large
  (128, 128, 256, 512), hidden width 256; its map is global-average-pooled to m_i
  (``grid`` 1; the quick config keeps a 4 x 4 grid).
- assumption: Eq. 5's "every node" includes the global node itself, so it keeps a self
  loop weighted lambda_global.
- assumption: the temporal positional encoding is a sinusoidal code of the frame index
  mapped by a linear layer (zero-initialised) to one bias per input channel, added to the
  difference image; differences are multiplied by ``diff_gain`` first (micro-motion
  changes pixels by a few grey levels, which the encoding and BatchNorm would swamp).
- assumption: h(0) = LayerNorm(Linear(m_i)): a projection of the motion feature to
  ``hidden`` before the graph (the paper sets h(0) = m_i); Eq. 6 uses the projected features.
- assumption: the node times are frame indices among the T frames; the global node's is
  the apex index.
- assumption: lambda_local = 1, lambda_global = 2 (the paper gives only lambda_local <
  lambda_global); self-attention with ``heads`` = 4 and dropout 0.1.
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
- assumption (training, notebook parameters): the exponential decay's rate
  ``exp_gamma`` = 0.95 per epoch, weight decay 0.01, focal gamma 2 and alpha 1; "random cropping and
  colour jitter" as a 16 px pad-and-crop and a brightness/contrast jitter of 0.2
  (``aug_pad``, ``aug_jitter``), applied to CAS(ME)^3 as well.

How the quick profile's settings were chosen (tuning probes on SynthME, synthetic numbers) is
in params/atm_gcn/NOTES.md.
"""
from __future__ import annotations

import math

import numpy as np
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


def edge_mask(n: int, window: int, glob: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """(B, N, N) bool: row i holds the edges (v_i, v_j) of each clip's graph of ``n`` nodes,
    ``glob`` (B,) the index of its Global Motion Node. Local nodes link to the nodes within
    ``window`` (Eq. 3, self included) and to the global node (Eq. 4); the global node links
    to every node (Eq. 5). ``valid`` (B, N) drops padding nodes (clips shorter than the batch)."""
    idx = torch.arange(n, device=glob.device)
    win = (idx[:, None] - idx[None, :]).abs() <= window
    is_g = idx[None, :] == glob[:, None]  # (B, N)
    mask = win[None] | is_g[:, :, None] | is_g[:, None, :]
    if valid is not None:
        mask = mask & valid[:, :, None] & valid[:, None, :]
    return mask


def edge_weights(h: torch.Tensor, times: torch.Tensor, mask: torch.Tensor, glob: torch.Tensor, tau: float = 10.0,
                 lambda_local: float = 1.0, lambda_global: float = 2.0) -> torch.Tensor:
    """Equations 6-8 for a batch: h (B, N, D), times (B, N), mask (B, N, N), glob (B,) the
    global node's index -> A (B, N, N); the global node's edges weigh lambda_global."""
    hn = F.normalize(h, dim=-1)
    cos = (hn @ hn.transpose(1, 2)).clamp(-1 + 1e-6, 1 - 1e-6)
    sim = 1 - torch.arccos(cos) / math.pi
    decay = torch.exp(-(times[:, :, None] - times[:, None, :]).abs() / tau)
    is_g = torch.arange(h.shape[1], device=h.device)[None, :] == glob[:, None]
    lam = torch.where(is_g, lambda_global, lambda_local).to(h.dtype)[:, :, None]
    return sim * decay * lam * mask.to(h.dtype)


GLOBAL_NODES = ("apex", "extra")


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
    """``forward(frames, apex_index, length=None)``: frames (B, T, C, H, W) with the onset
    first, apex_index (B,) the apex's position among them, ``length`` (B,) the number of real
    frames when shorter clips are padded to T (30 Hz sampling); None: all T are real."""

    def __init__(self, num_classes: int = 5, config: str = "quick", in_chans: int = 3, frames: int | None = None,
                 stem: int | None = None, channels=None, strides=None, layers: int | None = None,
                 window: int | None = None, hidden: int | None = None, tau: float = 10.0,
                 lambda_local: float = 1.0, lambda_global: float = 2.0, heads: int = 4, dropout: float = 0.1,
                 pos_dim: int = 16, diff_gain: float = 10.0, grid: int | None = None, global_node: str = "apex",
                 use_gcn: bool = True, use_motion: bool = True, use_atm: bool = True):
        super().__init__()
        if config not in CONFIGS:
            raise KeyError(f"unknown ATM-GCN config {config!r}; known: {sorted(CONFIGS)}")
        if global_node not in GLOBAL_NODES:
            raise ValueError(f"global_node must be one of {GLOBAL_NODES}, not {global_node!r}")
        c = dict(CONFIGS[config])
        for k, v in dict(frames=frames, stem=stem, channels=channels, strides=strides, layers=layers,
                         window=window, hidden=hidden, grid=grid).items():
            if v is not None:
                c[k] = v
        if not lambda_local < lambda_global:
            raise ValueError(f"the paper requires lambda_local < lambda_global ({lambda_local} vs {lambda_global})")
        if c["frames"] < 2:
            raise ValueError(f"ATM-GCN needs at least 2 frames per clip (onset and one more), got {c['frames']}")
        self.frames, self.window, self.tau = c["frames"], c["window"], tau
        self.lambda_local, self.lambda_global = lambda_local, lambda_global
        self.global_node = global_node
        self.use_gcn, self.use_motion, self.use_atm = use_gcn, use_motion, use_atm
        self.pos_dim, self.diff_gain = pos_dim, diff_gain
        self.pos = nn.Linear(pos_dim, in_chans)
        nn.init.zeros_(self.pos.weight)
        nn.init.zeros_(self.pos.bias)
        self.encoder = MotionEncoder(in_chans, c["stem"], c["channels"], c["strides"], c["grid"])
        self.proj = nn.Sequential(nn.Linear(self.encoder.out_dim, c["hidden"]), nn.LayerNorm(c["hidden"]))
        # nodes v_2..v_T (the apex pair among them is the global node), or those plus a copy
        self.nodes = self.frames - 1 if global_node == "apex" else self.frames
        self.gcn = nn.ModuleList(TMGCNLayer(c["hidden"], dropout) for _ in range(c["layers"]))
        self.adapt = nn.ModuleList(AdaptiveTM(self.nodes) for _ in range(c["layers"] - 1))
        self.attn = nn.MultiheadAttention(c["hidden"], heads, dropout=dropout, batch_first=True)
        self.attn_norm = nn.LayerNorm(c["hidden"])
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c["hidden"], num_classes))
        self.config = c

    def _inputs(self, frames: torch.Tensor, apex_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder inputs of the pairs (f_i, f_onset), i = 2..T: (B, T-1, C, H, W), and of the
        onset-apex pair (B, C, H, W), each with its temporal position code."""
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

    def graph_nodes(self, apex_index: torch.Tensor, length: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Each clip's global node index (B,) and which nodes are real (B, N). With
        ``global_node="apex"`` the global node is the onset-apex pair's own node (node k
        holds frame k + 1; an apex on the onset frame falls back to the first pair)."""
        b, dev = len(apex_index), apex_index.device
        frames = torch.full((b,), self.frames, device=dev) if length is None else length.to(dev)
        n_local = self.frames - 1
        valid = torch.arange(n_local, device=dev)[None, :] < (frames - 1)[:, None]
        if self.global_node == "apex":
            return (apex_index - 1).clamp(min=0), valid
        return torch.full((b,), n_local, device=dev), torch.cat([valid, valid.new_ones(b, 1)], 1)

    def node_features(self, frames: torch.Tensor, apex_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Initial node features h(0) (B, N, D) and node times (B, N) (node k: frame k + 1;
        with ``global_node="extra"`` the copy comes last, at the apex's time)."""
        seq, glob = self._inputs(frames, apex_index)
        b, n_local = seq.shape[:2]
        times = torch.arange(1, n_local + 1, device=frames.device).expand(b, n_local)
        if self.global_node == "apex":  # one encoder pass per pair; the apex pair is the global node
            return self.proj(self.encoder(seq.flatten(0, 1))).view(b, n_local, -1), times.float()
        h = self.proj(self.encoder(torch.cat([seq.flatten(0, 1), glob])))
        h = torch.cat([h[: b * n_local].view(b, n_local, -1), h[b * n_local:, None]], dim=1)
        return h, torch.cat([times, apex_index[:, None]], dim=1).float()

    def adjacencies(self, h0: torch.Tensor, times: torch.Tensor, glob: torch.Tensor,
                    valid: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The adjacency used by each TM-GCN layer (A(0), then Adaptive-TM updates)."""
        mask = edge_mask(h0.shape[1], self.window, glob, valid)
        a0 = edge_weights(h0, times, mask, glob, self.tau, self.lambda_local, self.lambda_global)
        out = [a0]
        for adapt in self.adapt:
            out.append(adapt(out[-1], a0, mask) if self.use_atm else a0)
        return out

    def forward(self, frames: torch.Tensor, apex_index: torch.Tensor, length: torch.Tensor | None = None) -> torch.Tensor:
        h, times = self.node_features(frames, apex_index)
        glob, valid = self.graph_nodes(apex_index, length)
        weight = valid.to(h.dtype)[..., None]
        if not self.use_gcn:
            return self.head((h * weight).sum(1) / weight.sum(1))
        for layer, a in zip(self.gcn, self.adjacencies(h, times, glob, valid)):
            h = layer(h, a)
        att, _ = self.attn(h, h, h, key_padding_mask=~valid, need_weights=False)
        h = self.attn_norm(h + att)
        return self.head((h * weight).sum(1) / weight.sum(1))

    @torch.no_grad()
    def attention_maps(self, frames: torch.Tensor, apex_index: torch.Tensor, block: int = 0) -> torch.Tensor:
        """First CA block's attention maps of each local pair: (B, T-1, h, w) (the paper's Fig. 5)."""
        seq, _ = self._inputs(frames, apex_index)
        b, n = seq.shape[:2]
        _, maps = self.encoder(seq.flatten(0, 1), return_maps=True)
        m = maps[block]
        return m.view(b, n, *m.shape[-2:])

    @torch.no_grad()
    def adaptation_drift(self, frames: torch.Tensor, apex_index: torch.Tensor,
                         length: torch.Tensor | None = None) -> list[dict]:
        """How far Adaptive-TM moved the adjacency on these clips: per later TM-GCN layer l,
        its learned forget rate f and mean |A(l) - A(0)| / mean A(0) (0 when the layer keeps
        the initial adjacency)."""
        h0, times = self.node_features(frames, apex_index)
        adj = self.adjacencies(h0, times, *self.graph_nodes(apex_index, length))
        return [{"layer": layer, "forget rate f": float(self.adapt[layer - 1].f),
                 "mean |A(l) - A(0)| / mean A(0)": float((a - adj[0]).abs().mean() / adj[0].mean())}
                for layer, a in enumerate(adj[1:], start=1)]


def graph_summary(model: ATMGCN) -> str:
    """One line on the graph a model builds per clip."""
    t = model.frames
    if model.global_node == "apex":
        return (f"graph: {model.nodes} nodes per clip (v_2..v_{t}, one per frame pair); the onset-apex pair's node "
                "is the Global Motion Node (the paper's reading)")
    return (f"graph: {model.nodes} nodes per clip ({t - 1} local pairs, the apex pair among them, plus a separately "
            "encoded global copy of the apex pair: this study's earlier reading, global_node='extra')")


def sampled_lengths(ds, frames: int, target_fps: float) -> str:
    """What 30 Hz sampling gave: clip lengths and how many longer clips were thinned to T."""
    n = ds.lengths
    return (f"{target_fps:g} Hz sampling: {len(n)} clips of {n.min()}-{n.max()} frames (median {int(np.median(n))}), "
            f"padded to T = {frames}; {ds.thinned} clip(s) longer than T at that rate thinned evenly to T")


# The paper's Table IV: each row's change to the full model.
ABLATIONS = {"w/o GCN": {"use_gcn": False}, "w/o motion": {"use_motion": False}, "w/o ATM": {"use_atm": False},
             "full": {}}


@register("atm_gcn")
def atm_gcn(num_classes: int = 5, **cfg) -> nn.Module:
    return ATMGCN(num_classes=num_classes, **cfg)
