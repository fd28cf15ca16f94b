"""The baseline notebook runs end to end through papermill with a tiny params file,
writes its results, renders to HTML, and the report picks it up."""
import json
import re

import pandas as pd
import pytest

from mer.data.synth import SynthConfig, generate
from mer.report.html import build_report
from mer.study import execute, find_jobs, method_notebook, to_html
from mer.paths import project_root


def tiny_synth(tmp_path, frames=(8, 10)):
    """A 3-subject, 12-clip SynthME set for running a notebook end to end."""
    return generate(tmp_path / "synth", SynthConfig(subjects=3, clips_per_subject=4, size=64, frames=frames,
                                                      workers=1), progress=False)


def check_rendered(run_dir, executed, figures, shown) -> str:
    """Every figure was written and every phrase appears in the executed notebook's HTML."""
    for fig in figures:
        assert (run_dir / "figures" / f"{fig}.png").is_file(), fig
    text = to_html(executed).read_text()
    for phrase in shown:
        assert phrase in text, phrase
    return text


def test_baseline_notebook_through_papermill(tmp_path):
    data_root = tiny_synth(tmp_path)
    outputs = tmp_path / "outputs"
    run_dir = outputs / "synth" / "baseline"
    params = {"dataset": "synth", "data_root": str(data_root), "input_size": 32, "epochs": 1, "batch_size": 8,
              "ablations": ["apex"], "ablation_folds": 2, "output_dir": str(run_dir), "workers": 1,
              "cache_dir": str(tmp_path / "cache"), "seeds": [0, 1], "test_epochs": True}
    nb = project_root() / "notebooks" / "00_baseline.ipynb"
    executed = run_dir / "00_baseline.ipynb"
    execute(nb, executed, params, progress=False)

    m = json.loads((run_dir / "metrics.json").read_text())
    for key in ("method", "dataset", "protocol", "n_clips", "n_subjects", "acc", "uf1", "uar", "per_class",
                "per_fold", "ablations", "runtime_s", "device", "git_commit", "params"):
        assert key in m
    assert m["method"] == "baseline" and m["dataset"] == "synth" and m["synthetic"] is True
    assert m["n_clips"] == 12 and m["n_subjects"] == 3 and 0 <= m["uf1"] <= 1
    assert m["params"]["epochs"] == 1 and len(m["per_fold"]["folds"]) == 3
    assert [a["variant"] for a in m["ablations"]] == ["apex - onset (main input)", "apex frame only"]
    preds = pd.read_csv(run_dir / "predictions.csv")
    assert len(preds) == 12 and set(preds["fold"]) == {"sub01", "sub02", "sub03"}
    assert (run_dir / "predictions_megc.txt").read_text().startswith("synth sub01\n")
    for fig in ("examples", "curves", "confusion", "per_class", "ablations", "test_selection"):
        assert (run_dir / "figures" / f"{fig}.png").is_file()
    # the main run again with the further seed (same folds), its predictions kept for the leaderboard
    assert [r["seed"] for r in m["seed_runs"]] == [0, 1] and m["seed_runs"][0]["uf1"] == m["uf1"]
    seed1 = pd.read_csv(run_dir / m["seed_runs"][1]["predictions"])
    assert len(seed1) == 12 and list(seed1["fold"]) == list(preds["fold"])
    # the test-epoch diagnostic: one epoch, so the oracle readings equal the honest score
    sel = m["test_selection"]
    assert sel["epochs"] == 1 and sel["honest_uf1"] == m["uf1"]
    assert sel["fold_best_uf1"] == pytest.approx(m["uf1"]) and sel["inflation_uf1"] == pytest.approx(0)
    assert m["date"] and "CPU" in m["machine"]

    assert m["params"]["align"] is True
    assert list((tmp_path / "cache").glob("detect/*/*.npz"))  # the aligned pipeline ran through the cache
    html = to_html(executed)
    text = html.read_text()
    assert "apex - onset" in text and "Face alignment" in text
    assert re.search(r"cache: \d+ entries read, \d+ computed", text)
    report = build_report(outputs).read_text()
    assert "synth/baseline/00_baseline.html" in report
    assert "SynthME (synthetic)" in report and ">p5 (CVA+FPF) Table 2, Baseline(ResNet)" in report
    assert "data:image/png;base64," in report


def test_every_synth_params_file_has_its_notebook():
    jobs = find_jobs("synth")
    # the baseline runs before the notebooks that compare with it
    assert [j.method for j in jobs][:6] == ["baseline", "mer_gcn", "gam_mm_mer", "tdsgcn", "atm_gcn", "cva_fpf"]
    for j in jobs:
        assert re.fullmatch(rf"\d\d_{j.method}(_\w+)?\.ipynb", j.notebook.name), j.notebook.name


def test_find_jobs_refuses_two_notebooks_for_one_method(tmp_path, monkeypatch):
    import mer.study
    for d in ("params/m", "notebooks"):
        (tmp_path / d).mkdir(parents=True)
    (tmp_path / "params" / "m" / "synth.yaml").write_text("dataset: synth\n")
    (tmp_path / "notebooks" / "07_m.ipynb").write_text("{}")
    monkeypatch.setattr(mer.study, "project_root", lambda: tmp_path)
    assert [j.notebook.name for j in find_jobs("synth")] == ["07_m.ipynb"]
    (tmp_path / "notebooks" / "08_m_long_name.ipynb").write_text("{}")
    with pytest.raises(FileNotFoundError, match="expected one notebook"):
        find_jobs("synth")


def test_params_files_only_use_declared_parameters():
    """papermill only warns about an unknown parameter; a typo in a params file would be
    silently ignored, so every key must be declared in its notebook's parameters cell."""
    import yaml
    from mer.study import declared_parameters
    root = project_root()
    for pfile in sorted((root / "params").glob("*/*.yaml")):
        declared = declared_parameters(method_notebook(pfile.parent.name, pfile))
        keys = set(yaml.safe_load(pfile.read_text()))
        assert keys <= declared, f"{pfile}: undeclared parameter(s) {sorted(keys - declared)}"
        assert yaml.safe_load(pfile.read_text())["dataset"] == pfile.stem.split(".")[0]  # <dataset>[.<variant>]


def test_every_parameter_has_one_home():
    """The notebook's parameters cell holds the defaults (the quick profile on SynthME);
    a params file holds only what differs from them, so no value is kept twice."""
    import yaml
    from mer.study import notebook_defaults
    root = project_root()
    files = sorted((root / "params").glob("*/*.yaml"))
    assert len(files) >= 27
    for pfile in files:
        defaults = notebook_defaults(method_notebook(pfile.parent.name, pfile))
        assert "profile" not in defaults  # read by nothing: removed
        same = {k: v for k, v in yaml.safe_load(pfile.read_text()).items() if k != "dataset" and v == defaults[k]}
        assert not same, f"{pfile} repeats its notebook's defaults {same}: keep them in the parameters cell only"
    for pfile in (root / "params").glob("*/synth.yaml"):  # the quick profile is the cell itself
        assert set(yaml.safe_load(pfile.read_text())) <= {"dataset", "protocol"}, pfile


def test_tdsgcn_notebook_through_papermill(tmp_path):
    data_root = tiny_synth(tmp_path, frames=(12, 16))
    macro_root = generate(tmp_path / "macro", SynthConfig(mode="macro", subjects=3, clips_per_subject=4, size=64,
                                                          frames=(12, 16), workers=1), progress=False)
    run_dir = tmp_path / "outputs" / "synth" / "tdsgcn"
    params = {"dataset": "synth", "data_root": str(data_root), "macro_root": str(macro_root), "side": 12,
              "flow_size": 32, "pretrain_epochs": 1, "epochs": 1, "batch_size": 8,
              "ablations": ["transfer", "T6", "T7", "focal"], "architectures": ["4+0"], "freeze_sgcns": True,
              "focal_grid": {"alpha": [1.0], "gamma": [1.0]}, "ablation_folds": 2,
              "workers": 2,  # folds, pre-trainings and every ablation queued together on two Dask workers
              "cache_dir": str(tmp_path / "cache"), "output_dir": str(run_dir)}
    executed = run_dir / "03_tdsgcn.ipynb"
    execute(project_root() / "notebooks" / "03_tdsgcn.ipynb", executed, params, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["method"] == "tdsgcn" and m["n_clips"] == 12 and m["params"]["side"] == 12
    assert [a["variant"] for a in m["ablations"]] == [
        "main configuration", "from scratch", "SGCNs fine-tuned (all weights)", "4+0, spatial + CE",
        "4+0, temporal + CE", "8+2 and 4+0, spatial + CE", "8+2 and 4+0, temporal + CE",
        "8+2 and 8+2, spatial + temporal + CE", "4+0 and 4+0, spatial + temporal + CE",
        "8+2 and 4+0, spatial + temporal + CE"]
    # pre-trainings: the main graphs with focal loss; with cross-entropy 4+0, the main graphs and both doubles
    assert len(list((run_dir / "pretrain").glob("pretrain_*.pt"))) == 5
    assert "folds on 2 local Dask workers" in executed.read_text()
    check_rendered(run_dir, executed, ("graph_0_8_2", "graph_1_4_0", "inputs", "flow_mean_variance", "pretraining",
                                       "curves", "confusion", "per_class", "focal_grid", "ablations"),
                   ("macro subjects that are also micro subjects: none", "held-out macro subjects",
                    "Table VI, with the paper's columns", "spatial: fine-tuning acc", "Table VII: branches, graphs",
                    "p3 Table II", "(about 44 MMEW /", "No finished baseline"))


def test_atm_gcn_notebook_through_papermill(tmp_path):
    data_root = tiny_synth(tmp_path, frames=(12, 16))
    run_dir = tmp_path / "outputs" / "synth" / "atm_gcn"
    params = {"dataset": "synth", "data_root": str(data_root), "input_size": 32, "frames": 6, "epochs": 1,
              "batch_size": 8, "ablations": ["w/o GCN", "full"], "ablation_folds": 2, "attention_clips": 2,
              "sampling": "rate", "grad_accum": 2,  # the paper profiles' 30 Hz clips and accumulated batches
              "workers": 1, "cache_dir": str(tmp_path / "cache"), "output_dir": str(run_dir)}
    executed = run_dir / "04_atm_gcn.ipynb"
    execute(project_root() / "notebooks" / "04_atm_gcn.ipynb", executed, params, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["method"] == "atm_gcn" and m["n_clips"] == 12 and m["params"]["frames"] == 6
    assert [a["variant"] for a in m["ablations"]] == ["w/o GCN", "full"]
    check_rendered(run_dir, executed, ("examples", "curves", "confusion", "per_class", "ablations", "attention"),
                   ("reported", "p4 Table I", "No finished baseline", "30 Hz sampling: 12 clips",
                    "graph: 5 nodes per clip", "mean over subjects",
                    "forget rate f"))  # the last: the Adaptive-TM diagnostic ran
    assert m["subject_mean"]["subjects"] == 3 and 0 <= m["subject_mean"]["uf1"] <= 1


def test_mer_gcn_notebook_through_papermill(tmp_path):
    data_root = tiny_synth(tmp_path, frames=(12, 16))
    run_dir = tmp_path / "outputs" / "synth" / "mer_gcn"
    params = {"dataset": "synth", "data_root": str(data_root), "input_size": 32, "frames": 3, "epochs": 1,
              "batch_size": 8, "ablations": ["GCN", "GCN + Transformer"], "ablation_folds": 2, "five_crop": 0.875,
              "workers": 1, "cache_dir": str(tmp_path / "cache"), "output_dir": str(run_dir)}
    executed = run_dir / "01_mer_gcn_transformer.ipynb"
    execute(project_root() / "notebooks" / "01_mer_gcn_transformer.ipynb", executed, params, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["method"] == "mer_gcn" and m["n_clips"] == 12 and m["params"]["frames"] == 3
    assert [a["variant"] for a in m["ablations"]] == ["GCN", "GCN + Transformer", "GCN [ML-GCN reading]",
                                                      "GCN + Transformer [ML-GCN reading]"]
    assert m["params"]["centre_distance"] == "euclidean" and m["params"]["test_crop"] == "centre"
    check_rendered(run_dir, executed, ("examples", "au_cooccurrence", "au_graph", "curves", "confusion", "per_class",
                                       "ablations"),
                   ("reported", "p1 Tables 2-3, GCN + Transformer", "No finished baseline", "px to the centre",
                    "Table 2, ML-GCN reading", "UF1 minus full (ST-GCN reading)",
                    "annotated AUs outside the vocabulary", "optimizer steps per fold"))


def test_cva_fpf_notebook_through_papermill(tmp_path):
    from mer import data
    data_root = tiny_synth(tmp_path)
    outputs = tmp_path / "outputs"
    run_dir = outputs / "synth" / "cva_fpf"
    # a stand-in baseline run on the same clips, so the side-by-side comparison path runs
    clips = data.load("synth", data_root).clips
    (outputs / "synth" / "baseline").mkdir(parents=True)
    clips.assign(y_true=clips["label"], y_pred=0, fold=clips["subject"])[["fold", "subject", "clip", "y_true",
                                                                          "y_pred"]].to_csv(
        outputs / "synth" / "baseline" / "predictions.csv", index=False)
    (outputs / "synth" / "baseline" / "metrics.json").write_text(json.dumps(
        {"protocol": "synth-5", "labels": ["happiness", "disgust", "repression", "surprise", "others"]}))
    params = {"dataset": "synth", "data_root": str(data_root), "input_size": 32, "epochs": 1, "batch_size": 8,
              "ablations": ["T2", "T5"], "ablation_folds": 2, "attention_clips": 2, "workers": 1,
              "cache_dir": str(tmp_path / "cache"), "output_dir": str(run_dir)}
    executed = run_dir / "05_cva_fpf.ipynb"
    execute(project_root() / "notebooks" / "05_cva_fpf.ipynb", executed, params, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["method"] == "cva_fpf" and m["n_clips"] == 12 and m["synthetic"] is True
    assert [a["variant"] for a in m["ablations"]] == ["ResNet_18 (base)", "CVA block", "FPF block", "AU embedding",
                                                      "CVA_FPF_AU (full)", "FPF on ViT"]
    check_rendered(run_dir, executed, ("examples", "curves", "confusion", "per_class", "ablations", "attention"),
                   ("AU vector alone (MLP)", "baseline (ResNet-18, apex - onset)", "the full model", "Table 5",
                    "FPF on Swin (full)", "p5 Table 7, with AU embedding", "AU outside the vector",
                    "UF1 minus full [95% interval]"))
    assert m["notes"] and "ground-truth AU codes" in m["notes"][0] and "baseline 0.0" in m["notes"][0]
    report = build_report(outputs).read_text()
    assert "&dagger; cva_fpf on" in report and "ground-truth AU codes" in report


def test_gam_mm_mer_notebook_through_papermill(tmp_path):
    data_root = tiny_synth(tmp_path)
    outputs = tmp_path / "outputs"
    run_dir = outputs / "synth" / "gam_mm_mer"
    params = {"dataset": "synth", "data_root": str(data_root), "input_size": 32, "patch": 8, "epochs": 1,
              "batch_size": 8, "magnifier_steps": 2, "magnifier_pairs": 8, "magnifier_face_pairs": 4, "check_pairs": 3,
              "face_check_pairs": 2, "latency_repeats": 1, "figure_alphas": [5, 20], "folds": 2, "ablations": ["T3", "T4"], "ablation_folds": 2, "workers": 1,
              "cache_dir": str(tmp_path / "cache"), "weights_dir": str(tmp_path / "weights"),
              "output_dir": str(run_dir)}
    executed = run_dir / "02_gam_mm_mer.ipynb"
    execute(project_root() / "notebooks" / "02_gam_mm_mer.ipynb", executed, params, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["method"] == "gam_mm_mer" and m["n_clips"] == 12 and m["synthetic"] is True
    assert [a["variant"] for a in m["ablations"]] == [
        "main configuration", "add one GAT layer", "remove one GAT layer", "GCN instead of GAT",
        "all facial key areas", "raw facial graph", "raw image (no magnification)", "alpha = 10 at test",
        "alpha = 20 at test"]
    # both readings of Eq. 3 trained once each, cached for the next run
    assert len(list((tmp_path / "weights").glob("stmemm_*.pt"))) == 2
    check = pd.read_csv(run_dir / "magnifier_check.csv")
    readings = {"ST-MEMM (official)", "ST-MEMM (paper)"}
    assert set(check["magnifier"]) == readings | {"Eulerian", "true target"} and set(check["alpha"]) == {1.0, 5.0, 10.0}
    faces = pd.read_csv(run_dir / "magnifier_face_check.csv")
    assert set(faces["magnifier"]) == readings | {"Eulerian", "true target"} and set(faces["alpha"]) == {5.0, 10.0}
    assert json.loads((run_dir / "latency.json").read_text())["rows"]
    # two training steps cannot magnify: the run says so beside its number, for both checks
    assert len(m["notes"]) == 2 and all("NOT met" in n for n in m["notes"])
    check_rendered(run_dir, executed,
                   ("magnifier_curve", "magnifier_pair", "fig9", "curves", "confusion", "per_class", "ablations",
                    "fig8"),
                   ("true target", "raw apex (no magnification)", "Eulerian (linear)", "main minus this",
                    "Table 3: the recogniser", "Table 4: the magnification", "p2 Table 4, alpha = 10",
                    "ST-MEMM (official) at alpha = 1", "median cosine", "on held-out faces", "astronaut",
                    "alpha = 5 at test (main)", "ms per clip", "reported A10 ms"))
    report = build_report(outputs).read_text()
    assert "&dagger; gam_mm_mer on" in report and "NOT met" in report


def test_a_params_variant_runs_beside_its_dataset():
    """params/<method>/<dataset>.<variant>.yaml (CAS(ME)^3's 4 classes) is found only with
    the variant named, and an unknown variant is an error."""
    from mer.study import find_jobs, load_params
    jobs = find_jobs("casme3", variant="4class")
    assert [j.method for j in jobs] == ["atm_gcn"] and load_params(jobs[0].params_file)["protocol"] == "casme3-4"
    assert "atm_gcn" in [j.method for j in find_jobs("casme3")]
    assert all(j.params_file.stem == "casme3" for j in find_jobs("casme3"))
    with pytest.raises(FileNotFoundError, match="no method has the variant 'nope'"):
        find_jobs("casme3", variant="nope")


def test_reference_notebook_through_papermill(tmp_path):
    """The reference notebook on a tiny SynthME set in smoke mode (the probes' baseline rows
    then train one epoch): every network it is given, the probes with their intervals, the
    per-network predictions the report reads."""
    data_root = tiny_synth(tmp_path)
    outputs = tmp_path / "outputs"
    run_dir = outputs / "synth" / "reference"
    params = {"dataset": "synth", "data_root": str(data_root), "networks": ["ststnet", "rcn_a"], "smoke": True,
              "workers": 1, "cache_dir": str(tmp_path / "cache"), "output_dir": str(run_dir)}
    executed = run_dir / "06_reference_flow_networks.ipynb"
    execute(project_root() / "notebooks" / "06_reference_flow_networks.ipynb", executed, params, progress=False)
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["method"] == "reference" and m["n_clips"] == 12
    assert [n["network"] for n in m["networks"]] == ["ststnet", "rcn_a"] and m["strongest"] in ("ststnet", "rcn_a")
    best = next(n for n in m["networks"] if n["network"] == m["strongest"])
    assert m["uf1"] == best["uf1"] and m["notes"] and "picked after testing" in m["notes"][0]
    for n in m["networks"]:
        preds = pd.read_csv(run_dir / n["predictions"])
        assert len(preds) == 12 and n["seeds"]["seeds"] == "0" and n["seeds"]["UF1 mean"] == n["uf1"]
    from mer.models.reference import PROBE_BASELINE, PROBE_REFERENCE
    variants = [a["variant"] for a in m["ablations"]]
    assert PROBE_REFERENCE in variants and PROBE_BASELINE in variants and len(variants) == 10
    check_rendered(run_dir, executed, ("flow_examples", "curves_ststnet", "confusion_rcn_a", "per_class", "ablations"),
                   ("STSTNet", "RCN-A", "95% interval", "No finished baseline", "reported", "MEB rerun"))
    board = build_report(outputs, smoke=True).read_text()  # smoke runs have their own report
    assert "STSTNet (reference)" in board or "STSTNet (strongest reference)" in board


def test_study_options_reach_every_notebook_that_declares_them():
    """mer study --seeds N gives every notebook seeds 0..N-1 and the test-epoch diagnostic is on
    in a study; the amplitude sweep runs only when asked."""
    from mer.study import declared_parameters, study_overrides
    assert study_overrides(3) == {"test_epochs": True, "seeds": [0, 1, 2]}
    assert study_overrides(None, test_epochs=False) == {"test_epochs": False}
    with pytest.raises(ValueError, match="at least 1"):
        study_overrides(0)
    jobs = find_jobs("synth")
    assert "sweep" not in [j.method for j in jobs]
    assert [j.method for j in find_jobs("synth", ["sweep"])] == ["sweep"]
    for job in jobs:
        assert {"seeds", "test_epochs"} <= declared_parameters(job.notebook), job.notebook.name


def test_sweep_notebook_through_papermill(tmp_path):
    """The amplitude sweep in smoke mode, one method: a SynthME set per amplitude, the method's
    own notebook on each, sweep.json and the chart, and the report's sweep section."""
    outputs = tmp_path / "outputs"
    run_dir = outputs / "synth" / "sweep"
    params = {"amplitudes": [1, 4], "methods": ["baseline"], "method_params": {"baseline": {"ablations": []}},
              "smoke": True, "workers": 1, "output_dir": str(run_dir)}
    executed = run_dir / "07_sweep.ipynb"
    import os
    os.environ["MER_OUTPUTS"] = str(outputs)  # the sets and the nested runs' caches stay in tmp_path
    try:
        execute(method_notebook("sweep"), executed, params, progress=False)
    finally:
        del os.environ["MER_OUTPUTS"]
    summary = json.loads((run_dir / "sweep.json").read_text())
    assert [(r["amplitude (px)"], r["method"]) for r in summary["rows"]] == [(1.0, "baseline"), (4.0, "baseline")]
    assert summary["date"] and "CPU" in summary["machine"] and summary["runtime_s"] > 0
    assert (run_dir / "figures" / "amplitude.png").is_file()
    for a in ("1", "4"):
        m = json.loads((run_dir / "runs" / f"amp_{a}" / "baseline" / "metrics.json").read_text())
        assert m["smoke"] is True and m["params"]["folds"] == 2 and m["n_subjects"] == 4
    report = build_report(outputs).read_text()
    assert "UF1 against motion amplitude, per method" in report and "Not run: <code>mer study --sweep" not in report
