"""Reading videos: decoded frames of one video stream, resized to a :class:`FrameFormat`.

:func:`open_video` and :func:`read_video` accept a path, ``"-"`` for standard input, or a binary
file object. Every frame is resized as it is decoded, so a long video is never held in memory by
the reader. Every problem with the input is reported as a :class:`~maskflow_cli.errors.VideoError`;
FFmpeg's exceptions never leave this module.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import BinaryIO

import av
import numpy as np
import torch

from maskflow_cli.errors import VideoError

from .frames import FrameFormat, resize_frame
from .reasons import av_reason, describe_error, os_reason
from .limits import MAX_FRAME_PIXELS, PIXEL_BUDGET_ENV, InputLimits
from .rates import frame_rate, matroska_duration, rate_from_timestamps
from .sources import PathOrFile, check_not_empty, open_source, peek

_STILL_IMAGE_FORMATS = {"image2", "image2pipe"}  # plus every "<codec>_pipe" demuxer
SAFE_DEMUXING = {"protocol_whitelist": "none"}  # no nested opens: concat lists, playlists, ...
_CANNOT_OPEN = "truncated, corrupt or not a video: FFmpeg cannot open it"


@dataclass(frozen=True)
class Video:
    """A whole decoded clip."""

    frames: torch.Tensor  # uint8 [T,H,W,C]
    fps: Fraction | None  # None for a still image
    stream: int = 0  # the file's stream that was read (its index among all streams)
    video_streams: int = 1  # how many video streams the file holds (cover art not counted)
    source_shape: tuple[int, int, int] | None = None  # the first frame upright, before resizing: (H, W, C)


class VideoReader:
    """Decoded frames of one video stream, resized to a :class:`FrameFormat`, one at a time.

    Make one with :func:`open_video`. Iterate it once; each item is a uint8 ``[H,W,C]`` tensor at
    the reader's format (as decoded, C 1 for gray sources and 3 otherwise, when ``fmt`` is None),
    turned upright; ``source_shape`` is the first frame's shape before resizing. Problems found while decoding raise :class:`VideoError`.
    ``fps`` is the container's rate until the last frame is decoded, then the timestamps' rate
    where they disagree with it (see :func:`open_video`).
    """

    fps: Fraction | None
    declared_frames: int | None
    declared_duration: Fraction | None  # seconds, as a Matroska/WebM track states it

    def __init__(
        self,
        name: str,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        fmt: FrameFormat | None,
        owned_file: BinaryIO | None,
        limits: InputLimits,
        video_streams: int,
    ) -> None:
        self.name = name
        self.fmt = fmt
        self.limits = limits
        self.stream = stream.index
        self.video_streams = video_streams
        self._container = container
        self._stream = stream
        self._owned_file = owned_file  # closed with the reader; None for a caller's file object
        self._iterated = False
        self.source_shape: tuple[int, int, int] | None = None
        self.fps = None if _is_still_image(container) else frame_rate(stream)
        self.declared_frames = stream.frames if stream.frames > 0 else None
        self.declared_duration = matroska_duration(container, stream)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self._iterated:
            raise RuntimeError("a VideoReader can be iterated only once")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[torch.Tensor]:
        """Decode, turn upright, convert and yield frames; check the count against the container's
        claim and the frame rate against the timestamps."""
        decoded = pixels = 0
        end: Fraction | None = None  # where the latest decoded frame ends, in seconds
        starts: list[Fraction] = []  # the first and last frame start seen, in seconds
        for frame in self._decoded_frames():
            _check_frame_size(self.name, frame.width, frame.height)
            pixels += frame.width * frame.height
            if pixels > self.limits.pixel_budget:
                raise VideoError(self.name, _over_budget(f"{decoded + 1} frames", self.limits))
            upright = _upright(self._to_tensor(frame, decoded), _rotation(frame))  # [H,W,C] uint8
            if self.source_shape is None:
                self.source_shape = tuple(upright.shape)
            yield upright if self.fmt is None else resize_frame(upright, self.fmt)  # [H,W,C] uint8 at self.fmt
            decoded += 1
            if frame.pts is not None and frame.time_base is not None:
                start = frame.pts * Fraction(frame.time_base)
                starts = [min(starts[0], start), max(starts[1], start)] if starts else [start, start]
            frame_end = self._frame_end(frame)
            if frame_end is not None and (end is None or frame_end > end):
                end = frame_end
        self.fps = rate_from_timestamps(self.fps, decoded, starts)
        if self.declared_frames is not None and decoded < self.declared_frames:
            raise VideoError(
                self.name,
                f"truncated or corrupt: decoded {decoded} of {self.declared_frames} frames",
            )
        if decoded == 0:
            raise VideoError(self.name, "contains no decodable video frames")
        self._check_duration(decoded, end)

    def _frame_end(self, frame: av.VideoFrame) -> Fraction | None:
        """The time in seconds at which ``frame`` stops being shown, if its timestamps say."""
        if frame.pts is None or frame.time_base is None:
            return None
        base = Fraction(frame.time_base)
        duration = getattr(frame, "duration", None)  # PyAV >= 14
        if duration:
            return (frame.pts + duration) * base
        return frame.pts * base + (1 / self.fps if self.fps else 0)

    def _check_duration(self, decoded: int, end: Fraction | None) -> None:
        """A Matroska/WebM track states its duration; decoding must have reached it.

        Other containers without a frame count (y4m, NUT, ...) give no reliable claim, and a
        duration FFmpeg estimated from the bit rate is no claim at all, so only this tag is used.
        A shortfall of more than half a frame means the file was cut short."""
        declared = self.declared_duration
        if declared is None or end is None or self.fps is None:
            return
        if end + 1 / (2 * self.fps) + Fraction(1, 500) < declared:
            raise VideoError(
                self.name,
                f"truncated or corrupt: decoded {decoded} frames ({float(end):.3f} s) "
                f"of a stream that lasts {float(declared):.3f} s",
            )

    def _decoded_frames(self) -> Iterator[av.VideoFrame]:
        """FFmpeg's decoded frames; every decoding or reading failure becomes a VideoError."""
        decoded = 0
        frames = self._container.decode(self._stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except av.FFmpegError as error:
                raise VideoError(self.name, self._corrupt_problem(decoded, error)) from error
            except OSError as error:  # from the file object: a seek FFmpeg asked for, a bad disk
                if error.errno == errno.EINVAL:
                    raise VideoError(self.name, self._corrupt_problem(decoded, error)) from error
                raise VideoError(self.name, f"read error: {os_reason(error)}") from error
            except (ValueError, EOFError, OverflowError) as error:  # UnicodeError included
                raise VideoError(self.name, self._corrupt_problem(decoded, error)) from error
            decoded += 1
            yield frame

    def _to_tensor(self, frame: av.VideoFrame, index: int) -> torch.Tensor:
        """``_frame_to_tensor`` with a failing pixel-format conversion reported as VideoError."""
        try:
            return _frame_to_tensor(frame)
        except (av.FFmpegError, ValueError) as error:
            problem = f"cannot convert frame {index} from pixel format {frame.format.name}"
            raise VideoError(self.name, f"{problem} ({error})") from error

    def _corrupt_problem(self, decoded: int, error: Exception) -> str:
        """One line describing a decoding failure after ``decoded`` good frames.

        A decoder refuses a picture over MAX_FRAME_PIXELS with EINVAL, before allocating it; when the
        header did not say the size at open, that is all there is to tell, so the first frame's
        EINVAL names the limit as a possible cause."""
        what = "truncated or corrupt"
        if decoded == 0 and getattr(error, "errno", None) == errno.EINVAL:
            what = f"truncated, corrupt or over the {MAX_FRAME_PIXELS:,}-pixel frame limit (e.g. 4096x4096)"
        if self.declared_frames is not None:
            return f"{what}: decoded {decoded} of {self.declared_frames} frames"
        return f"{what}: decoding failed after {decoded} frames ({describe_error(error)})"

    def close(self) -> None:
        """Release FFmpeg's resources and any file this reader opened itself."""
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            pass
        if self._owned_file is not None:
            self._owned_file.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_video(source: PathOrFile, fmt: FrameFormat | None, limits: InputLimits = InputLimits()) -> VideoReader:
    """Open a video (or a still PNG/JPEG image) for reading, resizing frames to ``fmt`` (None: as decoded).

    ``source`` is a path, ``"-"`` for ``sys.stdin.buffer``, or a binary file object (which stays
    the caller's to close). A source that cannot seek (a pipe, a named pipe, process substitution)
    is first copied into a ``tempfile.SpooledTemporaryFile``, up to ``limits.spool_bytes``, so
    containers that need to seek (an MP4 with its index at the end, ...) also work from a pipe.

    Frames are turned upright as the file's display matrix says (a phone video's rotation) before
    they are resized. The first video stream is read (cover art does not count); the reader's
    ``stream`` and ``video_streams`` say which and of how many. ``fps`` is the container's declared
    rate until the frames are decoded; then, if the frame timestamps disagree with it by more than
    2 %, the rate the timestamps give (millisecond-stamped or variable-rate Matroska).

    Raises :class:`VideoError` for anything that is not a readable video, and for inputs over
    ``limits`` (frames above :data:`MAX_FRAME_PIXELS`, more decoded pixels than
    ``limits.pixel_budget``), before FFmpeg allocates them where the header says so.
    """
    name, file, owned = open_source(source, limits.spool_bytes)
    try:
        check_not_empty(name, file)
        container = _open_container(name, file)
    except BaseException:
        if owned:
            file.close()
        raise
    try:
        stream, video_streams = _video_stream(name, container)
        _check_declared_pixels(name, stream, limits)
    except BaseException:
        container.close()
        if owned:
            file.close()
        raise
    return VideoReader(name, container, stream, fmt, file if owned else None, limits, video_streams)


def read_video(source: PathOrFile, fmt: FrameFormat, limits: InputLimits = InputLimits()) -> Video:
    """Decode a whole video into memory: :func:`open_video` plus stacking all frames."""
    with open_video(source, fmt, limits) as reader:
        frames = torch.stack(list(reader))  # [T,H,W,C] uint8
        return Video(frames=frames, fps=reader.fps, stream=reader.stream, video_streams=reader.video_streams,
                     source_shape=reader.source_shape)


def _open_container(name: str, file: BinaryIO) -> av.container.InputContainer:
    """Let FFmpeg probe and open ``file``; translate its failures into VideoError.

    Untrusted input: FFmpeg may not open any other file or URL on its behalf (a concat list or a
    playlist naming other files is refused), decoders refuse pictures above MAX_FRAME_PIXELS
    before allocating them (a forged header), and metadata that is not valid UTF-8 is decoded
    with replacement characters instead of failing."""
    try:
        head = peek(file, 12)
        return av.open(
            file,
            mode="r",
            options={"max_pixels": str(MAX_FRAME_PIXELS)},  # also while FFmpeg probes the streams
            container_options=SAFE_DEMUXING,
            metadata_errors="replace",
        )
    except av.InvalidDataError as error:
        raise VideoError(name, _unreadable_problem(head)) from error
    except av.FFmpegError as error:
        raise VideoError(name, f"{_CANNOT_OPEN} ({av_reason(error)})") from error
    except OSError as error:  # raised by the file object itself, e.g. a seek FFmpeg asked for
        if error.errno == errno.EINVAL:
            raise VideoError(name, f"{_CANNOT_OPEN} ({os_reason(error)})") from error
        raise VideoError(name, f"read error: {os_reason(error)}") from error
    except (ValueError, EOFError, OverflowError) as error:  # UnicodeError included
        raise VideoError(name, f"{_CANNOT_OPEN} ({type(error).__name__})") from error


def _unreadable_problem(head: bytes) -> str:
    """Why FFmpeg refused a file, guessing from its first bytes whether it is a cut-short MP4."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "truncated or corrupt: an MP4/MOV file without a readable index ('moov' atom)"
    return "not a video file that FFmpeg can read"


def _video_stream(name: str, container: av.container.InputContainer) -> tuple[av.VideoStream, int]:
    """The first real video stream (cover art attached to audio files does not count), and how
    many real video streams there are."""
    if not container.streams:
        raise VideoError(name, "not a video file that FFmpeg can read (no streams found)")
    videos = [s for s in container.streams.video if not _is_attached_picture(s)]
    if not videos:
        kinds = sorted({s.type for s in container.streams})
        raise VideoError(name, f"has no video stream (only {', '.join(kinds)})")
    stream = videos[0]
    if stream.codec_context is None:
        raise VideoError(name, "uses a video codec that FFmpeg cannot decode")
    _check_frame_size(name, stream.codec_context.width, stream.codec_context.height)
    # the decoder refuses larger pictures itself, before allocating them
    stream.codec_context.options = {**stream.codec_context.options, "max_pixels": str(MAX_FRAME_PIXELS)}
    return stream, len(videos)


def _check_declared_pixels(name: str, stream: av.VideoStream, limits: InputLimits) -> None:
    """Refuse before decoding when the declared frame count times the canvas is over the budget."""
    width, height = stream.codec_context.width, stream.codec_context.height
    if stream.frames > 0 and stream.frames * width * height > limits.pixel_budget:
        raise VideoError(name, _over_budget(f"{stream.frames} frames of {width}x{height}", limits))


def _over_budget(what: str, limits: InputLimits) -> str:
    return (f"{what} are more than the {limits.pixel_budget:,} decoded pixels an input may have; "
            f"set {PIXEL_BUDGET_ENV} higher to read it")


def _check_frame_size(name: str, width: int, height: int) -> None:
    """Refuse frames so large that decoding one could exhaust memory (a forged header)."""
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(
            name,
            f"frame size {width}x{height} is too large (at most {MAX_FRAME_PIXELS:,} pixels, "
            "e.g. 4096x4096); scale it down first",
        )


def _is_attached_picture(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _is_still_image(container: av.container.InputContainer) -> bool:
    """Whether FFmpeg opened the input with one of its single-image demuxers (PNG, JPEG, ...)."""
    format_name = container.format.name
    return format_name in _STILL_IMAGE_FORMATS or format_name.endswith("_pipe")


def _rotation(frame: av.VideoFrame) -> int:
    """Quarter turns counter-clockwise that show ``frame`` upright, from its display matrix
    (PyAV >= 14 reads it; 0 without one). Angles between quarter turns are rounded."""
    try:
        degrees = getattr(frame, "rotation", 0) or 0
    except (ValueError, TypeError, av.FFmpegError):  # a malformed matrix: show the frame as stored
        return 0
    return round(degrees / 90) % 4


def _upright(frame: torch.Tensor, quarter_turns: int) -> torch.Tensor:
    """uint8 [H,W,C] turned counter-clockwise by ``quarter_turns`` -> [H,W,C] or [W,H,C]."""
    return torch.rot90(frame, quarter_turns, dims=(0, 1)) if quarter_turns else frame


def _frame_to_tensor(frame: av.VideoFrame) -> torch.Tensor:
    """Decoded frame -> uint8 [H,W,1] for a gray source, uint8 [H,W,3] otherwise (alpha dropped)."""
    if _is_gray(frame.format):
        array = frame.to_ndarray(format="gray")[..., np.newaxis]  # [H,W,1]
    else:
        array = frame.to_ndarray(format="rgb24")  # [H,W,3]
    return torch.from_numpy(np.ascontiguousarray(array))


def _is_gray(pixel_format: av.VideoFormat) -> bool:
    """Whether a pixel format has a single non-alpha component (gray, gray16, ya8, ...)."""
    colour = [c for c in pixel_format.components if not c.is_alpha]
    return len(colour) == 1 and not pixel_format.has_palette
