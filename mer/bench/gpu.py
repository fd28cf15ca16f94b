"""``mer bench gpu``: the paper profiles on a CUDA GPU. For every params file of a real
dataset, the method's main model at the paper's size (:mod:`mer.bench.models`) trains a few
steps with the run's mixed precision and optimizer on a batch of the run's size, and the
benchmark reports seconds per step, peak GPU memory, the data pipeline's share of a step,
and the projected hours of the full LOSO run.

What a step's data costs is measured as the training loop pays it: each clip's input drawn
through the train-time augmentation on the CPU (the study's datasets hold their arrays in
memory after preprocessing, so drawing an item is the augmentation), the batch collated,
pinned and copied to the GPU. Random inputs of the items' exact shapes stand in for the
data: time does not depend on the values.

The projection is folds x epochs x steps per epoch x (step + data), with the folds and
clips of each dataset's release (:data:`RELEASES`, from DATASETS.md). Adding the two is an
upper bound: the loop copies batches asynchronously, so part of the data's time overlaps
the GPU's. It leaves out preprocessing (cached once per dataset), pre-training, ablations,
the test passes and GAM-MM-MER's class-balanced copies of the training clips. The data
share counts the generic augmentation of each input tensor; recipe-specific work done per
item (TDSGCN's interpolation, GAM-MM-MER's colour step) is not in it. Peak memory is
given as allocated by tensors and as reserved by PyTorch's allocator (what must fit,
besides the CUDA context). Without CUDA the benchmark says so and returns (exit 0).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import numpy as np

# (LOSO folds = subjects with clips, clips) of each real dataset's main protocol, from
# DATASETS.md; SAMM's and MMEW's subject counts are the papers' (an upper bound on folds).
RELEASES = {"casme2": (26, 247), "samm": (28, 136), "smic": (16, 164), "casme_sq": (22, 57), "casme3": (94, 860),
            "mmew": (36, 226), "composite": (68, 442)}


def params_files(root: Path | None = None) -> list[tuple[str, str, str | None]]:
    """(method, dataset, variant) of every params file of a real dataset."""
    from mer.paths import project_root
    from mer.bench.models import METHODS
    out = []
    for path in sorted(((root or project_root()) / "params").glob("*/*.yaml")):
        method = path.parent.name
        dataset, _, variant = path.stem.partition(".")
        if method in METHODS and dataset in RELEASES:
            out.append((method, dataset, variant or None))
    return out


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _draw_batch(example, batch: int, device):
    """One training batch as the loop builds it: every clip's input augmented on the CPU,
    collated, pinned (on CUDA) and copied to ``device``; returns the seconds it took."""
    import torch
    from mer.preprocess import Augment
    aug = Augment()
    inputs = example.inputs
    tensors = list(inputs.values()) if isinstance(inputs, dict) else list(inputs)
    cpu = [t.detach().cpu() for t in tensors]
    _sync(device)
    t0 = time.perf_counter()
    items = []
    for i in range(batch):
        row = []
        for t in cpu:
            x = t[i % len(t)]
            if x.dim() >= 3 and x.shape[-1] == x.shape[-2] and x.shape[-1] >= 16:  # frames, a diff, flow
                x = aug(x.reshape(-1, *x.shape[-3:]), "image").reshape(x.shape)
            row.append(x)
        items.append(row)
    stacked = [torch.stack([it[j] for it in items]) for j in range(len(cpu))]
    if device.type == "cuda":
        stacked = [x.pin_memory() for x in stacked]
    [x.to(device, non_blocking=True) for x in stacked]
    _sync(device)
    return time.perf_counter() - t0


def bench_one(method: str, dataset: str, variant: str | None, steps: int = 5, warmup: int = 2,
              device: str = "cuda", smoke: bool = False) -> dict:
    """Seconds per training step, peak memory and the projected LOSO hours of one params
    file on ``device`` (``smoke``: at smoke sizes, to check this code on a CPU)."""
    import torch
    import dataclasses
    from mer.bench.models import example, method_params, train_settings
    from mer.notebook import smoke_params, train_config
    from mer.train import engine
    from mer.train.losses import make_loss
    params = method_params(method, dataset, variant)
    if smoke:
        params = smoke_params(params)
    cfg = dataclasses.replace(train_config(params), **train_settings(method, params))
    batch = int(cfg.batch_size)
    device = torch.device(device)
    cuda = device.type == "cuda"
    ex = example(method, params, batch=batch)
    model = ex.model.to(device).train()
    inputs = ({k: v.to(device) for k, v in ex.inputs.items()} if isinstance(ex.inputs, dict)
              else tuple(v.to(device) for v in ex.inputs))
    labels = ex.labels.to(device)
    opt = engine._make_optimizer(model, cfg)
    scaler = torch.amp.GradScaler(device.type, enabled=engine.amp_dtype(cfg.amp, device) == torch.float16)
    loss_fn = make_loss(cfg.loss, gamma=cfg.focal_gamma, alpha=cfg.focal_alpha).to(device)

    def step():
        with engine.autocast(cfg.amp, device):
            out = model(**inputs) if isinstance(inputs, dict) else model(*inputs)
        loss = loss_fn(out.float(), labels)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    for _ in range(warmup):
        step()
    _sync(device)
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    data = float(np.median([_draw_batch(ex, batch, device) for _ in range(3)]))
    step_s = float(np.median(times))
    folds, clips = RELEASES[dataset]
    per_epoch = math.ceil(clips * (1 - 1 / folds) / batch)
    hours = folds * int(cfg.epochs) * per_epoch * (step_s + data) / 3600
    row = {"params": f"params/{method}/{dataset}{'.' + variant if variant else ''}.yaml", "method": method,
           "item": ex.item, "batch": batch, "amp": str(engine.amp_dtype(cfg.amp, device)).replace("torch.", ""),
           "parameters_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
           "s_per_step": round(step_s, 4), "data_s_per_step": round(data, 4),
           "data_share": round(data / (data + step_s), 3),
           "peak_GiB": round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if cuda else None,
           "reserved_GiB": round(torch.cuda.max_memory_reserved(device) / 2**30, 2) if cuda else None,
           "folds": folds, "epochs": int(cfg.epochs), "steps_per_epoch": per_epoch, "projected_hours": round(hours, 2)}
    del model, opt, inputs
    if cuda:
        torch.cuda.empty_cache()
    return row


def bench_gpu(out: str | Path | None = None, steps: int = 5, only: list[str] | None = None,
              progress: bool = True) -> dict:
    """Every real dataset's params file (``only``: those methods) on the GPU; without CUDA,
    a result that says so."""
    import torch
    from mer.bench.study import machine
    result = {"what": "the paper profiles on a CUDA GPU: a few training steps of each params file's main model at the "
                      "paper's size and batch, with its mixed precision; LOSO hours projected from them",
              "machine": machine()}
    if not torch.cuda.is_available():
        result["cuda"] = False
        result["note"] = "no CUDA GPU on this machine: nothing measured (run mer bench gpu where a GPU is)"
    else:
        result["cuda"] = True
        rows = []
        for method, dataset, variant in params_files():
            if only and method not in only:
                continue
            try:
                row = bench_one(method, dataset, variant, steps=steps)
            except Exception as exc:  # one failing profile is reported, the others still run
                row = {"params": f"params/{method}/{dataset}{'.' + variant if variant else ''}.yaml", "method": method,
                       "error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"}
            if progress:
                print(json.dumps(row), flush=True)
            rows.append(row)
        result["rows"] = rows
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2))
    return result
