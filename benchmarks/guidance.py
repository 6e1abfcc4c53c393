"""Classifier-free guidance on the context: quality against cost, paired with unguided sampling.

Each variant is a guidance schedule and a way to leave the context out of the uncond pass
(``maskflow_cli.guidance.GuidedDenoiser``), written ``WEIGHTS/UNCOND``:
- WEIGHTS: w per network call of a window, comma-separated; ``WxN`` repeats W N times; a single
  W without ``x`` guides every call. ``0`` is today's unguided sampling (the base every row is
  paired against). E.g. ``0.25/masked``, ``0.5x2/dropped`` (w = 0.5 on the first 2 of 4 steps),
  ``0.5,0.25/dropped`` (0.5 on the first step, 0.25 on the second, none after); ``annealW`` is
  the library's schedule for ``SamplingOptions(guidance=W)`` (``guidance.annealed_weights``; at 4
  steps ``anneal0.5`` is ``0.5,0.25``).
- UNCOND: ``masked`` (context frames as mask tokens, the whole window) or ``dropped`` (context
  frames left out, a shorter pass).
Suites, on the CPU, at MGM ``--steps`` per window (``--temperature`` 1 and ``--noise`` 4.5, the
sampling before guidance, unless given), ``--context`` frames of context, seed ``--seed``,
on the held-out sequences ``maskflow eval`` uses (``--data-seed`` 1234, +1 for the horizon, +2 for
infill) or, with ``--data``, on the first sequences of a clips file (``maskflow data``):
- continuation: 10 given -> 10 new frames; MSE per frame, per sequence, paired against the base;
- horizon: ``extend`` from 10 real frames to ``--horizon-frames``; ink, crispness and blobs per
  16-frame bin against the real sequences;
- infill: the middle 4 and 8 frames of 20-frame clips (8:12, 6:14); MSE paired against the base.
Cost is counted deterministically: network passes (cond and uncond alike) per window, and the
transformer's FLOPs per generated frame, as a ratio to the base; wall seconds are stored but depend on
what else runs on the machine.

The JSON file collects runs: each run appends its own entry (its command, machine and rows) to the
file at ``--out`` as it stands when a row finishes, so runs may write one file at once. Every row keeps
its per-sequence values, and a later run pairs against the latest stored base of the same setup
(suite, sequences, data, seeds, sampling) instead of rerunning it; a row of another setup than the
unguided one (4 steps, context 6, temperature 1, noise 4.5) is also shown against that
setup's base on the same sequences, and ``--pair-unguided`` pairs with it alone (no base of its own):

    OMP_NUM_THREADS=1 python -m benchmarks guidance --suites continuation \\
        --variants 0 0.25/masked 0.25/dropped 0.5x2/dropped
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from pathlib import Path

import torch

from maskflow_cli.clips import load_clips
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import BIN, FUTURE, GIVEN, INFILL_CLIP, INFILL_GAPS, held_out_sequences, sample_videos
from maskflow_cli.guidance import UNCOND, GuidedDenoiser, annealed_weights
from maskflow_cli.metrics import frame_mse, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, plan_infill, window_settings
from maskflow_cli.worlds import drift_stats

from .common import flop_counter
from .markdown import heading, table

NAME = "guidance"
SHARED = {"weights": None, "sequences": 32, "batch": 16, "seed": 0, "precision": "fp32"}
SUITES = ("continuation", "horizon", "infill")
UNGUIDED = {"steps": 4, "context": 6}  # the library's sampling before guidance: rows of other setups are paired with its base too
SETUP = ("suite", "steps", "context", "seed", "data_seed", "precision", "sequences", "data", "frames")  # what a row shares with its base
TUNED = ("temperature", "noise", "anchor")  # in a row's setup only where given
UNTUNED = {"temperature": 1.0, "noise": 4.5, "anchor": 0.0}  # their values where not given: the sampling before guidance, whatever the library's defaults


def variant(text: str) -> str:
    """A variant as typed, checked: ``WEIGHTS/UNCOND`` (see the module docstring)."""
    try:
        parse_variant(text, 4)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write WEIGHTS/UNCOND, e.g. 0.25/dropped, 0.5x2/masked, 0.5,0.25, anneal0.5") from None
    return text


def parse_variant(text: str, steps: int) -> tuple[tuple[float, ...], str]:
    """``WEIGHTS/UNCOND`` -> (w per network call of a window, uncond); ValueError if malformed."""
    spec, _, uncond = text.partition("/")
    uncond = uncond or "dropped"
    if uncond not in UNCOND:
        raise ValueError(f"uncond must be one of {', '.join(UNCOND)}")
    if spec.startswith("anneal"):
        return tuple(annealed_weights(float(spec.removeprefix("anneal")), steps)), uncond
    items = spec.split(",")
    if len(items) == 1 and "x" not in items[0]:
        return (float(items[0]),) * steps, uncond
    weights: list[float] = []
    for item in items:
        w, _, n = item.partition("x")
        weights += [float(w)] * int(n or 1)
    return tuple(weights), uncond


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--suites", nargs="+", default=["continuation"], choices=SUITES)
    parser.add_argument("--variants", nargs="+", type=variant, default=["0", "0.25/masked", "0.25/dropped", "0.5x2/dropped"],
                        help="WEIGHTS/UNCOND each; the base 0 runs first unless the file holds one of the same setup")
    parser.add_argument("--steps", type=int, default=4, help="MGM steps per window (default: %(default)s)")
    parser.add_argument("--context", type=int, default=6, help="context frames per window (default: %(default)s)")
    parser.add_argument("--temperature", type=float, default=None, help="MGM temperature (default: 1)")
    parser.add_argument("--noise", type=float, default=None, help="MGM Gumbel noise scale (default: 4.5)")
    parser.add_argument("--anchor", type=float, default=None, help="gain of the guidance anchor (guidance.GuidanceAnchor; default: 0, none)")
    parser.add_argument("--pair-unguided", action="store_true",
                        help="pair with the stored unguided base (4 steps, context 6) instead of running this setup's own")
    parser.add_argument("--data", type=Path, default=None, metavar="PATH",
                        help="a clips file to test on, its first sequences (default: held-out Moving MNIST)")
    parser.add_argument("--data-seed", type=int, default=1234, help="held-out sequences without --data (default: %(default)s)")
    parser.add_argument("--horizon-sequences", type=int, default=4, help="(default: %(default)s)")
    parser.add_argument("--horizon-frames", type=int, default=160, help="(default: %(default)s)")
    parser.add_argument("--infill-sequences", type=int, default=32, help="(default: %(default)s)")


class Meter:
    """Counts the FLOPs of the transformer's calls (``logits_at``: every pass, cond or uncond) while installed."""

    def __init__(self, model) -> None:
        self.model, self.flops = model, 0
        self._logits_at = model.logits_at
        model.logits_at = self._counted

    def _counted(self, *args, **kwargs):
        with flop_counter() as counter:
            out = self._logits_at(*args, **kwargs)
        self.flops += counter.get_total_flops()
        return out

    def remove(self) -> None:
        del self.model.logits_at


def sample(pipe: MaskFlowPipeline, plan, weights: tuple[float, ...], uncond: str, options: SamplingOptions, videos, batch: int) -> tuple[torch.Tensor, dict]:
    """Run ``plan`` for the videos with the variant's guided denoiser -> output videos and the cost."""
    made: list = []
    plain = pipe.denoiser  # the pipeline's own method, before it is replaced below

    def denoiser():
        made.append(GuidedDenoiser(plain(), weights, uncond) if any(weights) else plain())
        return made[-1]

    pipe.denoiser = denoiser
    meter = Meter(pipe.transformer)
    started = time.perf_counter()
    try:
        video, nfe = sample_videos(pipe, plan, options, videos, batch)
    finally:
        meter.remove()
        del pipe.denoiser
    seconds = time.perf_counter() - started
    windows = len(plan.windows) * len(made)  # windows sampled, over the batches
    new_frames = sum(len(w.keep) for w in plan.windows if w.keep) * len(videos)
    uncond_passes = sum(getattr(d, "uncond_passes", 0) for d in made)
    calls = sum(d.calls for d in made)
    return video, {"nfe_per_sequence": nfe, "passes_per_window": round(calls / windows, 3), "uncond_passes_per_window": round(uncond_passes / windows, 3),
                   "gflop_per_new_frame": round(meter.flops / 1e9 / new_frames, 3), "seconds": round(seconds, 1)}


def per_sequence_mse(prediction: torch.Tensor, target: torch.Tensor) -> list[float]:
    return [round(float(v), 4) for v in frame_mse(prediction, target).mean(1)]


def binned(values: torch.Tensor) -> list[float]:
    """Per-frame statistic [B,T] -> means per BIN-frame bin."""
    return [round(float(values[:, i : i + BIN].mean()), 3) for i in range(0, values.shape[1], BIN)]


def run_suite(suite: str, pipe: MaskFlowPipeline, args, settings, options: SamplingOptions, weights, uncond) -> dict:
    """One variant on one suite -> the row's measurements (per-sequence values kept for pairing)."""
    fmt = pipe.frame_format
    data = None if args.data is None else str(args.data)
    if suite == "continuation":
        clips = held_out_sequences(data, GIVEN + FUTURE, args.sequences, fmt, args.data_seed)
        video, cost = sample(pipe, plan_extend(GIVEN, FUTURE, settings), weights, uncond, options, clips[:, :GIVEN], args.batch)
        per_frame = frame_mse(video[:, GIVEN:], clips[:, GIVEN:]).mean(0)
        return {**cost, "sequences": len(clips), "mse": per_sequence_mse(video[:, GIVEN:], clips[:, GIVEN:]),
                "mse_per_frame": [round(float(v), 2) for v in per_frame]}
    if suite == "horizon":
        real = held_out_sequences(data, args.horizon_frames, args.horizon_sequences, fmt, args.data_seed + 1)
        video, cost = sample(pipe, plan_extend(GIVEN, args.horizon_frames - GIVEN, settings), weights, uncond, options, real[:, :GIVEN], args.batch)
        made, truth = drift_stats(video, real), drift_stats(real, real)
        return {**cost, "sequences": len(real), "frames": args.horizon_frames, "bin": BIN,
                **{k: binned(v) for k, v in made.items()}, "real": {k: binned(v) for k, v in truth.items()}}
    clips = held_out_sequences(data, INFILL_CLIP, args.infill_sequences, fmt, args.data_seed + 2)
    out: dict = {"sequences": len(clips)}
    for gap in INFILL_GAPS:
        a = (INFILL_CLIP - gap) // 2
        video, cost = sample(pipe, plan_infill(INFILL_CLIP, [(a, a + gap)], settings), weights, uncond, options, clips, args.batch)
        out[f"{a}:{a + gap}"] = {**cost, "mse": per_sequence_mse(video[:, a : a + gap], clips[:, a : a + gap])}
    return out


def compare(row: dict, base: dict) -> dict:
    """Paired differences and cost ratios of a row against the base row of the same setup."""
    def paired(mine: dict, theirs: dict) -> dict:
        diff = summarize(torch.tensor(mine["mse"]) - torch.tensor(theirs["mse"]))
        return {"mse_mean": round(sum(mine["mse"]) / len(mine["mse"]), 2), "mse_vs_base": diff["mean"], "mse_vs_base_ci95": diff["ci95"],
                "flops_vs_base": round(mine["gflop_per_new_frame"] / theirs["gflop_per_new_frame"], 3)}

    if row["suite"] == "continuation":
        return paired(row, base)
    if row["suite"] == "infill":
        return {gap: paired(row[gap], base[gap]) for gap in row if ":" in gap}
    ink, real = row["ink"], row["real"]["ink"]
    return {"flops_vs_base": round(row["gflop_per_new_frame"] / base["gflop_per_new_frame"], 3),
            "ink_first_last5_last": [ink[0], round(sum(ink[-5:]) / len(ink[-5:]), 1), ink[-1]],
            "ink_vs_real_per_bin": [round(a / b - 1, 3) for a, b in zip(ink, real)],
            "worst_ink_vs_real": round(max((a / b - 1 for a, b in zip(ink, real)), key=abs), 3)}


def describe(row: dict, runs: list[dict]) -> str:
    """One line per finished row, printed as the run goes."""
    c = row["vs_base"]
    head = f"{row['suite']:12} {row['variant']:18} passes/window {row.get('passes_per_window', '-')!s:>6}"
    if row["suite"] == "continuation":
        return (f"{head}  flops x{c['flops_vs_base']}  MSE {c['mse_mean']:6.1f}  vs base {c['mse_vs_base']:+6.2f} ± {c['mse_vs_base_ci95']:.2f}  "
                f"{row['seconds']} s{unguided(row, runs)}")
    if row["suite"] == "infill":
        return head + "  " + "  ".join(f"{g}: MSE {v['mse_mean']:.1f} vs base {v['mse_vs_base']:+.2f} ± {v['mse_vs_base_ci95']:.2f} flops x{v['flops_vs_base']}"
                                       for g, v in c.items()) + unguided(row, runs)
    return (f"{head}  flops x{c['flops_vs_base']}  ink first/last5/last {c['ink_first_last5_last']}  worst vs real {c['worst_ink_vs_real']:+.1%}  "
            f"{row['seconds']} s{unguided(row, runs)}")


def vs_unguided(row: dict, runs: list[dict]) -> dict | None:
    """A row of another setup (steps, context, temperature, noise) against the latest unguided base of UNGUIDED
    on the same sequences and seed (``compare``); None for a row of that setup or without such a base."""
    key = {k: row[k] for k in SETUP if k in row} | UNGUIDED
    if same_setup(row, key):
        return None
    base = next((r for run_ in reversed(runs) for r in reversed(run_["rows"]) if same_setup(r, key) and r["variant"] == "0"), None)
    return None if base is None else compare(row, base)


def against_unguided(row: dict, runs: list[dict], gap: str | None = None) -> str:
    c = vs_unguided(row, runs)
    if c is None:
        return "–"
    c = c[gap] if gap else c
    return f"{delta(c)}, FLOPs ×{c['flops_vs_base']:.2f}" if "mse_vs_base" in c else f"FLOPs ×{c['flops_vs_base']:.2f}"


def unguided(row: dict, runs: list[dict]) -> str:
    c = vs_unguided(row, runs)
    if c is None:
        return ""
    gaps = [g for g in c if ":" in g] or [None]
    return f"  vs unguided {UNGUIDED['steps']} steps, context {UNGUIDED['context']}: " + "; ".join(f"{g + ' ' if g else ''}{against_unguided(row, runs, g)}" for g in gaps)


# ---- the file of runs ------------------------------------------------------------------------------


def stored_runs(path: Path) -> list[dict]:
    """The runs in the JSON file at ``path`` as it stands now ([] before the first)."""
    return json.loads(path.read_text())["runs"] if path.exists() else []


def with_run(path: Path, this_run: dict) -> dict:
    """The file's content with ``this_run`` in it: its own earlier entry replaced, else appended."""
    runs = stored_runs(path)
    mine = [i for i, r in enumerate(runs) if r.get("started") == this_run["started"] and r["command"] == this_run["command"]]
    if mine:
        runs[mine[0]] = this_run
    else:
        runs.append(this_run)
    return {"runs": runs}


def same_setup(row: dict, key: dict) -> bool:
    """Whether ``row`` was measured in the setup ``key`` (a row with a temperature or noise of its own only if ``key`` names it)."""
    return all(row.get(k) == v for k, v in key.items()) and all(k in key for k in TUNED if k in row)


def stored_base(path: Path, this_run: dict, key: dict) -> dict | None:
    """The latest base row (variant 0) of the setup ``key``, in the file or in this run."""
    runs = [r for r in stored_runs(path) if r.get("started") != this_run["started"]] + [this_run]
    return next((r for run_ in reversed(runs) for r in reversed(run_["rows"]) if same_setup(r, key) and r["variant"] == "0"), None)


def data_recipe(path: Path | None) -> dict | None:
    """What identifies the test data in a row: None for the held-out set, else the clips file's recipe."""
    if path is None:
        return None
    recipe = load_clips(path)[1]
    return {k: v for k, v in recipe.items() if k != "format_version"}


def run(args: argparse.Namespace) -> dict:
    """Measure every variant on every suite, saving this run into ``--out`` after each row."""
    pipe = MaskFlowPipeline.from_weights(args.weights, device="cpu", precision=args.precision)
    settings = window_settings(pipe.window, "ar", context=args.context)
    tuned = {k: getattr(args, k) for k in TUNED if getattr(args, k) is not None}  # part of the setup only when given
    options = SamplingOptions("mgm", args.steps, seed=args.seed, **(UNTUNED | tuned), guidance=0.0)  # the variants guide
    started = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")  # with its command, tells this run's entry in the file
    this_run = {"started": started, "command": args.run_command, "machine": args.machine,
                "weights": args.weights or "(installed)", "rows": []}
    data = data_recipe(args.data)
    for suite in args.suites:
        key = {"suite": suite, "steps": args.steps, "context": args.context, "seed": args.seed, "data_seed": args.data_seed, "precision": args.precision,
               "sequences": {"continuation": args.sequences, "horizon": args.horizon_sequences, "infill": args.infill_sequences}[suite], "data": data,
               **tuned}
        if suite == "horizon":
            key["frames"] = args.horizon_frames
        unguided_key = {k: v for k, v in key.items() if k not in TUNED} | UNGUIDED
        for name in (["0"] if "0" not in args.variants and not args.pair_unguided else []) + args.variants:
            weights, uncond = parse_variant(name, args.steps)
            base = stored_base(args.out, this_run, unguided_key if args.pair_unguided else key)
            if name == "0" and base is not None and name not in args.variants:
                continue
            row = {**key, "variant": name, "weights": list(weights), "uncond": uncond,
                   **run_suite(suite, pipe, args, settings, options, weights, uncond)}
            row["vs_base"] = compare(row, base or row)
            this_run["rows"].append(row)
            args.save(with_run(args.out, this_run))
            print(describe(row, stored_runs(args.out)), flush=True)
    return with_run(args.out, this_run)


# ---- the results page ------------------------------------------------------------------------------


def setup_title(row: dict) -> str:
    """The setup a row shares with its base, in words."""
    if row.get("data"):
        recipe = ", ".join(f"{k} {'–'.join(f'{x:g}' for x in v) if isinstance(v, list) else v}" for k, v in row["data"].items())
        data = f"a clips file ({recipe})"
    else:
        data = f"held-out Moving MNIST, data seed {row['data_seed']}{' + 1' if row['suite'] == 'horizon' else ' + 2' if row['suite'] == 'infill' else ''}"
    what = {"continuation": "continuation 10 → 10", "horizon": f"extend 10 → {row.get('frames')} frames", "infill": "infill of 20-frame clips"}[row["suite"]]
    tuned = "".join(f", {k} {row[k]:g}" for k in TUNED if k in row)
    return (f"{what}, {row['sequences']} sequences of {data}; MGM {row['steps']} steps{tuned}, context {row['context']}, "
            f"seed {row['seed']}, {row['precision']}")


def groups(runs: list[dict]) -> dict[str, list[tuple[int, dict]]]:
    """Setup title -> (run number, row) of every row of that setup, in the order measured."""
    out: dict[str, list[tuple[int, dict]]] = {}
    for number, run_ in enumerate(runs, 1):
        for row in run_["rows"]:
            out.setdefault(setup_title(row), []).append((number, row))
    return out


def delta(c: dict) -> str:
    return f"{c['mse_vs_base']:+.1f} ± {c['mse_vs_base_ci95']:.1f}"


def ink_summary(ink: list[float]) -> str:
    return f"{ink[0]:.0f} / {sum(ink[-5:]) / len(ink[-5:]):.0f} / {ink[-1]:.0f}"


def group_table(rows: list[tuple[int, dict]], runs: list[dict]) -> list[str]:
    """The rows of one setup; the column against the unguided base only for a setup where some row has it."""
    suite = rows[0][1]["suite"]
    if suite == "continuation":
        header = ["run", "variant", "passes / window", "FLOPs vs base", "MSE/frame", "vs base"]
        cells = [[n, r["variant"], r["passes_per_window"], f"{r['vs_base']['flops_vs_base']:.2f}", f"{r['vs_base']['mse_mean']:.1f}",
                  delta(r["vs_base"]), against_unguided(r, runs)] for n, r in rows]
    elif suite == "infill":
        header = ["run", "variant", "gap", "passes / window", "FLOPs vs base", "MSE/frame", "vs base"]
        cells = [[n, r["variant"], gap, r[gap]["passes_per_window"], f"{c['flops_vs_base']:.2f}", f"{c['mse_mean']:.1f}", delta(c),
                  against_unguided(r, runs, gap)] for n, r in rows for gap, c in r["vs_base"].items()]
    else:
        header = ["run", "variant", "passes / window", "FLOPs vs base", f"ink first / last 5 / last bin (real {ink_summary(rows[0][1]['real']['ink'])})",
                  "worst bin vs real", "crisp last bin"]
        cells = [[n, r["variant"], r["passes_per_window"], f"{r['vs_base']['flops_vs_base']:.2f}", ink_summary(r["ink"]),
                  f"{r['vs_base']['worst_ink_vs_real']:+.1%}", f"{r['crisp'][-1]:.2f}", against_unguided(r, runs)] for n, r in rows]
    if all(row[-1] == "–" for row in cells):
        return table(header, [row[:-1] for row in cells])
    return table([*header, f"vs unguided, {UNGUIDED['steps']} steps, context {UNGUIDED['context']}"], cells)


def render(r: dict) -> str:
    runs = r["runs"]
    machines = sorted({f"{x['machine']['cpu']}, {x['machine']['threads']} thread(s), torch {x['machine']['torch']}" for x in runs})
    out = heading("Classifier-free guidance on the context, paired against unguided sampling", r) + [
        ("Variants are `WEIGHTS/UNCOND` (w per step of a window; `0.5,0.25` guides the first two of 4 steps, `0.5x2` the first two "
         "at 0.5, `annealW` is `--guidance W`; the uncond pass sees the context frames `masked` or `dropped`); base `0` is today's "
         "unguided sampling. Cost is counted, not timed: network passes per window (uncond passes included) and the transformer's "
         "FLOPs per generated frame against the base. \"vs base\" is the mean per-sequence MSE difference to the base on the same "
         "sequences and seed (negative: better) with its 95 % interval; the horizon's ink is the summed pixel value per frame, per "
         f"16-frame bin. Machine: {'; '.join(machines)}. Each run appends its rows to one file and pairs against the stored base of "
         "the same setup; the heading names the latest run, the rows name theirs:"), ""]
    out += [f"{n}. `{x['command']}`" for n, x in enumerate(runs, 1)] + [""]
    for title, rows in groups(runs).items():
        out += [f"**{title[0].upper()}{title[1:]}**", ""] + group_table(rows, runs)
    return "\n".join(out)
