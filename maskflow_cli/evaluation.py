"""Quality measures of DESIGN.md §5 for Moving-MNIST-like data (frames in [0, 1]).

- per-frame MSE summed over the pixels (the Moving MNIST literature's convention), PSNR;
- tokenizer reconstruction PSNR;
- continuation: given the first ``given`` frames, predict the next ``future``; sampled in batches
  of sequences that share one window plan (the same plan the pipeline would run for each).

Axis legend: B sequences, T frames, Y, X pixels, C channels, H, W token grid.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .pipeline import MaskFlowPipeline, ModelDenoiser, SamplingOptions, decode_tokens, encode_frames
from .planner import WindowSettings, plan_extend
from .sampling import SAMPLERS
from .schedules import SCHEDULERS
from .tokenizer import FrameTokenizer


def frame_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame squared error summed over pixels in [0, 1], [B,T]."""
    diff = prediction.float() / 255 - target.float() / 255
    return diff.square().flatten(2).sum(-1)


def frame_psnr(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame PSNR in dB (peak 1), [B,T]; capped at 100 dB."""
    diff = prediction.float() / 255 - target.float() / 255
    mse = diff.square().flatten(2).mean(-1).clamp(min=1e-10)
    return (10 * torch.log10(1 / mse)).clamp(max=100.0)


def reconstruction_psnr(tokenizer: FrameTokenizer, frames: Tensor, device: torch.device) -> float:
    """Mean PSNR of decode(encode(frames)) for uint8 [N,Y,X,C] frames."""
    recon = decode_tokens(tokenizer, encode_frames(tokenizer, frames, device), device)
    return float(frame_psnr(recon[None], frames[None]).mean())


@torch.inference_mode()
def continue_batch(pipe: MaskFlowPipeline, given: Tensor, future: int, settings: WindowSettings,
                   options: SamplingOptions, seed: int) -> tuple[Tensor, int]:
    """Continue each of B clips uint8 [B,T0,Y,X,C] by ``future`` frames, batched.

    Returns the new frames uint8 [B,future,Y,X,C] and the NFE spent (per sequence: the batch
    shares every network call)."""
    batch, known_frames = given.shape[:2]
    plan = plan_extend(known_frames, future, settings)
    cfg = pipe.transformer.config
    flat = given.flatten(0, 1)  # [B*T0,Y,X,C]
    tokens = encode_frames(pipe.tokenizer, flat, pipe.device).view(batch, known_frames, cfg.height, cfg.width)
    video = torch.cat([tokens, torch.full((batch, future, cfg.height, cfg.width), cfg.mask_id)], dim=1)  # [B,T,H,W]
    denoiser = ModelDenoiser(pipe.transformer, pipe.autocast_dtype)
    generator = torch.Generator(pipe.device).manual_seed(seed)
    for window in plan.windows:
        x = video[:, window.start : window.stop].to(pipe.device)
        known = torch.zeros_like(x, dtype=torch.bool)
        known[:, [i - window.start for i in window.context]] = True
        out = SAMPLERS[options.sampler](denoiser, x, known, steps=options.steps, scheduler=SCHEDULERS[cfg.scheduler], generator=generator)
        keep = [i - window.start for i in window.keep]
        video[:, window.keep] = out[:, keep].cpu()
    new = video[:, known_frames:].flatten(0, 1)
    frames = decode_tokens(pipe.tokenizer, new, pipe.device)
    return frames.view(batch, future, *frames.shape[1:]), denoiser.calls


def summarize(values: Tensor) -> dict:
    """Mean and 95% half-width of a 1-d tensor of per-sequence values."""
    n = values.numel()
    std = float(values.std()) if n > 1 else 0.0
    return {"mean": round(float(values.mean()), 3), "ci95": round(1.96 * std / math.sqrt(max(n, 1)), 3), "n": n}
