"""``mer bench table5``: inference time per clip of p2's two networks, ST-MEMM (one
onset-apex pair magnified) and GAM-MER (one clip's region patches classified), as in the
paper's Table 5 (PyTorch, ONNX, TensorRT and float16 on an A10):

- ``pytorch``: eager fp32 on the device;
- ``onnx``: the network exported to ONNX at a fixed input size (timm's Swin layers with a
  dynamic height/width do not run in ONNX Runtime) and run by ONNX Runtime on the CPU
  provider (or CUDA's, when the installed onnxruntime has it);
- ``fp16``: eager float16 on CUDA; skipped on a CPU, with the reason;
- TensorRT: not a dependency of this study; reported as not run.

Timings are the median of ``repeats`` runs after ``warmup`` runs, batch 1, with CUDA
synchronised around each run. The weights are freshly initialised: time does not depend on
their values. Results go to a JSON file beside the device's name.
"""
from __future__ import annotations

import json
import platform
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

# p2 Table 5, reported (A10 GPU, ms per clip)
REPORTED_MS = {"ST-MEMM": {"pytorch": 156.4, "onnx": 118.3, "tensorrt": 62.2, "fp16": 43.9},
               "GAM-MER": {"pytorch": 53.7, "onnx": 43.2, "tensorrt": 25.3, "fp16": 18.5}}


class _Magnify(torch.nn.Module):
    """ST-MEMM with a fixed alpha, so the exported graph takes only the two frames."""

    def __init__(self, net, alpha: float):
        super().__init__()
        self.net, self.alpha = net, alpha

    def forward(self, a, b):
        return self.net(a, b, self.alpha)


def _median_ms(fn, warmup: int, repeats: int, cuda: bool) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if cuda:
            torch.cuda.synchronize()
        times.append((time.perf_counter() - t0) * 1000)
    return float(np.median(times))


def _onnx_ms(model: torch.nn.Module, inputs: tuple, warmup: int, repeats: int) -> tuple[float | None, str]:
    try:
        import onnxruntime as ort
    except ImportError as e:
        return None, f"not run: onnxruntime is not installed ({e})"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            with warnings.catch_warnings():  # the trace fixes shapes and alpha: intended (a fixed-size export)
                warnings.simplefilter("ignore", torch.jit.TracerWarning)
                warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter: fine at a fixed size
                torch.onnx.export(model.cpu().eval(), tuple(x.cpu() for x in inputs), str(path),
                                  input_names=[f"x{i}" for i in range(len(inputs))], dynamo=False, opset_version=17)
        except Exception as e:  # an operator ONNX cannot express: say so, do not stop the bench
            return None, f"not run: export failed ({type(e).__name__}: {str(e).splitlines()[0][:200]})"
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in ort.get_available_providers()]
        session = ort.InferenceSession(str(path), providers=providers)
        feed = {f"x{i}": x.cpu().numpy() for i, x in enumerate(inputs)}
        ms = _median_ms(lambda: session.run(None, feed), warmup, repeats, cuda=False)
        return ms, f"ONNX Runtime {ort.__version__}, {session.get_providers()[0]}"


def bench_latency(magnifier_config: str = "paper", size: int = 224, patch: int = 48, regions: str = "micro",
                  device: str = "auto", warmup: int = 3, repeats: int = 10, onnx: bool = True,
                  out: str | Path | None = None) -> dict:
    """Times ST-MEMM (config ``magnifier_config`` on ``size`` px frames) and GAM-MER (the
    ``regions`` set, ``patch`` px patches) per clip in each mode; writes the JSON to ``out``."""
    from mer.magnify.stmemm import STMEMM
    from mer.models.gam_mer import GAMMER, REGION_SETS
    from mer.train.engine import resolve_device
    dev = resolve_device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    nets = {
        "ST-MEMM": (_Magnify(STMEMM(magnifier_config), 5.0).eval(),
                    (torch.rand(1, 3, size, size) * 2 - 1, torch.rand(1, 3, size, size) * 2 - 1)),
        "GAM-MER": (GAMMER(num_classes=3, regions=list(REGION_SETS[regions])).eval(),
                    (torch.rand(1, len(REGION_SETS[regions]), 6, patch, patch) - 0.5,)),
    }
    rows = []
    with torch.inference_mode():
        for name, (model, inputs) in nets.items():
            m, x = model.to(dev), tuple(t.to(dev) for t in inputs)
            rows.append({"network": name, "mode": "pytorch", "ms": _median_ms(lambda: m(*x), warmup, repeats, cuda),
                         "how": f"eager fp32 on {dev.type}", "reported A10 ms": REPORTED_MS[name]["pytorch"]})
            if cuda:
                mh, xh = m.half(), tuple(t.half() for t in x)
                rows.append({"network": name, "mode": "fp16", "ms": _median_ms(lambda: mh(*xh), warmup, repeats, cuda),
                             "how": "eager float16 on cuda", "reported A10 ms": REPORTED_MS[name]["fp16"]})
                m.float()
            else:
                rows.append({"network": name, "mode": "fp16", "ms": None, "how": "not run: float16 needs CUDA",
                             "reported A10 ms": REPORTED_MS[name]["fp16"]})
    for name, (model, inputs) in nets.items():
        ms, how = _onnx_ms(model, inputs, warmup, repeats) if onnx else (None, "not run: onnx=False")
        rows.append({"network": name, "mode": "onnx", "ms": ms, "how": how, "reported A10 ms": REPORTED_MS[name]["onnx"]})
        rows.append({"network": name, "mode": "tensorrt", "ms": None, "how": "not run: TensorRT is not a dependency",
                     "reported A10 ms": REPORTED_MS[name]["tensorrt"]})
    result = {
        "bench": "latency", "what": "ms per clip, batch 1, median of repeats (ST-MEMM: one pair; GAM-MER: one "
                                    "clip's region patches)",
        "device": torch.cuda.get_device_name(dev) if cuda else f"CPU ({platform.processor() or platform.machine()}, "
                                                                 f"{torch.get_num_threads()} threads)",
        "magnifier_config": magnifier_config, "size": size, "patch": patch, "regions": regions,
        "warmup": warmup, "repeats": repeats, "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M"), "rows": rows,
        "reported": "p2 Table 5 (A10 GPU): reported numbers, not ours",
    }
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=1))
    return result
