"""Frame ranges as a user writes them, resolved against a video's length and frame rate.

A range is ``START:STOP``, 0-based and end-exclusive like a Python slice (``10:20`` is frames
10..19); a side left out runs to that end (``10:``, ``:5``), and ``7`` alone is frame 7.

- A negative frame number counts from the end, as in Python: ``-5:`` is the last five frames,
  ``-10:-2`` the ten before the last two but without them, ``-1`` the last frame.
- A number with an ``s`` is a time in seconds (``1.5s:3s``), rounded to the nearest frame at the
  video's rate: frame ``round(seconds × fps)``; a negative time counts back from the end
  (``-2s:`` is the last two seconds). Times and frame numbers mix (``2s:40``).

Unlike a Python slice, a range reaching past either end is an error, not clipped: a range names
frames to regenerate, and a mistyped one should not quietly name others. :func:`check_ranges`
refuses what is wrong whatever the video (before any work); :func:`parse_ranges` the rest, once its
length and rate are known.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Sequence

from .errors import InvalidArgumentError

_MAX_DIGITS = 1000  # numbers longer than this are refused unparsed (int() of 5,000 digits raises)
RANGE_FORMAT = ("expected START:STOP with 0-based, end-exclusive frame numbers (negative ones count from the end) "
                "or seconds, e.g. 10:20, -5: or 1.5s:3s")
REVERSED = "empty or reversed; STOP must be greater than START (STOP is exclusive)"
_NUMBER = re.compile(r"(-?)([0-9]+)")
_SECONDS = re.compile(r"(-?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)s")


@dataclass(frozen=True)
class Bound:
    """One side of a range: ``amount`` frames or seconds, counted from the end when ``from_end``."""

    amount: int | Fraction  # >= 0
    seconds: bool
    from_end: bool

    def frame(self, length: int, fps: Fraction | None, text: str) -> int:
        """The frame index this side names in a video of ``length`` frames at ``fps`` (may lie outside it)."""
        if self.seconds:
            if fps is None:
                raise InvalidArgumentError("ranges", text, "a time needs the input's frame rate and this input has none; give frame numbers")
            frames = math.floor(self.amount * fps + Fraction(1, 2))  # round half up: the nearest frame
        else:
            frames = self.amount
        return length - frames if self.from_end else frames


def _bound(part: str, text: str) -> Bound | None:
    """One side of a range (None when left out): ASCII digits only (no '+', '_' or other scripts)."""
    part = part.strip()
    if not part:
        return None
    number, seconds = _NUMBER.fullmatch(part), _SECONDS.fullmatch(part)
    match = number or seconds
    if match is None:
        raise InvalidArgumentError("ranges", text, RANGE_FORMAT)
    sign, digits = match.groups()
    if len(digits) > _MAX_DIGITS:
        where = "before the first frame" if sign else "beyond the end"
        raise InvalidArgumentError("ranges", text, f"{where} of any input: a number of {len(digits):,} digits")
    amount = int(digits) if number else Fraction(digits)
    return Bound(amount, seconds=bool(seconds), from_end=sign == "-" and amount != 0)


def _bounds(text: str) -> tuple[Bound, Bound | None, bool]:
    """``(start, stop, one_frame)`` of one range; stop None runs to the end; ``7`` alone is one frame."""
    parts = text.split(":")
    if len(parts) == 1:
        start = _bound(parts[0], text)
        if start is None:
            raise InvalidArgumentError("ranges", text, RANGE_FORMAT)
        return start, None, True
    if len(parts) != 2:
        raise InvalidArgumentError("ranges", text, RANGE_FORMAT)
    return _bound(parts[0], text) or Bound(0, seconds=False, from_end=False), _bound(parts[1], text), False


def _known_order(start: Bound, stop: Bound | None) -> bool | None:
    """Whether start < stop whatever the video (None: it depends on the length or the rate)."""
    if stop is None:
        return True if not start.from_end else None
    if start.seconds != stop.seconds or start.from_end != stop.from_end:
        return None
    return start.amount > stop.amount if start.from_end else start.amount < stop.amount


def _fixed_span(start: Bound, stop: Bound | None) -> tuple[int, float] | None:
    """``[a, b)`` for a range of frame numbers from the start (b inf: to the end), else None."""
    if start.seconds or start.from_end or (stop is not None and (stop.seconds or stop.from_end)):
        return None
    return int(start.amount), math.inf if stop is None else int(stop.amount)


def check_ranges(texts: Sequence[str]) -> None:
    """Reject what is wrong with frame ranges whatever the video: none given, malformed, empty or
    reversed where that shows without the length, overlapping where that does. Used before any
    work starts; :func:`parse_ranges` checks the rest once the input's length is known."""
    if not texts:
        raise InvalidArgumentError("ranges", "", "give at least one frame range such as 10:20")
    spans = []
    for text in texts:
        start, stop, one_frame = _bounds(text)
        if not one_frame and _known_order(start, stop) is False:
            raise InvalidArgumentError("ranges", text, REVERSED)
        span = _fixed_span(start, start if one_frame else stop)
        if span is not None:
            span = (span[0], span[0] + 1) if one_frame else span
            spans.append((*span, text))
    previous: tuple[int, float, str] | None = None
    for a, b, text in sorted(spans):
        if previous is not None and a < previous[1]:
            raise InvalidArgumentError("ranges", text, f"overlaps {previous[2]}; give disjoint ranges")
        previous = (a, b, text)


def _resolve(text: str, length: int, fps: Fraction | None) -> tuple[int, int]:
    start, stop, one_frame = _bounds(text)
    a = start.frame(length, fps, text)
    if one_frame:
        b = a + 1
    else:
        b = length if stop is None else stop.frame(length, fps, text)
    last = f"the input has {length} frames (0..{length - 1}, or -{length}..-1 from the end)"
    if a < 0 or b < 0:
        raise InvalidArgumentError("ranges", text, f"before the first frame: {last}")
    if a >= length or b > length:
        raise InvalidArgumentError("ranges", text, f"beyond the end: {last}")
    if a >= b:
        raise InvalidArgumentError("ranges", text, f"{REVERSED}; here {a}:{b}")
    return a, b


def parse_ranges(texts: Sequence[str], length: int, fps: Fraction | None = None) -> list[tuple[int, int]]:
    """Resolve frame ranges (see the module docstring) for a video of ``length`` frames at ``fps``
    frames a second (None: no rate known, times are refused). Rejects malformed, empty, reversed,
    out-of-bounds and overlapping ranges; returns ``[(start, stop), ...]`` sorted, touching ranges
    merged."""
    check_ranges(texts)
    ranges = sorted((_resolve(text, length, fps), text) for text in texts)
    merged: list[tuple[int, int]] = []
    for (a, b), text in ranges:
        if merged and a < merged[-1][1]:
            raise InvalidArgumentError("ranges", text, f"overlaps {merged[-1][0]}:{merged[-1][1]}; give disjoint ranges")
        if merged and a == merged[-1][1]:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged
