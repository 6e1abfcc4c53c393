"""Where a video is read from: a path, ``"-"`` (stdin) or a binary file object, made seekable.

FFmpeg seeks in most containers (an MP4 with its index at the end, ...), so a source that cannot
seek (a pipe) is first copied into a ``tempfile.SpooledTemporaryFile``.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from typing import BinaryIO

from maskflow_cli.errors import VideoError

from .reasons import os_reason

PathOrFile = str | os.PathLike[str] | BinaryIO

_SPOOL_IN_MEMORY_BYTES = 64 * 1024 * 1024  # larger piped inputs roll over to a temporary file
_COPY_CHUNK_BYTES = 1024 * 1024


def open_source(source: PathOrFile) -> tuple[str, BinaryIO, bool]:
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
        raise VideoError(path, f"cannot open: {os_reason(error)}") from error


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
        raise VideoError(name, f"read error: {os_reason(error)}") from error
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
