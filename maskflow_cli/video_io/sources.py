"""Where a video is read from: a path, ``"-"`` (stdin) or a binary file object, made seekable.

FFmpeg seeks in most containers (an MP4 with its index at the end, ...), so a source that cannot
seek (a pipe) is first copied into a ``tempfile.SpooledTemporaryFile``.
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
from typing import BinaryIO

from maskflow_cli.errors import VideoError

from .limits import SPOOL_BYTES_ENV
from .reasons import os_reason

PathOrFile = str | os.PathLike[str] | BinaryIO

_SPOOL_IN_MEMORY_BYTES = 64 * 1024 * 1024  # larger piped inputs roll over to a temporary file
_COPY_CHUNK_BYTES = 1024 * 1024
STDIN_NAME = "<stdin>"


def open_source(source: PathOrFile, spool_bytes: int) -> tuple[str, BinaryIO, bool]:
    """``(name for messages, seekable binary file, whether we own it)`` for any kind of source.

    A source that cannot seek is copied aside, at most ``spool_bytes`` of it."""
    if isinstance(source, (str, os.PathLike)):
        if os.fspath(source) == "-":
            if sys.stdin is None:  # the process was started with its standard input closed
                raise VideoError(STDIN_NAME, "is closed; pipe or redirect a video into it, or give a file")
            return _open_stream(STDIN_NAME, sys.stdin.buffer, spool_bytes)
        return _open_path(os.fspath(source), spool_bytes)
    raw_name = getattr(source, "name", None)
    return _open_stream(raw_name if isinstance(raw_name, str) else STDIN_NAME, source, spool_bytes)


class ReusableInput:
    """An input a command reads more than once (the model's frames, then the frames passed
    through, then the audio), each time from the start and independently of the other reads.

    A regular file is opened by its path each time; standard input or a named pipe is first
    copied into a temporary file (at most ``spool_bytes``), which :meth:`close` removes. Use it
    in ``with``."""

    def __init__(self, source: str | os.PathLike[str], spool_bytes: int) -> None:
        self.name, file, owned = open_source(source, spool_bytes)
        self._temporary: str | None = None
        try:
            if isinstance(file, io.BufferedReader) and file.name == self.name:  # a regular file, opened by path
                self._path = self.name
                return
            with tempfile.NamedTemporaryFile(prefix="maskflow-input-", delete=False) as copy:
                self._temporary = self._path = copy.name
                shutil.copyfileobj(file, copy, _COPY_CHUNK_BYTES)
        except OSError as error:
            self.close()
            raise VideoError(self.name, f"cannot copy it aside: {os_reason(error)}") from error
        finally:
            if owned:
                file.close()

    def open(self) -> BinaryIO:
        """A new binary file object at the input's start, named as the input for messages."""
        try:
            file = open(self._path, "rb")
        except OSError as error:
            raise VideoError(self.name, f"cannot open: {os_reason(error)}") from error
        file.raw.name = self.name  # messages name the input, not a temporary copy
        return file

    def close(self) -> None:
        if self._temporary is not None:
            try:
                os.remove(self._temporary)
            except OSError:
                pass  # already gone: nothing better to do
            self._temporary = None

    def __enter__(self) -> "ReusableInput":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _open_path(path: str, spool_bytes: int) -> tuple[str, BinaryIO, bool]:
    """Open a file path ourselves, so FFmpeg never interprets its name (``x:y``, ``%d``); a named
    pipe or ``<(...)`` (``/dev/fd/N``) is spooled like standard input."""
    if os.path.isdir(path):
        raise VideoError(path, "is a directory, not a video file")
    try:
        file = open(path, "rb")
    except FileNotFoundError as error:
        raise VideoError(path, "no such file") from error
    except OSError as error:
        raise VideoError(path, f"cannot open: {os_reason(error)}") from error
    if _is_seekable(file):
        return path, file, True
    try:
        return _open_stream(path, file, spool_bytes)
    finally:
        file.close()  # its bytes are in the spool now (or it failed)


def _open_stream(name: str, stream: BinaryIO, spool_bytes: int) -> tuple[str, BinaryIO, bool]:
    """Use a seekable stream as it is; copy a non-seekable one (a pipe) into a spool file."""
    if _is_seekable(stream):
        return name, stream, False
    if is_terminal(stream):
        raise VideoError(name, "is a terminal; pipe a video file into it")
    spool = tempfile.SpooledTemporaryFile(max_size=_SPOOL_IN_MEMORY_BYTES)
    try:
        _copy_at_most(name, stream, spool, spool_bytes)
        spool.seek(0)
    except OSError as error:
        spool.close()
        raise VideoError(name, f"read error: {os_reason(error)}") from error
    except BaseException:
        spool.close()
        raise
    return name, spool, True  # type: ignore[return-value]  # a SpooledTemporaryFile is binary IO


def _copy_at_most(name: str, stream: BinaryIO, spool: BinaryIO, limit: int) -> None:
    """Copy ``stream`` into ``spool``; VideoError as soon as it is longer than ``limit`` bytes."""
    copied = 0
    while chunk := stream.read(min(_COPY_CHUNK_BYTES, limit + 1 - copied)):
        copied += len(chunk)
        if copied > limit:
            raise VideoError(name, f"is a pipe of more than {limit:,} bytes, the most copied aside to read one; "
                                   f"set {SPOOL_BYTES_ENV} higher, or give a file")
        spool.write(chunk)


def _is_seekable(stream: BinaryIO) -> bool:
    try:
        return bool(stream.seekable())
    except (AttributeError, OSError, ValueError):
        return False


def is_terminal(stream: BinaryIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def peek(file: BinaryIO, size: int) -> bytes:
    """The next ``size`` bytes of a seekable file, leaving its position where it was."""
    position = file.tell()
    try:
        return file.read(size)
    finally:
        file.seek(position)


def check_not_empty(name: str, file: BinaryIO) -> None:
    try:
        empty = peek(file, 1) == b""
    except OSError as error:
        raise VideoError(name, f"read error: {os_reason(error)}") from error
    if empty:
        raise VideoError(name, "is empty (0 bytes)")
