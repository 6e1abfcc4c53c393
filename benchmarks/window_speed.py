"""Seconds to sample one window, per transformer preset and precision, on this machine.

Random weights (speed does not depend on training). Prints a table and writes JSON:

    python benchmarks/window_speed.py --out window_speed.json
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from maskflow_cli.pipeline import ModelDenoiser, autocast_dtype
from maskflow_cli.sampling import sample_mgm
from maskflow_cli.schedules import SCHEDULERS
from maskflow_cli.transformer import PRESETS, MaskFlowTransformer, TransformerConfig


def time_window(preset: str, precision: str, frames: int, steps: int, repeats: int) -> dict:
    config = TransformerConfig(vocab_size=1000, frames=frames, height=8, width=8, **PRESETS[preset])
    model = MaskFlowTransformer(config).eval()
    dtype = autocast_dtype(torch.device("cpu"), precision)
    denoiser = ModelDenoiser(model, dtype)
    tokens = torch.zeros(1, frames, 8, 8, dtype=torch.long)
    known = torch.zeros_like(tokens, dtype=torch.bool)
    known[:, : frames // 2] = True  # extend-like: half the window is context
    seconds = []
    with torch.inference_mode():
        for i in range(repeats + 1):  # the first run warms up
            start = time.perf_counter()
            sample_mgm(denoiser, tokens, known, steps=steps, scheduler=SCHEDULERS["sigmoid"], generator=torch.Generator().manual_seed(i))
            seconds.append(time.perf_counter() - start)
    best = min(seconds[1:])
    return {"preset": preset, "parameters": sum(p.numel() for p in model.parameters()), "precision": precision,
            "autocast": str(dtype).removeprefix("torch.") if dtype else "float32", "frames": frames, "steps": steps,
            "seconds_per_window": round(best, 3), "ms_per_call": round(1000 * best / steps, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["small", "base"])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="window_speed.json")
    args = parser.parse_args()
    rows = [time_window(p, precision, args.frames, args.steps, args.repeats) for p in args.presets for precision in ("fp32", "auto")]
    machine = {"cpu": platform.processor() or platform.machine(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    print(f"{'preset':8} {'params':>8} {'dtype':>9} {'s/window':>9} {'ms/call':>8}")
    for r in rows:
        print(f"{r['preset']:8} {r['parameters'] / 1e6:7.1f}M {r['autocast']:>9} {r['seconds_per_window']:9.3f} {r['ms_per_call']:8.1f}")
    with open(args.out, "w") as f:
        json.dump({"machine": machine, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
