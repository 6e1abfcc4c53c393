"""The pipeline: tokenizer + transformer + device, offering generate / extend / infill.

Each method validates its inputs, makes a plan (planner.py) and returns an iterator of ``Chunk``s:
the output video in order, frames handed out as soon as they are final, so a caller can write them
while later windows are still being sampled and memory stays flat in the video's length::

    pipe = MaskFlowPipeline.from_weights("weights/")
    settings = window_settings(pipe.window, "ar")
    video = torch.cat([c.frames for c in pipe.generate(48, settings, SamplingOptions(seed=0))])

Frames are uint8 [T,Y,X,C] at the model's frame format (``pipe.frame_format``); frames given by the
caller are passed through unchanged, generated frames are decoded tokens.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from fractions import Fraction
from typing import Iterator, NamedTuple, Sequence

import torch
from torch import Tensor

from .errors import InvalidArgumentError, WeightsError
from .planner import Plan, Window, WindowSettings, parse_ranges, plan_extend, plan_generate, plan_infill
from .sampling import SAMPLERS, Callback
from .schedules import SCHEDULERS
from .tokenizer import FrameTokenizer
from .transformer import MaskFlowTransformer
from .video_io import FrameFormat
from .weights import Component, load_models

PRECISIONS = ("auto", "bf16", "fp32")
DEFAULT_FPS = Fraction(10)  # for weights that do not say, and for stills
MAX_STEPS = 10_000
CODEC_BATCH = 64  # frames through the tokenizer at once


@dataclass(frozen=True)
class SamplingOptions:
    sampler: str = "mgm"  # "mgm" or "fm"
    steps: int = 20  # K, network calls per window (at most)
    seed: int | None = None  # None: a fresh random seed (see Run.seed)
    temperature: float = 1.0  # tokens drawn from softmax(logits / temperature)
    noise: float | None = None  # MGM only: Gumbel noise scale on confidences (None: the sampler's default)
    anneal: bool = True  # MGM only: anneal the noise to zero over the steps

    def sampler_kwargs(self) -> dict:
        """Keyword arguments of the sampler beyond the shared signature."""
        own = {"anneal": self.anneal, **({"noise": self.noise} if self.noise is not None else {})} if self.sampler == "mgm" else {}
        return {"temperature": self.temperature, **own}

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise InvalidArgumentError("--sampler", self.sampler, f"choose one of {', '.join(SAMPLERS)}")
        if not 1 <= self.steps <= MAX_STEPS:
            raise InvalidArgumentError("--steps", self.steps, f"must be between 1 and {MAX_STEPS}")
        if self.seed is not None and not 0 <= self.seed < 2**63:
            raise InvalidArgumentError("--seed", self.seed, "must be between 0 and 2**63 - 1")


class Chunk(NamedTuple):
    start: int  # index of the first frame in the output video
    frames: Tensor  # uint8 [n,Y,X,C]
    nfe: int  # network calls spent to make these frames (0 for frames passed through)


class ModelDenoiser:
    """Adapts the transformer to the samplers' denoiser signature, under autocast; counts calls."""

    def __init__(self, model: MaskFlowTransformer, autocast_dtype: torch.dtype | None) -> None:
        self.model, self.autocast_dtype = model, autocast_dtype
        self.mask_id = model.config.mask_id
        self.calls = 0

    def __call__(self, tokens: Tensor, levels: Tensor) -> Tensor:
        self.calls += 1
        device_type = tokens.device.type
        with torch.autocast(device_type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            return self.model(tokens, levels)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidArgumentError("--device", name, "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("--device", name, "CUDA is not available on this machine; use cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise InvalidArgumentError("--device", name, "use auto, cpu, cuda or cuda:N")
    return device


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 where the device runs it fast (CUDA with bf16, a CPU with AVX512-BF16/AMX), else fp32."""
    if precision not in PRECISIONS:
        raise InvalidArgumentError("--precision", precision, f"choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else None
    return torch.bfloat16 if _cpu_has_fast_bf16() else None


def _cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


class MaskFlowPipeline:
    def __init__(
        self,
        tokenizer: FrameTokenizer,
        transformer: MaskFlowTransformer,
        *,
        device: torch.device,
        autocast_dtype: torch.dtype | None,
        fps: Fraction = DEFAULT_FPS,
    ) -> None:
        self.tokenizer, self.transformer = tokenizer, transformer
        self.device, self.autocast_dtype, self.fps = device, autocast_dtype, fps

    @classmethod
    def from_weights(cls, source: str | None = None, *, device: str = "auto", precision: str = "auto") -> "MaskFlowPipeline":
        """Load weights (see weights.py for what ``source`` may be) onto a device."""
        dev = resolve_device(device)
        dtype = autocast_dtype(dev, precision)
        tokenizer, transformer, components = load_models(source)
        fps = _stored_fps(components["transformer"])
        return cls(tokenizer.to(dev), transformer.to(dev), device=dev, autocast_dtype=dtype, fps=fps)

    # ---- facts -----------------------------------------------------------------------------------
    @property
    def frame_format(self) -> FrameFormat:
        c = self.tokenizer.config
        return FrameFormat(c.height, c.width, c.channels)

    @property
    def window(self) -> int:
        return self.transformer.config.frames

    # ---- commands --------------------------------------------------------------------------------
    def generate(self, frames: int, settings: WindowSettings, options: SamplingOptions, callback: Callback = None) -> "Run":
        """An unconditional video of ``frames`` frames."""
        return self.run(plan_generate(frames, settings), None, options, callback)

    def extend(self, video: Tensor, frames: int, settings: WindowSettings, options: SamplingOptions, callback: Callback = None) -> "Run":
        """``video`` followed by ``frames`` new frames that continue it."""
        self.check_video(video)
        return self.run(plan_extend(len(video), frames, settings), video, options, callback)

    def infill(self, video: Tensor, ranges: Sequence[str], settings: WindowSettings, options: SamplingOptions, callback: Callback = None) -> "Run":
        """``video`` with the frame ranges (``"10:20"``, end-exclusive) regenerated from both sides."""
        self.check_video(video)
        return self.run(plan_infill(len(video), parse_ranges(ranges, len(video)), settings), video, options, callback)

    def check_video(self, video: Tensor) -> None:
        fmt = self.frame_format
        expected = (fmt.height, fmt.width, fmt.channels)
        if video.dtype != torch.uint8 or video.dim() != 4 or tuple(video.shape[1:]) != expected:
            raise InvalidArgumentError("video", f"{video.dtype} {tuple(video.shape)}", f"expected uint8 [T,{fmt.height},{fmt.width},{fmt.channels}]")
        if len(video) == 0:
            raise InvalidArgumentError("video", "0 frames", "the input needs at least one frame")

    # ---- the loop --------------------------------------------------------------------------------
    def run(self, plan: Plan, video: Tensor | None, options: SamplingOptions, callback: Callback = None) -> "Run":
        """Execute a plan: sample its windows in order and hand out the output video in order.

        ``video`` holds the input frames the plan's ``given`` runs refer to. ``callback(step)`` is
        called after every sampler step.
        """
        seed = options.seed if options.seed is not None else secrets.randbits(63)
        return Run(self, plan, video, options, seed, callback)

    def encode(self, frames: Tensor) -> Tensor:
        """uint8 [T,Y,X,C] at the model's format -> long tokens [T,H,W]."""
        return encode_frames(self.tokenizer, frames, self.device)

    def decode(self, tokens: Tensor) -> Tensor:
        """long tokens [T,H,W] -> uint8 [T,Y,X,C]."""
        return decode_tokens(self.tokenizer, tokens, self.device)


def _stored_fps(component: Component) -> Fraction:
    value = component.info.get("fps")
    try:
        return DEFAULT_FPS if value is None else Fraction(str(value)).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        raise WeightsError(str(component.file), f"fps {value!r} in the transformer's info is not a number") from None


@torch.inference_mode()
def encode_frames(tokenizer: FrameTokenizer, frames: Tensor, device: torch.device) -> Tensor:
    """uint8 [T,Y,X,C] -> long tokens [T,H,W] on the CPU, a batch of frames at a time."""
    out = [tokenizer.encode(frames[i : i + CODEC_BATCH].to(device)) for i in range(0, len(frames), CODEC_BATCH)]
    return torch.cat(out).cpu()


@torch.inference_mode()
def decode_tokens(tokenizer: FrameTokenizer, tokens: Tensor, device: torch.device) -> Tensor:
    """long tokens [T,H,W] -> uint8 [T,Y,X,C] on the CPU, a batch of frames at a time."""
    out = [tokenizer.decode(tokens[i : i + CODEC_BATCH].to(device)) for i in range(0, len(tokens), CODEC_BATCH)]
    return torch.cat(out).cpu()


class Run:
    """The chunks of one plan's execution, in order (see MaskFlowPipeline.run); ``seed`` is the seed
    it samples with, ``plan`` the plan."""

    def __init__(self, pipe: MaskFlowPipeline, plan: Plan, video: Tensor | None, options: SamplingOptions, seed: int, callback: Callback) -> None:
        self.pipe, self.plan, self.video, self.options, self.seed, self.callback = pipe, plan, video, options, seed, callback
        assert not plan.given or (video is not None and plan.given[-1][1] <= len(video)), "plan needs input frames"

    def __iter__(self) -> Iterator[Chunk]:
        pipe, plan = self.pipe, self.plan
        generator = torch.Generator(pipe.device).manual_seed(self.seed)
        denoiser = ModelDenoiser(pipe.transformer, pipe.autocast_dtype)
        tokens: dict[int, Tensor] = {}  # frame -> long [H,W], for frames usable as context
        ready: dict[int, Tensor] = {}  # generated frame -> uint8 [Y,X,C], final but not yet handed out
        given = {i for a, b in plan.given for i in range(a, b)}
        emitted = pending_nfe = 0
        for window in [*plan.windows, None]:  # None: hand out what is left after the last window
            for chunk in self._final_runs(emitted, given, ready):
                yield chunk._replace(nfe=pending_nfe)
                pending_nfe, emitted = 0, chunk.start + len(chunk.frames)
            if window is None:
                break
            calls_before = denoiser.calls
            kept = self._sample_window(window, tokens, denoiser, generator)  # long [K,H,W]
            ready.update(zip(window.keep, pipe.decode(kept)))
            pending_nfe += denoiser.calls - calls_before
        assert emitted == plan.length and not ready, "the plan left frames unmade"

    def _final_runs(self, start: int, given: set[int], ready: dict[int, Tensor]) -> Iterator[Chunk]:
        """Hand out, in order from ``start``, every frame that is final: runs of given frames as
        slices of the input, generated frames as they come."""
        i = start
        while i < self.plan.length:
            if i in given:
                j = i
                while j < self.plan.length and j in given:
                    j += 1
                yield Chunk(i, self.video[i:j], 0)
            elif i in ready:
                j = i
                while j in ready:
                    j += 1
                yield Chunk(i, torch.stack([ready.pop(k) for k in range(i, j)]), 0)
            else:
                return
            i = j

    @torch.inference_mode()
    def _sample_window(self, window: Window, tokens: dict[int, Tensor], denoiser, generator) -> Tensor:
        pipe = self.pipe
        missing = [i for i in window.context if i not in tokens]
        if missing:
            assert self.video is not None, "context frame with neither tokens nor input"
            for i, tok in zip(missing, pipe.encode(self.video[missing])):
                tokens[i] = tok
        cfg = pipe.transformer.config
        length = window.stop - window.start
        x = torch.full((1, length, cfg.height, cfg.width), cfg.mask_id, dtype=torch.long)
        known = torch.zeros_like(x, dtype=torch.bool)
        for i in window.context:
            x[0, i - window.start] = tokens[i]
            known[0, i - window.start] = True
        sampler = SAMPLERS[self.options.sampler]
        out = sampler(
            denoiser, x.to(pipe.device), known.to(pipe.device),
            steps=self.options.steps, scheduler=SCHEDULERS[cfg.scheduler], generator=generator, callback=self.callback,
            **self.options.sampler_kwargs(),
        )[0].cpu()  # [T,H,W]
        kept = out[[i - window.start for i in window.keep]]
        for i, tok in zip(window.keep, kept):
            tokens[i] = tok
        return kept
