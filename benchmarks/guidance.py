"""Classifier-free guidance on the context: quality against cost on held-out Moving MNIST.

Each variant is a guidance schedule and a way to leave the context out of the uncond pass
(``maskflow_cli.guidance.GuidedDenoiser``), written ``WEIGHTS/UNCOND``:
- WEIGHTS: w per network call of a window, comma-separated; ``WxN`` repeats W N times; a single
  W without ``x`` guides every call. ``0`` is today's unguided sampling (the base every row is
  paired against). E.g. ``0.25/masked``, ``0.5x2/dropped`` (w = 0.5 on the first 2 of 4 steps),
  ``0.5,0.25/dropped`` (0.5 on the first step, 0.25 on the second, none after); ``annealW`` is
  the library's schedule for ``SamplingOptions(guidance=W)`` (``guidance.annealed_weights``; at 4
  steps ``anneal0.5`` is ``0.5,0.25``).
- UNCOND: ``masked`` (context frames as mask tokens, the whole window) or ``dropped`` (context
  frames left out, a shorter pass).
Suites, on the held-out sequences ``maskflow eval`` uses (``--data-seed`` 1234, +1 for the horizon,
+2 for infill), at MGM ``--steps`` per window, ``--context`` frames of context, seed ``--seed``:
- continuation: 10 given -> 10 new frames; MSE per frame, per sequence, paired against the base;
- horizon: ``extend`` from 10 real frames to ``--horizon-frames``; ink, crispness and blobs per
  16-frame bin against the real sequences;
- infill: the middle 4 and 8 frames of 20-frame clips (8:12, 6:14); MSE paired against the base.
Cost is counted deterministically: network passes (cond and uncond alike) per window, and the
transformer's FLOPs per generated frame, as a ratio to the base; wall seconds are noted but depend on
what else runs on the machine. Every row keeps its per-sequence values, so later runs pair against a
base stored in the same JSON file (same suite, sequences, seeds and sampling) instead of rerunning it:

    OMP_NUM_THREADS=1 python benchmarks/guidance.py --suites continuation \\
        --variants 0 0.25/masked 0.25/dropped 0.5x2/dropped --out benchmarks/results/guidance.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path

import torch

from common import flop_counter, machine_facts

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import BIN, FUTURE, GIVEN, INFILL_CLIP, INFILL_GAPS, frame_mse, frame_stats, held_out_sequences, sample_videos, summarize
from maskflow_cli.guidance import UNCOND, GuidedDenoiser, annealed_weights
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, plan_infill, window_settings

SUITES = ("continuation", "horizon", "infill")


def parse_variant(text: str, steps: int) -> tuple[tuple[float, ...], str]:
    """``WEIGHTS/UNCOND`` -> (w per network call of a window, uncond); see the module docstring."""
    spec, _, uncond = text.partition("/")
    uncond = uncond or "dropped"
    if uncond not in UNCOND:
        raise SystemExit(f"variant {text!r}: uncond must be one of {', '.join(UNCOND)}")
    if spec.startswith("anneal"):
        return tuple(annealed_weights(float(spec.removeprefix("anneal")), steps)), uncond
    items = spec.split(",")
    if len(items) == 1 and "x" not in items[0]:
        return (float(items[0]),) * steps, uncond
    weights: list[float] = []
    for item in items:
        w, _, n = item.partition("x")
        weights += [float(w)] * int(n or 1)
    return tuple(weights), uncond


class Meter:
    """Counts the FLOPs of the transformer's calls (``logits_at``: every pass, cond or uncond) while installed."""

    def __init__(self, model) -> None:
        self.model, self.flops = model, 0
        self._logits_at = model.logits_at
        model.logits_at = self._counted

    def _counted(self, *args, **kwargs):
        with flop_counter() as counter:
            out = self._logits_at(*args, **kwargs)
        self.flops += counter.get_total_flops()
        return out

    def remove(self) -> None:
        del self.model.logits_at


def sample(pipe: MaskFlowPipeline, plan, weights: tuple[float, ...], uncond: str, options: SamplingOptions, videos, batch: int) -> tuple[torch.Tensor, dict]:
    """Run ``plan`` for the videos with the variant's guided denoiser -> output videos and the cost."""
    made: list = []
    plain = pipe.denoiser  # the pipeline's own method, before it is replaced below

    def denoiser():
        made.append(GuidedDenoiser(plain(), weights, uncond) if any(weights) else plain())
        return made[-1]

    pipe.denoiser = denoiser
    meter = Meter(pipe.transformer)
    started = time.perf_counter()
    try:
        video, nfe = sample_videos(pipe, plan, options, videos, batch)
    finally:
        meter.remove()
        del pipe.denoiser
    seconds = time.perf_counter() - started
    windows = len(plan.windows) * len(made)  # windows sampled, over the batches
    new_frames = sum(len(w.keep) for w in plan.windows if w.keep) * len(videos)
    uncond_passes = sum(getattr(d, "uncond_passes", 0) for d in made)
    calls = sum(d.calls for d in made)
    return video, {"nfe_per_sequence": nfe, "passes_per_window": round(calls / windows, 3), "uncond_passes_per_window": round(uncond_passes / windows, 3),
                   "gflop_per_new_frame": round(meter.flops / 1e9 / new_frames, 3), "seconds": round(seconds, 1)}


def per_sequence_mse(prediction: torch.Tensor, target: torch.Tensor) -> list[float]:
    return [round(float(v), 4) for v in frame_mse(prediction, target).mean(1)]


def binned(values: torch.Tensor) -> list[float]:
    """Per-frame statistic [B,T] -> means per BIN-frame bin."""
    return [round(float(values[:, i : i + BIN].mean()), 3) for i in range(0, values.shape[1], BIN)]


def run_suite(suite: str, pipe: MaskFlowPipeline, args, settings, options: SamplingOptions, weights, uncond) -> dict:
    """One variant on one suite -> the row's measurements (per-sequence values kept for pairing)."""
    fmt = pipe.frame_format
    if suite == "continuation":
        clips = held_out_sequences(None, GIVEN + FUTURE, args.sequences, fmt, args.data_seed)
        video, cost = sample(pipe, plan_extend(GIVEN, FUTURE, settings), weights, uncond, options, clips[:, :GIVEN], args.batch)
        per_frame = frame_mse(video[:, GIVEN:], clips[:, GIVEN:]).mean(0)
        return {**cost, "sequences": len(clips), "mse": per_sequence_mse(video[:, GIVEN:], clips[:, GIVEN:]),
                "mse_per_frame": [round(float(v), 2) for v in per_frame]}
    if suite == "horizon":
        real = held_out_sequences(None, args.horizon_frames, args.horizon_sequences, fmt, args.data_seed + 1)
        video, cost = sample(pipe, plan_extend(GIVEN, args.horizon_frames - GIVEN, settings), weights, uncond, options, real[:, :GIVEN], args.batch)
        made, truth = frame_stats(video), frame_stats(real)
        return {**cost, "sequences": len(real), "frames": args.horizon_frames, "bin": BIN,
                **{k: binned(v) for k, v in made.items()}, "real": {k: binned(v) for k, v in truth.items()}}
    clips = held_out_sequences(None, INFILL_CLIP, args.infill_sequences, fmt, args.data_seed + 2)
    out: dict = {"sequences": len(clips)}
    for gap in INFILL_GAPS:
        a = (INFILL_CLIP - gap) // 2
        video, cost = sample(pipe, plan_infill(INFILL_CLIP, [(a, a + gap)], settings), weights, uncond, options, clips, args.batch)
        out[f"{a}:{a + gap}"] = {**cost, "mse": per_sequence_mse(video[:, a : a + gap], clips[:, a : a + gap])}
    return out


def same_setup(row: dict, key: dict) -> bool:
    return all(row.get(k) == v for k, v in key.items())


def compare(row: dict, base: dict) -> dict:
    """Paired differences and cost ratios of a row against the base row of the same setup."""
    def paired(mine: dict, theirs: dict) -> dict:
        diff = summarize(torch.tensor(mine["mse"]) - torch.tensor(theirs["mse"]))
        return {"mse_mean": round(sum(mine["mse"]) / len(mine["mse"]), 2), "mse_vs_base": diff["mean"], "mse_vs_base_ci95": diff["ci95"],
                "flops_vs_base": round(mine["gflop_per_new_frame"] / theirs["gflop_per_new_frame"], 3)}

    if row["suite"] == "continuation":
        return paired(row, base)
    if row["suite"] == "infill":
        return {gap: paired(row[gap], base[gap]) for gap in row if ":" in gap}
    ink, real = row["ink"], row["real"]["ink"]
    return {"flops_vs_base": round(row["gflop_per_new_frame"] / base["gflop_per_new_frame"], 3),
            "ink_first_last5_last": [ink[0], round(sum(ink[-5:]) / len(ink[-5:]), 1), ink[-1]],
            "ink_vs_real_per_bin": [round(a / b - 1, 3) for a, b in zip(ink, real)],
            "worst_ink_vs_real": round(max((a / b - 1 for a, b in zip(ink, real)), key=abs), 3)}


def describe(row: dict) -> str:
    c = row["vs_base"]
    head = f"{row['suite']:12} {row['variant']:18} passes/window {row.get('passes_per_window', '-')!s:>6}"
    if row["suite"] == "continuation":
        return f"{head}  flops x{c['flops_vs_base']}  MSE {c['mse_mean']:6.1f}  vs base {c['mse_vs_base']:+6.2f} ± {c['mse_vs_base_ci95']:.2f}  {row['seconds']} s"
    if row["suite"] == "infill":
        return head + "  " + "  ".join(f"{g}: MSE {v['mse_mean']:.1f} vs base {v['mse_vs_base']:+.2f} ± {v['mse_vs_base_ci95']:.2f} flops x{v['flops_vs_base']}" for g, v in c.items())
    return f"{head}  flops x{c['flops_vs_base']}  ink first/last5/last {c['ink_first_last5_last']}  worst vs real {c['worst_ink_vs_real']:+.1%}  {row['seconds']} s"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", default=None)
    parser.add_argument("--precision", default="fp32", help="fp32: the precision today's CPU numbers were measured in")
    parser.add_argument("--suites", nargs="+", default=["continuation"], choices=SUITES)
    parser.add_argument("--variants", nargs="+", default=["0", "0.25/masked", "0.25/dropped", "0.5x2/dropped"])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--context", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--sequences", type=int, default=32, help="continuation sequences")
    parser.add_argument("--horizon-sequences", type=int, default=4)
    parser.add_argument("--horizon-frames", type=int, default=160)
    parser.add_argument("--infill-sequences", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--out", default="benchmarks/results/guidance.json")


def command_line() -> str:
    """How this process was started, with the script's path relative to the working directory."""
    script = Path(sys.argv[0])
    if script.is_absolute() and script.is_relative_to(Path.cwd()):
        script = script.relative_to(Path.cwd())
    return shlex.join(["python", str(script), *sys.argv[1:]])


def run(args: argparse.Namespace) -> dict:
    """Measure every variant on every suite; append the rows to ``--out`` (rewritten after each row).
    Returns the whole file's content."""
    out = Path(args.out)
    stored = json.loads(out.read_text()) if out.exists() else {"benchmark": "guidance", "runs": []}
    pipe = MaskFlowPipeline.from_weights(args.weights, device="cpu", precision=args.precision)
    settings = window_settings(pipe.window, "ar", context=args.context)
    options = SamplingOptions("mgm", args.steps, seed=args.seed)
    this_run = {"command": command_line(), "machine": machine_facts(pipe), "weights": args.weights or "(installed)", "rows": []}
    stored["runs"].append(this_run)
    out.parent.mkdir(parents=True, exist_ok=True)
    for suite in args.suites:
        key = {"suite": suite, "steps": args.steps, "context": args.context, "seed": args.seed, "data_seed": args.data_seed, "precision": args.precision,
               "sequences": {"continuation": args.sequences, "horizon": args.horizon_sequences, "infill": args.infill_sequences}[suite]}
        if suite == "horizon":
            key["frames"] = args.horizon_frames
        for variant in (["0"] if "0" not in args.variants else []) + args.variants:
            weights, uncond = parse_variant(variant, args.steps)
            base = next((r for run_ in reversed(stored["runs"]) for r in reversed(run_["rows"]) if same_setup(r, key) and r["variant"] == "0"), None)
            if variant == "0" and base is not None and variant not in args.variants:
                continue
            row = {**key, "variant": variant, "weights": list(weights), "uncond": uncond,
                   **run_suite(suite, pipe, args, settings, options, weights, uncond)}
            row["vs_base"] = compare(row, base or row)
            this_run["rows"].append(row)
            out.write_text(json.dumps(stored, indent=1) + "\n")
            print(describe(row), flush=True)
    return stored


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    run(parser.parse_args())


if __name__ == "__main__":
    main()
