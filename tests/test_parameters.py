"""A mistyped parameter is an error where it enters, naming it and the nearest declared name;
a value of the wrong kind is an error naming the parameter and what it accepts: through
papermill's -p and -f (the notebook's first step reads what papermill injected), through a
params file (checked by mer study before any notebook runs) and through mer study -p."""
import subprocess
import sys
from pathlib import Path

import pytest

from mer import parameters
from mer.paths import project_root
from mer.study import Job, job_params, method_notebook

BASELINE = project_root() / "notebooks" / "00_baseline.ipynb"


def test_unknown_names_name_the_nearest_declared_one():
    with pytest.raises(ValueError, match=r"my.yaml: unknown parameter 'epoch' \(did you mean 'epochs'\?\)"):
        parameters.check_names(["epoch", "lr"], ["epochs", "lr", "seed"], "my.yaml")
    with pytest.raises(ValueError, match=r"unknown parameters 'colour' \(did you mean 'color'\?\), 'zzz'"):
        parameters.check_names(["colour", "zzz"], ["color"], "x")
    parameters.check_names(["epochs"], ["epochs"], "x")


def test_wrong_kinds_name_the_parameter_and_what_it_takes():
    defaults = {"epochs": 12, "lr": 1e-3, "folds": "loso", "align": True, "seeds": [0], "data_root": None}
    with pytest.raises(ValueError, match=r"epochs = 'ten': expected an integer"):
        parameters.check_values({"epochs": "ten"}, defaults, "p")
    with pytest.raises(ValueError, match=r"folds = 'lso': expected 'loso', an integer k >= 2"):
        parameters.check_values({"folds": "lso"}, defaults, "p")
    with pytest.raises(ValueError, match=r"lr = '1e-3': expected a number \(YAML reads 1e-3 as text"):
        parameters.check_values({"lr": "1e-3"}, defaults, "p")
    with pytest.raises(ValueError, match=r"align = 1: expected True or False"):
        parameters.check_values({"align": 1}, defaults, "p")
    parameters.check_values({"epochs": 3, "lr": 1, "folds": 5, "seeds": [0, 1], "data_root": "/data",
                             "align": False}, defaults, "p")
    parameters.check_values({"folds": "holdout:44"}, defaults, "p")
    with pytest.raises(ValueError, match="folds = 1"):
        parameters.check_values({"folds": 1}, defaults, "p")


def test_injected_names_are_read_from_the_parameters_cell():
    history = ["", "dataset = 'synth'\nepochs = 12", "# Parameters\nepoch = 1\ndata_root = '/x'\n", "run = 1"]
    assert parameters.injected_names(history) == ["epoch", "data_root"]
    assert parameters.injected_names(["x = 1"]) == []


def test_a_params_file_with_a_typo_or_a_wrong_value_stops_mer_study(tmp_path):
    own = tmp_path / "mine.yaml"
    own.write_text("dataset: synth\nepoch: 1\n")
    with pytest.raises(ValueError, match=rf"{own}: unknown parameter 'epoch' \(did you mean 'epochs'\?\)"):
        job_params(Job("baseline", method_notebook("baseline"), own))
    own.write_text("dataset: synth\nepochs: ten\nfolds: lso\n")
    with pytest.raises(ValueError, match=r"epochs = 'ten': expected an integer; folds = 'lso'"):
        job_params(Job("baseline", method_notebook("baseline"), own))
    with pytest.raises(ValueError, match=r"mer study -p: unknown parameter 'epoch' \(did you mean 'epochs'\?\)"):
        from mer.study import run_study
        run_study("synth", ["baseline"], overrides={"epoch": 1})


def _papermill(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    papermill = Path(sys.executable).parent / "papermill"
    return subprocess.run([str(papermill), str(BASELINE), str(tmp_path / "out.ipynb"), "-k", "mer",
                           "--cwd", str(project_root()), *args], capture_output=True, text=True, timeout=300)


def test_papermill_p_and_f_with_a_typo_fail_at_the_first_step(tmp_path):
    done = _papermill(tmp_path, "-p", "epoch", "1")
    assert done.returncode != 0
    assert "unknown parameter 'epoch' (did you mean 'epochs'?)" in done.stdout + done.stderr
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text("folds: lso\n")
    done = _papermill(tmp_path, "-f", str(yaml_file))
    assert done.returncode != 0
    assert "folds = 'lso': expected 'loso', an integer k >= 2" in done.stdout + done.stderr
