"""Layers shared by several papers: MMNet-style CA blocks and p5's coordinate attention."""
import pytest
import torch

from mer.models.blocks import CABackbone, CoordinateAttention, shrink_to


def test_vertical_attention_is_one_weight_per_row():
    torch.manual_seed(0)
    att = CoordinateAttention(16).eval()
    x = torch.randn(2, 16, 8, 6)
    a = att(x)
    assert a.shape == (2, 16, 8, 1) and ((a > 0) & (a < 1)).all()
    # the map depends on the row means only: shuffling columns leaves it unchanged
    assert torch.allclose(att(x[..., torch.randperm(6)]), a, atol=1e-6)
    # applied along height only: every column of a constant-by-column input is scaled alike
    y = torch.ones(2, 16, 8, 6) * a
    assert torch.equal(y[..., 0], y[..., 5]) and not torch.allclose(y[:, :, 0], y[:, :, 7])
    assert CoordinateAttention(16, direction="horizontal").eval()(x).shape == (2, 16, 1, 6)
    assert CoordinateAttention(16, direction="both").eval()(x).shape == (2, 16, 8, 6)
    assert CoordinateAttention(256).branches["h"][0].out_channels == 8  # max(8, C/32)
    assert CoordinateAttention(512).branches["h"][0].out_channels == 16
    with pytest.raises(ValueError, match="vertical, horizontal or both"):
        CoordinateAttention(16, direction="diagonal")


def test_chained_vertical_maps_multiply():
    torch.manual_seed(0)
    att = CoordinateAttention(32, prev_channels=16).eval()
    x = torch.randn(2, 32, 4, 4)
    prev = torch.rand(2, 16, 8, 1)
    own = att(x)  # no previous map: the block's own map
    pooled = torch.nn.functional.max_pool2d(prev, kernel_size=(3, 1), stride=(2, 1), padding=(1, 0))
    assert torch.allclose(att(x, prev), own * att.prev_proj(pooled), atol=1e-6)
    independent = CoordinateAttention(32, prev_channels=16, chained=False).eval()
    assert independent.prev_proj is None and torch.equal(independent(x, prev), independent(x))


def test_shrink_to_pools_each_axis_to_size():
    prev = torch.rand(1, 1, 16, 16)
    assert shrink_to(prev, torch.zeros(1, 1, 4, 4)).shape == (1, 1, 4, 4)
    assert shrink_to(torch.rand(1, 3, 16, 1), torch.zeros(1, 3, 8, 1)).shape == (1, 3, 8, 1)
    assert torch.equal(shrink_to(prev, prev), prev)


def test_backbone_with_vertical_attention_keeps_mmnet_sizes():
    bb = CABackbone(stem=24, channels=(16, 16, 32, 64), attention=CoordinateAttention).eval()
    feat, maps = bb(torch.zeros(1, 3, 64, 64))
    assert feat.shape == (1, 64, 4, 4)
    assert [tuple(m.shape[1:]) for m in maps] == [(16, 32, 1), (16, 16, 1), (32, 8, 1), (64, 4, 1)]
    assert bb.blocks[0].attention.prev_proj is None and bb.blocks[3].attention.prev_proj.in_channels == 32
