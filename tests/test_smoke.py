"""Every params file of a real dataset, in smoke mode, through papermill, on a fixture tree
in that dataset's exact release layout (tests/real_layouts.py): the check a researcher
runs on their own copy (``mer study --dataset D --data-root R --smoke``), run here for
every dataset. The params files are discovered, not listed: a new one is tested as soon
as it exists. Runs of one dataset share an outputs folder (the baseline runs first, so the
comparisons with it run too) and all share one preprocessing cache.

Marked ``smoke``: ``pytest -m "not smoke"`` skips them locally.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
import pytest

from mer import data
from mer.paths import project_root
from mer.study import Job, job_params, load_params, method_notebook, notebook_defaults, run_job
from tests.real_layouts import build_all

PARAMS = sorted(p for p in (project_root() / "params").glob("*/*.yaml") if p.stem != "synth")
# per dataset, the baseline first (the others compare with it), then notebook order
JOBS = sorted((Job(p.parent.name, method_notebook(p.parent.name, p), p) for p in PARAMS),
              key=lambda j: (j.params_file.stem, j.notebook.name))
TIMES: dict[str, float] = {}


@pytest.fixture(scope="session")
def real_trees(tmp_path_factory) -> dict[str, dict]:
    return build_all(tmp_path_factory.mktemp("real_layouts"))


@pytest.fixture(scope="session")
def smoke_home(tmp_path_factory):
    """Where the smoke runs write (MER_OUTPUTS, inherited by the notebook kernels)."""
    home = tmp_path_factory.mktemp("smoke_outputs")
    before = os.environ.get("MER_OUTPUTS")
    os.environ["MER_OUTPUTS"] = str(home)
    yield home
    if before is None:
        os.environ.pop("MER_OUTPUTS", None)
    else:
        os.environ["MER_OUTPUTS"] = before
    if TIMES:
        print("\nsmoke runs: " + ", ".join(f"{k} {v:.0f} s" for k, v in TIMES.items())
              + f"; {len(TIMES)} params files in {sum(TIMES.values()):.0f} s")


def test_every_real_dataset_has_a_fixture_and_params_are_found(real_trees):
    datasets = {p.stem.split(".")[0] for p in PARAMS}
    assert len(PARAMS) >= 21 and datasets == set(real_trees)  # casme2 samm smic casme_sq casme3 mmew composite


@pytest.mark.smoke
@pytest.mark.parametrize("job", JOBS, ids=[f"{j.method}-{j.params_file.stem}" for j in JOBS])
def test_params_file_runs_in_smoke_mode(job, real_trees, smoke_home):
    dataset, _, variant = job.params_file.stem.partition(".")  # <dataset>[.<variant>]
    paper = {**notebook_defaults(job.notebook), **load_params(job.params_file)}  # what the notebook runs with
    extra = real_trees[dataset]
    out = smoke_home / "smoke" / dataset / (f"{job.method}.{variant}" if variant else job.method)
    params = job_params(job, smoke=True, overrides={**extra, "cache_dir": str(smoke_home / "cache"),
                                                    **({"output_dir": str(out)} if variant else {})})
    t0 = time.perf_counter()
    executed = run_job(job, dataset, params, out, progress=False)
    TIMES[f"{job.method}/{job.params_file.stem}"] = time.perf_counter() - t0

    m = json.loads((out / "metrics.json").read_text())
    assert m["smoke"] is True and m["method"] == job.method and m["dataset"] == dataset
    assert m["protocol"] == paper["protocol"]
    # every clip the loader keeps is run: nothing is cut for the smoke run
    kw = {"annotation": extra["annotation"]} if "annotation" in extra else {}
    table = data.load(dataset, extra["data_root"], protocol=paper["protocol"], **kw)
    assert m["n_clips"] == len(table.clips) and m["n_subjects"] == table.clips["subject"].nunique() >= 3
    preds = pd.read_csv(out / "predictions.csv", dtype={"subject": str, "fold": str})
    assert len(preds) == len(table.clips) and preds["fold"].nunique() == m["n_subjects"]  # LOSO
    assert m["params"].get("epochs", m["params"].get("network_epochs")) == 1
    assert m["params"].get("input_size", 32) == 32
    for fig in ("confusion", "curves", "per_class"):  # one per network where a notebook runs several
        assert list((out / "figures").glob(f"{fig}*.png")), fig
    if paper.get("ablations"):
        assert m["ablations"] and {a["folds"] for a in m["ablations"]} == {"grouped 2-fold"}
    html = executed.with_suffix(".html").read_text()
    assert "smoke run: compute shrunk" in html
    if dataset == "composite":  # pooled over all folds, and per source dataset
        assert {s["source"] for s in m["per_source"]} == {"casme2", "samm", "smic"}
    if job.method != "baseline" and "against_baseline" in job.notebook.read_text():
        base = json.loads((out.parent / "baseline" / "metrics.json").read_text())
        if base["protocol"] != m["protocol"]:  # e.g. ATM-GCN's casme2-megc beside the baseline's casme2-5
            assert "Not compared with baseline" in html and f"protocol {base['protocol']}" in html
        else:
            assert "UF1 difference" in html


def test_study_parameters_reach_only_the_notebooks_that_declare_them(capsys):
    from mer.cli import main
    from mer.study import find_jobs
    jobs = {j.method: j for j in find_jobs("samm")}
    tdsgcn = job_params(jobs["tdsgcn"], "/data/SAMM", smoke=True, overrides={"macro_root": "/data/CK+"})
    base = job_params(jobs["baseline"], "/data/SAMM", smoke=True, overrides={"macro_root": "/data/CK+"})
    assert tdsgcn["macro_root"] == "/data/CK+" and "macro_root" not in base
    assert base["smoke"] is True and base["data_root"] == "/data/SAMM" and base["epochs"] == 75  # shrunk in the notebook
    assert main(["study", "--dataset", "samm", "--smoke", "-p", "epoch=1"]) == 2  # a typo is refused up front
    assert "mer study -p: unknown parameter 'epoch' (did you mean 'epochs'?)" in capsys.readouterr().err


def test_smoke_params_shrink_compute_only():
    from mer.notebook import label, smoke_params
    def run_params(method, dataset):  # what the notebook runs with: its defaults, then the params file
        return {**notebook_defaults(method_notebook(method)),
                **load_params(project_root() / "params" / method / f"{dataset}.yaml")}

    gam = run_params("gam_mm_mer", "casme2")
    s = smoke_params(gam)
    assert (s["epochs"], s["ablation_folds"], s["input_size"], s["magnifier_steps"], s["check_pairs"]) == (1, 2, 32, 2, 4)
    assert s["patch"] == 8  # 48 px of 224 keep their share of the face (7 px at 32), at least 8 px
    assert s["weights_dir"].endswith("smoke/weights") and s["smoke"] is True
    assert {k: s[k] for k in ("protocol", "ablations", "magnifier_config", "train_alphas")} == \
        {k: gam[k] for k in ("protocol", "ablations", "magnifier_config", "train_alphas")}  # the same run
    tds = smoke_params(run_params("tdsgcn", "samm"))
    assert tds["side"] == 32 and tds["flow_size"] == 32 and tds["pretrain_epochs"] == 1 and "input_size" not in tds
    assert tds["architectures"] == ["4+0", "12+0 and 4+6"]  # Table VI: a single and a dual SGCN of its ten
    assert label("casme2", True) == " (smoke run: compute shrunk)" and label("synth") == " (synthetic)"
