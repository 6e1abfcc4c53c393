"""Seconds per generated frame and peak memory of `maskflow generate` for videos of growing length.

Each length runs the real command in its own process, so its peak resident memory (ru_maxrss of
that process) is measured alone. Time should grow linearly with length and memory stay flat: frames
are written as soon as they are final and only one window's tokens are held. Prints a table:

    python -m benchmarks length_scaling --weights weights --frames 16 160 1600
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from maskflow_cli.defaults import DEFAULT_STEPS

from .common import run_maskflow
from .markdown import heading, machine, table

NAME = "length_scaling"
SHARED = {"weights": None, "seed": 0}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 160, 1600], help="the video lengths")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="MGM steps (default: %(default)s)")


def generate(args: argparse.Namespace, frames: int, folder: str) -> dict:
    output = os.path.join(folder, f"generate_{frames}.mkv")
    weights = ["--weights", args.weights] if args.weights else []
    run = run_maskflow(["generate", "-o", output, "--frames", str(frames), "--steps", str(args.steps), "--seed", str(args.seed),
                        "--json", "--overwrite", *weights])
    summary = json.loads(run.stdout)
    return {"frames": frames, "nfe": summary["nfe"], "windows": summary["windows"], "seconds": round(run.wall_s, 2),
            "cpu_seconds": round(run.cpu_s, 2), "seconds_per_frame": round(run.wall_s / frames, 4),
            "peak_rss_mib": round(run.peak_rss_mib, 1), "output_bytes": os.path.getsize(output)}


def run(args: argparse.Namespace) -> dict:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for frames in args.frames:
            rows.append(generate(args, frames, folder))
            r = rows[-1]
            print(f"{frames:6} frames  {r['windows']:4} windows  NFE {r['nfe']:6}  {r['seconds']:8.1f} s  "
                  f"{r['seconds_per_frame']:.3f} s/frame  peak {r['peak_rss_mib']:.0f} MiB", flush=True)
    return {"weights": args.weights or "(installed)", "steps": args.steps, "mode": "ar (defaults)", "rows": rows}


def render(r: dict) -> str:
    out = heading("Video length", r) + [f"Machine: {machine(r['machine'])}; `maskflow generate`, {r['steps']} steps, {r['mode']}.", ""]
    rows = [[x["frames"], x["windows"], x["nfe"], f"{x['seconds']:.1f}", f"{x['seconds_per_frame']:.3f}", f"{x['peak_rss_mib']:.0f}"] for x in r["rows"]]
    return "\n".join(out + table(["frames", "windows", "NFE", "seconds", "s / frame", "peak RSS (MiB)"], rows))
