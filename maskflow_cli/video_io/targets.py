"""Where an output may go, checked before any work.

:func:`check_output` refuses everything :func:`~maskflow_cli.video_io.open_writer` would refuse
about a target (its suffix, a directory, a missing parent directory, an existing file without
``overwrite``, a closed stdout for ``"-"``); :func:`check_not_input` refuses a target that is one of
the inputs. Both raise :class:`~maskflow_cli.errors.OutputError`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import BinaryIO

from maskflow_cli.errors import OutputError

from .image_sequence import check_sequence_target, is_sequence_pattern
from .sources import is_terminal
from .suffixes import encoding_for

STDOUT_NAME = "<stdout>"


def check_output(target: str | os.PathLike[str], overwrite: bool = False) -> None:
    """Everything :func:`open_writer` would refuse about ``target``, checked before any work:
    its suffix, a directory, a missing parent directory, an existing file without ``overwrite``,
    an image sequence's pattern and existing frames, and for ``"-"`` a closed stdout or a terminal."""
    path = os.fspath(target)
    if path == "-":
        standard_output()
        return
    if is_sequence_pattern(path):
        check_sequence_target(path, overwrite)
        return
    encoding_for(path)
    check_target(path, overwrite)


def standard_output() -> BinaryIO:
    """``sys.stdout.buffer``; OutputError when the process was started with stdout closed, or when
    it is a terminal (a video is no text to show there; as gzip refuses to)."""
    if sys.stdout is None:
        raise OutputError(STDOUT_NAME, "is closed; redirect it to a file or a pipe, or write to a file")
    if is_terminal(sys.stdout):
        raise OutputError(STDOUT_NAME, "refusing to write video to a terminal; redirect it (> out.y4m, | ffplay -) or use -o FILE")
    return sys.stdout.buffer


def check_target(path: str, overwrite: bool) -> None:
    """Refuse a directory, a missing parent directory, or an existing file without overwrite."""
    if os.path.isdir(path):
        raise OutputError(path, "is a directory")
    parent = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(parent):
        problem = "is not a directory" if os.path.exists(parent) else "does not exist"
        raise OutputError(path, f"directory '{parent}' {problem}")
    if os.path.lexists(path) and not overwrite:
        raise OutputError(path, "exists; pass --overwrite to replace it")


def check_not_input(
    target: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str]]
) -> None:
    """Raise OutputError if ``target`` is the same file as one of ``inputs``.

    Compares resolved paths and, where both exist, device and inode (catching hard links and
    symlinks). An input ``"-"`` is standard input: redirected from a file (``< in.mkv``), that
    file's identity is compared. An output ``"-"`` never equals anything.
    """
    target_path = os.fspath(target)
    if target_path == "-":
        return
    for source in inputs:
        source_path = os.fspath(source)
        same = _is_stdin(target_path) if source_path == "-" else _same_file(target_path, source_path)
        if same:
            raise OutputError(target_path, "is the input file; choose another output")


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _is_stdin(path: str) -> bool:
    """Whether ``path`` is the file that standard input reads (``< path``)."""
    if sys.stdin is None:
        return False
    try:
        given, target = os.fstat(sys.stdin.fileno()), os.stat(path)
    except (OSError, ValueError, AttributeError):  # closed, replaced by an object without a descriptor, missing
        return False
    return (given.st_dev, given.st_ino) == (target.st_dev, target.st_ino)
