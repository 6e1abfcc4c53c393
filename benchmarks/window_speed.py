"""Seconds to sample one window, bf16 against fp32, and how close sampling runs to the matmul peak.

For each transformer preset (random weights: speed does not depend on training) and precision:
seconds per 16-frame window at 20 MGM steps, the model's FLOPs per network call (counted by
torch.utils.flop_counter on one forward pass), the FLOP rate that implies, and that rate as a share
of this machine's measured matmul peak in the same precision (a large square matmul). With
--weights, the weights' own transformer is measured too. Prints a table and writes JSON:

    python benchmarks/window_speed.py --weights weights/ --out benchmarks/results/window_speed.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from common import machine_facts
from maskflow_cli.engine import SamplingOptions, roll_out
from maskflow_cli.planner import plan_extend, window_settings
from maskflow_cli.runtime import ModelDenoiser, autocast_dtype
from maskflow_cli.transformer import PRESETS, MaskFlowTransformer, TransformerConfig
from maskflow_cli.weights import load_models


def matmul_peak(dtype: torch.dtype, size: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of a size×size matmul in ``dtype`` (best of ``repeats``)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def flops_per_call(model: MaskFlowTransformer, dtype: torch.dtype | None) -> int:
    cfg = model.config
    tokens = torch.zeros(1, cfg.frames, cfg.height, cfg.width, dtype=torch.long)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        with torch.autocast("cpu", dtype=dtype or torch.float32, enabled=dtype is not None):
            model(tokens, torch.zeros(1, cfg.frames))
    return counter.get_total_flops()


def time_window(name: str, model: MaskFlowTransformer, precision: str, steps: int, repeats: int, peaks: dict) -> dict:
    cfg = model.config
    dtype = autocast_dtype(torch.device("cpu"), precision)
    denoiser = ModelDenoiser(model, dtype)
    given = cfg.frames // 2  # extend-like: half the window is context
    plan = plan_extend(given, cfg.frames - given, window_settings(cfg.frames, "full"))  # one window
    context = torch.zeros(1, given, cfg.height, cfg.width, dtype=torch.long)
    seconds = []
    for i in range(repeats + 1):  # the first run warms up
        start = time.perf_counter()
        list(roll_out(plan, denoiser, SamplingOptions("mgm", steps), i, lambda frames: context[:, frames]))
        seconds.append(time.perf_counter() - start)
    best = min(seconds[1:])
    flops = flops_per_call(model, dtype)
    rate = flops * steps / best / 1e9
    autocast = str(dtype).removeprefix("torch.") if dtype else "float32"
    return {"model": name, "parameters": sum(p.numel() for p in model.parameters()), "precision": precision, "autocast": autocast,
            "frames": cfg.frames, "steps": steps, "seconds_per_window": round(best, 3), "ms_per_call": round(1000 * best / steps, 1),
            "gflop_per_call": round(flops / 1e9, 2), "gflop_per_new_frame": round(flops * steps / (cfg.frames - cfg.frames // 2) / 1e9, 2),
            "achieved_gflops": round(rate, 1), "peak_gflops": round(peaks[autocast], 1), "share_of_peak": round(rate / peaks[autocast], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "base"])
    parser.add_argument("--weights", default=None, help="also measure the transformer of these weights")
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="window_speed.json")
    args = parser.parse_args()
    peaks = {"float32": matmul_peak(torch.float32), "bfloat16": matmul_peak(torch.bfloat16)}
    models = {p: MaskFlowTransformer(TransformerConfig(vocab_size=1000, frames=args.frames, height=8, width=8, **PRESETS[p])).eval() for p in args.presets}
    if args.weights:
        models["weights"] = load_models(args.weights)[1].eval()
    rows = [time_window(name, m, precision, args.steps, args.repeats, peaks) for name, m in models.items() for precision in ("fp32", "bf16")]
    print(f"matmul peak: fp32 {peaks['float32']:.0f} GFLOP/s, bf16 {peaks['bfloat16']:.0f} GFLOP/s")
    print(f"{'model':8} {'params':>8} {'dtype':>9} {'s/window':>9} {'ms/call':>8} {'GFLOP/call':>10} {'GFLOP/s':>8} {'of peak':>8}")
    for r in rows:
        print(f"{r['model']:8} {r['parameters'] / 1e6:7.1f}M {r['autocast']:>9} {r['seconds_per_window']:9.3f} {r['ms_per_call']:8.1f} "
              f"{r['gflop_per_call']:10.2f} {r['achieved_gflops']:8.1f} {r['share_of_peak']:8.1%}")
    result = {"benchmark": "window_speed", "machine": machine_facts(), "matmul_peak_gflops": {k: round(v, 1) for k, v in peaks.items()}, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
