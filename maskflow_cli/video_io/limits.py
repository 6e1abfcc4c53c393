"""What one input may cost before it is refused: frame size, decoded pixels, bytes spooled from a pipe.

A few hundred bytes of GIF or PNG can declare a huge canvas and many frames, and a pipe can be
endless; these bounds are checked before the expensive work (at open, from the declared canvas and
frame count) and again while decoding and spooling, so memory and CPU time stay bounded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from maskflow_cli.errors import InvalidArgumentError

MAX_FRAME_PIXELS = 4096 * 4096  # per frame; 4K UHD (3840x2160) and 12-megapixel photos fit
DEFAULT_PIXEL_BUDGET = 2**34  # decoded pixels per input: ~2,000 frames of 4K, millions of small ones
DEFAULT_SPOOL_BYTES = 2**30  # a pipe is copied aside up to 1 GiB
PIXEL_BUDGET_ENV = "MASKFLOW_MAX_INPUT_PIXELS"
SPOOL_BYTES_ENV = "MASKFLOW_MAX_SPOOL_BYTES"

_SIZE = re.compile(r"^\s*(\d+)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


@dataclass(frozen=True)
class InputLimits:
    """Bounds on one video input.

    ``pixel_budget``: decoded frames times their pixels (declared frame count times canvas at open,
    the running total while decoding). ``spool_bytes``: the most read from a pipe, a named pipe or
    process substitution, which must be copied aside because FFmpeg needs to seek. Frames above
    :data:`MAX_FRAME_PIXELS` are always refused."""

    pixel_budget: int = DEFAULT_PIXEL_BUDGET
    spool_bytes: int = DEFAULT_SPOOL_BYTES

    def __post_init__(self) -> None:
        if self.pixel_budget < 1:
            raise InvalidArgumentError("pixel_budget", self.pixel_budget, "must be at least 1")
        if self.spool_bytes < 1:
            raise InvalidArgumentError("spool_bytes", self.spool_bytes, "must be at least 1")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> InputLimits:
        """The defaults, raised or lowered by ``MASKFLOW_MAX_INPUT_PIXELS`` and
        ``MASKFLOW_MAX_SPOOL_BYTES`` (a count, with an optional K, M, G or T binary suffix)."""
        return cls(
            pixel_budget=env_count(environ, PIXEL_BUDGET_ENV, DEFAULT_PIXEL_BUDGET),
            spool_bytes=env_count(environ, SPOOL_BYTES_ENV, DEFAULT_SPOOL_BYTES),
        )


def env_count(environ: Mapping[str, str], name: str, default: int) -> int:
    """The count in ``environ[name]`` (optional K, M, G, T binary suffix); ``default`` when unset."""
    text = environ.get(name, "")
    if not text.strip():
        return default
    match = _SIZE.match(text)
    if match is None or int(match.group(1)) < 1:
        raise InvalidArgumentError(name, text, "a positive whole number, optionally with K, M, G or T, e.g. 4G")
    return int(match.group(1)) * _UNITS[match.group(2).lower()]
