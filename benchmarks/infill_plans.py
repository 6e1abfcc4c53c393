"""Infill plans compared: both-sided (the default) against forward-from-the-left, and the cross-fade.

`maskflow infill` fills a gap between known frames with windows of the model's W frames. The
default plan ("both") gives every window known frames on both sides of the gap whenever the window
can hold them (gap ≤ W − 2) and fills a longer gap from both ends toward the middle, finishing with
a both-sided window; the earlier plan ("left") fills forward from the left with `--context` known
frames and shows the right side only to its last window. On the eval's infill suite (20-frame clips,
gaps 8:12 and 6:14 for W = 16) the two plans are the same window, so this script measures gaps in
the middle of longer held-out Moving MNIST clips, where they differ, scored as the eval scores
infill (per-frame MSE summed over pixels in [0, 1], PSNR, SSIM) next to repeating the nearest known
frame and a linear cross-fade. Each plan runs through the same batched engine as `maskflow eval`.
The result is saved after every gap, so a run cut short keeps its rows:

    OMP_NUM_THREADS=1 python -m benchmarks infill_plans --weights weights --sequences 8 --batch 8 --steps 8 --gaps 8
"""

from __future__ import annotations

import argparse
import time

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import INFILL_CLIP, INFILL_GAPS, infill_baselines, sample_videos
from maskflow_cli.metrics import scores
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import INFILL_ORDERS, plan_infill, window_settings

from .common import dtype_name, test_clips
from .markdown import heading, machine, table

NAME = "infill_plans"
SHARED = {"weights": None, "sequences": 16, "batch": 16, "seed": 0, "precision": "auto"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=40, help="frames per test clip")
    parser.add_argument("--gaps", type=int, nargs="+", default=[8, 12, 24], help="gap lengths, each centred in the clip")
    parser.add_argument("--steps", type=int, default=20, help="MGM steps")
    parser.add_argument("--context", type=int, default=None, help="ar context of the left-first plan (default: the library's)")
    parser.add_argument("--data-seed", type=int, default=1236, help="the held-out clips")


def _row(r: dict) -> dict:
    return {"mse": r["mse"]["mean"], "mse_ci95": r["mse"]["ci95"], "psnr": r["psnr"]["mean"], "ssim": r["ssim"]["mean"]}


def run(args: argparse.Namespace) -> dict:
    pipe = MaskFlowPipeline.from_weights(args.weights, precision=args.precision)
    settings = window_settings(pipe.window, "ar", context=args.context)
    options = SamplingOptions("mgm", args.steps, args.seed)
    clips = test_clips(pipe, args.frames, args.sequences, args.data_seed)  # [N,T,Y,X,C]
    eval_suite_same = all(
        plan_infill(INFILL_CLIP, [((INFILL_CLIP - g) // 2, (INFILL_CLIP - g) // 2 + g)], settings, "both")
        == plan_infill(INFILL_CLIP, [((INFILL_CLIP - g) // 2, (INFILL_CLIP - g) // 2 + g)], settings, "left")
        for g in INFILL_GAPS
    )
    result = {"weights": args.weights or "(installed)", "autocast": dtype_name(pipe.dtype),
              "sequences": len(clips), "frames": args.frames, "steps": args.steps, "sampler": "mgm",
              "window": settings.window, "context": settings.context, "stride": settings.stride, "seed": args.seed,
              "data_seed": args.data_seed, "eval_suite_plans_identical": eval_suite_same, "rows": []}
    for gap in args.gaps:
        a = (args.frames - gap) // 2
        b = a + gap
        target = clips[:, a:b]
        row = {"gap": gap, "range": [a, b]}
        for order in INFILL_ORDERS:
            plan = plan_infill(args.frames, [(a, b)], settings, order)
            both_sided = sum(len(w.keep) for w in plan.windows if min(w.context) < min(w.keep) and max(w.context) > max(w.keep))
            started = time.perf_counter()
            video, nfe = sample_videos(pipe, plan, options, clips, args.batch)  # the batch at clip i samples with seed + i
            row[order] = {**_row(scores(video[:, a:b], target)), "windows": len(plan.windows), "nfe": nfe,
                          "frames_seeing_both_sides": both_sided, "seconds": round(time.perf_counter() - started, 1)}
            print(f"gap {gap:3} {order:5} MSE {row[order]['mse']:7.1f} ± {row[order]['mse_ci95']:5.1f}  PSNR {row[order]['psnr']:6.2f}  "
                  f"SSIM {row[order]['ssim']:.3f}  windows {len(plan.windows)}  both-sided frames {both_sided}/{gap}", flush=True)
        for name, video in infill_baselines(clips, a, b).items():
            row[name] = _row(scores(video, target))
        print(f"gap {gap:3} crossfade MSE {row['crossfade']['mse']:7.1f}  repeat_nearest {row['repeat_nearest']['mse']:7.1f}", flush=True)
        result["rows"].append(row)
        args.save(result)
    return result


def render(r: dict) -> str:
    out = heading("Infill plans", r) + [
        (f"Machine: {machine(r['machine'])}; weights: {r['weights']}; a gap centred in {r['frames']}-frame test clips, "
         f"{r['sequences']} sequences, MGM {r['steps']} steps, window {r['window']}, context {r['context']}, stride {r['stride']}, seed {r['seed']}. "
         f"both: known frames on both sides of every window that can hold them (the default); left: forward from the left, "
         f"the right side in the last window only. On the eval's infill suite the two plans are "
         f"{'the same' if r['eval_suite_plans_identical'] else 'different'}."), ""]
    rows = []
    for x in r["rows"]:
        for name in INFILL_ORDERS:
            y = x[name]
            rows.append([f"{x['gap']}", f"maskflow, {name}", f"{y['mse']:.1f} ± {y['mse_ci95']:.1f}", f"{y['psnr']:.2f}", f"{y['ssim']:.3f}",
                         f"{y['frames_seeing_both_sides']} / {x['gap']}", f"{y['windows']}"])
        for name in ("crossfade", "repeat_nearest"):
            y = x[name]
            rows.append([f"{x['gap']}", name, f"{y['mse']:.1f} ± {y['mse_ci95']:.1f}", f"{y['psnr']:.2f}", f"{y['ssim']:.3f}", "", ""])
    return "\n".join(out + table(["gap", "method", "MSE/frame", "PSNR", "SSIM", "frames made seeing both sides", "windows"], rows))
