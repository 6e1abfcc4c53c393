"""The steps every file-handling command shares: the --fps choice, the output checks before any
work, reading the whole input with a progress counter, and the tokenizer's domain check."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING, BinaryIO, Callable

from ..errors import InvalidArgumentError, MaskflowError
from .report import Reporter

if TYPE_CHECKING:  # imported by the steps that use them, when a command runs
    import torch

    from ..tokenizer import FrameTokenizer
    from ..video_io import FrameFormat, Video



def fps_option(value: float | None) -> Fraction | None:
    """--fps as a Fraction every container holds, checked before any work (None: not given)."""
    if value is None:
        return None
    from ..video_io.rates import FPS_RANGE, representable_fps

    rate = representable_fps(value)
    if rate is None:
        raise InvalidArgumentError("fps", value, f"must be {FPS_RANGE}")
    return rate


FPS_FIX = "; give {param:fps} for the output"


def output_fps(value: Fraction | None, default: Fraction, refuse: Callable[[str], MaskflowError]) -> Fraction:
    """The output's frame rate: --fps, else ``default`` (the input's, the tokens file's or the
    weights' rate) as a fraction every container holds. ``refuse(problem)`` is the error, naming
    that source, for a default that is no such rate (FPS_FIX says what to do where --fps exists)."""
    if value is not None:
        return value
    from ..video_io.rates import FPS_RANGE, describe_fps, representable_fps

    rate = representable_fps(default)
    if rate is None:
        raise refuse(f"its frame rate {describe_fps(default)} is not {FPS_RANGE}")
    return rate


class MissingOutputError(MaskflowError):
    """A command that writes a file was not told where (no -o)."""

    exit_code = 2

    def __init__(self, example: str) -> None:
        super().__init__(f"missing option -o/--output: say where to write, e.g. -o {example} (or -o - for a stream on stdout)")


def require_output(output: str | None, example: str = "out.mp4") -> str:
    if not output:
        raise MissingOutputError(example)
    return output


def check_video_output(output: str, overwrite: bool, json_: bool, inputs: list[str]) -> None:
    """Refuse an output that could not or may not be written, before any work is done."""
    from ..video_io import check_not_input, check_output

    if output == "-" and json_:
        raise InvalidArgumentError("json_", True, "with -o - stdout carries the video; write to a file or drop {param:json_}")
    check_not_input(output, inputs)
    check_output(output, overwrite)


def read_input(reporter: Reporter, source: str | BinaryIO, fmt: FrameFormat) -> Video:
    """Decode the whole input (a path, "-" or a file object named as the input) at ``fmt`` within
    the limits of the environment (timed as "read"; waiting for stdin counts here), with a frame
    counter on a terminal that moves while it decodes; say which stream of several is used."""
    import torch

    from ..video_io import InputLimits, Video, open_video

    name = source if isinstance(source, str) else source.name
    with reporter.stage("read"), reporter.progress(None, f"reading {name}") as bar:
        with open_video(source, fmt, InputLimits.from_env()) as reader:
            if bar is not None and reader.declared_frames:
                bar.set_total(reader.declared_frames)
            frames = []
            for frame in reader:  # uint8 [Y,X,C]
                frames.append(frame)
                if bar is not None:
                    bar.advance()
            video = Video(torch.stack(frames), reader.fps, stream=reader.stream, video_streams=reader.video_streams,
                          source_shape=reader.source_shape)  # [T,Y,X,C]
    if video.video_streams > 1:
        reporter.log(f"{name}: {video.video_streams} video streams; using the first (stream #{video.stream})")
    return video


def check_domain_of(reporter: Reporter, tokenizer: FrameTokenizer, device: torch.device, weights: str | None, video: Video, source: str) -> dict:
    """Warn (stderr) when the tokenizer reconstructs the first input frames far worse than its own
    domain (see domain.py); the measurement for the JSON summary."""
    from ..domain import check_domain
    from ..weight_headers import inspect_weights

    with reporter.stage("domain_check"):
        check = check_domain(tokenizer, inspect_weights(weights)["tokenizer"].info, video.frames, device)
    if check.out_of_domain:
        reporter.warn(check.warning(source, frames_of(tokenizer.config)))
    return check.to_dict()


def frames_of(config) -> str:
    """What frames a tokenizer takes: '64×64 gray frames'."""
    return f"{config.width}×{config.height} {'gray' if config.channels == 1 else 'colour'} frames"
