"""Start-up: how long `maskflow --version`, `--help`, `generate --help`, `info` and a one-frame `generate` take, and what they import.

Each command runs in its own process (Python's own start-up included), ``--rounds`` times, under
OMP_NUM_THREADS=1; the commands and the revisions take turns in a rotating order, so load from other
processes hits them alike. The table gives the best and the median wall time and the best CPU time
(user + system) of each; on a shared machine the best of several runs is the closest to an idle
machine's. ``generate --frames 1`` is the time to a first frame: start-up, loading the weights, one
window's sampling, decoding and writing. One more run under ``python -X importtime`` tells what the command imported: whether torch,
PyAV (FFmpeg) and numpy were loaded, and the summed import time. ``--revisions`` takes git revisions
(checked out into temporary worktrees) or ``.`` for this working tree. The load average before and
after is stored beside. Prints a table:

    OMP_NUM_THREADS=1 python -m benchmarks startup --revisions e53eafa . --rounds 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

from .common import run_maskflow
from .compare import checkout, remove_checkout
from .markdown import heading, machine, table

NAME = "startup"
SHARED = {"weights": None}
COMMANDS = (("--version",), ("--help",), ("generate", "--help"), ("info",), ("generate", "--frames", "1", "-o", "{tmp}/first.mkv"))
WATCHED = ("torch", "av", "numpy")  # the heavy packages a start-up should not wait for
ENV = {"OMP_NUM_THREADS": "1"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--revisions", nargs="+", default=["."], metavar="REV",
                        help="git revisions to time, '.' for this working tree (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5, help="timed runs of each command (default: %(default)s)")


def command_args(command: tuple[str, ...], weights: str | None, tmp: str) -> list[str]:
    """The command line run, its output in ``tmp``: ``info`` and ``generate`` read --weights where the
    benchmark was given them (a path made absolute: the commands run in the revision's tree)."""
    args = [a.format(tmp=tmp) for a in command]
    if "--help" in command or command[0] not in ("info", "generate") or not weights:
        return args
    return [*args, "--weights", str(Path(weights).resolve()) if Path(weights).exists() else weights]


def imports(tree: Path, args: list[str]) -> dict:
    """What ``maskflow ARGS`` imports, read from one run under ``python -X importtime``: whether each
    WATCHED package was loaded and the import time summed over every module (ms)."""
    finished = run_maskflow(args, tree=tree, cwd=tree, env={**ENV, "PYTHONPROFILEIMPORTTIME": "1"})
    modules, total_us = set(), 0
    for line in finished.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        own, _, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        if own.isdigit():
            modules.add(name)
            total_us += int(own)
    return {**{package: package in modules for package in WATCHED}, "modules": len(modules), "import_ms": round(total_us / 1000, 1)}


def run(args: argparse.Namespace) -> dict:
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="maskflow-startup-") as tmp:
        commands = [command_args(c, args.weights, tmp) for c in COMMANDS]
        trees = {rev: checkout(rev, Path(tmp)) for rev in args.revisions}
        try:
            times = {(rev, i): {"wall_s": [], "cpu_s": []} for rev in trees for i in range(len(commands))}
            turns = [(rev, i) for rev in trees for i in range(len(commands))]
            for r in range(args.rounds):
                shift = r % len(turns)
                for rev, i in turns[shift:] + turns[:shift]:
                    finished = run_maskflow(commands[i], tree=trees[rev][0], cwd=trees[rev][0], env=ENV)  # cwd: python -m looks there first
                    Path(tmp, "first.mkv").unlink(missing_ok=True)  # generate's output, made anew by the next run
                    times[rev, i]["wall_s"].append(round(finished.wall_s, 4))
                    times[rev, i]["cpu_s"].append(round(finished.cpu_s, 4))
            found = {}
            for rev, i in turns:
                found[rev, i] = imports(trees[rev][0], commands[i])
                Path(tmp, "first.mkv").unlink(missing_ok=True)
        finally:
            for tree, _ in trees.values():
                remove_checkout(tree)
    rows = []
    for rev, i in sorted(turns, key=lambda turn: turn[1]):  # each command's revisions together, in the order given
        t = times[rev, i]
        rows.append({"revision": rev, "commit": trees[rev][1], "command": ["maskflow", *(a.replace(tmp, "TMP") for a in commands[i])],
                     "best_wall_s": min(t["wall_s"]), "median_wall_s": round(statistics.median(t["wall_s"]), 4),
                     "best_cpu_s": min(t["cpu_s"]), **t, **found[rev, i]})
        row = rows[-1]
        print(f"{row['commit']:>14} {' '.join(row['command']):24} best {row['best_wall_s']:6.3f} s wall, median "
              f"{row['median_wall_s']:6.3f} s, best {row['best_cpu_s']:6.3f} s CPU; imports "
              f"{', '.join(p for p in WATCHED if row[p]) or 'none of ' + ', '.join(WATCHED)} ({row['import_ms']:.0f} ms)", file=sys.stderr)
    return {"rounds": args.rounds, "weights": args.weights or "(installed)", "load_average": {"before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()]}, "rows": rows}


def render(r: dict) -> str:
    load = r["load_average"]
    out = heading("Start-up: `--version`, `--help`, `generate --help`, `info`, the first frame of `generate`", r) + [
        (f"Machine: {machine(r['machine'])}. Each command in its own process (Python's start-up included), OMP_NUM_THREADS=1, "
         f"{r['rounds']} runs each, commands and revisions interleaved; load average (1, 5, 15 min) {load['before']} before, "
         f"{load['after']} after. Imports: what one more run under `python -X importtime` loaded of {', '.join(WATCHED)}, "
         "and the time its imports took."), ""]
    first = {}
    rows = []
    for x in r["rows"]:
        command = " ".join(a for a in x["command"][1:] if not a.startswith(("TMP", "/")) and a not in ("-o", "--weights"))
        base = first.setdefault(command, x["best_wall_s"])
        rows.append([f"`{command}`", x["commit"], f"{x['best_wall_s']:.3f}", f"{x['median_wall_s']:.3f}", f"{x['best_cpu_s']:.3f}",
                     ", ".join(p for p in WATCHED if x[p]) or "none", f"{x['import_ms']:.0f}", f"{base / x['best_wall_s']:.1f}×"])
    return "\n".join(out + table(["command", "commit", "best wall s", "median wall s", "best CPU s", "imports", "import ms",
                                  "speed-up (best wall) over the first"], rows))
