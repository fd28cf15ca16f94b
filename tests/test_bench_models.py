"""The benchmark's models (mer.bench.models): every method's main model at smoke sizes runs
one forward on its random batch and gives one row of class scores per clip."""
from __future__ import annotations

import torch

from mer.bench.models import METHODS, example, method_params
from mer.notebook import smoke_params
from mer.paths import method_notebooks


def test_every_method_builds_and_runs_at_smoke_sizes():
    from mer.study import ON_REQUEST  # the amplitude sweep's notebook runs the others; it has no model
    with_notebook = {m for m, nbs in method_notebooks().items() if nbs} - set(ON_REQUEST)
    assert set(METHODS) == with_notebook  # a new method's notebook needs a builder here
    assert method_params("baseline", "casme2")["dataset"] == "casme2"
    for method in METHODS:
        ex = example(method, smoke_params(method_params(method, "synth")), batch=2)  # synth-5: 5 classes
        assert not ex.model.training and ex.labels.shape == (2,) and ex.labels.dtype == torch.int64
        assert ex.item and "\n" not in ex.item
        with torch.no_grad():
            logits = ex.forward()
        assert logits.shape == (2, 5), method
        assert torch.isfinite(logits).all(), method
    ex = example("baseline", smoke_params(method_params("baseline", "synth")), batch=2, num_classes=3)
    with torch.no_grad():
        assert ex.forward().shape == (2, 3)
