"""How help reads: flags shown as flags, arguments by their names.

Typer's help shows a type after every option, ``<bool>`` after flags too (``--json <bool>``), although
a flag takes no value, and wraps required arguments in braces in the usage line
(``maskflow infill [OPTIONS] {INPUT} {RANGES...}...``). The command and group classes here, passed
to Typer with ``cls=``, show nothing after a flag and write the usage line as
``maskflow infill [OPTIONS] INPUT RANGES...`` (optional arguments in brackets).

Help is plain text (the app's ``rich_markup_mode`` is None): Typer's rich help imports rich's
markdown and traceback modules, about 0.1 s of every ``--help``. The options still come under the
heading of their declaration's ``rich_help_panel`` (Sampling, Runtime, Output, ...), as the rich help
shows them, in the order the command declares them.
"""

from __future__ import annotations

import typer.core


def _flags_take_no_value(params: list) -> list:
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # help shows the metavar in place of the type: nothing
    return params


def _argument_usage(param) -> str:
    name = param.metavar or param.name.upper()
    if param.nargs != 1 and not name.endswith("..."):
        name += "..."
    return name if param.required else f"[{name}]"


def _format_by_panel(command, ctx, formatter) -> None:
    """The arguments, then the options under one heading per help panel, in order of first use."""
    sections: dict[str, list[tuple[str, str]]] = {}
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx)
        if record is not None:
            default = "Arguments" if param.param_type_name == "argument" else "Options"
            sections.setdefault(getattr(param, "rich_help_panel", None) or default, []).append(record)
    for title in sorted(sections, key=lambda t: t != "Arguments"):  # stable: arguments first, then in order
        with formatter.section(title):
            formatter.write_dl(sections[title])


class Command(typer.core.TyperCommand):
    def get_params(self, ctx) -> list:
        return _flags_take_no_value(super().get_params(ctx))

    def format_options(self, ctx, formatter) -> None:
        _format_by_panel(self, ctx, formatter)

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_argument_usage(p) for p in self.get_params(ctx) if p.param_type_name == "argument"]


class Group(typer.core.TyperGroup):
    def get_params(self, ctx) -> list:
        return _flags_take_no_value(super().get_params(ctx))

    def format_options(self, ctx, formatter) -> None:
        _format_by_panel(self, ctx, formatter)
        self.format_commands(ctx, formatter)
