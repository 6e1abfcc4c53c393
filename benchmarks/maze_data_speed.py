"""How fast `maskflow data maze` renders, per core: CPU seconds to build a maze and per rendered frame.

CPU time of this process (``time.process_time``, all its threads) is measured rather than wall time,
so the figures hold per core even while other work shares the machine. For each of ``--mazes`` mazes
it renders one frame (building the maze dominates) and then ``--clips`` x ``--frames`` frames; the
difference is the cost of the frames. The estimate for a full dataset assumes one maze per
CLIPS_PER_MAZE clips and perfect scaling over worker processes (one core each).

    OMP_NUM_THREADS=1 MUJOCO_GL=egl python -m benchmarks maze_data_speed
"""

from __future__ import annotations

import argparse
import math
import sys
import time

from maskflow_cli.worlds import maze

from .markdown import heading, machine, table

NAME = "maze_data_speed"
SHARED: dict = {}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mazes", type=int, default=3)
    parser.add_argument("--clips", type=int, default=4)
    parser.add_argument("--frames", type=int, default=36)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--target-clips", type=int, default=20_000, help="the dataset of the estimate")
    parser.add_argument("--target-frames", type=int, default=36, help="frames per clip of the estimate")
    parser.add_argument("--cores", type=int, default=16, help="worker processes of the estimate")


def cpu_seconds(seed: int, clips: int, frames: int, size: int) -> float:
    started = time.process_time()
    maze.render_maze(seed, clips, frames, size)
    return time.process_time() - started


def run(args: argparse.Namespace) -> dict:
    maze.check_maze_installed()
    maze._init_worker()
    cpu_seconds(maze.maze_seed(99, "train", 0), 1, 1, args.size)  # imports and first-use costs, not counted
    rows = []
    for i in range(args.mazes):
        seed = maze.maze_seed(0, "train", i)
        build = cpu_seconds(seed, 1, 1, args.size)
        full = cpu_seconds(seed, args.clips, args.frames, args.size)
        frames = args.clips * args.frames - 1
        rows.append({"maze_seed": seed, "cells": maze.maze_size_for(seed), "build_cpu_s": round(build, 2),
                     "frames_per_cpu_s": round(frames / max(full - build, 1e-9), 1)})
        print(rows[-1], file=sys.stderr, flush=True)
    build = sum(r["build_cpu_s"] for r in rows) / len(rows)
    fps = len(rows) / sum(1 / r["frames_per_cpu_s"] for r in rows)  # harmonic mean: average cost per frame
    mazes = math.ceil(args.target_clips / maze.CLIPS_PER_MAZE)
    total = mazes * build + args.target_clips * args.target_frames / fps
    result = {"size": args.size, "rows": rows, "build_cpu_s": round(build, 2), "frames_per_cpu_s": round(fps, 1),
              "clips_per_maze": maze.CLIPS_PER_MAZE,
              "estimate": {"clips": args.target_clips, "frames": args.target_frames, "cores": args.cores, "mazes": mazes,
                           "cpu_hours": round(total / 3600, 2), "wall_minutes": round(total / args.cores / 60, 1)}}
    print(result["estimate"])
    return result


def render(r: dict) -> str:
    e = r["estimate"]
    out = heading("Maze data: rendering speed per core", r) + [
        f"Machine: {machine(r['machine'])}; CPU time of one process, {r['size']}×{r['size']} RGB, {len(r['rows'])} train mazes.", ""]
    out += table(["maze (cells a side)", "build (CPU s)", "frames per CPU second"],
                 [[x["cells"], f"{x['build_cpu_s']:.1f}", f"{x['frames_per_cpu_s']:.0f}"] for x in r["rows"]])
    return "\n".join(out + [f"Estimate for {e['clips']:,} clips × {e['frames']} frames ({e['mazes']:,} mazes of {r['clips_per_maze']} clips): "
                            f"{e['cpu_hours']:.1f} CPU hours, about {e['wall_minutes']:.0f} minutes on {e['cores']} cores."])
