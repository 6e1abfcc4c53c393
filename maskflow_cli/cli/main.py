"""The command-line error boundary: ``main``, the console script.

It turns every failure into one line on stderr and an exit code: library errors
(MaskflowError.exit_code, their Python parameter names spelled as the command's flags by
the command's own declarations, options.flags_for), bad command-line syntax (2), SIGINT (130), SIGTERM (143), SIGHUP (129),
SIGQUIT (131). The signal handlers are installed before the Typer app, torch and FFmpeg are
imported, so a signal during start-up is answered the same way. Set MASKFLOW_DEBUG=1 to see
tracebacks instead.

This module imports nothing heavy; the app is imported inside :func:`main`.
"""

from __future__ import annotations

import os
import signal
import sys

from ..errors import MaskflowError
from ..signals import STOP_SIGNALS
from ..startup import set_allocator, set_thread_policy


class Stopped(BaseException):
    """Raised in the main thread on a stop signal, so open outputs are removed on the way out.

    A BaseException of our own (not KeyboardInterrupt, which Typer turns into a silent exit)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _raise_stopped(signum: int, frame) -> None:
    raise Stopped(128 + signum, STOP_SIGNALS.get(signum, "stopped"))


def _fail(message: str, code: int) -> int:
    if sys.stderr is not None:  # started with stderr closed: the exit code is all that is left
        try:
            sys.stderr.write(f"maskflow: error: {message}\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
    return code


def _flags(argv: list[str]) -> dict[str, str] | None:
    """The parameter -> flag table of the command ``argv`` runs; None (Python names) if the app
    itself could not be imported."""
    try:
        from .app import app
        from .options import flags_for
    except Exception:
        return None
    return flags_for(app, argv)


def _flush_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("MASKFLOW_DEBUG", "") not in ("", "0")
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in STOP_SIGNALS}
    try:
        return _run(argv, debug)
    except Stopped as stop:
        code = _fail(stop.reason, stop.code)
        if argv is None:  # the program itself: end now (outputs already removed), without tearing the
            _flush_streams()  # runtime down around a network call a helper thread may still be running
            os._exit(code)
        return code  # called in-process (argv given): the caller's process lives on; an abandoned call
        # finishes in its daemon thread and its result is dropped
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(argv: list[str] | None, debug: bool) -> int:
    """Import the app (heavy: Typer, torch, FFmpeg), run it, map its failures to exit codes."""
    args = list(sys.argv[1:] if argv is None else argv)
    set_allocator()  # this process is ours: fewer page faults per network call (startup.py)
    set_thread_policy()  # before torch loads its OpenMP runtime: idle threads spin briefly on a quiet machine, else sleep (startup.py)
    try:
        from typer.exceptions import TyperException

        from .app import app

        try:
            result = app(args=argv, prog_name="maskflow", standalone_mode=False)
        except TyperException as error:  # bad syntax: unknown option, not an integer, ...
            message = " ".join(error.format_message().split())
            return _fail(message, error.exit_code) if message else error.exit_code  # empty: help was shown
        return result if isinstance(result, int) else 0
    except MaskflowError as error:
        if debug:
            raise
        return _fail(error.message(_flags(args)), error.exit_code)
    except Exception as error:  # a bug: say so in one line, traceback only on request
        if debug:
            raise
        return _fail(f"internal error: {type(error).__name__}: {error} (set MASKFLOW_DEBUG=1 for the traceback)", 1)
