"""Sampler settings for a trained model: continuation quality against network passes for each setting.

One variable at a time around a base point (MGM, 4 steps, Gumbel noise 4.5 annealed to zero,
temperature 1, ar context 6, no guidance): MGM step count, the noise scale on the confidence scores,
random commit order (noise so large that confidence no longer matters), annealing the noise or not, the
sampling temperature, the context length of each sliding window, FM at about the same number of
network passes, and classifier-free guidance on the context (``guidance=W``: ``SamplingOptions.guidance``,
whose uncond passes count as network passes). ``--base``
moves the base point and ``--points`` replaces the list of changes (each KEY=VALUE, its question
named by the key). Every point continues the same held-out Moving MNIST sequences (10 given -> 10
new frames) with the same seed, so differences between points are paired: each row has its mean
per-sequence difference to the base point with a 95 % interval. Prints one line per point as it
finishes, and rewrites the JSON and (with matplotlib) a PNG of MSE against network passes beside it after each
point, so a run stopped early keeps what it measured:

    OMP_NUM_THREADS=1 python -m benchmarks sampler_tuning --weights weights --sequences 32 --batch 16
"""

from __future__ import annotations

import argparse
import time

import torch

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import FUTURE, GIVEN, sample_videos
from maskflow_cli.metrics import frame_mse, scores, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, window_settings

from .common import dtype_name, in_checkout, test_clips
from .markdown import heading, machine, table

NAME = "sampler_tuning"
SHARED = {"weights": None, "sequences": 16, "batch": 16, "seed": 0, "precision": "auto"}
BASE = {"sampler": "mgm", "steps": 4, "noise": 4.5, "anneal": True, "temperature": 1.0, "context": 6, "guidance": 0.0}
RANDOM_ORDER = 1e9  # noise this large ranks the masked tokens in random order
# (group, changes from BASE); the group names the question a point answers
POINTS = [  # most telling first: a run cut short still answers the main questions
    ("steps", {}), ("steps", {"steps": 8}), ("context", {"context": 8}), ("steps", {"steps": 2}), ("fm", {"sampler": "fm"}),
    ("order", {"noise": RANDOM_ORDER}), ("noise", {"noise": 0.0}), ("temperature", {"temperature": 0.7}),
    ("anneal", {"anneal": False}), ("noise", {"noise": 12.0}), ("steps", {"steps": 6}), ("fm", {"sampler": "fm", "steps": 8}),
    ("context", {"context": 12}), ("temperature", {"temperature": 1.3}), ("steps", {"steps": 20}), ("noise", {"noise": 2.0}),
]


def setting(text: str) -> tuple[str, object]:
    """KEY=VALUE of a sampler setting, the value parsed as BASE's value of that key."""
    key, _, value = text.partition("=")
    if key not in BASE or not value:
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE with KEY one of {', '.join(BASE)}")
    kind = type(BASE[key])
    if kind is bool:
        if value.lower() not in ("true", "false"):
            raise argparse.ArgumentTypeError(f"{text!r}: {key} is true or false")
        return key, value.lower() == "true"
    try:
        return key, kind(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {key} takes a {kind.__name__}") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base", nargs="+", type=setting, default=[], metavar="KEY=VALUE", help=f"move the base point {BASE}")
    parser.add_argument("--points", nargs="+", type=setting, default=None, metavar="KEY=VALUE",
                        help="the points after the base, one change each (default: the built-in list)")
    parser.add_argument("--groups", nargs="+", default=None, help="only the points of these questions (steps, noise, ...)")
    parser.add_argument("--first", type=int, default=None, help="only the first N points (the base first)")


def sampling_options(point: dict, seed: int) -> SamplingOptions:
    """The library's options for one point (MGM's noise and annealing only for MGM)."""
    mgm = point["sampler"] == "mgm"
    return SamplingOptions(point["sampler"], point["steps"], seed, noise=point["noise"] if mgm else None,
                           temperature=point["temperature"], anneal=point["anneal"] or not mgm, guidance=point["guidance"])


def sequence_mse(pipe: MaskFlowPipeline, clips, settings, options: SamplingOptions, batch: int):
    """Continue every clip GIVEN -> FUTURE frames with the engine, as ``continuation_suite`` does ->
    per-sequence MSE/frame float [N], the scores dict, network passes per sequence (uncond passes included)."""
    video, nfe = sample_videos(pipe, plan_extend(GIVEN, FUTURE, settings), options, clips[:, :GIVEN], batch)
    target = clips[:, GIVEN : GIVEN + FUTURE]
    return frame_mse(video[:, GIVEN:], target).mean(1), scores(video[:, GIVEN:], target), nfe


def chosen_points(args: argparse.Namespace) -> list[tuple[str, dict]]:
    """(group, changes from the base) of every point to measure, the base first."""
    points = POINTS if args.points is None else [("steps", {})] + [(key, {key: value}) for key, value in args.points]
    points = [(group, change) for group, change in points if not args.groups or group in args.groups or not change]
    return points[: args.first]


def write_plot(result: dict, path) -> None:
    """The PNG of MSE against network passes so far (rewritten after every point; needs matplotlib)."""
    try:
        from maskflow_cli.plots import write_tuning_plot
    except ImportError:
        return
    write_tuning_plot(result, path)


def run(args: argparse.Namespace) -> dict:
    pipe = MaskFlowPipeline.from_weights(args.weights, precision=args.precision)
    clips = test_clips(pipe, GIVEN + FUTURE, args.sequences)
    base = {**BASE, **dict(args.base)}
    plot = args.out.with_suffix(".png")
    result = {"weights": args.weights or "(installed)", "autocast": dtype_name(pipe.dtype),
              "sequences": len(clips), "batch": args.batch, "seed": args.seed, "base": base,
              "plot": in_checkout(plot), "rows": []}
    result["black_mse"] = summarize(frame_mse(torch.zeros_like(clips[:, GIVEN:]), clips[:, GIVEN:]).mean(1))["mean"]
    base_mse = None  # per-sequence MSE of the base point, for paired differences
    for group, change in chosen_points(args):
        point = {**base, **change}
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
        args.save(result)
        write_plot(result, plot)
        print(f"{group:11} {row['sampler']} steps {row['steps']:3} noise {row['noise']:g} anneal {row['anneal']:d} "
              f"T {row['temperature']:g} context {row['context']:2} guidance {row['guidance']:g}  passes {row['nfe']:5}  MSE {row['mse']:6.1f} ± {row['mse_ci95']:4.1f}  "
              f"vs base {diff['mean']:+6.1f} ± {diff['ci95']:4.1f}  PSNR {row['psnr']:5.2f}  SSIM {row['ssim']:.3f}  "
              f"{row['seconds_per_frame']:.3f} s/frame", flush=True)
    return result


def render(r: dict) -> str:
    b = r["base"]
    out = heading(f"Sampler settings around MGM {b['steps']} steps, context {b['context']}", r) + [
        (f"Machine: {machine(r['machine'])}; continuation 10 → 10 on {r['sequences']} test sequences, seed {r['seed']}, "
         f"one setting changed at a time from MGM {b['steps']} steps, Gumbel noise {b['noise']:g} "
         f"{'annealed to 0' if b['anneal'] else 'not annealed'}, temperature {b['temperature']:g}, ar context "
         f"{b['context']}, guidance {b.get('guidance', 0.0):g}; all-black frames score {r['black_mse']:.1f}. \"vs base\" is the mean per-sequence difference to "
         "the base point on the same sequences and seed (negative: better), with its 95 % interval. Noise 1e+09 ranks the "
         "masked tokens in random order. Network passes count guidance's uncond passes; results measured before guidance "
         f"existed ran without it (0). Plot: `{r['plot']}`."), ""]
    rows = [[x["group"], x["sampler"], x["steps"], f"{x['noise']:g}" if x["sampler"] == "mgm" else "–",
             ("yes" if x["anneal"] else "no") if x["sampler"] == "mgm" else "–", f"{x['temperature']:g}", x["context"], f"{x.get('guidance', 0.0):g}", x["nfe"],
             f"{x['mse']:.1f} ± {x['mse_ci95']:.1f}", f"{x['mse_vs_base']:+.1f} ± {x['mse_vs_base_ci95']:.1f}",
             f"{x['psnr']:.2f}", f"{x['ssim']:.3f}", f"{x['seconds_per_frame']:.2f}"]
            for x in r["rows"]]
    return "\n".join(out + table(["question", "sampler", "steps", "noise", "annealed", "temperature", "context", "guidance",
                                  "network passes / sequence", "MSE/frame",
                                  "vs base", "PSNR", "SSIM", "s / generated frame"], rows))
