"""The run helper every notebook calls, one call per standard step, so that a notebook
reads as its paper's narrative plus the calls specific to its method::

    run = notebook.start("atm_gcn", globals())   # parameters, smoke mode, output folder, device
    table = run.load()                           # the clip table: summary, classes, dropped rows
    ds = run.show(ClipDataset(table.clips, "sequence", **run.frames_args(T=frames)))
    main = run.main(ds, models.Spec("atm_gcn", num_classes=table.num_classes, ...))
    run.against_baseline(main, "ATM-GCN")
    ablation_table = run.ablations({name: (ds, spec.variant(...))}, "ATM-GCN ablations")
    run.reported(main)
    run.finish(main, ablation_table)

:func:`start` reads the notebook's parameters by the names its ``parameters`` cell
declares (papermill's own reading of the cell; no list to keep), with the values the
kernel holds after papermill injected its own. Each step returns what the notebook may
show or reuse. Run keys are derived from the dataset and the model spec
(:func:`mer.train.engine.run_key`); the training settings come from the parameters named
like :class:`~mer.train.engine.TrainConfig` fields (:meth:`Run.config`).

**Smoke mode** (``smoke: true``, ``mer study --smoke``) runs a notebook with the same params
file and the same architecture, with only the compute shrunk, so a researcher can check a
whole setup on their copy of a dataset in minutes before spending a GPU-day on it:
every clip is still loaded, aligned and preprocessed as in the real run, every figure is
drawn and every table filled, but each model trains :data:`SMOKE` ``epochs`` (1), the
ablations use two folds, the magnifier trains a few steps on a few pairs, pre-training
runs one epoch, images and frame counts are cut to the smallest the architecture
accepts (:data:`SMOKE_SIZES`; the reference networks' flow at 64 px, their largest fixed
side), and TDSGCN's Table VI runs two of its architectures (the first single and the first
dual SGCN), each pre-trained and trained per branch. Smoke results go to ``outputs/smoke/<dataset>/<method>/``
and are labelled smoke in ``metrics.json`` and in the report; their numbers mean nothing.
"""
from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pandas as pd

from mer import data, paths
from mer.preprocess import Augment, prepare
from mer.report import plots, reported, results
from mer.train import engine, parallel, splits

# Compute settings every notebook that has them takes in smoke mode.
SMOKE = {"epochs": 1, "pretrain_epochs": 1, "reference_epochs": 1, "network_epochs": 1, "probe_epochs": 1,
         "ablation_folds": 2, "magnifier_steps": 2,
         "magnifier_pairs": 8, "magnifier_face_pairs": 4, "check_pairs": 4, "face_check_pairs": 2, "latency_repeats": 1,
         "latency_onnx": False}
# Input sizes in smoke mode: image side 32 px (every architecture of the study accepts it:
# checked by tests/test_smoke.py) and the fewest frames a sequence model takes with the
# apex among them. TDSGCN's graph side is part of its architecture (the coarsening
# levels): it stays, and the flow is computed at that side.
SMOKE_SIZES = {"input_size": 32, "frames": 3, "rcn_side": 32}
SMOKE_PATCH_MIN = 8  # px: GAM-MER's region patches scale with the image, down to this
BASELINE = "baseline (ResNet-18, apex - onset)"
EXAMPLE_SIDE = 160  # px of the example clips' figure


def smoke_params(params: dict) -> dict:
    """``params`` with the compute shrunk for a smoke run (see the module docstring);
    ``smoke`` set True. Settings a notebook does not have are not added."""
    out = dict(params)
    out.update({name: value for name, value in {**SMOKE, **SMOKE_SIZES}.items() if name in out})
    if "patch" in params and "input_size" in params:  # region patches keep their share of the face
        out["patch"] = max(SMOKE_PATCH_MIN, round(params["patch"] * out["input_size"] / params["input_size"]))
    if "flow_size" in params and "side" in params:
        out["flow_size"] = params["side"]
    elif "flow_size" in params:  # the reference networks: the flow at their largest fixed side (SSSNet's 64 px)
        out["flow_size"] = min(int(params["flow_size"]), 64)
    if len(params.get("architectures") or []) > 2:  # TDSGCN's Table VI: one single and one dual SGCN run the rows
        single = [a for a in params["architectures"] if " and " not in str(a)][:1]
        dual = [a for a in params["architectures"] if " and " in str(a)][:1]
        out["architectures"] = single + dual or list(params["architectures"][:2])
    if len(params.get("seeds") or []) > 1:  # one training seed: the spread over seeds is a real run's question
        out["seeds"] = list(params["seeds"][:1])
    if "weights_dir" in params and params["weights_dir"] is None:  # smoke weights never sit beside real ones
        out["weights_dir"] = str(paths.smoke_dir() / "weights")
    out["smoke"] = True
    return out


def label(dataset: str, smoke: bool = False) -> str:
    """What every number of a run is, after its dataset name: synthetic, smoke, or nothing."""
    marks = (["synthetic"] if dataset == "synth" else []) + (["smoke run: compute shrunk"] if smoke else [])
    return f" ({', '.join(marks)})" if marks else ""


def output_dir(dataset: str, method: str, output_dir: str | os.PathLike | None = None,
               smoke: bool = False) -> Path:
    """``outputs/<dataset>/<method>/``, ``outputs/smoke/<dataset>/<method>/`` for a smoke
    run, or an explicit ``output_dir``."""
    return paths.run_dir(dataset, method, output_dir or (paths.smoke_dir() / dataset / method if smoke else None))


def chosen(names, known, what: str = "ablation") -> list:
    """``names`` checked against ``known`` (a dict or list): an unknown one is an error that
    lists what is known."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {what}(s) {unknown}; known: {list(known)}")
    return list(names)


def folds_label(folds) -> str:
    if str(folds) == "loso":
        return "LOSO"
    if str(folds).startswith("holdout"):
        size = str(folds).partition(":")[2]
        size = size.partition(":")[0]
        return f"one held-out test set ({'about ' + size + ' clips' if size else 'about a fifth of the clips'}, whole subjects)"
    return f"grouped {folds}-fold"


def augment_of(params: dict) -> Augment:
    """The training augmentation from the ``aug_*`` parameters (Augment's defaults for the
    ones a notebook does not have)."""
    fields = {f.name for f in dataclasses.fields(Augment)}
    return Augment(**{k[4:]: v for k, v in params.items() if k.startswith("aug_") and k[4:] in fields})


def train_config(params: dict, **changes) -> engine.TrainConfig:
    """Training settings: every parameter named like a TrainConfig field, then ``changes``
    (settings the paper fixes, such as its loss)."""
    cfg = {}
    for f in dataclasses.fields(engine.TrainConfig):
        if f.name in params:
            value = params[f.name]
            cfg[f.name] = tuple(value) if isinstance(f.default, tuple) else value
    return engine.TrainConfig(**{**cfg, **changes})


def start(method: str, namespace: dict) -> "Run":
    """The run of ``method``'s notebook: its parameters (every name the notebook's
    ``parameters`` cell declares, read from ``namespace``, the notebook's ``globals()``; a name
    papermill injected that the cell does not declare, or a value of the wrong kind, is an
    error: :mod:`mer.parameters`),
    shrunk for a smoke run (and written back into ``namespace`` so the notebook's cells see
    the values they run with), the output folder and the device."""
    from mer import parameters
    from mer.study import method_notebook, notebook_defaults
    defaults = notebook_defaults(method_notebook(method))
    names = sorted(defaults)
    missing = [n for n in names if n not in namespace]
    if missing:
        raise NameError(f"{method}: run the parameters cell first ({missing} are not defined)")
    # what papermill injected (-p, -f, a params file through mer study): a name the notebook does
    # not declare would otherwise be ignored with a warning, and the run would use the default
    parameters.check_names(parameters.injected_names(namespace.get("In") or []), names,
                           f"{method}: the parameters given to this notebook")
    params = {n: namespace[n] for n in names}
    parameters.check_values(params, defaults, f"{method}: the parameters given to this notebook")
    if params.get("smoke"):
        params = smoke_params(params)
        namespace.update(params)
    return Run(method, params)


class Run:
    """One notebook run (see the module docstring). Attributes: ``method``, ``params``,
    ``out`` (the output folder), ``device``, ``label`` (synthetic / smoke marks for every
    number shown), ``table`` (after :meth:`load`)."""

    def __init__(self, method: str, params: dict):
        self.method, self.params, self.t_start = method, params, time.perf_counter()
        p = params
        self.dataset, self.smoke, self.seed = p["dataset"], bool(p.get("smoke")), p.get("seed", 0)
        self.out = paths.ensure_writable(output_dir(self.dataset, method, p.get("output_dir"), self.smoke))
        self.device = str(engine.resolve_device(p.get("device", "auto")))
        self.parallel = parallel.resolve(p.get("workers"), p.get("dask_scheduler"), p.get("device", "auto"))
        self.label = label(self.dataset, self.smoke)
        self.table = None
        self._folds: dict = {}
        self.seed_runs: dict = {}  # training seed -> the main run with it (:meth:`main`)
        plots.STAMP_DEVICE = self.device  # every figure names the machine it was computed on
        print(f"output: {self.out}\ndevice: {self.device}; {self.parallel.describe()}")

    # ------------------------------------------------------------------ data
    def load(self):
        """The dataset's clip table (``data.load`` with the notebook's dataset, data_root,
        protocol, annotation); shows its summary, the clips per class and the dropped rows."""
        from IPython.display import Markdown, display
        p = self.params
        self.table = data.load(p["dataset"], p.get("data_root"), protocol=p.get("protocol"),
                               annotation=p.get("annotation"), on_bad_frame=p.get("on_bad_frame", "drop"))
        print(self.table.summary())
        display(self.table.class_counts().to_frame("clips"))
        display(self.table.dropped if len(self.table.dropped) else Markdown("*No annotation rows dropped.*"))
        return self.table

    def augment(self) -> Augment:
        """The training augmentation from the ``aug_*`` parameters (:func:`augment_of`)."""
        return augment_of(self.params)

    def frames_args(self, **extra) -> dict:
        """The preprocessing arguments every clip dataset takes from the parameters: size
        (``input_size``), alignment, worker processes and cache folder, plus ``extra``."""
        p = self.params
        workers = p.get("workers")
        workers = parallel.available_cores() if workers in (None, "auto") else int(workers)
        args = {"align": p.get("align", True), "workers": workers, "cache_dir": p.get("cache_dir")}
        if "input_size" in p:
            args["size"] = p["input_size"]
        return {**args, **extra}

    def show(self, ds, examples: bool = True):
        """Shows a dataset's face alignment per clip, its cache use and input shape, and (with
        ``examples``) the example clips figure; returns ``ds``."""
        from IPython.display import display
        display(prepare.alignment_summary(ds.clips))
        stats, shape = getattr(ds, "stats", None), getattr(ds, "sample_shape", None)
        if stats is not None:
            print(f"cache: {stats.hits} entries read, {stats.misses} computed"
                  + (f"; input per clip {shape}" if shape is not None else ""))
        if examples:
            align = self.params.get("align", True)
            self.figure(plots.examples(ds.clips, self.table.classes,
                                       lambda row, n: prepare.read_aligned(row, n, EXAMPLE_SIDE, align), n=5,
                                       seed=self.seed), "examples")
        return ds

    # ------------------------------------------------------------------ training
    def config(self, **changes) -> engine.TrainConfig:
        """Training settings from the parameters, then ``changes`` (:func:`train_config`)."""
        return train_config(self.params, **changes)

    def folds(self, which=None) -> list:
        """The folds of the ``folds`` parameter (LOSO or grouped k-fold), or of ``which``
        (``ablation_folds``), over the loaded clips."""
        which = self.params.get("folds", "loso") if which is None else which
        if str(which) not in self._folds:
            self._folds[str(which)] = splits.make_folds(self.table.clips, which, self.seed)
        return self._folds[str(which)]

    def cv(self, ds, model, name: str, cfg: engine.TrainConfig | None = None, desc: str = "folds",
           save_first: bool = False):
        """Cross-validates ``model`` (a :class:`~mer.models.spec.Spec`) on ``ds`` over the main
        folds into ``<out>/<name>``; ``save_first`` keeps the first fold's weights
        (:meth:`fold_model`)."""
        folds = self.folds()
        return engine.run_cv(ds, folds, model, cfg or self.config(), self.out / name, self.table.classes, desc=desc,
                             save_models=[folds[0].name] if save_first else False, parallel=self.parallel)

    def main(self, ds, model, cfg: engine.TrainConfig | None = None, what: str = "", save_first: bool = False,
             curves_title: str | None = None):
        """The main run (:meth:`cv` into ``main/``): prints its headline, draws the training
        curves, the confusion matrix and per-class scores, shows the per-fold (and, for a
        composite, per-source) scores."""
        from IPython.display import display
        cfg = cfg or self.config()
        main = self.cv(ds, model, "main", cfg, save_first=save_first)
        self.seed_runs = {cfg.seed: main}
        m = main.metrics
        print(f"{self.method}{what} on {self.dataset}{self.label}, {self.params.get('folds', 'loso')}: "
              f"acc {m['acc']:.3f}  UF1 {m['uf1']:.3f}  UAR {m['uar']:.3f}   {main.resume_note}")
        self.figure(plots.training_curves(main.curves, *([curves_title] if curves_title else [])), "curves")
        self.figure(plots.confusion_matrix(m["confusion"], self.table.classes), "confusion")
        self.figure(plots.per_class_f1(m), "per_class")
        display(main.per_fold.round(3))
        by_source = results.per_source(main, self.table)
        if by_source is not None:
            display(by_source.round(3))
        self.test_selection(main)
        self.other_seeds(ds, model, cfg)
        return main

    def test_selection(self, result, name: str | None = None) -> dict | None:
        """With the test-epoch diagnostic on (``test_epochs``): the honest UF1 beside what
        picking epochs on the test subjects would have reported, and the pooled test UF1
        after every epoch as a figure (``test_selection.png``, or ``test_selection_<name>``)."""
        sel = result.test_selection()
        if sel is None:
            return None
        print(f"Test-epoch diagnostic (never used to train or select): honest UF1 {sel['honest_uf1']:.3f} after "
              f"{sel['epochs']} epochs; best epoch per test fold {sel['fold_best_uf1']:.3f} "
              f"({sel['inflation_uf1']:+.3f}); best single epoch ({sel['best_epoch']}) {sel['epoch_best_uf1']:.3f}")
        self.figure(plots.test_selection(sel, self.title(f"Test-fold UF1 after each epoch: {name or self.method}")),
                    "test_selection" + (f"_{name}" if name else ""))
        return sel

    def other_seeds(self, ds, model, cfg: engine.TrainConfig) -> pd.DataFrame | None:
        """The main run again with each further training seed of ``seeds`` (same folds, same
        data, only ``TrainConfig.seed`` changed) into ``seed<s>/``; shows the spread of the
        pooled scores and keeps each run for metrics.json. None when ``seeds`` names no other."""
        from IPython.display import display
        others = [int(s) for s in (self.params.get("seeds") or []) if int(s) != cfg.seed]
        if not others:
            return None
        for s in others:
            self.seed_runs[s] = self.cv(ds, model, f"seed{s}", dataclasses.replace(cfg, seed=s),
                                        desc=f"training seed {s}")
        table = pd.DataFrame([{"seed": s, **{k: r.metrics[k] for k in ("acc", "uf1", "uar")}}
                              for s, r in sorted(self.seed_runs.items())])
        display(table.round(3))
        print(f"Over {len(table)} training seeds{self.label}: UF1 mean {table['uf1'].mean():.3f}, range "
              f"{table['uf1'].min():.3f} to {table['uf1'].max():.3f} (the same folds; only the training seed differs)")
        return table

    def fold_model(self, model, name: str = "main"):
        """The first main fold's trained model (kept with ``save_first``), on the CPU in eval
        mode, with that fold."""
        first = self.folds()[0]
        return engine.load_fold_model(self.out / name, first.name, model), first

    def test_clips(self, ds, n: int):
        """The first ``n`` test clips of the first main fold as one batch (the model inputs
        of ``ds``, stacked) and their titles ``subject/clip (class)``, for figures drawn from
        that fold's model."""
        from torch.utils.data import default_collate
        pick = [int(i) for i in self.folds()[0].test_idx[:n]]
        clips = ds.clips.iloc[pick]
        titles = [f"{r.subject}/{r.clip} ({self.table.classes[r.label]})" for r in clips.itertuples()]
        return default_collate([ds.item(i) for i in pick]), titles

    def settings_of(self, method: str) -> tuple[dict, engine.TrainConfig, Augment]:
        """Another method's run settings on this dataset: its notebook's defaults, then its
        params file for this dataset when there is one, shrunk in smoke mode: (params,
        TrainConfig, Augment). The reference notebook's probes train the baseline this way."""
        from mer.study import method_params
        params = method_params(method, self.dataset, required=False)
        if self.smoke:
            params = smoke_params(params)
        return params, train_config(params), augment_of(params)

    # ------------------------------------------------------------------ comparisons
    def against_baseline(self, main, name: str, show: bool = True) -> results.Comparison:
        """This run against the finished baseline run of the same dataset (subject bootstrap
        of the UF1 difference), shown as a table and one sentence; or why not."""
        from IPython.display import display
        cmp = results.compare_runs(main.predictions, self.out.parent / "baseline", self.table.classes, name,
                                   BASELINE, seed=self.seed, protocol=self.table.protocol)
        if show:
            if cmp.skipped:
                print(cmp.skipped)
            else:
                display(cmp.table.round(3))
                print(self.describe(cmp, name, "the baseline"))
        return cmp

    def describe(self, cmp: results.Comparison, name: str, other: str) -> str:
        return results.describe_difference(cmp.boot, name, other, f"{self.dataset}{self.label}")

    def compare(self, a, b, name: str, other: str) -> results.Comparison:
        """Two results of this run on the same clips and folds (subject bootstrap)."""
        return results.compare_predictions(a.predictions, b.predictions, self.table.classes, name, other,
                                           seed=self.seed)

    def ablations(self, variants: dict, title: str, tables: dict | None = None, main_row=None,
                  runs: dict | None = None) -> pd.DataFrame:
        """Runs each variant ``name -> (dataset, model[, TrainConfig])`` on the ablation folds
        (``ablation_folds``) into ``ablations/``, shows their scores and charts them.

        With ``tables`` (``id -> (title, rows)``, a row a variant name or ``(variant,
        shown)``), shows one table per paper table, each row with its UF1 difference to
        ``main_row`` (a variant name, or ``(variant, shown)``) and the subject-bootstrap 95%
        interval. ``runs`` (a dict) receives each variant's result."""
        from IPython.display import Markdown, display
        runs = {} if runs is None else runs
        which = self.params.get("ablation_folds", 2)
        if not variants:
            return engine.run_variants({}, [], self.config(), self.out / "ablations", self.table.classes, "")
        table = engine.run_variants(variants, self.folds(which), self.config(), self.out / "ablations",
                                    self.table.classes, folds_label(which), results=runs, parallel=self.parallel)
        where = f"{self.dataset}{self.label}, {folds_label(which)}"
        if tables:
            by_variant = table.set_index("variant")
            main_row, main_shown = main_row if isinstance(main_row, tuple) else (main_row, main_row)
            for t_title, rows in tables.values():
                display(Markdown(f"**{t_title}** ({where})"))
                display(pd.DataFrame([{"row": shown, **by_variant.loc[v, ["acc", "uf1", "uar"]].round(3).to_dict(),
                                       f"UF1 minus {main_shown} [95% interval]": self._against(runs, v, main_row)}
                                      for v, shown in (r if isinstance(r, tuple) else (r, r) for r in rows)]))
        else:
            display(table.round(3))
        self.figure(plots.ablation_chart(table, f"{title} ({where})"), "ablations")
        return table

    def _against(self, runs: dict, variant: str, main_row: str | None) -> str:
        if main_row is None or variant == main_row or main_row not in runs:
            return ""
        return results.compare_predictions(runs[variant].predictions, runs[main_row].predictions, self.table.classes,
                                           variant, main_row, n_boot=1000, seed=self.seed).interval()

    def side_by_side(self, rows: dict, first: str = "method", extra: dict | None = None) -> pd.DataFrame:
        """Runs on the same clips and folds in one table: ``rows`` maps a name to its
        metrics (acc, UF1, UAR), then the ``extra`` columns (name -> one value per row), the
        folds and the data (and its marks)."""
        from IPython.display import display
        table = pd.DataFrame([{first: name, **{k: m[k] for k in ("acc", "uf1", "uar")}} for name, m in rows.items()])
        table = table.assign(**(extra or {}), folds=str(self.params.get("folds", "loso")),
                             data=f"{self.dataset}{self.label}")
        display(table.round(3))
        return table

    def reported(self, main) -> pd.DataFrame:
        """The papers' reported numbers for this method beside this run's (labelled), each
        with its protocol (classes), split and aggregation."""
        from IPython.display import display
        table = reported.compare(self.method, self.dataset, self.table.protocol, main.metrics,
                                 results.subject_scores(main, self.table.classes),
                                 folds_label(self.params.get("folds", "loso")))
        display(table.round(4))
        return table

    # ------------------------------------------------------------------ output
    def title(self, text: str) -> str:
        """``text (dataset, synthetic/smoke marks)`` for a figure's title."""
        return f"{text} ({self.dataset}{self.label})"

    def figure(self, fig, name: str) -> Path:
        """Saves ``fig`` as ``<out>/figures/<name>.png``."""
        return plots.save(fig, self.out, name)

    def save_predictions(self, result, name: str) -> str:
        """A further result's pooled predictions as ``<out>/<name>/predictions.csv`` (what the
        report reads for a run's extra rows); returns that path relative to ``out``."""
        path = results.write_predictions(self.out / name, result, self.table)
        return path.relative_to(self.out).as_posix()

    def seed_rows(self, runs: dict, name: str = "") -> list[dict]:
        """metrics.json's ``seed_runs``: per training seed its pooled scores and its predictions
        file (written here, under ``seed<s>/``; the main seed's is the run's own)."""
        rows = []
        for s, r in sorted(runs.items()):
            where = f"{name}/seed{s}" if name else f"seed{s}"
            path = "predictions.csv" if r is runs.get(self.seed) and not name else self.save_predictions(r, where)
            rows.append({"seed": int(s), **{k: r.metrics[k] for k in ("acc", "uf1", "uar")}, "predictions": path})
        return rows

    def finish(self, main, ablation_table: pd.DataFrame | None = None, notes=(), extra: dict | None = None) -> dict:
        """Writes metrics.json (with ``extra``'s entries), predictions.csv, the MEGC-style log,
        the per-fold table and curves; returns the metrics."""
        extra = dict(extra or {})
        if len(self.seed_runs) > 1 and "seed_runs" not in extra:
            extra["seed_runs"] = self.seed_rows(self.seed_runs)
        metrics = results.write_run(self.out, method=self.method, table=self.table, result=main, params=self.params,
                                    ablations=ablation_table, runtime_s=time.perf_counter() - self.t_start,
                                    device=self.device, notes=list(notes), extra=extra)
        print(f"wrote {self.out / 'metrics.json'}, predictions.csv, predictions_megc.txt, figures/")
        print(f"UF1 {metrics['uf1']:.3f}{self.label}, runtime {metrics['runtime_s']} s")
        return metrics
