"""p5 CVA + FPF + AU vector: shapes, the FPF's map layout, the AU vector, training, determinism."""
import numpy as np
import pytest
import torch

from mer import models
from mer.data.aus import AU_VECTOR_PAPER, au_vectors
import torch.nn.functional as F

from mer.models.cva_fpf import CONFIGS, CVAFPF
from tests.training import tiny_batch_losses


def _pair(b=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 2, 3, size, size, generator=g) - 0.5, torch.randint(0, 2, (b, 21), generator=g).float()


def test_output_and_map_shapes_of_every_variant():
    x, au = _pair()
    m = models.create("cva_fpf", num_classes=5, size=64).eval()
    assert m(x, au).shape == (2, 5)
    fmap, maps = m.features(x)
    assert fmap.shape == (2, 64, 4, 4)
    # one vertical map per CVA block, (B, C, H, 1): a weight per row
    assert [tuple(a.shape) for a in maps] == [(2, 16, 32, 1), (2, 16, 16, 1), (2, 32, 8, 1), (2, 64, 4, 1)]
    assert [tuple(a.shape[1:]) for a in models.create("cva_fpf", size=64, direction="horizontal").attention_maps(x)][-1] \
        == (64, 1, 4)
    assert tuple(models.create("cva_fpf", size=64, direction="both").attention_maps(x)[-1].shape[1:]) == (64, 4, 4)
    for kw in [dict(main="resnet"), dict(main="resnet", fpf=None, use_au=False), dict(fpf="vit"), dict(fpf=None),
               dict(fpf_frames="apex"), dict(fpf_frames="onset"), dict(chained=False), dict(use_au=False)]:
        out = models.create("cva_fpf", num_classes=3, size=64, **kw).eval()(x, au)
        assert out.shape == (2, 3), kw
    independent = models.create("cva_fpf", size=64, chained=False)
    assert all(b.attention.prev_proj is None for b in independent.main.blocks)


def test_paper_sizes_give_512_by_14_by_14_from_both_streams():
    m = CVAFPF(config="paper", size=224, use_au=False).eval()
    x = torch.rand(1, 2, 3, 224, 224) - 0.5
    with torch.no_grad():
        main, _ = m.main(x[:, 1] - x[:, 0])
        pos = m.fpf(x[:, 0])
    assert main.shape == (1, 512, 14, 14) and pos.shape == (1, 512, 14, 14)
    assert isinstance(m.fpf_proj, torch.nn.Identity)  # embed 128 x 2^2 = 512: no projection needed


def _pointwise(fpf):
    """Zero every attention and MLP residual branch: each token then depends on its own
    patch only (Swin's patch merging mixes a 2x2 group, still within one output cell)."""
    with torch.no_grad():
        for name, p in fpf.named_parameters():
            if ".attn.proj." in name or ".mlp.fc2." in name:
                p.zero_()
    return fpf.eval()


@pytest.mark.parametrize("kind", ["swin", "vit"])
def test_fpf_map_puts_a_known_patch_in_the_right_cell(kind):
    torch.manual_seed(0)
    m = models.create("cva_fpf", size=64, fpf=kind, use_au=False)
    fpf = _pointwise(m.fpf)
    base = torch.zeros(1, 3, 64, 64)
    marked = base.clone()
    marked[..., 0:16, 48:64] = 0.5  # top row, right-most 16x16 cell of the 4x4 grid
    marked[..., 32:48, 16:32] = -0.5  # third row, second column
    with torch.no_grad():
        diff = (fpf(marked) - fpf(base)).abs().sum(1)[0]
    assert diff.shape == (4, 4)
    changed = {tuple(ij) for ij in (diff > 1e-4).nonzero().tolist()}
    assert changed == {(0, 3), (2, 1)}


def test_apex_only_fpf_ignores_the_onset_frame_and_dual_sums_both():
    torch.manual_seed(0)
    x, _ = _pair(1)
    other = x.clone()
    other[:, 0] = torch.rand(1, 3, 64, 64) - 0.5
    apex_only = models.create("cva_fpf", size=64, fpf_frames="apex").eval()
    with torch.no_grad():
        assert torch.equal(apex_only.position(x[:, 0], x[:, 1]), apex_only.position(other[:, 0], other[:, 1]))
        dual = models.create("cva_fpf", size=64).eval()
        f = lambda img: dual.fpf_proj(dual.fpf(img))
        assert torch.allclose(dual.position(x[:, 0], x[:, 1]), f(x[:, 0]) + f(x[:, 1]), atol=1e-5)


def test_the_position_map_is_added_as_a_plain_sum_or_through_the_zero_started_gate():
    torch.manual_seed(0)
    x, _ = _pair(2)
    plain = models.create("cva_fpf", size=64, fpf_sum="plain").eval()
    assert plain.fpf_scale is None  # no parameter between F_M and F_POS
    with torch.no_grad():
        motion, _ = plain.main((x[:, 1] - x[:, 0]) * plain.diff_gain)
        pos = F.adaptive_avg_pool2d(plain.position(x[:, 0], x[:, 1]), motion.shape[-2:])
        assert torch.allclose(plain.features(x)[0], motion + pos, atol=1e-6)  # F_M + F_POS, as printed
        assert not torch.allclose(pos, torch.zeros_like(pos))
    gated = models.create("cva_fpf", size=64).eval()  # the quick config: learned scale from 0
    assert gated.fpf_scale is not None and not gated.fpf_scale.any()
    with torch.no_grad():
        motion, _ = gated.main((x[:, 1] - x[:, 0]) * gated.diff_gain)
        assert torch.equal(gated.features(x)[0], motion)  # the gate starts shut
    assert CONFIGS["paper"]["fpf_sum"] == "plain" and CONFIGS["quick"]["fpf_sum"] == "gated"
    for fpf in ("swin", None):  # checked whether or not the model has an FPF
        with pytest.raises(ValueError, match="fpf_sum"):
            models.create("cva_fpf", size=64, fpf=fpf, fpf_sum="learned")


def test_eq_3_literal_relu_reading_is_unbounded_where_h_swish_saturates():
    from mer.models.blocks import ACTIVATIONS
    x = torch.tensor([-4.0, -1.0, 0.0, 2.0, 5.0])
    assert torch.allclose(ACTIVATIONS["hswish"]()(x), x * torch.clamp(x + 3, 0, 6) / 6)
    assert torch.allclose(ACTIVATIONS["relu"]()(x), x * torch.relu(x + 3) / 6)
    assert ACTIVATIONS["relu"]()(x)[-1] > ACTIVATIONS["hswish"]()(x)[-1]  # 5 * 8 / 6 vs 5
    m = models.create("cva_fpf", size=64, attention_act="relu")
    assert isinstance(m.main.blocks[0].attention.branches["h"][2], ACTIVATIONS["relu"])


def test_au_vector_reads_position_i_as_au_i_and_reports_the_rest():
    vec, outside = au_vectors([[2, 5], [4, 24], []])
    assert vec.shape == (3, 21) and len(AU_VECTOR_PAPER) == 21
    assert vec[0].nonzero()[0].tolist() == [1, 4]  # the paper's "01001": AU2 and AU5
    assert vec[1].nonzero()[0].tolist() == [3] and outside == [[], [24], []]
    assert not vec[2].any()
    with pytest.raises(ValueError, match="duplicates"):
        au_vectors([[1]], [1, 2, 1])


def test_au_input_is_required_and_used():
    x, au = _pair()
    m = models.create("cva_fpf", size=64).eval()
    with pytest.raises(ValueError, match="AU vector"):
        m(x)
    with pytest.raises(ValueError, match="length 5"):
        m(x, au[:, :5])
    ref = models.create("au_only", num_classes=5).eval()
    # the AU-only reference ignores the frames entirely
    assert torch.equal(ref(x, au), ref(torch.zeros_like(x), au))
    with pytest.raises(ValueError, match="built for size=96"):
        models.create("cva_fpf", size=96).eval()(x, au)


def test_loss_falls_on_a_tiny_batch():
    torch.manual_seed(0)
    x, au = _pair(6, size=32)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    losses = tiny_batch_losses(models.create("cva_fpf", num_classes=3, size=32, use_au=False), (x, au), y)
    assert losses[-1] < 0.5 * losses[0]


def test_identical_outputs_for_one_seed():
    x, au = _pair(3)
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        m = models.create("cva_fpf", size=64)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3)
        loss = torch.nn.functional.cross_entropy(m(x, au), torch.tensor([0, 1, 2]))
        loss.backward()
        opt.step()
        outs.append(m.eval()(x, au))
    assert torch.equal(outs[0], outs[1])
    torch.manual_seed(8)
    assert not torch.equal(models.create("cva_fpf", size=64).eval()(x, au), outs[0])


def test_pair_dataset_carries_the_au_vector(tmp_path):
    from mer import data
    from mer.data.synth import SynthConfig, generate
    from mer.preprocess import ClipDataset
    root = generate(tmp_path / "s", SynthConfig(subjects=1, clips_per_subject=4, size=96, frames=(20, 30), workers=1),
                    progress=False)
    t = data.load("synth", root)
    ds = ClipDataset(t.clips, "pair", size=32, align=False, au_vocabulary=AU_VECTOR_PAPER, cache_dir=tmp_path / "c",
                     progress=False)
    x, y = ds[0]
    assert set(x) == {"frames", "aus"} and x["frames"].shape == (2, 3, 32, 32)
    expected = np.zeros(21, dtype=np.float32)
    for au in t.clips.iloc[0]["aus"]:
        if au <= 21:
            expected[au - 1] = 1
    assert np.array_equal(x["aus"].numpy(), expected)
    summary = ds.aus_outside_summary()
    n24 = sum(24 in a for a in t.clips["aus"])
    assert (summary.set_index("AU outside the vector")["clips"].get(24, 0)) == n24
    batch = torch.utils.data.default_collate([ds.subset(np.arange(2), True)[i] for i in range(2)])
    assert batch[0]["aus"].shape == (2, 21) and batch[0]["frames"].shape == (2, 2, 3, 32, 32)
    only = ds.au_only()
    (item, label), = [only.subset(np.array([0]), train=True)[0]]
    assert set(item) == {"aus"} and torch.equal(item["aus"], x["aus"]) and label == y
    assert only.clips is ds.clips and len(only) == len(ds)
    with pytest.raises(ValueError, match="no AU vectors"):
        ClipDataset(t.clips, "pair", size=32, align=False, cache_dir=tmp_path / "c", progress=False).aus_outside_summary()


def test_local_weights_load_into_the_resnet_trunk_and_fpf(tmp_path):
    torch.manual_seed(0)
    src = models.create("cva_fpf", size=64, main="resnet")
    torch.save(src.main.net.state_dict(), tmp_path / "resnet.pt")
    torch.save(src.fpf.net.state_dict(), tmp_path / "swin.pt")
    torch.manual_seed(1)
    dst = models.create("cva_fpf", size=64, main="resnet", pretrained_path=str(tmp_path / "resnet.pt"),
                        fpf_pretrained_path=str(tmp_path / "swin.pt"))
    assert torch.equal(dst.main.net.conv1.weight, src.main.net.conv1.weight)
    assert torch.equal(dst.fpf.net.patch_embed.proj.weight, src.fpf.net.patch_embed.proj.weight)
    with pytest.raises(ValueError, match="main='resnet'"):
        models.create("cva_fpf", size=64, pretrained_path=str(tmp_path / "resnet.pt"))
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        models.create("cva_fpf", size=64, main="resnet", pretrained_path=str(tmp_path / "missing.pt"))
