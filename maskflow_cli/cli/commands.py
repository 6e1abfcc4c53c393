"""The commands. Each one parses its options into library calls; the work lives in the library."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import torch

from .. import token_files
from ..domain import check_domain
from ..errors import InvalidArgumentError, MaskflowError
from ..engine import DEFAULT_STEPS, DEFAULT_TEMPERATURE, SamplingOptions
from ..runtime import DEFAULT_CONTEXT_CACHE
from ..pipeline import DEFAULT_FPS, MaskFlowPipeline
from ..planner import Plan, check_frame_count, check_ranges, parse_ranges, plan_extend, plan_generate, plan_infill, window_settings
from ..video_io import FrameFormat, InputLimits, Video, check_not_input, check_output, open_video, open_writer
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
    weights: str | None  # as given: where the tokenizer's metadata is read for the domain check


def _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet, compile_, context_cache) -> Job:
    reporter = Reporter(json_output=json_, quiet=quiet)
    sampling = SamplingOptions(sampler=sampler, steps=steps, seed=seed, noise=noise, temperature=temperature)  # validate before loading
    with reporter.stage("load"):
        pipe = MaskFlowPipeline.from_weights(weights, device=device, precision=precision, compile=compile_, context_cache=context_cache)
    return Job(pipe, sampling, reporter, weights)


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


class MissingOutputError(MaskflowError):
    """A command that writes a file was not told where (no -o)."""

    exit_code = 2

    def __init__(self, example: str) -> None:
        super().__init__(f"missing option -o/--output: say where to write, e.g. -o {example} (or -o - for a stream on stdout)")


def _require_output(output: str | None, example: str = "out.mp4") -> str:
    if not output:
        raise MissingOutputError(example)
    return output


def _check_video_output(output: str, overwrite: bool, json_: bool, inputs: list[str]) -> None:
    """Refuse an output that could not or may not be written, before any work is done."""
    if output == "-" and json_:
        raise InvalidArgumentError("json", True, "with -o - stdout carries the video; write to a file or drop --json")
    check_not_input(output, inputs)
    check_output(output, overwrite)


def _read_input(reporter: Reporter, source: str, fmt: FrameFormat) -> Video:
    """Decode the whole input at ``fmt`` within the limits of the environment (timed as "read";
    waiting for stdin counts here), with a frame counter on a terminal that moves while it decodes;
    say which stream of several is used."""
    with reporter.stage("read"), reporter.progress(None, f"reading {source}") as bar:
        with open_video(source, fmt, InputLimits.from_env()) as reader:
            if bar is not None and reader.declared_frames:
                bar.set_total(reader.declared_frames)
            frames = []
            for frame in reader:  # uint8 [Y,X,C]
                frames.append(frame)
                if bar is not None:
                    bar.advance()
            video = Video(torch.stack(frames), reader.fps, stream=reader.stream, video_streams=reader.video_streams)  # [T,Y,X,C]
    if video.video_streams > 1:
        reporter.log(f"{source}: {video.video_streams} video streams; using the first (stream #{video.stream})")
    return video


def _check_domain(reporter: Reporter, tokenizer: FrameTokenizer, device: torch.device, weights: str | None, video: Video, source: str) -> dict:
    """Warn (stderr) when the tokenizer reconstructs the first input frames far worse than its own
    domain (see domain.py); the measurement for the JSON summary."""
    with reporter.stage("domain_check"):
        check = check_domain(tokenizer, inspect_weights(weights)["tokenizer"].info, video.frames, device)
    if check.out_of_domain:
        reporter.warn(check.warning(source, _frames_of(tokenizer.config)))
    return check.to_dict()


def _frames_of(config) -> str:
    """What frames a tokenizer takes: '64×64 gray frames'."""
    return f"{config.width}×{config.height} {'gray' if config.channels == 1 else 'colour'} frames"


def _execute(job: Job, command: str, plan: Plan, video: Video | None, output: str, fps: Fraction, inputs: list[str], overwrite: bool,
             extra: dict | None = None) -> None:
    """Sample the plan and stream the frames into the output file. Timings: "sample" is the time
    spent making chunks (network, tokenizer), "write" the rest of the writing block (encoding,
    muxing, the final rename); ``extra`` goes into the JSON summary."""
    if output == "-" and job.reporter.json_output:
        raise InvalidArgumentError("json", True, "with -o - stdout carries the video; write to a file or drop --json")
    check_not_input(output, inputs)
    fmt = job.pipe.frame_format
    generated = sum(len(w.keep) for w in plan.windows)
    nfe, reporter = 0, job.reporter
    with reporter.stage("write", inner="sample"), open_writer(output, fmt, fps, overwrite=overwrite) as writer:
        with reporter.progress(len(plan.windows) * job.sampling.steps, f"{command} {generated} frames") as bar:
            callback = None if bar is None else (lambda _step: bar.advance())
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


def _dry_run(job: Job, plan: Plan, settings) -> None:
    job.reporter.data({"window": settings.window, "mode": settings.mode, "context": settings.context,
                       "stride": settings.stride, "steps": job.sampling.steps, **plan.to_dict()})
    generated = sum(len(w.keep) for w in plan.windows)
    job.reporter.summary_line(f"dry run: {len(plan.windows)} windows would make {generated} of {plan.length} frames "
                              f"(NFE at most {len(plan.windows) * job.sampling.steps}); nothing written, {job.reporter.seconds():.1f} s")


# ---- sampling commands ---------------------------------------------------------------------------


def generate(
    output: opt.Output = None, frames: opt.Frames = 16, weights: opt.Weights = None, mode: opt.Mode = "ar",
    sampler: opt.Sampler = "mgm", steps: opt.Steps = DEFAULT_STEPS, context: opt.Context = None, stride: opt.Stride = None,
    seed: opt.Seed = None, noise: opt.Noise = None, temperature: opt.Temperature = DEFAULT_TEMPERATURE, fps: opt.Fps = None, device: opt.Device = "auto", precision: opt.Precision = "auto",
    compile_: opt.CompileNetwork = False, context_cache: opt.ContextCache = DEFAULT_CONTEXT_CACHE, json_: opt.Json = False, quiet: opt.Quiet = False, overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Generate a video from nothing.

    Examples:

      maskflow generate -o digits.mp4 --frames 48 --seed 1

      maskflow generate -o - --frames 160 | ffplay -
    """
    rate = _fps_option(fps)
    if not dry_run:
        output = _require_output(output, "digits.mp4")
        _check_video_output(output, overwrite, json_, [])
    job = _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet, compile_, context_cache)
    settings = window_settings(job.pipe.window, mode, context, stride)
    plan = plan_generate(frames, settings)
    if dry_run:
        return _dry_run(job, plan, settings)
    _execute(job, "generate", plan, None, output, _fps(rate, job.pipe.fps, "the weights'"), [], overwrite)


def extend(
    input: opt.Input, output: opt.Output = None, frames: opt.Frames = 16, weights: opt.Weights = None,
    mode: opt.Mode = "ar", sampler: opt.Sampler = "mgm", steps: opt.Steps = DEFAULT_STEPS, context: opt.Context = None,
    stride: opt.Stride = None, seed: opt.Seed = None, noise: opt.Noise = None, temperature: opt.Temperature = DEFAULT_TEMPERATURE, fps: opt.Fps = None, device: opt.Device = "auto",
    precision: opt.Precision = "auto", compile_: opt.CompileNetwork = False, context_cache: opt.ContextCache = DEFAULT_CONTEXT_CACHE, json_: opt.Json = False, quiet: opt.Quiet = False,
    overwrite: opt.Overwrite = False, dry_run: opt.DryRun = False,
) -> None:
    """Continue a video by --frames new frames (the output holds the input's frames, then the new ones).

    Examples:

      maskflow extend clip.mp4 --frames 32 -o longer.mp4

      cat clip.mkv | maskflow extend - --frames 16 -o - | ffplay -
    """
    rate = _fps_option(fps)
    if not dry_run:
        output = _require_output(output, "longer.mp4")
        _check_video_output(output, overwrite, json_, [input])
    job = _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet, compile_, context_cache)
    settings = window_settings(job.pipe.window, mode, context, stride)
    check_frame_count(frames)  # --frames checked before the input is read
    if settings.mode == "full":
        plan_extend(1, frames, settings)  # one window: does --frames fit it?
    video = _read_input(job.reporter, input, job.pipe.frame_format)
    plan = plan_extend(len(video.frames), frames, settings)
    if dry_run:
        return _dry_run(job, plan, settings)
    rate = _fps(rate, video.fps, "the input's") if video.fps else _fps(rate, job.pipe.fps, "the weights'")
    domain = _check_domain(job.reporter, job.pipe.tokenizer, job.pipe.device, job.weights, video, input)
    _execute(job, "extend", plan, video, output, rate, [input], overwrite, {"domain": domain})


def infill(
    input: opt.Input, ranges: opt.Ranges, output: opt.Output = None, weights: opt.Weights = None,
    mode: opt.Mode = "ar", sampler: opt.Sampler = "mgm", steps: opt.Steps = DEFAULT_STEPS, context: opt.Context = None,
    stride: opt.Stride = None, seed: opt.Seed = None, noise: opt.Noise = None, temperature: opt.Temperature = DEFAULT_TEMPERATURE, fps: opt.Fps = None, device: opt.Device = "auto",
    precision: opt.Precision = "auto", compile_: opt.CompileNetwork = False, context_cache: opt.ContextCache = DEFAULT_CONTEXT_CACHE, json_: opt.Json = False, quiet: opt.Quiet = False,
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
        output = _require_output(output, "fixed.mp4")
        _check_video_output(output, overwrite, json_, [input])
    job = _job(weights, device, precision, sampler, steps, seed, noise, temperature, json_, quiet, compile_, context_cache)
    settings = window_settings(job.pipe.window, mode, context, stride)
    video = _read_input(job.reporter, input, job.pipe.frame_format)
    plan = plan_infill(len(video.frames), parse_ranges(ranges, len(video.frames)), settings)
    if dry_run:
        return _dry_run(job, plan, settings)
    rate = _fps(rate, video.fps, "the input's") if video.fps else _fps(rate, job.pipe.fps, "the weights'")
    domain = _check_domain(job.reporter, job.pipe.tokenizer, job.pipe.device, job.weights, video, input)
    _execute(job, "infill", plan, video, output, rate, [input], overwrite, {"domain": domain})


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
    output = _require_output(output, "clip.tokens.safetensors")
    check_not_input(output, [input])
    token_files.check_tokens_output(output, overwrite)  # before any work
    with reporter.stage("load"):
        tokenizer, dev = _tokenizer(weights, device)
    cfg = tokenizer.config
    video = _read_input(reporter, input, FrameFormat.of(cfg))
    domain = _check_domain(reporter, tokenizer, dev, weights, video, input)
    with reporter.stage("encode"):
        tokens = encode_frames(tokenizer, video.frames, dev)  # [T,H,W]
    fps = video.fps or DEFAULT_FPS
    with reporter.stage("write"):
        token_files.save_tokens(output, tokens, fps, cfg, overwrite=overwrite)
    summary = {"command": "encode", "output": output, "frames": len(tokens), "tokens": list(tokens.shape[1:]),
               "vocab_size": cfg.vocab_size, "fps": float(fps), "seconds": reporter.seconds(),
               "timings": reporter.stage_seconds(), "domain": domain}
    reporter.result(summary, f"wrote {output}: {len(tokens)} frames of {tokens.shape[1]}x{tokens.shape[2]} tokens "
                             f"at {float(fps):g} fps, {summary['seconds']:.1f} s")


def decode(
    input: opt.TokensInput, output: opt.Output = None, weights: opt.Weights = None, fps: opt.Fps = None,
    device: opt.Device = "auto", json_: opt.Json = False, quiet: opt.Quiet = False, overwrite: opt.Overwrite = False,
) -> None:
    """Turn a tokens file back into a video (the tokenizer's reconstruction).

    Example:

      maskflow decode clip.tokens.safetensors -o reconstruction.mkv
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    output = _require_output(output, "reconstruction.mkv")
    rate = _fps_option(fps)
    _check_video_output(output, overwrite, json_, [input])
    with reporter.stage("load"):
        tokenizer, dev = _tokenizer(weights, device)
    cfg = tokenizer.config
    with reporter.stage("read"):
        tokens, stored_fps = token_files.load_tokens(input, cfg)
    rate = _fps(rate, stored_fps, "the tokens file's")
    with reporter.stage("write", inner="decode"), open_writer(output, FrameFormat.of(cfg), rate, overwrite=overwrite) as writer:
        batches = (tokens[start : start + CODEC_BATCH] for start in range(0, len(tokens), CODEC_BATCH))
        for frames in reporter.timed("decode", (decode_tokens(tokenizer, batch, dev) for batch in batches)):
            writer.write(frames)
    summary = {"command": "decode", "output": output, "frames": len(tokens), "fps": float(rate),
               "width": cfg.width, "height": cfg.height, "seconds": reporter.seconds(), "timings": reporter.stage_seconds()}
    reporter.result(summary, f"wrote {output}: {len(tokens)} frames at {float(rate):g} fps, "
                             f"{cfg.width}x{cfg.height}, {summary['seconds']:.1f} s")


LABELS = {  # what each config field means, for the info tables
    "tokenizer": {"height": "frame height (pixels)", "width": "frame width (pixels)", "channels": "channels (1 gray, 3 colour)",
                  "base_channels": "base conv channels", "channel_multipliers": "channel multipliers per stage",
                  "blocks_per_stage": "blocks per stage", "levels": "FSQ levels per latent channel", "encoder": "encoder"},
    "transformer": {"vocab_size": "vocabulary (codes)", "frames": "window (frames)", "grid_height": "token grid height",
                    "grid_width": "token grid width", "dim": "model width", "depth": "layers", "heads": "attention heads",
                    "mlp_ratio": "MLP ratio", "attention": "attention", "time_conditioning": "timestep-dependent",
                    "scheduler": "masking scheduler", "code_features": "code features (patch size, 0 off)",
                    "code_digits": "code digits (FSQ levels, empty off)"},
}


def _millions(parameters: int) -> str:
    return f"{parameters / 1e6:.1f}M"


def describe_weights(components: dict) -> str:
    """One line: what frames the weights take, their window, vocabulary, sizes and training data."""
    tok, model = components.get("tokenizer"), components.get("transformer")
    parts = []
    if tok is not None:
        parts.append(_frames_of(tok.config))
    if model is not None:
        parts.append(f"{model.config.frames}-frame window")
    if tok is not None:
        parts.append(f"vocabulary {tok.config.vocab_size} ({tok.config.token_width}×{tok.config.token_height} tokens per frame)")
    if model is not None:
        m, fps = model.config, model.info.get("fps")
        parts += [f"{fps:g} fps" if isinstance(fps, (int, float)) else "fps not stored",
                  f"transformer {_millions(model.parameters)} parameters ({m.depth} layers, width {m.dim}, {m.attention} attention, "
                  f"{'timestep-dependent' if m.time_conditioning else 'timestep-independent'})"]
    if tok is not None:
        parts.append(f"tokenizer {_millions(tok.parameters)} parameters")
    trained = [f"{kind} on {comp.info['dataset']}" + (f" ({comp.info['steps']:,} steps)" if isinstance(comp.info.get("steps"), int) else "")
               for kind, comp in components.items() if comp.info.get("dataset")]
    return ", ".join(parts) + ("; trained: " + ", ".join(trained) if trained else "")


def info(weights: opt.Weights = None, json_: opt.Json = False) -> None:
    """Show what a set of weights is: components, configuration, parameters, frame size, window.

    Examples:

      maskflow info

      maskflow info --weights hf://owner/repo --json
    """
    components = inspect_weights(weights)
    summary = describe_weights(components)
    payload = {
        kind: {"file": str(c.file), "parameters": c.parameters, "config": c.config.__dict__, "info": c.info}
        for kind, c in components.items()
    }
    if json_:
        return Reporter(json_output=True).data({"summary": summary, **payload})
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(summary, markup=False, highlight=False, soft_wrap=True)
    for kind, entry in payload.items():
        table = Table(title=f"{kind}  ({entry['parameters']:,} parameters)  {entry['file']}", show_header=False, title_justify="left")
        for key, value in entry["config"].items():
            table.add_row(LABELS.get(kind, {}).get(key, key), str(value))
        if kind == "tokenizer":
            c = components[kind].config
            table.add_row("vocabulary (codes)", str(c.vocab_size))
            table.add_row("tokens per frame", f"{c.token_width}×{c.token_height}")
        for key, value in entry["info"].items():
            table.add_row(f"{key} (stored)", str(value))
        console.print(table)
