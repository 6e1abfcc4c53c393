"""What the benchmark scripts share: machine facts, FLOP counting, interleaved timing, test clips.

Speed numbers depend on the CPU (its instruction sets decide whether bf16 or AVX-512 kernels exist)
and on what else runs on it, so every result carries ``machine_facts()``: the CPU model, its relevant
flags, PyTorch's CPU capability, the threads, and a matmul peak measured in the same process just
before. Variants are compared by ``interleaved``: one round runs every variant once, so load from
other processes hits all of them alike, and the ratios are what to read.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

# /proc/cpuinfo flags that decide which kernels PyTorch can use
CPU_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


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
                if name and flags:
                    break
    except OSError:
        pass
    return name, [f for f in CPU_FLAGS if f in flags]


def matmul_peak(dtype: torch.dtype = torch.float32, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a size×size matmul in ``dtype`` on the CPU (best of ``repeats``)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def machine_facts(pipe: Any = None, peak_dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> dict:
    """CPU model, flags, PyTorch CPU capability, threads and a matmul peak measured now (GFLOP/s per
    dtype); with a pipeline also its device and autocast precision."""
    cpu, flags = cpu_info()
    facts = {"cpu": cpu, "flags": flags, "capability": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
             "threads": torch.get_num_threads(), "torch": torch.__version__,
             "matmul_peak_gflops": {str(d).removeprefix("torch."): round(matmul_peak(d), 1) for d in peak_dtypes}}
    if pipe is not None:
        facts.update(device=str(pipe.device), autocast=str(pipe.autocast_dtype).removeprefix("torch.") if pipe.autocast_dtype else "float32")
    return facts


def describe_machine(m: dict) -> str:
    """One line for tables: CPU, flags, capability, threads, torch and the fp32 peak."""
    flags = "/".join(m.get("flags", [])) or "none of " + "/".join(CPU_FLAGS[:4])
    peak = m.get("matmul_peak_gflops", {}).get("float32")
    return (f"{m['cpu']} ({flags}; PyTorch CPU capability {m.get('capability', '?')}), {m['threads']} threads, torch {m['torch']}"
            + (f", fp32 matmul peak {peak:.0f} GFLOP/s" if peak else ""))


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


def test_clips(pipe: Any, frames: int, count: int, seed: int = 1234) -> torch.Tensor:
    """Moving MNIST sequences from the reserved test digits, at the model's frame format."""
    from maskflow_cli.evaluation import held_out_sequences

    return held_out_sequences(None, frames, count, pipe.frame_format, seed)
