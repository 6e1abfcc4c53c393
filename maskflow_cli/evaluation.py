"""Quality measures and the evaluation suites behind ``maskflow eval``.

Metrics (frames uint8, compared in [0, 1]):
- per-frame MSE summed over the pixels (the Moving MNIST literature's convention), PSNR, SSIM;
- frame statistics for long-horizon drift: ink mass, crisp-pixel fraction, digit blobs; for RGB
  video also colour (histogram distance from the real frames) and sharpness.

Suites, each a function returning a JSON-ready dict tagged with how it sampled:
- tokenizer reconstruction; continuation (given -> future frames); long horizon (generate and extend
  to many windows, statistics per 16-frame bin against real sequences); infill (gaps between real
  frames, against repeat-nearest and cross-fade baselines).
Sequences are sampled in batches that share one window plan (the plan the pipeline would run for
each) through the rollout engine (engine.py) that the pipeline uses too, so a batch costs one
network call per step.

Axis legend: B sequences, T frames, Y, X pixels, C channels, H, W token grid.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from .data import load_training_clips, moving_mnist
from .errors import InvalidArgumentError
from .engine import SEED_LIMIT, SamplingOptions, roll_out
from .pipeline import MaskFlowPipeline
from .planner import Plan, WindowSettings, plan_extend, plan_generate, plan_infill
from .runtime import decode_tokens, encode_frames
from .tokenizer import FrameTokenizer
from .video_io import FrameFormat

BIN = 16  # frames per long-horizon statistics bin
INK = 0.1  # a pixel above this is ink
SOLID = 0.5  # ... and above this, solid ink (crisp); solid pixels form the blobs that are counted
MIN_BLOB = 8  # pixels: smaller solid components are specks, not digits


# ---- metrics -------------------------------------------------------------------------------------


def _unit(frames: Tensor) -> Tensor:
    return frames.float() / 255


def frame_mse(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame squared error summed over pixels in [0, 1], [B,T]."""
    return (_unit(prediction) - _unit(target)).square().flatten(2).sum(-1)


def frame_psnr(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame PSNR in dB (peak 1), [B,T]; capped at 100 dB."""
    mse = (_unit(prediction) - _unit(target)).square().flatten(2).mean(-1).clamp(min=1e-10)
    return (10 * torch.log10(1 / mse)).clamp(max=100.0)


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> Tensor:
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma**2))
    g = g / g.sum()
    return torch.outer(g, g)[None, None]  # [1,1,size,size]


def frame_ssim(prediction: Tensor, target: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] pair -> per-frame SSIM, [B,T] (Wang et al. 2004: 11×11 Gaussian window,
    σ = 1.5, K1 = 0.01, K2 = 0.03, peak 1; valid positions only, averaged over positions and channels)."""
    b, t, y, x, c = prediction.shape
    p = _unit(prediction).permute(0, 1, 4, 2, 3).reshape(b * t * c, 1, y, x)
    q = _unit(target).permute(0, 1, 4, 2, 3).reshape(b * t * c, 1, y, x)
    w = _gaussian_window(min(11, y, x))
    mu_p, mu_q = F.conv2d(p, w), F.conv2d(q, w)
    var_p = F.conv2d(p * p, w) - mu_p.square()
    var_q = F.conv2d(q * q, w) - mu_q.square()
    cov = F.conv2d(p * q, w) - mu_p * mu_q
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_p * mu_q + c1) * (2 * cov + c2)) / ((mu_p.square() + mu_q.square() + c1) * (var_p + var_q + c2))
    return ssim.flatten(1).mean(-1).view(b, t, c).mean(-1)


def count_blobs(solid: Tensor) -> Tensor:
    """bool [N,Y,X] -> long [N]: 8-connected components of at least MIN_BLOB pixels.

    Labels spread by 3×3 max-pooling inside the mask until nothing changes."""
    n, y, x = solid.shape
    labels = torch.arange(1, y * x + 1, dtype=torch.float32).view(1, y, x).expand(n, y, x) * solid  # [N,Y,X]
    while True:
        grown = F.max_pool2d(labels[:, None], 3, stride=1, padding=1)[:, 0] * solid
        if torch.equal(grown, labels):
            break
        labels = grown
    counts = []
    for frame in labels.long():
        _, sizes = torch.unique(frame[frame > 0], return_counts=True)
        counts.append(int((sizes >= MIN_BLOB).sum()))
    return torch.tensor(counts)


def frame_stats(frames: Tensor) -> dict[str, Tensor]:
    """uint8 [B,T,Y,X,C] -> per-frame statistics, each [B,T]:
    ink (sum of pixel values in [0, 1]), crisp (solid pixels / ink pixels; blur lowers it) and
    blobs (solid components of at least MIN_BLOB pixels: about the number of visible digits)."""
    gray = _unit(frames).mean(-1)  # [B,T,Y,X]
    ink = (gray > INK).flatten(2).sum(-1).float()
    solid = gray > SOLID
    crisp = solid.flatten(2).sum(-1).float() / ink.clamp(min=1)
    blobs = count_blobs(solid.flatten(0, 1)).view(gray.shape[:2]).float()
    return {"ink": gray.flatten(2).sum(-1), "crisp": crisp, "blobs": blobs}


COLOUR_LEVELS = 4  # per RGB channel: 64 joint colour bins for the colour histograms


def colour_histograms(frames: Tensor) -> Tensor:
    """uint8 RGB [B,T,Y,X,3] -> each frame's joint colour histogram, COLOUR_LEVELS per channel,
    normalised to sum 1: [B,T,COLOUR_LEVELS**3]."""
    levels = (frames.long() * COLOUR_LEVELS) // 256  # [B,T,Y,X,3] in 0..L-1
    index = ((levels[..., 0] * COLOUR_LEVELS + levels[..., 1]) * COLOUR_LEVELS + levels[..., 2]).flatten(2)  # [B,T,P]
    counts = torch.zeros(*index.shape[:2], COLOUR_LEVELS**3).scatter_add_(2, index, torch.ones(index.shape))
    return counts / index.shape[-1]


def sharpness(frames: Tensor) -> Tensor:
    """uint8 [B,T,Y,X,C] -> mean absolute difference of neighbouring pixels (luma in [0, 1], both
    directions), [B,T]: edges and textures raise it, blur lowers it."""
    luma = _unit(frames).mean(-1)  # [B,T,Y,X]
    dy = (luma[:, :, 1:] - luma[:, :, :-1]).abs().flatten(2).mean(-1)
    dx = (luma[:, :, :, 1:] - luma[:, :, :, :-1]).abs().flatten(2).mean(-1)
    return (dx + dy) / 2


def world_stats(frames: Tensor, reference: Tensor) -> dict[str, Tensor]:
    """Drift statistics of RGB first-person video, uint8 [B,T,Y,X,3], each per frame [B,T]: colour
    (total-variation distance, 0..1, of the frame's colour histogram from ``reference`` [L**3], the
    histogram of all real frames) and sharpness. Means per bin are taken later; the colour distance
    of a bin is then the mean of its frames' distances."""
    colour = 0.5 * (colour_histograms(frames) - reference).abs().sum(-1)  # [B,T]
    return {"colour": colour, "sharpness": sharpness(frames)}


def summarize(values: Tensor) -> dict:
    """Mean and 95% half-width of a 1-d tensor of per-sequence values."""
    n = values.numel()
    std = float(values.std()) if n > 1 else 0.0
    return {"mean": round(float(values.mean()), 3), "ci95": round(1.96 * std / math.sqrt(max(n, 1)), 3), "n": n}


def scores(prediction: Tensor, target: Tensor) -> dict:
    """MSE, PSNR and SSIM of uint8 [B,T,...] against the truth: per-sequence summaries and per-frame means."""
    out = {}
    for name, metric in (("mse", frame_mse), ("psnr", frame_psnr), ("ssim", frame_ssim)):
        values = metric(prediction, target)  # [B,T]
        out[name] = summarize(values.mean(1))
        out[f"{name}_per_frame"] = [round(float(v), 4) for v in values.mean(0)]
    return out


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
    for window, kept in roll_out(plan, denoiser, options, seed, lambda frames: known[:, frames], batch=batch):
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


SIZES = {
    "quick": EvalSize(tokenizer_frames=200, continuation_sequences=2, horizon_sequences=1, horizon_windows=2, infill_sequences=2, batch=2),
    "full": EvalSize(tokenizer_frames=2000, continuation_sequences=64, horizon_sequences=4, horizon_windows=10, infill_sequences=32, batch=16),
}
GIVEN, FUTURE = 10, 10  # continuation: 10 given -> 10 generated frames (the Moving MNIST convention)
INFILL_CLIP = 20  # frames of an infill test clip
INFILL_GAPS = (4, 8)


def _tags(settings: WindowSettings, options: SamplingOptions, nfe: int | float, seconds: float) -> dict:
    """How a section sampled; the sampler-specific options only where they differ from the defaults."""
    extra = {} if options.noise is None else {"noise": options.noise}
    if options.temperature != 1.0:
        extra["temperature"] = options.temperature
    if options.guidance:
        extra["guidance"] = options.guidance
    return {"sampler": options.sampler, "steps": options.steps, **extra, "mode": settings.mode, "context": settings.context,
            "stride": settings.stride, "seed": options.seed, "nfe_per_sequence": nfe, "seconds": round(seconds, 2)}


def tokenizer_suite(tokenizer: FrameTokenizer, frames: Tensor, device: torch.device) -> dict:
    """Reconstruction quality of uint8 [N,Y,X,C] real frames: PSNR and SSIM (mean over frames)."""
    recon = decode_tokens(tokenizer, encode_frames(tokenizer, frames, device), device)
    return {"frames": len(frames), "psnr": summarize(frame_psnr(recon[None], frames[None])[0]),
            "ssim": summarize(frame_ssim(recon[None], frames[None])[0])}


def reconstruction_psnr(tokenizer: FrameTokenizer, frames: Tensor, device: torch.device) -> float:
    """Mean PSNR of decode(encode(frames)) for uint8 [N,Y,X,C] frames."""
    return tokenizer_suite(tokenizer, frames, device)["psnr"]["mean"]


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


def horizon_suite(pipe: MaskFlowPipeline, real: Tensor, settings: WindowSettings, options: SamplingOptions, batch: int) -> dict:
    """Drift over long videos: ``generate`` and ``extend`` (from the first GIVEN real frames) to the
    length of the uint8 [N,L,...] real sequences, with frame statistics per BIN-frame bin for both
    and for the real sequences."""
    options = options.resolved()  # seed None: one fresh seed, reported in the tags
    count, length = real.shape[:2]
    fmt = pipe.frame_format
    rgb = real.shape[-1] == 3  # colour and sharpness beside the digit statistics (first-person worlds)
    reference = colour_histograms(real).mean((0, 1)) if rgb else None  # [L**3]

    def stats(video: Tensor) -> dict[str, Tensor]:
        return {**frame_stats(video), **(world_stats(video, reference) if rgb else {})}

    out = {"frames": length, "sequences": count, "bin": BIN, "real": _binned(stats(real))}
    runs = {
        "generate": (plan_generate(length, settings), torch.empty((count, 0, fmt.height, fmt.width, fmt.channels), dtype=torch.uint8)),
        "extend": (plan_extend(GIVEN, length - GIVEN, settings), real[:, :GIVEN]),
    }
    for name, (plan, given) in runs.items():
        started = time.perf_counter()
        video, nfe = sample_videos(pipe, plan, options, given, batch)
        out[name] = {**_tags(settings, options, nfe, time.perf_counter() - started), **_binned(stats(video))}
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


# ---- the whole evaluation ------------------------------------------------------------------------

SUITES = ("tokenizer", "continuation", "horizon", "infill")


def held_out_sequences(data: str | None, frames: int, count: int, fmt: FrameFormat, seed: int) -> Tensor:
    """``count`` held-out sequences of ``frames`` frames, uint8 [N,frames,Y,X,C] at ``fmt``.

    ``data`` None: Moving MNIST made from the reserved test digits only (``seed`` picks them).
    Otherwise a clips file or a folder of videos, cut into clips; the first ``count`` are used."""
    if data is None:
        if fmt.height != fmt.width:
            raise InvalidArgumentError("data", None, f"Moving MNIST is square, the model's frames are {fmt.width}x{fmt.height}; give {{param:data}}")
        clips = moving_mnist(count, frames, seed=seed, split="test", size=fmt.height).frames  # [N,T,S,S,1]
        return clips.expand(*clips.shape[:-1], fmt.channels).contiguous()
    return load_training_clips(data, frames, fmt)[:count]


def evaluate(pipe: MaskFlowPipeline | None, tokenizer: FrameTokenizer, device: torch.device, *, data: str | None, size: EvalSize,
             suites: tuple[str, ...], settings: WindowSettings | None, options: SamplingOptions, data_seed: int,
             log: Callable[[str], None] = lambda _: None) -> dict:
    """Run the chosen suites; ``pipe`` may be None for tokenizer-only weights (then only the
    tokenizer suite runs). Returns one JSON-ready dict with a section per suite; ``options.seed``
    None draws one fresh seed for all suites (each section reports it)."""
    options = options.resolved()
    fmt = FrameFormat.of(tokenizer.config)
    result: dict = {"size": size.__dict__, "data": data or "moving-mnist test digits", "data_seed": data_seed}
    if "tokenizer" in suites:
        log("tokenizer reconstruction")
        clips = held_out_sequences(data, GIVEN + FUTURE, math.ceil(size.tokenizer_frames / (GIVEN + FUTURE)), fmt, data_seed)
        result["tokenizer"] = tokenizer_suite(tokenizer, clips.flatten(0, 1)[: size.tokenizer_frames], device)
    if pipe is None or settings is None:
        return result
    if "continuation" in suites:
        log(f"continuation {GIVEN} -> {FUTURE}")
        clips = held_out_sequences(data, GIVEN + FUTURE, size.continuation_sequences, fmt, data_seed)
        result["continuation"] = continuation_suite(pipe, clips, settings, options, size.batch)
    if "horizon" in suites:
        length = size.horizon_windows * pipe.window
        log(f"long horizon: {length} frames")
        real = held_out_sequences(data, length, size.horizon_sequences, fmt, data_seed + 1)
        result["horizon"] = horizon_suite(pipe, real, settings, options, size.batch)
    if "infill" in suites:
        log(f"infill gaps of {', '.join(map(str, INFILL_GAPS))} frames")
        clips = held_out_sequences(data, INFILL_CLIP, size.infill_sequences, fmt, data_seed + 2)
        result["infill"] = infill_suite(pipe, clips, settings, options, size.batch)
    return result
