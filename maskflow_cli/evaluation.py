"""The evaluation suites behind ``maskflow eval``.

Suites, each a function returning a JSON-ready dict tagged with how it sampled:
- tokenizer reconstruction; continuation (given -> future frames); long horizon (generate and extend
  to many windows, drift statistics per 16-frame bin against real sequences: those of the worlds,
  worlds/__init__.py); infill (gaps between real frames, against repeat-nearest and cross-fade
  baselines); with a detector, FVD of generated against held-out clips (fvd.py).
The measures themselves are in metrics.py. The default test data is the held-out set of a world
(``evaluate``'s ``world``; the default world's unless told). Sequences are sampled in batches that
share one window plan (the plan the pipeline would run for each) through the rollout engine
(engine.py) that the pipeline uses too, so a batch costs one network call per step.

Axis legend: B sequences, T frames, Y, X pixels, C channels, H, W token grid.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from .clips import load_training_clips
from .errors import InvalidArgumentError
from .engine import SEED_LIMIT, SamplingOptions, roll_out
from .fvd import FVD_FRAMES, FVD_RESOLUTION, fvd, video_features
from .metrics import frame_psnr, frame_ssim, reconstruct, scores, summarize
from .pipeline import MaskFlowPipeline
from .planner import Plan, WindowSettings, plan_extend, plan_generate, plan_infill
from .tokenizer import FrameTokenizer
from .video_io import FrameFormat
from .worlds import DEFAULT_WORLD, drift_stats, world_named

BIN = 16  # frames per long-horizon statistics bin


# ---- batched sampling ----------------------------------------------------------------------------


def sample_videos(pipe: MaskFlowPipeline, plan: Plan, options: SamplingOptions, videos: Tensor, batch: int) -> tuple[Tensor, int | float]:
    """Run one plan for N videos through the rollout engine, ``batch`` at a time.

    ``videos`` uint8 [N,T0,Y,X,C] holds the frames the plan's ``given`` runs refer to (T0 may be 0
    for ``generate``); ``options.seed`` must be set (see SamplingOptions.resolved): the batch
    starting at video i samples with seed + i. Returns the output videos uint8
    [N,plan.length,Y,X,C] (given frames passed through) and the NFE per video, summed over the
    batches (a batch shares its network calls) and averaged over the videos."""
    assert options.seed is not None, "sample with resolved options"
    outs, calls = [], 0
    for i in range(0, len(videos), batch):
        part = videos[i : i + batch]
        out, nfe = _sample_batch(pipe, plan, options, (options.seed + i) % SEED_LIMIT, part)
        outs.append(out)
        calls += nfe * len(part)
    per_video = calls / max(len(videos), 1)
    return torch.cat(outs), int(per_video) if per_video.is_integer() else round(per_video, 2)


def _sample_batch(pipe: MaskFlowPipeline, plan: Plan, options: SamplingOptions, seed: int, video: Tensor) -> tuple[Tensor, int]:
    """One batch of B videos uint8 [B,T0,...] through the engine -> uint8 [B,plan.length,...], NFE."""
    batch = video.shape[0]
    given = [i for a, b in plan.given for i in range(a, b)]
    height, width = pipe.transformer.config.grid_height, pipe.transformer.config.grid_width
    known = torch.empty((batch, plan.length, height, width), dtype=torch.long)  # [B,T,H,W], given frames' tokens
    if given:
        known[:, given] = pipe.encode(video[:, given].flatten(0, 1)).view(batch, len(given), height, width)
    denoiser = pipe.denoiser()
    made = {}  # frame -> long [B,H,W]
    for window, kept in roll_out(plan, denoiser, options, seed, lambda frames: known[:, frames], batch=batch, token_intensity=pipe.token_intensity):
        made.update(zip(window.keep, kept.unbind(1)))
    fmt = pipe.frame_format
    frames = torch.empty((batch, plan.length, *fmt.shape), dtype=torch.uint8)
    new = [i for i in range(plan.length) if i not in set(given)]
    if given:
        frames[:, given] = video[:, given]
    if new:
        decoded = pipe.decode(torch.stack([made[i] for i in new], 1).flatten(0, 1))
        frames[:, new] = decoded.view(batch, len(new), *decoded.shape[1:])
    return frames, denoiser.calls


# ---- suites --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalSize:
    """How much each suite measures; ``quick`` runs in about a minute on two cores."""

    tokenizer_frames: int
    continuation_sequences: int
    horizon_sequences: int
    horizon_windows: int  # long-horizon videos are this many model windows long (10 in the full size)
    infill_sequences: int
    batch: int  # sequences sampled together
    fvd_clips: int  # generated and real clips each, when an FVD detector is given


SIZES = {
    "quick": EvalSize(tokenizer_frames=200, continuation_sequences=2, horizon_sequences=1, horizon_windows=2, infill_sequences=2, batch=2,
                      fvd_clips=4),
    "full": EvalSize(tokenizer_frames=2000, continuation_sequences=64, horizon_sequences=4, horizon_windows=10, infill_sequences=32, batch=16,
                     fvd_clips=256),
}
GIVEN, FUTURE = 10, 10  # continuation: 10 given -> 10 generated frames (the Moving MNIST convention)
INFILL_CLIP = 20  # frames of an infill test clip
INFILL_GAPS = (4, 8)


def _tags(settings: WindowSettings, options: SamplingOptions, nfe: int | float, seconds: float) -> dict:
    """How a section sampled; the sampler-specific options only where they differ from the defaults."""
    extra = {} if options.noise is None else {"noise": options.noise}
    if options.temperature_for(True) != 1.0:
        extra["temperature"] = options.temperature_for(True)  # given frames (generate's: temperature_for(False))
    if options.guidance:
        extra["guidance"] = options.guidance
        if options.anchor:
            extra["guidance_anchor"] = options.anchor
    return {"sampler": options.sampler, "steps": options.steps, **extra, "mode": settings.mode, "context": settings.context,
            "stride": settings.stride, "seed": options.seed, "nfe_per_sequence": nfe, "seconds": round(seconds, 2)}


def tokenizer_suite(tokenizer: FrameTokenizer, frames: Tensor, device: torch.device) -> dict:
    """Reconstruction quality of uint8 [N,Y,X,C] real frames: PSNR and SSIM (mean over frames)."""
    recon = reconstruct(tokenizer, frames, device)
    return {"frames": len(frames), "psnr": summarize(frame_psnr(recon[None], frames[None])[0]),
            "ssim": summarize(frame_ssim(recon[None], frames[None])[0])}


def continuation_suite(pipe: MaskFlowPipeline, clips: Tensor, settings: WindowSettings, options: SamplingOptions, batch: int) -> dict:
    """Given the first GIVEN frames of each uint8 [N,GIVEN+FUTURE,...] clip, predict the rest; score
    against the truth and the copy-last-frame and all-black baselines."""
    options = options.resolved()  # seed None: one fresh seed, reported in the tags
    given, target = clips[:, :GIVEN], clips[:, GIVEN : GIVEN + FUTURE]
    started = time.perf_counter()
    video, nfe = sample_videos(pipe, plan_extend(GIVEN, FUTURE, settings), options, given, batch)
    seconds = time.perf_counter() - started
    baselines = {"copy_last": given[:, -1:].expand_as(target), "black": torch.zeros_like(target)}
    return {"given": GIVEN, "future": FUTURE, "sequences": len(clips), **_tags(settings, options, nfe, seconds),
            "maskflow": scores(video[:, GIVEN:], target), **{k: scores(v, target) for k, v in baselines.items()}}


def _binned(stats: dict[str, Tensor]) -> dict[str, list[float]]:
    """Per-frame statistics [B,T] -> means per BIN-frame bin (the last bin may be shorter)."""
    return {k: [round(float(v[:, i : i + BIN].mean()), 3) for i in range(0, v.shape[1], BIN)] for k, v in stats.items()}


def horizon_suite(pipe: MaskFlowPipeline, real: Tensor, settings: WindowSettings, options: SamplingOptions, batch: int,
                  runs: Sequence[str] = ("generate", "extend")) -> dict:
    """Drift over long videos: ``generate`` and ``extend`` (from the first GIVEN real frames; ``runs``
    names which) to the length of the uint8 [N,L,...] real sequences, with the worlds' drift statistics
    (``worlds.drift_stats``) per BIN-frame bin for each and for the real sequences."""
    options = options.resolved()  # seed None: one fresh seed, reported in the tags
    count, length = real.shape[:2]
    fmt = pipe.frame_format
    out = {"frames": length, "sequences": count, "bin": BIN, "real": _binned(drift_stats(real, real))}
    plans = {
        "generate": (plan_generate(length, settings), torch.empty((count, 0, fmt.height, fmt.width, fmt.channels), dtype=torch.uint8)),
        "extend": (plan_extend(GIVEN, length - GIVEN, settings), real[:, :GIVEN]),
    }
    for name, (plan, given) in plans.items():
        if name not in runs:
            continue
        started = time.perf_counter()
        video, nfe = sample_videos(pipe, plan, options, given, batch)
        out[name] = {**_tags(settings, options, nfe, time.perf_counter() - started), **_binned(drift_stats(video, real))}
    return out


def infill_baselines(clips: Tensor, a: int, b: int) -> dict[str, Tensor]:
    """Fill frames [a, b) of uint8 [N,T,...] from frames a-1 and b: repeat the nearest (ties go
    left) and a linear cross-fade. -> name: uint8 [N,b-a,...]."""
    left, right = clips[:, a - 1 : a].float(), clips[:, b : b + 1].float()
    frac = torch.arange(1, b - a + 1, dtype=torch.float32) / (b - a + 1)  # [G]
    frac = frac.view(1, -1, *[1] * (clips.dim() - 2))
    nearest = torch.where(frac <= 0.5, left, right)
    fade = (1 - frac) * left + frac * right
    return {"repeat_nearest": nearest.round().to(torch.uint8), "crossfade": fade.round().to(torch.uint8)}


def infill_suite(pipe: MaskFlowPipeline, clips: Tensor, settings: WindowSettings, options: SamplingOptions, batch: int) -> dict:
    """For each gap size: blank the middle frames of uint8 [N,INFILL_CLIP,...] clips, infill them
    from both sides and score against the truth and the baselines."""
    options = options.resolved()  # seed None: one fresh seed, reported in the tags
    length = clips.shape[1]
    out = {}
    for gap in INFILL_GAPS:
        a = (length - gap) // 2
        b = a + gap
        started = time.perf_counter()
        video, nfe = sample_videos(pipe, plan_infill(length, [(a, b)], settings), options, clips, batch)
        target = clips[:, a:b]
        out[f"gap_{gap}"] = {"range": [a, b], **_tags(settings, options, nfe, time.perf_counter() - started),
                             "maskflow": scores(video[:, a:b], target),
                             **{k: scores(v, target) for k, v in infill_baselines(clips, a, b).items()}}
    return out


def fvd_suite(pipe: MaskFlowPipeline, real: Tensor, detector: torch.jit.ScriptModule, settings: WindowSettings,
              options: SamplingOptions, batch: int) -> dict:
    """FVD of as many clips made by ``generate`` (from nothing) as there are uint8 [N,FVD_FRAMES,...]
    real clips, against them, with the I3D ``detector`` (fvd.py's protocol)."""
    options = options.resolved()  # seed None: one fresh seed, reported in the tags
    count, length = real.shape[:2]
    fmt = pipe.frame_format
    started = time.perf_counter()
    nothing = torch.empty((count, 0, fmt.height, fmt.width, fmt.channels), dtype=torch.uint8)
    video, nfe = sample_videos(pipe, plan_generate(length, settings), options, nothing, batch)
    seconds = time.perf_counter() - started
    real_features = video_features(detector, real, pipe.device, batch)
    made_features = video_features(detector, video, pipe.device, batch)
    return {"clips": count, "frames": length, "resolution": FVD_RESOLUTION, "features": real_features.shape[1],
            **_tags(settings, options, nfe, seconds), "maskflow": round(fvd(real_features, made_features), 3)}


# ---- the whole evaluation ------------------------------------------------------------------------

def held_out_sequences(data: str | None, frames: int, count: int, fmt: FrameFormat, seed: int,
                       world: str = DEFAULT_WORLD) -> Tensor:
    """``count`` held-out sequences of ``frames`` frames, uint8 [N,frames,Y,X,C] at ``fmt``.

    ``data`` None: the held-out set of the world ``world`` (``seed`` picks the sequences; for
    Moving MNIST, sequences made from the reserved test digits only). Otherwise a clips file or a
    folder of videos, cut into clips; the first ``count`` are used."""
    if data is None:
        return world_named(world).held_out(count, frames, fmt, seed)
    return load_training_clips(data, frames, fmt)[:count]


def evaluate(pipe: MaskFlowPipeline | None, tokenizer: FrameTokenizer, device: torch.device, *, data: str | None, size: EvalSize,
             suites: tuple[str, ...], settings: WindowSettings | None, options: SamplingOptions, data_seed: int,
             world: str = DEFAULT_WORLD, log: Callable[[str], None] = lambda _: None,
             detector: torch.jit.ScriptModule | None = None) -> dict:
    """Run the chosen suites; ``pipe`` may be None for tokenizer-only weights (then only the
    tokenizer suite runs); the suite ``fvd`` needs an I3D ``detector`` (fvd.load_detector). ``data``
    None tests on the held-out set of the world ``world`` (``worlds.world_of_weights`` tells the
    world of a weights source). Returns one JSON-ready dict
    with a section per suite; ``options.seed`` None draws one fresh seed for all suites (each section
    reports it)."""
    options = options.resolved()
    fmt = FrameFormat.of(tokenizer.config)
    result: dict = {"size": size.__dict__, "data": data or world_named(world).held_out_name, "data_seed": data_seed}
    if "tokenizer" in suites:
        log("tokenizer reconstruction")
        clips = held_out_sequences(data, GIVEN + FUTURE, math.ceil(size.tokenizer_frames / (GIVEN + FUTURE)), fmt, data_seed, world)
        result["tokenizer"] = tokenizer_suite(tokenizer, clips.flatten(0, 1)[: size.tokenizer_frames], device)
    if pipe is None or settings is None:
        return result
    if "continuation" in suites:
        log(f"continuation {GIVEN} -> {FUTURE}")
        clips = held_out_sequences(data, GIVEN + FUTURE, size.continuation_sequences, fmt, data_seed, world)
        result["continuation"] = continuation_suite(pipe, clips, settings, options, size.batch)
    if "horizon" in suites:
        length = size.horizon_windows * pipe.window
        log(f"long horizon: {length} frames")
        real = held_out_sequences(data, length, size.horizon_sequences, fmt, data_seed + 1, world)
        result["horizon"] = horizon_suite(pipe, real, settings, options, size.batch)
    if "infill" in suites:
        log(f"infill gaps of {', '.join(map(str, INFILL_GAPS))} frames")
        clips = held_out_sequences(data, INFILL_CLIP, size.infill_sequences, fmt, data_seed + 2, world)
        result["infill"] = infill_suite(pipe, clips, settings, options, size.batch)
    if "fvd" in suites:
        if detector is None:
            raise InvalidArgumentError("detector", None, "the fvd suite needs an I3D detector (fvd.load_detector)")
        log(f"FVD on {size.fvd_clips} clips of {FVD_FRAMES} frames")
        real = held_out_sequences(data, FVD_FRAMES, size.fvd_clips, fmt, data_seed + 3, world)
        if len(real) < 2:
            raise InvalidArgumentError("data", data, f"holds {len(real)} clip of {FVD_FRAMES} frames; FVD needs at least 2")
        result["fvd"] = fvd_suite(pipe, real, detector, settings, options, size.batch)
    return result
