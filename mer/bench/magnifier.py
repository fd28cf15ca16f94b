"""``mer bench magnifier``: remake the quick ST-MEMM weights the package ships, from
scratch (pairs generated, then trained), timed, and set beside the shipped ones on the
same held-out pairs. The shipped file is what ``mer train-magnifier --config quick
--weights-dir mer/magnify/weights --retrain`` writes."""
from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from mer.bench.study import machine


def bench_magnifier(out: str | Path | None = None, device: str = "auto", steps: int | None = None,
                    check: int = 30, manipulator: str | None = None, progress: bool = True) -> dict:
    """Train the quick configuration (``steps`` and ``manipulator`` replaced when given) in a
    scratch folder and compare its magnification with the shipped weights' on ``check``
    held-out pairs."""
    from mer.magnify.measure import compare_magnifiers
    from mer.magnify.training import (MagnifierConfig, as_magnifier, load_magnifier, shipped_path,
                                      train_magnifier)
    quick = MagnifierConfig.named("quick", manipulator=manipulator)
    cfg = MagnifierConfig.named("quick", steps=steps, manipulator=manipulator)
    shipped = shipped_path(quick)
    result = {"what": "the quick ST-MEMM remade from scratch (procedural and face pairs generated, then trained)",
              "config": quick.key(), "steps": cfg.steps, "machine": machine(),
              "shipped": str(shipped) if shipped else None}
    with tempfile.TemporaryDirectory(prefix="mer-bench-magnifier-") as tmp:
        t0 = time.perf_counter()
        model, record = train_magnifier(cfg, Path(tmp) / "weights", Path(tmp) / "cache", device=device,
                                        progress=progress, retrain=True)
        result["seconds"] = round(time.perf_counter() - t0, 1)
        result["training_seconds"] = record["seconds"]
        magnifiers = {"remade": as_magnifier(model)}
        if shipped is not None:
            magnifiers["shipped"] = as_magnifier(load_magnifier(shipped)[0])
            # the weights' own digest (the checkpoint's bytes also hold the training time)
            result["same_weights_as_shipped"] = magnifiers["remade"].key() == magnifiers["shipped"].key()
        if check:
            table = compare_magnifiers(magnifiers, check, seed=1)
            result["check"] = json.loads(table.to_json(orient="records"))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result
