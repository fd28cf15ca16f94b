"""The amplitude sweep: where each method breaks as micro-expressions get smaller.

SynthME knows each clip's motion amplitude. The sweep generates one SynthME set per amplitude
(every clip's apex displacement exactly that many px at 224 px; the same seed, so the same
subjects, identities, expressions and clips, only the amplitude differs), runs every method's
own notebook on each set with one shared, cheap protocol (grouped k-fold by subject, one
training seed, each notebook's quick settings, its ablations and side studies switched off by
the sweep notebook's ``method_params``), and collects pooled UF1 with its
subject-bootstrap 95% interval per method and amplitude: one chart, one table.

The numbers are synthetic, and few clips per set make the intervals wide: the sweep shows
the shape of each method's curve (the amplitude where it leaves chance), not a ranking.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd

from mer import machine, paths
from mer.train.metrics import bootstrap_scores


def amplitude_label(amplitude: float) -> str:
    """``0.5`` -> ``"0.5"``, ``2.0`` -> ``"2"``: the amplitude as a folder name."""
    return f"{float(amplitude):g}"


def sweep_set(amplitude: float, subjects: int, clips_per_subject: int, seed: int = 0,
              root: Path | None = None, progress: bool = True) -> Path:
    """The SynthME set of one amplitude (generated once, then reused): every clip's apex
    displacement exactly ``amplitude`` px at 224 px."""
    from mer.data import synth
    root = root or paths.outputs_dir() / "data" / "sweep"
    out = root / f"amp_{amplitude_label(amplitude)}_{subjects}x{clips_per_subject}_seed{seed}"
    cfg = synth.SynthConfig(subjects=subjects, clips_per_subject=clips_per_subject, seed=seed,
                            amplitude=(float(amplitude), float(amplitude)))
    return synth._generated_at(out, cfg, progress)


def run_method(method: str, data_root: Path, out: Path, params: dict, progress: bool = False) -> dict:
    """``method``'s notebook on one sweep set with ``params`` (its synth params updated by the
    sweep's), into ``out``; returns its metrics.json. A finished run with the same
    parameters is read back instead of run again."""
    from mer.study import ensure_generated, execute, method_notebook, method_params
    full = {**method_params(method, "synth", required=False), **params, "data_root": str(data_root),
            "output_dir": str(out)}
    wanted = json.dumps(full, default=str, sort_keys=True)  # what the finished run's stamp must hold
    stamp = out / "sweep_params.json"
    metrics = out / "metrics.json"
    if metrics.is_file() and stamp.is_file() and json.loads(stamp.read_text()) == json.loads(wanted):
        return json.loads(metrics.read_text())
    out.mkdir(parents=True, exist_ok=True)
    ensure_generated(full, progress)
    nb = method_notebook(method)
    execute(nb, out / nb.name, full, progress=progress)
    paths.replace_atomic(stamp, lambda tmp: tmp.write_text(wanted))
    return json.loads(metrics.read_text())


def rows_of(method: str, metrics: dict, out: Path, amplitude: float, n_boot: int = 1000, seed: int = 0) -> list[dict]:
    """One row per result of a method's run on one set: the run's headline, or for the
    reference notebook each network; pooled UF1 and UAR with subject-bootstrap intervals."""
    items = [(n["name"], out / n["predictions"]) for n in metrics.get("networks") or []] \
        or [(method, out / "predictions.csv")]
    rows = []
    for name, path in items:
        p = pd.read_csv(path, dtype={"subject": str, "clip": str})
        b = bootstrap_scores(p["y_true"], p["y_pred"], p["subject"], metrics["labels"], n=n_boot, seed=seed)
        rows.append({"amplitude_px": float(amplitude), "method": name, "uf1": b["uf1"], "uf1_low": b["uf1_low"],
                     "uf1_high": b["uf1_high"], "uar": b["uar"], "clips": len(p), "subjects": b["n_subjects"]})
    return rows


def run_sweep(amplitudes, methods, out: Path, subjects: int = 8, clips_per_subject: int = 10, folds: int = 4,
              seed: int = 0, method_params: dict | None = None, common: dict | None = None,
              progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Every method on every amplitude's set (module docstring); returns the rows and the
    sweep's summary (what ``sweep.json`` holds), and writes both under ``out``."""
    from mer.progress import tqdm
    t0 = time.perf_counter()
    rows, seconds = [], {}
    jobs = [(a, m) for a in amplitudes for m in methods]
    bar = tqdm(jobs, desc="amplitude sweep", disable=not progress)
    for amplitude, method in bar:
        bar.set_postfix(amplitude=amplitude, method=method)
        root = sweep_set(amplitude, subjects, clips_per_subject, seed, progress=False)
        params = {"folds": folds, "seed": seed, "seeds": [seed], "test_epochs": False, **(common or {}),
                  **((method_params or {}).get(method) or {})}
        run_out = out / "runs" / f"amp_{amplitude_label(amplitude)}" / method
        t1 = time.perf_counter()
        metrics = run_method(method, root, run_out, params)
        # the notebook's own runtime (also right when a finished run was read back)
        seconds[method] = seconds.get(method, 0.0) + float(metrics.get("runtime_s") or time.perf_counter() - t1)
        rows += rows_of(method, metrics, run_out, amplitude, seed=seed)
    table = pd.DataFrame(rows)
    summary = {"description": (f"Every method's own notebook on SynthME sets of {subjects} subjects x "
                               f"{clips_per_subject} clips, one per motion amplitude (px at 224 px: "
                               f"{', '.join(amplitude_label(a) for a in amplitudes)}; the same subjects and clips, "
                               f"only the amplitude differs), grouped {folds}-fold by subject, training seed {seed}, "
                               "each notebook's quick settings without its ablations. Pooled UF1 with the 95% "
                               "subject-bootstrap interval."),
               "date": machine.today(), "machine": machine.describe(str(_device())),
               "runtime_s": round(sum(seconds.values()), 1), "wall_s": round(time.perf_counter() - t0, 1),
               "seconds_per_method": {m: round(s, 1) for m, s in seconds.items()},
               "figure": "figures/amplitude.png",
               "rows": [{"amplitude (px)": r["amplitude_px"], "method": r["method"],
                         "UF1": round(r["uf1"], 3), "UF1 95%": f"[{r['uf1_low']:.3f}, {r['uf1_high']:.3f}]",
                         "UAR": round(r["uar"], 3)} for r in rows]}
    out.mkdir(parents=True, exist_ok=True)
    paths.replace_atomic(out / "sweep.csv", lambda tmp: table.to_csv(tmp, index=False))
    paths.replace_atomic(out / "sweep.json", lambda tmp: tmp.write_text(json.dumps(summary, indent=1)))
    return table, summary


def _device():
    from mer.train.engine import resolve_device
    return resolve_device("auto")
