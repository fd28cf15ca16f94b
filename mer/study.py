"""Run the study: every notebook that has a params file for a dataset, via papermill,
rendered to HTML, then the combined report.

Notebook <-> method: ``notebooks/NN_<method>.ipynb`` runs with ``params/<method>/<dataset>.yaml``
and writes to ``outputs/<dataset>/<method>/``. A variant of a dataset's run (another protocol,
e.g. CAS(ME)^3's 4 classes) is ``params/<method>/<dataset>.<variant>.yaml``, run with
``variant`` and written to ``outputs/<dataset>.<variant>/<method>/``.
"""
from __future__ import annotations

import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from mer.paths import method_notebooks, project_root, replace_atomic

KERNEL = "mer"
# notebooks a study runs only when asked (``mer study --sweep`` or ``--only``): the amplitude sweep
# reruns every method at five motion amplitudes, more than the default study's time budget allows
ON_REQUEST = ("sweep",)


@dataclass
class Job:
    method: str
    notebook: Path
    params_file: Path


def method_notebook(method: str, pfile: Path | None = None) -> Path:
    """A method's notebook: notebooks/NN_<method>.ipynb, or with a descriptive suffix,
    NN_<method>_<words>.ipynb (the longest method id wins, see ``mer.paths.method_notebooks``);
    exactly one must exist."""
    nbs = method_notebooks(project_root()).get(method, [])
    if len(nbs) != 1:
        raise FileNotFoundError(f"{pfile or method}: expected one notebook notebooks/NN_{method}[_words].ipynb, "
                                f"found {[n.name for n in nbs]}")
    return nbs[0]


def find_jobs(dataset: str = "synth", methods: list[str] | None = None, variant: str | None = None) -> list[Job]:
    root = project_root()
    jobs = []
    name = f"{dataset}.{variant}" if variant else dataset
    for pfile in sorted((root / "params").glob(f"*/{name}.yaml")):
        method = pfile.parent.name
        if methods and method not in methods or not methods and method in ON_REQUEST:
            continue
        jobs.append(Job(method, method_notebook(method, pfile), pfile))
    jobs.sort(key=lambda j: j.notebook.name)  # notebook order: 00_baseline first, later notebooks compare with it
    if methods:
        unknown = set(methods) - {j.method for j in jobs}
        if unknown:
            raise FileNotFoundError(f"no params/<method>/{name}.yaml for {sorted(unknown)}")
    if variant and not jobs:
        raise FileNotFoundError(f"no params/<method>/{name}.yaml: no method has the variant {variant!r} of {dataset}")
    return jobs


def load_params(path: Path) -> dict:
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a params file must be a mapping of parameter names to values")
    return data


def declared_parameters(notebook: Path) -> set[str]:
    """The names a notebook's ``parameters`` cell declares."""
    import papermill as pm
    return set(pm.inspect_notebook(str(notebook)))


def notebook_defaults(notebook: Path) -> dict:
    """The values a notebook's ``parameters`` cell assigns (its defaults: the quick profile)."""
    import ast
    import papermill as pm
    return {name: ast.literal_eval(p["default"]) for name, p in pm.inspect_notebook(str(notebook)).items()}


def method_params(method: str, dataset: str, variant: str | None = None, required: bool = True) -> dict:
    """What ``method``'s notebook runs with on ``dataset``: its parameter defaults
    (:func:`notebook_defaults`) updated by ``params/<method>/<dataset>[.<variant>].yaml``. A
    missing params file is an error naming it, or with ``required=False`` the defaults alone."""
    name = f"{dataset}.{variant}" if variant else dataset
    path = project_root() / "params" / method / f"{name}.yaml"
    if not path.is_file() and required:
        raise FileNotFoundError(f"no params file {path.relative_to(project_root())}")
    return {**notebook_defaults(method_notebook(method)), **(load_params(path) if path.is_file() else {})}


def ensure_kernel() -> str:
    """Register this environment's Python as the Jupyter kernel ``mer`` if it is not yet."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try:
        KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        from ipykernel.kernelspec import install
        install(kernel_name=KERNEL, display_name="Python (mer)", prefix=sys.prefix)
    return KERNEL


def execute(notebook: Path, out_ipynb: Path, parameters: dict, progress: bool = True) -> None:
    """Execute ``notebook`` with ``parameters`` into ``out_ipynb`` (cwd = project root)."""
    import papermill as pm
    out_ipynb.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MER_PROGRESS", "text")  # the kernel inherits it: text bars, no widgets (mer.progress)
    pm.execute_notebook(str(notebook), str(out_ipynb), parameters=parameters, kernel_name=ensure_kernel(),
                        cwd=str(project_root()), progress_bar=progress)


TEMPLATES = Path(__file__).parent / "report" / "templates"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def to_html(ipynb: Path) -> Path:
    """Render an executed notebook to a standalone HTML file beside it: images embedded and
    nothing loaded from the network (the ``offline`` template: JupyterLab's page without its
    CDN scripts). A widget output (a progress bar run in JupyterLab) shows its text form."""
    import nbformat
    from nbconvert import HTMLExporter
    nb = nbformat.read(str(ipynb), as_version=4)
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if WIDGET_VIEW in data and "text/plain" in data:
                del data[WIDGET_VIEW]
    exporter = HTMLExporter(template_name="offline", extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(nb)
    path = ipynb.with_suffix(".html")
    replace_atomic(path, lambda tmp: tmp.write_text(body, encoding="utf-8"))
    return path


def job_params(job: Job, data_root: str | os.PathLike | None = None, smoke: bool = False,
               overrides: dict | None = None) -> dict:
    """The parameters a job runs with: its params file, then ``data_root``, the
    ``overrides`` its notebook declares, and ``smoke``."""
    from mer import parameters
    params = load_params(job.params_file)
    defaults = notebook_defaults(job.notebook)
    where = str(job.params_file.relative_to(project_root()) if job.params_file.is_relative_to(project_root())
                else job.params_file)
    parameters.check_names(params, defaults, where)
    if data_root is not None:
        params["data_root"] = str(data_root)
    declared = set(defaults)
    given = {k: v for k, v in (overrides or {}).items() if k in declared}
    params.update(given)
    if smoke:
        params["smoke"] = True
    parameters.check_values(params, defaults, where + (" with mer study -p " + ", ".join(given) if given else ""))
    return params


def ensure_generated(params: dict, progress: bool = True) -> None:
    """Generate the SynthME data a run's parameters read and that is not there yet: the macro
    set of p3's pre-training (``macro_dataset: synth_macro`` without ``macro_root``)."""
    if params.get("macro_dataset") == "synth_macro" and params.get("macro_root") is None:
        from mer.data import synth
        synth.ensure_macro(None, progress=progress)  # generated data, like the quick set


def run_job(job: Job, dataset: str, params: dict, out: Path, progress: bool = True) -> Path:
    """Execute one job's notebook with ``params`` into ``out`` and render it to HTML
    (rendered also when it fails, which is re-raised); returns the executed notebook."""
    ensure_generated(params, progress)
    out_nb = out / job.notebook.name
    print(f"[study] {job.method} on {dataset}{' (smoke)' if params.get('smoke') else ''}: {job.notebook.name} "
          f"with {job.params_file.relative_to(project_root())}", flush=True)
    t0 = time.perf_counter()
    try:
        execute(job.notebook, out_nb, params, progress)
    finally:
        if out_nb.exists():
            to_html(out_nb)
        print(f"[study] {job.method} done in {time.perf_counter() - t0:.0f} s", flush=True)
    return out_nb


def study_overrides(seeds: int | None = None, test_epochs: bool = True) -> dict:
    """What a study adds to every notebook that declares it: ``seeds`` training seeds (0..N-1)
    for the seed spread, and the test-epoch diagnostic (``test_epochs``, on in a study)."""
    out = {"test_epochs": bool(test_epochs)}
    if seeds is not None:
        if int(seeds) < 1:
            raise ValueError(f"--seeds must be at least 1, got {seeds}")
        out["seeds"] = list(range(int(seeds)))
    return out


def run_study(dataset: str = "synth", methods: list[str] | None = None, fresh: bool = False,
              data_root: str | None = None, progress: bool = True, smoke: bool = False,
              overrides: dict | None = None, variant: str | None = None, seeds: int | None = None,
              test_epochs: bool = True, sweep: bool = False) -> Path:
    """Every notebook with a params file for ``dataset`` (or ``methods``), then the report.
    ``data_root`` and ``overrides`` (parameter name -> value; each goes to the notebooks that
    declare it) replace the params files' values; ``smoke`` runs each notebook in smoke mode
    into ``outputs/smoke/`` and builds that folder's own report (:mod:`mer.notebook`);
    ``variant`` runs the ``<dataset>.<variant>.yaml`` params files instead. ``seeds`` (N)
    reruns every main run with training seeds 0..N-1 (:func:`study_overrides`);
    ``test_epochs`` keeps the test-epoch diagnostic on (the report's "test-fold selection");
    ``sweep`` also runs the notebooks in :data:`ON_REQUEST` (the amplitude sweep)."""
    from mer.notebook import output_dir
    from mer.report.html import build_report
    if sweep and dataset == "synth" and not methods:
        methods = [p.parent.name for p in sorted((project_root() / "params").glob("*/synth.yaml"))]
    failures, jobs = [], find_jobs(dataset, methods, variant)
    declared_anywhere = {p for job in jobs for p in declared_parameters(job.notebook)}
    overrides = {**{k: v for k, v in study_overrides(seeds, test_epochs).items() if k in declared_anywhere},
                 **(overrides or {})}
    from mer import parameters
    parameters.check_names(overrides, declared_anywhere, "mer study -p")
    # every job's parameters, each checked, before the first notebook runs
    job_list = [(job, job_params(job, data_root, smoke, overrides)) for job in jobs]
    if dataset == "synth" and data_root is None:  # the generated quick set, unless another copy is named
        from mer.data import synth
        synth.ensure(None, progress=progress)
    for job, params in job_list:
        out = output_dir(f"{dataset}.{variant}" if variant else dataset, job.method, None, smoke)
        if fresh and out.exists():
            shutil.rmtree(out)
        if variant:  # beside the dataset's main run, not over it
            params["output_dir"] = str(out)
        try:
            run_job(job, dataset, params, out, progress)
        except Exception as exc:  # keep going; the failed notebook is still rendered and reported
            failures.append((job.method, exc))
            print(f"[study] {job.method} FAILED: {exc}", file=sys.stderr, flush=True)
    report = build_report(smoke=smoke)
    print(f"[study] report: {report}")
    if failures:
        raise RuntimeError("notebooks failed: " + ", ".join(m for m, _ in failures))
    return report
