"""Quality of a set of weights: `maskflow eval`, one process per suite, joined into one result.

Runs ``maskflow eval --suite NAME --json`` for each of ``--suites`` in its own process, with the
weights and whatever `maskflow eval` options follow ``--`` (``-- --quick``, ``-- --steps 20
--context 8``), and joins their sections: ``seconds`` becomes the sum, ``suite_seconds`` keeps each
run's time, and runs of different weights, data or data seed are refused. The result is saved after
every suite, so a run stopped on a busy machine keeps the suites it finished. ``--label`` names the
weights on the results page (the measured path stays under ``measured_weights``), ``--title`` titles
its section, and ``--compare-with`` renders it as a comparison with another eval result of the same
test sequences (a path under benchmarks/results/, e.g. the same suites measured on another machine).
``--fvd-detector PATH`` adds the fvd suite with that I3D TorchScript file (docs/evaluation.md).

    OMP_NUM_THREADS=1 python -m benchmarks eval --weights weights --title Quality
    OMP_NUM_THREADS=1 python -m benchmarks eval --weights weights --fvd-detector i3d_torchscript.pt -- --fvd-clips 2048
"""

from __future__ import annotations

import argparse
import json

from maskflow_cli.defaults import SUITES

from .common import ROOT, run_maskflow
from .markdown import heading, mean_ci, table

NAME = "eval"
SHARED = {"weights": None}
SAME = ("weights", "data", "data_seed", "device", "size", "context_cache")  # what the joined runs must share
RESULTS = ROOT / "benchmarks" / "results"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suites", nargs="+", choices=SUITES, default=None,
                        help="suites, one process each (default: all; fvd only with --fvd-detector)")
    parser.add_argument("--fvd-detector", default=None, metavar="PATH", help="the I3D TorchScript file for the fvd suite")
    parser.add_argument("--label", default=None, help="the name of the weights on the results page (default: --weights)")
    parser.add_argument("--title", default="Quality", help="the title of the section on the results page")
    parser.add_argument("--compare-with", default=None, metavar="PATH", help="an eval result under benchmarks/results/ to render this one against")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="-- then further `maskflow eval` options")


def merge(runs: list[dict]) -> dict:
    """The sections of several ``maskflow eval --json`` results of the same weights and data as one."""
    merged: dict = {key: runs[0][key] for key in SAME if key in runs[0]}
    merged.update(seconds=0.0, suite_seconds={})
    for run in runs:
        for key in SAME:
            if run.get(key) != merged.get(key):
                raise SystemExit(f"eval: the runs differ in {key}: {merged.get(key)!r} and {run.get(key)!r}")
        for suite in SUITES:
            if suite in run:
                if suite in merged:
                    raise SystemExit(f"eval: suite {suite} appears in two runs")
                merged[suite] = run[suite]
                merged["suite_seconds"][suite] = run["seconds"]
        merged["seconds"] += run["seconds"]
    return merged


def run(args: argparse.Namespace) -> dict:
    options = args.options[1:] if args.options[:1] == ["--"] else args.options
    runs = []
    suites = args.suites or [s for s in SUITES if s != "fvd" or args.fvd_detector]
    for suite in suites:
        weights = ["--weights", args.weights] if args.weights else []
        detector = ["--fvd-detector", args.fvd_detector] if suite == "fvd" else []
        runs.append(json.loads(run_maskflow(["eval", *weights, "--suite", suite, *detector, "--json", *options]).stdout))
        result = merge(runs)
        result = {"title": args.title, "weights": args.label or result["weights"], "measured_weights": result["weights"],
                  **{k: v for k, v in result.items() if k != "weights"}}
        if args.compare_with:
            result["compare_with"] = args.compare_with
        args.save(result)
    return result


def _scores(section: dict, names: tuple[str, ...]) -> list[str]:
    rows = [[n, mean_ci(section[n]["mse"]), f"{section[n]['psnr']['mean']:.2f}", f"{section[n]['ssim']['mean']:.3f}"] for n in names]
    return table(["method", "MSE/frame", "PSNR (dB)", "SSIM"], rows)


def tag(s: dict) -> str:
    """A suite's sampling settings, as its section reports them."""
    guided = "".join(f", {k} {s[k]:g}" for k in ("temperature", "guidance", "guidance_anchor") if k in s)
    return f"{s['sampler']}, {s['steps']} steps{guided}, {s['mode']} (context {s['context']}, stride {s['stride']}), seed {s['seed']}, NFE {s['nfe_per_sequence']} per sequence"


def _bins(h: dict, cell) -> list[str]:
    """One row per bin of the horizon suite: real, generate, extend."""
    names = ("real", "generate", "extend")
    return table(["bin", *names], [[i, *(cell(h[n], i) for n in names)] for i in range(len(h["real"]["ink"]))])


def _quality(r: dict) -> list[str]:
    measured = [s for s in SUITES if s in r]
    missing = [s for s in SUITES if s not in r and s != "fvd"]  # fvd needs a detector file the project does not have
    out = [(f"Weights: {r['weights']}; data: {r['data']}; device {r['device']}; {r['seconds']:.0f} s in all. Suites measured: "
            f"{', '.join(measured)}" + (f"; not measured here yet: {', '.join(missing)}." if missing else ".")), ""]
    if "tokenizer" in r:
        t = r["tokenizer"]
        out += [f"Tokenizer reconstruction on {t['frames']} test frames: PSNR {t['psnr']['mean']:.2f} dB, SSIM {t['ssim']['mean']:.3f}.", ""]
    if "continuation" in r:
        c = r["continuation"]
        out += [f"Continuation, {c['given']} given → {c['future']} generated frames, {c['sequences']} sequences ({tag(c)}):", ""]
        out += _scores(c, ("maskflow", "copy_last", "black"))
    if "horizon" in r:
        h = r["horizon"]
        out += [f"Long horizon: {h['frames']}-frame videos, {h['sequences']} sequences, mean per {h['bin']}-frame bin "
                "(ink = summed intensity, crisp = solid / inked pixels, blobs = solid components ≈ digits):", ""]
        out += _bins(h, lambda s, i: f"{s['ink'][i]:.0f} / {s['crisp'][i]:.2f} / {s['blobs'][i]:.2f}")
        if "colour" in h["real"]:
            out += ["Colour (total-variation distance of each frame's colour histogram from that of all real frames) / "
                    "sharpness (mean difference of neighbouring pixels, luma in [0, 1]), mean per bin:", ""]
            out += _bins(h, lambda s, i: f"{s['colour'][i]:.3f} / {s['sharpness'][i]:.4f}")
    for s in r.get("infill", {}).values():
        a, b = s["range"]
        out += [f"Infill of frames {a}:{b} from both sides ({tag(s)}):", ""] + _scores(s, ("maskflow", "repeat_nearest", "crossfade"))
    if "fvd" in r:
        f = r["fvd"]
        out += [f"FVD of {f['clips']} generated against {f['clips']} held-out clips of {f['frames']} frames at {f['resolution']}×{f['resolution']} "
                f"({f['features']} I3D features; {tag(f)}): {f['maskflow']:.1f}.", ""]
    return out


def _comparison(r: dict) -> list[str]:
    """This result's MaskFlow MSE next to that of ``compare_with``, the same suites measured elsewhere."""
    path = RESULTS / r["compare_with"]
    here = json.loads(path.read_text()) if path.exists() else {}
    there, other = r["device"], here.get("device", "the other run")
    out = [(f"Weights {r['weights']} on {there} ({r['seconds']:.0f} s), against `benchmarks/results/{r['compare_with']}` "
            f"({here.get('weights', '–')} on {other}), on the same test sequences (data seed {r['data_seed']}), sampler "
            f"settings and seed. {r.get('note', '')}").strip(), ""]
    pairs = [("continuation 10 → 10", "black", r.get("continuation"), here.get("continuation"))]
    pairs += [(f"infill {s['range'][0]}:{s['range'][1]}", "crossfade", s, here.get("infill", {}).get(k)) for k, s in r.get("infill", {}).items()]
    rows = []
    for name, baseline, theirs, ours in pairs:
        if theirs is None:
            continue
        a = theirs["maskflow"]["mse"]
        row = [name, f"{baseline.replace('crossfade', 'cross-fade')} {theirs[baseline]['mse']['mean']:.1f}", mean_ci(a)]
        if ours is None:
            rows.append(row + ["not measured", "–"])
            continue
        b = ours["maskflow"]["mse"]
        rows.append(row + [mean_ci(b), "yes" if abs(a["mean"] - b["mean"]) <= b["ci95"] else "no"])
    return out + table(["MSE/frame", "baseline", there, other, f"{there} mean inside the {other} run's 95 % interval"], rows)


def render(r: dict) -> str:
    body = _comparison(r) if "compare_with" in r else _quality(r)
    return "\n".join(heading(r.get("title", "Quality"), r) + body)
