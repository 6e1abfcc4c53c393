"""Memory of training on token shards 1×, 10× and 100× the size of today's data: streaming keeps it flat.

"Today's data" is the training set of the shipped recipe, ``maskflow data moving-mnist --sequences
10000 --frames 20``: 10,000 clips of 20 frames, 8×8 tokens a frame with the installed tokenizer. For
each scale the benchmark writes that many clips as token shards of ``--shard-clips`` clips (random
token ids: what streaming holds in memory does not depend on their values; the shards of a smaller
scale are the first ones of a larger), then runs ``maskflow train SHARDS`` as a child process for
``--steps`` steps with ``--workers`` DataLoader workers, sampling the proportional set size (PSS: shared
pages counted once across the processes) of the training process and its workers every
``--interval`` seconds. The peak sum and the peak resident set of the largest single process (its
``ru_maxrss``) are reported with their ratios to 1×. The shards are written under ``--scratch`` (a
fresh temporary folder by default) and deleted at the end.

    OMP_NUM_THREADS=1 python -m benchmarks data_scale
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from maskflow_cli.partial_files import write_safetensors
from maskflow_cli.token_shards import TOKEN_SHARD_NAME, shard_metadata
from maskflow_cli.weights import load_tokenizer

from .common import ROOT
from .markdown import heading, machine, table

NAME = "data_scale"
SHARED: dict = {}
TODAY_CLIPS, TODAY_FRAMES = 10_000, 20  # the shipped recipe's `maskflow data moving-mnist --sequences 10000 --frames 20`


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tokenizer", default=None, help="weights holding the tokenizer (default: the installed weights)")
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100], help="multiples of today's data")
    parser.add_argument("--clips", type=int, default=TODAY_CLIPS, help="clips of the 1x data")
    parser.add_argument("--frames", type=int, default=TODAY_FRAMES, help="frames a clip")
    parser.add_argument("--shard-clips", type=int, default=100)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--window", type=int, default=16)
    parser.add_argument("--preset", default="tiny", help="transformer preset (the model's memory is the same at every scale)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    parser.add_argument("--scratch", default=None, help="folder for the shards (default: a new temporary folder)")


def _tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                todo += [int(c) for c in Path(f"/proc/{current}/task/{task}/children").read_text().split()]
        except OSError:
            continue
    return found


def _pss_mib(pid: int) -> float:
    """The proportional set size of one process in MiB (0 when it has gone)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def train_memory(argv: list[str], interval: float) -> dict:
    """Run ``argv`` to its end, sampling the summed PSS of its process tree: peak MiB, samples, the
    largest single process's peak RSS (MiB) and the wall seconds."""
    started, peak, samples = time.perf_counter(), 0.0, 0
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, env={**os.environ, "PYTHONPATH": path})
        while True:
            done, status, usage = os.wait4(process.pid, os.WNOHANG)
            if done:
                break
            peak = max(peak, sum(_pss_mib(p) for p in _tree(process.pid)))
            samples += 1
            time.sleep(interval)
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if process.returncode:
            err.seek(0)
            last = err.read().decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {process.returncode}"]
            raise SystemExit(f"training failed: {last[0]}")
    return {"peak_pss_mib": round(peak, 1), "samples": samples, "wall_s": round(time.perf_counter() - started, 1),
            "largest_process_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def _write_shards(folder: Path, first: int, count: int, args: argparse.Namespace, meta: dict, vocab: int, grid: tuple[int, int]) -> None:
    """Shards ``first`` .. ``first + count - 1`` of random token ids [shard_clips,frames,H,W]."""
    for i in range(first, first + count):
        g = torch.Generator().manual_seed(i)
        tokens = torch.randint(0, vocab, (args.shard_clips, args.frames, *grid), generator=g, dtype=torch.int16)
        write_safetensors(folder / TOKEN_SHARD_NAME.format(i), {"tokens": tokens}, meta)


def run(args: argparse.Namespace) -> dict:
    tokenizer = load_tokenizer(args.tokenizer)
    cfg = tokenizer.config
    meta = shard_metadata(tokenizer, "random token ids")
    grid = (cfg.token_height, cfg.token_width)
    scratch = Path(args.scratch) if args.scratch else Path(tempfile.mkdtemp(prefix="maskflow-data-scale-"))
    pool = scratch / "pool"
    pool.mkdir(parents=True, exist_ok=True)
    rows, written = [], 0
    try:
        for scale in sorted(args.scales):
            shards = -(-scale * args.clips // args.shard_clips)
            _write_shards(pool, written, shards - written, args, meta, cfg.vocab_size, grid)
            written = max(written, shards)
            folder = scratch / f"x{scale}"
            folder.mkdir()
            for i in range(shards):  # the first shards of the pool, linked: each written once
                os.link(pool / TOKEN_SHARD_NAME.format(i), folder / TOKEN_SHARD_NAME.format(i))
            argv = [sys.executable, "-m", "maskflow_cli", "train", str(folder), "-o", str(scratch / f"run{scale}"),
                    "--preset", args.preset, "--window", str(args.window), "--steps", str(args.steps),
                    "--batch-size", str(args.batch_size), "--workers", str(args.workers), "--warmup", "1",
                    "--log-every", str(args.steps), "--checkpoint-every", str(args.steps), "--device", "cpu", "--precision", "fp32",
                    "--json", *(["--tokenizer", args.tokenizer] if args.tokenizer else [])]
            measured = train_memory(argv, args.interval)
            disk = sum(f.stat().st_size for f in folder.iterdir())
            rows.append({"scale": scale, "clips": shards * args.shard_clips, "shards": shards, "disk_mib": round(disk / 2**20, 1), **measured})
            print(rows[-1], file=sys.stderr, flush=True)
            shutil.rmtree(folder)
            shutil.rmtree(scratch / f"run{scale}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    base = rows[0]
    for row in rows:
        row["pss_ratio"] = round(row["peak_pss_mib"] / base["peak_pss_mib"], 3)
    return {"frames": args.frames, "grid": list(grid), "shard_clips": args.shard_clips, "steps": args.steps, "batch_size": args.batch_size,
            "window": args.window, "preset": args.preset, "workers": args.workers, "rows": rows,
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def render(r: dict) -> str:
    out = heading("Data at scale: training memory on token shards", r) + [
        f"Machine: {machine(r['machine'])}. `maskflow train` on a folder of token shards ({r['shard_clips']} clips of {r['frames']} frames "
        f"of {r['grid'][0]}×{r['grid'][1]} tokens a shard, random token ids), preset {r['preset']}, window {r['window']}, batch "
        f"{r['batch_size']}, {r['steps']} steps, {r['workers']} DataLoader workers. Peak PSS: the training process and its workers "
        "together, shared pages counted once, sampled while it runs; 1× is today's data (10,000 clips of 20 frames).", ""]
    out += table(["data", "clips", "shards", "on disk (MiB)", "peak PSS (MiB)", "vs 1×", "largest process RSS (MiB)", "wall (s)"],
                 [[f"{x['scale']}×", f"{x['clips']:,}", f"{x['shards']:,}", f"{x['disk_mib']:,.0f}", f"{x['peak_pss_mib']:.0f}",
                   f"{x['pss_ratio']:.2f}", f"{x['largest_process_rss_mib']:.0f}", f"{x['wall_s']:.0f}"] for x in r["rows"]])
    growth = r["rows"][-1]["peak_pss_mib"] - r["rows"][0]["peak_pss_mib"]
    return "\n".join(out + [f"From {r['rows'][0]['scale']}× to {r['rows'][-1]['scale']}× the data the peak grows by {growth:.0f} MiB "
                            f"while the shards grow by {r['rows'][-1]['disk_mib'] - r['rows'][0]['disk_mib']:,.0f} MiB. Load average "
                            f"(1, 5, 15 min) at the end: {r['load_average']}; the wall seconds are those of a shared machine."])
