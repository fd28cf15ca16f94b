"""Run keys are derived from the dataset and the model spec, never written by hand: every
setting that shapes a dataset's items and every model argument enters the key, and a
notebook parameter that changes a run's result changes its key. A fold record whose key
differs is recomputed, so a setting left out of the key would silently reuse stale results."""
import inspect
import json

import nbformat
import pytest

from mer import models
from mer.paths import content_key, describe, project_root
from mer.preprocess import ClipDataset
from mer.preprocess.dataset import Augment, ClipSet
from mer.preprocess.landmark_frames import LandmarkFrames
from mer.preprocess.magnified_regions import MagnifiedRegions
from mer.preprocess.two_stream import TwoStream
from mer.train import engine
from tests.test_notebook import tiny_synth


@pytest.mark.parametrize("cls", [ClipDataset, TwoStream, LandmarkFrames, MagnifiedRegions])
def test_every_dataset_setting_is_in_its_key_or_named_unkeyed(cls, tmp_path):
    """By construction (``ClipSet._keep(locals())``), checked on the signatures: a new
    argument is keyed unless it is added to UNKEYED, with a reason."""
    assert issubclass(cls, ClipSet)
    names = set(inspect.signature(cls.__init__).parameters) - set(ClipSet.UNKEYED) - {"extra_alphas"}
    # extra_alphas: factors precomputed for views; a view's test factor is in its key
    from mer import data
    clips = data.load("synth", tiny_synth(tmp_path)).clips
    pair = ClipDataset(clips, "pair", size=32, cache_dir=tmp_path / "cache", progress=False)
    seq = ClipDataset(clips, "sequence", size=32, T=3, cache_dir=tmp_path / "cache", progress=False)
    built = {ClipDataset: pair, TwoStream: TwoStream(clips, side=12, flow_size=32, cache_dir=tmp_path / "cache",
                                                     progress=False),
             LandmarkFrames: LandmarkFrames(seq, [17, 21, 48]),
             MagnifiedRegions: MagnifiedRegions(pair, None, (8, 10), 5, patch=8, progress=False)}[cls]
    key = built.key()
    assert key["dataset"] == cls.__name__ and set(key) - {"dataset"} == names
    json.dumps(key)  # plain data


def test_dataset_key_follows_each_setting_and_views(tmp_path):
    from mer import data
    clips = data.load("synth", tiny_synth(tmp_path)).clips
    common = dict(size=32, align=False, cache_dir=tmp_path / "cache", progress=False)
    base = ClipDataset(clips, "diff", **common)
    changed = {"recipe": ClipDataset(clips, "apex", **common), "size": ClipDataset(clips, "diff", **{**common, "size": 24}),
               "diff_gain": ClipDataset(clips, "diff", diff_gain=5.0, **common),
               "augment": ClipDataset(clips, "diff", augment=Augment(flip=False), **common),
               "grey": ClipDataset(clips, "diff", grey=True, **common)}
    keys = {name: content_key(ds.key()) for name, ds in changed.items()}
    assert len(set(keys.values()) | {content_key(base.key())}) == len(changed) + 1
    same = ClipDataset(clips, "diff", **{**common, "workers": 2, "cache_dir": tmp_path / "other"})
    assert same.key() == base.key()  # where and how fast items are made is not what they are
    two = TwoStream(clips, side=12, flow_size=32, align=False, cache_dir=tmp_path / "cache", progress=False)
    assert two.branch_view(["spatial"]).key()["branches"] == ["spatial"] and two.key()["branches"] == ["spatial",
                                                                                                          "temporal"]


def test_model_spec_key_takes_every_argument():
    spec = models.Spec("atm_gcn", num_classes=5, config="quick", frames=4)
    assert spec.key() == {"model": "atm_gcn", "args": {"num_classes": 5, "config": "quick", "frames": 4}}
    assert spec.variant(use_gcn=False).key()["args"]["use_gcn"] is False
    assert content_key(spec.key()) != content_key(spec.variant(frames=5).key())
    with pytest.raises(TypeError, match="no key"):
        engine.run_key(object(), spec)


def test_every_training_setting_is_in_the_run_key():
    cfg = engine.TrainConfig()
    ident = engine.config_ident(cfg)
    # every field but the diagnostics, which add to a record without changing its predictions
    # (tests/test_engine.py: the test-epoch diagnostic leaves the predictions alone)
    assert set(ident) == set(vars(cfg)) - set(engine.DIAGNOSTIC_FIELDS) and engine.DIAGNOSTIC_FIELDS


# --------------------------------------------------------------------------- notebook level
class KeyProbe(Exception):
    """Raised instead of training: carries the main run's key."""


NOT_IN_MAIN_KEY = {  # ATM-GCN notebook parameters that do not change the main run's results
    "workers": "processes for preprocessing and folds (one worker and two give the same bytes at one torch thread "
               "each; a thread count's last-bit differences are not in keys)",
    "dask_scheduler": "which cluster trains the folds",
    "cache_dir": "where preprocessed inputs are cached",
    "output_dir": "where results are written",
    "ablations": "which ablation rows run (each has its own key)",
    "ablation_folds": "the ablation runs' folds (their own keys)",
    "attention_clips": "how many clips the attention figure draws",
    "seeds": "further training seeds: the main run again with each, under its own key",
    "test_epochs": "a diagnostic kept beside the fold records; the predictions stay the same (tests/test_engine.py)",
}
CHANGES = {"config": "paper_small", "input_size": 40, "frames": 5, "sampling": "rate", "target_fps": 20.0,
           "global_node": "extra", "grad_accum": 2, "align": False, "aug_flip": False, "aug_rotate": 5.0,
           "aug_pad": 3, "aug_jitter": 0.2, "epochs": 2, "batch_size": 4, "lr": 1e-2, "weight_decay": 1e-3,
           "scheduler": "exp", "exp_gamma": 0.9, "focal_gamma": 1.0, "seed": 1, "device": "cpu", "amp": "off",
           "folds": 2, "ablations": [], "ablation_folds": 3, "attention_clips": 1, "smoke": True,
           "workers": 2, "dask_scheduler": "tcp://127.0.0.1:1", "cache_dir": "{tmp}/cache2", "output_dir": "{tmp}/out2",
           "seeds": [0, 1], "test_epochs": True}
# other clips: covered by the engine's tests (on_bad_frame: which clips a bad frame leaves out)
SELECTING_CLIPS = {"dataset", "data_root", "protocol", "annotation", "on_bad_frame"}


def _main_key(cells, params, monkeypatch) -> str:
    def probe(dataset, folds, model_fn, cfg, out_dir, classes, **kw):
        raise KeyProbe(content_key({**engine.run_ident(dataset, model_fn, cfg, classes),
                                    "folds": [f.test_idx.tolist() for f in folds]}))
    monkeypatch.setattr(engine, "run_cv", probe)
    namespace = {}
    exec(cells[0], namespace)
    namespace.update(params)
    try:
        for code in cells[1:]:
            exec(code, namespace)
    except KeyProbe as found:
        return str(found)
    raise AssertionError("the notebook finished without a main run")


def test_every_notebook_parameter_that_changes_results_changes_the_run_key(tmp_path, monkeypatch):
    """The ATM-GCN notebook runs in this process up to its main run, once with its defaults
    and once per parameter changed; each parameter either changes the main run's key or is
    one of NOT_IN_MAIN_KEY (which do not change its results)."""
    nb = nbformat.read(str(project_root() / "notebooks" / "04_atm_gcn.ipynb"), as_version=4)
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in nb.cells[[c.cell_type for c in nb.cells].index("code")].metadata.get("tags", [])
    base_params = {"data_root": str(tiny_synth(tmp_path)), "cache_dir": str(tmp_path / "cache"),
                   "output_dir": str(tmp_path / "out"), "workers": 1}
    from mer.study import declared_parameters, method_notebook
    declared = declared_parameters(method_notebook("atm_gcn"))
    assert set(CHANGES) | SELECTING_CLIPS == declared, "a new parameter: add it to CHANGES"
    base = _main_key(code, base_params, monkeypatch)
    changes = {k: v.format(tmp=tmp_path) if isinstance(v, str) and "{tmp}" in v else v for k, v in CHANGES.items()}
    unchanged = sorted(name for name, value in changes.items()
                       if _main_key(code, {**base_params, name: value}, monkeypatch) == base)
    assert unchanged == sorted(NOT_IN_MAIN_KEY)
