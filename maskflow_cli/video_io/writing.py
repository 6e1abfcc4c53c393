"""Writing videos: frames streamed into a hidden temporary file, renamed over the target at the end.

:func:`open_writer` picks the container and codec from the target's suffix, streams frames into a
hidden temporary file beside the target and renames it over the target only when the ``with``
block ends without an exception. Problems are reported as
:class:`~maskflow_cli.errors.OutputError`; :mod:`.suffixes` holds the suffix table and
:mod:`.targets` the checks of a target that :func:`open_writer` shares with the commands.
"""

from __future__ import annotations

import os
from fractions import Fraction
from typing import BinaryIO

import av
import numpy as np
import torch

from maskflow_cli.errors import OutputError
from maskflow_cli.partial_files import PartialOutput, create_partial
from maskflow_cli.signals import signals_deferred

from .audio import AudioCopy
from .frames import FrameFormat
from .image_sequence import ImageSequenceWriter, is_sequence_pattern, open_image_sequence
from .palette import PaletteFilter
from .reasons import av_reason, describe_error, os_reason
from .suffixes import Y4M, Encoding, encoding_for
from .targets import STDOUT_NAME, check_target, standard_output


class VideoWriter(PartialOutput):
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
        encoding: Encoding,
        temp_path: str | None,
        stdout: BinaryIO | None,
        overwrite: bool,
        audio: AudioCopy | None = None,
    ) -> None:
        self.name = name
        self.audio = audio  # muxed in step with the frames
        self.fmt = fmt
        self.fps = fps
        self._container = container
        self._stream = stream
        self._encoding = encoding
        self._temp_path = temp_path  # None when writing to stdout
        self._stdout = stdout  # flushed when finished, never closed
        self._overwrite = overwrite
        self._frames_written = 0
        self._frames_given = 0  # frames handed to the palette filter or the encoder: the next one's pts
        self._palette = PaletteFilter(fmt.width, fmt.height, fps) if encoding.palette and fmt.channels == 3 else None
        self._done = False

    def write(self, frames: torch.Tensor) -> None:
        """Encode uint8 ``[n,H,W,C]`` frames at the writer's format."""
        if self._done:
            raise RuntimeError("write() on a closed VideoWriter")
        _check_clip(frames, self.fmt)
        for frame in frames.cpu():  # [H,W,C] uint8
            av_frame = self._to_av_frame(frame)
            for ready in [av_frame] if self._palette is None else self._palette.push(av_frame):
                self._encode(ready)

    def _to_av_frame(self, frame: torch.Tensor) -> av.VideoFrame:
        """uint8 [H,W,C] tensor -> av.VideoFrame in gray or rgb24, stamped with its index."""
        array = frame.numpy()  # [H,W,C] uint8
        if self.fmt.channels == 1 and not self._encoding.gray_as_rgb:
            gray = np.ascontiguousarray(array[..., 0])  # [H,W]
            av_frame = av.VideoFrame.from_ndarray(gray, format="gray")
        else:
            rgb = np.repeat(array, 3, axis=2) if self.fmt.channels == 1 else array  # [H,W,3]
            av_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        av_frame.pts = self._frames_given
        av_frame.time_base = 1 / self.fps
        self._frames_given += 1
        return av_frame

    def _encode(self, frame: av.VideoFrame | None) -> None:
        """Encode one frame (None flushes the encoder) and mux the resulting packets."""
        try:
            self._container.mux(self._stream.encode(frame))
        except av.FFmpegError as error:
            raise OutputError(self.name, f"cannot write: {av_reason(error)}") from error
        except OSError as error:
            raise OutputError(self.name, f"cannot write: {os_reason(error)}") from error
        if frame is not None:
            self._frames_written += 1
            if self.audio is not None:
                self.audio.mux_until(self._container, self._frames_written / self.fps)

    def close(self) -> None:
        """Flush the encoder, finish the file and move it to the target. Idempotent."""
        if self._done:
            return
        try:
            if self._frames_given == 0:
                raise OutputError(self.name, "no frames were written")
            for ready in [] if self._palette is None else self._palette.push(None):
                self._encode(ready)
            self._encode(None)
            if self.audio is not None:
                self.audio.finish(self._container)
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
            raise OutputError(self.name, f"cannot finish: {av_reason(error)}") from error
        except OSError as error:
            raise OutputError(self.name, f"cannot finish: {os_reason(error)}") from error

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
            raise OutputError(self.name, f"cannot replace: {os_reason(error)}") from error
        self._temp_path = None

    def _flush_stdout(self) -> None:
        if self._stdout is None:
            return
        try:
            self._stdout.flush()
        except OSError as error:
            raise OutputError(self.name, f"cannot write: {os_reason(error)}") from error

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



def open_writer(
    target: str | os.PathLike[str],
    fmt: FrameFormat,
    fps: Fraction,
    *,
    overwrite: bool = False,
    stdout: BinaryIO | None = None,
    audio: AudioCopy | None = None,
) -> VideoWriter | ImageSequenceWriter:
    """Start writing a video at ``target``; use the result as a context manager.

    The suffix picks the encoding: ``.mp4 .mov .m4v`` H.264 (yuv420p, CRF 18; even sizes only);
    ``.mkv .nut .avi`` lossless FFV1 (gray or bgr0, reads back bit-exact); ``.y4m`` raw
    YUV4MPEG2 (gray or yuv444p); ``.webm`` VP9; ``.gif`` a looping GIF (:mod:`.suffixes`). A
    pattern such as ``frames/%05d.png`` writes one PNG per frame (:mod:`.image_sequence`).
    ``"-"`` writes a YUV4MPEG2 stream to ``stdout`` (default ``sys.stdout.buffer``; refused when it
    is a terminal). Anything else is an :class:`OutputError`, as is an existing target without
    ``overwrite``, a directory as target, or a missing directory. ``audio`` (not for ``"-"``)
    is muxed beside the frames.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    fps = Fraction(fps)
    if os.fspath(target) == "-":
        sink = stdout if stdout is not None else standard_output()
        return _start_writer(STDOUT_NAME, sink, None, Y4M, fmt, fps, overwrite)
    path = os.fspath(target)
    if is_sequence_pattern(path):
        return open_image_sequence(path, fmt, fps, overwrite=overwrite)
    encoding = encoding_for(path)
    check_target(path, overwrite)
    _check_size(path, encoding, fmt)
    writer = None
    try:
        with signals_deferred():  # Ctrl-C cannot strike between creating the file and owning it
            temp_path = _create_temp_file(path)
            writer = _start_writer(path, temp_path, temp_path, encoding, fmt, fps, overwrite, audio)
    except BaseException:
        if writer is not None:  # a signal held back until now: the writer exists, discard it
            writer.abort()
        raise
    return writer  # from here an exception before ``with`` drops it, and __del__ aborts it


def _check_size(path: str, encoding: Encoding, fmt: FrameFormat) -> None:
    if encoding.even_size and (fmt.width % 2 or fmt.height % 2):
        raise OutputError(
            path,
            f"H.264 needs an even frame size, got {fmt.width}x{fmt.height}; use .mkv or .y4m",
        )


def _create_temp_file(path: str) -> str:
    """Create ``.STEM.maskflow-PID-XXXXXXXX.SUFFIX`` beside ``path`` (see :mod:`maskflow_cli.partial_files`)."""
    try:
        return create_partial(path)
    except OSError as error:
        parent = os.path.dirname(os.path.abspath(path))
        raise OutputError(path, f"cannot create a file in '{parent}': {os_reason(error)}") from error


def _start_writer(
    name: str,
    sink: str | BinaryIO,
    temp_path: str | None,
    encoding: Encoding,
    fmt: FrameFormat,
    fps: Fraction,
    overwrite: bool,
    audio: AudioCopy | None = None,
) -> VideoWriter:
    """Open the muxer and encoder on ``sink``; delete ``temp_path`` if that fails."""
    try:
        options = {"fflags": "+bitexact", **encoding.muxer_options}  # no random ids or dates: same input, same bytes
        container = av.open(sink, mode="w", format=encoding.muxer, container_options=options)
        stream = _add_stream(container, encoding, fmt, fps)
        if audio is not None:
            audio.add_stream(name, container)
    except BaseException as error:
        _remove_quietly(temp_path)
        if isinstance(error, (av.FFmpegError, OSError)):
            raise OutputError(name, f"cannot create: {describe_error(error)}") from error
        raise
    stdout = None if isinstance(sink, str) else sink
    return VideoWriter(name, container, stream, fmt, fps, encoding, temp_path, stdout, overwrite, audio)


def _add_stream(
    container: av.container.OutputContainer, encoding: Encoding, fmt: FrameFormat, fps: Fraction
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


def _remove_quietly(path: str | None) -> None:
    if path is None:
        return
    try:
        os.remove(path)
    except OSError:
        pass  # already gone, or not ours to remove any more: nothing better to do
