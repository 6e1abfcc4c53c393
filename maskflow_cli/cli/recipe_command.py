"""``maskflow recipe NAME --budget 9m -o DIR``: one command for one GPU window (window_recipes.py)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from ..defaults import RECIPES
from ..errors import InvalidArgumentError
from . import options as opt
from .groups import ReportGroup, command

RecipeName = Annotated[str, typer.Argument(metavar="NAME", help=f"The recipe: {', '.join(RECIPES)}.", show_default=False)]
Budget = Annotated[str, typer.Option("--budget", metavar="DURATION", help="The whole run's time: data, training and evaluation (90s, 9m, 2h).")]
RecipeOutput = Annotated[str, typer.Option("--output", "-o", metavar="DIR", help="A new or empty folder: it gets the weights and RECORD.md, nothing else.")]
Smoke = Annotated[bool, typer.Option("--smoke", help="Toy sizes and tiny presets, on the CPU in about a minute: checks that the recipe runs, makes no useful model.")]
Workers = Annotated[Optional[int], typer.Option("--workers", "-j", help="Processes making data at once. Default: every core.")]


@command
def recipe(name: RecipeName, output: RecipeOutput, budget: Budget = "9m", smoke: Smoke = False, workers: Workers = None,
           device: opt.Device = "auto", report: ReportGroup = ReportGroup()) -> None:
    """Run a recipe for one GPU window: data, training and a quick evaluation within --budget.

    digits-continue: continue the shipped digits transformer on fresh Moving MNIST. digits-fast: the
    block-causal, factorised design (width 192, depth 6) from scratch on the shipped tokenizer. maze:
    maze data, the maze16 tokenizer and a transformer. DIR gets the weights (the transformer in bf16)
    and RECORD.md: the exact commands, hardware, training logs and eval JSON. Ship weights only after
    `maskflow eval` confirms them better than the shipped ones.

    Examples:

      maskflow recipe digits-continue --budget 9m -o runs/continue

      maskflow recipe maze --budget 9m -o runs/maze --device cuda
    """
    if name not in RECIPES:
        raise InvalidArgumentError("name", name, f"choose one of {', '.join(RECIPES)}")
    from ..budget import parse_duration
    from ..window_recipes import RECIPES as RUN

    reporter = report.reporter()

    def log(text: str) -> None:  # each stage on stderr as it starts (not --quiet, --json)
        if not (reporter.quiet or reporter.json_output):
            reporter.console.print(text, highlight=False, markup=False, soft_wrap=True)

    result = RUN[name](output, parse_duration(budget, "budget"), smoke=smoke, device="cpu" if smoke else device, workers=workers,
                           log=log)
    reporter.result({"command": "recipe", **result},
                    f"wrote {result['output']}: {', '.join(result['files'])}, {result['bytes'] / 2**20:.1f} MiB, {result['seconds']:.0f} s")
