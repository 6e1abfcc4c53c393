"""What a transformer config costs before anything is built for it, and the limits it must stay within.

A few kilobytes of weights metadata can declare a model whose window of tokens needs terabytes of
attention scores or hours of work in one network call. :func:`transformer_cost` estimates, from the
config alone, the memory of the model (parameters and buffers, float32), the memory of one window's
activations (batch 1: token states, attention scores, MLP hidden states, logits) and the
floating-point operations of one network call; :func:`over_limits` says what of a config is over
:class:`WorkLimits` (:func:`check_transformer_cost`: as the WeightsError of weights being loaded), whose defaults leave room for models far larger than the presets and which
``MASKFLOW_MAX_MODEL_BYTES``, ``MASKFLOW_MAX_WINDOW_BYTES`` and ``MASKFLOW_MAX_CALL_FLOPS`` (a
count with an optional K, M, G or T binary suffix) raise or lower.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import WeightsError
from .model_configs import TransformerConfig
from .video_io.limits import env_count

MODEL_BYTES_ENV, WINDOW_BYTES_ENV, CALL_FLOPS_ENV = "MASKFLOW_MAX_MODEL_BYTES", "MASKFLOW_MAX_WINDOW_BYTES", "MASKFLOW_MAX_CALL_FLOPS"
FLOAT_BYTES = 4


@dataclass(frozen=True)
class WorkLimits:
    """The most one model may cost: ``model_bytes`` of parameters and buffers, ``window_bytes`` of
    activations for one window, ``call_flops`` operations per network call. The defaults are 15 to 40 times
    what the base preset needs at a 64-frame window (2.9e11 operations, 490 MB of activations); the
    paper's XL preset fits up to a 32-frame window (2.4e12 operations a call)."""

    model_bytes: int = 16 * 2**30
    window_bytes: int = 16 * 2**30
    call_flops: int = 2**42  # ~4.4e12: about a minute of a few CPU cores, milliseconds of a GPU

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WorkLimits:
        default = cls()
        return cls(model_bytes=env_count(environ, MODEL_BYTES_ENV, default.model_bytes),
                   window_bytes=env_count(environ, WINDOW_BYTES_ENV, default.window_bytes),
                   call_flops=env_count(environ, CALL_FLOPS_ENV, default.call_flops))


@dataclass(frozen=True)
class ModelCost:
    model_bytes: int  # parameters and buffers, float32
    window_bytes: int  # activations of one window, batch 1, float32
    call_flops: int  # multiply-adds counted as two


def _attention_pairs(config: TransformerConfig) -> list[int]:
    """Query-key pairs of each block's attention over one window."""
    space, frames = config.grid_height * config.grid_width, config.frames
    tokens = frames * space
    if config.attention == "full":
        return [tokens * tokens] * config.depth
    kinds = (["space", "time"] * config.depth)[: config.depth]
    return [frames * space * space if kind == "space" else space * frames * frames for kind in kinds]


def transformer_cost(config: TransformerConfig) -> ModelCost:
    """Memory and work of ``config``'s model, from the config alone (exact parameter counts are
    not needed: the terms that grow are)."""
    d, vocab, n = config.dim, config.vocab_size, config.frames * config.grid_height * config.grid_width
    hidden = int(d * config.mlp_ratio)
    digits, channels = sum(config.code_digits), len(config.code_digits)
    per_block = 4 * d * d + 2 * d * hidden + 6 * d * d  # attention, MLP, adaLN modulation (weights)
    parameters = (config.depth * per_block + (vocab + 1) * d + d * vocab  # blocks, embedding, head
                  + (config.grid_height * config.grid_width + config.frames) * d  # position embeddings
                  + vocab * config.code_features + 2 * digits * d)
    buffers = 2 * channels * vocab  # the code-digit rows, long [V,Q]
    pairs = _attention_pairs(config)
    scores = config.heads * max(pairs)  # one block's attention scores at a time
    window = n * (4 * d + hidden) + scores + 2 * n * (vocab + digits) + n * vocab * channels  # states, q/k/v, MLP, scores, logits, digit terms
    flops = 2 * n * config.depth * (4 * d * d + 2 * d * hidden) + 4 * d * sum(pairs) + 2 * n * d * vocab + 2 * n * digits * d + n * vocab * channels
    return ModelCost(FLOAT_BYTES * (parameters + buffers), FLOAT_BYTES * window, flops)


def over_limits(config: TransformerConfig, limits: WorkLimits | None = None) -> str | None:
    """What of ``config``'s model is over ``limits`` (default: from the environment), with the
    numbers and the setting that raises the limit; None when it fits."""
    limits = limits or WorkLimits.from_env()
    cost = transformer_cost(config)
    window = f"a window of {config.frames} frames of {config.grid_height}x{config.grid_width} tokens"
    checks = [(cost.model_bytes, limits.model_bytes, "bytes of parameters", MODEL_BYTES_ENV),
              (cost.window_bytes, limits.window_bytes, f"bytes of activations for {window}", WINDOW_BYTES_ENV),
              (cost.call_flops, limits.call_flops, f"operations per network call on {window}", CALL_FLOPS_ENV)]
    for need, limit, what, env in checks:
        if need > limit:
            return f"its transformer needs about {_count(need)} {what}, more than the {_count(limit)} allowed (set {env} higher)"
    return None


def check_transformer_cost(config: TransformerConfig, source: str, limits: WorkLimits | None = None) -> None:
    """WeightsError naming ``source`` (weights about to be loaded) if ``config`` is over ``limits``."""
    problem = over_limits(config, limits)
    if problem is not None:
        raise WeightsError(source, problem)


def _count(value: int) -> str:
    """2.4e+12 style for large counts, digits with separators for small ones."""
    return f"{value:,}" if value < 10**7 else f"{value:.3g}".replace("e+", "e")



def check_file_size(path: str | os.PathLike, source: str, limits: WorkLimits | None = None) -> None:
    """WeightsError naming ``source`` if the weights file ``path`` is larger than a model may be
    (``model_bytes``): checked before the file is mapped, which a sparse file of terabytes would
    make fail in the allocator."""
    limits = limits or WorkLimits.from_env()
    size = os.path.getsize(path)
    if size > limits.model_bytes:
        raise WeightsError(source, f"the file holds {_count(size)} bytes of parameters, more than the {_count(limits.model_bytes)} "
                                   f"allowed (set {MODEL_BYTES_ENV} higher)")
