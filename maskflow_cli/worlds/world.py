"""What a world is: one kind of video the models can be trained and tested on.

A :class:`World` entry holds everything the rest of the package needs from a world: how
``maskflow data NAME`` builds its dataset (the builder's options and a :class:`DatasetJob`), its
held-out test clips (eval's default data for weights of that world) and its drift statistics (the
eval's long-horizon suite). The entries are in entries.py; ``worlds/__init__.py`` lists them.

Axis legend: N clips, B sequences, T frames, Y, X pixels, C channels.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    from torch import Tensor

    from ..video_io import FrameFormat

OnProgress = Callable[[int], None] | None  # called with the number of clips just finished


@dataclass(frozen=True)
class Option:
    """One parameter of a world's dataset builder, offered as ``maskflow data NAME --NAME``."""

    name: str  # the builder's keyword argument; the flag is --name, '_' written '-'
    type: type  # int or str
    help: str
    default: int | str | None = None  # None: required
    short: str | None = None  # a one-letter flag as well, e.g. "-n"


@dataclass(frozen=True)
class DatasetJob:
    """A dataset request whose arguments and output are checked and nothing is written yet."""

    plan: str  # one line saying what will be built, logged before the work starts
    run: Callable[[OnProgress], dict]  # run(on_progress) builds and writes the dataset -> what was written
    report: Callable[[dict, float], tuple[dict, str]]  # (what run wrote, seconds) -> (JSON summary, one line)
    progress: str | None = None  # what a progress bar over the clips says; None: run reports no progress
    clips: int = 0  # clips run makes: the bar's total


@dataclass(frozen=True)
class World:
    """A world's entry in the registry (``worlds/__init__.py``)."""

    name: str  # 'maskflow data NAME'
    description: str  # the data command's help: a summary line, then details and examples
    output_help: str  # what OUT may be in 'maskflow data NAME OUT'
    options: tuple[Option, ...]  # the dataset builder's parameters besides the output and overwrite
    dataset: Callable[..., DatasetJob]  # dataset(output, *, overwrite, **options): checks all, writes nothing
    held_out: Callable[[int, int, FrameFormat, int], Tensor]  # (count, frames, fmt, seed) -> uint8 [N,T,Y,X,C]
    held_out_name: str  # how eval's results name those held-out clips
    stats: Callable[[Tensor, Tensor], dict[str, Tensor]]  # (video, real) uint8 [B,T,Y,X,C] -> name: per-frame [B,T]
    stats_channels: tuple[int, ...]  # the frame channel counts the statistics are measured on
    weights: str | None = None  # the shipped weights set trained on this world (weight_sources.NAMED_WEIGHTS)


def deferred(module: str, name: str) -> Callable[..., Any]:
    """The function ``name`` of ``module`` (a dotted name), imported when it is first called: an entry
    names a world's functions without importing the world's module, and torch with it."""

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__ = call.__qualname__ = name
    return call
