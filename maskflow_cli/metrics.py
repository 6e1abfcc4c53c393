"""Quality measures of frames against the truth, shared by the eval suites, the worlds and the domain check.

Frames are uint8 and compared in [0, 1]: per-frame MSE summed over the pixels (the Moving MNIST
literature's convention), PSNR and SSIM; :func:`summarize` gives a mean with its 95 % half-width, and
:func:`reconstruction_psnr` how well a tokenizer reproduces frames through its tokens.

Axis legend: B sequences, T frames, N frames, Y, X pixels, C channels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .runtime import decode_tokens, encode_frames
from .tokenizer import FrameTokenizer


def to_unit(frames: Tensor) -> Tensor:
    """uint8 frames -> float32 in [0, 1], same shape."""
    return frames.float() / 255


def frame_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame squared error summed over pixels in [0, 1], [B,T]."""
    return (to_unit(prediction) - to_unit(target)).square().flatten(2).sum(-1)


def frame_psnr(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame PSNR in dB (peak 1), [B,T]; capped at 100 dB."""
    mse = (to_unit(prediction) - to_unit(target)).square().flatten(2).mean(-1).clamp(min=1e-10)
    return (10 * torch.log10(1 / mse)).clamp(max=100.0)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]  # [1,1,size,size]


def frame_ssim(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame SSIM, [B,T] (Wang et al. 2004: 11×11 Gaussian window,
    σ = 1.5, K1 = 0.01, K2 = 0.03, peak 1; valid positions only, averaged over positions and channels)."""
    b, t, y, x, c = prediction.shape
    p = to_unit(prediction).permute(0, 1, 4, 2, 3).reshape(b * t * c, 1, y, x)
    q = to_unit(target).permute(0, 1, 4, 2, 3).reshape(b * t * c, 1, y, x)
    w = _gaussian_window(min(11, y, x))
    mu_p, mu_q = F.conv2d(p, w), F.conv2d(q, w)
    var_p = F.conv2d(p * p, w) - mu_p.square()
    var_q = F.conv2d(q * q, w) - mu_q.square()
    cov = F.conv2d(p * q, w) - mu_p * mu_q
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_p * mu_q + c1) * (2 * cov + c2)) / ((mu_p.square() + mu_q.square() + c1) * (var_p + var_q + c2))
    return ssim.flatten(1).mean(-1).view(b, t, c).mean(-1)


def summarize(values: Tensor) -> dict:
    """Mean and 95% half-width of a 1-d tensor of per-sequence values."""
    n = values.numel()
    std = float(values.std()) if n > 1 else 0.0
    return {"mean": round(float(values.mean()), 3), "ci95": round(1.96 * std / math.sqrt(max(n, 1)), 3), "n": n}


def scores(prediction: Tensor, target: Tensor) -> dict:
    """MSE, PSNR and SSIM of uint8 [B,T,...] against the truth: per-sequence summaries and per-frame means."""
    out = {}
    for name, metric in (("mse", frame_mse), ("psnr", frame_psnr), ("ssim", frame_ssim)):
        values = metric(prediction, target)  # [B,T]
        out[name] = summarize(values.mean(1))
        out[f"{name}_per_frame"] = [round(float(v), 4) for v in values.mean(0)]
    return out


def reconstruct(tokenizer: FrameTokenizer, frames: Tensor, device: torch.device) -> Tensor:
    """decode(encode(frames)) for uint8 [N,Y,X,C] frames: uint8 [N,Y,X,C]."""
    return decode_tokens(tokenizer, encode_frames(tokenizer, frames, device), device)


def reconstruction_psnr(tokenizer: FrameTokenizer, frames: Tensor, device: torch.device) -> float:
    """Mean PSNR (dB, rounded as :func:`summarize` rounds) of decode(encode(frames)) for uint8 [N,Y,X,C] frames."""
    return summarize(frame_psnr(reconstruct(tokenizer, frames, device)[None], frames[None])[0])["mean"]
