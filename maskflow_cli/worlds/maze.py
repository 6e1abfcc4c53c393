"""The maze world: first-person videos of random 3D mazes, DMLab-like, rendered with memory-maze.

memory-maze (Pasukonis et al. 2022, MIT) builds DMLab-style mazes with labmaze's layouts and wall and
floor textures and renders them with MuJoCo through dm_control. Stepping its physics is slow (about
12-15 frames/s per core); this module builds the maze once per episode and moves dm_control's free
camera along a planned path (maze_walk.py) instead, which renders several times faster. One long
rollout per maze is cut into clips, because building a maze (compiling its MuJoCo model) takes seconds.

Determinism: maze ``i`` of a split is built from a seed that depends only on (seed, split, i), and
its path from a generator seeded the same way, so the same arguments give the same clips whatever
the number of workers. Train mazes have even seeds and test mazes odd ones: the splits never share a
maze seed (the layouts are labmaze's random rooms-and-corridors mazes of 9x9 to 15x15 cells, and the
clips file records each clip's maze seed so that anyone can check).

The world's entry (``entries.MAZE``) names ``maskflow data maze`` (:func:`dataset`), held-out clips from
test mazes (:func:`held_out`) and the drift statistics of RGB first-person video
(:func:`drift_stats`: colour and sharpness).

Axis legend: F frames of one rollout, N clips, T frames per clip, S pixels (square frames), 3 RGB,
R, K maze rows and columns (cells), B sequences, Y, X pixels, L colour bins.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
from torch import Tensor

from ..clips import CLIPS_SUFFIX, check_clips_output, save_clips
from ..defaults import SHARD_CLIPS
from ..errors import InvalidArgumentError, OutputError, check_range
from ..metrics import to_unit
from ..video_io import FrameFormat
from .maze_walk import plan_rollout
from .entries import MAZE
from .world import DatasetJob, OnProgress

NEEDS_MAZE = "needs memory-maze: pip install 'maskflow[maze]'"
MAZE_PACKAGES = ("memory_maze", "gym", "mujoco", "dm_control", "labmaze")

SPLIT_PARITY = {"train": 0, "test": 1}  # maze seeds: train even, test odd
MAZE_SIZES = (9, 11, 13, 15)  # memory-maze's four layouts (inner cells)
CLIPS_PER_MAZE = 32  # clips cut from one maze's rollout: building a maze costs ~4 s, 32 x 36 frames ~13 s
XY_SCALE = 2.0  # metres per cell in memory-maze
FOV_DEG = 80.0  # memory-maze's egocentric camera
MAX_CLIPS = 1_000_000
MAX_FRAMES = 10_000
SIZES = (32, 512)
SHARD_NAME = "shard-{:05d}.safetensors"
SHARD_GLOB = "shard-*.safetensors"
MAX_FILE_BYTES = 16 * 2**30
COLOUR_LEVELS = 4  # drift statistics: per RGB channel, 64 joint colour bins for the colour histograms


# ---- checks --------------------------------------------------------------------------------------


def maze_available() -> bool:
    """Whether the ``maze`` extra (memory-maze and what it imports) is installed."""
    return all(importlib.util.find_spec(name) is not None for name in MAZE_PACKAGES)


def check_maze_installed() -> None:
    """InvalidArgumentError with the one-line install hint when the ``maze`` extra is missing."""
    if not maze_available():
        raise InvalidArgumentError("dataset", "maze", NEEDS_MAZE)


def check_maze_args(clips: int, frames: int, *, seed: int, split: str, size: int, workers: int) -> None:
    """InvalidArgumentError, naming the parameter, for any :func:`maze_clips` argument out of range."""
    check_range("clips", clips, 1, MAX_CLIPS)
    check_range("frames", frames, 1, MAX_FRAMES)
    check_range("seed", seed, 0, 2**63 - 1)
    if split not in SPLIT_PARITY:
        raise InvalidArgumentError("split", split, "choose train or test")
    check_range("size", size, *SIZES)
    check_range("workers", workers, 1, 256)


# ---- seeds ---------------------------------------------------------------------------------------


def maze_seed(seed: int, split: str, index: int) -> int:
    """The memory-maze seed of maze ``index`` of a split: even for train, odd for test, < 2**31."""
    state = np.random.SeedSequence([seed, SPLIT_PARITY[split], index]).generate_state(1)[0]
    return int(state >> 2) * 2 + SPLIT_PARITY[split]


def maze_size_for(maze: int) -> int:
    """The layout size (inner cells) used for a maze seed: drawn from MAZE_SIZES by the seed."""
    return MAZE_SIZES[np.random.default_rng([maze, 1]).integers(len(MAZE_SIZES))]


# ---- rendering (needs the maze extra) ------------------------------------------------------------


def _quiet_import_tasks():
    """memory_maze.tasks, importing gym without its deprecation banner on stdout and stderr."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        from memory_maze import tasks
    return tasks


def render_maze(maze: int, clips: int, frames: int, size: int) -> np.ndarray:
    """Build maze ``maze`` (a memory-maze seed) and render ``clips`` x ``frames`` frames along a
    planned path: uint8 [clips,frames,S,S,3]."""
    tasks = _quiet_import_tasks()
    from dm_control.mujoco.engine import MovableCamera

    make = {9: tasks.memory_maze_9x9, 11: tasks.memory_maze_11x11, 13: tasks.memory_maze_13x13, 15: tasks.memory_maze_15x15}
    env = make[maze_size_for(maze)](seed=maze, camera_resolution=size, target_color_in_image=False,
                                     discrete_actions=False, image_only_obs=False)
    env.reset()  # builds the layout and compiles the MuJoCo model
    physics, task = env.physics, env.task
    arena = task._maze_arena  # the maze's text layout and its placement in the world
    layout = np.array(arena.maze.entity_layer, dtype="U1")  # [R,K]
    task._walker.set_pose(physics, position=np.array([0.0, 0.0, -5.0]))  # out of sight, under the floor
    physics.model.vis.global_.fovy = FOV_DEG
    physics.forward()
    rollout = plan_rollout(layout, clips, frames, np.random.default_rng([maze, 2]))
    camera = MovableCamera(physics, height=size, width=size)
    x_offset, y_offset = (layout.shape[1] - 1) / 2, (layout.shape[0] - 1) / 2
    video = np.empty((clips * frames, size, size, 3), dtype=np.uint8)
    near = 0.01  # metres between the free camera and the point it looks at
    for t in range(len(video)):
        row, col = rollout.position[t]
        azimuth, elevation = math.degrees(rollout.heading[t]), rollout.pitch[t]
        forward = np.array([math.cos(math.radians(elevation)) * math.cos(rollout.heading[t]),
                            math.cos(math.radians(elevation)) * math.sin(rollout.heading[t]),
                            math.sin(math.radians(elevation))])
        eye = np.array([(col - x_offset) * XY_SCALE, -(row - y_offset) * XY_SCALE, rollout.eye[t]])
        camera.set_pose(eye + near * forward, near, azimuth, elevation)
        video[t] = camera.render()  # the renderer reuses its buffer: this copies
    env.close()
    return video.reshape(clips, frames, size, size, 3)


# ---- the dataset ---------------------------------------------------------------------------------


def maze_plan(clips: int) -> list[int]:
    """Clips cut from each maze, in order: CLIPS_PER_MAZE each, the last maze the remainder."""
    return [min(CLIPS_PER_MAZE, clips - first) for first in range(0, clips, CLIPS_PER_MAZE)]


def _render_job(job: tuple[int, int, int, int]) -> tuple[int, np.ndarray]:
    maze, count, frames, size = job
    return maze, render_maze(maze, count, frames, size)


def _init_worker() -> None:
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("LP_NUM_THREADS", "1")  # Mesa's software rasteriser: one thread per worker


def maze_clips(clips: int, frames: int, *, seed: int, split: str = "train", size: int = 64, workers: int = 1,
               on_maze: Callable[[int], None] | None = None) -> Iterator[tuple[np.ndarray, list[int]]]:
    """Render ``clips`` clips of ``frames`` frames from mazes of ``split``, maze by maze, in order.

    Yields (uint8 [n,T,S,S,3] clips of one maze, the maze seed of each of those clips); ``workers``
    processes render mazes in parallel (results come back in maze order; never in this process). ``on_maze(n)`` is called
    with the clip count of every finished maze (for progress).
    """
    check_maze_args(clips, frames, seed=seed, split=split, size=size, workers=workers)
    check_maze_installed()
    jobs = [(maze_seed(seed, split, i), count, frames, size) for i, count in enumerate(maze_plan(clips))]
    # Always in worker processes, even one: MuJoCo, its GL context and the maze assets take ~1.5 GB,
    # which then leaves with the worker instead of staying in the caller's process.
    import multiprocessing

    pool = multiprocessing.get_context("spawn").Pool(min(workers, len(jobs)), initializer=_init_worker)
    try:
        for maze, video in pool.imap(_render_job, jobs):
            if on_maze is not None:
                on_maze(len(video))
            yield video, [maze] * len(video)
    finally:
        pool.terminate()
        pool.join()


def check_maze_output(output: str | os.PathLike, overwrite: bool) -> Path:
    """Where a maze dataset goes: a ``.safetensors`` file, or a folder of shards (created if missing;
    one that already holds shards needs ``overwrite``). OutputError otherwise."""
    target = Path(output)
    if target.suffix == CLIPS_SUFFIX:
        check_clips_output(target, overwrite)
        return target
    if target.exists() and not target.is_dir():
        raise OutputError(str(output), f"is a file; give a folder for shards or a {CLIPS_SUFFIX} file")
    if not target.parent.is_dir():
        raise OutputError(str(output), f"folder {target.parent} does not exist")
    if target.is_dir() and any(target.glob(SHARD_GLOB)) and not overwrite:
        raise OutputError(str(output), "already holds shards; pass {param:overwrite=True} to replace them")
    return target


def write_maze_dataset(output: str | os.PathLike, clips: int, frames: int, *, seed: int, split: str = "train", size: int = 64,
                       workers: int = 1, shard_clips: int = SHARD_CLIPS, overwrite: bool = False,
                       on_maze: Callable[[int], None] | None = None) -> dict:
    """Render a maze dataset (:func:`maze_clips`) into a clips file or a folder of clips shards.

    A ``.safetensors`` output is one clips file (refused above MAX_FILE_BYTES); any other path is a
    folder that gets ``shard-00000.safetensors``, ... of ``shard_clips`` clips each, written as soon
    as they are complete, so memory holds at most one shard. Every file's metadata has the recipe
    and the maze seed of each of its clips. Returns the recipe with the files written.
    """
    check_maze_args(clips, frames, seed=seed, split=split, size=size, workers=workers)
    check_range("shard_clips", shard_clips, 1, MAX_CLIPS)
    target = check_maze_output(output, overwrite)
    single = target.suffix == CLIPS_SUFFIX
    if single and clips * frames * size * size * 3 > MAX_FILE_BYTES:
        raise InvalidArgumentError("clips", clips, f"over {MAX_FILE_BYTES // 2**30} GiB in one file; give a folder for sharded output")
    check_maze_installed()
    recipe = {"dataset": MAZE.name, "split": split, "seed": seed, "frames": frames, "size": size,
              "clips_per_maze": CLIPS_PER_MAZE, "renderer": "memory-maze free camera"}
    per_file = clips if single else shard_clips
    files: list[str] = []
    pending: list[np.ndarray] = []
    seeds: list[int] = []

    def flush() -> None:
        path = target if single else target / SHARD_NAME.format(len(files))
        batch = np.concatenate(pending)
        save_clips(path, torch.from_numpy(batch), {**recipe, "sequences": len(batch), "clips": len(batch),
                                                   "shard": len(files), "maze_seeds": seeds[: len(batch)]}, overwrite=True)
        files.append(str(path))
        del seeds[: len(batch)]
        pending.clear()

    if not single:
        target.mkdir(exist_ok=True)
    buffered = 0
    for video, mazes in maze_clips(clips, frames, seed=seed, split=split, size=size, workers=workers, on_maze=on_maze):
        while len(video):
            take = min(per_file - buffered, len(video))
            pending.append(video[:take])
            seeds.extend(mazes[:take])
            video, mazes, buffered = video[take:], mazes[take:], buffered + take
            if buffered == per_file:
                flush()
                buffered = 0
    if pending:
        flush()
    if not single:  # shards of an earlier, larger dataset in this folder would be read with it
        for stale in sorted(target.glob(SHARD_GLOB)):
            if str(stale) not in files:
                stale.unlink()
    return {**recipe, "clips": clips, "files": files}


# ---- the world: 'maskflow data maze', held-out clips, drift statistics --------------------------


def dataset(output: str, *, clips: int, frames: int, seed: int, split: str = "train", size: int = 64, workers: int = 1,
            shard_clips: int = SHARD_CLIPS, overwrite: bool = False) -> DatasetJob:
    """``maskflow data maze``: :func:`write_maze_dataset` with its arguments, output and the extra checked first."""
    check_maze_args(clips, frames, seed=seed, split=split, size=size, workers=workers)
    check_maze_output(output, overwrite)
    check_maze_installed()
    mazes = len(maze_plan(clips))

    def run(on_progress: OnProgress) -> dict:
        return write_maze_dataset(output, clips, frames, seed=seed, split=split, size=size, workers=workers,
                                  shard_clips=shard_clips, overwrite=overwrite, on_maze=on_progress)

    def report(made: dict, seconds: float) -> tuple[dict, str]:
        summary = {**made, "mazes": mazes, "workers": workers, "seconds": seconds,
                   "frames_per_second": round(clips * frames / max(seconds, 1e-9), 1)}
        return summary, (f"wrote {output}: {clips:,} clips of {frames} frames, {size}x{size} RGB, {mazes} {split} mazes, "
                         f"seed {seed}, {len(made['files'])} file(s), {seconds:.1f} s")

    plan = f"rendering {clips:,} clips of {frames} frames from {mazes:,} {split} mazes with {workers} workers"
    return DatasetJob(plan, run, report, progress="rendering", clips=clips)


def held_out(count: int, frames: int, fmt: FrameFormat, seed: int) -> Tensor:
    """``count`` clips of ``frames`` frames from test mazes (``seed`` picks them) at ``fmt``: uint8 [N,frames,S,S,3]."""
    if fmt.channels != 3 or fmt.height != fmt.width or not SIZES[0] <= fmt.height <= SIZES[1]:
        raise InvalidArgumentError("data", None, f"maze frames are square RGB of {SIZES[0]} to {SIZES[1]} pixels, the model's are "
                                                 f"{fmt.width}x{fmt.height}x{fmt.channels}; give {{param:data}}")
    parts = [video for video, _ in maze_clips(count, frames, seed=seed, split="test", size=fmt.height)]
    return torch.from_numpy(np.concatenate(parts))  # [N,T,S,S,3]


def colour_histograms(frames: Tensor) -> Tensor:
    """uint8 RGB [B,T,Y,X,3] -> each frame's joint colour histogram, COLOUR_LEVELS per channel,
    normalised to sum 1: [B,T,COLOUR_LEVELS**3]."""
    levels = (frames.long() * COLOUR_LEVELS) // 256  # [B,T,Y,X,3] in 0..L-1
    index = ((levels[..., 0] * COLOUR_LEVELS + levels[..., 1]) * COLOUR_LEVELS + levels[..., 2]).flatten(2)  # [B,T,P]
    counts = torch.zeros(*index.shape[:2], COLOUR_LEVELS**3).scatter_add_(2, index, torch.ones(index.shape))
    return counts / index.shape[-1]


def sharpness(frames: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] -> mean absolute difference of neighbouring pixels (luma in [0, 1], both
    directions), [B,T]: edges and textures raise it, blur lowers it."""
    luma = to_unit(frames).mean(-1)  # [B,T,Y,X]
    dy = (luma[:, :, 1:] - luma[:, :, :-1]).abs().flatten(2).mean(-1)
    dx = (luma[:, :, :, 1:] - luma[:, :, :, :-1]).abs().flatten(2).mean(-1)
    return (dx + dy) / 2


def drift_stats(video: Tensor, real: Tensor) -> dict[str, Tensor]:
    """Drift statistics of RGB first-person video, uint8 [B,T,Y,X,3], each per frame [B,T]: colour
    (total-variation distance, 0..1, of the frame's colour histogram from that of all ``real``
    frames) and sharpness. Means per bin are taken later; the colour distance of a bin is then the
    mean of its frames' distances."""
    reference = colour_histograms(real).mean((0, 1))  # [L**3]
    colour = 0.5 * (colour_histograms(video) - reference).abs().sum(-1)  # [B,T]
    return {"colour": colour, "sharpness": sharpness(video)}


__all__ = [
    "check_maze_args",
    "check_maze_installed",
    "check_maze_output",
    "colour_histograms",
    "dataset",
    "drift_stats",
    "held_out",
    "maze_available",
    "maze_clips",
    "maze_plan",
    "maze_seed",
    "render_maze",
    "sharpness",
    "write_maze_dataset",
]
