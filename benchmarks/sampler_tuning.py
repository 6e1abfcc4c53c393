"""Sampler settings for a trained model: continuation quality against NFE for each setting.

One variable at a time around a base point (MGM, 12 steps, Gumbel noise 4.5 annealed to zero,
temperature 1, ar context 8): MGM step count, the noise scale on the confidence scores, random commit
order (noise so large that confidence no longer matters), the sampling temperature, the context length of each sliding window, and FM at about the same NFE. Every point
continues the same held-out Moving MNIST sequences (10 given -> 10 new frames) with the same seed,
so differences between points are paired. Prints one line per point as it finishes, rewrites the
JSON after each point, and with matplotlib writes a PNG of MSE against NFE:

    OMP_NUM_THREADS=1 python benchmarks/sampler_tuning.py --weights weights --sequences 16 \\
        --out benchmarks/results/sampler_tuning.json
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

BASE = {"sampler": "mgm", "steps": 12, "noise": 4.5, "temperature": 1.0, "context": 8}
RANDOM_ORDER = 1e9  # noise this large ranks the masked tokens in random order
# (group, changes from BASE); the group names the question a point answers
POINTS = [  # most telling first: a run cut short still answers the main questions
    ("steps", {}), ("steps", {"steps": 8}), ("fm", {"sampler": "fm", "steps": 12}),
    ("order", {"noise": RANDOM_ORDER}), ("noise", {"noise": 0.0}), ("steps", {"steps": 20}),
    ("temperature", {"temperature": 0.7}), ("context", {"context": 4}),
    ("noise", {"noise": 12.0}), ("context", {"context": 12}), ("temperature", {"temperature": 1.3}),
    ("fm", {"sampler": "fm", "steps": 50}),
]


def sampling_options(point: dict, seed: int) -> SamplingOptions:
    """The library's options for one point (MGM's noise only for MGM)."""
    noise = point["noise"] if point["sampler"] == "mgm" else None
    return SamplingOptions(point["sampler"], point["steps"], seed, noise=noise, temperature=point["temperature"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--sequences", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--groups", nargs="+", default=None, help="only the points of these groups (steps, noise, ...)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="sampler_tuning.json")
    args = parser.parse_args()

    pipe = MaskFlowPipeline.from_weights(args.weights)
    clips = test_clips(pipe, 20, args.sequences)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {"benchmark": "sampler_tuning", "machine": machine_facts(pipe), "weights": args.weights or "(installed)",
              "sequences": len(clips), "batch": args.batch, "seed": args.seed, "base": BASE, "rows": []}
    for group, change in POINTS:
        if args.groups and group not in args.groups:
            continue
        point = {**BASE, **change}
        settings = window_settings(pipe.window, "ar", context=point["context"])
        started = time.perf_counter()
        r = continuation_suite(pipe, clips, settings, sampling_options(point, args.seed), args.batch)
        seconds = time.perf_counter() - started
        m = r["maskflow"]
        row = {"group": group, **point, "nfe": r["nfe_per_sequence"], "mse": m["mse"]["mean"], "mse_ci95": m["mse"]["ci95"],
               "mse_per_frame": m["mse_per_frame"], "psnr": m["psnr"]["mean"], "ssim": m["ssim"]["mean"],
               "seconds_per_frame": round(seconds / (FUTURE * len(clips)), 4)}
        result["rows"].append(row)
        result["black_mse"] = r["black"]["mse"]["mean"]
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"{group:11} {row['sampler']} steps {row['steps']:3} noise {row['noise']:g} "
              f"T {row['temperature']:g} context {row['context']:2}  NFE {row['nfe']:3}  MSE {row['mse']:6.1f} ± {row['mse_ci95']:4.1f}  "
              f"PSNR {row['psnr']:5.2f}  SSIM {row['ssim']:.3f}  {row['seconds_per_frame']:.3f} s/frame", flush=True)
    try:
        from maskflow_cli.plots import write_tuning_plot

        write_tuning_plot(result, out.with_suffix(".png"))
    except ImportError:
        pass


if __name__ == "__main__":
    main()
