import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from mer import models
from torch.utils.data import Dataset
from mer.paths import safe_name
from mer.train import engine, splits

CLASSES = ("a", "b", "c")


class ArraySubset(Dataset):
    """Rows ``idx`` of in-memory arrays for the toy data."""

    def __init__(self, x: np.ndarray, y: np.ndarray, idx: np.ndarray, flip: bool = False, shift: int = 0):
        self.x, self.y, self.idx, self.flip, self.shift = x, y, idx, flip, shift

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int):
        j = self.idx[i]
        img = torch.from_numpy(self.x[j])
        if self.flip and torch.rand(()) < 0.5:
            img = img.flip(-1)
        if self.shift:
            dy, dx = torch.randint(-self.shift, self.shift + 1, (2,)).tolist()
            img = torch.roll(img, shifts=(dy, dx), dims=(-2, -1))
        return img, int(self.y[j])


class ToyData:
    """Clip-table-shaped toy data: class = which quadrant carries a bright blob."""

    def __init__(self, n_subjects: int = 5, per_subject: int = 9, size: int = 12, seed: int = 0):
        rng = np.random.default_rng(seed)
        n = n_subjects * per_subject
        self.labels = np.arange(n) % 3
        self.x = rng.normal(0, 0.3, (n, 3, size, size)).astype(np.float32)
        h = size // 2
        for i, y in enumerate(self.labels):
            r, c = divmod(int(y), 2)
            self.x[i, :, r * h:(r + 1) * h, c * h:(c + 1) * h] += 1.0
        self.clips = pd.DataFrame({"subject": [f"s{i // per_subject}" for i in range(n)],
                                   "clip": [f"c{i}" for i in range(n)], "label": self.labels})

    def subset(self, idx, train):
        return ArraySubset(self.x, self.labels, np.asarray(idx), flip=False, shift=0)

    def key(self):
        return {"dataset": "ToyData", "clips": len(self.labels)}


def keyed(fn, name: str):
    """A model factory with the ``key()`` run_cv derives its run key from."""
    fn.key = lambda: {"model": name}
    return fn


def small_model():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3))


keyed(small_model, "small")


CFG = engine.TrainConfig(epochs=6, batch_size=8, lr=0.02, seed=3, device="cpu")


def test_loss_falls_on_a_tiny_batch():
    ds = ToyData()
    res = engine.fit(small_model(), ds.subset(np.arange(12), True), engine.TrainConfig(epochs=25, batch_size=12, lr=0.05,
                     scheduler="none"), seed=0, device=torch.device("cpu"), progress=False)
    assert res.curve[-1]["loss"] < 0.5 * res.curve[0]["loss"]


def test_exponential_decay_holds_after_decay_epochs():
    ds = ToyData()
    cfg = engine.TrainConfig(epochs=6, batch_size=12, lr=0.1, scheduler="exp", exp_gamma=0.5, decay_epochs=3)
    res = engine.fit(small_model(), ds.subset(np.arange(12), True), cfg, seed=0, device=torch.device("cpu"),
                     progress=False)
    assert [round(r["lr"], 6) for r in res.curve] == [0.1, 0.05, 0.025, 0.0125, 0.0125, 0.0125]
    always = engine.fit(small_model(), ds.subset(np.arange(12), True), engine.TrainConfig(
        epochs=4, batch_size=12, lr=0.1, scheduler="exp", exp_gamma=0.5), seed=0, device=torch.device("cpu"),
        progress=False)
    assert [round(r["lr"], 6) for r in always.curve] == [0.1, 0.05, 0.025, 0.0125]


def test_run_variants_rows_and_per_variant_predictions(tmp_path):
    ds = ToyData()
    folds = splits.make_folds(ds.clips, 2, 0)
    wide = keyed(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                       nn.Flatten(), nn.Linear(32, 3)), "wide")
    kept = {}
    short = engine.TrainConfig(**{**CFG.__dict__, "epochs": 2})  # a variant with its own training settings
    table = engine.run_variants({"small": (ds, small_model), "wide + x": (ds, wide), "short": (ds, small_model, short)},
                                folds, CFG, tmp_path, CLASSES, "grouped 2-fold", progress=False, results=kept)
    assert list(table["variant"]) == ["small", "wide + x", "short"] and set(table["folds"]) == {"grouped 2-fold"}
    assert kept["small"].curves["epoch"].max() == CFG.epochs and kept["short"].curves["epoch"].max() == 2
    with pytest.raises(ValueError, match="give \\(dataset, model\\)"):
        engine.run_variants({"bad": (ds,)}, folds, CFG, tmp_path, CLASSES, "")
    assert (tmp_path / "small" / "folds").is_dir() and (tmp_path / safe_name("wide + x") / "folds").is_dir()
    assert set(kept) == {"small", "wide + x", "short"} and len(kept["small"].predictions) == len(ds.labels)
    assert kept["wide + x"].metrics["uf1"] == table.set_index("variant").loc["wide + x", "uf1"]


def test_two_seeded_runs_give_identical_metrics(tmp_path):
    ds = ToyData()
    folds = splits.loso(ds.clips)
    a = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "a", CLASSES, progress=False)
    b = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "b", CLASSES, progress=False)
    assert a.metrics == b.metrics
    pd.testing.assert_frame_equal(a.predictions, b.predictions)
    assert len(a.predictions) == len(ds.clips) and a.metrics["acc"] > 0.5  # learnable toy task
    assert list(a.per_fold["fold"]) == [f.name for f in folds]


def test_resume_skips_finished_folds_and_matches_uninterrupted(tmp_path):
    ds = ToyData()
    folds = splits.loso(ds.clips)
    full = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "full", CLASSES, progress=False)

    calls = {"n": 0}

    def crashing():
        calls["n"] += 1
        if calls["n"] == 4:  # call 1 builds the architecture whose code versions the run
            raise KeyboardInterrupt("stopped during fold 3")
        return small_model()

    keyed(crashing, "small")
    with pytest.raises(KeyboardInterrupt):
        engine.run_cv(ds, folds, crashing, CFG, tmp_path / "run", CLASSES, progress=False)
    done = sorted(p.name for p in (tmp_path / "run" / "folds").glob("*.json"))
    assert done == ["s0.json", "s1.json"]
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "run" / "folds").glob("*.json")}

    calls["n"] = 10
    resumed = engine.run_cv(ds, folds, crashing, CFG, tmp_path / "run", CLASSES, progress=False)
    assert calls["n"] == 10 + 1 + len(folds) - 2  # the architecture once; folds 1-2 were not retrained
    assert resumed.folds_resumed == 2
    assert all(p.stat().st_mtime_ns == t for p, t in stamps.items())
    assert resumed.metrics == full.metrics
    pd.testing.assert_frame_equal(resumed.predictions, full.predictions)

    # a changed config does not reuse the old folds
    other = engine.run_cv(ds, folds, small_model, engine.TrainConfig(**{**CFG.__dict__, "epochs": 2}),
                          tmp_path / "run", CLASSES, progress=False)
    assert other.folds_resumed == 0


def test_corrupt_fold_file_is_recomputed(tmp_path, capsys):
    ds = ToyData(n_subjects=3)
    folds = splits.loso(ds.clips)
    first = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False)
    (tmp_path / "folds" / "s1.json").write_text("{not json")
    again = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False)
    assert "s1.json is unreadable" in capsys.readouterr().out
    assert again.folds_resumed == 2 and again.metrics == first.metrics
    record = json.loads((tmp_path / "folds" / "s1.json").read_text())
    assert record["fold"] == "s1" and len(record["curve"]) == CFG.epochs


def test_saved_fold_model_reproduces_its_predictions(tmp_path, capsys):
    ds = ToyData(n_subjects=3)
    folds = splits.loso(ds.clips)
    run = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False, save_models=["s1"])
    assert sorted(p.name for p in (tmp_path / "folds").glob("*.pt")) == ["s1.pt"]
    assert engine.load_fold_model(tmp_path, "s0", small_model) is None  # not kept
    model = engine.load_fold_model(tmp_path, "s1", small_model)
    test = folds[1].test_idx
    probs = engine.predict(model, ds.subset(test, False), torch.device("cpu"))
    record = json.loads((tmp_path / "folds" / "s1.json").read_text())
    np.testing.assert_allclose(probs, record["probs"], atol=1e-5)

    # kept weights are resumed with their fold; missing weights retrain only that fold
    again = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False, save_models=["s1"])
    assert again.folds_resumed == 3
    (tmp_path / "folds" / "s1.pt").unlink()
    again = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False, save_models=["s1"])
    assert again.folds_resumed == 2 and again.metrics == run.metrics
    assert engine.load_fold_model(tmp_path, "s1", small_model) is not None
    (tmp_path / "folds" / "s1.pt").write_bytes(b"truncated")
    again = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False, save_models=["s1"])
    assert again.folds_resumed == 2 and "s1.pt is unreadable" in capsys.readouterr().out

    # weights from another run of the fold (other key) are not used
    engine.run_cv(ds, folds, small_model, engine.TrainConfig(**{**CFG.__dict__, "epochs": 2}), tmp_path, CLASSES,
                  progress=False)
    assert engine.load_fold_model(tmp_path, "s1", small_model) is None


def test_resnet18_diff_shapes_and_registry(tmp_path):
    m = models.create("resnet18_diff", num_classes=5)
    assert m(torch.zeros(2, 3, 64, 64)).shape == (2, 5)
    assert models.create("resnet18_diff", num_classes=3, in_chans=6)(torch.zeros(2, 6, 32, 32)).shape == (2, 3)
    assert "resnet18_diff" in models.available()
    with pytest.raises(KeyError, match="unknown model"):
        models.create("nope")
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        models.create("resnet18_diff", pretrained_path=str(tmp_path / "w.pth"))
    torch.save(m.state_dict(), tmp_path / "w.pth")
    m2 = models.create("resnet18_diff", num_classes=5, pretrained_path=str(tmp_path / "w.pth"))
    assert torch.equal(m2.conv1.weight, m.conv1.weight)


def test_lr_is_halved_at_an_iteration_milestone():
    model = torch.nn.Linear(2, 2)
    cfg = engine.TrainConfig(optimizer="sgd", lr=0.1, scheduler="milestones", lr_milestones=(3,), milestone_gamma=0.5)
    opt = engine._make_optimizer(model, cfg)
    sched = engine._make_scheduler(opt, cfg)
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [0.1, 0.1, 0.1, 0.05, 0.05]
    with pytest.raises(ValueError, match="lr_milestones"):
        engine._make_scheduler(opt, engine.TrainConfig(scheduler="milestones"))


def test_fit_steps_the_milestone_schedule_per_iteration():
    data = ToyData(n_subjects=2, per_subject=8)  # 16 clips, batch 8: 2 optimizer steps per epoch
    cfg = engine.TrainConfig(epochs=3, batch_size=8, optimizer="sgd", lr=0.1, scheduler="milestones",
                             lr_milestones=(3,), milestone_gamma=0.5, device="cpu")
    fitted = engine.fit(small_model(), data.subset(np.arange(16), True), cfg, 0, torch.device("cpu"), progress=False)
    # the lr each epoch ended with: 2 steps (before the milestone), then 4 and 6 (after it);
    # a per-epoch schedule would still be at 0.1 after epoch 2
    assert [round(r["lr"], 4) for r in fitted.curve] == [0.1, 0.05, 0.05]


def test_composite_fold_names_become_safe_file_names_and_resume(tmp_path):
    ds = ToyData(n_subjects=3)
    ds.clips["subject"] = ["casme2/sub01"] * 9 + ["samm/006"] * 9 + ["smic/s1 x"] * 9
    folds = splits.loso(ds.clips)
    run = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False, save_models=["samm/006"])
    files = sorted(p.name for p in (tmp_path / "folds").iterdir())
    assert len(files) == 4 and all("/" not in f and " " not in f for f in files)  # 3 records + 1 weights file
    assert safe_name("casme2/sub01") + ".json" in files and safe_name("samm/006") + ".pt" in files
    assert safe_name("casme2/sub01") != safe_name("casme2_sub01") and safe_name("sub01") == "sub01"
    record = json.loads((tmp_path / "folds" / (safe_name("casme2/sub01") + ".json")).read_text())
    assert record["fold"] == "casme2/sub01" and record["test_subjects"] == ["casme2/sub01"]
    assert list(run.per_fold["fold"]) == ["casme2/sub01", "samm/006", "smic/s1 x"]
    assert engine.load_fold_model(tmp_path, "samm/006", small_model) is not None
    again = engine.run_cv(ds, folds, small_model, CFG, tmp_path, CLASSES, progress=False, save_models=["samm/006"])
    assert again.folds_resumed == 3 and again.folds_stale == 0 and again.metrics == run.metrics


def _module_model(path, body: str):
    """A model class from a source file imported as a ``mer.`` module, so its code version
    comes from that file."""
    import importlib.util
    import sys
    path.write_text(body)
    spec = importlib.util.spec_from_file_location("mer._probe_model", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["mer._probe_model"] = module
    spec.loader.exec_module(module)
    module.Probe.key = staticmethod(lambda: {"model": "probe"})
    return module.Probe


PROBE = """from torch import nn


class Probe(nn.Sequential):
    def __init__(self):
        super().__init__(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(16, 3))
"""


def test_stale_folds_from_other_code_or_other_frames_are_recomputed(tmp_path, capsys):
    import sys
    ds = ToyData(n_subjects=3)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i in range(len(ds.clips)):
        (frames / f"{i}.jpg").write_bytes(b"x" * 10)
    ds.clips = ds.clips.assign(frames=[[str(frames / f"{i}.jpg")] for i in range(len(ds.clips))], onset=1, apex=1,
                               offset=1)
    folds = splits.loso(ds.clips)
    try:
        probe = _module_model(tmp_path / "probe_v1.py", PROBE)
        first = engine.run_cv(ds, folds, probe, CFG, tmp_path / "run", CLASSES, progress=False)
        assert first.folds_resumed == 0 and first.folds_stale == 0
        same = engine.run_cv(ds, folds, probe, CFG, tmp_path / "run", CLASSES, progress=False)
        assert same.folds_resumed == 3 and same.folds_stale == 0 and same.metrics == first.metrics
        assert same.resume_note == "[3 of 3 folds resumed from disk]"

        # a fix to the model's source (here: one comment) makes every fold stale
        fixed = _module_model(tmp_path / "probe_v2.py", PROBE + "# fixed\n")
        rerun = engine.run_cv(ds, folds, fixed, CFG, tmp_path / "run", CLASSES, progress=False)
        assert rerun.folds_resumed == 0 and rerun.folds_stale == 3
        assert "3 stale fold record(s)" in rerun.resume_note and "3 stale fold record(s)" in capsys.readouterr().out
        assert rerun.metrics == first.metrics  # same weights and data: the recomputed folds agree
        assert engine.run_cv(ds, folds, fixed, CFG, tmp_path / "run", CLASSES, progress=False).folds_resumed == 3

        # other source frames: one frame file rewritten, or the same files at another path
        (frames / "4.jpg").write_bytes(b"y" * 12)
        assert engine.run_cv(ds, folds, fixed, CFG, tmp_path / "run", CLASSES, progress=False).folds_stale == 3
        moved = tmp_path / "Cropped"
        frames.rename(moved)
        ds.clips["frames"] = [[str(moved / f"{i}.jpg")] for i in range(len(ds.clips))]
        assert engine.run_cv(ds, folds, fixed, CFG, tmp_path / "run", CLASSES, progress=False).folds_stale == 3
        # another apex annotation of one clip
        ds.clips.loc[5, "apex"] = 2
        assert engine.run_cv(ds, folds, fixed, CFG, tmp_path / "run", CLASSES, progress=False).folds_stale == 3
        assert engine.run_cv(ds, folds, fixed, CFG, tmp_path / "run", CLASSES, progress=False).folds_resumed == 3
    finally:
        sys.modules.pop("mer._probe_model", None)


def test_mixed_precision_trains_and_is_off_on_cpu_by_default():
    cpu = torch.device("cpu")
    assert engine.amp_dtype("auto", cpu) is None and engine.amp_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert engine.amp_dtype("fp16", cpu) == torch.float16
    with pytest.raises(ValueError, match="unknown amp"):
        engine.amp_dtype("half", cpu)
    ds = ToyData()
    cfg = engine.TrainConfig(epochs=25, batch_size=12, lr=0.05, scheduler="none", amp="bf16")
    torch.manual_seed(0)
    res = engine.fit(small_model(), ds.subset(np.arange(12), True), cfg, seed=0, device=cpu, progress=False)
    assert res.curve[-1]["loss"] < 0.5 * res.curve[0]["loss"]  # trains under bf16 autocast
    probs = engine.predict(small_model(), ds.subset(np.arange(5), False), cpu, amp="bf16")
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-5)


class AugmentedToy(ToyData):
    """ToyData whose training items draw flips and shifts from torch's global RNG, as the
    study's augmentation does: any draw the diagnostic took would change later batches."""

    def subset(self, idx, train):
        return ArraySubset(self.x, self.labels, np.asarray(idx), flip=train, shift=1 if train else 0)


def test_test_epoch_diagnostic_leaves_predictions_alone_and_measures_selection(tmp_path):
    ds = AugmentedToy()
    folds = splits.loso(ds.clips)
    honest = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "a", CLASSES, progress=False)
    watched_cfg = engine.TrainConfig(**{**CFG.__dict__, "test_epochs": True})
    watched = engine.run_cv(ds, folds, small_model, watched_cfg, tmp_path / "b", CLASSES, progress=False)
    # the diagnostic never feeds training: the same predictions, to the probability
    pd.testing.assert_frame_equal(honest.predictions, watched.predictions)
    assert honest.epoch_preds is None and honest.test_selection() is None
    # and it is not part of the cache key: the honest run's records are the same run...
    assert engine.config_ident(CFG) == engine.config_ident(watched_cfg)
    # ...but records without per-epoch predictions are retrained when the diagnostic is wanted
    again = engine.run_cv(ds, folds, small_model, watched_cfg, tmp_path / "a", CLASSES, progress=False)
    assert again.folds_resumed == 0 and again.epoch_preds is not None
    resumed = engine.run_cv(ds, folds, small_model, watched_cfg, tmp_path / "a", CLASSES, progress=False)
    assert resumed.folds_resumed == len(folds)
    for fold in folds:
        per_epoch = watched.epoch_preds[fold.name]
        assert per_epoch.shape == (len(fold.test_idx), CFG.epochs)
        final = watched.predictions.loc[watched.predictions["fold"] == fold.name, "y_pred"].to_numpy()
        np.testing.assert_array_equal(per_epoch[:, -1], final)  # the last epoch is the honest prediction
    sel = watched.test_selection()
    assert sel["honest_uf1"] == pytest.approx(watched.metrics["uf1"])
    assert sel["uf1_by_epoch"][-1] == pytest.approx(watched.metrics["uf1"])
    assert sel["epoch_best_uf1"] == pytest.approx(max(sel["uf1_by_epoch"]))
    assert sel["inflation_uf1"] == pytest.approx(sel["fold_best_uf1"] - sel["honest_uf1"])


def test_test_selection_picks_each_folds_best_epoch():
    from mer.train.metrics import test_selection
    preds = pd.DataFrame({"fold": ["f1"] * 3 + ["f2"] * 3, "y_true": [0, 1, 2, 0, 1, 2],
                          "y_pred": [0, 0, 0, 0, 0, 0]})
    # fold 1 is right at epoch 1 only, fold 2 at epoch 2 only; the last epoch predicts class 0 throughout
    epoch_preds = {"f1": np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0]]), "f2": np.array([[1, 0, 0], [2, 1, 0], [0, 2, 0]])}
    sel = test_selection(preds, epoch_preds, CLASSES)
    assert sel["fold_best_uf1"] == pytest.approx(1.0)  # each fold at its own best epoch: all right
    assert sel["honest_uf1"] == pytest.approx(1 / 6)  # class 0's F1 0.5, the others 0
    assert sel["epochs"] == 3 and sel["best_epoch"] in (1, 2)
    assert sel["epoch_best_uf1"] < 1.0  # no single epoch is right in both folds
    with pytest.raises(ValueError, match="f2"):
        test_selection(preds, {"f1": epoch_preds["f1"]}, CLASSES)
