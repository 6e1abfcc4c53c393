"""Seconds to sample one window, bf16 against fp32, and how close sampling runs to the matmul peak.

For each transformer preset (random weights: speed does not depend on training) and precision:
seconds per window at ``--steps`` MGM steps, the model's FLOPs per network call (counted on one
forward pass by ``common.flop_counter``, attention included), the FLOP rate that implies, and that
rate as a share of this machine's matmul peak in the same precision (a large square matmul,
measured by the runner just before). With --weights, the weights' own transformer is measured too.
Prints a table:

    OMP_NUM_THREADS=1 python -m benchmarks window_speed --weights weights --presets base --steps 8 --repeats 1
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from maskflow_cli.engine import SamplingOptions, roll_out
from maskflow_cli.model_configs import TRANSFORMER_PRESETS, TransformerConfig
from maskflow_cli.planner import plan_extend, window_settings
from maskflow_cli.runtime import ModelDenoiser, cast_for_inference, precision_dtype
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weights import load_models

from .common import count_flops, dtype_name
from .markdown import heading, machine, table

NAME = "window_speed"
SHARED = {"weights": None}
PEAK_DTYPES = (torch.float32, torch.bfloat16)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--presets", nargs="+", choices=TRANSFORMER_PRESETS, default=["small", "base"])
    parser.add_argument("--frames", type=int, default=16, help="the presets' window")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precisions", nargs="+", choices=("fp32", "bf16"), default=["fp32", "bf16"],
                        help="bf16 is several times slower on CPUs without AVX512-BF16/AMX")


def flops_per_call(model: MaskFlowTransformer) -> int:
    cfg = model.config
    tokens = torch.zeros(1, cfg.frames, cfg.grid_height, cfg.grid_width, dtype=torch.long)

    def call() -> None:
        with torch.inference_mode():
            model(tokens, torch.zeros(1, cfg.frames))
    return count_flops(call)


def time_window(name: str, model: MaskFlowTransformer, precision: str, steps: int, repeats: int, peaks: dict) -> dict:
    cfg = model.config
    dtype = precision_dtype(torch.device("cpu"), precision)
    parameters, flops = sum(p.numel() for p in model.parameters()), flops_per_call(model)  # of the plain model: a packed
    model = cast_for_inference(copy.deepcopy(model), dtype)  # layer (runtime.PackedLinear) holds no parameters and counts no FLOPs
    denoiser = ModelDenoiser(model)
    given = cfg.frames // 2  # extend-like: half the window is context
    plan = plan_extend(given, cfg.frames - given, window_settings(cfg.frames, "full"))  # one window
    context = torch.zeros(1, given, cfg.grid_height, cfg.grid_width, dtype=torch.long)
    seconds = []
    for i in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        list(roll_out(plan, denoiser, SamplingOptions("mgm", steps), i, lambda frames: context[:, frames]))
        seconds.append(time.perf_counter() - start)
    best = min(seconds[1:])
    rate = flops * steps / best / 1e9
    autocast = dtype_name(dtype)
    return {"model": name, "parameters": parameters, "precision": precision, "autocast": autocast,
            "frames": cfg.frames, "steps": steps, "seconds_per_window": round(best, 3), "ms_per_call": round(1000 * best / steps, 1),
            "gflop_per_call": round(flops / 1e9, 2), "gflop_per_new_frame": round(flops * steps / (cfg.frames - given) / 1e9, 2),
            "achieved_gflops": round(rate, 1), "peak_gflops": round(peaks[autocast], 1), "share_of_peak": round(rate / peaks[autocast], 3)}


def run(args: argparse.Namespace) -> dict:
    peaks = args.machine["matmul_peak_gflops"]
    models = {p: MaskFlowTransformer(TransformerConfig(vocab_size=1000, frames=args.frames, grid_height=8, grid_width=8, **TRANSFORMER_PRESETS[p])).eval()
              for p in args.presets}
    if args.weights:
        models["weights"] = load_models(args.weights)[1].eval()
    rows = [time_window(name, m, precision, args.steps, args.repeats, peaks) for name, m in models.items() for precision in args.precisions]
    print(f"matmul peak: fp32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.0f} GFLOP/s")
    print(f"{'model':8} {'params':>8} {'dtype':>9} {'s/window':>9} {'ms/call':>8} {'GFLOP/call':>10} {'GFLOP/s':>8} {'of peak':>8}")
    for r in rows:
        print(f"{r['model']:8} {r['parameters'] / 1e6:7.1f}M {r['autocast']:>9} {r['seconds_per_window']:9.3f} {r['ms_per_call']:8.1f} "
              f"{r['gflop_per_call']:10.2f} {r['achieved_gflops']:8.1f} {r['share_of_peak']:8.1%}")
    return {"matmul_peak_gflops": peaks, "rows": rows}


def render(r: dict) -> str:
    names = {"float32": "fp32", "bfloat16": "bf16"}
    out = heading("Speed of one window", r) + [
        f"Machine: {machine(r['machine'])}. Square-matmul peak: " + ", ".join(f"{names.get(k, k)} {v:.1f}" for k, v in r["matmul_peak_gflops"].items()) +
        " GFLOP/s. Where a precision's square matmul runs slower than the model does in it (bf16 on a CPU without bf16 instructions "
        "falls back to a slow kernel), its share of peak is not shown.", ""]
    rows = [[x["model"], f"{x['parameters'] / 1e6:.1f}M", x["autocast"], f"{x['seconds_per_window']:.2f}", f"{x['ms_per_call']:.0f}", f"{x['gflop_per_call']:.1f}",
             f"{x['gflop_per_new_frame']:.0f}", f"{x['achieved_gflops']:.1f}", f"{100 * x['share_of_peak']:.0f}%" if x["share_of_peak"] <= 1 else "—"] for x in r["rows"]]
    first = r["rows"][0]
    return "\n".join(out + table(["model", "parameters", "precision", f"s / {first['frames']}-frame window ({first['steps']} steps)", "ms / call",
                                  "GFLOP / call", "GFLOP / new frame", "GFLOP/s", "of peak"], rows))
