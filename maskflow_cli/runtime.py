"""Runtime: where and how the models run, shared by the pipeline, training and evaluation.

- ``resolve_device``: ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` to a ``torch.device``;
- ``autocast_dtype``: the precision choice (``auto`` uses bf16 autocast where the device runs it fast);
- ``encode_frames`` / ``decode_tokens``: the tokenizer over many frames, a batch of frames at a time;
- ``ModelDenoiser``: the transformer behind the samplers' denoiser signature, under autocast, with
  its mask id, κ scheduler and token grid, counting network calls.

Axis legend: B sequences, T frames, Y, X pixels, C channels, H, W token grid, V vocabulary.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .errors import InvalidArgumentError
from .schedules import SCHEDULERS, Scheduler
from .tokenizer import FrameTokenizer

PRECISIONS = ("auto", "bf16", "fp32")
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


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """bf16 where the device runs it fast (CUDA with bf16, a CPU with AVX512-BF16/AMX), else fp32
    (None: no autocast)."""
    if precision not in PRECISIONS:
        raise InvalidArgumentError("precision", precision, f"choose one of {', '.join(PRECISIONS)}")
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


class ModelDenoiser:
    """Adapts the transformer to the samplers' denoiser signature, under autocast; counts calls.

    ``mask_id``, ``scheduler`` (the κ the model was trained with), ``grid`` (H, W) and ``device``
    are what the engine needs to build a window's tokens."""

    def __init__(self, model: nn.Module, autocast_dtype: torch.dtype | None) -> None:
        self.model, self.autocast_dtype = model, autocast_dtype
        config = model.config
        self.mask_id: int = config.mask_id
        self.scheduler = model_scheduler(config)
        self.grid: tuple[int, int] = (config.height, config.width)
        self.device: torch.device = next(model.parameters()).device
        self.calls = 0

    def __call__(self, tokens: Tensor, levels: Tensor) -> Tensor:
        """long [B,T,H,W], float [B,T] -> logits [B,T,H,W,V]."""
        self.calls += 1
        with torch.autocast(tokens.device.type, dtype=self.autocast_dtype or torch.float32, enabled=self.autocast_dtype is not None):
            return self.model(tokens, levels)
