"""MGM against FM: continuation quality and wall time per generated frame at several step counts.

MaskFlow's claim: confidence-based MGM sampling reaches the quality of the flow-matching Euler
sampler (FM) with far fewer network calls (~20). Both samplers continue the same held-out Moving
MNIST sequences (10 given -> 10 new frames) with the same windows and seed. Prints a table and,
with matplotlib installed, writes a PNG of quality against NFE beside the JSON:

    OMP_NUM_THREADS=1 python -m benchmarks samplers --weights weights --sequences 32
"""

from __future__ import annotations

import argparse
import time

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import FUTURE, GIVEN, continuation_suite
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings

from .common import dtype_name, test_clips
from .markdown import heading, machine, table

NAME = "samplers"
SHARED = {"weights": None, "sequences": 32, "batch": 16, "seed": 0, "precision": "auto"}
POINTS = [("mgm", 8), ("mgm", 12), ("mgm", 20), ("mgm", 32), ("fm", 50), ("fm", 100), ("fm", 250)]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--points", nargs="+", default=[f"{s}:{k}" for s, k in POINTS], metavar="SAMPLER:STEPS")


def run(args: argparse.Namespace) -> dict:
    pipe = MaskFlowPipeline.from_weights(args.weights, precision=args.precision)
    settings = window_settings(pipe.window, "ar")
    clips = test_clips(pipe, GIVEN + FUTURE, args.sequences)
    rows = []
    for point in args.points:
        sampler, steps = point.split(":")
        started = time.perf_counter()
        r = continuation_suite(pipe, clips, settings, SamplingOptions(sampler, int(steps), args.seed), args.batch)
        seconds = time.perf_counter() - started
        rows.append({"sampler": sampler, "steps": int(steps), "nfe": r["nfe_per_sequence"],
                     "mse": r["maskflow"]["mse"]["mean"], "mse_ci95": r["maskflow"]["mse"]["ci95"],
                     "psnr": r["maskflow"]["psnr"]["mean"], "ssim": r["maskflow"]["ssim"]["mean"],
                     "seconds_per_frame": round(seconds / (FUTURE * len(clips)), 4)})
        print(f"{sampler:4} {steps:>4} steps  NFE {rows[-1]['nfe']:4}  MSE {rows[-1]['mse']:7.1f} ± {rows[-1]['mse_ci95']:5.1f}  "
              f"PSNR {rows[-1]['psnr']:6.2f}  SSIM {rows[-1]['ssim']:.3f}  {rows[-1]['seconds_per_frame']:.3f} s/frame", flush=True)
    try:
        from maskflow_cli.plots import write_sampler_plot

        write_sampler_plot(rows, args.out.with_suffix(".png"))
    except ImportError:
        pass
    return {"weights": args.weights or "(installed)", "autocast": dtype_name(pipe.dtype),
            "sequences": len(clips), "batch": args.batch, "mode": settings.mode,
            "context": settings.context, "stride": settings.stride, "seed": args.seed, "rows": rows}


def render(r: dict) -> str:
    out = heading("MGM against FM", r) + [
        f"Machine: {machine(r['machine'])}; continuation 10 → 10 on {r['sequences']} test sequences, {r['mode']} (context {r['context']}, "
        f"stride {r['stride']}), seed {r['seed']}.", ""]
    rows = [[x["sampler"], x["steps"], x["nfe"], f"{x['mse']:.1f} ± {x['mse_ci95']:.1f}", f"{x['psnr']:.2f}", f"{x['ssim']:.3f}",
             f"{x['seconds_per_frame']:.3f}"] for x in r["rows"]]
    return "\n".join(out + table(["sampler", "steps", "NFE / sequence", "MSE/frame", "PSNR", "SSIM", "s / generated frame"], rows))
