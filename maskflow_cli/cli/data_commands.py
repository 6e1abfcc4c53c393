"""Dataset commands: ``maskflow data NAME``, one for every world in the registry (worlds/__init__.py).

A world's entry gives its command everything: the help text, what OUT may be, the builder's options
(each ``--name``) and the job that checks a request, builds the dataset and reports it.
``maskflow data show`` turns one clip of a clips file back into a video (show_command.py).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Annotated, Callable

import typer
from rich.markup import escape

from ..worlds import WORLDS, Option, World
from . import options as opt
from .groups import ReportGroup
from .help_format import Command, Group
from .show_command import show

data_app = typer.Typer(
    help="Build training datasets as clips files for 'maskflow train-tokenizer' and 'maskflow train'.",
    no_args_is_help=True,
    cls=Group,
)


def _parameter(option: Option) -> inspect.Parameter:
    """A world's builder option as a Typer option: ``--name`` (and its short flag), required without a default."""
    flags = ("--" + option.name.replace("_", "-"), *((option.short,) if option.short else ()))
    annotation = Annotated[option.type, typer.Option(*flags, help=option.help, show_default=option.default is not None)]
    default = inspect.Parameter.empty if option.default is None else option.default
    return inspect.Parameter(option.name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


def world_command(world: World) -> Callable[..., None]:
    """The ``maskflow data NAME`` command of one world."""

    def command(output: str, overwrite: bool, json_: bool, quiet: bool, **options: int | str) -> None:
        reporter = ReportGroup(json_=json_, quiet=quiet).reporter()
        job = world.dataset(output, overwrite=overwrite, **options)
        reporter.log(job.plan)
        if job.progress is None:
            made = job.run(None)
        else:
            with reporter.progress(job.clips, job.progress) as bar:
                made = job.run(bar.advance if bar is not None else None)
        summary, line = job.report(made, reporter.seconds())
        reporter.result({"command": f"data {world.name}", "output": output, **summary}, line)

    out = Annotated[str, typer.Argument(metavar="OUT", help=world.output_help, show_default=False)]
    keyword = inspect.Parameter.KEYWORD_ONLY
    command.__signature__ = inspect.Signature([
        inspect.Parameter("output", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=out),
        *(_parameter(option) for option in world.options),
        inspect.Parameter("overwrite", keyword, default=False, annotation=opt.Overwrite),
        *(inspect.Parameter(name, keyword, default=default, annotation=annotation) for name, (annotation, default) in _report_options().items()),
    ])
    command.__doc__ = escape(world.description)  # '[' is Rich markup in help text
    command.option_groups = (ReportGroup,)
    command.world_options = tuple(option.name for option in world.options)  # declared by the world's entry
    return command


def _report_options() -> dict:
    """ReportGroup's fields: name -> (declaration, default)."""
    types = typing.get_type_hints(ReportGroup, include_extras=True)
    return {f.name: (types[f.name], f.default) for f in dataclasses.fields(ReportGroup)}


for _world in WORLDS.values():
    data_app.command(_world.name, cls=Command)(world_command(_world))
data_app.command("show", cls=Command)(show)
