"""The Typer app: the commands registered in one place. The error boundary is ``main.py``.

Registering the commands imports no torch and no FFmpeg: Typer reads only their signatures (the
option declarations, options.py), so ``--version``, ``--help`` and a usage error answer at once;
each command imports its library modules when it runs.
"""

from __future__ import annotations

import platform
import sys
from typing import Annotated

import typer

from .. import __version__
from . import codec_commands, commands, eval_command, info_command, recipe_command, train_commands
from .data_commands import data_app
from .help_format import Command, Group

app = typer.Typer(
    name="maskflow",
    help="Generate, extend and infill videos with MaskFlow (discrete flow matching under frame-level masking).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Typer's rich help loads rich.markdown and markdown-it, 0.1 s of every --help
    cls=Group,
)
EPILOG = ("Results go to stdout or the output file; one summary line to stderr (not with --quiet or --json); "
          "progress to stderr, only on a terminal.")
app.command(cls=Command, epilog=EPILOG)(commands.generate)
app.command(cls=Command)(commands.extend)
app.command(cls=Command, context_settings={"ignore_unknown_options": True})(commands.infill)  # -5: is a range, not an option
app.command(cls=Command)(codec_commands.encode)
app.command(cls=Command)(codec_commands.decode)
app.command(cls=Command)(codec_commands.tokenize)
app.command(cls=Command)(info_command.info)
app.command(cls=Command, name="eval")(eval_command.eval_)
app.command(cls=Command, name="train-tokenizer")(train_commands.train_tokenizer)
app.command(cls=Command)(train_commands.train)
app.command(cls=Command)(recipe_command.recipe)
app.add_typer(data_app, name="data")


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version  # torch's version without importing torch

        sys.stdout.write(f"maskflow {__version__} (torch {version('torch')}, Python {platform.python_version()})\n")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    pass
