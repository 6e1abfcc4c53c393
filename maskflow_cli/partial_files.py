"""Hidden temporary files beside an output, named so that a killed run's leftovers can be found.

Every output (video, tokens file, weights, clips file) is written to
``.STEM.maskflow-PID-XXXXXXXX.SUFFIX`` beside the target and renamed over it when complete; an
error or a signal removes it. Only SIGKILL (or a power cut) leaves one behind. The next run that
writes the same target removes those whose PID is no longer a running process on this machine;
``find DIR -name '.*.maskflow-*'`` lists any. :func:`write_safetensors` writes a safetensors file
(weights, tokens, clips) this way. The stem is shortened where needed so that the temporary name
fits the folder's NAME_MAX whenever the target's name does.
"""

from __future__ import annotations

import os
import re
import secrets
from abc import ABC, abstractmethod
from pathlib import Path
from types import TracebackType
from typing import Self

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file

from .errors import OutputError, first_line
from .signals import signals_deferred

_MARK = ".maskflow-"


class PartialOutput(ABC):
    """An output written to hidden temporaries and put in place by :meth:`close`; :meth:`abort`
    discards it. As a context manager it closes when the block succeeds and aborts when it raises;
    one dropped unfinished (``_done`` still False) is aborted. The video and image-sequence writers
    share this."""

    _done = True  # set False by a subclass once it holds something to put in place or discard

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def abort(self) -> None: ...

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:
        if not getattr(self, "_done", True):
            self.abort()
_PID_DIGITS = 10  # room kept for any process number, so a target's temporary names share one prefix


def _prefix_and_suffix(where: Path) -> tuple[str, str]:
    """``(".STEM.maskflow-", ".SUFFIX")`` for ``where``'s temporary files, with STEM shortened (and
    the suffix dropped if it alone is too long) so that the whole name fits the folder's NAME_MAX."""
    try:
        name_max = os.pathconf(where.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    suffix = where.suffix
    fixed = len(os.fsencode(f".{_MARK}{'0' * _PID_DIGITS}-{'0' * 8}{suffix}"))
    if fixed > name_max:
        suffix, fixed = "", fixed - len(os.fsencode(suffix))
    stem = where.stem if suffix else where.name
    while stem and len(os.fsencode(stem)) > name_max - fixed:
        stem = stem[:-1]
    return f".{stem}{_MARK}", suffix


def create_partial(target: str | os.PathLike[str]) -> str:
    """Create an empty hidden temporary file for ``target`` (mode 0o666 minus umask) and return
    its path, after removing stale ones of dead processes. Raises OSError if it cannot."""
    where = Path(os.path.abspath(target))
    remove_stale_partials(where)
    prefix, suffix = _prefix_and_suffix(where)
    for _ in range(100):
        partial = where.with_name(f"{prefix}{os.getpid()}-{secrets.token_hex(4)}{suffix}")
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return str(partial)
    raise FileExistsError(f"no free temporary name beside {where}")


def write_safetensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write a safetensors file through a temporary file beside it, renamed when complete.
    OutputError with the OS's reason if it cannot be written (no permission, disk full, ...)."""
    path = Path(path)
    tmp = None
    try:
        with signals_deferred():  # no Ctrl-C between creating the temporary file and knowing its name
            tmp = create_partial(path)  # mode 0o666 minus umask, like any new file
        mode = os.stat(tmp).st_mode & 0o777
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, mode)  # save_file makes the file anew, readable by its owner only
        os.replace(tmp, path)
    except BaseException as error:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(error, (OSError, SafetensorError)):
            raise OutputError(os.fspath(path), f"cannot write: {write_failure(error)}") from None
        raise


def write_failure(error: BaseException) -> str:
    """The OS's reason for a failed write: an OSError's text, or the OS error that a library's own
    error wraps (safetensors: "... I/O error: File too large (os error 27)")."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    code = re.search(r"os error (\d+)", str(error))
    return os.strerror(int(code.group(1))) if code else first_line(error)


def remove_stale_partials(target: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files of ``target`` left by processes that no longer run; -> their paths."""
    where = Path(os.path.abspath(target))
    prefix, suffix = _prefix_and_suffix(where)
    pattern = re.compile(re.escape(prefix) + r"(\d+)-[0-9a-f]{8}" + re.escape(suffix) + "$")
    removed = []
    try:
        names = os.listdir(where.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match is None or _running(int(match.group(1))):
            continue
        try:
            os.remove(where.parent / name)
        except OSError:
            continue  # gone already, or not ours to remove
        removed.append(str(where.parent / name))
    return removed


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # another user's process (or an odd number): leave its file alone
    return True
