"""The training budget: a number of steps, a wall-clock time limit, or both (whichever ends first).

The learning-rate schedule follows the *schedule position*, the fraction of the budget spent:

- steps only: position = step / steps, the classic schedule (linear warm-up over ``warmup`` steps,
  then cosine decay to ``lr * min_lr_ratio`` at the last step), computed exactly as it always was;
- with a time limit: position = max(step / steps, elapsed / time_limit). The warm-up takes the same
  share of the budget as ``warmup`` of ``steps`` (500 of 20,000: the first 2.5 %), the cosine decay
  the rest, so the learning rate reaches its end when the time runs out, however fast the device.

The run ends when the position reaches 1. Under ``torchrun`` every rank uses the slowest rank's
clock (``shared_elapsed``), so all ranks set the same learning rate and stop after the same step.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Protocol, TypeVar

import torch
import torch.distributed as dist

from .errors import InvalidArgumentError

UNITS = {"s": 1, "m": 60, "h": 3600}


class Schedule(Protocol):
    """What the schedule reads of a training config (``training.TrainConfig``)."""

    steps: int
    time_limit: float | None
    warmup: int
    lr: float
    min_lr_ratio: float


Config = TypeVar("Config", bound=Schedule)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smh])")


def parse_duration(text: str, name: str = "time_limit") -> float:
    """'90s', '8m', '2h', '1h30m' -> seconds. InvalidArgumentError naming ``name`` for anything else."""
    spelled = str(text).strip().lower()
    parts = _DURATION.findall(spelled)
    if not parts or "".join(f"{number}{unit}" for number, unit in parts) != spelled:
        raise InvalidArgumentError(name, text, "a duration such as 90s, 8m, 2h or 1h30m")
    seconds = sum(float(number) * UNITS[unit] for number, unit in parts)
    if not 0 < seconds < math.inf:
        raise InvalidArgumentError(name, text, "must be longer than 0 s")
    return seconds


def schedule_position(step: int, cfg: Schedule, elapsed: float = 0.0) -> float:
    """The fraction of the budget spent before ``step`` (after ``elapsed`` seconds of training)."""
    by_steps = step / cfg.steps
    return by_steps if cfg.time_limit is None else max(by_steps, elapsed / cfg.time_limit)


def learning_rate(step: int, cfg: Schedule, elapsed: float = 0.0) -> float:
    """The learning rate of ``step``: linear warm-up to ``cfg.lr``, then cosine decay to
    ``cfg.lr * cfg.min_lr_ratio`` at the end of the budget (see the module docstring)."""
    if cfg.time_limit is None:
        if step < cfg.warmup:
            return cfg.lr * (step + 1) / cfg.warmup
        progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    else:
        position, warm = schedule_position(step, cfg, elapsed), cfg.warmup / cfg.steps
        if position < warm:
            return cfg.lr * max(position, (step + 1) / cfg.steps) / warm
        progress = (position - warm) / max(1 / cfg.steps, 1 - warm)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def charge_setup(cfg: Config, spent: float) -> Config:
    """``cfg`` with its time limit less ``spent`` seconds (what the run spent before its training
    loop: reading and tokenizing the data), so the loop gets the rest of the budget.
    InvalidArgumentError when nothing is left."""
    if cfg.time_limit is None:
        return cfg
    if spent >= cfg.time_limit:
        raise InvalidArgumentError("time_limit", cfg.time_limit, f"preparing the run took {spent:.0f} s of it; allow more time")
    return dataclasses.replace(cfg, time_limit=cfg.time_limit - spent)


def shared_elapsed(seconds: float, world: int, device: torch.device) -> float:
    """The training time every rank agrees on: the largest of the ranks' ``seconds`` (this one's
    own when not distributed)."""
    if world <= 1:
        return seconds
    value = torch.tensor([seconds], dtype=torch.float64, device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return float(value.item())
