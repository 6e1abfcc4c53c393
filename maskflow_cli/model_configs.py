"""The models' configurations: what a weights file says its tokenizer and transformer are.

Plain dataclasses, checked when made (``ConfigError`` names the field), in a module that imports no
torch: ``maskflow info`` reads them from a weights file's header alone (weight_headers.py). The
modules they configure are tokenizer.py and transformer.py, whose docstrings give the axis legend
and what each field does. The transformer's size presets and its exact parameter count
(``transformer_parameters``) live here too, so ``maskflow train --help`` can list the presets' sizes
without importing torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import ConfigError

SCHEDULER_NAMES = ("sigmoid", "linear", "cosine")  # the keys of schedules.SCHEDULERS, the masking schedulers κ(t)
ENCODERS = ("conv", "patch")


@dataclass(frozen=True)
class TokenizerConfig:
    height: int = 64  # frame rows in pixels (the token grid is token_height = height / P rows)
    width: int = 64  # frame columns in pixels (token_width = width / P; TransformerConfig.grid_* are tokens)
    channels: int = 1  # 1 gray, 3 RGB
    base_channels: int = 32
    channel_multipliers: tuple[int, ...] = (1, 2, 4)  # one 2x downsampling stage each
    blocks_per_stage: int = 1
    levels: tuple[int, ...] = (8, 5, 5, 5)  # FSQ levels per latent channel
    # "conv": a ResNet encoder whose tokens see neighbouring patches too; "patch": each token sees only
    # its own P×P patch, so equal patches (e.g. empty background) always get the same token.
    encoder: str = "conv"

    def __post_init__(self) -> None:
        if self.channels not in (1, 3):
            raise ConfigError("channels", self.channels, "must be 1 or 3")
        if self.encoder not in ENCODERS:
            raise ConfigError("encoder", self.encoder, f"choose one of {', '.join(ENCODERS)}")
        if not self.channel_multipliers:
            raise ConfigError("channel_multipliers", self.channel_multipliers, "need at least one stage")
        if min(self.levels, default=0) < 2:
            raise ConfigError("levels", self.levels, "FSQ levels must be at least 2")
        for name in ("height", "width"):
            if getattr(self, name) < 1 or getattr(self, name) % self.downsample:
                raise ConfigError(name, getattr(self, name), f"must be a positive multiple of {self.downsample} (the tokenizer's downsampling)")

    @property
    def downsample(self) -> int:
        return 2 ** len(self.channel_multipliers)

    @property
    def vocab_size(self) -> int:
        return math.prod(self.levels)

    @property
    def token_height(self) -> int:
        return self.height // self.downsample

    @property
    def token_width(self) -> int:
        return self.width // self.downsample


ATTENTION_KINDS = ("full", "factorized")
CONTEXT_ATTENTION = ("bidirectional", "block_causal")


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int  # V, the tokenizer's vocabulary; the mask token is id V
    frames: int  # window length the model was trained on
    grid_height: int  # H: token rows per frame (not pixels: TokenizerConfig.height is the frame's pixel rows)
    grid_width: int  # W: token columns per frame (not pixels: TokenizerConfig.width is the frame's pixel columns)
    dim: int = 384
    depth: int = 8
    heads: int = 6
    mlp_ratio: float = 4.0
    attention: str = "full"  # "full" or "factorized" (alternating space / time blocks)
    time_conditioning: bool = True  # False: a timestep-independent model that ignores t
    scheduler: str = "sigmoid"  # κ(t) the model was trained with (SCHEDULER_NAMES)
    code_features: int = 0  # F: per-code feature size (0: plain embeddings only)
    code_digits: tuple[int, ...] = ()  # the tokenizer's FSQ levels, least significant first (empty: ids only)
    context_attention: str = "bidirectional"  # or "block_causal": context frames attend to context frames only

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_KINDS:
            raise ConfigError("attention", self.attention, f"choose one of {', '.join(ATTENTION_KINDS)}")
        if self.context_attention not in CONTEXT_ATTENTION:
            raise ConfigError("context_attention", self.context_attention, f"choose one of {', '.join(CONTEXT_ATTENTION)}")
        if self.scheduler not in SCHEDULER_NAMES:
            raise ConfigError("scheduler", self.scheduler, f"choose one of {', '.join(SCHEDULER_NAMES)}")
        if self.dim % self.heads:
            raise ConfigError("dim", self.dim, f"must be divisible by heads ({self.heads})")
        for name in ("vocab_size", "frames", "grid_height", "grid_width", "depth"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be at least 1")
        if self.code_features < 0:
            raise ConfigError("code_features", self.code_features, "must not be negative")
        if self.code_digits and (min(self.code_digits) < 2 or math.prod(self.code_digits) != self.vocab_size):
            raise ConfigError("code_digits", list(self.code_digits), f"must be levels of at least 2 whose product is the vocabulary {self.vocab_size}")

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def block_causal(self) -> bool:
        return self.context_attention == "block_causal"


# Size presets for training: width, depth, heads (the rest from the data and the tokenizer).
TRANSFORMER_PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"dim": 32, "depth": 2, "heads": 2},  # tests
    "small": {"dim": 256, "depth": 8, "heads": 4},
    "fast": {"dim": 192, "depth": 6, "heads": 3},  # the real-time design (recipe digits-fast)
    "base": {"dim": 384, "depth": 7, "heads": 6},
    # the shapes of the official Latte configs (Ma et al. 2024) that the MaskFlow paper trains
    "s": {"dim": 384, "depth": 12, "heads": 6},
    "b": {"dim": 768, "depth": 12, "heads": 12},
    "l": {"dim": 1024, "depth": 24, "heads": 16},
    "xl": {"dim": 1152, "depth": 28, "heads": 16},
}
PAPER_PRESETS = ("s", "b", "l", "xl")
# The data the presets' sizes are quoted for: the base tokenizer's 8x8 tokens a 64x64 frame
# (64 tokens), its vocabulary of 8·5·5·5 codes, and train's default 16-frame window.
REFERENCE_GRID = {"vocab_size": 1000, "frames": 16, "grid_height": 8, "grid_width": 8}
TIME_FEATURES = 256  # the sinusoidal timestep features the time embedding's MLP reads (embeddings.timestep_features)


def transformer_parameters(config: TransformerConfig) -> int:
    """The number of parameters of ``MaskFlowTransformer(config)``, counted from the config alone
    (buffers such as the code features are not parameters). With D = dim, M = int(D·mlp_ratio):

    - a block: q/k/v and output projections 4D² + 4D, MLP 2DM + M + D, adaLN modulation 6D² + 6D;
    - token embedding (V+1)·D, position embeddings (H·W + T)·D, head D·V + V, final adaLN 2D² + 2D;
    - time embedding 256·D + D + D² + D (a timestep-independent model: one null condition, D);
    - code features F: MLP F·D + D + D² + D and query D² + D; code digits (L = ΣL_q): embedding L·D,
      head D·L + L."""
    d, v = config.dim, config.vocab_size
    hidden = int(d * config.mlp_ratio)
    block = (4 * d * d + 4 * d) + (2 * d * hidden + hidden + d) + (6 * d * d + 6 * d)
    total = config.depth * block + (v + 1) * d + (config.grid_height * config.grid_width + config.frames) * d
    total += (d * v + v) + (2 * d * d + 2 * d)
    total += TIME_FEATURES * d + d + d * d + d if config.time_conditioning else d
    if config.code_features:
        total += (config.code_features * d + d + d * d + d) + (d * d + d)
    if config.code_digits:
        digits = sum(config.code_digits)
        total += digits * d + d * digits + digits
    return total


def preset_parameters(name: str) -> int:
    """Parameters of preset ``name`` on REFERENCE_GRID (full attention, time-conditioned)."""
    return transformer_parameters(TransformerConfig(**REFERENCE_GRID, **TRANSFORMER_PRESETS[name]))
