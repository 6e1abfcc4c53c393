"""MGM against FM: continuation quality and wall time per generated frame at several step counts.

MaskFlow's claim: confidence-based MGM sampling reaches the quality of the flow-matching Euler
sampler (FM) with far fewer network calls (~20). Both samplers continue the same held-out Moving
MNIST sequences (10 given -> 10 new frames) with the same windows and seed. Prints a table, writes
JSON and, with matplotlib installed, a PNG of quality against NFE:

    python benchmarks/samplers.py --weights weights/ --sequences 32 --out benchmarks/results/samplers.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import machine_facts, test_clips

from maskflow_cli.evaluation import FUTURE, continuation_suite
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings

POINTS = [("mgm", 8), ("mgm", 12), ("mgm", 20), ("mgm", 32), ("fm", 50), ("fm", 100), ("fm", 250)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--points", nargs="+", default=[f"{s}:{k}" for s, k in POINTS], help="SAMPLER:STEPS pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="samplers.json")
    args = parser.parse_args()

    pipe = MaskFlowPipeline.from_weights(args.weights)
    settings = window_settings(pipe.window, "ar")
    clips = test_clips(pipe, 20, args.sequences)
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
    result = {"benchmark": "samplers", "machine": machine_facts(pipe), "weights": args.weights or "(installed)",
              "sequences": len(clips), "batch": args.batch, "mode": settings.mode, "context": settings.context,
              "stride": settings.stride, "seed": args.seed, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    try:
        from maskflow_cli.plots import write_sampler_plot

        write_sampler_plot(rows, Path(args.out).with_suffix(".png"))
    except ImportError:
        pass


if __name__ == "__main__":
    main()
