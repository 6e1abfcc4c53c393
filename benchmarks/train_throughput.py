"""Training throughput of the transformer presets: tokens/s, clips/s, model FLOPs, MFU, peak memory.

Each preset (shape from ``TRANSFORMER_PRESETS`` on the reference data of ``train --help``: 8x8
tokens a frame, vocabulary 1000, ``--window`` frames) trains on random tokens for ``--warmup``
untimed and ``--steps`` timed steps of ``training.fit``'s step: the frame-level masking loss under
autocast, AdamW, gradient clipping and the EMA update (``--compile``: torch.compile, as ``train
--compile``; ``--checkpointing on``: activation checkpointing). Reported per preset and variant:

- tokens/s, clips/s (training windows) and samples/s (frames: clips/s x window);
- model FLOPs per step, by formula, with B clips of T frames of S tokens (N = T·S tokens a clip),
  width D, MLP width M, depth L, vocabulary V, and P_tok = L·(4D² + 2DM) + D·V the weights that every
  token multiplies, P_frame = L·6D² + 2D² + 256·D + D² those that every frame's condition does:

      forward  = B · (2·P_tok·N + 2·P_frame·T + L · 4·N²·D)     (attention: Q·Kᵀ and P·V, 2·N²·D each)
      step     = 3 · forward                                    (backward: twice the forward)

  Biases, norms, softmax and the optimizer are not counted (the usual MFU convention), nor the
  recomputation of activation checkpointing (that is work the hardware does, not the model).
  ``counted_flops`` cross-checks the formula: torch's FLOP counter on one forward and backward pass;
- MFU: model FLOPs per second over the matmul peak measured here in the same precision (a GPU's: a
  matmul of side 8192, in wall seconds; the CPU's: best of 10 of side 2048, in CPU seconds). On the
  CPU a step's seconds, like the peak's, are the process's CPU seconds over its threads, which other
  processes sharing the machine do not inflate (the runner's wall-time peak in ``machine`` drops
  under such load); on a GPU, wall seconds. The median step;
- peak memory of the training loop (model, optimizer, EMA, activations): on the CPU the peak
  resident set over the resident set before the model is built (Linux: /proc/self/clear_refs resets
  the peak between presets); on a GPU ``torch.cuda.max_memory_allocated``.

Then, for every preset (including those too slow to train here), what a step keeps in memory
(``activation_memory``, counted on fake tensors) with and without activation checkpointing, and
how many clips fit in ``--device-gb``; and the extrapolation: 1M steps at ``--extrapolate-batch``
clips in GPU-hours, at the MFU measured here against a GPU's peak (on the CPU: an assumed datasheet
peak, ``--gpu-peak-tflops``; a CPU's MFU is not a GPU's) and at an assumed GPU MFU.

    OMP_NUM_THREADS=1 python -m benchmarks train_throughput --presets s b --checkpointing off on
    python -m benchmarks train_throughput --device cuda --presets s b l xl --batch 32 --checkpointing off on --compile
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import statistics
import time
from pathlib import Path

import torch

from maskflow_cli.model_configs import (PAPER_PRESETS, REFERENCE_GRID, TIME_FEATURES, TRANSFORMER_PRESETS, TransformerConfig,
                                        transformer_parameters)
from maskflow_cli.runtime import precision_dtype, resolve_device
from maskflow_cli.training import EMA, TrainConfig, TransformerTask
from maskflow_cli.transformer import MaskFlowTransformer

from .activation_memory import clips_that_fit, training_memory
from .common import count_flops, cpu_seconds_per_thread, dtype_name, matmul_peak, synchronize
from .markdown import heading, machine, table

NAME = "train_throughput"
SHARED = {"batch": 2, "precision": "auto", "seed": 0}
PEAK_DTYPES = (torch.float32, torch.bfloat16)
GPU_PEAK_SIZE = 8192
H100_BF16_TFLOPS = 989.4  # NVIDIA H100 SXM datasheet: dense BF16 tensor-core peak (1,979 with sparsity)
STEPS_TO_EXTRAPOLATE = 1_000_000
STATUS = Path("/proc/self/status")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", nargs="+", choices=TRANSFORMER_PRESETS, default=["s"], help="presets to train")
    parser.add_argument("--window", type=int, default=REFERENCE_GRID["frames"], help="frames per clip (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--checkpointing", nargs="+", choices=("off", "on"), default=["off"], help="activation checkpointing variants")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model, as train --compile")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: %(default)s)")
    parser.add_argument("--memory-presets", nargs="*", choices=TRANSFORMER_PRESETS, default=list(PAPER_PRESETS),
                        help="presets whose step memory is counted on fake tensors (default: the paper's)")
    parser.add_argument("--device-gb", type=float, default=80.0, help="GPU memory the clip counts fit into (default: %(default)s)")
    parser.add_argument("--extrapolate-batch", type=int, default=32, help="clips a step in the extrapolation (default: %(default)s)")
    parser.add_argument("--gpu-peak-tflops", type=float, default=H100_BF16_TFLOPS,
                        help="assumed GPU peak for a CPU run's extrapolation (default: H100 SXM dense bf16, %(default)s)")
    parser.add_argument("--assumed-gpu-mfu", type=float, default=0.4, help="the extrapolation's second, assumed MFU (default: %(default)s)")


def preset_config(name: str, window: int) -> TransformerConfig:
    return TransformerConfig(**{**REFERENCE_GRID, "frames": window}, **TRANSFORMER_PRESETS[name])


def model_flops(config: TransformerConfig, batch: int) -> int:
    """Model FLOPs of one training step (forward and backward) of ``batch`` clips: the module docstring's formula."""
    d, depth, frames = config.dim, config.depth, config.frames
    tokens = frames * config.grid_height * config.grid_width
    hidden = int(d * config.mlp_ratio)
    per_token = depth * (4 * d * d + 2 * d * hidden) + d * config.vocab_size
    per_frame = depth * 6 * d * d + 2 * d * d + (TIME_FEATURES * d + d * d if config.time_conditioning else 0)
    assert config.attention == "full" and not config.code_features and not config.code_digits, "the formula is for the presets' models"
    forward = 2 * per_token * tokens + 2 * per_frame * frames + depth * 4 * tokens * tokens * d
    return 3 * batch * forward


def counted_flops(config: TransformerConfig, batch: int) -> int:
    """torch's FLOP count of one forward and backward pass on the meta device (no arithmetic runs)."""
    with torch.device("meta"):
        model = MaskFlowTransformer(config).train()
        tokens = torch.zeros(batch, config.frames, config.grid_height, config.grid_width, dtype=torch.long)
        times = torch.zeros(batch, config.frames)
    return count_flops(lambda: model(tokens, times).float().logsumexp(-1).mean().backward())


def _memory_now(device: torch.device, peak: bool) -> int | None:
    """Bytes in use now (``peak``: the peak since the last reset): the GPU's allocator, or the resident set (Linux)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) if peak else torch.cuda.memory_allocated(device)
    if not STATUS.exists():
        return None
    key = "VmHWM:" if peak else "VmRSS:"
    line = next(line for line in STATUS.read_text().splitlines() if line.startswith(key))
    return int(line.split()[1]) * 1024


def _reset_peak(device: torch.device) -> None:
    """Start the peak over: on the CPU, after handing the memory of earlier presets back to the system
    (glibc keeps freed memory resident, and the next model would fill it without raising the peak)."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    except (OSError, AttributeError):
        pass


def train_preset(name: str, checkpointing: bool, args: argparse.Namespace, device: torch.device, peaks: dict) -> dict:
    """Build ``name``'s model and time ``args.steps`` steps of fit's step after ``args.warmup`` untimed ones."""
    config = preset_config(name, args.window)
    _reset_peak(device)
    before = _memory_now(device, peak=False)
    torch.manual_seed(args.seed)
    model = MaskFlowTransformer(config).to(device).train()
    model.checkpoint_activations = checkpointing
    train = TrainConfig(batch_size=args.batch, precision=args.precision)
    trained = torch.compile(model) if args.compile else model
    dtype = precision_dtype(device, train.precision, transformer_parameters(config))
    tokens = torch.randint(0, config.vocab_size, (4 * args.batch, args.window, config.grid_height, config.grid_width), dtype=torch.int16)
    task = TransformerTask(model, tokens, args.batch, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.lr, weight_decay=train.weight_decay, betas=(0.9, 0.99))
    ema = EMA(model, train.ema)
    generator = torch.Generator().manual_seed(args.seed)
    wall, cpu = [], []
    for step in range(args.warmup + args.steps):
        synchronize(device)
        start_wall, start_cpu = time.perf_counter(), cpu_seconds_per_thread()
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _ = task.loss(trained, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), train.grad_clip)
        optimizer.step()
        ema.update(model, step)
        synchronize(device)
        if step >= args.warmup:
            wall.append(time.perf_counter() - start_wall)
            cpu.append(cpu_seconds_per_thread() - start_cpu)
    peak = _memory_now(device, peak=True)
    seconds = statistics.median(wall) if device.type == "cuda" else statistics.median(cpu)
    flops = model_flops(config, args.batch)
    autocast = dtype_name(dtype)
    tokens_per_clip = args.window * config.grid_height * config.grid_width
    return {"preset": name, "parameters": transformer_parameters(config), "checkpointing": checkpointing, "autocast": autocast,
            "batch": args.batch, "window": args.window, "tokens_per_clip": tokens_per_clip, "final_loss": round(loss.item(), 4),
            "wall_s": [round(x, 3) for x in wall], "cpu_s": [round(x, 3) for x in cpu], "seconds_per_step": round(seconds, 4),
            "tokens_per_s": round(args.batch * tokens_per_clip / seconds, 1), "clips_per_s": round(args.batch / seconds, 4),
            "samples_per_s": round(args.batch * args.window / seconds, 3),
            "model_gflop_per_step": round(flops / 1e9, 1), "counted_gflop_per_step": round(counted_flops(config, args.batch) / 1e9, 1),
            "achieved_gflops": round(flops / seconds / 1e9, 1), "peak_gflops": peaks[autocast],
            "mfu": round(flops / seconds / 1e9 / peaks[autocast], 4),
            "peak_memory_mib": None if peak is None or before is None else round((peak - before) / 2**20, 1)}


def _device_peaks(device: torch.device) -> dict:
    """Matmul GFLOP/s per autocast dtype name, measured now: a GPU's in wall time (side GPU_PEAK_SIZE), the
    CPU's in CPU time, like its steps (the runner's wall-time peaks drop when other processes share the CPU)."""
    if device.type == "cuda":
        return {dtype_name(d): round(matmul_peak(d, device=device, size=GPU_PEAK_SIZE), 1) for d in PEAK_DTYPES}
    return {dtype_name(d): round(matmul_peak(d, repeats=10, clock=cpu_seconds_per_thread), 1) for d in PEAK_DTYPES}


def extrapolate(rows: list[dict], args: argparse.Namespace, device: torch.device, peaks: dict) -> list[dict]:
    """GPU-hours of 1M steps of each paper preset at ``args.extrapolate_batch`` clips: at the MFU measured
    for that preset (or the largest preset measured), and at ``args.assumed_gpu_mfu``."""
    plain = [r for r in rows if not r["checkpointing"]] or rows
    bf16_peak = peaks["bfloat16"] * 1e9 if device.type == "cuda" else args.gpu_peak_tflops * 1e12
    out = []
    for name in PAPER_PRESETS:
        measured = next((r for r in plain if r["preset"] == name), max(plain, key=lambda r: r["parameters"]))
        measured_peak = measured["peak_gflops"] * 1e9 if device.type == "cuda" else bf16_peak  # a GPU's MFU against its own peak
        step = model_flops(preset_config(name, args.window), args.extrapolate_batch)
        hours = [STEPS_TO_EXTRAPOLATE * step / (peak * mfu) / 3600 for peak, mfu in ((measured_peak, measured["mfu"]), (bf16_peak, args.assumed_gpu_mfu))]
        out.append({"preset": name, "batch": args.extrapolate_batch, "window": args.window, "model_pflop_per_step": round(step / 1e15, 3),
                    "mfu_of": measured["preset"], "measured_mfu": measured["mfu"], "gpu_hours_at_measured_mfu": round(hours[0]),
                    "gpu_hours_at_assumed_mfu": round(hours[1])})
    return out


def memory_rows(args: argparse.Namespace, dtype: torch.dtype | None) -> list[dict]:
    rows = []
    for name in args.memory_presets:
        for checkpointing in (False, True):
            counts = training_memory(preset_config(name, args.window), dtype, checkpointing)
            rows.append({"preset": name, **counts, "fits_clips": clips_that_fit(counts, args.device_gb * 1e9)})
    return rows


def run(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    peaks = _device_peaks(device)
    load = os.getloadavg()
    train_preset("tiny", False, args, device, peaks)  # untimed: what the first step of a process sets up once is not charged to a preset
    rows = [train_preset(p, c == "on", args, device, peaks) for p in args.presets for c in args.checkpointing]
    for r in rows:
        print(f"{r['preset']:5} ckpt {'on ' if r['checkpointing'] else 'off'} {r['autocast']:>8} {r['seconds_per_step']:8.3f} s/step "
              f"{r['tokens_per_s']:9.0f} tokens/s {r['model_gflop_per_step']:9.1f} GFLOP/step  MFU {r['mfu']:6.1%}  "
              f"peak {r['peak_memory_mib']} MiB")
    memory_dtype = torch.bfloat16 if args.precision != "fp32" else None  # what a GPU trains in under auto
    return {"device": str(device), "device_peak_gflops": peaks, "load_average": [round(x, 2) for x in (*load, *os.getloadavg())],
            "rows": rows, "memory_autocast": dtype_name(memory_dtype), "memory": memory_rows(args, memory_dtype),
            "device_gb": args.device_gb, "gpu_peak_tflops": peaks["bfloat16"] / 1e3 if device.type == "cuda" else args.gpu_peak_tflops,
            "assumed_gpu_mfu": args.assumed_gpu_mfu, "extrapolation": extrapolate(rows, args, device, peaks)}


def _gib(value: int) -> str:
    return f"{value / 2**30:.2f}"


def render(r: dict) -> str:
    gpu = r["device"].startswith("cuda")
    out = heading("Training throughput of the presets", r) + [
        f"Machine: {machine(r['machine'])}; training device {r['device']}, this benchmark's matmul peaks "
        f"({'wall' if gpu else 'CPU'} seconds): "
        + ", ".join(f"{k} {v:.0f} GFLOP/s" for k, v in r["device_peak_gflops"].items())
        + f"; load average {r['load_average'][0]:.2f} before, {r['load_average'][3]:.2f} after. Reference data of `train --help` "
        "(8x8 tokens a frame, vocabulary 1000), random tokens; a step is `fit`'s (masking loss, AdamW, clipping, EMA). Model FLOPs "
        "by the formula in `benchmarks/train_throughput.py` (attention counted, backward twice the forward; torch's FLOP counter "
        "beside it); MFU against the matmul peak in the step's precision. "
        + ("Seconds are wall seconds; peak memory is `torch.cuda.max_memory_allocated`." if gpu else
           "Seconds (of the median step, and of the peaks here) are CPU seconds over threads, which other processes on the CPU do "
           "not inflate; peak memory is the peak resident set over the one before the model was built."), ""]
    rows = [[x["preset"], f"{x['parameters'] / 1e6:.1f}M", "on" if x["checkpointing"] else "off", x["autocast"], f"{x['batch']} x {x['window']}",
             f"{x['seconds_per_step']:.2f}", f"{x['tokens_per_s']:,.0f}", f"{x['clips_per_s']:.3g}", f"{x['samples_per_s']:.3g}",
             f"{x['model_gflop_per_step']:,.0f}", f"{x['counted_gflop_per_step']:,.0f}", f"{x['achieved_gflops']:.0f}", f"{100 * x['mfu']:.1f}%",
             "—" if x["peak_memory_mib"] is None else f"{x['peak_memory_mib']:,.0f}"] for x in r["rows"]]
    out += table(["preset", "parameters", "checkpointing", "precision", "clips x frames", "s / step", "tokens/s", "clips/s", "samples (frames)/s",
                  "model GFLOP / step", "counted GFLOP / step", "GFLOP/s", "MFU", "peak memory MiB"], rows)
    out += [f"What a training step keeps in memory, counted on fake tensors under {r['memory_autocast']} autocast "
            "(`benchmarks/activation_memory.py`: model state of 20 bytes a parameter, and what the forward pass keeps for the "
            "backward pass; not counted: gradients in flight, the optimizer step's temporaries, kernel scratch space, allocator slack, "
            "the CUDA context, so these "
            f"are lower bounds and the clip counts upper bounds). Window of {r['rows'][0]['window'] if r['rows'] else '?'} frames.", ""]
    rows = [[m["preset"], f"{m['parameters'] / 1e6:.1f}M", "on" if m["checkpointing"] else "off", _gib(m["state_bytes"]), _gib(m["fixed_bytes"]),
             _gib(m["clip_bytes"]), f"{m['fits_clips']:,}"] for m in r["memory"]]
    out += table(["preset", "parameters", "checkpointing", "state GiB", "activations GiB a step, any batch", "activations GiB a clip",
                  f"clips that fit in {r['device_gb']:g} GB"], rows)
    peak = ("the matmul peak measured beside (at the measured MFU: the peak of the step's precision; at the assumed MFU: bf16)"
            if gpu else f"an assumed {r['gpu_peak_tflops']:g} TFLOP/s" + (" (H100 SXM dense bf16, datasheet)" if r["gpu_peak_tflops"] == H100_BF16_TFLOPS else ""))
    caveat = ("" if gpu else " The measured MFU is this CPU's, against this CPU's peak: a GPU's is its own, so each line also gives "
              f"the hours at an assumed {100 * r['assumed_gpu_mfu']:.0f}%, a guess, not a measurement.")
    caveat += (" Clips of the reference data (8x8 tokens a frame): a step on a larger token grid costs more, by the formula "
               "(attention with the square of the tokens).")
    out += [f"**Extrapolation, not a measurement**: one GPU at {peak}.{caveat}", ""]
    for e in r["extrapolation"]:
        out.append(f"- 1M steps of preset {e['preset']} at batch {e['batch']} ({e['window']}-frame clips, {e['model_pflop_per_step']:.3g} model PFLOP a step) "
                   f"would take {e['gpu_hours_at_measured_mfu']:,} GPU-hours at the measured MFU ({100 * e['measured_mfu']:.1f}%, measured on "
                   f"preset {e['mfu_of']}), {e['gpu_hours_at_assumed_mfu']:,} at {100 * r['assumed_gpu_mfu']:.0f}%.")
    return "\n".join(out)
