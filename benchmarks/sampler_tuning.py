"""Sampler settings for a trained model: continuation quality against NFE for each setting.

One variable at a time around a base point (MGM, 4 steps, Gumbel noise 4.5 annealed to zero,
temperature 1, ar context 6): MGM step count, the noise scale on the confidence scores, random commit
order (noise so large that confidence no longer matters), annealing the noise or not, the sampling
temperature, the context length of each sliding window, and FM at about the same NFE. Every point
continues the same held-out Moving MNIST sequences (10 given -> 10 new frames) with the same seed,
so differences between points are paired: each row has its mean per-sequence difference to the base
point with a 95 % interval. Prints one line per point as it finishes, and rewrites the JSON and (with
matplotlib) a PNG of MSE against NFE after each point, so a run stopped early keeps what it measured:

    OMP_NUM_THREADS=1 python benchmarks/sampler_tuning.py --weights weights --sequences 32 --batch 16 \\
        --out benchmarks/results/sampler_tuning.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from common import machine_facts, test_clips

from maskflow_cli.evaluation import FUTURE, GIVEN, sample_videos
from maskflow_cli.metrics import frame_mse, scores, summarize
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, window_settings

BASE = {"sampler": "mgm", "steps": 4, "noise": 4.5, "anneal": True, "temperature": 1.0, "context": 6}
RANDOM_ORDER = 1e9  # noise this large ranks the masked tokens in random order
# (group, changes from BASE); the group names the question a point answers
POINTS = [  # most telling first: a run cut short still answers the main questions
    ("steps", {}), ("steps", {"steps": 8}), ("context", {"context": 8}), ("steps", {"steps": 2}), ("fm", {"sampler": "fm"}),
    ("order", {"noise": RANDOM_ORDER}), ("noise", {"noise": 0.0}), ("temperature", {"temperature": 0.7}),
    ("anneal", {"anneal": False}), ("noise", {"noise": 12.0}), ("steps", {"steps": 6}), ("fm", {"sampler": "fm", "steps": 8}),
    ("context", {"context": 12}), ("temperature", {"temperature": 1.3}), ("steps", {"steps": 20}), ("noise", {"noise": 2.0}),
]


def sampling_options(point: dict, seed: int) -> SamplingOptions:
    """The library's options for one point (MGM's noise and annealing only for MGM)."""
    mgm = point["sampler"] == "mgm"
    return SamplingOptions(point["sampler"], point["steps"], seed, noise=point["noise"] if mgm else None,
                           temperature=point["temperature"], anneal=point["anneal"] or not mgm)


def sequence_mse(pipe: MaskFlowPipeline, clips, settings, options: SamplingOptions, batch: int):
    """Continue every clip GIVEN -> FUTURE frames with the engine, as ``continuation_suite`` does ->
    per-sequence MSE/frame float [N], the scores dict, NFE per sequence."""
    video, nfe = sample_videos(pipe, plan_extend(GIVEN, FUTURE, settings), options, clips[:, :GIVEN], batch)
    target = clips[:, GIVEN : GIVEN + FUTURE]
    return frame_mse(video[:, GIVEN:], target).mean(1), scores(video[:, GIVEN:], target), nfe


def write_plot(result: dict, path: Path) -> None:
    """The PNG of MSE against NFE so far (rewritten after every point; needs matplotlib)."""
    try:
        from maskflow_cli.plots import write_tuning_plot
    except ImportError:
        return
    write_tuning_plot(result, path)


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
    result["black_mse"] = summarize(frame_mse(torch.zeros_like(clips[:, GIVEN:]), clips[:, GIVEN:]).mean(1))["mean"]
    base_mse = None  # per-sequence MSE of the base point, for paired differences
    for group, change in POINTS:
        if args.groups and group not in args.groups and change:
            continue
        point = {**BASE, **change}
        settings = window_settings(pipe.window, "ar", context=point["context"])
        started = time.perf_counter()
        mse, m, nfe = sequence_mse(pipe, clips, settings, sampling_options(point, args.seed), args.batch)
        seconds = time.perf_counter() - started
        base_mse = mse if not change else base_mse
        diff = summarize(mse - base_mse)
        row = {"group": group, **point, "nfe": nfe, "mse": m["mse"]["mean"], "mse_ci95": m["mse"]["ci95"],
               "mse_vs_base": diff["mean"], "mse_vs_base_ci95": diff["ci95"],
               "mse_per_frame": m["mse_per_frame"], "psnr": m["psnr"]["mean"], "ssim": m["ssim"]["mean"],
               "seconds_per_frame": round(seconds / (FUTURE * len(clips)), 4)}
        result["rows"].append(row)
        out.write_text(json.dumps(result, indent=2) + "\n")
        write_plot(result, out.with_suffix(".png"))
        print(f"{group:11} {row['sampler']} steps {row['steps']:3} noise {row['noise']:g} anneal {row['anneal']:d} "
              f"T {row['temperature']:g} context {row['context']:2}  NFE {row['nfe']:5}  MSE {row['mse']:6.1f} ± {row['mse_ci95']:4.1f}  "
              f"vs base {diff['mean']:+6.1f} ± {diff['ci95']:4.1f}  PSNR {row['psnr']:5.2f}  SSIM {row['ssim']:.3f}  "
              f"{row['seconds_per_frame']:.3f} s/frame", flush=True)


if __name__ == "__main__":
    main()
