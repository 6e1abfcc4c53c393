"""How help reads: flags shown as flags, arguments by their names.

Typer's help shows a type after every option, ``<bool>`` after flags too (``--json <bool>``), although
a flag takes no value, and wraps required arguments in braces in the usage line
(``maskflow infill [OPTIONS] {INPUT} {RANGES...}...``). The command and group classes here, passed
to Typer with ``cls=``, show nothing after a flag and write the usage line as
``maskflow infill [OPTIONS] INPUT RANGES...`` (optional arguments in brackets).
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


class Command(typer.core.TyperCommand):
    def get_params(self, ctx) -> list:
        return _flags_take_no_value(super().get_params(ctx))

    def collect_usage_pieces(self, ctx) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_argument_usage(p) for p in self.get_params(ctx) if p.param_type_name == "argument"]


class Group(typer.core.TyperGroup):
    def get_params(self, ctx) -> list:
        return _flags_take_no_value(super().get_params(ctx))
