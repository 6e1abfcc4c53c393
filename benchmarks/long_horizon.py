"""Drift far past the training length: the eval's horizon suite at any length (160, 1,600 frames).

MaskFlow's claim is that sliding windows roll out many times the training window without the video
degrading. This runs the library's own horizon suite (``evaluation.horizon_suite``: ``generate`` and
``extend`` from the first 10 real frames, with the chosen sampling settings) on held-out Moving MNIST
sequences of ``--frames`` frames, and keeps its per-16-frame-bin statistics (ink, crisp-pixel
fraction, digit blobs) for the real and both generated sets. The README shows them summarised per
tenth of the video. Prints one line per tenth and writes JSON:

    OMP_NUM_THREADS=1 python benchmarks/long_horizon.py --weights weights --frames 1600 --sequences 1 \\
        --out benchmarks/results/long_horizon.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import machine_facts

from maskflow_cli.engine import DEFAULT_STEPS, SamplingOptions
from maskflow_cli.evaluation import held_out_sequences, horizon_suite
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings

STATS = ("ink", "crisp", "blobs")


def spans(horizon: dict, parts: int = 10) -> list[dict]:
    """Per-bin statistics averaged over ``parts`` equal spans of bins: [{first, last, real, generate, extend}]."""
    bins = len(horizon["real"]["ink"])
    edges = [round(i * bins / parts) for i in range(parts + 1)]
    out = []
    for a, b in zip(edges, edges[1:]):
        if b > a:
            row = {"first_frame": a * horizon["bin"], "last_frame": min(b * horizon["bin"], horizon["frames"]) - 1}
            for name in ("real", "generate", "extend"):
                row[name] = {s: sum(horizon[name][s][a:b]) / (b - a) for s in STATS}
            out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=1600)
    parser.add_argument("--sequences", type=int, default=1)
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="MGM steps")
    parser.add_argument("--context", type=int, default=None, help="ar context (default: the library's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=1235, help="as the eval's horizon suite")
    parser.add_argument("--out", default="long_horizon.json")
    args = parser.parse_args()

    pipe = MaskFlowPipeline.from_weights(args.weights)
    settings = window_settings(pipe.window, context=args.context)
    options = SamplingOptions(steps=args.steps, seed=args.seed)
    real = held_out_sequences(None, args.frames, args.sequences, pipe.frame_format, args.data_seed)
    started = time.perf_counter()
    horizon = horizon_suite(pipe, real, settings, options, batch=args.sequences)
    result = {"benchmark": "long_horizon", "machine": machine_facts(pipe), "weights": args.weights or "(installed)",
              "seconds": round(time.perf_counter() - started, 1), "horizon": horizon, "spans": spans(horizon)}
    for row in result["spans"]:
        print(f"frames {row['first_frame']:>5}-{row['last_frame']:<5} " + "  ".join(
            f"{name} " + "/".join(f"{row[name][s]:.2f}" for s in STATS) for name in ("real", "generate", "extend")), flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
