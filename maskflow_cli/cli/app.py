"""The Typer app and the command-line error boundary.

``main`` is the console script: it runs the app and turns every failure into one line on stderr
and an exit code — library errors (MaskflowError.exit_code), bad command-line syntax (2),
Ctrl-C (130), SIGTERM (143). Set MASKFLOW_DEBUG=1 to see tracebacks instead.
"""

from __future__ import annotations

import os
import signal
import sys

import typer
from typer.exceptions import TyperException

from ..errors import MaskflowError
from . import commands

app = typer.Typer(
    name="maskflow",
    help="Generate, extend and infill videos with MaskFlow (discrete flow matching under frame-level masking).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command(epilog="Results go to stdout or the output file; progress and logs to stderr, only on a terminal.")(commands.generate)
app.command()(commands.extend)
app.command()(commands.infill)
app.command()(commands.encode)
app.command()(commands.decode)
app.command()(commands.info)


class Terminated(BaseException):
    """Raised in the main thread on SIGTERM so that open outputs are cleaned up on the way out."""


def _on_sigterm(signum, frame) -> None:
    raise Terminated()


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"maskflow: error: {message}\n")
    sys.stderr.flush()
    return code


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("MASKFLOW_DEBUG", "") not in ("", "0")
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = app(args=argv, prog_name="maskflow", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except MaskflowError as error:
        if debug:
            raise
        return _fail(str(error), error.exit_code)
    except TyperException as error:  # bad syntax: unknown option, not an integer, ...
        message = " ".join(error.format_message().split())
        return _fail(message, error.exit_code) if message else error.exit_code  # empty: help was shown
    except (KeyboardInterrupt, typer.Abort):
        return _fail("interrupted", 130)
    except Terminated:
        return _fail("terminated", 143)
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except Exception as error:  # a bug: say so in one line, traceback only on request
        if debug:
            raise
        return _fail(f"internal error: {type(error).__name__}: {error} (set MASKFLOW_DEBUG=1 for the traceback)", 1)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _silence_stdout() -> None:
    """After the reader of our stdout went away, stop Python from complaining at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
