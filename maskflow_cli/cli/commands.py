"""The sampling commands: ``maskflow generate``, ``extend`` and ``infill``. Each parses its own options
into library calls; the options they share come as one ``SamplingGroup`` (groups.py)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING

from ..errors import InvalidArgumentError, VideoError, WeightsError
from ..frame_ranges import check_ranges, parse_ranges
from ..planner import Plan, WindowSettings, check_frame_count, plan_extend, plan_generate, plan_infill
from . import options as opt
from ..timeline import Timeline, extend_timeline, generate_timeline, infill_timeline
from .groups import InputMediaGroup, ReportGroup, SamplingGroup, SizeGroup, command
from .media import Media, geometry_notes, model_stride, output_format, plan_audio, read_with_geometry
from .report import Reporter
from .steps import FPS_FIX, check_domain_of, check_video_output, fps_option, output_fps, require_output

if TYPE_CHECKING:  # torch and FFmpeg are imported when a command runs, not when it is declared
    from ..engine import SamplingOptions
    from ..pipeline import MaskFlowPipeline
    from ..sampling import SamplerState
    from ..video_io import Video
    from ..video_io.sources import ReusableInput


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


def _execute(job: Job, command: str, plan: Plan, timeline: Timeline, video: Video | None, media: Media, output: str, fps: Fraction,
             overwrite: bool, extra: dict | None = None) -> None:
    """Sample the plan and stream the output's frames (timeline and media: which are the input's,
    at what size, with what audio) into the output file, which ``steps.check_video_output`` has
    checked before any work. Timings: "sample" is the time spent making
    and placing frames (network, tokenizer, reading the input again), "write" the rest of the
    writing block (encoding, muxing, the final rename); ``extra`` goes into the JSON summary."""
    from ..assembly import Assembly
    from ..video_io import open_writer

    fmt = media.geometry.output
    windows = sum(len(w.keep) for w in plan.windows)
    geometry_notes(media, timeline.generated)
    reporter = job.reporter
    with reporter.stage("write", inner="sample"), media.open(output) as (originals, audio), \
            open_writer(output, fmt, fps, overwrite=overwrite, audio=audio) as writer:
        with reporter.progress(len(plan.windows) * job.sampling.steps, f"{command} {windows} frames") as bar:
            callback = None if bar is None else _advance(bar)
            run = job.pipe.run(plan, None if video is None else video.frames, job.sampling, callback)
            frames = Assembly(run, timeline, originals, media.geometry)
            for frame in reporter.timed("sample", frames):
                writer.write(frame[None])
    generated, nfe = timeline.generated, frames.nfe
    summary = {
        "command": command, "output": output, "frames": timeline.length, "generated": generated,
        "fps": float(fps), "width": fmt.width, "height": fmt.height, "channels": fmt.channels,
        "nfe": nfe, "windows": len(plan.windows), "seconds": reporter.seconds(), "timings": reporter.stage_seconds(),
        "seed": run.seed, "sampler": job.sampling.sampler, "steps": job.sampling.steps, "device": str(job.pipe.device),
        "model_stride": timeline.stride, **media.facts, **(extra or {}),
    }
    notes = "".join(f", {note}" for note in media.notes)
    reporter.result(summary, f"wrote {output}: {timeline.length} frames ({generated} generated, NFE {nfe}) at {float(fps):g} fps, "
                             f"{fmt.width}x{fmt.height}{notes}, {summary['seconds']:.1f} s, seed {run.seed}")


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
    frame_size: SizeGroup = SizeGroup(size="model"), report: ReportGroup = ReportGroup(), overwrite: opt.Overwrite = False,
    dry_run: opt.DryRun = False,
) -> None:
    """Generate a video from nothing.

    Examples:

      maskflow generate -o digits.mp4 --frames 48 --seed 1

      maskflow generate -o - --frames 160 | ffplay -
    """
    rate = fps_option(fps)
    size = frame_size.check(has_input=False)
    if not dry_run:
        output = require_output(output, "digits.mp4")
        check_video_output(output, overwrite, report.json_, [])
    job = Job.start(run, report)
    plan = plan_generate(frames, job.settings)
    if dry_run:
        return _dry_run(job, plan)
    from ..video_io.geometry import OutputGeometry

    model = job.pipe.frame_format
    geometry = OutputGeometry((model.height, model.width), model, output_format(size, model, None))
    _execute(job, "generate", plan, generate_timeline(frames), None, Media(geometry), output, _weights_fps(rate, job), overwrite)


@command
def extend(
    input: opt.Input, output: opt.Output = None, frames: opt.Frames = 16, fps: opt.Fps = None, run: SamplingGroup = SamplingGroup(),
    frame_size: SizeGroup = SizeGroup(), media: InputMediaGroup = InputMediaGroup(), report: ReportGroup = ReportGroup(),
    overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Continue a video by --frames new frames (the output holds the input's frames, then the new ones).

    Examples:

      maskflow extend clip.mp4 --frames 32 -o longer.mp4

      cat clip.mkv | maskflow extend - --frames 16 -o - | ffplay -
    """
    rate = fps_option(fps)
    size = frame_size.check(has_input=True)
    model_rate = _model_fps_option(media.model_fps)
    if not dry_run:
        output = require_output(output, "longer.mp4")
        check_video_output(output, overwrite, report.json_, [input])
    job = Job.start(run, report)
    check_frame_count(frames)  # --frames checked before the input is read
    if job.settings.mode == "full":
        plan_extend(1, frames, job.settings)  # one window: does --frames fit it?
    with _reusable(job.reporter, input) as source:
        video = read_with_geometry(job.reporter, source, job.pipe.frame_format)
        out_fps = None if dry_run else _input_fps(rate, video, input, job)  # a rate no file can hold is refused first
        stride = model_stride(job.reporter, video.fps, job.pipe.fps, model_rate, input)
        timeline = extend_timeline(len(video.frames), frames, stride)
        made = timeline.gaps[0][1] - timeline.gaps[0][0]
        plan = plan_extend(len(timeline.inputs), made, job.settings)
        if dry_run:
            return _dry_run(job, plan)
        _run_on_input(job, "extend", plan, timeline, video, source, size, media, input, output, out_fps, overwrite)


@command
def infill(
    input: opt.Input, ranges: opt.Ranges, output: opt.Output = None, fps: opt.Fps = None, run: SamplingGroup = SamplingGroup(),
    frame_size: SizeGroup = SizeGroup(), media: InputMediaGroup = InputMediaGroup(), report: ReportGroup = ReportGroup(),
    overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
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
    size = frame_size.check(has_input=True)
    model_rate = _model_fps_option(media.model_fps)
    if not dry_run:
        output = require_output(output, "fixed.mp4")
        check_video_output(output, overwrite, report.json_, [input])
    job = Job.start(run, report)
    with _reusable(job.reporter, input) as source:
        video = read_with_geometry(job.reporter, source, job.pipe.frame_format)
        out_fps = None if dry_run else _input_fps(rate, video, input, job)  # a rate no file can hold is refused first
        stride = model_stride(job.reporter, video.fps, job.pipe.fps, model_rate, input)
        timeline = infill_timeline(len(video.frames), parse_ranges(ranges, len(video.frames), video.fps), stride)
        plan = plan_infill(len(timeline.inputs), timeline.gaps, job.settings)
        if dry_run:
            return _dry_run(job, plan)
        _run_on_input(job, "infill", plan, timeline, video, source, size, media, input, output, out_fps, overwrite)


def _run_on_input(job: Job, command: str, plan: Plan, timeline: Timeline, video: Video, source: ReusableInput,
                  size: tuple[int, int] | str, wants: InputMediaGroup, input: str, output: str, fps: Fraction,
                  overwrite: bool) -> None:
    """extend and infill after planning: the model sees the timeline's input frames; the output
    gets the input's own frames, its audio and the geometry --size asks for."""
    from ..video_io.geometry import OutputGeometry

    model = job.pipe.frame_format
    shape = video.source_shape
    geometry = OutputGeometry((shape[0], shape[1]), model, output_format(size, model, shape))
    media = Media(geometry, source, video.frames)
    plan_audio(job.reporter, media, output, not wants.no_audio, retimed=video.fps is not None and fps != video.fps)
    domain = check_domain_of(job.reporter, job.pipe.tokenizer, job.pipe.device, job.weights, video, input)
    seen = video if timeline.stride == 1 else dataclasses.replace(video, frames=video.frames[list(timeline.inputs)])
    _execute(job, command, plan, timeline, seen, media, output, fps, overwrite,
             {"domain": domain})


def _reusable(reporter: Reporter, input: str) -> ReusableInput:
    """The input, ready to be read more than once (waiting for stdin is timed as "read")."""
    from ..video_io import InputLimits
    from ..video_io.sources import ReusableInput

    with reporter.stage("read"):
        return ReusableInput(input, InputLimits.from_env().spool_bytes)


def _model_fps_option(value: float | None) -> float | None:
    """--model-fps, checked before any work."""
    if value is not None and not (0 < value <= 1000):
        raise InvalidArgumentError("model_fps", value, "must be a frame rate between 0.001 and 1000")
    return value


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
