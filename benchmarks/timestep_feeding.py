"""How the timestep fed to the model matters: per-frame levels against a constant one and none.

The same weights continue the same held-out Moving MNIST sequences (10 given -> 10 new frames, MGM)
while the levels handed to the transformer are changed:

- per-frame: each frame gets κ⁻¹ of its own unmasked fraction (MaskFlow's MGM-style feeding; the default);
- constant: every frame of a window gets the window's mean level (one timestep per call, as a video
  diffusion model without frame-level noise would get);
- none: a fixed level of 0.5 at every call (the model learns nothing of the sampling progress).

A timestep-independent model ignores the levels, so all three rows agree for it. Prints a table and
writes JSON:

    python benchmarks/timestep_feeding.py --weights weights/ --out benchmarks/results/timestep_feeding.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import Tensor

from common import machine_facts, test_clips
from maskflow_cli.evaluation import continuation_suite
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings


def feed_constant(levels: Tensor) -> Tensor:
    return levels.mean(dim=1, keepdim=True).expand_as(levels)  # [B,T]


def feed_none(levels: Tensor) -> Tensor:
    return torch.full_like(levels, 0.5)


FEEDINGS = {"per-frame": None, "constant": feed_constant, "none": feed_none}


class FedModel(torch.nn.Module):
    """The transformer behind a rewrite of the levels it is given."""

    def __init__(self, model: torch.nn.Module, feeding) -> None:
        super().__init__()
        self.model, self.feeding, self.config = model, feeding, model.config

    def forward(self, tokens: Tensor, levels: Tensor) -> Tensor:
        return self.model(tokens, levels if self.feeding is None else self.feeding(levels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--sequences", type=int, default=32)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="timestep_feeding.json")
    args = parser.parse_args()

    pipe = MaskFlowPipeline.from_weights(args.weights)
    settings = window_settings(pipe.window, "ar")
    clips = test_clips(pipe, 20, args.sequences)
    rows = []
    for name, feeding in FEEDINGS.items():
        fed = MaskFlowPipeline(pipe.tokenizer, FedModel(pipe.transformer, feeding), device=pipe.device, autocast_dtype=pipe.autocast_dtype)
        r = continuation_suite(fed, clips, settings, SamplingOptions("mgm", args.steps, args.seed), args.batch)["maskflow"]
        rows.append({"feeding": name, "mse": r["mse"]["mean"], "mse_ci95": r["mse"]["ci95"], "psnr": r["psnr"]["mean"], "ssim": r["ssim"]["mean"]})
        print(f"{name:10} MSE {rows[-1]['mse']:7.1f} ± {rows[-1]['mse_ci95']:5.1f}  PSNR {rows[-1]['psnr']:6.2f}  SSIM {rows[-1]['ssim']:.3f}", flush=True)
    result = {"benchmark": "timestep_feeding", "machine": machine_facts(pipe), "weights": args.weights or "(installed)",
              "time_conditioning": pipe.transformer.config.time_conditioning, "sequences": len(clips), "steps": args.steps,
              "mode": settings.mode, "context": settings.context, "stride": settings.stride, "seed": args.seed, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
