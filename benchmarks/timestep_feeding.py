"""How the timestep fed to the model matters: per-frame times against a constant one and none.

The same weights continue the same held-out Moving MNIST sequences (10 given -> 10 new frames, MGM)
while the times handed to the transformer are changed:

- per-frame: each frame gets κ⁻¹ of its own unmasked fraction (MaskFlow's MGM-style feeding; the default);
- constant: every frame of a window gets the window's mean masking time (one timestep per call, as a video
  diffusion model without frame-level noise would get);
- none: a fixed time of 0.5 at every call (the model learns nothing of the sampling progress).

A timestep-independent model ignores the times, so all three rows agree for it. Every feeding
continues the same sequences with the same seed, so each row also has its mean per-sequence
difference to per-frame feeding, with a 95 % interval. Prints a table:

    OMP_NUM_THREADS=1 python -m benchmarks timestep_feeding --weights weights --sequences 8 --batch 8
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from maskflow_cli.defaults import DEFAULT_STEPS
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import FUTURE, GIVEN, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings

from .common import dtype_name, test_clips
from .markdown import heading, machine, table
from .sampler_tuning import sequence_mse

NAME = "timestep_feeding"
SHARED = {"weights": None, "sequences": 32, "batch": 16, "seed": 0, "precision": "auto"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="MGM steps (default: %(default)s)")


def feed_constant(times: Tensor) -> Tensor:
    return times.mean(dim=1, keepdim=True).expand_as(times)  # [B,T]


def feed_none(times: Tensor) -> Tensor:
    return torch.full_like(times, 0.5)


FEEDINGS = {"per-frame": None, "constant": feed_constant, "none": feed_none}


class FedModel(torch.nn.Module):
    """The transformer behind a rewrite of the times it is given."""

    def __init__(self, model: torch.nn.Module, feeding) -> None:
        super().__init__()
        self.model, self.feeding, self.config = model, feeding, model.config

    def forward(self, tokens: Tensor, times: Tensor) -> Tensor:
        return self.model(tokens, self._fed(times))

    def logits_at(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor | None = None, cache=None) -> Tensor:
        return self.model.logits_at(tokens, self._fed(times), wanted, context, cache)

    def _fed(self, times: Tensor) -> Tensor:
        return times if self.feeding is None else self.feeding(times)


def run(args: argparse.Namespace) -> dict:
    pipe = MaskFlowPipeline.from_weights(args.weights, precision=args.precision)
    settings = window_settings(pipe.window, "ar")
    clips = test_clips(pipe, GIVEN + FUTURE, args.sequences)
    rows, first = [], None  # per-sequence MSE of per-frame feeding, for paired differences
    for name, feeding in FEEDINGS.items():
        fed = MaskFlowPipeline(pipe.tokenizer, FedModel(pipe.transformer, feeding), device=pipe.device, dtype=pipe.dtype)
        mse, r, _ = sequence_mse(fed, clips, settings, SamplingOptions("mgm", args.steps, args.seed, guidance=0.0), args.batch)  # unguided: the feeding alone
        first = mse if first is None else first
        diff = summarize(mse - first)
        rows.append({"feeding": name, "mse": r["mse"]["mean"], "mse_ci95": r["mse"]["ci95"], "mse_vs_per_frame": diff["mean"],
                     "mse_vs_per_frame_ci95": diff["ci95"], "psnr": r["psnr"]["mean"], "ssim": r["ssim"]["mean"]})
        print(f"{name:10} MSE {rows[-1]['mse']:7.1f} ± {rows[-1]['mse_ci95']:5.1f}  vs per-frame {diff['mean']:+6.1f} ± {diff['ci95']:4.1f}  "
              f"PSNR {rows[-1]['psnr']:6.2f}  SSIM {rows[-1]['ssim']:.3f}", flush=True)
    return {"weights": args.weights or "(installed)", "autocast": dtype_name(pipe.dtype),
            "time_conditioning": pipe.transformer.config.time_conditioning,
            "sequences": len(clips), "steps": args.steps, "mode": settings.mode, "context": settings.context, "stride": settings.stride,
            "seed": args.seed, "rows": rows}


def render(r: dict) -> str:
    out = heading("Timestep feeding", r) + [
        f"Machine: {machine(r['machine'])}; timestep-dependent weights: {r['time_conditioning']}; continuation 10 → 10 on "
        f"{r['sequences']} sequences, MGM {r['steps']} steps, {r['mode']} (context {r['context']}, stride {r['stride']}), seed {r['seed']}.", ""]
    rows = [[x["feeding"], f"{x['mse']:.1f} ± {x['mse_ci95']:.1f}", f"{x['mse_vs_per_frame']:+.1f} ± {x['mse_vs_per_frame_ci95']:.1f}",
             f"{x['psnr']:.2f}", f"{x['ssim']:.3f}"] for x in r["rows"]]
    return "\n".join(out + table(["times fed", "MSE/frame", "vs per-frame (paired)", "PSNR", "SSIM"], rows))
