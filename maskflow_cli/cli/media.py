"""What the sampling commands keep of their input besides the model's frames: the output's frame size
and colour (--size), the input's own frames passed through, its audio (--no-audio), and the rate the
model sees it at (--model-fps); plus what the summary says about each."""

from __future__ import annotations

from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING, Iterator

from .report import Reporter

if TYPE_CHECKING:  # imported when a command runs
    from torch import Tensor

    from ..video_io import FrameFormat, Video
    from ..video_io.audio import AudioCopy
    from ..video_io.geometry import OutputGeometry
    from ..video_io.sources import ReusableInput

_RATE_FACTOR = 1.5  # an input this much faster or slower than the weights' rate gets a warning


@dataclass
class Media:
    """The output's geometry, where its passed-through frames come from, and its audio."""

    geometry: OutputGeometry
    source: ReusableInput | None = None  # the input, read again for its frames and audio
    model_frames: Tensor | None = None  # uint8 [T,Y,X,C]: the input at the model's format
    audio: bool = False  # copy the input's audio
    notes: list[str] = field(default_factory=list)  # for the summary line
    facts: dict = field(default_factory=dict)  # for the JSON summary

    @contextmanager
    def open(self, name: str) -> Iterator[tuple[Iterator[Tensor] | None, AudioCopy | None]]:
        """(the input's frames in order, as the output takes them; the audio to mux), both open
        while the output is written."""
        from ..video_io import InputLimits, open_video
        from ..video_io.audio import AudioCopy

        with ExitStack() as stack:
            originals = None
            if self.geometry.is_model_format and self.model_frames is not None:
                originals = iter(self.model_frames)  # what the model saw is what is written
            elif self.source is not None:
                reader = stack.enter_context(open_video(stack.enter_context(self.source.open()), None, InputLimits.from_env()))
                originals = iter(reader)  # [H,W,C] as decoded
            audio = None
            if self.audio and self.source is not None:
                audio = AudioCopy(self.source.name, stack.enter_context(self.source.open()))
                stack.callback(audio.close)
            yield originals, audio
            if audio is not None:
                self.facts["audio"] = {"codec": audio.codec, "copied": audio.copied, "written": audio.written}
                self.notes.append(f"audio copied ({audio.codec})" if audio.copied else f"audio re-encoded ({audio.codec} to {audio.written})")


def output_format(size: tuple[int, int] | str, model: FrameFormat, source: tuple[int, int, int] | None) -> FrameFormat:
    """The output's frame format for --size: the input's size and colour (``input``), the model's
    format (``model``), or ``(width, height)`` in the input's colour (the model's without input)."""
    from ..video_io import FrameFormat

    if size == "model":
        return model
    channels = model.channels if source is None else (1 if source[2] == 1 else 3)
    if size == "input":
        assert source is not None, "--size input without an input"
        return FrameFormat(source[0], source[1], channels)
    width, height = size
    return FrameFormat(height, width, channels)


def geometry_notes(media: Media, generated: int) -> None:
    """What the summary says about the generated frames' size and colour."""
    geometry = media.geometry
    if generated and not geometry.fills_output:
        top, left, bottom, right = geometry.model_box()
        media.notes.append(f"new frames fill the model's {right - left}x{bottom - top} window, black around it")
    if generated and geometry.gray_into_colour:
        media.notes.append("the model's frames are gray")


def plan_audio(reporter: Reporter, media: Media, output: str, wanted: bool, retimed: bool = False) -> None:
    """Decide whether the input's audio goes into ``output``; log a choice among several streams.
    ``retimed``: the output's frame rate is not the input's (--fps), so the video no longer lasts as
    long as the audio and the audio is left out, with a note, rather than written out of step."""
    from ..video_io.audio import audio_streams, carries_audio
    from ..video_io.image_sequence import is_sequence_pattern
    from ..video_io.suffixes import encoding_for

    assert media.source is not None
    with media.source.open() as file:
        streams = audio_streams(media.source.name, file)
    if not streams or not wanted:
        media.facts["audio"] = None
        return
    if retimed:
        media.notes.append("audio left out: --fps retimes the video")
        media.facts["audio"] = None
        return
    if output == "-" or is_sequence_pattern(output) or not carries_audio(encoding_for(output).muxer):
        where = "stdout" if output == "-" else output.rsplit(".", 1)[-1].lower()  # y4m, gif, png
        media.notes.append(f"video only: {where} carries no audio")
        media.facts["audio"] = None
        return
    if streams > 1:
        reporter.log(f"{media.source.name}: {streams} audio streams; copying the first")
    media.audio = True


def model_stride(reporter: Reporter, input_fps: Fraction | None, weights_fps: Fraction, model_fps: float | None, name: str) -> int:
    """Input frames per model frame for --model-fps (1 without it); without it, one warning line
    when the input's rate is more than 1.5 times off the weights'."""
    from ..timeline import stride_for

    if input_fps is None:
        return 1
    if model_fps is not None:
        return stride_for(float(input_fps), model_fps)
    ratio = float(input_fps / weights_fps)
    if ratio > _RATE_FACTOR or ratio < 1 / _RATE_FACTOR:
        hint = f"; --model-fps {float(weights_fps):g} shows the model one frame in {stride_for(float(input_fps), float(weights_fps))}" if ratio > 1 else ""
        reporter.warn(f"{name}: {float(input_fps):g} fps, but the weights were trained at {float(weights_fps):g} fps "
                      f"and their motion per frame follows that rate{hint}")
    return 1


def read_with_geometry(reporter: Reporter, source: ReusableInput, fmt: FrameFormat) -> Video:
    """The input at the model's format (see steps.read_input), opened from a reusable input."""
    from .steps import read_input

    with source.open() as file:
        return read_input(reporter, file, fmt)
