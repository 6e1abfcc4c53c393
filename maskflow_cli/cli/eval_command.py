"""``maskflow eval``: the evaluation suites of evaluation.py from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..defaults import SUITES
from ..errors import InvalidArgumentError, check_range
from . import options as opt
from .groups import ReportGroup, SamplingGroup, command

EvalData = Annotated[Optional[str], typer.Option("--data", metavar="PATH", help="A clips file, a folder of clips shards (maskflow data maze) or a folder of videos to test on. Default: the held-out test set of the world the weights were trained on (shipped sets by name: digits -> Moving MNIST from the reserved test digits, needs maskflow[data]; maze -> test mazes, needs maskflow[maze]); Moving MNIST for any other weights.")]
Quick = Annotated[bool, typer.Option("--quick", help="A small run (about a minute on two cores) instead of the full size.")]
Suite = Annotated[Optional[list[str]], typer.Option("--suite", metavar="NAME", help=f"Run only these suites ({', '.join(SUITES)}); repeat the option for several. Default: all (fvd only with --fvd-detector).")]
DataSeed = Annotated[int, typer.Option("--data-seed", help="Seed of the Moving MNIST test sequences.")]
FvdDetector = Annotated[Optional[str], typer.Option("--fvd-detector", metavar="PATH", help="Run the fvd suite too: FVD of generated against held-out clips with this I3D TorchScript file (i3d_torchscript.pt of the StyleGAN-V / DIGAN FVD code; never downloaded): 16-frame clips resized to 224x224, gray repeated to 3 channels.")]
FvdClips = Annotated[Optional[int], typer.Option("--fvd-clips", metavar="N", help="Real and generated clips for FVD, each (papers use 2048). Default: 256, 4 with --quick.")]
Plots = Annotated[Optional[str], typer.Option("--plots", metavar="DIR", rich_help_panel=opt.OUTPUT, help="Also write PNG plots into DIR (needs maskflow[plot]).")]


if TYPE_CHECKING:  # rich loads when tables are printed, not for --help
    from rich.console import Console
    from rich.table import Table

@command
def eval_(
    data: EvalData = None, quick: Quick = False, suite: Suite = None, data_seed: DataSeed = 1234, plots: Plots = None,
    fvd_detector: FvdDetector = None, fvd_clips: FvdClips = None, run: SamplingGroup = SamplingGroup(seed=0), report: ReportGroup = ReportGroup(),
) -> None:
    """Measure a set of weights: tokenizer reconstruction, 10 -> 10 continuation, long-horizon drift, infill, FVD.

    Scores are per-frame MSE (summed over pixels in [0, 1]), PSNR and SSIM, against simple baselines;
    long videos are summarised per 16-frame bin (ink, crisp-pixel fraction, digit blobs) next to real ones.
    FVD needs the I3D detector file, which you supply (--fvd-detector; never downloaded).

    Examples:

      maskflow eval --quick

      maskflow eval --weights runs/mf --json > eval.json

      maskflow eval --data my_videos/ --suite tokenizer --suite infill

      maskflow eval --weights runs/mf --fvd-detector i3d_torchscript.pt --fvd-clips 2048 --json > eval.json
    """
    import dataclasses

    from ..evaluation import SIZES, evaluate
    from ..fvd import load_detector
    from ..runtime import resolve_device
    from ..weight_headers import inspect_weights
    from ..weights import load_tokenizer
    from ..worlds import world_of_weights

    suites = tuple(suite or [s for s in SUITES if s != "fvd"])
    for name in suites:
        if name not in SUITES:
            raise InvalidArgumentError("suite", name, f"choose from {', '.join(SUITES)}")
    if fvd_detector is not None and "fvd" not in suites:
        suites += ("fvd",)
    if "fvd" in suites and fvd_detector is None:
        raise InvalidArgumentError("fvd_detector", None, "the fvd suite needs the I3D TorchScript file i3d_torchscript.pt: give its path")
    options = run.sampling_options()
    size = SIZES["quick" if quick else "full"]
    if fvd_clips is not None:
        check_range("fvd_clips", fvd_clips, 2, 100_000)
        size = dataclasses.replace(size, fvd_clips=fvd_clips)
    if plots is not None:
        _check_plotting()
    reporter = report.reporter()
    dev = resolve_device(run.device)
    detector = None if fvd_detector is None else load_detector(fvd_detector, dev)  # before the weights: a bad file fails at once
    if "transformer" in inspect_weights(run.weights):
        pipe = run.load_pipeline()
        tokenizer, settings = pipe.tokenizer, run.window_settings(pipe.window)
    else:
        pipe, settings, tokenizer = None, None, load_tokenizer(run.weights).to(dev)
    if detector is not None and pipe is None:
        raise InvalidArgumentError("fvd_detector", fvd_detector, "FVD needs weights with a transformer to generate clips")
    result = evaluate(pipe, tokenizer, dev, data=data, size=size, suites=suites, world=world_of_weights(run.weights).name,
                      settings=settings, options=options, data_seed=data_seed, log=reporter.log, detector=detector)
    result = {"weights": run.weights or "(installed)", "device": str(dev), "context_cache": run.context_cache, "seconds": reporter.seconds(), **result}
    if plots is not None:
        from ..plots import write_eval_plots

        result["plots"] = [str(p) for p in write_eval_plots(result, Path(plots))]
    if report.json_:
        reporter.data(result)  # one line; OutputError if stdout cannot take it
    else:
        from rich.console import Console

        print_tables(result, Console())
    reporter.summary_line(f"eval: {', '.join(suites)} on {result['data']}, {result['seconds']:.1f} s")


def _check_plotting() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise InvalidArgumentError("plots", "", "needs matplotlib: pip install 'maskflow[plot]'") from None


def _row(name: str, r: dict) -> list[str]:
    return [name, f"{r['mse']['mean']:.1f} ± {r['mse']['ci95']:.1f}", f"{r['psnr']['mean']:.2f}", f"{r['ssim']['mean']:.3f}"]


def _score_table(section: dict, names: tuple[str, ...]) -> Table:
    from rich.table import Table

    table = Table()
    for column in ("method", "MSE/frame", "PSNR dB", "SSIM"):
        table.add_column(column, justify="left" if column == "method" else "right")
    for name in names:
        table.add_row(*_row(name, section[name]))
    return table


def _tag(s: dict) -> str:
    guided = f", guidance {s['guidance']:g}" if s.get("guidance") else ""
    return (f"{s['sampler']} {s['steps']} steps{guided}, {s['mode']} (context {s['context']}, stride {s['stride']}), seed {s['seed']}, "
            f"NFE {s['nfe_per_sequence']}, {s['seconds']} s")


def _bin_table(horizon: dict, key: str, cell) -> Table:
    """One row per bin of the horizon suite, a column each for real, generate and extend."""
    from rich.table import Table

    table = Table()
    table.add_column("bin")
    names = ("real", "generate", "extend")
    for name in names:
        table.add_column(name, justify="right")
    for i in range(len(horizon["real"][key])):
        table.add_row(str(i), *(cell(horizon[n], i) for n in names))
    return table


def print_tables(result: dict, console: Console) -> None:
    """The results as rich tables (stdout)."""
    if "tokenizer" in result:
        t = result["tokenizer"]
        console.print(f"tokenizer reconstruction on {t['frames']} test frames: PSNR {t['psnr']['mean']:.2f} dB, SSIM {t['ssim']['mean']:.3f}")
    if "continuation" in result:
        c = result["continuation"]
        console.print(f"\ncontinuation {c['given']} -> {c['future']}, {c['sequences']} sequences; {_tag(c)}")
        console.print(_score_table(c, ("maskflow", "copy_last", "black")))
    if "horizon" in result:
        h = result["horizon"]
        console.print(f"\nlong horizon: {h['frames']} frames, {h['sequences']} sequences, per {h['bin']}-frame bin (ink / crisp / blobs)")
        console.print(f"generate: {_tag(h['generate'])}\nextend: {_tag(h['extend'])}")
        console.print(_bin_table(h, "ink", lambda r, i: f"{r['ink'][i]:.0f} / {r['crisp'][i]:.2f} / {r['blobs'][i]:.1f}"))
        if "colour" in h["real"]:
            console.print("colour (histogram distance from all real frames) / sharpness (mean neighbour difference)")
            console.print(_bin_table(h, "colour", lambda r, i: f"{r['colour'][i]:.3f} / {r['sharpness'][i]:.4f}"))
    for key, section in result.get("infill", {}).items():
        a, b = section["range"]
        console.print(f"\ninfill frames {a}:{b}; {_tag(section)}")
        console.print(_score_table(section, ("maskflow", "repeat_nearest", "crossfade")))
    if "fvd" in result:
        f = result["fvd"]
        console.print(f"\nFVD {f['maskflow']:.1f}: {f['clips']} generated against {f['clips']} real clips of {f['frames']} frames "
                      f"at {f['resolution']}x{f['resolution']}; {_tag(f)}")
