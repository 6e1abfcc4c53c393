"""The camera's walk through a maze: plain numpy, no MuJoCo (the maze world renders along it).

The path (:func:`plan_rollout`): breadth-first search to a random free cell a few cells away, then
following the cell centres with a smoothed turn rate (at most ``MAX_TURN_DEG`` a frame, changing by
at most ``TURN_ACCEL_DEG`` a frame), slowing down in turns; per clip a random speed, eye height and
pitch; now and then a pause to look around. The eye always stays at least ``CLEARANCE`` cells away
from walls and from the cells of the coloured target spheres.

Axis legend: F frames of one rollout; R, K maze rows and columns (cells); poses are (row, column) in
cells, heading in radians (0 = +column, counter-clockwise seen from above), eye height in metres,
pitch in degrees.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

BLOCKED = set("*0123456789G")  # labmaze walls ('*' and memory-maze's wall variations) and target cells
MAX_TURN_DEG = 7.0  # largest turn per frame
TURN_ACCEL_DEG = 1.5  # largest change of the turn rate per frame: turns start and end smoothly
SPEED_RANGE = (0.035, 0.08)  # cells per frame, drawn per clip
EYE_RANGE = (0.25, 0.6)  # eye height in metres (walls are 1.5 m high), drawn per clip
PITCH_RANGE = (-12.0, 0.0)  # degrees, drawn per clip
CLEARANCE = 0.3  # cells between the eye and any blocked cell
GOAL_DISTANCE = (3, 10)  # path length in cells to the next goal
PAUSE_PROB = 0.3  # at a goal: chance to stop and look around
LOOK_RANGE_DEG = (60.0, 180.0)  # how far to turn when looking around


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


__all__ = ["Rollout", "free_cells", "plan_rollout", "wall_gap"]
