"""The registry of worlds: every kind of video maskflow builds datasets for and tests weights on.

``WORLDS`` maps each world's name to its entry (:class:`World`, worlds/world.py): ``maskflow data
NAME`` is made from it, and evaluation takes its default held-out clips and its long-horizon drift
statistics from it. A new world is one module with its functions, plus its entry (entries.py) and
its line in ``WORLDS`` below. Nothing here imports a world's module, or torch, before it is used.

Axis legend: B sequences, T frames, Y, X pixels, C channels.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError
from ..weight_sources import shipped_name
from .entries import MAZE, MOVING_MNIST
from .world import DatasetJob, Option, World

if TYPE_CHECKING:
    from torch import Tensor

WORLDS: dict[str, World] = {entry.name: entry for entry in (
    MOVING_MNIST,
    MAZE,
)}
DEFAULT_WORLD = MOVING_MNIST.name  # the world of the default weights ('digits')


def world_named(name: str) -> World:
    """The registered world ``name``; InvalidArgumentError naming ``world`` otherwise."""
    if name not in WORLDS:
        raise InvalidArgumentError("world", name, f"choose one of {', '.join(WORLDS)}")
    return WORLDS[name]


def world_of_weights(source: str | os.PathLike | None) -> World:
    """The world a weights source was trained on, as far as the source tells: a shipped set by name
    (None: the default weights) is its world's; any other source gets the default world."""
    name = shipped_name(source)
    return next((entry for entry in WORLDS.values() if name is not None and entry.weights == name), WORLDS[DEFAULT_WORLD])


def drift_stats(video: Tensor, real: Tensor) -> dict[str, Tensor]:
    """Long-horizon statistics of uint8 [B,T,Y,X,C] ``video``, each per frame [B,T]: those of every
    world measured on C-channel frames, in registry order (the held-out data may be any world's, or a
    folder of the user's videos). ``real`` uint8 [N,L,Y,X,C] are the real sequences compared with."""
    channels = video.shape[-1]
    return {name: values for entry in WORLDS.values() if channels in entry.stats_channels
            for name, values in entry.stats(video, real).items()}


__all__ = ["DEFAULT_WORLD", "WORLDS", "DatasetJob", "Option", "World", "drift_stats", "world_named", "world_of_weights"]
