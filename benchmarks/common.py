"""What the benchmarks share when they measure: machine facts, FLOP counting, interleaved timing, a
timed child process, and held-out test clips.

Speed numbers depend on the CPU (its instruction sets decide whether bf16 or AVX-512 kernels exist)
and on what else runs on it, so the runner stores ``machine_facts()`` with every result: the CPU
model, its relevant flags, PyTorch's CPU capability, the threads, the device the library picks by
default, and a matmul peak measured in the same process just before. Variants are
compared by ``interleaved``: one round runs every variant once, so load from other processes hits
all of them alike, and the ratios are what to read.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from maskflow_cli.runtime import resolve_device

ROOT = Path(__file__).resolve().parent.parent  # the checkout the benchmarks belong to

# /proc/cpuinfo flags that decide which kernels PyTorch can use
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")
PEAK_SIZE = 2048  # the side of the square matmul whose rate is the peak (the tests make it small)


def cpu_info() -> tuple[str, list[str]]:
    """The CPU's model name and which of CPU_FLAGS it has (Linux; elsewhere the platform's name only)."""
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return name, [f for f in CPU_FLAGS if f in flags]


def matmul_peak(dtype: torch.dtype = torch.float32, repeats: int = 5, device: torch.device = torch.device("cpu"), size: int | None = None,
                clock: Callable[[], float] = time.perf_counter) -> float:
    """GFLOP/s of a square matmul of side ``size`` (default PEAK_SIZE) in ``dtype`` on ``device``
    (best of ``repeats``; a GPU needs a larger side than a CPU to reach its peak), timed by ``clock``:
    wall seconds, or ``cpu_seconds_per_thread`` for a rate that other processes on the CPU do not lower."""
    n = size or PEAK_SIZE
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        synchronize(device)
        start = clock()
        torch.mm(a, b)
        synchronize(device)
        best = min(best, clock() - start)
    return 2 * n**3 / best / 1e9


def cpu_seconds_per_thread() -> float:
    """This process's CPU seconds over torch's threads: time it computed, not time it waited for a core."""
    return time.process_time() / torch.get_num_threads()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def in_checkout(path: Path) -> str:
    """A path as results keep it: relative to the checkout where it lies inside it."""
    full = path.resolve()
    return str(full.relative_to(ROOT)) if full.is_relative_to(ROOT) else str(path)


def dtype_name(dtype: torch.dtype | None) -> str:
    """"float32" for None (fp32), else the dtype without "torch."."""
    return str(dtype or torch.float32).removeprefix("torch.")


def machine_facts(peak_dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> dict:
    """CPU model, flags, PyTorch CPU capability, cores, threads, torch version, the device the library
    picks by default (``--device auto``; with its GPU's name), and a matmul peak measured now (GFLOP/s
    per dtype). The dtype a pipeline ran in is part of each pipeline benchmark's result."""
    cpu, flags = cpu_info()
    device = resolve_device("auto")
    facts = {"cpu": cpu, "flags": flags, "capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
             "threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device),
             "matmul_peak_gflops": {dtype_name(d): round(matmul_peak(d), 1) for d in peak_dtypes}}
    if device.type == "cuda":
        facts["gpu"] = torch.cuda.get_device_name(device)
    return facts


def _attention_flops(query: list[int], key: list[int], value: list[int], *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
    """FLOPs of attention from the shapes [B,K,Lq,E], [B,K,Lk,E], [B,K,Lk,Ev]: Q·Kᵀ and P·V."""
    *batch, lq, e = query
    lk, ev = key[-2], value[-1]
    n = 1
    for d in batch:
        n *= d
    return 2 * n * lq * lk * (e + ev)


def flop_counter() -> FlopCounterMode:
    """torch.utils.flop_counter's counter, also counting the CPU fused attention kernel, which it
    misses (it has formulas for the CUDA kernels only)."""
    aten = torch.ops.aten
    mapping = {aten._scaled_dot_product_flash_attention_for_cpu: _attention_flops}
    return FlopCounterMode(display=False, custom_mapping=mapping)


def count_flops(fn: Callable[[], Any]) -> int:
    """FLOPs of running ``fn()`` once (matmuls, convolutions and attention)."""
    with flop_counter() as counter:
        fn()
    return counter.get_total_flops()


def interleaved(variants: dict[str, Callable[[], Any]], rounds: int, warmup: int = 1) -> dict[str, dict]:
    """Time every variant once per round, in a rotating order, after ``warmup`` untimed rounds.

    Returns per variant the wall and process-CPU seconds of each timed round, their medians and the
    median ratio to the first variant (per round, so slow rounds cancel)."""
    names = list(variants)
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(warmup + rounds):
        for n in names[r % len(names):] + names[: r % len(names)]:
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            variants[n]()
            if r >= warmup:
                wall[n].append(time.perf_counter() - start_wall)
                cpu[n].append(time.process_time() - start_cpu)
    return summarize_rounds(names, wall, cpu)


def summarize_rounds(names: list[str], wall: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict[str, dict]:
    """Medians and per-round ratios to the first variant of paired timings."""
    first = names[0]
    out = {}
    for n in names:
        out[n] = {"wall_s": [round(x, 4) for x in wall[n]], "cpu_s": [round(x, 4) for x in cpu[n]],
                  "median_wall_s": round(statistics.median(wall[n]), 4), "median_cpu_s": round(statistics.median(cpu[n]), 4),
                  "wall_ratio": round(statistics.median(a / b for a, b in zip(wall[n], wall[first])), 3),
                  "cpu_ratio": round(statistics.median(a / b for a, b in zip(cpu[n], cpu[first])), 3)}
    return out


@dataclass
class Finished:
    """A child process run to its end: its output and what it cost."""

    stdout: bytes
    stderr: bytes
    wall_s: float
    cpu_s: float  # user + system time of the child
    peak_rss_mib: float


def run_process(argv: list[str], env: dict[str, str] | None = None, cwd: str | os.PathLike | None = None) -> Finished:
    """Run ``argv`` to its end, timing it and reading its resource use (its output goes to temporary
    files, so a chatty child cannot block on a full pipe); SystemExit naming the command and the last
    line of its stderr when it fails."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        finished = Finished(out.read(), err.read(), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)
    if process.returncode:
        last = finished.stderr.decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
        raise SystemExit(f"{' '.join(argv[:4])} ... failed: {last[0]}")
    return finished


def run_maskflow(args: list[str], tree: Path = ROOT, cwd: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> Finished:
    """``python -m maskflow_cli ARGS`` of the checkout ``tree`` (its package first on the path), run
    to its end by ``run_process``, with ``env`` added to this process's environment."""
    path = os.pathsep.join(filter(None, [str(tree), os.environ.get("PYTHONPATH")]))
    return run_process([sys.executable, "-m", "maskflow_cli", *args], {**os.environ, "PYTHONPATH": path, **(env or {})}, cwd)


def test_clips(pipe: Any, frames: int, count: int, seed: int = 1234) -> torch.Tensor:
    """Moving MNIST sequences from the reserved test digits, at the model's frame format."""
    from maskflow_cli.evaluation import held_out_sequences

    return held_out_sequences(None, frames, count, pipe.frame_format, seed)
