"""The amplitude sweep's parts: one SynthME set per amplitude with every clip at exactly that
amplitude and otherwise the same clips; rows with intervals per method (per network for the
reference notebook); the chart."""
import json

import numpy as np
import pandas as pd
import pytest

from mer import sweep
from mer.data.synth import META_NAME
from mer.report import plots


def test_each_set_has_its_amplitude_and_the_same_clips(tmp_path):
    sets = {a: sweep.sweep_set(a, 2, 2, seed=3, root=tmp_path, progress=False) for a in (0.5, 4)}
    metas = {a: json.loads((root / META_NAME).read_text()) for a, root in sets.items()}
    for a, meta in metas.items():
        assert {c["amplitude_px"] for c in meta["clips"]} == {a}
    small, large = ([(c["subject"], c["filename"], c["emotion"], c["aus"]) for c in metas[a]["clips"]] for a in (0.5, 4))
    assert small == large  # only the amplitude differs
    assert sweep.sweep_set(0.5, 2, 2, seed=3, root=tmp_path, progress=False) == sets[0.5]  # generated once


def test_rows_per_method_and_per_reference_network(tmp_path):
    y = np.arange(40) % 2
    subjects = [f"s{i // 10}" for i in range(40)]
    for name, acc in (("predictions.csv", 1.0), ("ststnet/predictions.csv", 0.5)):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame({"subject": subjects, "clip": [f"c{i}" for i in range(40)], "y_true": y,
                      "y_pred": np.where(np.arange(40) < acc * 40, y, 1 - y)}).to_csv(path, index=False)
    rows = sweep.rows_of("baseline", {"labels": ["a", "b"]}, tmp_path, 2.0, n_boot=200)
    assert len(rows) == 1 and rows[0]["uf1"] == pytest.approx(1.0) and rows[0]["method"] == "baseline"
    ref = sweep.rows_of("reference", {"labels": ["a", "b"], "networks": [
        {"name": "STSTNet", "predictions": "ststnet/predictions.csv"}]}, tmp_path, 2.0, n_boot=200)
    assert [r["method"] for r in ref] == ["STSTNet"] and ref[0]["uf1_low"] <= ref[0]["uf1"] <= ref[0]["uf1_high"]
    table = pd.DataFrame(rows + ref + [{**rows[0], "amplitude_px": 4.0}])
    fig = plots.amplitude_sweep(table)
    assert len(fig.axes[0].lines) >= 2
