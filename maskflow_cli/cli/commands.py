"""The commands. Each one parses its options into library calls; the work lives in the library."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from .. import token_files
from ..errors import InvalidArgumentError
from ..engine import SamplingOptions
from ..pipeline import DEFAULT_FPS, MaskFlowPipeline
from ..planner import Plan, check_frame_count, check_ranges, parse_ranges, plan_extend, plan_generate, plan_infill, window_settings
from ..video_io import FrameFormat, InputLimits, Video, check_not_input, check_output, open_writer, read_video
from ..runtime import CODEC_BATCH, decode_tokens, encode_frames, resolve_device
from ..tokenizer import FrameTokenizer
from ..weights import inspect_weights, load_tokenizer
from . import options as opt
from .report import Reporter


@dataclass(frozen=True)
class Job:
    """What every sampling command needs, gathered from the shared options."""

    pipe: MaskFlowPipeline
    sampling: SamplingOptions
    reporter: Reporter


def _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet) -> Job:
    sampling = SamplingOptions(sampler=sampler, steps=steps, seed=seed, noise=noise, temperature=temperature)  # validate before loading
    pipe = MaskFlowPipeline.from_weights(weights, device=device, precision=precision)
    return Job(pipe, sampling, Reporter(json_output=json_, quiet=quiet))


MIN_FPS, MAX_FPS = Fraction(1, 1000), Fraction(1000)
FPS_RANGE = "between 0.001 and 1000"


def _fps_option(value: float | None) -> Fraction | None:
    """--fps as a Fraction, checked before any work (None: not given)."""
    if value is None:
        return None
    if not (math.isfinite(value) and MIN_FPS <= value <= MAX_FPS):
        raise InvalidArgumentError("fps", value, f"must be {FPS_RANGE}")
    return Fraction(value).limit_denominator(1001)


def _fps(value: Fraction | None, default: Fraction, source: str) -> Fraction:
    """The output's frame rate: --fps, else ``default`` (the input's or the weights' rate), which
    must be one the writers handle too."""
    if value is not None:
        return value
    if not MIN_FPS <= default <= MAX_FPS:
        raise InvalidArgumentError("fps", None, f"{source} frame rate {float(default):g} is not {FPS_RANGE}; give --fps")
    return default


def _require_output(output: str | None) -> str:
    if not output:
        raise InvalidArgumentError("output", output, "give an output file such as out.mp4, or - for stdout")
    return output


def _check_video_output(output: str, overwrite: bool, json_: bool, inputs: list[str]) -> None:
    """Refuse an output that could not or may not be written, before any work is done."""
    if output == "-" and json_:
        raise InvalidArgumentError("json", True, "with -o - stdout carries the video; write to a file or drop --json")
    check_not_input(output, inputs)
    check_output(output, overwrite)


def _read_input(reporter: Reporter, source: str, fmt: FrameFormat) -> Video:
    """Read the input within the limits of the environment; say which stream of several is used."""
    reporter.log(f"reading {source}")
    video = read_video(source, fmt, InputLimits.from_env())
    if video.video_streams > 1:
        reporter.log(f"{source}: {video.video_streams} video streams; using the first (stream #{video.stream})")
    return video


def _execute(job: Job, command: str, plan: Plan, video: Video | None, output: str, fps: Fraction, inputs: list[str], overwrite: bool) -> None:
    """Sample the plan and stream the frames into the output file."""
    if output == "-" and job.reporter.json_output:
        raise InvalidArgumentError("json", True, "with -o - stdout carries the video; write to a file or drop --json")
    check_not_input(output, inputs)
    fmt = job.pipe.frame_format
    generated = sum(len(w.keep) for w in plan.windows)
    nfe = 0
    with open_writer(output, fmt, fps, overwrite=overwrite) as writer:
        with job.reporter.progress(len(plan.windows) * job.sampling.steps, f"{command} {generated} frames") as bar:
            callback = None if bar is None else (lambda _step: bar.advance())
            run = job.pipe.run(plan, None if video is None else video.frames, job.sampling, callback)
            for chunk in run:
                writer.write(chunk.frames)
                nfe += chunk.nfe
    summary = {
        "command": command, "output": output, "frames": plan.length, "generated": generated,
        "fps": float(fps), "width": fmt.width, "height": fmt.height, "channels": fmt.channels,
        "nfe": nfe, "windows": len(plan.windows), "seconds": job.reporter.seconds(), "seed": run.seed,
        "sampler": job.sampling.sampler, "steps": job.sampling.steps, "device": str(job.pipe.device),
    }
    job.reporter.result(summary, f"wrote {output}: {plan.length} frames ({generated} generated, NFE {nfe}) "
                                 f"at {float(fps):g} fps, {fmt.width}x{fmt.height}, {summary['seconds']:.1f} s, seed {run.seed}")


def _dry_run(job: Job, plan: Plan, settings) -> None:
    job.reporter.data({"window": settings.window, "mode": settings.mode, "context": settings.context,
                       "stride": settings.stride, "steps": job.sampling.steps, **plan.to_dict()})


# ---- sampling commands ---------------------------------------------------------------------------


def generate(
    output: opt.Output = None, frames: opt.Frames = 16, weights: opt.Weights = None, mode: opt.Mode = "ar",
    sampler: opt.Sampler = "mgm", steps: opt.Steps = 20, context: opt.Context = None, stride: opt.Stride = None,
    seed: opt.Seed = None, noise: opt.Noise = None, temperature: opt.Temperature = 1.0, fps: opt.Fps = None, device: opt.Device = "auto", precision: opt.Precision = "auto",
    json_: opt.Json = False, quiet: opt.Quiet = False, overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Generate a video from nothing.

    Examples:

      maskflow generate -o digits.mp4 --frames 48 --seed 1

      maskflow generate -o - --frames 160 | ffplay -
    """
    rate = _fps_option(fps)
    if not dry_run:
        output = _require_output(output)
        _check_video_output(output, overwrite, json_, [])
    job = _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet)
    settings = window_settings(job.pipe.window, mode, context, stride)
    plan = plan_generate(frames, settings)
    if dry_run:
        return _dry_run(job, plan, settings)
    _execute(job, "generate", plan, None, output, _fps(rate, job.pipe.fps, "the weights'"), [], overwrite)


def extend(
    input: opt.Input, output: opt.Output = None, frames: opt.Frames = 16, weights: opt.Weights = None,
    mode: opt.Mode = "ar", sampler: opt.Sampler = "mgm", steps: opt.Steps = 20, context: opt.Context = None,
    stride: opt.Stride = None, seed: opt.Seed = None, noise: opt.Noise = None, temperature: opt.Temperature = 1.0, fps: opt.Fps = None, device: opt.Device = "auto",
    precision: opt.Precision = "auto", json_: opt.Json = False, quiet: opt.Quiet = False,
    overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Continue a video by --frames new frames (the output holds the input's frames, then the new ones).

    Examples:

      maskflow extend clip.mp4 --frames 32 -o longer.mp4

      cat clip.mkv | maskflow extend - --frames 16 -o - | ffplay -
    """
    rate = _fps_option(fps)
    if not dry_run:
        output = _require_output(output)
        _check_video_output(output, overwrite, json_, [input])
    job = _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet)
    settings = window_settings(job.pipe.window, mode, context, stride)
    check_frame_count(frames)  # --frames checked before the input is read
    if settings.mode == "full":
        plan_extend(1, frames, settings)  # one window: does --frames fit it?
    video = _read_input(job.reporter, input, job.pipe.frame_format)
    plan = plan_extend(len(video.frames), frames, settings)
    if dry_run:
        return _dry_run(job, plan, settings)
    rate = _fps(rate, video.fps, "the input's") if video.fps else _fps(rate, job.pipe.fps, "the weights'")
    _execute(job, "extend", plan, video, output, rate, [input], overwrite)


def infill(
    input: opt.Input, ranges: opt.Ranges, output: opt.Output = None, weights: opt.Weights = None,
    mode: opt.Mode = "ar", sampler: opt.Sampler = "mgm", steps: opt.Steps = 20, context: opt.Context = None,
    stride: opt.Stride = None, seed: opt.Seed = None, noise: opt.Noise = None, temperature: opt.Temperature = 1.0, fps: opt.Fps = None, device: opt.Device = "auto",
    precision: opt.Precision = "auto", json_: opt.Json = False, quiet: opt.Quiet = False,
    overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Regenerate frame ranges of a video from the frames on both sides of each.

    RANGES are 0-based and end-exclusive like Python slices: 10:20 is frames 10..19; 10: runs to the
    end, :5 is frames 0..4, 7 is frame 7 alone. Frames outside the ranges are passed through.

    Examples:

      maskflow infill clip.mp4 10:20 -o fixed.mp4

      maskflow infill clip.mkv 4:8 30:34 --mode full -o fixed.mkv
    """
    rate = _fps_option(fps)
    check_ranges(ranges)  # all but the input's length, before any work
    if not dry_run:
        output = _require_output(output)
        _check_video_output(output, overwrite, json_, [input])
    job = _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet)
    settings = window_settings(job.pipe.window, mode, context, stride)
    video = _read_input(job.reporter, input, job.pipe.frame_format)
    plan = plan_infill(len(video.frames), parse_ranges(ranges, len(video.frames)), settings)
    if dry_run:
        return _dry_run(job, plan, settings)
    rate = _fps(rate, video.fps, "the input's") if video.fps else _fps(rate, job.pipe.fps, "the weights'")
    _execute(job, "infill", plan, video, output, rate, [input], overwrite)


# ---- tokens and weights --------------------------------------------------------------------------


def _tokenizer(weights: str | None, device: str) -> tuple[FrameTokenizer, torch.device]:
    dev = resolve_device(device)
    return load_tokenizer(weights).to(dev), dev


def encode(
    input: opt.Input, output: opt.Output = None, weights: opt.Weights = None, device: opt.Device = "auto",
    json_: opt.Json = False, quiet: opt.Quiet = False, overwrite: opt.Overwrite = False,
) -> None:
    """Turn a video into a tokens file (safetensors) with the tokenizer of --weights.

    Example:

      maskflow encode clip.mp4 -o clip.tokens.safetensors
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    output = _require_output(output)
    check_not_input(output, [input])
    token_files.check_tokens_output(output, overwrite)  # before any work
    tokenizer, dev = _tokenizer(weights, device)
    cfg = tokenizer.config
    video = _read_input(reporter, input, FrameFormat.of(cfg))
    tokens = encode_frames(tokenizer, video.frames, dev)  # [T,H,W]
    fps = video.fps or DEFAULT_FPS
    token_files.save_tokens(output, tokens, fps, cfg, overwrite=overwrite)
    summary = {"command": "encode", "output": output, "frames": len(tokens), "tokens": list(tokens.shape[1:]),
               "vocab_size": cfg.vocab_size, "fps": float(fps), "seconds": reporter.seconds()}
    reporter.result(summary, f"wrote {output}: {len(tokens)} frames of {tokens.shape[1]}x{tokens.shape[2]} tokens")


def decode(
    input: opt.TokensInput, output: opt.Output = None, weights: opt.Weights = None, fps: opt.Fps = None,
    device: opt.Device = "auto", json_: opt.Json = False, quiet: opt.Quiet = False, overwrite: opt.Overwrite = False,
) -> None:
    """Turn a tokens file back into a video (the tokenizer's reconstruction).

    Example:

      maskflow decode clip.tokens.safetensors -o reconstruction.mkv
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    output = _require_output(output)
    rate = _fps_option(fps)
    _check_video_output(output, overwrite, json_, [input])
    tokenizer, dev = _tokenizer(weights, device)
    cfg = tokenizer.config
    tokens, stored_fps = token_files.load_tokens(input, cfg)
    rate = _fps(rate, stored_fps, "the tokens file's")
    with open_writer(output, FrameFormat.of(cfg), rate, overwrite=overwrite) as writer:
        for start in range(0, len(tokens), CODEC_BATCH):
            writer.write(decode_tokens(tokenizer, tokens[start : start + CODEC_BATCH], dev))
    summary = {"command": "decode", "output": output, "frames": len(tokens), "fps": float(rate),
               "width": cfg.width, "height": cfg.height, "seconds": reporter.seconds()}
    reporter.result(summary, f"wrote {output}: {len(tokens)} frames at {float(rate):g} fps")


def info(weights: opt.Weights = None, json_: opt.Json = False) -> None:
    """Show what a set of weights is: components, configuration, parameters, frame size, window.

    Examples:

      maskflow info

      maskflow info --weights hf://owner/repo --json
    """
    components = inspect_weights(weights)
    payload = {
        kind: {"file": str(c.file), "parameters": c.parameters, "config": c.config.__dict__, "info": c.info}
        for kind, c in components.items()
    }
    if json_:
        return Reporter(json_output=True).data(payload)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for kind, entry in payload.items():
        table = Table(title=f"{kind}  ({entry['parameters']:,} parameters)  {entry['file']}", show_header=False, title_justify="left")
        for key, value in {**entry["config"], **entry["info"]}.items():
            table.add_row(key, str(value))
        if kind == "tokenizer":
            c = components[kind].config
            table.add_row("vocab_size", str(c.vocab_size))
            table.add_row("tokens per frame", f"{c.token_height}x{c.token_width}")
        console.print(table)
