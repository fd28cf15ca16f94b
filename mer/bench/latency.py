"""``mer bench latency``: inference time per clip of every model of the study, each main
model as its notebook builds it at one dataset's paper-profile sizes (``params/<method>/
<dataset>.yaml``, :mod:`mer.bench.models`) plus p2's ST-MEMM magnifier (paper size):

- ``pytorch``: eager fp32 on the device, batch 1;
- ``onnx``: exported at a fixed input size and run by ONNX Runtime (CPU provider, or CUDA's
  when the installed onnxruntime has it); ``onnx_speedup`` is eager / ONNX Runtime;
- ``bf16`` and ``fp16``: eager under autocast on CUDA; not run on a CPU, with the reason.

Timings are medians of ``repeats`` runs after ``warmup`` runs, freshly initialised weights
(time does not depend on their values). p2's own Table 5 comparison (ST-MEMM and GAM-MER
beside the paper's reported A10 numbers) is :mod:`mer.magnify.latency`.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from mer.magnify.latency import _Magnify, _median_ms, _onnx_ms


def _networks(dataset: str, size: int):
    """(name, model, inputs tuple, what one clip's input is) of every model."""
    from mer.bench.models import METHODS, example, method_params
    from mer.magnify.stmemm import STMEMM
    from mer.paths import project_root
    for method in METHODS:
        has = (project_root() / "params" / method / f"{dataset}.yaml").is_file()
        params = method_params(method, dataset if has else "synth")
        ex = example(method, params, batch=1)
        inputs = ex.inputs
        if isinstance(inputs, dict):  # keyword inputs, in the forward's order, as positional ones for the export
            names = list(inputs)
            model = _Keywords(ex.model, names)
            inputs = tuple(inputs[n] for n in names)
        else:
            model = ex.model
        yield f"{method} ({dataset if has else 'synth'} params)", model.eval(), tuple(inputs), ex.item
    torch.manual_seed(0)
    frames = tuple(torch.rand(1, 3, size, size) * 2 - 1 for _ in range(2))
    yield "ST-MEMM (p2 magnifier, paper config)", _Magnify(STMEMM("paper"), 5.0).eval(), frames, \
        f"onset and apex (3, {size}, {size}) each"


class _Keywords(torch.nn.Module):
    """A model that takes keyword inputs, called with them as positional ones (for export)."""

    def __init__(self, net, names):
        super().__init__()
        self.net, self.names = net, list(names)

    def forward(self, *xs):
        return self.net(**dict(zip(self.names, xs)))


def bench_models(dataset: str = "casme2", device: str = "auto", warmup: int = 3, repeats: int = 10,
                 onnx: bool = True, size: int = 224, out: str | Path | None = None, progress: bool = True) -> dict:
    """Every model's ms per clip in each mode (module docstring); JSON written to ``out``."""
    from mer.bench.study import machine
    from mer.train.engine import resolve_device
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    rows = []
    for name, model, inputs, item in _networks(dataset, size):
        row = {"model": name, "item": item,
               "parameters_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2)}
        with torch.inference_mode():
            m, x = model.to(dev), tuple(t.to(dev) for t in inputs)
            row["pytorch_ms"] = round(_median_ms(lambda: m(*x), warmup, repeats, cuda), 2)
            for amp in ("bf16", "fp16"):
                if cuda:
                    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
                    def run():
                        with torch.autocast("cuda", dtype=dtype):
                            m(*x)
                    row[f"{amp}_ms"] = round(_median_ms(run, warmup, repeats, cuda), 2)
                else:
                    row[f"{amp}_ms"], row[f"{amp}_how"] = None, "not run: needs CUDA"
        if onnx:
            ms, how = _onnx_ms(model, inputs, warmup, repeats)
        else:
            ms, how = None, "not run: --no-onnx"
        row["onnx_ms"], row["onnx_how"] = (round(ms, 2) if ms is not None else None), how
        row["onnx_speedup"] = round(row["pytorch_ms"] / ms, 2) if ms else None
        if progress:
            print(f"{name:45s} eager {row['pytorch_ms']:9.2f} ms   ONNX Runtime "
                  f"{(str(row['onnx_ms']) + ' ms') if ms else how}   x{row['onnx_speedup']}", flush=True)
        rows.append(row)
        model.cpu()
    result = {"bench": "latency", "what": "ms per clip, batch 1, median of repeats; each method's main model at "
                                         f"params/<method>/{dataset}.yaml's sizes",
              "device": torch.cuda.get_device_name(dev) if cuda else f"CPU, {torch.get_num_threads()} torch threads",
              "machine": machine(), "warmup": warmup, "repeats": repeats, "date": time.strftime("%Y-%m-%d %H:%M"),
              "rows": rows}
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result
