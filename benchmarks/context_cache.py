"""What a frozen context costs in quality and saves in time, for a bidirectional model.

A bidirectional model's context frames attend to the frames being generated, so their keys and values
change a little at every sampler step. ``context_cache="frozen"`` computes them once per window, at the
first step, and reuses them; every later step then runs the network on the frames to generate only.
This continues the same held-out Moving MNIST sequences (10 given -> 10 new frames) with the same
seed under "off" (the exact, uncached model) and "frozen", and reports the paired difference of the
per-sequence MSE/frame (mean and 95 % interval), the share of frames whose tokens came out the same,
and the process CPU seconds per generated frame of each (run interleaved, one batch at a time).
Prints a table:

    OMP_NUM_THREADS=1 python -m benchmarks context_cache --weights weights --sequences 32 --batch 8
"""

from __future__ import annotations

import argparse
import time

import torch

from maskflow_cli.defaults import DEFAULT_STEPS
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import FUTURE, GIVEN, sample_videos
from maskflow_cli.metrics import frame_mse, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, window_settings

from .common import dtype_name, test_clips
from .markdown import heading, machine, mean_ci, table

NAME = "context_cache"
SHARED = {"weights": None, "sequences": 32, "batch": 8, "seed": 0, "precision": "auto"}
MODES = ("off", "frozen")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="MGM steps (default: %(default)s)")
    parser.add_argument("--context", type=int, default=None, help="ar context (default: the library's)")


def run(args: argparse.Namespace) -> dict:
    pipes = {mode: MaskFlowPipeline.from_weights(args.weights, precision=args.precision, context_cache=mode) for mode in MODES}
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
    result = {"weights": args.weights or "(installed)", "autocast": dtype_name(first.dtype),
              "sequences": args.sequences, "sampler": options.sampler, "steps": options.steps,
              "context": settings.context, "stride": settings.stride, "seed": args.seed, "rows": rows,
              "mse_difference": summarize(mse["frozen"] - mse["off"]), "identical_frames": round(same, 3),
              "cpu_ratio": round(cpu["frozen"] / cpu["off"], 3)}
    for row in rows:
        print(f"{row['context_cache']:7} MSE/frame {mean_ci(row['mse']):>15}   {row['cpu_s_per_frame']:.3f} CPU-s/frame")
    print(f"frozen - off: {result['mse_difference']['mean']:+.1f} ± {result['mse_difference']['ci95']:.1f}; identical frames {same:.1%}; "
          f"CPU ratio {result['cpu_ratio']:.2f}")
    return result


def render(r: dict) -> str:
    d = r["mse_difference"]
    out = heading("Frozen context of a bidirectional model", r) + [
        (f"Machine: {machine(r['machine'])}. Continuation 10 → 10 of {r['sequences']} held-out sequences, {r['sampler']}, "
         f"{r['steps']} steps, ar context {r['context']}, seed {r['seed']}, both settings on the same sequences and seed. "
         f"Frozen minus uncached (exact) MSE/frame: {d['mean']:+.1f} ± {d['ci95']:.1f} (95 % interval of the paired difference); "
         f"CPU time frozen / uncached: {r['cpu_ratio']:.2f}; frames with identical tokens: {100 * r['identical_frames']:.1f} % "
         "(sampling diverges once one draw differs)."), ""]
    rows = [[x["context_cache"], mean_ci(x["mse"]), f"{x['cpu_s_per_frame']:.3f}"] for x in r["rows"]]
    return "\n".join(out + table(["context cache", "MSE/frame", "CPU-s / generated frame"], rows))
