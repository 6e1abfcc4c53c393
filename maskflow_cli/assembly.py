"""The output video, frame by frame: the input's own frames where the timeline passes them through,
the model's frames mapped back to the output's size where it shows them.

The model's run hands out its frames in order (``pipeline.Chunk``); the input's frames come from a
second, streaming read of the input (or, when the output has the model's format, from the frames the
model was given). Only the model frames still to be shown are held, so memory stays flat in the
video's length.
"""

from __future__ import annotations

from typing import Iterable, Iterator

from torch import Tensor

from .pipeline import Chunk
from .timeline import Timeline
from .video_io.geometry import OutputGeometry


class Assembly:
    """Iterate it for the output's frames, each uint8 [Y,X,C] at ``geometry.output``; ``nfe`` is the
    network calls the model's run has spent so far."""

    def __init__(self, chunks: Iterable[Chunk], timeline: Timeline, originals: Iterator[Tensor] | None,
                 geometry: OutputGeometry) -> None:
        self.timeline, self.geometry = timeline, geometry
        self.nfe = 0
        self._chunks = iter(chunks)
        self._originals = originals  # input frames uint8 [H,W,C], in order from frame 0
        self._needed = {j for j in timeline.shows if j is not None}
        self._made: dict[int, Tensor] = {}  # model frame -> uint8 [Ym,Xm,Cm], still to be shown
        self._received = 0  # model frames handed out by the run so far

    def __iter__(self) -> Iterator[Tensor]:
        next_input = 0
        for i, j in enumerate(self.timeline.shows):
            if j is None:
                assert self._originals is not None, "an input frame without an input"
                while next_input <= i:
                    frame = next(self._originals)  # [H,W,C]
                    next_input += 1
                yield self.geometry.passed(frame)
            else:
                yield self.geometry.generated(self._model_frame(j))
        for chunk in self._chunks:  # the run's last chunks: its NFE, and its own check that it finished
            self.nfe += chunk.nfe

    def _model_frame(self, j: int) -> Tensor:
        while self._received <= j:
            chunk = next(self._chunks)
            self.nfe += chunk.nfe
            for k, frame in enumerate(chunk.frames, start=chunk.start):
                if k in self._needed:
                    self._made[k] = frame
            self._received = chunk.start + len(chunk.frames)
        for old in [k for k in self._made if k < j]:
            del self._made[old]
        return self._made[j]
