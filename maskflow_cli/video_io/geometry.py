"""Where the frames of one run land in the output: the input's own frames, and the model's frames
mapped back by the inverse of the one mapping that fed the model.

The mapping from a user's frame to the model's (:func:`~.frames.resize_frame`) cuts the largest
centred window with the model's aspect ratio out of the frame and resamples it to the model's size.
Its inverse puts a generated model frame back on that window, resampled to the window's size in the
output; the part of the output outside the window, which the model never saw, is black (a
letterbox or pillarbox). So a generated frame lines up with the input frames around it (no jump
in scale or position), and nothing is claimed about the part the model did not see.

An output of another size than the input (``--size WxH``) is the input mapped the same way (centre
window of the output's aspect, resampled); the model's window is then placed where it falls in
that output, clipped to it. A gray model's frame becomes gray pixels in a colour output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .frames import FrameFormat, centre_window, resize_frame


@dataclass(frozen=True)
class OutputGeometry:
    """The source's upright frame size, the model's frame format and the output's."""

    source: tuple[int, int]  # (rows, columns) of the input's upright frames (the model's for generate)
    model: FrameFormat
    output: FrameFormat

    @classmethod
    def at_model_size(cls, model: FrameFormat) -> "OutputGeometry":
        """Everything at the model's format: the frames the model sees are the frames written."""
        return cls((model.height, model.width), model, model)

    @property
    def is_model_format(self) -> bool:
        """Whether the output has the model's format: the frames written are the model's own."""
        return self.output == self.model

    @property
    def fills_output(self) -> bool:
        """Whether a generated frame covers the whole output (no black around it)."""
        return self.model_box() == (0, 0, self.output.height, self.output.width)

    @property
    def gray_into_colour(self) -> bool:
        """Whether generated gray frames go into a colour output."""
        return self.model.channels == 1 and self.output.channels == 3

    def passed(self, frame: torch.Tensor) -> torch.Tensor:
        """An input frame, uint8 [H,W,C], as it is written: unchanged at the input's size and
        colour (bit-exact), else mapped to the output's format."""
        return resize_frame(frame, self.output)  # [Y,X,C] at self.output

    def generated(self, frame: torch.Tensor) -> torch.Tensor:
        """A generated frame, uint8 [Ym,Xm,Cm] at the model's format -> [Y,X,C] at the output's:
        on the model's window, black around it."""
        top, left, bottom, right = self.model_box()
        out = self.output
        if (top, left, bottom, right) == (0, 0, out.height, out.width):
            return resize_frame(frame, out)
        placed = resize_frame(frame, FrameFormat(bottom - top, right - left, out.channels))  # [h,w,C]
        canvas = torch.zeros(out.shape, dtype=torch.uint8)  # [Y,X,C] black
        y0, x0 = max(top, 0), max(left, 0)
        y1, x1 = min(bottom, out.height), min(right, out.width)
        canvas[y0:y1, x0:x1] = placed[y0 - top : y1 - top, x0 - left : x1 - left]
        return canvas

    def model_box(self) -> tuple[int, int, int, int]:
        """``(top, left, bottom, right)`` of the model's window in output pixels (may reach past
        the output's edges when the output is narrower than the model's window)."""
        rows, columns = self.source
        m_top, m_left, m_rows, m_cols = centre_window(rows, columns, self.model.height, self.model.width)
        o_top, o_left, o_rows, o_cols = centre_window(rows, columns, self.output.height, self.output.width)
        scale_y, scale_x = self.output.height / o_rows, self.output.width / o_cols
        top, left = round((m_top - o_top) * scale_y), round((m_left - o_left) * scale_x)
        bottom = max(top + 1, round((m_top + m_rows - o_top) * scale_y))
        right = max(left + 1, round((m_left + m_cols - o_left) * scale_x))
        return top, left, bottom, right
