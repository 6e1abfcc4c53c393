"""What a frozen context costs in quality and saves in time, for a bidirectional model.

A bidirectional model's context frames attend to the frames being generated, so their keys and values
change a little at every sampler step. ``context_cache="frozen"`` computes them once per window, at the
first step, and reuses them; every later step then runs the network on the frames to generate only.
This continues the same held-out Moving MNIST sequences (10 given -> 10 new frames) with the same
seed under "off" (the exact, uncached model) and "frozen", and reports the paired difference of the
per-sequence MSE/frame (mean and 95 % interval), the share of frames whose tokens came out the same,
and the process CPU seconds per generated frame of each (run interleaved, one batch at a time).
Prints a table and writes JSON:

    OMP_NUM_THREADS=1 python benchmarks/context_cache.py --weights weights --sequences 32 \\
        --out benchmarks/results/context_cache.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import machine_facts, test_clips

from maskflow_cli.engine import DEFAULT_STEPS, SamplingOptions
from maskflow_cli.evaluation import FUTURE, GIVEN, sample_videos
from maskflow_cli.metrics import frame_mse, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, window_settings

MODES = ("off", "frozen")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="MGM steps")
    parser.add_argument("--context", type=int, default=None, help="ar context (default: the library's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="context_cache.json")
    args = parser.parse_args()

    pipes = {mode: MaskFlowPipeline.from_weights(args.weights, context_cache=mode) for mode in MODES}
    first = pipes[MODES[0]]
    options = SamplingOptions(steps=args.steps, seed=args.seed)
    settings = window_settings(first.window, context=args.context)
    plan = plan_extend(GIVEN, FUTURE, settings)
    clips = test_clips(first, GIVEN + FUTURE, args.sequences)
    videos = {mode: [] for mode in MODES}
    cpu = {mode: 0.0 for mode in MODES}
    for start in range(0, args.sequences, args.batch):  # interleaved batch by batch
        given = clips[start : start + args.batch, :GIVEN]
        for mode in MODES:
            before = time.process_time()
            video, _ = sample_videos(pipes[mode], plan, options, given, args.batch)
            cpu[mode] += time.process_time() - before
            videos[mode].append(video[:, GIVEN:])
    target = clips[:, GIVEN:]
    mse = {mode: frame_mse(torch.cat(videos[mode]), target).mean(1) for mode in MODES}  # [N] per sequence
    same = (torch.cat(videos["off"]) == torch.cat(videos["frozen"])).flatten(2).all(2).float().mean().item()
    rows = [{"context_cache": mode, "mse": summarize(mse[mode]), "cpu_s_per_frame": round(cpu[mode] / (args.sequences * FUTURE), 3)} for mode in MODES]
    result = {"benchmark": "context_cache", "machine": machine_facts(first), "weights": args.weights or "(installed)",
              "sequences": args.sequences, "sampler": options.sampler, "steps": options.steps, "context": settings.context,
              "stride": settings.stride, "seed": args.seed, "rows": rows, "mse_difference": summarize(mse["frozen"] - mse["off"]),
              "identical_frames": round(same, 3), "cpu_ratio": round(cpu["frozen"] / cpu["off"], 3)}
    for row in rows:
        print(f"{row['context_cache']:7} MSE/frame {row['mse']['mean']:7.1f} ± {row['mse']['ci95']:5.1f}   {row['cpu_s_per_frame']:.3f} CPU-s/frame")
    d = result["mse_difference"]
    print(f"frozen - off: {d['mean']:+.1f} ± {d['ci95']:.1f}; identical frames {same:.1%}; CPU ratio {result['cpu_ratio']:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
