"""Join the JSON of several `maskflow eval --suite NAME --json` runs of the same weights into one.

On a busy machine the four suites are easier to run one at a time (each run's result is kept even
when a later one is stopped); this writes the one file `benchmarks/readme_results.py` renders:

    python benchmarks/merge_eval.py eval_continuation.json eval_infill.json eval_tokenizer.json \\
        --out benchmarks/results/eval.json

Sections are copied as measured; ``seconds`` becomes the sum, ``suite_seconds`` keeps each run's time,
and runs of different weights, data or data seed are refused. ``--label`` names the weights in the
output (e.g. ``weights/`` for a byte-identical copy that was measured elsewhere); the measured path
stays under ``measured_weights``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

SUITES = ("tokenizer", "continuation", "horizon", "infill")
SHARED = ("weights", "data", "data_seed", "device", "size")


def merge(runs: list[dict]) -> dict:
    merged: dict = {key: runs[0][key] for key in SHARED if key in runs[0]}
    merged.update(seconds=0.0, suite_seconds={})
    for run in runs:
        for key in SHARED:
            if run.get(key) != merged.get(key):
                raise ValueError(f"runs differ in {key}: {merged.get(key)!r} and {run.get(key)!r}")
        for suite in SUITES:
            if suite in run:
                if suite in merged:
                    raise ValueError(f"suite {suite} appears in two runs")
                merged[suite] = run[suite]
                merged["suite_seconds"][suite] = run["seconds"]
        merged["seconds"] += run["seconds"]
        merged["plots"] = merged.get("plots", []) + run.get("plots", [])
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--label", default=None, help="name of the weights in the output")
    args = parser.parse_args()
    try:
        merged = merge([json.loads(p.read_text()) for p in args.runs])
        if args.label:
            merged = {"weights": args.label, "measured_weights": merged["weights"], **{k: v for k, v in merged.items() if k != "weights"}}
    except (OSError, ValueError) as error:
        sys.exit(f"merge_eval: {error}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(merged, indent=2) + "\n")


if __name__ == "__main__":
    main()
