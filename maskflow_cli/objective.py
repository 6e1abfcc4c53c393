"""The training objective: discrete flow matching under frame-level masking (MaskFlow §3.2).

Every frame i of a clip draws its own masking time t_i ~ U(eps, 1); each token of that frame stays clean with
probability κ(t_i) and is replaced by the mask token otherwise. The network sees the corrupted clip and
the per-frame masking times and is trained with cross-entropy on the masked positions only. Independent
per-frame masking times are what later lets one network generate, continue and infill.

Optionally (``context_prob``) some clips are drawn in the shape sampling meets instead: a clean prefix
of k frames (time 1, never masked), sometimes also a clean suffix, and one shared time for the frames
in between. Under independent masking times a fully masked frame almost always has partly visible neighbours,
so prediction from clean past frames alone (continuation) is rarely practised; this mix practises it.

Axis legend: B clips, T frames, H, W token grid, V vocabulary (mask id = V);
t: per-frame masking time in [0, 1] (``times`` [B,T]; 1 = clean).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .schedules import Scheduler


class MaskedBatch(NamedTuple):
    tokens: Tensor  # long [B,T,H,W], masked positions hold the mask id
    times: Tensor  # float [B,T], t: per-frame masking time t_i of every frame
    masked: Tensor  # bool [B,T,H,W]


class LossOutput(NamedTuple):
    loss: Tensor  # scalar, weighted mean cross-entropy over masked tokens
    accuracy: Tensor  # scalar, fraction of masked tokens predicted right (argmax)
    masked_fraction: Tensor  # scalar


def mask_frames(
    clean: Tensor,
    scheduler: Scheduler,
    mask_id: int,
    generator: torch.Generator,
    *,
    eps: float = 1e-3,
    constant_time_prob: float = 0.0,
    context_prob: float = 0.0,
) -> MaskedBatch:
    """Corrupt clean tokens [B,T,H,W] with an independent masking time t per frame.

    With probability ``constant_time_prob`` a clip uses one time for all its frames instead (the
    whole-clip-constant masking times of the paper's baseline, worth mixing in). With probability
    ``context_prob`` a clip gets clean context frames instead (see the module docstring).
    """
    b, t = clean.shape[:2]

    def uniform(*shape: int) -> Tensor:  # drawn where the generator lives, used where the data lives
        return torch.rand(shape, generator=generator, device=generator.device).to(clean.device)

    times = eps + (1 - eps) * uniform(b, t)  # [B,T]
    constant = uniform(b, 1) < constant_time_prob  # [B,1]
    times = torch.where(constant, times[:, :1], times)
    if context_prob > 0 and t > 1:
        times = _with_context(times, uniform(b, 1) < context_prob, uniform(b, 3))
    keep_prob = scheduler.kappa(times)[:, :, None, None]  # [B,T,1,1]
    masked = uniform(*clean.shape) >= keep_prob
    return MaskedBatch(clean.masked_fill(masked, mask_id), times, masked)


def _with_context(times: Tensor, chosen: Tensor, draws: Tensor) -> Tensor:
    """Levels [B,T] where the ``chosen`` [B,1] clips get a clean prefix (and in a quarter of them a
    clean suffix) at time 1 and their first time for every frame between; ``draws`` [B,3] in [0, 1)."""
    t = times.shape[1]
    prefix = 1 + (draws[:, :1] * (t - 1)).long()  # [B,1] in 1..T-1
    room = t - 1 - prefix  # frames that a suffix may take while one frame stays unknown
    suffix = torch.where(draws[:, 1:2] < 0.25, (draws[:, 2:3] * (room + 1)).long(), 0)  # [B,1] in 0..room
    frame = torch.arange(t, device=times.device)[None]  # [1,T]
    clean = (frame < prefix) | (frame >= t - suffix)  # [B,T]
    shaped = torch.where(clean, torch.ones_like(times), times[:, :1].expand_as(times))
    return torch.where(chosen, shaped, times)


def fused_snr_weights(times: Tensor, scheduler: Scheduler, clip: float = 5.0) -> Tensor:
    """Per-frame loss weights [B,T] from a clipped, temporally fused SNR κ²/(1−κ)².

    Our reading of the paper's option: each frame's SNR is clipped at ``clip``, averaged with the
    clip's mean clipped SNR (so a frame's weight also reflects how much context its clip offers), and
    the weights are normalised to mean 1 over the batch.
    """
    k = scheduler.kappa(times).clamp(max=1 - 1e-6)
    snr = (k**2 / (1 - k) ** 2).clamp(max=clip)  # [B,T]
    fused = 0.5 * (snr + snr.mean(dim=1, keepdim=True))
    return fused / fused.mean().clamp(min=1e-12)


def masking_loss(
    model: Callable[[Tensor, Tensor], Tensor],
    clean: Tensor,
    scheduler: Scheduler,
    mask_id: int,
    generator: torch.Generator,
    *,
    snr_weighting: bool = False,
    constant_time_prob: float = 0.0,
    context_prob: float = 0.0,
) -> LossOutput:
    """Masked-only cross-entropy of ``model(tokens, times) -> logits [B,T,H,W,V]`` on clean [B,T,H,W]."""
    batch = mask_frames(clean, scheduler, mask_id, generator, constant_time_prob=constant_time_prob,
                        context_prob=context_prob)
    logits = model(batch.tokens, batch.times).float()  # [B,T,H,W,V]
    ce = F.cross_entropy(logits.movedim(-1, 1), clean, reduction="none")  # [B,T,H,W]
    weights = batch.masked.float()
    if snr_weighting:
        weights = weights * fused_snr_weights(batch.times, scheduler)[:, :, None, None]
    n_masked = batch.masked.sum().clamp(min=1)
    loss = (ce * weights).sum() / n_masked
    correct = (logits.argmax(-1) == clean) & batch.masked
    return LossOutput(loss, correct.sum() / n_masked, batch.masked.float().mean())
