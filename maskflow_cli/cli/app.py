"""The Typer app and the command-line error boundary.

``main`` is the console script: it runs the app and turns every failure into one line on stderr
and an exit code — library errors (MaskflowError.exit_code, their Python parameter names spelled as
the command's flags by options.FLAGS), bad command-line syntax (2),
Ctrl-C (130), SIGTERM (143). Set MASKFLOW_DEBUG=1 to see tracebacks instead.
"""

from __future__ import annotations

import os
import re
import signal
import sys

import typer
from typer.exceptions import TyperException

from ..errors import InvalidArgumentError, MaskflowError
from . import commands, eval_command, train_commands
from .options import flags_for
from .data_commands import data_app

app = typer.Typer(
    name="maskflow",
    help="Generate, extend and infill videos with MaskFlow (discrete flow matching under frame-level masking).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.command(epilog="Results go to stdout or the output file; progress and logs to stderr, only on a terminal.")(commands.generate)
app.command()(commands.extend)
app.command()(commands.infill)
app.command()(commands.encode)
app.command()(commands.decode)
app.command()(commands.info)
app.command(name="eval")(eval_command.eval_)
app.command(name="train-tokenizer")(train_commands.train_tokenizer)
app.command()(train_commands.train)
app.add_typer(data_app, name="data")


class Stopped(BaseException):
    """Raised in the main thread on SIGINT or SIGTERM, so open outputs are removed on the way out.

    A BaseException of our own (not KeyboardInterrupt, which Typer turns into a silent exit)."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _raise_stopped(signum: int, frame) -> None:
    raise Stopped(130, "interrupted") if signum == signal.SIGINT else Stopped(143, "terminated")


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"maskflow: error: {message}\n")
    sys.stderr.flush()
    return code


def _command(argv: list[str]) -> str | None:
    return next((a for a in argv if not a.startswith("-")), None)


def _negative_range(message: str, argv: list[str]) -> InvalidArgumentError | None:
    """``maskflow infill clip.mp4 -5:10``: the parser takes a negative range for an unknown option
    ("No such option: -5"); name the range instead, with what is allowed."""
    match = re.match(r"No such option: (-[0-9]\S*)", message)
    if match is None or _command(argv) != "infill":
        return None
    text = next((a for a in argv if a.startswith(match.group(1))), match.group(1))
    return InvalidArgumentError("ranges", text, "frame numbers must not be negative; they are 0-based, e.g. 0:10 is the first ten frames")


def main(argv: list[str] | None = None) -> int:
    debug = os.environ.get("MASKFLOW_DEBUG", "") not in ("", "0")
    args = list(sys.argv[1:] if argv is None else argv)
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        result = app(args=argv, prog_name="maskflow", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except MaskflowError as error:
        if debug:
            raise
        return _fail(error.message(flags_for(_command(args))), error.exit_code)
    except TyperException as error:  # bad syntax: unknown option, not an integer, ...
        message = " ".join(error.format_message().split())
        negative = _negative_range(message, args)
        if negative is not None:
            return _fail(negative.message(flags_for("infill")), negative.exit_code)
        return _fail(message, error.exit_code) if message else error.exit_code  # empty: help was shown
    except Stopped as stop:
        return _fail(stop.reason, stop.code)
    except Exception as error:  # a bug: say so in one line, traceback only on request
        if debug:
            raise
        return _fail(f"internal error: {type(error).__name__}: {error} (set MASKFLOW_DEBUG=1 for the traceback)", 1)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
