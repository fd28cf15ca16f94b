"""Which machine a number or a figure came from, and when: the study's runs are bitwise
reproducible on one machine only (floating-point paths differ between CPUs and GPUs, and
small-data training grows those last bits into other predictions), so every result carries
the date and the machine it was computed on."""
from __future__ import annotations

import functools
import os
import platform
from datetime import datetime, timezone


@functools.lru_cache(maxsize=None)
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else the platform's word for it)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def describe(device: str | None = None) -> str:
    """"<CPU model>, N cores" and, when ``device`` is a CUDA device, its GPU's name first:
    what a result computed on ``device`` ran on."""
    cpu = f"{cpu_model()}, {os.cpu_count() or '?'} cores"
    if device and str(device).startswith("cuda"):
        try:
            import torch
            return f"{torch.cuda.get_device_name(torch.device(device))} (GPU); {cpu}"
        except Exception:  # no driver in this process: say what is known
            return f"{device} (GPU); {cpu}"
    if device and str(device).startswith("mps"):
        return f"Apple GPU (mps); {cpu}"
    return f"{cpu} (CPU)"


def today() -> str:
    """The UTC date, ``YYYY-MM-DD``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def stamp(device: str | None = None) -> str:
    """``YYYY-MM-DD, <machine>``: what every figure carries."""
    return f"{today()}, {describe(device)}"
