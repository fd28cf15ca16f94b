"""Folds on Dask workers (mer.train.parallel): the same predictions as in this process,
through a LocalCluster of its own and through an existing cluster's scheduler address."""
import os
import sys

import cloudpickle
import pandas as pd
import pytest
import torch

import test_engine
from test_engine import CFG, CLASSES, ToyData, small_model
from mer.train import engine, parallel, splits

# the toy data and model live in test modules the workers cannot import: send them by value
cloudpickle.register_pickle_by_value(test_engine)
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def one_thread():
    """The process's own torch thread count is 3, the folds' another (engine.fold_thread_count,
    here 1): folds train on that count wherever they run (a float sum's last bits depend on it)."""
    before, env = torch.get_num_threads(), os.environ.get("MER_FOLD_THREADS")
    os.environ["MER_FOLD_THREADS"] = "1"  # the workers started from here inherit it
    parallel.shutdown()
    torch.set_num_threads(3)
    yield
    assert torch.get_num_threads() == 3  # restored after each fold
    torch.set_num_threads(before)
    parallel.shutdown()
    if env is None:
        os.environ.pop("MER_FOLD_THREADS")
    else:
        os.environ["MER_FOLD_THREADS"] = env


@pytest.mark.slow
def test_one_and_two_workers_give_identical_predictions(tmp_path, one_thread):
    ds = ToyData()
    folds = splits.loso(ds.clips)
    alone = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "one", CLASSES, progress=False,
                          parallel=parallel.Parallel(1))
    two = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "two", CLASSES, progress=False,
                        parallel=parallel.Parallel(2))
    pd.testing.assert_frame_equal(alone.predictions, two.predictions)
    pd.testing.assert_frame_equal(alone.curves, two.curves)
    assert list(two.per_fold["fold"]) == [f.name for f in folds]  # fold order, not finishing order
    for f in folds:  # the records written here as each fold came back: the same bytes but the timing
        a, b = (engine._read_fold(engine.fold_file(d / "folds", f.name, ".json")) for d in (tmp_path / "one",
                                                                                            tmp_path / "two"))
        assert {k: v for k, v in a.items() if k != "seconds"} == {k: v for k, v in b.items() if k != "seconds"}
    again = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "two", CLASSES, progress=False,
                          parallel=parallel.Parallel(2))
    assert again.folds_resumed == len(folds)  # the records stay the unit of resume


@pytest.mark.slow
def test_a_fold_runs_on_an_existing_cluster_through_its_scheduler_address(tmp_path, one_thread, monkeypatch):
    from distributed import LocalCluster
    ds = ToyData()
    fold = splits.loso(ds.clips)[:1]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        monkeypatch.setenv(parallel.ENV_SCHEDULER, cluster.scheduler_address)
        par = parallel.resolve()  # the address from $MER_SCHEDULER, as a notebook's scheduler: None gets it
        assert par.scheduler == cluster.scheduler_address and not par.in_process
        remote = engine.run_cv(ds, fold, small_model, CFG, tmp_path / "remote", CLASSES, progress=False,
                               save_models=True, parallel=par)
        parallel.shutdown()
    here = engine.run_cv(ds, fold, small_model, CFG, tmp_path / "here", CLASSES, progress=False, save_models=True)
    pd.testing.assert_frame_equal(here.predictions, remote.predictions)
    assert "cpu" in engine._read_fold(engine.fold_file(tmp_path / "remote" / "folds", fold[0].name, ".json"))["device"]
    model = engine.load_fold_model(tmp_path / "remote", fold[0].name, small_model)  # its weights came back too
    assert model is not None


def test_resolve_reads_workers_and_scheduler_and_refuses_nonsense(monkeypatch):
    monkeypatch.delenv(parallel.ENV_SCHEDULER, raising=False)
    monkeypatch.delenv(parallel.ENV_WORKERS, raising=False)
    assert parallel.resolve(1).in_process and parallel.resolve("3") == parallel.Parallel(3)
    assert parallel.resolve(None, device="cpu").workers == parallel.available_cores()
    monkeypatch.setenv(parallel.ENV_WORKERS, "2")
    assert parallel.resolve(None) == parallel.Parallel(2)
    assert parallel.resolve(None, "tcp://10.0.0.1:8786").scheduler == "tcp://10.0.0.1:8786"
    for bad in (0, "two", -1):
        with pytest.raises(ValueError, match="workers must be"):
            parallel.resolve(bad)


@pytest.mark.slow
def test_a_requirement_folds_share_runs_once_before_them_on_the_workers(tmp_path, one_thread):
    """A pre-training every fold loads (PerFold.requirement with one key) runs once on the
    workers, not once per worker, and each fold is built after it."""
    ds = ToyData()
    folds = splits.loso(ds.clips)[:3]
    log = tmp_path / "pretrainings.txt"

    def pretrain():
        with open(log, "a") as fh:
            fh.write("pretrained\n")

    def build(fold):
        assert fold is None or log.is_file(), "a fold was built before its requirement was done"
        return small_model()

    model = engine.PerFold(build, {"model": "small, after a shared pre-training"},
                           requires=lambda fold: ("shared", pretrain))
    r = engine.run_cv(ds, folds, model, CFG, tmp_path / "run", CLASSES, progress=False, parallel=parallel.Parallel(2))
    assert log.read_text().splitlines() == ["pretrained"] and len(r.per_fold) == 3


@pytest.mark.slow
def test_ablations_on_workers_match_the_in_process_table(tmp_path, one_thread):
    """run_variants queues every variant's folds together on the workers; the table and each
    variant's predictions are those of the variants run one after another here."""
    from torch import nn
    ds = ToyData()
    folds = splits.make_folds(ds.clips, 2, 0)
    wide = test_engine.keyed(lambda: nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                                   nn.Flatten(), nn.Linear(32, 3)), "wide")
    variants = {"small": (ds, small_model), "wide": (ds, wide)}
    runs = {"here": {}, "workers": {}}
    here = engine.run_variants(variants, folds, CFG, tmp_path / "here", CLASSES, "2-fold", progress=False,
                               results=runs["here"])
    there = engine.run_variants(variants, folds, CFG, tmp_path / "workers", CLASSES, "2-fold", progress=False,
                                results=runs["workers"], parallel=parallel.Parallel(2))
    pd.testing.assert_frame_equal(here, there)
    for name in variants:
        pd.testing.assert_frame_equal(runs["here"][name].predictions, runs["workers"][name].predictions)


@pytest.mark.slow
def test_a_failing_fold_on_a_worker_names_the_fold_and_the_next_run_still_trains(tmp_path, one_thread):
    ds = ToyData()
    folds = splits.loso(ds.clips)[:3]

    def build(fold):
        if fold is not None and fold.name == folds[1].name:
            raise ValueError("this fold's model cannot be built")
        return small_model()

    broken = engine.PerFold(build, {"model": "breaks on one fold"})
    with pytest.raises(RuntimeError, match=f"fold {folds[1].name} of .* failed on a Dask worker: ValueError: this "
                                           "fold's model cannot be built"):
        engine.run_cv(ds, folds, broken, CFG, tmp_path / "broken", CLASSES, progress=False,
                      parallel=parallel.Parallel(2))
    again = engine.run_cv(ds, folds, small_model, CFG, tmp_path / "fine", CLASSES, progress=False,
                          parallel=parallel.Parallel(2))
    assert len(again.per_fold) == 3
