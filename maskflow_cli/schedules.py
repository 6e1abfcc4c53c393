"""Schedules: the masking scheduler κ(t) of discrete flow matching and MaskGIT's commit schedule.

Time runs from all-masked (t = 0) to clean (t = 1); κ(t) is the probability that a token is unmasked
at time t (Gat et al. 2024, "Discrete Flow Matching"; MaskFlow, Fuest et al. 2025, §3). Each scheduler
is three small functions of a tensor: κ, its derivative κ' and its inverse κ⁻¹ (used to turn a frame's
unmasked fraction back into a masking time t for a timestep-dependent model).
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import torch
from torch import Tensor

SIGMOID_SLOPE = 8.0  # steepness of the sigmoid scheduler; κ is renormalised to κ(0)=0, κ(1)=1


class Scheduler(NamedTuple):
    kappa: Callable[[Tensor], Tensor]
    dkappa: Callable[[Tensor], Tensor]
    inverse: Callable[[Tensor], Tensor]


def kappa_linear(t: Tensor) -> Tensor:
    return t


def dkappa_linear(t: Tensor) -> Tensor:
    return torch.ones_like(t)


def inverse_linear(r: Tensor) -> Tensor:
    return r


def kappa_cosine(t: Tensor) -> Tensor:
    return 1 - torch.cos(0.5 * math.pi * t)


def dkappa_cosine(t: Tensor) -> Tensor:
    return 0.5 * math.pi * torch.sin(0.5 * math.pi * t)


def inverse_cosine(r: Tensor) -> Tensor:
    return torch.acos((1 - r).clamp(-1, 1)) * (2 / math.pi)


def _sigmoid_ends() -> tuple[float, float]:
    lo = 1 / (1 + math.exp(SIGMOID_SLOPE / 2))
    return lo, 1 - 2 * lo  # σ(-s/2), σ(s/2) - σ(-s/2)


def kappa_sigmoid(t: Tensor) -> Tensor:
    lo, span = _sigmoid_ends()
    return (torch.sigmoid(SIGMOID_SLOPE * (t - 0.5)) - lo) / span


def dkappa_sigmoid(t: Tensor) -> Tensor:
    _, span = _sigmoid_ends()
    s = torch.sigmoid(SIGMOID_SLOPE * (t - 0.5))
    return SIGMOID_SLOPE * s * (1 - s) / span


def inverse_sigmoid(r: Tensor) -> Tensor:
    lo, span = _sigmoid_ends()
    y = (r.clamp(0, 1) * span + lo).clamp(1e-12, 1 - 1e-12)
    return (torch.logit(y) / SIGMOID_SLOPE + 0.5).clamp(0, 1)


SCHEDULERS: dict[str, Scheduler] = {
    "sigmoid": Scheduler(kappa_sigmoid, dkappa_sigmoid, inverse_sigmoid),
    "linear": Scheduler(kappa_linear, dkappa_linear, inverse_linear),
    "cosine": Scheduler(kappa_cosine, dkappa_cosine, inverse_cosine),
}


def arccos_commit_counts(masked: int, steps: int) -> list[int]:
    """How many tokens MaskGIT-style sampling commits at each of ``steps`` steps.

    The fraction still masked after step k follows arccos(k/K)/(π/2) (Chang et al. 2022, "MaskGIT",
    §3.2; Besnier & Chen 2023 for the arccos variant). The counts sum to ``masked``; when
    ``masked >= steps`` every step commits at least one token, so all K network calls do work.
    """
    assert masked >= 0 and steps >= 1
    busy = masked >= steps
    counts, remaining = [], masked
    for k in range(1, steps + 1):
        ideal = math.floor(masked * math.acos(k / steps) / (0.5 * math.pi))
        low = steps - k if busy else 0  # leave at least one token for each later step
        high = remaining - 1 if busy else remaining  # commit at least one now
        after = min(max(ideal, low), high)
        counts.append(remaining - after)
        remaining = after
    assert remaining == 0
    return counts
