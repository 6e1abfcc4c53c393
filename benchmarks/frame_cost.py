"""GFLOP and seconds per generated frame: the weights' model at 20 and 8 MGM steps, and a block-causal
model of the same size with and without its context cache, at the default and a short context, and
an untrained smaller block-causal design (``SPEED_DESIGN``) that shows what a model made for speed costs.

Each configuration samples one steady-state window of a long `generate` (ar mode, its context frames
given, ``stride`` = window − context new ones) through the rollout engine and
decodes the new frames, as the pipeline does for every window after the first. FLOPs are counted with
``common.flop_counter`` (matmuls, convolutions and attention; that pass is also the warm-up). The
configurations are timed interleaved in one process; frames/s are from the median wall time and frames
per CPU-second from the median process CPU time, which load from other processes disturbs less.
The block-causal model is the weights' configuration with ``context_attention="block_causal"``, with
random weights unless ``--block-causal`` names trained ones: its speed does not depend on training.
Prints a table and writes JSON:

    python benchmarks/frame_cost.py --weights weights --out benchmarks/results/frame_cost.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from common import count_flops, interleaved, machine_facts
from maskflow_cli.engine import SamplingOptions, roll_out
from maskflow_cli.planner import plan_extend, window_settings
from maskflow_cli.runtime import ModelDenoiser, decode_tokens
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weights import load_models


# A narrower block-causal transformer with factorised space / time attention for the same tokens:
# what a model designed for real time on a CPU could look like (untrained here; only its cost is measured).
SPEED_DESIGN = {"dim": 192, "depth": 6, "heads": 3, "attention": "factorized"}


def make_frames(tokenizer, denoiser: ModelDenoiser, plan, steps: int, context: torch.Tensor | None = None) -> None:
    """Run a plan through the engine and decode every kept frame, as the pipeline does."""
    options = SamplingOptions("mgm", steps, seed=0)
    for _, kept in roll_out(plan, denoiser, options, 0, lambda frames: context[:, frames]):
        decode_tokens(tokenizer, kept[0], denoiser.device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--block-causal", default=None, help="trained block-causal weights (default: random weights)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="frame_cost.json")
    args = parser.parse_args()
    facts = machine_facts()
    tokenizer, model, _ = load_models(args.weights)
    if args.block_causal:
        block_causal = load_models(args.block_causal)[1]
        assert block_causal.config.block_causal, "--block-causal needs block-causal weights"
        source = f"trained ({args.block_causal})"
    else:
        torch.manual_seed(0)
        block_causal = MaskFlowTransformer(dataclasses.replace(model.config, context_attention="block_causal")).eval()
        source = "random weights"
    cfg = model.config
    design = MaskFlowTransformer(dataclasses.replace(cfg, context_attention="block_causal", **SPEED_DESIGN)).eval()
    configs = [  # name, network, MGM steps, context cache, ar context (None: the default, half the window)
        ("weights' model", model, 20, True, None),
        ("weights' model", model, 8, True, None),
        ("weights' model", model, 8, True, 4),
        (f"block-causal, {source}, no cache", block_causal, 8, False, None),
        (f"block-causal, {source}, context cache", block_causal, 8, True, None),
        (f"block-causal, {source}, context cache", block_causal, 8, True, 4),
        (f"speed design {SPEED_DESIGN}, block-causal, random weights, context cache", design, 6, True, 4),
    ]
    runs, rows = {}, []
    for name, network, steps, cache, context in configs:  # counting FLOPs is also each one's warm-up
        settings = window_settings(cfg.frames, "ar", context=context)
        steady = plan_extend(settings.context, settings.stride, settings)  # one window: context given, stride new frames
        given = torch.randint(0, cfg.vocab_size, (1, settings.context, cfg.grid_height, cfg.grid_width), generator=torch.Generator().manual_seed(0))
        key = f"{name}, {steps} steps, context {settings.context}"
        runs[key] = (lambda n=network, k=steps, c=cache, p=steady, g=given: make_frames(tokenizer, ModelDenoiser(n, None, context_cache="exact" if c else "off"), p, k, g))
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
    note = (f"The block-causal model has {source}; its speed, not its samples, is the point here. ")
    result = {"benchmark": "frame_cost", "machine": facts, "weights": args.weights or "(installed)", "window": cfg.frames,
              "rounds": args.rounds, "note": note, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
