"""Run a benchmark, list them, or render the results page and the model card from the results.

    python -m benchmarks --list
    python -m benchmarks NAME [options]      # writes benchmarks/results/NAME.json unless --out says
    python -m benchmarks NAME --help         # its options
    python -m benchmarks --render            # benchmarks/RESULTS.md and weights/README.md's card
    python -m benchmarks --check             # exit 1 if either is out of date

The runner owns the arguments several benchmarks share (--weights, --sequences, --batch, --seed,
--precision; a benchmark takes those its SHARED names, with its own defaults) and --out. With every result it
stores the command that reproduces it (``python -m benchmarks NAME ...``, led by OMP_NUM_THREADS
when that is set), the resolved arguments, and the machine facts measured just before the run
(``common.machine_facts``). A benchmark's ``run(args)`` finds those facts in ``args.machine`` and
the command in ``args.run_command``, and may save what it has so far with ``args.save(partial)``, so a
long run stopped early keeps its points.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from types import ModuleType

import torch

from maskflow_cli.runtime import PRECISIONS

from . import describe, registry
from .common import ROOT, in_checkout, machine_facts
from .pages import update_pages

SHARED_ARGUMENTS = {
    "weights": {"metavar": "PATH", "help": "weights folder or file (default: the installed weights)"},
    "sequences": {"type": int, "help": "held-out test sequences (default: %(default)s)"},
    "batch": {"type": int, "help": "sequences sampled together (default: %(default)s)"},
    "seed": {"type": int, "help": "sampling seed (default: %(default)s)"},
    "precision": {"choices": PRECISIONS, "help": "precision; auto: bf16 where the CPU or GPU runs it fast (default: %(default)s)"},
}
THREADS = "OMP_NUM_THREADS"


def build_parser(benchmarks: dict[str, ModuleType]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                     epilog="\n".join(f"  {n:22} {describe(m)}" for n, m in benchmarks.items()),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--list", action="store_true", help="list the benchmarks")
    action.add_argument("--render", action="store_true", help="write benchmarks/RESULTS.md and the model card from the results")
    action.add_argument("--check", action="store_true", help="exit 1 if benchmarks/RESULTS.md or the model card is out of date")
    names = parser.add_subparsers(dest="name", metavar="NAME", title="benchmarks")
    for name, module in benchmarks.items():
        sub = names.add_parser(name, help=describe(module), description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
        for key, default in module.SHARED.items():
            sub.add_argument(f"--{key}", default=default, **SHARED_ARGUMENTS[key])
        module.add_arguments(sub)
        sub.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / f"{name}.json",
                         help=f"the JSON file to write (default: benchmarks/results/{name}.json)")
    return parser


def command_line(argv: list[str]) -> str:
    """The command that reproduces this run: ``python -m benchmarks NAME ...`` as typed, led by the
    thread count where OMP_NUM_THREADS sets it."""
    threads = f"{THREADS}={os.environ[THREADS]} " if THREADS in os.environ else ""
    return f"{threads}python -m benchmarks {shlex.join(argv)}"


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")


def run_benchmark(module: ModuleType, args: argparse.Namespace, argv: list[str]) -> Path:
    """Measure the machine, run the benchmark and write its result with the command and the facts."""
    arguments = {k: in_checkout(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("name", "list", "render", "check")}
    record = {"benchmark": module.NAME, "command": command_line(argv), "arguments": arguments,
              "machine": machine_facts(getattr(module, "PEAK_DTYPES", (torch.float32,)))}
    args.machine, args.run_command = record["machine"], record["command"]
    args.save = lambda partial: write_json(args.out, {**record, **partial})
    args.save(module.run(args))
    return args.out


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    benchmarks = registry()
    parser = build_parser(benchmarks)
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(f"{n:22} {describe(m)}" for n, m in benchmarks.items()))
    elif args.render or args.check:
        stale = update_pages(write=args.render)
        if args.check and stale:
            sys.exit(f"out of date: {', '.join(stale)}; run python -m benchmarks --render")
    elif args.name is None:
        parser.print_help()
        sys.exit(2)
    else:
        print(f"wrote {run_benchmark(benchmarks[args.name], args, argv)}", file=sys.stderr)


if __name__ == "__main__":
    main()
