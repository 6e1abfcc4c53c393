"""The Typer app: the commands registered in one place. The error boundary is ``main.py``."""

from __future__ import annotations

import typer

from . import commands, eval_command, train_commands
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
