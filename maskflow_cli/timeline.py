"""Which frame each output frame shows: an input frame passed through, or a frame the model made.

The model may see the input at a lower rate than the input's own (``--model-fps``): every
``stride``-th input frame. A :class:`Timeline` says which input frames the model sees, which gaps
it fills in its own frame numbers, and, for every frame of the output (always at the input's rate),
whether it is an input frame or which of the model's frames it shows. At ``stride`` 1 the model's
frames are the output's. At a larger stride each generated model frame is held for the output frames
around its time (no blending): ``extend`` shows new model frame j (1, 2, ...) for the ``stride``
output frames up to its time; ``infill`` shows, for each frame of a range, the model frame nearest
to it in time within that range.

Pure data, like the planner; tests check it on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from .errors import InvalidArgumentError


@dataclass(frozen=True)
class Timeline:
    length: int  # output frames
    stride: int  # input frames per model frame
    inputs: tuple[int, ...]  # the input frames the model sees, in order: model frame j is input frame inputs[j]
    gaps: tuple[tuple[int, int], ...]  # what the model fills, in its own frame numbers, [a, b)
    shows: tuple[int | None, ...]  # per output frame: the model frame it shows, None for an input frame passed through

    @property
    def generated(self) -> int:
        """Output frames that show a model frame."""
        return sum(j is not None for j in self.shows)


def generate_timeline(frames: int) -> Timeline:
    """``frames`` frames, all made by the model."""
    return Timeline(frames, 1, (), ((0, frames),), tuple(range(frames)))


def extend_timeline(input_frames: int, frames: int, stride: int = 1) -> Timeline:
    """The input's frames, then ``frames`` new ones; the model sees every ``stride``-th input frame
    ending with the last, and makes ``ceil(frames / stride)`` frames after them."""
    _check_stride(stride)
    inputs = tuple(range((input_frames - 1) % stride, input_frames, stride))
    made = math.ceil(frames / stride)
    known = len(inputs)
    shows = (None,) * input_frames + tuple(known - 1 + math.ceil(k / stride) for k in range(1, frames + 1))
    return Timeline(input_frames + frames, stride, inputs, ((known, known + made),), shows)


def infill_timeline(input_frames: int, gaps: Sequence[tuple[int, int]], stride: int = 1) -> Timeline:
    """The input with the ``gaps`` (input frame numbers, [a, b)) remade; the model sees every
    ``stride``-th input frame from the first, and remakes those of its frames that fall in a gap.
    InvalidArgumentError when a gap holds none of the model's frames."""
    _check_stride(stride)
    inputs = tuple(range(0, input_frames, stride))
    model_gaps, shows = [], [None] * input_frames
    for a, b in gaps:
        first, stop = math.ceil(a / stride), math.ceil(b / stride)
        if first >= stop:
            raise InvalidArgumentError("model_fps", f"one frame in {stride}",
                                       f"the range {a}:{b} holds none of the frames the model sees; give a longer range or a higher --model-fps")
        model_gaps.append((first, stop))
        for i in range(a, b):
            shows[i] = min(max(round(i / stride), first), stop - 1)
    return Timeline(input_frames, stride, inputs, tuple(model_gaps), tuple(shows))


def stride_for(input_fps: float, model_fps: float) -> int:
    """Input frames per model frame to bring ``input_fps`` nearest to ``model_fps`` (at least 1)."""
    return max(1, round(input_fps / model_fps))


def _check_stride(stride: int) -> None:
    if stride < 1:
        raise InvalidArgumentError("stride", stride, "must be at least 1")
