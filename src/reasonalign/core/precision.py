"""The precision forward passes run in, decided by measurement and applied where they really run.

A Trainer's `bf16=True` wraps only the model's own `forward` in autocast; our scoring calls the
decoder and the output head by hand (`scoring.py`), so on CPU the flag changed nothing but the
record. Every command therefore runs its forward passes inside `autocast(precision, device)`,
and records the precision it resolved.

`auto` on a CPU does not trust its flags: bf16 matmuls are ~3x faster than fp32 on CPUs with
AVX512-BF16/AMX, but up to ~100x slower on CPUs that emulate them. A short matmul probe,
shaped like a small model's linear layers, times both once per machine (cached under
REASONALIGN_CACHE) and `auto` picks the low precision only where it is faster.

`auto` on a GPU is decided by the device, not timed: at the probe's size both precisions are
launch-bound on a GPU (an H100 resolved to fp32), while every GPU's tensor cores run half
precision several times faster than fp32 at a model's real sizes. bf16 where the device has
it natively (compute capability 8.0 and up: Ampere, Hopper, ...), fp16 below.
"""

import contextlib
import hashlib
import json
import os
import platform
import time
from pathlib import Path

import torch

from reasonalign.core.config import PRECISIONS
from reasonalign.core.errors import UserError
from reasonalign.core.files import cache_dir

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
MIN_SPEEDUP = 1.2  # auto takes the low precision only when the probe finds it this much faster


def _machine(device: str) -> str:
    """What the CPU probe's result depends on: the processor (model and flags), torch, the device."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        lines = info.split("\n\n")[0].splitlines()
        hardware = "|".join(l for l in lines if l.startswith(("model name", "flags")))
    except OSError:
        hardware = platform.processor() or platform.machine()
    return hashlib.sha256(f"{hardware}|{torch.__version__}|{device}".encode()).hexdigest()[:16]


def _best_seconds(step, budget: float) -> float:
    step()  # warm-up (kernels, allocator)
    best, end = float("inf"), time.perf_counter() + budget
    while True:
        t = time.perf_counter()
        step()
        best = min(best, time.perf_counter() - t)
        if time.perf_counter() > end:
            return best


def gpu_choice(device: str) -> dict:
    """`auto` on a CUDA device: bf16 from compute capability 8.0 (native bf16), fp16 below.
    `torch.cuda.is_bf16_supported()` alone is not enough: it also says yes where bf16 is emulated."""
    major, minor = torch.cuda.get_device_capability(torch.device(device))
    return {"device": device, "gpu": torch.cuda.get_device_name(torch.device(device)),
            "capability": f"{major}.{minor}", "auto": "bf16" if major >= 8 else "fp16", "torch": torch.__version__}


def probe(device: str = "cpu", budget: float = 0.3) -> dict:
    """Seconds per matmul ([256, 576] @ [576, 1536], SmolLM2's MLP) in fp32 and under bf16 autocast
    on the CPU, and the precision `auto` picks. Cached per machine. A GPU is not timed: `gpu_choice`."""
    if device.startswith("cuda"):
        return gpu_choice(device)
    path = cache_dir() / "precision-probe.json"
    key = _machine(device)
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if key in cached:
        return cached[key]
    x = torch.randn(256, 576, device=device)
    w = torch.randn(576, 1536, device=device)

    def step(dtype=None):
        def run():
            with torch.autocast(torch.device(device).type, dtype=dtype, enabled=dtype is not None):
                for _ in range(4):
                    x @ w
        return run

    fp32 = _best_seconds(step(), budget)
    bf16 = _best_seconds(step(torch.bfloat16), budget)
    result = {"device": device, "fp32_s": fp32, "bf16_s": bf16, "speedup": fp32 / bf16,
              "auto": "bf16" if fp32 / bf16 >= MIN_SPEEDUP else "fp32", "torch": torch.__version__}
    cached[key] = result
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=2))
        tmp.replace(path)
    except OSError:
        pass  # a read-only cache only costs a probe per run
    return result


def resolve(requested: str, device: str) -> str:
    """The precision a run will use: `requested`, or for `auto` the probe's choice (a GPU's: `gpu_choice`)."""
    if requested not in PRECISIONS:
        raise UserError(f"--precision {requested!r}: choose from {', '.join(PRECISIONS)}")
    if requested == "fp16" and not device.startswith("cuda"):
        raise UserError("--precision fp16 needs a GPU; use bf16 or fp32 on CPU")
    return probe(device)["auto"] if requested == "auto" else requested


def autocast(precision: str, device: str):
    """The context every forward pass of a run executes in: autocast to bf16/fp16, or nothing."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=DTYPES[precision])


def model_device(model) -> str:
    return str(next(model.parameters()).device)
