"""Drift far past the training length: the eval's horizon suite at any length (160, 1,600 frames).

MaskFlow's claim is that sliding windows roll out many times the training window without the video
degrading. This runs the library's own horizon suite (``evaluation.horizon_suite``: ``generate`` and
``extend`` from the first 10 real frames, with the chosen sampling settings) on held-out Moving MNIST
sequences of ``--frames`` frames, and keeps its per-16-frame-bin statistics (ink, crisp-pixel
fraction, digit blobs) for the real and both generated sets; the results page shows them summarised
per tenth of the video. Prints one line per tenth:

    OMP_NUM_THREADS=1 python -m benchmarks long_horizon --weights weights --frames 1600 --sequences 1

``--guidance``, ``--temperature`` and ``--context`` default to the library's sampling defaults; ``--runs extend`` leaves
``generate`` out (half the time).
"""

from __future__ import annotations

import argparse
import time

from maskflow_cli.defaults import DEFAULT_ANCHOR, DEFAULT_GUIDANCE, DEFAULT_STEPS
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import held_out_sequences, horizon_suite
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings

from .common import dtype_name
from .eval_results import tag
from .markdown import heading, machine, table

NAME = "long_horizon"
SHARED = {"weights": None, "sequences": 1, "seed": 0, "precision": "auto"}
STATS = ("ink", "crisp", "blobs")
RUNS = ("generate", "extend")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=1600)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="MGM steps (default: %(default)s)")
    parser.add_argument("--context", type=int, default=None, help="ar context (default: the library's)")
    parser.add_argument("--guidance", type=float, default=DEFAULT_GUIDANCE, help="guidance w (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=None, help="MGM temperature (default: the library's)")
    parser.add_argument("--anchor", type=float, default=DEFAULT_ANCHOR, help="guidance anchor gain (default: %(default)s)")
    parser.add_argument("--runs", nargs="+", choices=RUNS, default=list(RUNS), help="which rollouts to make (default: both)")
    parser.add_argument("--data-seed", type=int, default=1235, help="the held-out sequences, as the eval's horizon suite")


def spans(horizon: dict, parts: int = 10) -> list[dict]:
    """Per-bin statistics averaged over ``parts`` equal spans of bins: [{first, last, real, generate, extend}]."""
    bins = len(horizon["real"]["ink"])
    edges = [round(i * bins / parts) for i in range(parts + 1)]
    out = []
    for a, b in zip(edges, edges[1:]):
        if b > a:
            row = {"first_frame": a * horizon["bin"], "last_frame": min(b * horizon["bin"], horizon["frames"]) - 1}
            for name in ("real", *(n for n in RUNS if n in horizon)):
                row[name] = {s: sum(horizon[name][s][a:b]) / (b - a) for s in STATS}
            out.append(row)
    return out


def run(args: argparse.Namespace) -> dict:
    pipe = MaskFlowPipeline.from_weights(args.weights, precision=args.precision)
    settings = window_settings(pipe.window, context=args.context)
    options = SamplingOptions(steps=args.steps, seed=args.seed, guidance=args.guidance, temperature=args.temperature, anchor=args.anchor)
    real = held_out_sequences(None, args.frames, args.sequences, pipe.frame_format, args.data_seed)
    started = time.perf_counter()
    horizon = horizon_suite(pipe, real, settings, options, batch=args.sequences, runs=args.runs)
    result = {"weights": args.weights or "(installed)", "autocast": dtype_name(pipe.dtype),
              "window": pipe.window, "seconds": round(time.perf_counter() - started, 1), "horizon": horizon,
              "spans": spans(horizon)}
    for row in result["spans"]:
        print(f"frames {row['first_frame']:>5}-{row['last_frame']:<5} " + "  ".join(
            f"{name} " + "/".join(f"{row[name][s]:.2f}" for s in STATS) for name in row if name in ("real", *RUNS)), flush=True)
    return result


def render(r: dict) -> str:
    h = r["horizon"]
    names = ["real", *(n for n in RUNS if n in h)]
    made = h[names[1]]
    out = heading("Far past the training length", r) + [
        (f"{h['frames']}-frame videos ({h['frames'] / r['window']:g}× the {r['window']}-frame training window), {h['sequences']} held-out sequence(s), "
         f"{tag(made)}; {r['seconds']:.0f} s on {machine(r['machine'])}. Mean of the {h['bin']}-frame bins in each tenth of the "
         "video, as ink / crisp / blobs (see the horizon table of the eval):"), ""]
    rows = [[f"{s['first_frame']}–{s['last_frame']}", *("/".join(f"{s[n][k]:.{d}f}" for k, d in (("ink", 0), ("crisp", 2), ("blobs", 2)))
                                                     for n in names)] for s in r["spans"]]
    return "\n".join(out + table(["frames", *names], rows))
