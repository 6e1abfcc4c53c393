"""GFLOP and seconds per generated frame: the weights' model and a block-causal one, with and without cache.

The weights' model at 20 and 8 MGM steps, and a block-causal model of the same size with and without
its context cache, at the default (``--context``) and a short context of 4, and an untrained smaller
block-causal design (``SPEED_DESIGN``) that shows what a model made for speed costs.

Each configuration samples one steady-state window of a long `generate` (ar mode, its context frames
given, ``stride`` = window − context new ones) through the rollout engine and
decodes the new frames, as the pipeline does for every window after the first. FLOPs are counted with
``common.flop_counter`` (matmuls, convolutions and attention; that pass is also the warm-up). The
configurations are timed interleaved in one process; frames/s are from the median wall time and frames
per CPU-second from the median process CPU time, which load from other processes disturbs less.
The block-causal model is the weights' configuration with ``context_attention="block_causal"``, with
random weights unless ``--block-causal`` names trained ones: its speed does not depend on training.
Prints a table:

    python -m benchmarks frame_cost --weights weights
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from maskflow_cli.engine import SamplingOptions, roll_out
from maskflow_cli.planner import plan_extend, window_settings
from maskflow_cli.runtime import ModelDenoiser, decode_tokens
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weights import load_models

from .common import count_flops, interleaved
from .markdown import heading, machine, table

NAME = "frame_cost"
SHARED = {"weights": None}


# A narrower block-causal transformer with factorised space / time attention for the same tokens:
# what a model designed for real time on a CPU could look like (untrained here; only its cost is measured).
SPEED_DESIGN = {"dim": 192, "depth": 6, "heads": 3, "attention": "factorized"}


def make_frames(tokenizer, denoiser: ModelDenoiser, plan, steps: int, context: torch.Tensor | None = None) -> None:
    """Run a plan through the engine and decode every kept frame, as the pipeline does."""
    options = SamplingOptions("mgm", steps, seed=0)
    for _, kept in roll_out(plan, denoiser, options, 0, lambda frames: context[:, frames]):
        decode_tokens(tokenizer, kept[0], denoiser.device)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--block-causal", default=None, metavar="PATH", help="trained block-causal weights (default: random weights)")
    parser.add_argument("--context", type=int, default=None, help="the default rows' ar context (default: the library's)")
    parser.add_argument("--rounds", type=int, default=3)


def run(args: argparse.Namespace) -> dict:
    tokenizer, model, _ = load_models(args.weights)
    if args.block_causal:
        block_causal = load_models(args.block_causal)[1]
        if not block_causal.config.block_causal:
            raise SystemExit(f"frame_cost: --block-causal {args.block_causal} holds a bidirectional transformer")
        source = f"trained ({args.block_causal})"
    else:
        torch.manual_seed(0)
        block_causal = MaskFlowTransformer(dataclasses.replace(model.config, context_attention="block_causal")).eval()
        source = "random weights"
    cfg = model.config
    design = MaskFlowTransformer(dataclasses.replace(cfg, context_attention="block_causal", **SPEED_DESIGN)).eval()
    configs = [  # name, network, MGM steps, context cache, ar context (None: --context)
        ("weights' model", model, 20, True, None),
        ("weights' model", model, 8, True, None),
        ("weights' model", model, 8, True, 4),
        (f"block-causal, {source}, no cache", block_causal, 8, False, None),
        (f"block-causal, {source}, context cache", block_causal, 8, True, None),
        (f"block-causal, {source}, context cache", block_causal, 8, True, 4),
        (f"speed design {SPEED_DESIGN}, block-causal, random weights, context cache", design, 6, True, 4),
    ]
    runs, rows = {}, []
    for i, (name, network, steps, cache, context) in enumerate(configs):  # counting FLOPs is also each one's warm-up
        settings = window_settings(cfg.frames, "ar", context=args.context if context is None else context)
        steady = plan_extend(settings.context, settings.stride, settings)  # one window: context given, stride new frames
        given = torch.randint(0, cfg.vocab_size, (1, settings.context, cfg.grid_height, cfg.grid_width), generator=torch.Generator().manual_seed(0))
        key = f"{i + 1}. {name}, {steps} steps, context {settings.context}"
        runs[key] = (lambda n=network, k=steps, c=cache, p=steady, g=given: make_frames(tokenizer, ModelDenoiser(n, context_cache="exact" if c else "off"), p, k, g))
        rows.append({"name": name, "steps": steps, "cache": cache, "context": settings.context, "stride": settings.stride,
                     "parameters": sum(p.numel() for p in network.parameters()),
                     "gflop_per_frame": round(count_flops(runs[key]) / settings.stride / 1e9, 2)})
    timing = interleaved(runs, args.rounds, warmup=0)
    first = timing[next(iter(runs))]["median_cpu_s"] / rows[0]["stride"]
    for row, key in zip(rows, runs):
        t = timing[key]
        row["cpu_per_frame_ratio"] = round(t["median_cpu_s"] / row["stride"] / first, 3)
        row.update(median_wall_s=t["median_wall_s"], median_cpu_s=t["median_cpu_s"], frames_per_s=round(row["stride"] / t["median_wall_s"], 3),
                   frames_per_cpu_s=round(row["stride"] / t["median_cpu_s"], 3), cpu_ratio=t["cpu_ratio"], wall_ratio=t["wall_ratio"])
        print(f"{key:60} {row['gflop_per_frame']:7.1f} GFLOP/frame  {row['frames_per_s']:6.2f} frames/s  "
              f"{row['frames_per_cpu_s']:6.2f} frames/CPU-s  CPU per frame {row['cpu_per_frame_ratio']:.2f}", flush=True)
    note = f"The block-causal model has {source}; its speed, not its samples, is the point here. "
    return {"weights": args.weights or "(installed)", "window": cfg.frames, "rounds": args.rounds, "note": note, "rows": rows}


def render(r: dict) -> str:
    out = heading("Cost of a generated frame", r) + [
        (f"Machine: {machine(r['machine'])}. One steady-state window of a long `generate` ({r['window']} frames: "
         "the context frames given, the rest new; MGM), its new frames decoded; the variants interleaved "
         f"in one process, {r['rounds']} rounds. GFLOP count every matmul, convolution and attention, decoder included. "
         f"{r['note']}"), ""]
    rows = [[x["name"], x["steps"], f"{x['context']} / {x['stride']}", f"{x['gflop_per_frame']:.1f}", f"{x['frames_per_s']:.2f}",
             f"{x['frames_per_cpu_s']:.2f}", f"{x['cpu_per_frame_ratio']:.2f}"] for x in r["rows"]]
    return "\n".join(out + table(["model", "steps", "context / new", "GFLOP / new frame", "frames/s", "frames per CPU-second",
                                  "CPU time per frame vs first row"], rows))
