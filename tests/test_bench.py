"""The benchmarks' cheap paths and what the speed work ships: the quick magnifier's weights
in the package, `mer bench gpu` without CUDA, the study bench's reading of a study log."""
import json
import math
from dataclasses import asdict

import pytest
import torch

from mer import cli
from mer.magnify import training
from mer.magnify.training import MagnifierConfig


def test_the_quick_magnifier_ships_with_the_package_and_is_read_not_trained(tmp_path):
    for name, shipping in training.shipped_configs().items():
        assert training.shipped_path(shipping) is not None, (
            f"no {training.weights_path(shipping, training.SHIPPED).name} in {training.SHIPPED}: the configuration "
            f"{name!r} changed; remake it with `mer train-magnifier --config quick [--manipulator paper] --weights-dir "
            "mer/magnify/weights --retrain` and remove the old file")
    assert sorted(p.name for p in training.SHIPPED.glob("*.pt")) == sorted(  # no stale copies ship
        training.weights_path(c, training.SHIPPED).name for c in training.shipped_configs().values())
    cfg = MagnifierConfig.named("quick")
    ready = training.prepare("quick", weights_dir=tmp_path / "weights", cache_dir=tmp_path / "cache", device="cpu")
    assert "shipped with the package" in ready.note and ready.record["config"] == asdict(cfg)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "weights").exists()  # no pairs made, nothing trained
    assert ready.record["curve"][-1]["step"] == cfg.steps
    # another configuration is not the shipped one: it trains (two steps here) into its own folder
    short = training.prepare("quick", steps=2, pairs=4, face_pairs=0, weights_dir=tmp_path / "weights",
                             cache_dir=tmp_path / "cache", device="cpu", max_check_pairs=2)
    assert "trained and saved to" in short.note and (tmp_path / "weights").is_dir()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: the GPU bench measures")
def test_bench_gpu_without_cuda_says_so_and_exits_0(tmp_path, capsys):
    assert cli.main(["bench", "gpu", "--out", str(tmp_path / "gpu.json")]) == 0
    assert "no CUDA GPU" in capsys.readouterr().out
    saved = json.loads((tmp_path / "gpu.json").read_text())
    assert saved["cuda"] is False and "rows" not in saved


def test_bench_gpu_lists_every_real_params_file_and_release():
    from mer.bench import gpu
    from mer.paths import project_root
    found = gpu.params_files()
    real = [p for p in (project_root() / "params").glob("*/*.yaml") if not p.stem.startswith("synth")]
    assert len(found) == len(real) and ("atm_gcn", "casme3", "4class") in found
    assert all(dataset in gpu.RELEASES for _, dataset, _ in found)


def test_study_bench_reads_each_notebooks_time_from_the_study_log():
    from mer.bench.study import DONE
    log = "[study] baseline on synth: x\n...\n[study] baseline done in 143 s\n[study] tdsgcn done in 9 s\n"
    assert DONE.findall(log) == [("baseline", "143"), ("tdsgcn", "9")]


def test_a_paper_profile_step_is_timed_and_projected_to_a_loso_run():
    """bench gpu's measurement of one params file, run on the CPU at smoke sizes (the GPU
    path itself needs CUDA): a step and a batch's data are timed, and the projection is
    folds x epochs x steps per epoch x their sum."""
    from mer.bench import gpu
    row = gpu.bench_one("baseline", "casme2", None, steps=1, warmup=0, device="cpu", smoke=True)
    folds, clips = gpu.RELEASES["casme2"]
    assert row["folds"] == folds and row["epochs"] == 1 and row["batch"] >= 1 and row["peak_GiB"] is None
    assert row["steps_per_epoch"] == math.ceil(clips * (1 - 1 / folds) / row["batch"])
    assert row["s_per_step"] > 0 and row["data_s_per_step"] > 0 and 0 < row["data_share"] < 1
    expected = folds * row["epochs"] * row["steps_per_epoch"] * (row["s_per_step"] + row["data_s_per_step"]) / 3600
    assert row["projected_hours"] == pytest.approx(expected, abs=0.01)
