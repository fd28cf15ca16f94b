"""A sixth method is three things: a module in mer/models/ (found by the registry without a
list), a notebook notebooks/NN_<method>.ipynb and a params folder params/<method>/ (with
its reported numbers in reported.csv). A toy method made of exactly those, in a copy of
the project, runs through ``mer study --only`` and reaches the report."""
import json
import os
import shutil
import subprocess
import sys

import nbformat

from mer.paths import project_root
from tests.test_notebook import tiny_synth

TOY_MODULE = '''"""A toy method: a linear classifier on the pooled apex - onset difference."""
from torch import nn

from mer.models import register


@register("toy")
def toy(num_classes: int, pool: int = 4) -> nn.Module:
    return nn.Sequential(nn.AdaptiveAvgPool2d(pool), nn.Flatten(), nn.Linear(3 * pool * pool, num_classes))
'''
TOY_CELLS = [
    ("markdown", "# Toy method\nA linear classifier on the apex - onset difference."),
    ("parameters", 'dataset = "synth"\ndata_root = None\nprotocol = None\nannotation = None\ninput_size = 32\n'
                   'align = True\nworkers = 1\ncache_dir = None\nepochs = 2\nbatch_size = 8\nlr = 1e-2\nseed = 0\n'
                   'device = "auto"\nfolds = "loso"\npool = 4\nsmoke = False\noutput_dir = None'),
    ("code", 'from mer import models, notebook\nfrom mer.preprocess import ClipDataset\n\n'
             'run = notebook.start("toy", globals())\ntable = run.load()\n'
             'ds = run.show(ClipDataset(table.clips, "diff", **run.frames_args()))\n'
             'main = run.main(ds, models.Spec("toy", num_classes=table.num_classes, pool=pool))\n'
             'run.reported(main)\nrun.finish(main)'),
]
TOY_REPORTED = ("# Numbers the toy paper reports (fractions).\n"
                "dataset,protocol,source,acc,uf1,uar\ncasme2,casme2-5,\"p6 Table 1, toy\",0.5,0.4321,\n")


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "mer", "display_name": "Python (mer)",
                                                           "language": "python"}})
    for kind, text in TOY_CELLS:
        cell = nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        if kind == "parameters":
            cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    return nb


def test_a_toy_method_from_three_things_runs_through_mer_study(tmp_path):
    root = tmp_path / "project"
    src = project_root()
    shutil.copytree(src / "mer", root / "mer", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("notebooks", "params"):
        shutil.copytree(src / name, root / name)
    shutil.copy(src / "pyproject.toml", root / "pyproject.toml")
    # the three things
    (root / "mer" / "models" / "toy.py").write_text(TOY_MODULE)
    nbformat.write(_notebook(), str(root / "notebooks" / "06_toy.ipynb"))
    (root / "params" / "toy").mkdir()
    (root / "params" / "toy" / "synth.yaml").write_text("dataset: synth\n")
    (root / "params" / "toy" / "reported.csv").write_text(TOY_REPORTED)

    data_root = tiny_synth(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(root), "MER_OUTPUTS": str(tmp_path / "outputs"),
           "MER_CACHE": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-m", "mer.cli", "study", "--only", "toy", "--data-root", str(data_root)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run_dir = tmp_path / "outputs" / "synth" / "toy"
    m = json.loads((run_dir / "metrics.json").read_text())
    assert m["method"] == "toy" and m["n_clips"] == 12 and m["synthetic"] is True and m["params"]["pool"] == 4
    assert len(m["per_fold"]["folds"]) == 3 and 0 <= m["uf1"] <= 1
    assert (run_dir / "06_toy.html").is_file() and (run_dir / "figures" / "confusion.png").is_file()
    executed = (run_dir / "06_toy.ipynb").read_text()
    assert "p6 Table 1, toy" in executed  # its reported numbers, beside its own
    report = (tmp_path / "outputs" / "report.html").read_text()
    assert "synth/toy/06_toy.html" in report and 'p6 Table 1, toy</td><td>0.500</td><td>0.432' in report
    # the report orders methods by notebook number: the toy's reported row after every paper's
    assert report.rindex(">p5 Table") < report.index(">p6 Table 1, toy")
