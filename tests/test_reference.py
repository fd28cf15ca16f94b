"""The field's reference networks (STSTNet, OFF-ApexNet, SSSNet, RCN-A) and their flow input."""
from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from mer import models
from mer.models import reference
from mer.preprocess.flow_input import FlowInput, normalise_clip

# Parameter counts for 3 classes, worked out from the layer descriptions (mer/models/reference.py):
# STSTNet 480 + 401 C, the count of its authors' code and MEB; OFF-ApexNet in the paper's reading
# (u and v streams, two 1024 layers) and in MEB's (one 2-channel stream, one 1024 layer: 804,834 +
# 1025 C); SSSNet 1,348,480 + 257 C (MEB); RCN-A 10 F^2 + 84 F + (P^2 F + 1) C at F = 64 with the
# authors' P = 7 and MEB's P = 5.
COUNTS = {("ststnet", ()): 1_683, ("off_apexnet", ()): 2_661_211,
          ("off_apexnet", (("streams", "one"), ("hidden", (1024,)))): 807_909,
          ("sssnet", ()): 1_349_251, ("rcn_a", ()): 55_747, ("rcn_a", (("pool", 5),)): 51_139}


def build(name: str, num_classes: int = 3, **kw):
    _, side, channels = reference.INPUTS[name]
    return models.create(name, num_classes=num_classes, in_chans=len(channels), input_size=side, **kw), side, channels


@pytest.mark.parametrize("name,extra", list(COUNTS), ids=[f"{n}{dict(e) or ''}" for n, e in COUNTS])
def test_parameter_count_and_output_shape(name, extra):
    model, side, channels = build(name, **dict(extra))
    assert reference.parameters(model) == COUNTS[(name, extra)]
    model.eval()
    out = model(torch.randn(4, len(channels), side, side))
    assert out.shape == (4, 3) and torch.isfinite(out).all()
    five, _, _ = build(name, num_classes=5, **dict(extra))
    assert five(torch.randn(2, len(channels), side, side)).shape == (2, 5)


@pytest.mark.parametrize("name", list(reference.INPUTS))
def test_loss_falls_on_a_small_batch(name):
    torch.manual_seed(0)
    model, side, channels = build(name, num_classes=3)
    x, y = torch.rand(12, len(channels), side, side), torch.arange(12) % 3
    opt = torch.optim.Adam(model.parameters(), 1e-3)

    def loss_now():
        model.eval()
        with torch.no_grad():
            return float(F.cross_entropy(model(x), y))
    before = loss_now()
    for _ in range(40):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    assert loss_now() < 0.7 * before


def test_rcn_attention_is_parameter_free_and_in_unit_range():
    model, side, _ = build("rcn_a")
    counted = sum(p.numel() for n, p in model.named_parameters() if "fc" not in n)
    assert reference.parameters(model) - counted == model.fc.weight.numel() + model.fc.bias.numel()
    stem = model.pool(model.stem(torch.randn(3, 3, side, side)))
    att = model.attention(stem)
    assert att.shape == (3, 1, 7, 7) and att.min() >= 0 and att.max() <= 1


def test_off_apexnet_streams_read_u_and_v_apart():
    model, side, _ = build("off_apexnet")
    model.eval()
    x = torch.randn(2, 2, side, side)
    changed = x.clone()
    changed[:, 1] += 1.0  # only v moves: the u stream's features must stay
    assert torch.equal(model.streams[0](x[:, :1]), model.streams[0](changed[:, :1]))
    assert not torch.allclose(model(x), model(changed))
    with pytest.raises(ValueError, match="2 channels"):
        models.create("off_apexnet", num_classes=3, in_chans=3)


def test_training_settings_follow_the_papers_unless_told():
    assert reference.training("ststnet")["epochs"] == 500 and reference.training("rcn_a")["optimizer"] == "sgd"
    assert reference.training("sssnet", 7)["epochs"] == 7
    assert reference.training("sssnet", {"ststnet": 3})["epochs"] == 200
    assert all(s["scheduler"] == "none" for s in reference.TRAINING.values())


def _texture(size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.5)
    return cv2.normalize(img, None, 20, 235, cv2.NORM_MINMAX)


def _translated_clip(folder, dx: float, dy: float, size: int = 112) -> pd.DataFrame:
    """A two-frame clip whose apex is its onset moved by (dx, dy) px."""
    folder.mkdir(parents=True, exist_ok=True)
    onset = _texture(size)
    apex = cv2.warpAffine(onset, np.float32([[1, 0, dx], [0, 1, dy]]), (size, size), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)
    paths = []
    for i, img in enumerate((onset, apex), 1):
        path = folder / f"img{i}.png"
        cv2.imwrite(str(path), cv2.cvtColor(np.clip(img, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR))
        paths.append(str(path))
    return pd.DataFrame([{"dataset": "fixture", "subject": "s1", "clip": "c1", "label": 0, "onset": 1, "apex": 2, "offset": 2,
                          "frames": paths, "frame_dir": str(folder), "fps": 30.0}])


@pytest.mark.parametrize("dx,dy", [(1.5, 0.0), (0.0, -1.0), (1.0, 1.0)])
def test_flow_recipe_gives_the_known_displacement(tmp_path, dx, dy):
    clips = _translated_clip(tmp_path / "clip", dx, dy)
    ds = FlowInput(clips, size=28, flow_size=112, channels=("u", "v", "strain", "magnitude"), normalise="none",
                   align=False, cache_dir=tmp_path / "cache", progress=False)
    x = ds.tensor(0)
    assert x.shape == (4, 28, 28)
    inner = x[:, 5:-5, 5:-5].reshape(4, -1).median(1).values  # away from the reflected border
    assert abs(float(inner[0]) - dx) < 0.15 and abs(float(inner[1]) - dy) < 0.15
    assert float(inner[2]) < 0.05  # a translation has no strain
    assert abs(float(inner[3]) - float(np.hypot(dx, dy))) < 0.15
    # a second dataset reads the flow from the cache
    again = FlowInput(clips, size=28, flow_size=112, normalise="none", align=False, cache_dir=tmp_path / "cache",
                      progress=False)
    assert again.stats.hits >= 1 and again.stats.misses == 0
    torch.testing.assert_close(again.tensor(0), x[:3])


def test_per_clip_normalisation():
    torch.manual_seed(0)
    x = torch.randn(3, 8, 8) * torch.tensor([2.0, 0.5, 1.0]).view(3, 1, 1)
    x[2] = x[2].abs()
    mm = normalise_clip(x, ("u", "v", "strain"), "minmax")
    assert torch.allclose(mm.flatten(1).min(1).values, torch.zeros(3))
    assert torch.allclose(mm.flatten(1).max(1).values, torch.ones(3))
    ma = normalise_clip(x, ("u", "v", "strain"), "maxabs")
    assert float(ma[:2].abs().max()) == pytest.approx(1.0) and float(ma[1].abs().max()) < 0.5  # u, v scaled together
    st = normalise_clip(x, ("u", "v", "strain"), "standard")
    assert torch.allclose(st.flatten(1).mean(1), torch.zeros(3), atol=1e-6)
    flat = normalise_clip(torch.ones(1, 4, 4), ("strain",), "minmax")
    assert torch.equal(flat, torch.zeros(1, 4, 4))  # a flat channel gives zeros, not NaN
    with pytest.raises(ValueError, match="unknown normalise"):
        normalise_clip(x, ("u", "v", "strain"), "zscore")


def test_flow_input_refuses_bad_settings(tmp_path):
    clips = _translated_clip(tmp_path / "clip", 1.0, 0.0)
    with pytest.raises(ValueError, match="channels"):
        FlowInput(clips, channels=("u", "w"), align=False, cache_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="exceeds the side the flow is computed at"):
        FlowInput(clips, size=128, flow_size=64, align=False, cache_dir=tmp_path, progress=False)
