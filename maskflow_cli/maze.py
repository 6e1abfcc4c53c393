"""First-person videos of random 3D mazes: the DMLab-like world, rendered with memory-maze.

memory-maze (Pasukonis et al. 2022, MIT) builds DMLab-style mazes with labmaze's layouts and wall and
floor textures and renders them with MuJoCo through dm_control. Stepping its physics is slow (about
12-15 frames/s per core); this module builds the maze once per episode and moves dm_control's free
camera along a planned path instead, which renders several times faster. One long rollout per maze
is cut into clips, because building a maze (compiling its MuJoCo model) takes seconds.

The path (:func:`plan_rollout`, plain numpy, no MuJoCo): breadth-first search to a random free cell
a few cells away, then following the cell centres with a smoothed turn rate (at most
``MAX_TURN_DEG`` a frame, changing by at most ``TURN_ACCEL_DEG`` a frame), slowing down in turns;
per clip a random speed, eye height and pitch; now and then a pause to look around. The eye always
stays at least ``CLEARANCE`` cells away from walls and from the cells of the coloured target spheres.

Determinism: maze ``i`` of a split is built from a seed that depends only on (seed, split, i), and
its path from a generator seeded the same way, so the same arguments give the same clips whatever
the number of workers. Train mazes have even seeds and test mazes odd ones: the splits never share a
maze seed (the layouts are labmaze's random rooms-and-corridors mazes of 9x9 to 15x15 cells, and the
clips file records each clip's maze seed so that anyone can check).

Axis legend: F frames of one rollout, N clips, T frames per clip, S pixels (square frames), 3 RGB,
R, K maze rows and columns (cells); poses are (row, column) in cells, heading in radians
(0 = +column, counter-clockwise seen from above), eye height in metres, pitch in degrees.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import math
import os
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from .data import CLIPS_SUFFIX, _check_range, check_clips_output, save_clips
from .errors import InvalidArgumentError, OutputError

NEEDS_MAZE = "needs memory-maze: pip install 'maskflow[maze]'"
MAZE_PACKAGES = ("memory_maze", "gym", "mujoco", "dm_control", "labmaze")

SPLIT_PARITY = {"train": 0, "test": 1}  # maze seeds: train even, test odd
MAZE_SIZES = (9, 11, 13, 15)  # memory-maze's four layouts (inner cells)
CLIPS_PER_MAZE = 32  # clips cut from one maze's rollout: building a maze costs ~4 s, 32 x 36 frames ~13 s
BLOCKED = set("*0123456789G")  # labmaze walls ('*' and memory-maze's wall variations) and target cells
XY_SCALE = 2.0  # metres per cell in memory-maze

MAX_TURN_DEG = 7.0  # largest turn per frame
TURN_ACCEL_DEG = 1.5  # largest change of the turn rate per frame: turns start and end smoothly
SPEED_RANGE = (0.035, 0.08)  # cells per frame, drawn per clip
EYE_RANGE = (0.25, 0.6)  # eye height in metres (walls are 1.5 m high), drawn per clip
PITCH_RANGE = (-12.0, 0.0)  # degrees, drawn per clip
CLEARANCE = 0.3  # cells between the eye and any blocked cell
GOAL_DISTANCE = (3, 10)  # path length in cells to the next goal
PAUSE_PROB = 0.3  # at a goal: chance to stop and look around
LOOK_RANGE_DEG = (60.0, 180.0)  # how far to turn when looking around
FOV_DEG = 80.0  # memory-maze's egocentric camera
MAX_CLIPS = 1_000_000
MAX_FRAMES = 10_000
SIZES = (32, 512)
SHARD_CLIPS = 1000  # clips per shard file: 1000 x 36 frames of 64x64 RGB is 442 MB
SHARD_NAME = "shard-{:05d}.safetensors"
SHARD_GLOB = "shard-*.safetensors"
MAX_FILE_BYTES = 16 * 2**30


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
    _check_range("clips", clips, 1, MAX_CLIPS)
    _check_range("frames", frames, 1, MAX_FRAMES)
    _check_range("seed", seed, 0, 2**63 - 1)
    if split not in SPLIT_PARITY:
        raise InvalidArgumentError("split", split, "choose train or test")
    _check_range("size", size, *SIZES)
    _check_range("workers", workers, 1, 256)


# ---- seeds ---------------------------------------------------------------------------------------


def maze_seed(seed: int, split: str, index: int) -> int:
    """The memory-maze seed of maze ``index`` of a split: even for train, odd for test, < 2**31."""
    state = np.random.SeedSequence([seed, SPLIT_PARITY[split], index]).generate_state(1)[0]
    return int(state >> 2) * 2 + SPLIT_PARITY[split]


def maze_size_for(maze: int) -> int:
    """The layout size (inner cells) used for a maze seed: drawn from MAZE_SIZES by the seed."""
    return MAZE_SIZES[np.random.default_rng([maze, 1]).integers(len(MAZE_SIZES))]


# ---- path planning (no MuJoCo) -------------------------------------------------------------------


def free_cells(layout: np.ndarray) -> np.ndarray:
    """bool [R,K]: cells the eye may enter (not a wall, not a target sphere's cell)."""
    blocked = np.isin(layout, list(BLOCKED))
    return ~blocked


def bfs_distances(free: np.ndarray, start: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Breadth-first search over 4-connected free cells: distances int [R,K] (-1 unreachable) and
    each reached cell's predecessor."""
    dist = np.full(free.shape, -1, dtype=np.int64)
    dist[start] = 0
    parent: dict = {start: None}
    queue = deque([start])
    while queue:
        r, c = queue.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < free.shape[0] and 0 <= nxt[1] < free.shape[1] and free[nxt] and dist[nxt] < 0:
                dist[nxt] = dist[r, c] + 1
                parent[nxt] = (r, c)
                queue.append(nxt)
    return dist, parent


def _path_to_goal(free: np.ndarray, start: tuple[int, int], rng: np.random.Generator) -> list[tuple[int, int]]:
    """Cells from ``start`` (excluded) to a random reachable goal GOAL_DISTANCE cells away (nearer if
    nothing is that far); empty when no other cell is reachable."""
    dist, parent = bfs_distances(free, start)
    low, high = GOAL_DISTANCE
    candidates = np.argwhere((dist >= low) & (dist <= high))
    if len(candidates) == 0:
        candidates = np.argwhere(dist > 0)
    if len(candidates) == 0:
        return []
    cell = tuple(int(v) for v in candidates[rng.integers(len(candidates))])
    path = []
    while cell != start:
        path.append(cell)
        cell = parent[cell]
    return path[::-1]


def _keep_clear(pos: np.ndarray, free: np.ndarray) -> np.ndarray:
    """Push the eye out of the CLEARANCE margin of the blocked cells around it."""
    r0, c0 = int(round(pos[0])), int(round(pos[1]))
    for _ in range(2):  # a push away from one wall can only bring it nearer a perpendicular one once
        for r in range(r0 - 1, r0 + 2):
            for c in range(c0 - 1, c0 + 2):
                if 0 <= r < free.shape[0] and 0 <= c < free.shape[1] and free[r, c]:
                    continue
                nearest = np.clip(pos, [r - 0.5, c - 0.5], [r + 0.5, c + 0.5])  # on the blocked square
                away = pos - nearest
                gap = float(np.hypot(*away))
                if gap < CLEARANCE:
                    pos = nearest + away / max(gap, 1e-9) * CLEARANCE if gap > 1e-9 else pos
    return pos


def wall_gap(pos: np.ndarray, free: np.ndarray) -> float:
    """Distance in cells from a point (row, column) to the nearest blocked cell (or the grid's edge)."""
    best = math.inf
    for (r, c) in np.argwhere(~free):
        nearest = np.clip(pos, [r - 0.5, c - 0.5], [r + 0.5, c + 0.5])
        best = min(best, float(np.hypot(*(pos - nearest))))
    return best


def _wrap(angle: float) -> float:
    return (angle + math.pi) % (2 * math.pi) - math.pi


@dataclass(frozen=True)
class Rollout:
    """Camera poses of one rollout, one row per frame."""

    position: np.ndarray  # float64 [F,2] (row, column) in cells
    heading: np.ndarray  # float64 [F] radians, 0 = +column, counter-clockwise from above
    eye: np.ndarray  # float64 [F] eye height in metres
    pitch: np.ndarray  # float64 [F] degrees, negative looks down


def plan_rollout(layout: np.ndarray, clips: int, frames: int, rng: np.random.Generator) -> Rollout:
    """Poses for ``clips`` consecutive clips of ``frames`` frames through the maze ``layout`` (labmaze
    characters [R,K]); speed, eye height and pitch are drawn anew at every clip's start."""
    free = free_cells(layout)
    cells = np.argwhere(free)
    pos = cells[rng.integers(len(cells))].astype(np.float64)
    heading, turn, speed = rng.uniform(-math.pi, math.pi), 0.0, 0.0
    path: list[tuple[int, int]] = []
    look_at: float | None = None  # heading to turn to while pausing
    max_turn, accel = math.radians(MAX_TURN_DEG), math.radians(TURN_ACCEL_DEG)
    total = clips * frames
    out = {k: np.empty(total) for k in ("heading", "eye", "pitch")}
    positions = np.empty((total, 2))
    for t in range(total):
        if t % frames == 0:
            top_speed, eye, pitch = rng.uniform(*SPEED_RANGE), rng.uniform(*EYE_RANGE), rng.uniform(*PITCH_RANGE)
        if not path and look_at is None:
            if rng.random() < PAUSE_PROB:
                look_at = heading + rng.choice([-1, 1]) * math.radians(rng.uniform(*LOOK_RANGE_DEG))
            else:
                path = _path_to_goal(free, (int(round(pos[0])), int(round(pos[1]))), rng)
        if look_at is not None:
            error, wanted_speed = _wrap(look_at - heading), 0.0
            if abs(error) < math.radians(2) and abs(turn) < accel:
                look_at = None
        elif path:
            target = np.asarray(path[0], dtype=np.float64)
            delta = target - pos
            if np.hypot(*delta) < 0.35 and len(path) > 1:  # close enough: aim at the next cell centre
                path.pop(0)
                delta = np.asarray(path[0], dtype=np.float64) - pos
            elif np.hypot(*delta) < 0.1:
                path.pop(0)
            error = _wrap(math.atan2(-delta[0], delta[1]) - heading)
            alignment = (math.cos(error) - math.cos(math.radians(50))) / (1 - math.cos(math.radians(50)))
            wanted_speed = top_speed * float(np.clip(alignment, 0.0, 1.0)) * min(1.0, float(np.hypot(*delta)) / 0.5 + 0.3)
        else:
            error, wanted_speed = 0.0, 0.0
        # turn rate: proportional to the error, limited in size and in change per frame
        wanted_turn = float(np.clip(0.25 * error, -max_turn, max_turn))
        turn = float(np.clip(wanted_turn, turn - accel, turn + accel))
        heading = _wrap(heading + turn)
        speed = float(np.clip(wanted_speed, speed - 0.01, speed + 0.01))
        pos = _keep_clear(pos + speed * np.array([-math.sin(heading), math.cos(heading)]), free)
        positions[t] = pos
        out["heading"][t], out["eye"][t], out["pitch"][t] = heading, eye, pitch
    return Rollout(positions, out["heading"], out["eye"], out["pitch"])


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
    _check_range("shard_clips", shard_clips, 1, MAX_CLIPS)
    target = check_maze_output(output, overwrite)
    single = target.suffix == CLIPS_SUFFIX
    if single and clips * frames * size * size * 3 > MAX_FILE_BYTES:
        raise InvalidArgumentError("clips", clips, f"over {MAX_FILE_BYTES // 2**30} GiB in one file; give a folder for sharded output")
    check_maze_installed()
    recipe = {"dataset": "maze", "split": split, "seed": seed, "frames": frames, "size": size,
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


__all__ = [
    "Rollout",
    "check_maze_output",
    "write_maze_dataset",
    "check_maze_args",
    "check_maze_installed",
    "free_cells",
    "maze_available",
    "maze_clips",
    "maze_plan",
    "maze_seed",
    "plan_rollout",
    "render_maze",
    "wall_gap",
]
