"""Writing a video as one PNG per frame: ``frames/%05d.png`` names frame i ``frames/0000i.png``.

The pattern's file name holds exactly one ``%d`` or ``%0Nd`` (N from 1 to 9); frames are numbered
from 0, as the frame ranges are. The folder may be new (its parent must exist). PNGs are lossless:
gray frames are stored gray, colour frames RGB.

As with a video file, nothing appears at the target until the sequence is complete: the PNGs are
written into a hidden temporary folder (``.NAME.maskflow-PID-XXXXXXXX``) and moved into place at
the end; an error or a signal removes it. A new folder is the temporary folder renamed, in one
step. An existing folder that already holds frames of the pattern is refused without
``overwrite``; with it, the whole sequence is replaced, so frames an earlier, longer sequence left
are removed rather than mixed with the new ones.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from fractions import Fraction

import av
import torch

from maskflow_cli.errors import OutputError
from maskflow_cli.partial_files import PartialOutput
from maskflow_cli.signals import signals_deferred

from .frames import FrameFormat
from .reasons import describe_error, os_reason

PATTERN_HELP = "give one %d or %0Nd in the file name, e.g. frames/%05d.png"
_CONVERSION = re.compile(r"%(0[1-9])?d")


def is_sequence_pattern(path: str) -> bool:
    """Whether ``path`` asks for an image sequence: a ``.png`` name holding a ``%``."""
    return path.lower().endswith(".png") and "%" in os.path.basename(path)


class SequencePattern:
    """A checked pattern: where its frames go and what each is called."""

    def __init__(self, pattern: str) -> None:
        folder, name = os.path.split(pattern)
        conversions = list(_CONVERSION.finditer(name))
        if len(conversions) != 1 or name.count("%") != 1 or "%" in folder:
            raise OutputError(pattern, PATTERN_HELP)
        match = conversions[0]
        self.pattern = pattern
        self.folder = folder or "."
        self._head, self._tail = name[: match.start()], name[match.end() :]
        self._digits = int(match.group(1) or 1)

    def name(self, index: int) -> str:
        """The file name of frame ``index``: ``00007.png`` for 7 and ``%05d.png``."""
        return f"{self._head}{index:0{self._digits}d}{self._tail}"

    def existing(self) -> list[str]:
        """Names in the folder that are frames of this pattern (sorted), [] if the folder is new."""
        try:
            names = os.listdir(self.folder)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise OutputError(self.pattern, f"cannot list '{self.folder}': {os_reason(error)}") from error
        number = re.compile(re.escape(self._head) + "([0-9]+)" + re.escape(self._tail))
        found = [(int(m.group(1)), n) for n in names if (m := number.fullmatch(n)) and self.name(int(m.group(1))) == n]
        return [n for _, n in sorted(found)]


def check_sequence_target(pattern: str, overwrite: bool) -> SequencePattern:
    """Refuse a malformed pattern, a folder that is a file or whose parent is missing, and frames
    of the pattern already there without ``overwrite``."""
    target = SequencePattern(pattern)
    folder = target.folder
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise OutputError(pattern, f"'{folder}' is not a directory")
    parent = os.path.dirname(os.path.abspath(folder))
    if not os.path.isdir(folder) and not os.path.isdir(parent):
        raise OutputError(pattern, f"directory '{parent}' does not exist")
    existing = target.existing()
    if existing and not overwrite:
        more = f" and {len(existing) - 1} more frames" if len(existing) > 1 else ""
        raise OutputError(pattern, f"'{os.path.join(folder, existing[0])}'{more} exist; pass --overwrite to replace the sequence")
    return target


class ImageSequenceWriter(PartialOutput):
    """Writes PNGs as frames come; used like :class:`~.writing.VideoWriter` (``with``, ``write``,
    ``close``, ``abort``). Make one with :func:`open_image_sequence`."""

    def __init__(self, target: SequencePattern, fmt: FrameFormat, fps: Fraction, temp_dir: str, overwrite: bool) -> None:
        self.name = target.pattern
        self.fmt = fmt
        self.fps = fps
        self._target = target
        self._temp_dir: str | None = temp_dir
        self._overwrite = overwrite
        self._encoder = av.CodecContext.create("png", "w")
        self._encoder.width, self._encoder.height = fmt.width, fmt.height
        self._encoder.pix_fmt = "gray" if fmt.channels == 1 else "rgb24"
        self._encoder.time_base = 1 / fps
        self._frames_written = 0
        self._done = False

    def write(self, frames: torch.Tensor) -> None:
        """Write uint8 ``[n,H,W,C]`` frames, one PNG each."""
        if self._done:
            raise RuntimeError("write() on a closed ImageSequenceWriter")
        if frames.dtype != torch.uint8 or frames.dim() != 4 or tuple(frames.shape[1:]) != self.fmt.shape:
            raise ValueError(f"expected uint8 [n,{self.fmt.height},{self.fmt.width},{self.fmt.channels}] frames, "
                             f"got {frames.dtype} {tuple(frames.shape)}")
        for frame in frames.cpu().numpy():  # [H,W,C] uint8
            image = frame[..., 0] if self.fmt.channels == 1 else frame
            av_frame = av.VideoFrame.from_ndarray(image.copy(), format=self._encoder.pix_fmt)
            try:
                data = b"".join(bytes(packet) for packet in self._encoder.encode(av_frame))
                with open(os.path.join(self._temp_dir, self._target.name(self._frames_written)), "wb") as file:
                    file.write(data)
            except (av.FFmpegError, OSError) as error:
                raise OutputError(self.name, f"cannot write: {describe_error(error)}") from error
            self._frames_written += 1

    def close(self) -> None:
        """Move the finished sequence into place. Idempotent."""
        if self._done:
            return
        try:
            if self._frames_written == 0:
                raise OutputError(self.name, "no frames were written")
            with signals_deferred():  # the move is all or nothing as far as Ctrl-C goes
                self._commit()
        except BaseException:
            self.abort()
            raise
        self._done = True

    def _commit(self) -> None:
        folder, written = self._target.folder, {self._target.name(i) for i in range(self._frames_written)}
        existing = self._target.existing()
        if existing and not self._overwrite:
            raise OutputError(self.name, "frames of this pattern appeared meanwhile; pass --overwrite to replace them")
        stale = [n for n in existing if n not in written]
        try:
            if not os.path.exists(folder):
                os.rename(self._temp_dir, folder)
                self._temp_dir = None
                return
            for name in sorted(written):
                os.replace(os.path.join(self._temp_dir, name), os.path.join(folder, name))
            for name in stale:
                os.remove(os.path.join(folder, name))
        except OSError as error:
            raise OutputError(self.name, f"cannot move the frames into place: {os_reason(error)}") from error
        self._remove_temp_dir()

    def abort(self) -> None:
        """Discard everything written."""
        self._done = True
        self._remove_temp_dir()

    def _remove_temp_dir(self) -> None:
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None



def open_image_sequence(pattern: str, fmt: FrameFormat, fps: Fraction, *, overwrite: bool = False) -> ImageSequenceWriter:
    """Start writing one PNG per frame to ``pattern`` (see the module docstring)."""
    target = check_sequence_target(pattern, overwrite)
    folder = os.path.abspath(target.folder)
    where = folder if os.path.isdir(folder) else os.path.dirname(folder)
    writer = None
    try:
        with signals_deferred():  # Ctrl-C cannot strike between creating the folder and owning it
            temp_dir = _make_temp_dir(pattern, where, os.path.basename(folder))
            writer = ImageSequenceWriter(target, fmt, fps, temp_dir, overwrite)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return writer


def _make_temp_dir(pattern: str, where: str, name: str) -> str:
    """Create ``where/.NAME.maskflow-PID-XXXXXXXX`` (mode 0o777 minus umask, as a new folder gets)."""
    for _ in range(100):
        path = os.path.join(where, f".{name}.maskflow-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.mkdir(path)
        except FileExistsError:
            continue
        except OSError as error:
            raise OutputError(pattern, f"cannot create a folder in '{where}': {os_reason(error)}") from error
        return path
    raise OutputError(pattern, f"no free temporary name in '{where}'")
