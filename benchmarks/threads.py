"""Threads: CPU time and wall time of `maskflow generate` at 1 and 2 threads, spinning or sleeping, alone and beside a busy process.

Each variant is a thread count (OMP_NUM_THREADS) and a wait policy of the OpenMP threads:
"default" (no setting: the command line chooses, ``startup.set_thread_policy``: a short spin where
the other processes runnable at start leave a core per thread, else sleep), "passive"
(OMP_WAIT_POLICY=PASSIVE: idle threads sleep), "short" (GOMP_SPINCOUNT=10000, what the command line
sets on a quiet machine) or "spin" (GOMP_SPINCOUNT=300000, GNU OpenMP's own default: an idle thread
spins for a while before it sleeps, as every run did before the command line chose). Every variant
runs once per round in its own process (start-up included), in a rotating order, alone and then
beside ``--burners`` processes that spin on the CPU the whole time (``python -c "while True: pass"``),
so that the table shows what a run costs on a quiet machine and on a busy one. CPU time is the
child's user + system time. The runner's own OMP_* and GOMP_* settings are not passed on. Prints a
table:

    python -m benchmarks threads --frames 48 --rounds 3
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from maskflow_cli.startup import BUSY_WAIT, QUIET_WAIT

from .common import ROOT, run_process, summarize_rounds
from .markdown import heading, machine, table

NAME = "threads"
SHARED = {"weights": None}
POLICIES = {"default": {}, "passive": BUSY_WAIT, "short": {"GOMP_SPINCOUNT": QUIET_WAIT["GOMP_SPINCOUNT"]}, "spin": {"GOMP_SPINCOUNT": "300000"}}
CLEARED = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "MKL_NUM_THREADS")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--policies", nargs="+", choices=POLICIES, default=list(POLICIES))
    parser.add_argument("--burners", type=int, default=1, help="busy processes beside the runs of the 'busy' scenario")
    parser.add_argument("--rounds", type=int, default=3)


def child_env(threads: int, policy: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**env, "PYTHONPATH": path, "OMP_NUM_THREADS": str(threads), **POLICIES[policy]}


def run(args: argparse.Namespace) -> dict:
    variants = [(t, p) for t in args.threads for p in args.policies]
    names = [f"{t} thread{'s' if t > 1 else ''}, {p}" for t, p in variants]
    results, loads = {}, {}
    with tempfile.TemporaryDirectory(prefix="maskflow-threads-") as tmp:
        command = [sys.executable, "-m", "maskflow_cli", "generate", "--frames", str(args.frames), "--seed", "0", "--overwrite", "-o", str(Path(tmp) / "out.mkv")]
        command += ["-w", str(args.weights)] if args.weights else []
        for scenario in ("alone", "busy"):
            burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.burners if scenario == "busy" else 0)]
            wall: dict[str, list[float]] = {n: [] for n in names}
            cpu: dict[str, list[float]] = {n: [] for n in names}
            try:
                for r in range(args.rounds):
                    order = list(range(len(variants)))
                    for i in order[r % len(order):] + order[: r % len(order)]:
                        finished = run_process(command, child_env(*variants[i]))
                        wall[names[i]].append(finished.wall_s)
                        cpu[names[i]].append(finished.cpu_s)
                        print(f"{scenario:5} round {r}: {names[i]:20} {finished.wall_s:6.2f} s wall {finished.cpu_s:6.2f} s CPU", file=sys.stderr, flush=True)
            finally:
                for b in burners:
                    b.kill()
                    b.wait()
            loads[scenario] = list(os.getloadavg())
            results[scenario] = summarize_rounds(names, wall, cpu)
    rows = [{"scenario": s, "variant": n, "threads": t, "policy": p, **results[s][n]} for s in results for n, (t, p) in zip(names, variants)]
    for row in rows:
        print(f"{row['scenario']:5} {row['variant']:20} {row['median_wall_s']:7.2f} s wall {row['median_cpu_s']:7.2f} s CPU "
              f"ratios {row['wall_ratio']:.3f} / {row['cpu_ratio']:.3f}")
    return {"frames": args.frames, "rounds": args.rounds, "burners": args.burners, "load_average": loads, "rows": rows}


def _policies(r: dict) -> str:
    """What the result's policies mean (older results have no "default" or "short")."""
    notes = {"default": "the command line's own choice (no setting)", "spin": "(GNU OpenMP's own default)"}
    used = dict.fromkeys(row["policy"] for row in r["rows"])
    return "; ".join(" ".join([f"{p}:", *(f"{k}={v}" for k, v in POLICIES[p].items()), notes.get(p, "")]).strip() for p in used) + ". "


def render(r: dict) -> str:
    out = heading(f"Threads and their wait policy: `maskflow generate --frames {r['frames']}`", r) + [
        f"Machine: {machine(r['machine'])}. Each variant in its own process (start-up included), interleaved, {r['rounds']} rounds, "
        f"without and beside {r['burners']} busy process(es) of ours (burners; other work shared the machine too: see the load); medians, and per-round ratios to the first variant of the same scenario. "
        + _policies(r) +
        "Load average after each scenario: " + "; ".join(f"{s} {', '.join(f'{x:.1f}' for x in v)}" for s, v in r["load_average"].items()) + ".", ""]
    scenarios = {"alone": "no burner", "busy": f"beside {r['burners']} burner{'s' if r['burners'] > 1 else ''}"}
    rows = [[scenarios[x["scenario"]], x["variant"], f"{x['median_wall_s']:.1f}", f"{x['median_cpu_s']:.1f}", f"{x['wall_ratio']:.2f}", f"{x['cpu_ratio']:.2f}"]
            for x in r["rows"]]
    return "\n".join(out + table(["scenario", "variant", "wall s", "CPU s", "wall ratio", "CPU ratio"], rows))
