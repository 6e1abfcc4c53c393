"""Time one `maskflow` command under two or more variants (git revisions, options, environment), interleaved.

A variant is ``NAME=REV`` followed by extra command-line arguments and ``KEY=VALUE`` environment
settings, all in one quoted string. ``REV`` is a git revision (checked out into a temporary worktree)
or ``.`` for this working tree. Every round runs each variant once, in a rotating order, each in its
own process (start-up included), so load from other processes hits all variants alike; the table gives
medians and the per-round ratio to the first variant, of wall time and of the process's CPU time.
``{out}`` in the command is replaced by a fresh output path per run; the output's SHA-256 shows
whether two variants made the same file. Prints a table and writes JSON:

    python benchmarks/compare.py --variant "old=709f1d4" --variant "new=." --rounds 3 \\
        --out benchmarks/results/generate_speedup.json -- generate --frames 160 --seed 0 -o {out}.mkv
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_facts, summarize_rounds

ROOT = Path(__file__).resolve().parent.parent


def parse_variant(text: str) -> dict:
    head, *rest = shlex.split(text)
    name, sep, rev = head.partition("=")
    if not sep or not name or not rev:
        sys.exit(f"compare: a variant starts with NAME=REV, not {head!r}")
    env = dict(t.split("=", 1) for t in rest if "=" in t and t.split("=", 1)[0].isupper())
    args = [t for t in rest if not ("=" in t and t.split("=", 1)[0].isupper())]
    return {"name": name, "rev": rev, "args": args, "env": env}


def checkout(rev: str, folder: Path) -> tuple[Path, str]:
    """The tree to run ``rev`` from and its commit: this working tree for ".", else a temporary worktree."""
    if rev == ".":
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout.strip()
        return ROOT, head + ("+changes" if dirty else "")
    tree = folder / f"tree-{rev.replace('/', '_')}"
    if not tree.exists():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), rev], check=True, capture_output=True)
    commit = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return tree, commit


def run_once(tree: Path, command: list[str], variant: dict, folder: Path, index: int) -> tuple[float, float, str]:
    """Run the command once in its own process: wall seconds, CPU seconds (user + system) and the output's hash."""
    out = folder / f"out-{variant['name']}-{index}"
    argv = [sys.executable, "-m", "maskflow_cli", *(a.replace("{out}", str(out)) for a in command), *variant["args"]]
    env = {**os.environ, "PYTHONPATH": str(tree), **variant["env"]}
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    error = process.stderr.read().decode()
    process.stderr.close()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"compare: {variant['name']} failed: {error.strip().splitlines()[-1] if error.strip() else status}")
    made = sorted(folder.glob(f"out-{variant['name']}-{index}*"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in made)).hexdigest()[:16] if made else ""
    for p in made:
        p.unlink()
    return wall, usage.ru_utime + usage.ru_stime, digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help='"NAME=REV [ARGS] [KEY=VALUE]" (two or more)')
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=0, help="untimed rounds first")
    parser.add_argument("--frames", type=int, default=None, help="frames the command makes, for frames/s (default: its --frames)")
    parser.add_argument("--out", default=None, help="JSON file to write")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the maskflow command and its arguments")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the temporary worktrees are removed
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    variants = [parse_variant(v) for v in args.variant]
    if len(variants) < 2 or not command:
        sys.exit("compare: give at least two --variant and a command after --")
    frames = args.frames or (int(command[command.index("--frames") + 1]) if "--frames" in command else None)
    facts = machine_facts()
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
                if tree != ROOT:
                    subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], capture_output=True)
    summary = summarize_rounds([v["name"] for v in variants], wall, cpu)
    rows = []
    for v in variants:
        s = summary[v["name"]]
        row = {"name": v["name"], "rev": v["rev"], "commit": trees[v["name"]][1], "args": v["args"], "env": v["env"],
               "outputs": sorted(digests[v["name"]]), **s}
        if frames:
            row["frames_per_s"] = round(frames / s["median_wall_s"], 3)
            row["speedup_wall"] = round(1 / s["wall_ratio"], 2)
            row["speedup_cpu"] = round(1 / s["cpu_ratio"], 2)
        rows.append(row)
    print(f"{'variant':>10} {'commit':>14} {'wall s':>8} {'CPU s':>8} {'wall ratio':>10} {'CPU ratio':>10}  args")
    for row in rows:
        print(f"{row['name']:>10} {row['commit']:>14} {row['median_wall_s']:8.2f} {row['median_cpu_s']:8.2f} "
              f"{row['wall_ratio']:10.3f} {row['cpu_ratio']:10.3f}  {' '.join(row['args'])} {' '.join(f'{k}={v}' for k, v in row['env'].items())}")
    result = {"benchmark": "compare", "machine": facts, "command": ["maskflow", *command], "frames": frames,
              "rounds": args.rounds, "warmup": args.warmup, "rows": rows}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
