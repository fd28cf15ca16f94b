"""p2 ST-MEMM: Swin-Transformer-based micro-expression motion magnification, in the
learning-based style of Oh et al. (ECCV 2018).

Encoder (shared by frames A and B): shallow convolutions (3x3, then 3x3 stride 2) ->
shallow features F(S); a Residual Swin Transformer Block (RSTB) on them -> deep features
F(D); mixed F(MIX) = F(S) + F(D). From F(MIX): a texture branch (3x3 stride 2 + residual
block, at 1/4 size) and a shape branch (3x3 + residual block, at 1/2 size).
Manipulator (``manipulator``), ConvReLU a 7x7 conv + ReLU, ConvRes a 3x3 conv + residual
block, all without bias:
- ``paper`` (p2 Eq. 3 as written): shape_A + ConvRes(alpha * ConvReLU(shape_B - shape_A));
- ``official`` (Oh et al.'s released code, METHODS.md): shape_B + ConvRes((alpha - 1) *
  ConvReLU(shape_B - shape_A)), so alpha = 1 leaves shape_B unchanged exactly.
Decoder: texture_B (upsampled) and the manipulated shape, concatenated and 3x3-conv'd ->
F_M; the Mixed Magnified Transformer block (an RSTB) -> F_MMTB; transposed conv on
F_MMTB + F_M, then a 3x3 conv -> the magnified frame (p2 Eq. 5 as written, with
``residual`` and ``skip`` off: the ``paper`` config).
RSTB: ``depth`` Swin layers (timm SwinTransformerBlock, window attention, shift 0 and
window // 2 alternating), a 3x3 conv, and a residual around the group.
Loss: L1(output, target) + lambda * (L1(texture(C), texture(A)) + L1(shape(C), shape(B))).

Assumptions (not stated in the paper; each is a parameter):
- assumption: "combination" of shallow and deep features is their sum; texture and shape
  branches as in Oh et al.; ``rstb`` RSTBs in the deep encoder and as many as the MMTB
  (one each in ``quick``, two in ``paper``).
- assumption: widths and depths (the paper gives none): ``quick`` 24 channels, RSTBs of
  2 layers, 2 heads, window 8; ``paper`` 64 channels, RSTBs of 6 layers, 4 heads,
  window 8 (SwinIR-like).
- assumption: the training data. The paper trains on Oh et al.'s set (COCO backgrounds, VOC
  objects), which is not available here; procedural scenes (:mod:`mer.magnify.pairs`) and
  SynthME faces moved by known fields (:mod:`mer.magnify.face_pairs`), half each, replace
  it.
- assumption: the training budget (the paper gives Adam lr 1e-5 and batch 4 only): the
  paper config trains 100 000 steps at a constant lr on 20 000 procedural pairs (96 px)
  and 20 000 face pairs (96 px crops of 200 identities) (:data:`mer.magnify.training.PAPER`).
- assumption: the consistency weight lambda (``reg``) of Oh et al.'s loss is 0.1 in the
  paper config (Oh et al.'s value; p2 gives none) and 0 in the quick config (the probes in
  params/gam_mm_mer/NOTES.md).
- assumption: Eq. 3 acts on the shape codes (Oh et al.'s split), not on F(MIX) as a whole;
  the texture of frame B is kept.
- assumption: ``manipulator="official"`` in the quick config (the ``paper`` config uses Eq. 3
  as written). Both readings are compared on the magnifier check (params/gam_mm_mer/NOTES.md).
- assumption: frames enter scaled to [-1, 1]; the output is unbounded (clipped on use).
- assumption: ``residual`` (quick config; off in ``paper``): the decoder's output is added to
  frame B (the network learns the change only). The paper reconstructs the frame outright
  (Eq. 5); trained for a few CPU minutes that version stays blurred (L1 0.17 after 1500
  steps, magnified motion at alpha 5 measured at 0.33 of alpha * d).
- assumption: ``skip`` (quick config; off in ``paper``): the last conv also sees frame B's
  full-resolution shallow features (the decoder otherwise rebuilds every fine detail from
  half resolution).
- assumption: the decoder's activations after the fuse conv and the transposed conv are
  leaky ReLUs (0.2). With plain ReLUs, a 10000-step run at lr 1e-3 lost them all: its
  output no longer depended on the shape code (output = B at every alpha).

Tuning notes (the quick config's measured status, earlier probes, why quick trains with
lambda = 0): params/gam_mm_mer/NOTES.md, section "ST-MEMM magnifier: tuning notes".
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from timm.models.swin_transformer import SwinTransformerBlock
from torch import nn

MODEL_VERSION = 5  # bump when a change to this file makes saved weights stale (they are keyed by it)

MANIPULATORS = ("paper", "official")
CONFIGS: dict[str, dict] = {
    "quick": dict(channels=24, depth=2, heads=2, window=8, rstb=1, manipulator="official", residual=True, skip=True),
    "paper": dict(channels=64, depth=6, heads=4, window=8, rstb=2, manipulator="paper", residual=False, skip=False),
}


class ResBlock(nn.Module):
    def __init__(self, c: int, bias: bool = True):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1, bias=bias)
        self.conv2 = nn.Conv2d(c, c, 3, padding=1, bias=bias)

    def forward(self, x):
        return x + self.conv2(F.relu(self.conv1(x)))


class RSTB(nn.Module):
    """Residual Swin Transformer Block on (B, C, H, W) maps (any H, W: dynamic masks)."""

    def __init__(self, c: int, depth: int, heads: int, window: int):
        super().__init__()
        self.layers = nn.ModuleList(
            SwinTransformerBlock(dim=c, input_resolution=(4 * window, 4 * window), num_heads=heads,
                                 window_size=window, shift_size=0 if i % 2 == 0 else window // 2,
                                 dynamic_mask=True, always_partition=True)
            for i in range(depth))
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.permute(0, 2, 3, 1)  # timm's Swin layers are channels-last
        for layer in self.layers:
            h = layer(h)
        return x + self.conv(h.permute(0, 3, 1, 2))


class STMEMM(nn.Module):
    """``forward(a, b, alpha)``: frames (B, 3, H, W) in [-1, 1] (H, W divisible by 4),
    alpha a float or (B,) tensor; returns the magnified frame (B, 3, H, W)."""

    def __init__(self, config: str = "quick", **overrides):
        super().__init__()
        if config not in CONFIGS:
            raise KeyError(f"unknown ST-MEMM config {config!r}; known: {sorted(CONFIGS)}")
        unknown = set(overrides) - set(CONFIGS[config])
        if unknown:
            raise TypeError(f"unknown ST-MEMM setting(s) {sorted(unknown)}; known: {sorted(CONFIGS[config])}")
        c = {**CONFIGS[config], **overrides}
        if c["manipulator"] not in MANIPULATORS:
            raise ValueError(f"manipulator must be one of {MANIPULATORS}, not {c['manipulator']!r}")
        ch, rstb = c["channels"], lambda: RSTB(ch, c["depth"], c["heads"], c["window"])
        self.config = c
        self.shallow = nn.Sequential(nn.Conv2d(3, ch, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(ch, ch, 3, stride=2, padding=1), nn.ReLU(inplace=True))
        self.deep = nn.Sequential(*[rstb() for _ in range(c["rstb"])])
        self.texture = nn.Sequential(nn.Conv2d(ch, ch, 3, stride=2, padding=1), nn.ReLU(inplace=True), ResBlock(ch))
        self.shape = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1), nn.ReLU(inplace=True), ResBlock(ch))
        self.m_relu = nn.Sequential(nn.Conv2d(ch, ch, 7, padding=3, bias=False), nn.ReLU(inplace=True))
        self.m_res = nn.Sequential(nn.Conv2d(ch, ch, 3, padding=1, bias=False), ResBlock(ch, bias=False))
        # leaky: with plain ReLUs here a long run at lr 1e-3 lost every unit and the output
        # stopped depending on the shape code (output = B at any alpha)
        self.fuse = nn.Sequential(nn.Conv2d(2 * ch, ch, 3, padding=1), nn.LeakyReLU(0.2, inplace=True))
        self.mmtb = nn.Sequential(*[rstb() for _ in range(c["rstb"])])
        self.up = nn.Sequential(nn.ConvTranspose2d(ch, ch, 4, stride=2, padding=1), nn.LeakyReLU(0.2, inplace=True))
        self.out = nn.Conv2d(2 * ch if c["skip"] else ch, 3, 3, padding=1)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(texture at 1/4 size, shape at 1/2 size)."""
        if x.shape[-1] % 4 or x.shape[-2] % 4:
            raise ValueError(f"frame size {tuple(x.shape[-2:])} must be divisible by 4")
        s = self.shallow(x)
        mixed = s + self.deep(s)
        return self.texture(mixed), self.shape(mixed)

    def manipulate(self, shape_a: torch.Tensor, shape_b: torch.Tensor, alpha) -> torch.Tensor:
        alpha = torch.as_tensor(alpha, dtype=shape_a.dtype, device=shape_a.device)
        alpha = alpha.reshape(-1, 1, 1, 1) if alpha.dim() else alpha
        if self.config["manipulator"] == "paper":  # Eq. 3: F_1 + ConvRes(alpha * ConvReLU(F_2 - F_1))
            return shape_a + self.m_res(alpha * self.m_relu(shape_b - shape_a))
        return shape_b + self.m_res((alpha - 1) * self.m_relu(shape_b - shape_a))

    def decode(self, texture: torch.Tensor, shape: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        t = F.interpolate(texture, size=shape.shape[-2:], mode="nearest")
        fm = self.fuse(torch.cat([t, shape], 1))
        up = self.up(self.mmtb(fm) + fm)
        if self.config["skip"]:  # B's full-resolution shallow features beside the upsampled ones
            up = torch.cat([up, self.shallow[:2](b)], 1)
        out = self.out(up)
        return b + out if self.config["residual"] else out

    def forward(self, a: torch.Tensor, b: torch.Tensor, alpha) -> torch.Tensor:
        _, shape_a = self.encode(a)
        tex_b, shape_b = self.encode(b)
        return self.decode(tex_b, self.manipulate(shape_a, shape_b, alpha), b)

    def loss(self, a, b, c, target, alpha, reg: float = 0.1) -> tuple[torch.Tensor, dict]:
        """L1 to the magnified target plus the texture (C ~ A) and shape (C ~ B) terms."""
        tex_a, shape_a = self.encode(a)
        tex_b, shape_b = self.encode(b)
        out = self.decode(tex_b, self.manipulate(shape_a, shape_b, alpha), b)
        main = F.l1_loss(out, target)
        if not reg:  # the consistency terms would weigh nothing: skip encoding C
            return main, {"l1": float(main.detach())}
        tex_c, shape_c = self.encode(c)
        tex, shape = F.l1_loss(tex_c, tex_a), F.l1_loss(shape_c, shape_b)
        return main + reg * (tex + shape), {k: float(v.detach()) for k, v in (("l1", main), ("texture", tex), ("shape", shape))}
