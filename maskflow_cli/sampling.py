"""Samplers: fill the masked tokens of one window, keeping the known (context) tokens fixed.

Every sampler has the same signature::

    sampler(denoiser, tokens, known, *, steps, scheduler, generator, callback=None, temperature=1.0, **own) -> tokens

- ``denoiser(tokens, times, wanted, context)`` (with attribute ``mask_id``): long [B,T,H,W] with mask id V,
  float [B,T] t: per-frame masking time, bool [B,T,H,W] the positions whose logits the sampler needs, bool [T] the window's context
  frames (known in every sequence) -> logits [M,V] at the wanted positions, in their row-major order.
  Asking for the wanted positions only lets the network skip work on the rest (``runtime.ModelDenoiser``),
  and naming the context lets a block-causal model reuse its context's keys and values across steps.
- ``tokens``: long [B,T,H,W]; values at unknown positions are ignored (they start masked)
- ``known``: bool [B,T,H,W]; True where the token is given and must not change
- ``steps``: the step budget K; ``scheduler``: the κ scheduler of the model (schedules.py)
- ``callback(state)``: called after each of the K steps with a :class:`SamplerState` (the step, the
  window's tokens so far, which are committed), for progress displays and sampling-chain videos
- ``temperature``: tokens are drawn from softmax(logits / temperature) (1: as predicted)
- ``own``: options of one sampler only (MGM's ``noise``); ``engine.SamplingOptions`` carries them
The result is long [B,T,H,W] with no mask token left and ``result[known] == tokens[known]``.

Masking times fed to a timestep-dependent model: each frame gets κ⁻¹ of its current unmasked fraction,
so a context frame gets t = 1 and a frame still fully masked t = 0 (MaskFlow §3.3).

On a GPU the loop avoids waiting for the device where it can: MGM's commit counts are known before
the first step and copied once; what remains per step is picking the wanted positions (a boolean
index), and for FM whether any token unmasks (which decides whether to call the network at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch
from torch import Tensor

from .defaults import MGM_NOISE
from .schedules import Scheduler, arccos_commit_counts


class Denoiser(Protocol):
    mask_id: int  # the model's mask token id (= its vocabulary size)

    def __call__(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor) -> Tensor: ...


@dataclass(frozen=True)
class SamplerState:
    """What a sampler's callback sees after step ``step`` (0-based) of ``steps``.

    ``tokens`` is the window as it stands, long [B,T,H,W], with ``mask_id`` where nothing is committed
    yet; it is the sampler's own tensor, to read (copy it to keep it), not to change. ``window`` is the
    index of the window in its plan when the engine runs one (``engine.roll_out``), else 0."""

    step: int
    steps: int
    tokens: Tensor  # long [B,T,H,W]
    mask_id: int
    window: int = 0

    @property
    def committed(self) -> Tensor:
        """bool [B,T,H,W]: the positions whose token is final (the context included)."""
        return self.tokens != self.mask_id


Callback = Optional[Callable[[SamplerState], None]]


def frame_times(unmasked: Tensor, scheduler: Scheduler) -> Tensor:
    """bool [B,T,H,W] -> t: per-frame masking time κ⁻¹(unmasked fraction), float [B,T]."""
    return scheduler.inverse(unmasked.float().mean(dim=(2, 3)))


def context_frames(known: Tensor) -> Tensor:
    """bool [B,T,H,W] -> bool [T]: the frames known entirely in every sequence (the window's context)."""
    return known.flatten(2).all(2).all(0)


def _tempered(logits: Tensor, temperature: float) -> Tensor:
    """Logits divided by the sampling temperature (unchanged at 1)."""
    return logits if temperature == 1.0 else logits / temperature


def gumbel(shape: torch.Size, generator: torch.Generator, device: torch.device) -> Tensor:
    """Standard Gumbel noise of ``shape``."""
    u = torch.rand(shape, generator=generator, device=device).clamp_(min=1e-20)
    return -torch.log((-torch.log(u)).clamp_(min=1e-20))


def sample_mgm(
    denoiser: Denoiser,
    tokens: Tensor,
    known: Tensor,
    *,
    steps: int,
    scheduler: Scheduler,
    generator: torch.Generator,
    callback: Callback = None,
    temperature: float = 1.0,
    noise: float = MGM_NOISE,
    anneal: bool = True,
) -> Tensor:
    """MaskGIT-style confidence sampling (Chang et al. 2022; MaskFlow's "MGM" sampler).

    At step k: predict every masked token, draw a token from the predicted distribution, score it by
    its log-probability plus Gumbel noise scaled by ``noise·(1 − k/K)`` (annealed to zero; with
    ``anneal`` False the scale stays ``noise``), and commit the best-scoring ones; how many follows the arccos schedule, so all are committed after K steps.
    One network call a step; a step with nothing to commit makes none (this happens only when fewer
    tokens than steps are masked).
    """
    mask_id = denoiser.mask_id
    x = torch.where(known, tokens, mask_id)
    context = context_frames(known)
    masked_counts = (~known).flatten(1).sum(1).tolist()
    schedules = [arccos_commit_counts(int(n), steps) for n in masked_counts]
    counts = torch.tensor(schedules, device=x.device).T  # [K,B], copied once
    for k in range(steps):
        if max(s[k] for s in schedules) > 0:
            x = _commit_confident(denoiser, x, context, counts[k], scheduler, generator, noise * (1 - (k + 1) / steps) if anneal else noise, temperature)
        if callback is not None:
            callback(SamplerState(k, steps, x, mask_id))
    assert not bool((x == mask_id).any()), "MGM left masked tokens"
    return x


def _commit_confident(
    denoiser: Denoiser, x: Tensor, context: Tensor, commit_now: Tensor, scheduler: Scheduler, generator: torch.Generator,
    noise: float, temperature: float,
) -> Tensor:
    """One MGM step: sample every masked token, commit the ``commit_now[b]`` most confident ones.

    The network is asked for the M masked positions' logits only, and softmax, sampling and scores
    run on those."""
    batch, mask_id = x.shape[0], denoiser.mask_id
    masked = x == mask_id
    logits = denoiser(x, frame_times(~masked, scheduler), masked, context).float()  # [M,V]
    logp = torch.log_softmax(_tempered(logits, temperature), dim=-1)
    drawn = (logp + gumbel(logp.shape, generator, x.device)).argmax(-1)  # [M]
    drawn_score = logp.gather(-1, drawn[:, None])[:, 0] + noise * gumbel(drawn.shape, generator, x.device)  # [M]
    sampled = x.masked_scatter(masked, drawn)  # [B,T,H,W]
    score = torch.full(x.shape, float("-inf"), device=x.device).masked_scatter(masked, drawn_score).reshape(batch, -1)
    rank = score.argsort(dim=1, descending=True).argsort(dim=1)  # 0 = most confident
    commit = (rank < commit_now[:, None]).reshape(x.shape)
    return torch.where(commit, sampled, x)


def sample_fm(
    denoiser: Denoiser,
    tokens: Tensor,
    known: Tensor,
    *,
    steps: int,
    scheduler: Scheduler,
    generator: torch.Generator,
    callback: Callback = None,
    temperature: float = 1.0,
) -> Tensor:
    """Discrete flow-matching Euler sampler (Gat et al. 2024, Alg. 1; MaskFlow's "FM" sampler).

    Steps of size h = 1/K from t = 0 to 1: a masked token unmasks with probability
    min(1, h·κ'(t)/(1 − κ(t))) and then takes a sample from the predicted distribution; at the last
    step every remaining masked token unmasks, so none is left. A step in which no token unmasks
    needs no network call and makes none, so the NFE can be below K.
    """
    mask_id = denoiser.mask_id
    x = torch.where(known, tokens, mask_id)
    context = context_frames(known)
    h = 1.0 / steps
    for k in range(steps):
        masked = x == mask_id
        t = torch.tensor(k * h, dtype=torch.float64)
        rate = 1.0 if k == steps - 1 else float(h * scheduler.dkappa(t) / (1 - scheduler.kappa(t)).clamp(min=1e-12))
        unmask = masked & (torch.rand(x.shape, generator=generator, device=x.device) < min(rate, 1.0))
        if bool(unmask.any()):
            logits = denoiser(x, frame_times(~masked, scheduler), unmask, context).float()  # [U,V]
            drawn = (torch.log_softmax(_tempered(logits, temperature), -1) + gumbel(logits.shape, generator, x.device)).argmax(-1)  # [U]
            x = x.masked_scatter(unmask, drawn)
        if callback is not None:
            callback(SamplerState(k, steps, x, mask_id))
    assert not bool((x == mask_id).any()), "FM left masked tokens"
    return x


SAMPLERS = {"mgm": sample_mgm, "fm": sample_fm}
