"""Time one `maskflow` command under two or more variants (git revisions, options, environment), interleaved.

A variant is ``NAME=REV`` followed by extra command-line arguments and ``KEY=VALUE`` environment
settings, all in one quoted string. ``REV`` is a git revision (checked out into a temporary worktree)
or ``.`` for this working tree. Every round runs each variant once, in a rotating order, each in its
own process (start-up included), so load from other processes hits all variants alike; the table gives
medians and the per-round ratio to the first variant, of wall time and of the process's CPU time.
``{out}`` in the command is replaced by a fresh output path per run; the output's SHA-256 shows
whether two variants made the same file. Prints a table:

    W=$PWD/weights; python -m benchmarks compare --variant "before=709f1d4 -w $W" --variant "now=. -w $W" \\
        --rounds 3 --out benchmarks/results/generate_speedup.json -- generate --frames 160 --seed 0 -o {out}.mkv
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import ROOT, run_maskflow, summarize_rounds
from .markdown import heading, machine, table

NAME = "compare"
SHARED: dict = {}


def variant(text: str) -> dict:
    head, *rest = shlex.split(text)
    name, sep, rev = head.partition("=")
    if not sep or not name or not rev:
        raise argparse.ArgumentTypeError(f"a variant starts with NAME=REV, not {head!r}")
    setting = [t for t in rest if "=" in t and t.split("=", 1)[0].isupper()]
    return {"name": name, "rev": rev, "args": [t for t in rest if t not in setting], "env": dict(t.split("=", 1) for t in setting)}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--variant", type=variant, action="append", required=True, metavar='"NAME=REV [ARGS] [KEY=VALUE]"',
                        help="two or more")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0, help="untimed rounds first")
    parser.add_argument("--frames", type=int, default=None, help="frames the command makes, for frames/s (default: its --frames)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the maskflow command and its arguments")


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True).stdout.strip()


def checkout(rev: str, folder: Path) -> tuple[Path, str]:
    """The tree to run ``rev`` from and its commit: this working tree for ".", else a temporary worktree."""
    if rev == ".":
        return ROOT, git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--untracked-files=no") else "")
    tree = folder / f"tree-{rev.replace('/', '_')}"
    if not tree.exists():
        git("worktree", "add", "--detach", str(tree), rev)
    return tree, git("rev-parse", "--short", "HEAD", cwd=tree)


def remove_checkout(tree: Path) -> None:
    """Remove a temporary worktree made by ``checkout`` (this working tree stays)."""
    if tree != ROOT:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)


def run_once(tree: Path, command: list[str], v: dict, folder: Path, index: int) -> tuple[float, float, str]:
    """Run the command once in its own process: wall seconds, CPU seconds (user + system) and the output's hash."""
    out = folder / f"out-{v['name']}-{index}"
    finished = run_maskflow([*(a.replace("{out}", str(out)) for a in command), *v["args"]], tree=tree, cwd=tree, env=v["env"])
    made = sorted(folder.glob(f"out-{v['name']}-{index}*"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in made)).hexdigest()[:16] if made else ""
    for p in made:
        p.unlink()
    return finished.wall_s, finished.cpu_s, digest


def run(args: argparse.Namespace) -> dict:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temporary worktrees are removed
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    variants = args.variant
    if len(variants) < 2 or not command:
        raise SystemExit("compare: give at least two --variant and a command after --")
    frames = args.frames or (int(command[command.index("--frames") + 1]) if "--frames" in command else None)
    wall: dict[str, list[float]] = {v["name"]: [] for v in variants}
    cpu: dict[str, list[float]] = {v["name"]: [] for v in variants}
    digests: dict[str, set[str]] = {v["name"]: set() for v in variants}
    with tempfile.TemporaryDirectory(prefix="maskflow-compare-") as tmp:
        folder = Path(tmp)
        trees = {v["name"]: checkout(v["rev"], folder) for v in variants}
        try:
            for r in range(args.warmup + args.rounds):
                for v in variants[r % len(variants):] + variants[: r % len(variants)]:
                    w, c, digest = run_once(trees[v["name"]][0], command, v, folder, r)
                    print(f"round {r}: {v['name']:>10} {w:7.2f} s wall {c:7.2f} s CPU", file=sys.stderr, flush=True)
                    if r >= args.warmup:
                        wall[v["name"]].append(w)
                        cpu[v["name"]].append(c)
                        digests[v["name"]].add(digest)
        finally:
            for tree, _ in trees.values():
                remove_checkout(tree)
    summary = summarize_rounds([v["name"] for v in variants], wall, cpu)
    rows = []
    for v in variants:
        s = summary[v["name"]]
        row = {**v, "commit": trees[v["name"]][1], "outputs": sorted(digests[v["name"]]), **s}
        if frames:
            row["frames_per_s"] = round(frames / s["median_wall_s"], 3)
        rows.append(row)
        print(f"{row['name']:>10} {row['commit']:>14} {row['median_wall_s']:8.2f} s wall {row['median_cpu_s']:8.2f} s CPU "
              f"ratios {row['wall_ratio']:6.3f} / {row['cpu_ratio']:6.3f}  {' '.join(row['args'])} {' '.join(f'{k}={x}' for k, x in row['env'].items())}")
    return {"timed": ["maskflow", *command], "frames": frames, "rounds": args.rounds, "warmup": args.warmup, "rows": rows}


def render(r: dict) -> str:
    names = ", ".join(x["name"] for x in r["rows"])
    out = heading(f"`{' '.join(r['timed'][:2])}` under {len(r['rows'])} variants ({names})", r) + [
        (f"Machine: {machine(r['machine'])}. `{' '.join(r['timed'])}`, each variant in its own process (start-up "
         f"included), interleaved, {r['rounds']} rounds; medians, ratios per round. Each revision runs at its own "
         "default settings. On a shared machine read the CPU-time column: wall time also counts waiting for a core."), ""]
    rows = [[x["name"], x["commit"], " ".join(x["args"] + [f"{k}={v}" for k, v in x["env"].items()]) or "(defaults)",
             f"{x['median_wall_s']:.1f}", f"{x['median_cpu_s']:.1f}", f"{x['frames_per_s']:.2f}" if r["frames"] else "–",
             f"{1 / x['wall_ratio']:.2f}×", f"{1 / x['cpu_ratio']:.2f}×"] for x in r["rows"]]
    return "\n".join(out + table(["variant", "commit", "arguments", "wall s", "CPU s", "frames/s", "speed-up (wall)", "speed-up (CPU time)"], rows))
