"""Reading and writing video files: the only module of the package that touches them.

Frames are handed around as ``torch.uint8`` tensors laid out ``[H,W,C]`` (one frame) or
``[T,H,W,C]`` (a clip), already in the model's :class:`FrameFormat`.

Reading (:func:`open_video`, :func:`read_video`) accepts a path, ``"-"`` for standard input, or a
binary file object. Every frame is resized with :func:`resize_frame` as it is decoded, so a long
video is never held in memory by the reader. Every problem with the input is reported as a
:class:`~maskflow_cli.errors.VideoError`; FFmpeg's exceptions never leave this module.

Writing (:func:`open_writer`) picks the container and codec from the target's suffix, streams
frames into a hidden temporary file beside the target and renames it over the target only when
the ``with`` block ends without an exception. Problems are reported as
:class:`~maskflow_cli.errors.OutputError`.

FFmpeg's own log output is switched off when this module is imported
(``av.logging.set_level(None)``, which is also PyAV's default), so nothing of FFmpeg's reaches
stderr.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import av
import av.logging
import numpy as np
import torch
import torch.nn.functional as F

from maskflow_cli.errors import OutputError, VideoError

av.logging.set_level(None)  # no FFmpeg log lines on stderr

PathOrFile = str | os.PathLike[str] | BinaryIO

_SPOOL_IN_MEMORY_BYTES = 64 * 1024 * 1024  # larger piped inputs roll over to a temporary file
_COPY_CHUNK_BYTES = 1024 * 1024
_STILL_IMAGE_FORMATS = {"image2", "image2pipe"}  # plus every "<codec>_pipe" demuxer
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601
_LUMA_WEIGHTS_PER_MILLE = (299, 587, 114)
_SAFE_DEMUXING = {"protocol_whitelist": "none"}  # no nested opens: concat lists, playlists, ...
_CANNOT_OPEN = "truncated, corrupt or not a video: FFmpeg cannot open it"
MAX_FRAME_PIXELS = 8192 * 8192  # larger frames are refused before FFmpeg allocates them


# --------------------------------------------------------------------------- frame format


@dataclass(frozen=True)
class FrameFormat:
    """The model's frame format: every frame read is converted to it, every frame written has it."""

    height: int
    width: int
    channels: int  # 1 (gray) or 3 (RGB)

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"frame size must be positive, got {self.height}x{self.width}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)``: the shape of one frame tensor."""
        return (self.height, self.width, self.channels)

    @classmethod
    def of(cls, tokenizer_config) -> "FrameFormat":
        """The frame format a tokenizer config (``height``, ``width``, ``channels``) implies."""
        return cls(tokenizer_config.height, tokenizer_config.width, tokenizer_config.channels)


def resize_frame(frame: torch.Tensor, fmt: FrameFormat) -> torch.Tensor:
    """Convert one frame of any size and channel count to ``fmt``.

    ``frame`` is uint8 ``[H,W,C]`` with C = 1 (gray), 3 (RGB) or 4 (RGBA); the result is uint8
    ``[fmt.height, fmt.width, fmt.channels]``.

    Rule:

    * Size: the frame is scaled, keeping its aspect ratio, until it just *covers* the target, and
      the part sticking out is cropped evenly from both sides (centre crop). It is implemented by
      first cutting the centred window with the target's aspect ratio out of the source and then
      resampling that window to exactly the target size with
      ``torch.nn.functional.interpolate(mode="bilinear", antialias=True)``. When the window
      already has the target size nothing is resampled, so a frame of the right size passes
      through bit-exact.
    * Channels: alpha is dropped; RGB -> gray uses BT.601 luma ``0.299 R + 0.587 G + 0.114 B``,
      rounded to the nearest integer (halves up); gray -> RGB repeats the gray value three times.
    * All arithmetic of a resampled frame is done in float32 and rounded once at the end.
    """
    _check_frame(frame)
    rgb_or_gray = frame[..., :3]  # [H,W,C<=3] alpha dropped
    window = _centre_crop_to_aspect(rgb_or_gray, fmt.height, fmt.width)  # [h',w',C]
    if tuple(window.shape[:2]) == (fmt.height, fmt.width):
        return _convert_channels_exact(window, fmt.channels).contiguous()
    return _resample(window, fmt)


def _check_frame(frame: torch.Tensor) -> None:
    """Raise ValueError unless ``frame`` is a uint8 ``[H,W,C]`` tensor with C in 1, 3, 4."""
    if frame.dtype != torch.uint8 or frame.dim() != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"expected a uint8 [H,W,C] frame with C in (1, 3, 4), "
            f"got {frame.dtype} {tuple(frame.shape)}"
        )
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame is empty: {tuple(frame.shape)}")


def _centre_crop_to_aspect(frame: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Cut the largest centred window with aspect ratio ``height:width`` out of ``frame``.

    uint8 [H,W,C] -> uint8 [h',w',C] with h'/w' ~= height/width (a view, no copy).
    """
    src_h, src_w = frame.shape[0], frame.shape[1]
    if src_h * width > src_w * height:  # source is relatively taller: crop rows
        keep_h = max(1, min(src_h, round(src_w * height / width)))
        top = (src_h - keep_h) // 2
        return frame[top : top + keep_h]
    keep_w = max(1, min(src_w, round(src_h * width / height)))
    left = (src_w - keep_w) // 2
    return frame[:, left : left + keep_w]


def _convert_channels_exact(frame: torch.Tensor, channels: int) -> torch.Tensor:
    """Channel conversion of a uint8 [H,W,C] frame in exact integer arithmetic -> [H,W,channels]."""
    if frame.shape[2] == channels:
        return frame
    if channels == 3:  # gray -> RGB
        return frame.expand(-1, -1, 3)
    wr, wg, wb = _LUMA_WEIGHTS_PER_MILLE
    rgb = frame.to(torch.int32)  # [H,W,3]
    luma = (wr * rgb[..., 0] + wg * rgb[..., 1] + wb * rgb[..., 2] + 500) // 1000  # [H,W]
    return luma.to(torch.uint8).unsqueeze(-1)  # [H,W,1]


def _resample(window: torch.Tensor, fmt: FrameFormat) -> torch.Tensor:
    """Resample a uint8 [h',w',C] window to uint8 [fmt.height, fmt.width, fmt.channels]."""
    planes = window.permute(2, 0, 1).to(torch.float32)  # [C,h',w']
    if fmt.channels == 1 and planes.shape[0] == 3:
        weights = torch.tensor(_LUMA_WEIGHTS, dtype=torch.float32).view(3, 1, 1)
        planes = (planes * weights).sum(dim=0, keepdim=True)  # [1,h',w']
    resized = F.interpolate(
        planes.unsqueeze(0),  # [1,C,h',w']
        size=(fmt.height, fmt.width),
        mode="bilinear",
        align_corners=False,
        antialias=True,
    )[0]  # [C,h,w]
    if fmt.channels == 3 and resized.shape[0] == 1:
        resized = resized.expand(3, -1, -1)  # [3,h,w]
    pixels = resized.round().clamp(0, 255).to(torch.uint8)  # [C,h,w]
    return pixels.permute(1, 2, 0).contiguous()  # [h,w,C]


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Video:
    """A whole decoded clip."""

    frames: torch.Tensor  # uint8 [T,H,W,C]
    fps: Fraction | None  # None for a still image


class VideoReader:
    """Decoded frames of one video stream, resized to a :class:`FrameFormat`, one at a time.

    Make one with :func:`open_video`. Iterate it once; each item is a uint8 ``[H,W,C]`` tensor at
    the reader's format. Problems found while decoding raise :class:`VideoError`.
    """

    fps: Fraction | None
    declared_frames: int | None
    declared_duration: Fraction | None  # seconds, as a Matroska/WebM track states it

    def __init__(
        self,
        name: str,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        fmt: FrameFormat,
        owned_file: BinaryIO | None,
    ) -> None:
        self.name = name
        self.fmt = fmt
        self._container = container
        self._stream = stream
        self._owned_file = owned_file  # closed with the reader; None for a caller's file object
        self._iterated = False
        self.fps = None if _is_still_image(container) else _frame_rate(stream)
        self.declared_frames = stream.frames if stream.frames > 0 else None
        self.declared_duration = _matroska_duration(container, stream)

    def __iter__(self) -> Iterator[torch.Tensor]:
        if self._iterated:
            raise RuntimeError("a VideoReader can be iterated only once")
        self._iterated = True
        return self._frames()

    def _frames(self) -> Iterator[torch.Tensor]:
        """Decode, convert and yield frames; check the count against the container's claim."""
        decoded = 0
        end: Fraction | None = None  # where the latest decoded frame ends, in seconds
        for frame in self._decoded_frames():
            _check_frame_size(self.name, frame.width, frame.height)
            yield resize_frame(self._to_tensor(frame, decoded), self.fmt)  # [H,W,C] uint8
            decoded += 1
            frame_end = self._frame_end(frame)
            if frame_end is not None and (end is None or frame_end > end):
                end = frame_end
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
                raise VideoError(self.name, f"read error: {_os_reason(error)}") from error
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
        """One line describing a decoding failure after ``decoded`` good frames."""
        if self.declared_frames is not None:
            return f"truncated or corrupt: decoded {decoded} of {self.declared_frames} frames"
        return f"truncated or corrupt: decoding failed after {decoded} frames ({_describe(error)})"

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


def open_video(source: PathOrFile, fmt: FrameFormat) -> VideoReader:
    """Open a video (or a still PNG/JPEG image) for reading, resizing frames to ``fmt``.

    ``source`` is a path, ``"-"`` for ``sys.stdin.buffer``, or a binary file object (which stays
    the caller's to close). A stream that cannot seek (a pipe) is first copied into a
    ``tempfile.SpooledTemporaryFile``, so containers that need to seek (an MP4 with its index at
    the end, ...) also work from a pipe. Raises :class:`VideoError` for anything that is not a
    readable video.
    """
    name, file, owned = _open_source(source)
    try:
        _check_not_empty(name, file)
        container = _open_container(name, file)
    except BaseException:
        if owned:
            file.close()
        raise
    try:
        stream = _video_stream(name, container)
    except BaseException:
        container.close()
        if owned:
            file.close()
        raise
    return VideoReader(name, container, stream, fmt, file if owned else None)


def read_video(source: PathOrFile, fmt: FrameFormat) -> Video:
    """Decode a whole video into memory: :func:`open_video` plus stacking all frames."""
    with open_video(source, fmt) as reader:
        frames = torch.stack(list(reader))  # [T,H,W,C] uint8
        return Video(frames=frames, fps=reader.fps)


def _open_source(source: PathOrFile) -> tuple[str, BinaryIO, bool]:
    """``(name for messages, seekable binary file, whether we own it)`` for any kind of source."""
    if isinstance(source, (str, os.PathLike)):
        if os.fspath(source) == "-":
            return _open_stream("<stdin>", sys.stdin.buffer)
        return _open_path(os.fspath(source))
    raw_name = getattr(source, "name", None)
    return _open_stream(raw_name if isinstance(raw_name, str) else "<stdin>", source)


def _open_path(path: str) -> tuple[str, BinaryIO, bool]:
    """Open a file path ourselves, so FFmpeg never interprets its name (``x:y``, ``%d``)."""
    if os.path.isdir(path):
        raise VideoError(path, "is a directory, not a video file")
    try:
        return path, open(path, "rb"), True
    except FileNotFoundError as error:
        raise VideoError(path, "no such file") from error
    except OSError as error:
        raise VideoError(path, f"cannot open: {_os_reason(error)}") from error


def _open_stream(name: str, stream: BinaryIO) -> tuple[str, BinaryIO, bool]:
    """Use a seekable stream as it is; copy a non-seekable one (a pipe) into a spool file."""
    if _is_seekable(stream):
        return name, stream, False
    if _is_terminal(stream):
        raise VideoError(name, "is a terminal; pipe a video file into it")
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES)
    try:
        shutil.copyfileobj(stream, spool, _COPY_CHUNK_BYTES)
        spool.seek(0)
    except OSError as error:
        spool.close()
        raise VideoError(name, f"read error: {_os_reason(error)}") from error
    except BaseException:
        spool.close()
        raise
    return name, spool, True  # type: ignore[return-value]  # a SpooledTemporaryFile is binary IO


def _is_seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def _is_terminal(stream: BinaryIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _peek(file: BinaryIO, size: int) -> bytes:
    """The next ``size`` bytes of a seekable file, leaving its position where it was."""
    position = file.tell()
    try:
        return file.read(size)
    finally:
        file.seek(position)


def _check_not_empty(name: str, file: BinaryIO) -> None:
    try:
        empty = _peek(file, 1) == b""
    except OSError as error:
        raise VideoError(name, f"read error: {_os_reason(error)}") from error
    if empty:
        raise VideoError(name, "is empty (0 bytes)")


def _open_container(name: str, file: BinaryIO) -> av.container.InputContainer:
    """Let FFmpeg probe and open ``file``; translate its failures into VideoError.

    Untrusted input: FFmpeg may not open any other file or URL on its behalf (a concat list or a
    playlist naming other files is refused), decoders refuse pictures above MAX_FRAME_PIXELS
    before allocating them (a forged header), and metadata that is not valid UTF-8 is decoded
    with replacement characters instead of failing."""
    try:
        head = _peek(file, 12)
        return av.open(
            file,
            mode="r",
            options={"max_pixels": str(MAX_FRAME_PIXELS)},  # also while FFmpeg probes the streams
            container_options=_SAFE_DEMUXING,
            metadata_errors="replace",
        )
    except av.InvalidDataError as error:
        raise VideoError(name, _unreadable_problem(head)) from error
    except av.FFmpegError as error:
        raise VideoError(name, f"{_CANNOT_OPEN} ({_av_reason(error)})") from error
    except OSError as error:  # raised by the file object itself, e.g. a seek FFmpeg asked for
        if error.errno == errno.EINVAL:
            raise VideoError(name, f"{_CANNOT_OPEN} ({_os_reason(error)})") from error
        raise VideoError(name, f"read error: {_os_reason(error)}") from error
    except (ValueError, EOFError, OverflowError) as error:  # UnicodeError included
        raise VideoError(name, f"{_CANNOT_OPEN} ({type(error).__name__})") from error


def _unreadable_problem(head: bytes) -> str:
    """Why FFmpeg refused a file, guessing from its first bytes whether it is a cut-short MP4."""
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"free", b"wide"):
        return "truncated or corrupt: an MP4/MOV file without a readable index ('moov' atom)"
    return "not a video file that FFmpeg can read"


def _video_stream(name: str, container: av.container.InputContainer) -> av.VideoStream:
    """The first real video stream (cover art attached to audio files does not count)."""
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
    return stream


def _check_frame_size(name: str, width: int, height: int) -> None:
    """Refuse frames so large that decoding one could exhaust memory (a forged header)."""
    if width * height > MAX_FRAME_PIXELS:
        raise VideoError(
            name,
            f"frame size {width}x{height} is too large (at most {MAX_FRAME_PIXELS:,} pixels, "
            "e.g. 8192x8192)",
        )


def _matroska_duration(container: av.container.InputContainer, stream: av.VideoStream) -> Fraction | None:
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


def _is_attached_picture(stream: av.stream.Stream) -> bool:
    return bool(stream.disposition & av.stream.Disposition.attached_pic)


def _is_still_image(container: av.container.InputContainer) -> bool:
    """Whether FFmpeg opened the input with one of its single-image demuxers (PNG, JPEG, ...)."""
    format_name = container.format.name
    return format_name in _STILL_IMAGE_FORMATS or format_name.endswith("_pipe")


def _frame_rate(stream: av.VideoStream) -> Fraction | None:
    """The stream's average frame rate, else FFmpeg's guess; None if neither is known."""
    for rate in (stream.average_rate, stream.guessed_rate):
        if rate is not None and rate > 0:
            return Fraction(rate)
    return None


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


def _av_reason(error: av.FFmpegError) -> str:
    return str(error.strerror or error).strip()


def _os_reason(error: OSError) -> str:
    return str(error.strerror or error).strip()


# --------------------------------------------------------------------------- writing


@dataclass(frozen=True)
class _Encoding:
    """How frames are stored for one family of suffixes."""

    muxer: str
    codec: str
    pix_fmt_gray: str
    pix_fmt_rgb: str
    gray_as_rgb: bool = False  # expand gray frames to RGB before the encoder sees them
    even_size: bool = False  # the pixel format subsamples chroma by 2 in both directions
    codec_options: dict[str, str] = field(default_factory=dict)
    muxer_options: dict[str, str] = field(default_factory=dict)

    def pix_fmt(self, channels: int) -> str:
        return self.pix_fmt_gray if channels == 1 else self.pix_fmt_rgb


def _h264(muxer: str) -> _Encoding:
    return _Encoding(
        muxer=muxer,
        codec="libx264",
        pix_fmt_gray="yuv420p",
        pix_fmt_rgb="yuv420p",
        gray_as_rgb=True,
        even_size=True,
        codec_options={"crf": "18", "preset": "medium"},
        muxer_options={"movflags": "+faststart"},
    )


def _ffv1(muxer: str) -> _Encoding:
    return _Encoding(muxer=muxer, codec="ffv1", pix_fmt_gray="gray", pix_fmt_rgb="bgr0")


_Y4M = _Encoding(muxer="yuv4mpegpipe", codec="rawvideo", pix_fmt_gray="gray", pix_fmt_rgb="yuv444p")

_ENCODINGS: dict[str, _Encoding] = {
    ".mp4": _h264("mp4"),
    ".mov": _h264("mov"),
    ".m4v": _h264("mp4"),
    ".mkv": _ffv1("matroska"),
    ".nut": _ffv1("nut"),
    ".avi": _ffv1("avi"),
    ".y4m": _Y4M,
}

_STDOUT_NAME = "<stdout>"


class VideoWriter:
    """Encodes frames as they come. Make one with :func:`open_writer` and use it in ``with``.

    Leaving the ``with`` block normally finishes the file and renames it over the target;
    leaving it with an exception (KeyboardInterrupt included) deletes the temporary file and
    leaves the target untouched. Without ``with``, call :meth:`close` to finish or
    :meth:`abort` to discard.
    """

    def __init__(
        self,
        name: str,
        container: av.container.OutputContainer,
        stream: av.VideoStream,
        fmt: FrameFormat,
        fps: Fraction,
        encoding: _Encoding,
        temp_path: str | None,
        stdout: BinaryIO | None,
        overwrite: bool,
    ) -> None:
        self.name = name
        self.fmt = fmt
        self.fps = fps
        self._container = container
        self._stream = stream
        self._encoding = encoding
        self._temp_path = temp_path  # None when writing to stdout
        self._stdout = stdout  # flushed when finished, never closed
        self._overwrite = overwrite
        self._frames_written = 0
        self._done = False

    def write(self, frames: torch.Tensor) -> None:
        """Encode uint8 ``[n,H,W,C]`` frames at the writer's format."""
        if self._done:
            raise RuntimeError("write() on a closed VideoWriter")
        _check_clip(frames, self.fmt)
        for frame in frames.cpu():  # [H,W,C] uint8
            self._encode(self._to_av_frame(frame))

    def _to_av_frame(self, frame: torch.Tensor) -> av.VideoFrame:
        """uint8 [H,W,C] tensor -> av.VideoFrame in gray or rgb24, stamped with its index."""
        array = frame.numpy()  # [H,W,C] uint8
        if self.fmt.channels == 1 and not self._encoding.gray_as_rgb:
            gray = np.ascontiguousarray(array[..., 0])  # [H,W]
            av_frame = av.VideoFrame.from_ndarray(gray, format="gray")
        else:
            rgb = np.repeat(array, 3, axis=2) if self.fmt.channels == 1 else array  # [H,W,3]
            av_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        av_frame.pts = self._frames_written
        av_frame.time_base = 1 / self.fps
        return av_frame

    def _encode(self, frame: av.VideoFrame | None) -> None:
        """Encode one frame (None flushes the encoder) and mux the resulting packets."""
        try:
            self._container.mux(self._stream.encode(frame))
        except av.FFmpegError as error:
            raise OutputError(self.name, f"cannot write: {_av_reason(error)}") from error
        except OSError as error:
            raise OutputError(self.name, f"cannot write: {_os_reason(error)}") from error
        if frame is not None:
            self._frames_written += 1

    def close(self) -> None:
        """Flush the encoder, finish the file and move it to the target. Idempotent."""
        if self._done:
            return
        try:
            if self._frames_written == 0:
                raise OutputError(self.name, "no frames were written")
            self._encode(None)
            self._close_container()
            self._commit()
        except BaseException:
            self.abort()
            raise
        self._done = True

    def _close_container(self) -> None:
        try:
            self._container.close()
        except av.FFmpegError as error:
            raise OutputError(self.name, f"cannot finish: {_av_reason(error)}") from error
        except OSError as error:
            raise OutputError(self.name, f"cannot finish: {_os_reason(error)}") from error

    def _commit(self) -> None:
        """Rename the finished temporary file over the target (or flush stdout)."""
        self._flush_stdout()
        if self._temp_path is None:
            return
        if not self._overwrite and os.path.lexists(self.name):
            raise OutputError(self.name, "exists; pass --overwrite to replace it")
        try:
            os.replace(self._temp_path, self.name)
        except OSError as error:
            raise OutputError(self.name, f"cannot replace: {_os_reason(error)}") from error
        self._temp_path = None

    def _flush_stdout(self) -> None:
        if self._stdout is None:
            return
        try:
            self._stdout.flush()
        except OSError as error:
            raise OutputError(self.name, f"cannot write: {_os_reason(error)}") from error

    def abort(self) -> None:
        """Discard everything written: close quietly and delete the temporary file."""
        self._done = True
        try:
            self._container.close()
        except (av.FFmpegError, OSError):
            pass
        finally:
            _remove_quietly(self._temp_path)
            self._temp_path = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.abort()


def open_writer(
    target: str | os.PathLike[str],
    fmt: FrameFormat,
    fps: Fraction,
    *,
    overwrite: bool = False,
    stdout: BinaryIO | None = None,
) -> VideoWriter:
    """Start writing a video at ``target``; use the result as a context manager.

    The suffix picks the encoding: ``.mp4 .mov .m4v`` H.264 (yuv420p, CRF 18; even sizes only);
    ``.mkv .nut .avi`` lossless FFV1 (gray or bgr0, reads back bit-exact); ``.y4m`` raw
    YUV4MPEG2 (gray or yuv444p). ``"-"`` writes a YUV4MPEG2 stream to ``stdout`` (default
    ``sys.stdout.buffer``). Anything else is an :class:`OutputError`, as is an existing target
    without ``overwrite``, a directory as target, or a missing directory.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    fps = Fraction(fps)
    if os.fspath(target) == "-":
        sink = stdout if stdout is not None else sys.stdout.buffer
        return _start_writer(_STDOUT_NAME, sink, None, _Y4M, fmt, fps, overwrite)
    path = os.fspath(target)
    encoding = _encoding_for(path)
    _check_target(path, overwrite)
    _check_size(path, encoding, fmt)
    writer = None
    try:
        with signals_deferred():  # Ctrl-C cannot strike between creating the file and owning it
            temp_path = _create_temp_file(path)
            writer = _start_writer(path, temp_path, temp_path, encoding, fmt, fps, overwrite)
    except BaseException:
        if writer is not None:  # a signal held back until now: the writer exists, discard it
            writer.abort()
        raise
    return writer  # from here an exception before ``with`` drops it, and __del__ aborts it


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs; one that arrives meanwhile is handed to
    its handler (which may raise) as the block ends.

    For the few statements between creating a temporary file and handing it to the code that
    removes it on failure: a signal handled in between would leave the file behind. Python runs
    signal handlers in the main thread only, so this swaps the handlers there for a recorder (a
    signal mask would not do: FFmpeg's and torch's threads would take the signal instead)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, object] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            handler = signal.getsignal(signum)
            if handler is not None:  # None: not set from Python, cannot be put back
                previous[signum] = signal.signal(signum, lambda number, frame: caught.append(number))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if caught:
            _deliver(caught[0], previous[caught[0]])


def _deliver(signum: int, handler: object) -> None:
    """Act on a signal that was held back, as its handler would have."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # the default action, now that the handler is back


def check_output(target: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Everything :func:`open_writer` would refuse about ``target``, checked before any work:
    its suffix, a directory, a missing parent directory, an existing file without ``overwrite``.
    ``"-"`` (stdout) is always fine."""
    path = os.fspath(target)
    if path == "-":
        return
    _encoding_for(path)
    _check_target(path, overwrite)


def _encoding_for(path: str) -> _Encoding:
    suffix = Path(path).suffix.lower()
    if suffix in _ENCODINGS:
        return _ENCODINGS[suffix]
    choices = " ".join(_ENCODINGS)
    what = f"unsupported suffix '{suffix}'" if suffix else "no suffix"
    raise OutputError(path, f"{what}; use one of {choices}")


def _check_target(path: str, overwrite: bool) -> None:
    """Refuse a directory, a missing parent directory, or an existing file without overwrite."""
    if os.path.isdir(path):
        raise OutputError(path, "is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        problem = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise OutputError(path, f"directory '{parent}' {problem}")
    if os.path.lexists(path) and not overwrite:
        raise OutputError(path, "exists; pass --overwrite to replace it")


def _check_size(path: str, encoding: _Encoding, fmt: FrameFormat) -> None:
    if encoding.even_size and (fmt.width % 2 or fmt.height % 2):
        raise OutputError(
            path,
            f"H.264 needs an even frame size, got {fmt.width}x{fmt.height}; use .mkv or .y4m",
        )


def _create_temp_file(path: str) -> str:
    """Create ``.NAME.maskflow-XXXXXXXX.SUFFIX`` beside ``path`` (mode 0o666 minus umask)."""
    target = Path(os.path.abspath(path))
    for _ in range(100):
        temp = target.with_name(f".{target.stem}.maskflow-{secrets.token_hex(4)}{target.suffix}")
        try:
            os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        except OSError as error:
            raise OutputError(
                path, f"cannot create a file in '{target.parent}': {_os_reason(error)}"
            ) from error
        return str(temp)
    raise OutputError(path, f"cannot create a temporary file in '{target.parent}'")


def _start_writer(
    name: str,
    sink: str | BinaryIO,
    temp_path: str | None,
    encoding: _Encoding,
    fmt: FrameFormat,
    fps: Fraction,
    overwrite: bool,
) -> VideoWriter:
    """Open the muxer and encoder on ``sink``; delete ``temp_path`` if that fails."""
    try:
        options = {"fflags": "+bitexact", **encoding.muxer_options}  # no random ids or dates: same input, same bytes
        container = av.open(sink, mode="w", format=encoding.muxer, container_options=options)
        stream = _add_stream(container, encoding, fmt, fps)
    except BaseException as error:
        _remove_quietly(temp_path)
        if isinstance(error, (av.FFmpegError, OSError)):
            raise OutputError(name, f"cannot create: {_describe(error)}") from error
        raise
    stdout = None if isinstance(sink, str) else sink
    return VideoWriter(name, container, stream, fmt, fps, encoding, temp_path, stdout, overwrite)


def _add_stream(
    container: av.container.OutputContainer, encoding: _Encoding, fmt: FrameFormat, fps: Fraction
) -> av.VideoStream:
    stream = container.add_stream(encoding.codec, rate=fps)
    stream.width = fmt.width
    stream.height = fmt.height
    stream.pix_fmt = encoding.pix_fmt(fmt.channels)
    stream.codec_context.time_base = 1 / fps
    stream.options = dict(encoding.codec_options)
    return stream


def _check_clip(frames: torch.Tensor, fmt: FrameFormat) -> None:
    if frames.dtype != torch.uint8 or frames.dim() != 4 or tuple(frames.shape[1:]) != fmt.shape:
        raise ValueError(
            f"expected uint8 [n,{fmt.height},{fmt.width},{fmt.channels}] frames, "
            f"got {frames.dtype} {tuple(frames.shape)}"
        )


def _describe(error: BaseException) -> str:
    if isinstance(error, av.FFmpegError):
        return _av_reason(error)
    if isinstance(error, OSError):
        return _os_reason(error)
    return str(error)


def _remove_quietly(path: str | None) -> None:
    if path is None:
        return
    try:
        os.remove(path)
    except OSError:
        pass  # already gone, or not ours to remove any more: nothing better to do


# --------------------------------------------------------------------------- output vs input


def check_not_input(
    target: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]]
) -> None:
    """Raise OutputError if ``target`` is the same file as one of ``inputs``.

    Compares resolved paths and, where both exist, device and inode (catching hard links and
    symlinks). ``"-"`` (stdin/stdout) never equals anything.
    """
    target_path = os.fspath(target)
    if target_path == "-":
        return
    for source in inputs:
        source_path = os.fspath(source)
        if source_path != "-" and _same_file(target_path, source_path):
            raise OutputError(target_path, "is the input file; choose another output")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


__all__ = [
    "FrameFormat",
    "Video",
    "VideoReader",
    "VideoWriter",
    "check_not_input",
    "check_output",
    "open_video",
    "open_writer",
    "read_video",
    "resize_frame",
    "signals_deferred",
]
