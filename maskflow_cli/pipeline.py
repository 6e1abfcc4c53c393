"""The pipeline: tokenizer + transformer + device, offering generate / extend / infill.

Each method validates its inputs, makes a plan (planner.py) and returns an iterator of ``Chunk``s:
the output video in order, frames handed out as soon as they are final, so a caller can write them
while later windows are still being sampled and memory stays flat in the video's length::

    pipe = MaskFlowPipeline.from_weights("weights/")
    settings = window_settings(pipe.window, "ar")
    video = torch.cat([c.frames for c in pipe.generate(48, settings, SamplingOptions(seed=0))])

Frames are uint8 [T,Y,X,C] at the model's frame format (``pipe.frame_format``); frames given by the
caller are passed through unchanged, generated frames are decoded tokens. The windows are sampled by
the rollout engine (engine.py); device, precision and the tokenizer's batching live in runtime.py.

Loading the weights and each window's work (its sampling, network calls and decoding) run in the
one kept helper thread of ``signals.interruptible``: the calling thread stays free to answer a stop
signal, and all of a run's parallel torch work starts from one thread, so that OpenMP keeps a single
team of threads (GNU OpenMP cuts its threads' spinning to almost nothing once there are more of them
than CPUs, which a second team makes on a 2-core machine: each parallel kernel then waits for
sleeping threads to wake).

Axis legend: T frames, Y, X pixels, C channels, H, W token grid.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Iterator, NamedTuple, Sequence

import torch
from torch import Tensor

from .defaults import DEFAULT_CONTEXT_CACHE, DEFAULT_FPS
from .engine import SamplingOptions, roll_out
from .errors import InvalidArgumentError, WeightsError
from .frame_ranges import parse_ranges
from .planner import Plan, Window, WindowSettings, plan_extend, plan_generate, plan_infill
from .runtime import (INFERENCE_PRECISIONS, ModelDenoiser, cast_for_inference, check_context_cache, decode_tokens, encode_frames,
                      parameter_count, precision_dtype, quantize_linears, resolve_device)
from .sampling import Callback
from .signals import interruptible
from .tokenizer import FrameTokenizer
from .transformer import MaskFlowTransformer
from .video_io import FrameFormat
from .weight_headers import Component
from .weights import load_models

class Chunk(NamedTuple):
    start: int  # index of the first frame in the output video
    frames: Tensor  # uint8 [n,Y,X,C]
    nfe: int  # network calls spent to make these frames (0 for frames passed through)


class MaskFlowPipeline:
    def __init__(
        self,
        tokenizer: FrameTokenizer,
        transformer: MaskFlowTransformer,
        *,
        device: torch.device,
        dtype: torch.dtype | None = None,
        fps: Fraction = DEFAULT_FPS,
        compile: bool = False,
        context_cache: str = DEFAULT_CONTEXT_CACHE,
    ) -> None:
        self.tokenizer, self.transformer = tokenizer, transformer
        self.device, self.dtype, self.fps, self.compile = device, dtype, fps, compile  # dtype: the transformer's weights' (None: fp32)
        self.context_cache = context_cache
        self._intensity: Tensor | None = None  # float [V+1], token_intensity()'s, NaN where not yet decoded

    @classmethod
    def from_weights(cls, source: str | None = None, *, device: str = "auto", precision: str = "auto",
                     compile: bool = False, context_cache: str = DEFAULT_CONTEXT_CACHE) -> "MaskFlowPipeline":
        """Load weights (see weights.py for what ``source`` may be) onto a device.

        ``compile``: run the network through ``torch.compile`` (see ``runtime.ModelDenoiser``): on CUDA
        as CUDA graphs, worth it for long videos; on a CPU it compiles for minutes and gains little.
        ``context_cache``: "exact", "frozen" or "off", when a window's context keys and values are
        computed once and reused (see ``runtime.ModelDenoiser``). ``precision``: "auto", "bf16" or "fp32"
        (``runtime.precision_dtype``: the transformer's and the tokenizer decoder's weights cast once),
        or "int8" on a CPU (``runtime.quantize_linears``; ``auto`` never picks it)."""
        return interruptible(lambda: cls._load(source, device, precision, compile, context_cache))

    @classmethod
    def _load(cls, source: str | None, device: str, precision: str, compile: bool, context_cache: str) -> "MaskFlowPipeline":
        dev = resolve_device(device)
        check_context_cache(context_cache)  # before the weights load
        if precision not in INFERENCE_PRECISIONS:
            raise InvalidArgumentError("precision", precision, f"choose one of {', '.join(INFERENCE_PRECISIONS)}")
        if precision == "int8" and dev.type != "cpu":
            raise InvalidArgumentError("precision", precision, "int8 runs on a CPU only; on CUDA use auto, bf16 or fp32")
        tokenizer, transformer, components = load_models(source)
        fps = _stored_fps(components["transformer"])
        if precision == "int8":  # int8 linear layers, fp32 elsewhere; the tokenizer fp32
            return cls(tokenizer, quantize_linears(transformer), device=dev, fps=fps, compile=compile, context_cache=context_cache)
        dtype = precision_dtype(dev, precision, parameter_count(transformer))
        cast_for_inference(tokenizer.decoder, dtype)  # the encoder stays fp32: tokens of given frames as trained
        return cls(tokenizer.to(dev), cast_for_inference(transformer.to(dev), dtype, compile), device=dev, dtype=dtype, fps=fps, compile=compile,
                   context_cache=context_cache)

    # ---- facts -----------------------------------------------------------------------------------
    @property
    def frame_format(self) -> FrameFormat:
        return FrameFormat.of(self.tokenizer.config)

    @property
    def window(self) -> int:
        return self.transformer.config.frames

    def denoiser(self) -> ModelDenoiser:
        """A fresh call-counting denoiser over the transformer, at the pipeline's precision."""
        return ModelDenoiser(self.transformer, context_cache=self.context_cache, compile=self.compile)

    # ---- commands --------------------------------------------------------------------------------
    def generate(self, frames: int, settings: WindowSettings, options: SamplingOptions, callback: Callback = None) -> "Run":
        """An unconditional video of ``frames`` frames."""
        return self.run(plan_generate(frames, settings), None, options, callback)

    def extend(self, video: Tensor, frames: int, settings: WindowSettings, options: SamplingOptions, callback: Callback = None) -> "Run":
        """``video`` followed by ``frames`` new frames that continue it."""
        self.check_video(video)
        return self.run(plan_extend(len(video), frames, settings), video, options, callback)

    def infill(self, video: Tensor, ranges: Sequence[str], settings: WindowSettings, options: SamplingOptions, callback: Callback = None, *,
               fps: Fraction | None = None) -> "Run":
        """``video`` with the frame ranges (``"10:20"``, end-exclusive; ``"-5:"`` the last five frames;
        ``"1.5s:3s"`` in seconds at ``fps``, see frame_ranges.py) regenerated from both sides."""
        self.check_video(video)
        return self.run(plan_infill(len(video), parse_ranges(ranges, len(video), fps), settings), video, options, callback)

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

        ``video`` holds the input frames the plan's ``given`` runs refer to. ``callback(state)`` is
        called after every sampler step with a ``sampling.SamplerState`` (window index, step, the
        window's tokens so far), e.g. to render the sampling chain. ``options.seed`` None draws a fresh seed (``Run.seed``).
        """
        return Run(self, plan, video, options.resolved(), callback)

    def encode(self, frames: Tensor) -> Tensor:
        """uint8 [T,Y,X,C] at the model's format -> long tokens [T,H,W]."""
        return encode_frames(self.tokenizer, frames, self.device)

    def decode(self, tokens: Tensor) -> Tensor:
        """long tokens [T,H,W] -> uint8 [T,Y,X,C]."""
        return decode_tokens(self.tokenizer, tokens, self.device)

    def token_intensity(self, tokens: Tensor) -> Tensor:
        """Long tokens of any shape -> float intensities of the same shape, in [0, 1]: a token's
        mean pixel value decoded alone (a 1×1 token grid), 0 for the mask token (id V). Each token
        is decoded the first time it is asked for and kept, so a run decodes only the tokens it
        meets (not the whole vocabulary: 64,000 ids for some tokenizers). The guidance anchor reads
        frames' intensities off it."""
        if self._intensity is None:
            vocabulary = self.transformer.config.vocab_size
            self._intensity = torch.full((vocabulary + 1,), float("nan"))
            self._intensity[vocabulary] = 0.0
        tokens = tokens.cpu()
        new = tokens.unique()
        new = new[self._intensity[new].isnan()]  # [n] ids not decoded yet
        if len(new):
            alone = decode_tokens(self.tokenizer, new[:, None, None], self.device)  # uint8 [n,y,x,C]
            self._intensity[new] = alone.flatten(1).float().mean(1) / 255
        return self._intensity[tokens]


def _stored_fps(component: Component) -> Fraction:
    value = component.info.get("fps")
    try:
        return DEFAULT_FPS if value is None else Fraction(str(value)).limit_denominator(1001)
    except (ValueError, ZeroDivisionError):
        raise WeightsError(str(component.file), f"fps {value!r} in the transformer's info is not a number") from None


class Run:
    """The chunks of one plan's execution, in order (see MaskFlowPipeline.run); ``seed`` is the seed
    it samples with, ``plan`` the plan."""

    def __init__(self, pipe: MaskFlowPipeline, plan: Plan, video: Tensor | None, options: SamplingOptions, callback: Callback) -> None:
        assert options.seed is not None, "run with resolved options"
        self.pipe, self.plan, self.video, self.options, self.seed, self.callback = pipe, plan, video, options, options.seed, callback
        assert not plan.given or (video is not None and plan.given[-1][1] <= len(video)), "plan needs input frames"

    def __iter__(self) -> Iterator[Chunk]:
        """Sample window by window (the engine), decode each window's kept frames, and hand out every
        frame as soon as it and all frames before it are final."""
        pipe, plan = self.pipe, self.plan
        denoiser = pipe.denoiser()
        windows = roll_out(plan, denoiser, self.options, self.seed, self._context_tokens, callback=self.callback,
                           token_intensity=pipe.token_intensity)
        ready: dict[int, Tensor] = {}  # generated frame -> uint8 [Y,X,C], final but not yet handed out
        given = {i for a, b in plan.given for i in range(a, b)}
        emitted = pending_nfe = 0
        while True:
            for chunk in self._final_runs(emitted, given, ready):
                yield chunk._replace(nfe=pending_nfe)
                pending_nfe, emitted = 0, chunk.start + len(chunk.frames)
            calls_before = denoiser.calls
            step = interruptible(lambda: self._next_window(windows))  # in the helper thread (module docstring)
            if step is None:
                break
            window, frames = step
            ready.update(zip(window.keep, frames))
            pending_nfe += denoiser.calls - calls_before
        assert emitted == plan.length and not ready, "the plan left frames unmade"

    def _next_window(self, windows: Iterator[tuple[Window, Tensor]]) -> tuple[Window, Tensor] | None:
        """The next window of the rollout and its kept frames decoded, uint8 [K,Y,X,C]; None after the last."""
        step = next(windows, None)
        if step is None:
            return None
        window, kept = step  # long [1,K,H,W]
        return window, self.pipe.decode(kept[0])

    def _context_tokens(self, frames: list[int]) -> Tensor:
        """Tokens of input frames, long [1,n,H,W], encoded when a window first needs them."""
        assert self.video is not None, "context frame with neither tokens nor input"
        return self.pipe.encode(self.video[frames])[None]

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
