"""Frame rate and duration of an input: what its container declares, and what its timestamps say.

:func:`frame_rate` is the stream's declared rate, :func:`rate_from_timestamps` overrules it with the
frames' own timing where the two disagree (millisecond-stamped or variable-rate Matroska), and
:func:`matroska_duration` is the track duration a Matroska/WebM muxer wrote, which decoding must reach.
Times and rates are exact :class:`~fractions.Fraction` values: seconds, and frames per second.

:func:`representable_fps` is the one rule for every frame rate the package writes, whether it came
from an input video, a tokens file, the weights or ``fps``: between 1/1000 and 1000 frames per
second, reduced to the nearest fraction with a denominator of at most 1001 (30000/1001 stays exact),
which every container's time base holds.
"""

from __future__ import annotations

import math
from fractions import Fraction

import av

MIN_FPS, MAX_FPS = Fraction(1, 1000), Fraction(1000)
FPS_RANGE = "between 0.001 and 1000"
_RATE_DISAGREEMENT = Fraction(1, 50)  # timestamps overrule a declared rate that is 2 % off


def representable_fps(rate: Fraction | float | int) -> Fraction | None:
    """``rate`` as a frame rate every container can hold, or None if it is not a finite number
    within MIN_FPS..MAX_FPS (a rate of 2147483647/1, or one of 10000001/10000000000 that no time
    base can state, rounds to 1/1000 here)."""
    if isinstance(rate, float) and not math.isfinite(rate):
        return None
    rate = Fraction(rate)
    return rate.limit_denominator(1001) if MIN_FPS <= rate <= MAX_FPS else None


def describe_fps(rate: Fraction | float | int) -> str:
    """A frame rate for a message, however large or small: ``30``, ``29.97``, ``2.147e+09``."""
    try:
        return f"{float(rate):.6g}"
    except OverflowError:
        return "more than 1e308"


def frame_rate(stream: av.VideoStream) -> Fraction | None:
    """The stream's average frame rate, else FFmpeg's guess; None if neither is known."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    return None


def rate_from_timestamps(declared: Fraction | None, frames: int, starts: list[Fraction]) -> Fraction | None:
    """The declared rate, or the mean rate of the frame timestamps when they disagree with it.

    ``starts`` is [earliest, latest] frame start in seconds. Matroska keeps millisecond timestamps
    and may declare a default rate (24) that the frames do not follow; a variable-rate file has no
    single rate at all, so its mean one is used. The mean rate is rounded to a common rate (an
    integer or an NTSC n*1000/1001) when it is within 0.5 % of one."""
    if frames < 2 or len(starts) != 2 or starts[1] <= starts[0]:
        return declared
    measured = (frames - 1) / (starts[1] - starts[0])
    if declared is not None and abs(declared - measured) <= measured * _RATE_DISAGREEMENT:
        return declared
    candidates = [Fraction(round(measured)), Fraction(round(measured * Fraction(1001, 1000)) * 1000, 1001)]
    nearest = min((c for c in candidates if c > 0), key=lambda c: abs(c - measured), default=None)
    if nearest is not None and abs(nearest - measured) <= measured / 200:
        return nearest
    return measured.limit_denominator(1000)


def matroska_duration(container: av.container.InputContainer, stream: av.VideoStream) -> Fraction | None:
    """The duration a Matroska/WebM muxer wrote for the track (tag ``DURATION``, ``HH:MM:SS.f``)."""
    if "matroska" not in container.format.name:
        return None
    text = next((v for k, v in stream.metadata.items() if k.upper() == "DURATION"), None)
    if not isinstance(text, str):
        return None
    parts = text.strip().split(":")
    try:
        if len(parts) != 3:
            return None
        hours, minutes, seconds = int(parts[0]), int(parts[1]), Fraction(parts[2])
    except (ValueError, ZeroDivisionError):
        return None
    duration = hours * 3600 + minutes * 60 + seconds
    return duration if duration > 0 else None
