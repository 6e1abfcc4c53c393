"""The sampling commands: ``maskflow generate``, ``extend`` and ``infill``. Each parses its own options
into library calls; the options they share come as one ``SamplingGroup`` (groups.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError, VideoError, WeightsError
from ..frame_ranges import check_ranges, parse_ranges
from ..planner import Plan, WindowSettings, check_frame_count, plan_extend, plan_generate, plan_infill
from . import options as opt
from .groups import ReportGroup, SamplingGroup, command
from .report import Reporter
from .steps import FPS_FIX, check_domain_of, check_video_output, fps_option, output_fps, read_input, require_output

if TYPE_CHECKING:  # torch and FFmpeg are imported when a command runs, not when it is declared
    from ..engine import SamplingOptions
    from ..pipeline import MaskFlowPipeline
    from ..sampling import SamplerState
    from ..video_io import Video


@dataclass(frozen=True)
class Job:
    """What every sampling command needs, gathered from the shared options."""

    pipe: MaskFlowPipeline
    sampling: SamplingOptions
    settings: WindowSettings
    reporter: Reporter
    weights: str | None  # as given: where the tokenizer's metadata is read for the domain check

    @classmethod
    def start(cls, run: SamplingGroup, report: ReportGroup) -> "Job":
        """Validate the sampling options, load the weights (timed as "load"), then check the window settings against them."""
        reporter = report.reporter()
        sampling = run.sampling_options()  # validated before the weights load
        with reporter.stage("load"):
            pipe = run.load_pipeline()
        return cls(pipe, sampling, run.window_settings(pipe.window), reporter, run.weights)


def _execute(job: Job, command: str, plan: Plan, video: Video | None, output: str, fps: Fraction, inputs: list[str], overwrite: bool,
             extra: dict | None = None) -> None:
    """Sample the plan and stream the frames into the output file. Timings: "sample" is the time
    spent making chunks (network, tokenizer), "write" the rest of the writing block (encoding,
    muxing, the final rename); ``extra`` goes into the JSON summary."""
    from ..video_io import check_not_input, open_writer

    if output == "-" and job.reporter.json_output:
        raise InvalidArgumentError("json", True, "with -o - stdout carries the video; write to a file or drop --json")
    check_not_input(output, inputs)
    fmt = job.pipe.frame_format
    generated = sum(len(w.keep) for w in plan.windows)
    nfe, reporter = 0, job.reporter
    with reporter.stage("write", inner="sample"), open_writer(output, fmt, fps, overwrite=overwrite) as writer:
        with reporter.progress(len(plan.windows) * job.sampling.steps, f"{command} {generated} frames") as bar:
            callback = None if bar is None else _advance(bar)
            run = job.pipe.run(plan, None if video is None else video.frames, job.sampling, callback)
            for chunk in reporter.timed("sample", run):
                writer.write(chunk.frames)
                nfe += chunk.nfe
    summary = {
        "command": command, "output": output, "frames": plan.length, "generated": generated,
        "fps": float(fps), "width": fmt.width, "height": fmt.height, "channels": fmt.channels,
        "nfe": nfe, "windows": len(plan.windows), "seconds": reporter.seconds(), "timings": reporter.stage_seconds(),
        "seed": run.seed, "sampler": job.sampling.sampler, "steps": job.sampling.steps, "device": str(job.pipe.device), **(extra or {}),
    }
    reporter.result(summary, f"wrote {output}: {plan.length} frames ({generated} generated, NFE {nfe}) at {float(fps):g} fps, "
                             f"{fmt.width}x{fmt.height}, {summary['seconds']:.1f} s, seed {run.seed}")


def _advance(bar):
    """A sampler callback that moves ``bar`` one step per sampler step."""

    def on_step(state: SamplerState) -> None:
        bar.advance()

    return on_step


def _dry_run(job: Job, plan: Plan) -> None:
    settings = job.settings
    job.reporter.data({"window": settings.window, "mode": settings.mode, "context": settings.context,
                       "stride": settings.stride, "steps": job.sampling.steps, **plan.to_dict()})
    generated = sum(len(w.keep) for w in plan.windows)
    job.reporter.summary_line(f"dry run: {len(plan.windows)} windows would make {generated} of {plan.length} frames "
                              f"(NFE at most {len(plan.windows) * job.sampling.steps}); nothing written, {job.reporter.seconds():.1f} s")


# ---- the commands --------------------------------------------------------------------------------


@command
def generate(
    output: opt.Output = None, frames: opt.Frames = 16, fps: opt.Fps = None, run: SamplingGroup = SamplingGroup(),
    report: ReportGroup = ReportGroup(), overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Generate a video from nothing.

    Examples:

      maskflow generate -o digits.mp4 --frames 48 --seed 1

      maskflow generate -o - --frames 160 | ffplay -
    """
    rate = fps_option(fps)
    if not dry_run:
        output = require_output(output, "digits.mp4")
        check_video_output(output, overwrite, report.json_, [])
    job = Job.start(run, report)
    plan = plan_generate(frames, job.settings)
    if dry_run:
        return _dry_run(job, plan)
    _execute(job, "generate", plan, None, output, _weights_fps(rate, job), [], overwrite)


@command
def extend(
    input: opt.Input, output: opt.Output = None, frames: opt.Frames = 16, fps: opt.Fps = None, run: SamplingGroup = SamplingGroup(),
    report: ReportGroup = ReportGroup(), overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Continue a video by --frames new frames (the output holds the input's frames, then the new ones).

    Examples:

      maskflow extend clip.mp4 --frames 32 -o longer.mp4

      cat clip.mkv | maskflow extend - --frames 16 -o - | ffplay -
    """
    rate = fps_option(fps)
    if not dry_run:
        output = require_output(output, "longer.mp4")
        check_video_output(output, overwrite, report.json_, [input])
    job = Job.start(run, report)
    check_frame_count(frames)  # --frames checked before the input is read
    if job.settings.mode == "full":
        plan_extend(1, frames, job.settings)  # one window: does --frames fit it?
    video = read_input(job.reporter, input, job.pipe.frame_format)
    plan = plan_extend(len(video.frames), frames, job.settings)
    if dry_run:
        return _dry_run(job, plan)
    _execute(job, "extend", plan, video, output, _input_fps(rate, video, input, job), [input], overwrite,
             {"domain": check_domain_of(job.reporter, job.pipe.tokenizer, job.pipe.device, job.weights, video, input)})


@command
def infill(
    input: opt.Input, ranges: opt.Ranges, output: opt.Output = None, fps: opt.Fps = None, run: SamplingGroup = SamplingGroup(),
    report: ReportGroup = ReportGroup(), overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Regenerate frame ranges of a video from the frames on both sides of each.

    RANGES are 0-based and end-exclusive like Python slices: 10:20 is frames 10..19; 10: runs to the
    end, :5 is frames 0..4, 7 is frame 7 alone. Negative numbers count from the end: -5: is the last
    five frames, -10:-2 the ten before the last two. A number with s is seconds, rounded to the
    nearest frame at the input's frame rate: 1.5s:3s, -2s: (the last two seconds). A range past
    either end is an error. Frames outside the ranges are passed through.

    Examples:

      maskflow infill clip.mp4 10:20 -o fixed.mp4

      maskflow infill clip.mp4 -4: -o fixed.mp4

      maskflow infill clip.mp4 1.5s:3s -o fixed.mp4

      maskflow infill clip.mkv 4:8 30:34 --mode full -o fixed.mkv
    """
    rate = fps_option(fps)
    _refuse_unknown_options(ranges)
    check_ranges(ranges)  # all but the input's length, before any work
    if not dry_run:
        output = require_output(output, "fixed.mp4")
        check_video_output(output, overwrite, report.json_, [input])
    job = Job.start(run, report)
    video = read_input(job.reporter, input, job.pipe.frame_format)
    plan = plan_infill(len(video.frames), parse_ranges(ranges, len(video.frames), video.fps), job.settings)
    if dry_run:
        return _dry_run(job, plan)
    _execute(job, "infill", plan, video, output, _input_fps(rate, video, input, job), [input], overwrite,
             {"domain": check_domain_of(job.reporter, job.pipe.tokenizer, job.pipe.device, job.weights, video, input)})


def _refuse_unknown_options(ranges: list[str]) -> None:
    """infill takes unknown options as arguments, so that a negative range (-5:) reaches RANGES;
    one that cannot be a range is a mistyped option."""
    for text in ranges:
        if re.match(r"-[^0-9.]", text):
            raise InvalidArgumentError("ranges", text, "no such option, and not a frame range; see maskflow infill --help")


def _input_fps(rate: Fraction | None, video: Video, input: str, job: Job) -> Fraction:
    """--fps, else the input's frame rate, else (a still image) the weights'."""
    if video.fps is None:
        return _weights_fps(rate, job)
    return output_fps(rate, video.fps, lambda problem: VideoError(input, problem + FPS_FIX))


def _weights_fps(rate: Fraction | None, job: Job) -> Fraction:
    return output_fps(rate, job.pipe.fps, lambda problem: WeightsError(job.weights or "(default)", f"the transformer's info: {problem}{FPS_FIX}"))
