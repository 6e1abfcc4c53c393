"""Runtime: where and how the models run, shared by the pipeline, training and evaluation.

- ``resolve_device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a ``torch.device``;
- ``precision_dtype``: the precision choice (``auto``: what runs fast for the device and the model's size),
  ``cast_for_inference``: the transformer's weights in it, cast once; ``quantize_linears``: int8;
- ``encode_frames`` / ``decode_tokens``: the tokenizer over many frames, a batch of frames at a time;
- ``ModelDenoiser``: the transformer behind the samplers' denoiser signature (fp32 logits), with
  its mask id, κ scheduler and token grid, counting network calls; logits at the wanted positions
  only, a block-causal model's context cache, an optional ``torch.compile`` path.

Axis legend: B sequences, T frames, Y, X pixels, C channels, H, W token grid, V vocabulary.
"""

from __future__ import annotations

import warnings
from typing import Callable

import torch
from torch import Tensor, nn

from .defaults import DEFAULT_CONTEXT_CACHE
from .errors import InvalidArgumentError
from .schedules import SCHEDULERS, Scheduler
from .signals import interruptible
from .tokenizer import FrameTokenizer
from .transformer import ContextCache, MaskFlowTransformer

PRECISIONS = ("auto", "bf16", "fp32")  # training's, and inference's with int8
INFERENCE_PRECISIONS = (*PRECISIONS, "int8")
CODEC_BATCH = 64  # frames through the tokenizer at once


def resolve_device(name: str) -> torch.device:
    """``auto`` (CUDA when available, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InvalidArgumentError("device", name, "use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InvalidArgumentError("device", name, "CUDA is not available on this machine; use cpu or auto")
    if device.type not in ("cpu", "cuda"):
        raise InvalidArgumentError("device", name, "use auto, cpu, cuda or cuda:N")
    return device


SMALL_MODEL_PARAMETERS = 100_000_000  # below this, ``auto`` on CUDA runs fp32 with TF32 matmuls


def precision_dtype(device: torch.device, precision: str, parameters: int | None = None) -> torch.dtype | None:
    """The reduced-precision dtype ``precision`` runs in on ``device``; None: fp32.

    Inference casts the transformer's weights to it once (``cast_for_inference``); training runs
    under autocast in it. ``auto`` chooses what runs fast. On CUDA, a model of fewer than
    SMALL_MODEL_PARAMETERS ``parameters`` runs in fp32 with TF32 matmuls allowed (process-wide): for
    such a model the casts of bf16 autocast cost more than its faster matmuls save (on one H100 the
    10M-parameter Moving MNIST transformer generated 1,600 frames in 38.4 s under bf16 autocast and
    in 22.2 s in fp32). Larger models (or ``parameters`` None) use bf16 where the GPU supports it. On
    a CPU, bf16 where it has bf16 instructions (``cpu_has_fast_bf16``), else fp32. ``fp32`` is plain
    fp32 (TF32 as PyTorch's default leaves it), ``bf16`` is bf16."""
    if precision not in PRECISIONS:
        raise InvalidArgumentError("precision", precision, f"choose one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda":
        if (parameters is not None and parameters < SMALL_MODEL_PARAMETERS) or not torch.cuda.is_bf16_supported():
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
            return None
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_fast_bf16() else None


def parameter_count(*modules: nn.Module) -> int:
    """Parameters of ``modules`` together (what ``precision_dtype`` weighs for ``auto``)."""
    return sum(p.numel() for m in modules for p in m.parameters())


BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs with bf16 dot-product instructions
AMX_FLAG = "amx_bf16"  # /proc/cpuinfo's flag of CPUs with AMX bf16 tile matmuls


def cpu_flags() -> list[str] | None:
    """The CPU's feature flags from /proc/cpuinfo; None where it cannot be read."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((line.partition(":")[2].split() for line in f if line.startswith("flags")), [])
    except OSError:
        return None


def cpu_has_fast_bf16() -> bool:
    """Whether bf16 runs faster than fp32 on this CPU: PyTorch's kernels use AVX-512 here (its
    capability, which ATEN_CPU_CAPABILITY can lower) and the CPU has bf16 instructions (AVX512-BF16
    or AMX). Elsewhere bf16 is emulated and several times slower than fp32 (measured on an AVX2-only
    CPU: 4-5x). Without /proc/cpuinfo, oneDNN's own bf16 check decides."""
    flags = cpu_flags()
    if flags is None:
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    capable = torch.backends.cpu.get_cpu_capability() in ("AVX512", "AVX512_BF16", "AMX")
    return capable and any(flag in flags for flag in BF16_FLAGS)


def cpu_has_amx() -> bool:
    """Whether the CPU has AMX bf16 tile matmuls (false where /proc/cpuinfo cannot be read)."""
    return AMX_FLAG in (cpu_flags() or [])


def cast_for_inference(model: nn.Module, dtype: torch.dtype | None, compile: bool = False) -> nn.Module:
    """``model`` with its weights cast to ``dtype`` once, for inference (None: unchanged, fp32).

    A transformer in bf16 on a CPU also gets the kernels that are fast there: PyTorch's flash
    attention where the CPU has AMX, blocks of bf16 matmuls around a softmax elsewhere
    (``transformer.bf16_cpu_attention``; on a Zen 4 core with AVX512-BF16 the flash kernel in bf16 is
    no faster than in fp32, on a Xeon core with AMX it made a network call 0.65x the CPU time of the
    blocks'); and with AMX
    linear layers packed once (``PackedLinear``), unless the model is to be run through
    ``torch.compile`` (``compile``): its CPU backend packs the weights it freezes itself and cannot
    lower layers whose packed weights come in as inputs."""
    if dtype is None:
        return model
    model = model.to(dtype)
    device = next(model.parameters()).device
    if isinstance(model, MaskFlowTransformer) and dtype == torch.bfloat16 and device.type == "cpu":
        amx = cpu_has_amx()
        model.use_blocked_bf16_attention(not amx)
        if amx and not compile and packed_linears_available():
            pack_linears(model)
    return model


class PackedLinear(nn.Module):
    """An ``nn.Linear`` for bf16 inference on a CPU with AMX: its weight laid out once in oneDNN's
    blocked format, the bias added inside the matmul (the ``torch.ops.mkldnn`` kernels that
    torch.compile's CPU backend uses). The same oneDNN matmul as the plain layer, which lays the
    weight out again at every call and first copies the bias into the output: on a Xeon core with
    AMX a network call of the shipped transformer took 0.93x the CPU time, with equal logits
    (``python -m benchmarks levers``). (Layers much smaller than the shipped model's may take another kernel in the
    plain path and differ by bf16's rounding; a test compares.)"""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("packed", torch.ops.mkldnn._reorder_linear_weight(linear.weight.detach(), None), persistent=False)
        self.register_buffer("bias", None if linear.bias is None else linear.bias.detach(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def packed_linears_available() -> bool:
    """Whether this PyTorch has oneDNN and the kernels ``PackedLinear`` calls."""
    ops = torch.ops.mkldnn
    return torch.backends.mkldnn.is_available() and hasattr(ops, "_reorder_linear_weight") and hasattr(ops, "_linear_pointwise")


def pack_linears(model: nn.Module) -> nn.Module:
    """``model`` (bf16, on the CPU) with every ``nn.Linear`` replaced by a ``PackedLinear``, in place."""
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Linear:
                setattr(module, name, PackedLinear(child))
    return model


def quantize_linears(model: nn.Module) -> nn.Module:
    """``model`` (on the CPU) with int8 linear layers: dynamic quantization (int8 weights, each call's
    activations quantized on the fly), everything else fp32; ``--precision int8``. PyTorch 2.13 marks
    ``torch.ao.quantization`` as deprecated (for torchao, not a dependency here); its warnings are
    silenced, so that a command's stderr stays the command's."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


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


def model_scheduler(config) -> Scheduler:
    """The κ scheduler a transformer config names (its ``scheduler`` field): the one lookup."""
    return SCHEDULERS[config.scheduler]


CONTEXT_CACHES = ("exact", "frozen", "off")


def check_context_cache(context_cache: str) -> None:
    """InvalidArgumentError unless ``context_cache`` is one of CONTEXT_CACHES (see ``ModelDenoiser``)."""
    if context_cache not in CONTEXT_CACHES:
        raise InvalidArgumentError("context_cache", context_cache, f"choose one of {', '.join(CONTEXT_CACHES)}")


class ModelDenoiser:
    """Adapts the transformer to the samplers' denoiser signature; ``calls`` counts
    network passes (one per call; guidance.py adds its uncond passes).

    ``mask_id``, ``scheduler`` (the κ the model was trained with), ``grid`` (H, W) and ``device``
    are what the engine needs to build a window's tokens.

    A call returns logits at the wanted positions only (``MaskFlowTransformer.logits_at``).
    ``context_cache`` says when the context frames' keys and values are computed once per window and
    reused by the window's later calls, which then run the network on the other frames only:
    - "exact": for block-causal models, whose context never sees the other frames (exactly the
      uncached result); a bidirectional model runs uncached;
    - "frozen": for every model; a bidirectional model keeps the keys and values its context frames
      have at the window's first call, while the other frames are still masked. An approximation: in
      the uncached model they drift a little as the other frames unmask;
    - "off": every call runs the whole window.
    The engine calls ``start_window()`` before each window, so no cache outlives its window.
    ``compile``: the network runs through ``torch.compile`` on the whole window (static shapes; on
    CUDA in "reduce-overhead" mode, i.e. as CUDA graphs), the wanted logits picked afterwards; no
    context cache then. ``compile_backend`` is for tests ("eager")."""

    def __init__(self, model: nn.Module, *, context_cache: str = DEFAULT_CONTEXT_CACHE,
                 compile: bool = False, compile_backend: str = "inductor") -> None:
        check_context_cache(context_cache)
        self.model = model
        config = model.config
        self.mask_id: int = config.mask_id
        self.scheduler = model_scheduler(config)
        self.grid: tuple[int, int] = (config.grid_height, config.grid_width)
        self.device: torch.device = next(model.parameters()).device
        self.cache_context = not compile and (context_cache == "frozen" or (context_cache == "exact" and config.block_causal))
        self.compiled = None
        if compile:
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            self.compiled = torch.compile(model, mode=mode, dynamic=False, backend=compile_backend)
        self._cache: ContextCache | None = None
        self._blank: tuple[tuple[Tensor, Tensor], Tensor] | None = None  # without_context's kept blank logits
        self.calls = 0

    def start_window(self) -> None:
        """Forget the last window's context cache."""
        self._cache = None

    def __call__(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor) -> Tensor:
        """long [B,T,H,W], float [B,T], bool [B,T,H,W] positions whose logits are wanted, bool [T]
        context frames (given, unchanged through the window) -> logits [M,V] at the wanted positions.

        ``context`` may also be bool [B,T], context frames per sequence (a batch of sequences that do
        not share them, as guidance's cond and uncond halves); such a call runs uncached."""
        self.calls += 1
        frames = context if context.dim() == 2 else context[None].expand(tokens.shape[0], -1)  # [B,T]
        if self.compiled is not None:  # CUDA graphs belong to the thread that captured them: not interruptible
            return self.compiled(tokens, times, frames)[wanted].float()
        return self._interruptible(lambda: self._network(tokens, times, wanted, context, frames))

    def _network(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor, frames: Tensor) -> Tensor:
        context_frames = context.nonzero()[:, 0] if self.cache_context and context.dim() == 1 else None  # [Tc]
        if context_frames is None or len(context_frames) == 0:
            return self.model.logits_at(tokens, times, wanted, frames)
        cache = self._cache
        if cache is not None and torch.equal(cache.frames, context_frames) and torch.equal(cache.tokens, tokens[:, context_frames].flatten(2)):
            return self.model.logits_at(tokens, times, wanted, cache=cache)
        if self.model.config.block_causal:
            self._cache = self.model.encode_context(tokens, times, context_frames)
            return self.model.logits_at(tokens, times, wanted, cache=self._cache)
        logits, self._cache = self.model.logits_and_context(tokens, times, wanted, context_frames)  # one pass: logits and frozen cache
        return logits

    def without_context(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor) -> Tensor:
        """Like a call, but the network runs without the ``context`` frames (bool [T]): they are left
        out of the window, and the other frames keep their window positions (a shorter pass, never
        compiled). -> logits [M,V] at the wanted positions, which must lie outside the context.

        A *blank* window, whose other frames are all mask tokens at the same masking times in every
        sequence (a window's first step), is the same input whatever the video: its logits are
        computed once, for one sequence, kept, and reused by every later blank call with the same
        frames and times (no network pass, not counted in ``calls``). Exact up to float rounding:
        the kept logits are those of a one-sequence pass."""
        frames = context.nonzero()[:, 0]  # [Tc]
        rest = (~context).nonzero()[:, 0]  # [Tr] the frames the pass keeps
        if bool((tokens[:, rest] == self.mask_id).all()) and bool((times[:, rest] == times[:1, rest]).all()):
            blank = self._blank_logits(tokens[:1], times[:1], rest, frames)  # [Tr,H,W,V]
            return blank.expand(tokens.shape[0], *blank.shape)[wanted[:, rest]]  # [M,V]
        self.calls += 1
        left_out = ContextCache(frames, tokens[:, frames].flatten(2), [None] * len(self.model.blocks))  # no keys or values
        return self._interruptible(lambda: self.model.logits_at(tokens, times, wanted, cache=left_out))

    def _blank_logits(self, tokens: Tensor, times: Tensor, rest: Tensor, frames: Tensor) -> Tensor:
        """The logits [Tr,H,W,V] at every position of the ``rest`` frames of one blank sequence
        (tokens [1,T,H,W], times [1,T]) without its ``frames`` [Tc]: kept from an earlier call with
        the same frames and times, or one network pass."""
        key = (rest, times[0, rest])
        if self._blank is not None and all(torch.equal(a, b) for a, b in zip(self._blank[0], key)):
            return self._blank[1]
        self.calls += 1
        wanted = torch.zeros_like(tokens, dtype=torch.bool)
        wanted[:, rest] = True
        left_out = ContextCache(frames, tokens[:, frames].flatten(2), [None] * len(self.model.blocks))
        logits = self._interruptible(lambda: self.model.logits_at(tokens, times, wanted, cache=left_out))  # [Tr*H*W,V]
        self._blank = (key, logits.view(len(rest), *self.grid, -1))
        return self._blank[1]

    def _interruptible(self, network: Callable[[], Tensor]) -> Tensor:
        """``network()`` -> fp32 logits, under the caller's grad modes, in a helper thread
        (signals.interruptible) so that a stop signal is answered even inside one long network call."""
        inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()  # thread-local: carried over

        def run() -> Tensor:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                return network().float()

        return interruptible(run)
