"""``mer bench preprocess``: frames per second of align+crop and of TV-L1 flow, with a cold
cache and then a warm one, written as JSON (keys ``cold_fps``, ``warm_fps``, ``ratio``, ...)."""
from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

from mer.preprocess.dataset import ClipDataset


def bench_preprocess(root: str | os.PathLike | None = None, dataset: str = "synth", size: int = 112, T: int = 16,
                     workers: int | None = None, out: str | os.PathLike | None = None, progress: bool = False) -> dict:
    """Cold and warm preprocessing of a dataset's clips on ``workers`` processes (None: one per core)."""
    from mer import data
    from mer.preprocess.prepare import available_cores
    workers = workers or available_cores()
    with tempfile.TemporaryDirectory(prefix="mer-bench-") as tmp:
        if root is None:  # a small SynthME set made on the fly (not timed)
            from mer.data.synth import SynthConfig, generate
            root = generate(Path(tmp) / "synth", SynthConfig(subjects=2, clips_per_subject=4, seed=0),
                            progress=progress)
        table = data.load(dataset, root)
        clips = table.clips
        cache = Path(tmp) / "cache"
        n = len(clips)

        def timed(recipe: str) -> float:
            t0 = time.perf_counter()
            ClipDataset(clips, recipe, size=size, T=T, cache_dir=cache, workers=workers, progress=progress)
            return time.perf_counter() - t0

        cold_align, cold_flow = timed("sequence"), timed("flow")
        warm_align, warm_flow = timed("sequence"), timed("flow")
    frames_align, frames_flow = n * T, n * 2
    total = frames_align + frames_flow
    result = {
        "dataset": dataset, "root": str(root), "clips": n, "size": size, "T": T, "workers": workers,
        "frames_align": frames_align, "frames_flow": frames_flow,
        "cold_align_fps": frames_align / cold_align, "warm_align_fps": frames_align / warm_align,
        "cold_flow_fps": frames_flow / cold_flow, "warm_flow_fps": frames_flow / warm_flow,
        "cold_fps": total / (cold_align + cold_flow), "warm_fps": total / (warm_align + warm_flow),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
    }
    result["ratio"] = result["warm_fps"] / result["cold_fps"]
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1))
    return result
