"""Seconds per generated frame and peak memory of `maskflow generate` for videos of growing length.

Each length runs the real command in its own process, so its peak resident memory (ru_maxrss of
that process) is measured alone. Time should grow linearly with length and memory stay flat: frames
are written as soon as they are final and only one window's tokens are held. Prints a table and
writes JSON:

    python benchmarks/length_scaling.py --weights weights/ --frames 16 160 1600 --out benchmarks/results/length_scaling.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import machine_facts


def run_generate(weights: str | None, frames: int, steps: int, folder: str) -> dict:
    output = os.path.join(folder, f"generate_{frames}.mkv")
    command = [sys.executable, "-m", "maskflow_cli", "generate", "-o", output, "--frames", str(frames),
               "--steps", str(steps), "--seed", "0", "--json", "--overwrite"]
    if weights:
        command += ["--weights", weights]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    out, err = process.stdout.read(), process.stderr.read()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"generate --frames {frames} failed: {err.decode().strip()}")
    summary = json.loads(out)
    return {"frames": frames, "nfe": summary["nfe"], "windows": summary["windows"], "seconds": round(seconds, 2),
            "seconds_per_frame": round(seconds / frames, 4), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "output_bytes": os.path.getsize(output)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, nargs="+", default=[16, 160, 1600])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out", default="length_scaling.json")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for frames in args.frames:
            rows.append(run_generate(args.weights, frames, args.steps, folder))
            r = rows[-1]
            print(f"{frames:6} frames  {r['windows']:4} windows  NFE {r['nfe']:6}  {r['seconds']:8.1f} s  "
                  f"{r['seconds_per_frame']:.3f} s/frame  peak {r['peak_rss_mib']:.0f} MiB", flush=True)
    result = {"benchmark": "length_scaling", "machine": machine_facts(), "weights": args.weights or "(installed)",
              "steps": args.steps, "mode": "ar (defaults)", "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
