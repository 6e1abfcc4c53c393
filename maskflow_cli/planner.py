"""The window planner: which frames each network window sees, generates and keeps.

A model sees at most W frames (its training length). Any video is made by a plan of windows, each a
contiguous run of frames [start, stop) in which some frames are context (known tokens, never changed)
and the others are generated; of the generated frames, ``keep`` are final after the window. The plan
is plain data: it is printed by ``--dry-run``, checked by tests and executed by the pipeline.

Every command fills *gaps*: ``generate`` fills [0, N) with nothing known, ``extend`` fills [n, n+N)
after n known frames, ``infill`` fills each user range between known frames. A gap is filled by

- full mode: one window holding the gap and as much context on each side as fits;
- autoregressive (ar) mode, a gap with known frames on one side only (``generate``, ``extend``, an
  infill range at either end of the video): windows of ``context`` known frames and W − context new
  ones, of which the first ``stride`` are kept, moving away from the known side until the rest of
  the gap fits in a final window;
- ar mode, a gap with known frames on both sides (``infill`` between known frames): one window with
  context on both sides whenever the gap leaves room for at least one known frame on each side
  (gap ≤ W − 2), the spare room split evenly between the sides. A longer gap is filled from both
  ends toward the middle, windows alternating between the left and the right end (each with
  ``context`` known frames of its side and at most ``stride`` kept), keeping only as many frames as
  it takes for the rest to fit one final window with ``context // 2`` (at least 1) known frames on
  each side; so as many frames as possible are made with both sides in view.

``plan_infill(..., order="left")`` keeps the earlier plan for gaps between known frames (forward from
the left; only the last window sees the right side), which ``benchmarks/infill_plans.py`` measures
against the default.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Sequence

from .errors import InvalidArgumentError

MODES = ("full", "ar")
MAX_FRAMES = 1_000_000


@dataclass(frozen=True)
class Window:
    start: int
    stop: int  # the window covers frames [start, stop) of the output video
    context: tuple[int, ...]  # frames given to the model, never changed
    keep: tuple[int, ...]  # generated frames that are final after this window

    @property
    def generated(self) -> tuple[int, ...]:
        known = set(self.context)
        return tuple(i for i in range(self.start, self.stop) if i not in known)


@dataclass(frozen=True)
class Plan:
    length: int  # frames of the output video
    given: tuple[tuple[int, int], ...]  # runs [a, b) of frames taken from the input
    windows: tuple[Window, ...]

    def to_dict(self) -> dict:
        return {
            "length": self.length,
            "given": [list(run) for run in self.given],
            "windows": [{**asdict(w), "generated": list(w.generated)} for w in self.windows],
        }


@dataclass(frozen=True)
class WindowSettings:
    """How windows are laid out; build with :func:`window_settings`, which validates."""

    window: int  # W, frames the model sees at once
    mode: str  # "full" or "ar"
    context: int  # ar: known frames at the start of each window
    stride: int  # ar: new frames kept from each window


def default_context(window: int) -> int:
    """ar mode's context when none is given: 3/8 of the window W, at least 1.

    Chosen by benchmarks/sampler_tuning.py on the shipped 16-frame weights: context 6 continued
    held-out sequences as well as 8 and context 4 clearly worse, and the shorter context leaves more
    new frames to each window (fewer windows for the same video)."""
    return max(1, 3 * window // 8)


DEFAULT_CONTEXT_TEXT = f"3/8 of the window, rounded down ({default_context(16)} of 16 frames)"  # as --help says it


def window_settings(window: int, mode: str = "ar", context: int | None = None, stride: int | None = None) -> WindowSettings:
    """Validate ``mode``, ``context`` and ``stride`` against the model's window W and fill defaults.

    Defaults in ar mode: context = :func:`default_context` (3W/8), stride = W − context (no generated
    frame is thrown away).
    """
    if mode not in MODES:
        raise InvalidArgumentError("mode", mode, "choose 'full' or 'ar'")
    if mode == "full":
        for name, value in (("context", context), ("stride", stride)):
            if value is not None:
                raise InvalidArgumentError(name, value, "only used with {param:mode=ar}")
        return WindowSettings(window, mode, 0, 0)
    if window < 2:
        raise InvalidArgumentError("mode", mode, f"the model's window of {window} frame is too short; use {{param:mode=full}}")
    context = default_context(window) if context is None else context
    if not 1 <= context <= window - 1:
        raise InvalidArgumentError("context", context, f"must be between 1 and {window - 1} for this model's {window}-frame window")
    stride = window - context if stride is None else stride
    if not 1 <= stride <= window - context:
        raise InvalidArgumentError("stride", stride, f"must be between 1 and {window - context} (window {window} − context {context})")
    return WindowSettings(window, mode, context, stride)


def check_frame_count(frames: int) -> None:
    if not 1 <= frames <= MAX_FRAMES:
        raise InvalidArgumentError("frames", frames, f"must be between 1 and {MAX_FRAMES:,}")


# ---- planning ------------------------------------------------------------------------------------


def plan_generate(frames: int, settings: WindowSettings) -> Plan:
    check_frame_count(frames)
    return Plan(frames, (), tuple(_fill_gap(0, frames, 0, 0, settings, "frames")))


def plan_extend(input_frames: int, frames: int, settings: WindowSettings) -> Plan:
    check_frame_count(frames)
    total = input_frames + frames
    windows = _fill_gap(input_frames, total, input_frames, 0, settings, "frames")
    return Plan(total, ((0, input_frames),), tuple(windows))


INFILL_ORDERS = ("both", "left")


def plan_infill(input_frames: int, gaps: Sequence[tuple[int, int]], settings: WindowSettings, order: str = "both") -> Plan:
    """Gaps sorted, disjoint and not touching (as :func:`parse_ranges` returns them), filled in order,
    so a gap's left context may hold frames made for an earlier gap and its right context only input
    frames. ``order`` (ar mode, gaps between known frames): "both" fills from both sides (the
    default), "left" forward from the left with the right side in the last window only."""
    if order not in INFILL_ORDERS:
        raise InvalidArgumentError("order", order, f"choose one of {', '.join(INFILL_ORDERS)}")
    windows: list[Window] = []
    given, known_from = [], 0
    for i, (a, b) in enumerate(gaps):
        right_end = gaps[i + 1][0] if i + 1 < len(gaps) else input_frames
        windows += _fill_gap(a, b, a, right_end - b, settings, f"range {a}:{b}", order)
        if a > known_from:
            given.append((known_from, a))
        known_from = b
    if input_frames > known_from:
        given.append((known_from, input_frames))
    return Plan(input_frames, tuple(given), tuple(windows))


def _fill_gap(a: int, b: int, left: int, right: int, settings: WindowSettings, label: str, order: str = "both") -> list[Window]:
    """Windows that fill frames [a, b), with ``left`` known frames just before a and ``right`` just
    after b. ``label`` names the gap in errors: "frames" or "range A:B"."""
    size = b - a
    if settings.mode == "full":
        need = min(left, 1) + min(right, 1)
        if size + need > settings.window:
            sides = f" plus {need} context frame{'s' * (need > 1)}" if need else ""
            name, value = ("frames", size) if label == "frames" else ("ranges", f"{a}:{b}")
            fix = f"{size} frames{sides} do not fit the model's {settings.window}-frame window in {{param:mode=full}}; use {{param:mode=ar}}"
            raise InvalidArgumentError(name, value, fix)
        rel = [_final_window(0, size, left, right, settings.window - size)]
    elif left == 0 and right > 0:  # known frames only on the right: fill from the right
        mirrored = _fill_autoregressive(size, right, 0, settings)
        return [_to_absolute(w, lambda i: b - 1 - i) for w in mirrored]
    elif left > 0 and right > 0 and order == "both":
        rel = _fill_from_both_sides(size, left, right, settings)
    else:
        rel = _fill_autoregressive(size, left, right, settings)
    return [_to_absolute(w, lambda i: a + i) for w in rel]


def _fill_autoregressive(size: int, left: int, right: int, s: WindowSettings) -> list[Window]:
    """Relative coordinates: the gap is [0, size); left context is ..., -2, -1; right is size, ..."""
    windows, pos = [], 0
    while True:
        remaining, known_left = size - pos, left + pos
        ctx = min(s.context, known_left)
        if remaining + ctx + min(right, 1) <= s.window or remaining == 1:
            budget = s.window - remaining if right else ctx
            windows.append(_final_window(pos, size, known_left, right, budget))
            return windows
        new = s.window - ctx
        keep = new if ctx == 0 else min(s.stride, new, remaining - 1 if right else remaining)
        assert keep >= 1, "the planner must make progress"
        windows.append(Window(pos - ctx, pos + new, tuple(range(pos - ctx, pos)), tuple(range(pos, pos + keep))))
        pos += keep


def _fill_from_both_sides(size: int, left: int, right: int, s: WindowSettings) -> list[Window]:
    """Relative coordinates as in :func:`_fill_autoregressive`; ``left`` and ``right`` ≥ 1.

    A gap of at most W − 2 frames is one window. In a longer one, windows from one end (alternating,
    left first) keep the frames next to that end, no more than it takes for the unfilled middle
    [lo, hi) to shrink to ``W − 2·side`` frames; the final window holds the middle and the spare
    room as context, split evenly between the sides."""
    side = max(1, s.context // 2)  # known frames per side the final window of a long gap is sized for
    last = size if size + 2 <= s.window else s.window - 2 * side  # frames the final window makes
    windows, lo, hi, from_left = [], 0, size, True
    while hi - lo > last:
        excess = (hi - lo) - last
        known = left + lo if from_left else right + size - hi
        ctx = min(s.context, known)
        new = min(s.window - ctx, hi - lo)  # the window stays inside the gap
        keep = min(s.stride, new, excess)
        if from_left:
            windows.append(Window(lo - ctx, lo + new, tuple(range(lo - ctx, lo)), tuple(range(lo, lo + keep))))
            lo += keep
        else:
            windows.append(Window(hi - new, hi + ctx, tuple(range(hi, hi + ctx)), tuple(range(hi - keep, hi))))
            hi -= keep
        from_left = not from_left
    if hi > lo:  # (a 2-frame window has no room for both sides: nothing is left then)
        windows.append(_final_window(lo, hi, left + lo, right + size - hi, s.window - (hi - lo)))
    return windows


def _final_window(pos: int, stop: int, known_left: int, right: int, budget: int) -> Window:
    """A window with all of [pos, stop) and ``budget`` context frames shared by both sides."""
    n_right = min(right, budget // 2 if known_left else budget)
    n_left = min(known_left, budget - n_right)
    n_right = min(right, budget - n_left)
    context = tuple(range(pos - n_left, pos)) + tuple(range(stop, stop + n_right))
    return Window(pos - n_left, stop + n_right, context, tuple(range(pos, stop)))


def _to_absolute(w: Window, index) -> Window:
    ends = (index(w.start), index(w.stop - 1))
    return Window(min(ends), max(ends) + 1, tuple(sorted(map(index, w.context))), tuple(sorted(map(index, w.keep))))
