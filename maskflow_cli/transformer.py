"""The MaskFlow transformer: a bidirectional space-time transformer over frame tokens.

DiT/Latte-style (Peebles & Xie 2023; Ma et al. 2024): token embedding with one extra row for the mask
token, learned spatial and temporal position embeddings, per-frame timestep conditioning through
adaLN-Zero (switched off for a timestep-independent model), attention over all space-time tokens or
factorised into alternating spatial and temporal blocks, and a linear head over the vocabulary.

Optional code features (``code_features`` = F > 0): a buffer [V,F] describing what each token looks
like (``training.code_centroids``: the mean pixel patch that the tokenizer codes as that token). A
shared MLP turns it into a vector per code that is added to the token embedding and scored against
the output, next to the free per-code embedding and head. Codes that look alike then start alike, so
the network need not learn from scratch, code by code, that a shifted digit stroke is another id.
Optional code digits (``code_digits`` = the tokenizer's FSQ levels L_1..L_Q, least significant
first): a token id is a number in mixed radix, one digit per FSQ channel, and ids that share digits
code similar latents. Each digit value gets a learned vector, added to the token embedding, and the
logits get a factorised term: the sum over channels of a per-channel log-softmax, taken at each id's
digits, so the predicted distribution starts as a product of Q small categoricals (8·5·5·5 classes
instead of 1,000 unrelated ids) and a near miss in one channel still earns credit for the others.
The free per-id head adds to it, so dependencies between channels can still be learned.
Position embeddings start from 2-D (space) and 1-D (time) sine-cosine patterns.

Axis legend:
    B  batch                    T  frames in the window (<= config.frames)
    H  token rows per frame     W  token columns per frame      S = H*W tokens per frame
    D  model width              V  vocabulary (the mask token is id V)
    Q  code digits (FSQ channels)   L = ΣL_q digit values over all channels
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .errors import ConfigError
from .schedules import SCHEDULERS

ATTENTION_KINDS = ("full", "factorized")
POSITION_SCALE = 0.05  # the sine-cosine start of the position embeddings, next to token embeddings of std 0.02


@dataclass(frozen=True)
class TransformerConfig:
    vocab_size: int  # V, the tokenizer's vocabulary; the mask token is id V
    frames: int  # window length the model was trained on
    height: int  # token rows per frame
    width: int  # token columns per frame
    dim: int = 384
    depth: int = 8
    heads: int = 6
    mlp_ratio: float = 4.0
    attention: str = "full"  # "full" or "factorized" (alternating space / time blocks)
    time_conditioning: bool = True  # False: a timestep-independent model that ignores t
    scheduler: str = "sigmoid"  # κ(t) the model was trained with (schedules.SCHEDULERS)
    code_features: int = 0  # F: per-code feature size (0: plain embeddings only)
    code_digits: tuple[int, ...] = ()  # the tokenizer's FSQ levels, least significant first (empty: ids only)

    def __post_init__(self) -> None:
        if self.attention not in ATTENTION_KINDS:
            raise ConfigError("attention", self.attention, f"choose one of {', '.join(ATTENTION_KINDS)}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError("scheduler", self.scheduler, f"choose one of {', '.join(SCHEDULERS)}")
        if self.dim % self.heads:
            raise ConfigError("dim", self.dim, f"must be divisible by heads ({self.heads})")
        for name in ("vocab_size", "frames", "height", "width", "depth"):
            if getattr(self, name) < 1:
                raise ConfigError(name, getattr(self, name), "must be at least 1")
        if self.code_features < 0:
            raise ConfigError("code_features", self.code_features, "must not be negative")
        if self.code_digits and (min(self.code_digits) < 2 or math.prod(self.code_digits) != self.vocab_size):
            raise ConfigError("code_digits", list(self.code_digits), f"must be levels of at least 2 whose product is the vocabulary {self.vocab_size}")

    @property
    def mask_id(self) -> int:
        return self.vocab_size


# Size presets for training: width, depth, heads (the rest from the data and the tokenizer).
PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"dim": 32, "depth": 2, "heads": 2},  # tests
    "small": {"dim": 256, "depth": 8, "heads": 4},  # ~10M parameters
    "base": {"dim": 384, "depth": 7, "heads": 6},  # ~20M parameters
}


def code_digit_picks(levels: tuple[int, ...]) -> Tensor:
    """Which digit values make up each id of the mixed-radix vocabulary of ``levels`` (least
    significant first): float [L,V] with a 1 at (ΣL_<q + digit_q(v), v) for each channel q."""
    place = [math.prod(levels[:q]) for q in range(len(levels))]  # mixed-radix place values
    first_row = [sum(levels[:q]) for q in range(len(levels))]  # where each channel's digit values start
    ids = torch.arange(math.prod(levels))[:, None]  # [V,1]
    rows = (ids // torch.tensor(place)) % torch.tensor(levels) + torch.tensor(first_row)  # [V,Q]
    picks = torch.zeros(sum(levels), math.prod(levels))
    picks[rows, ids] = 1
    return picks


def timestep_features(t: Tensor, channels: int = 256) -> Tensor:
    """Sinusoidal features of levels t in [0, 1]: [...] -> [..., channels]."""
    half = channels // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t.float()[..., None] * freqs  # [..., half]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def sincos_positions(length: int, channels: int) -> Tensor:
    """1-D sine-cosine pattern [length, channels], wavelengths 2 to ~4·length (an odd last channel is 0)."""
    freqs = torch.exp(-math.log(2.0 * length) * torch.arange(channels // 2) / max(1, channels // 2 - 1)) * math.pi
    angles = torch.arange(length, dtype=torch.float32)[:, None] * freqs  # [length, channels//2]
    return F.pad(torch.cat([angles.sin(), angles.cos()], dim=-1), (0, channels % 2))


def sincos_grid(height: int, width: int, channels: int) -> Tensor:
    """2-D pattern [height*width, channels]: half the channels code the row, half the column."""
    half = channels // 2
    rows = sincos_positions(height, half)[:, None].expand(height, width, half)
    cols = sincos_positions(width, channels - half)[None].expand(height, width, channels - half)
    return rearrange(torch.cat([rows, cols], dim=-1), "h w c -> (h w) c")


class Attention(nn.Module):
    """Multi-head self-attention over the token axis of [B', N', D] (SDPA)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = rearrange(self.qkv(x), "b n (three k d) -> three b k n d", three=3, k=self.heads)
        y = F.scaled_dot_product_attention(q, k, v)  # [B',K,N',D/K]
        return self.out(rearrange(y, "b k n d -> b n (k d)"))


class Block(nn.Module):
    """Pre-norm transformer block with adaLN-Zero modulation by a per-frame condition.

    ``axis`` picks which tokens attend to each other: "full" (all of the window), "space" (tokens of
    the same frame) or "time" (tokens at the same position across frames).
    """

    def __init__(self, dim: int, heads: int, mlp_ratio: float, axis: str) -> None:
        super().__init__()
        self.axis = axis
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, dim))
        self.modulation = nn.Linear(dim, 6 * dim)

    def _attend(self, x: Tensor) -> Tensor:
        b, t, s, _ = x.shape
        if self.axis == "full":
            y = self.attn(rearrange(x, "b t s d -> b (t s) d"))
            return rearrange(y, "b (t s) d -> b t s d", t=t)
        if self.axis == "space":
            y = self.attn(rearrange(x, "b t s d -> (b t) s d"))
            return rearrange(y, "(b t) s d -> b t s d", b=b)
        y = self.attn(rearrange(x, "b t s d -> (b s) t d"))
        return rearrange(y, "(b s) t d -> b t s d", b=b)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        # x: [B,T,S,D]; cond: [B,T,D], one condition per frame, broadcast over its tokens
        mod = self.modulation(F.silu(cond))[:, :, None]  # [B,T,1,6D]
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)
        x = x + gate1 * self._attend(self.norm1(x) * (1 + scale1) + shift1)
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class MaskFlowTransformer(nn.Module):
    """Predicts logits over the vocabulary for every token of a partly masked window."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.token_embed = nn.Embedding(config.vocab_size + 1, d)
        self.space_pos = nn.Parameter(torch.zeros(config.height * config.width, d))
        self.time_pos = nn.Parameter(torch.zeros(config.frames, d))
        if config.time_conditioning:
            self.time_embed = nn.Sequential(nn.Linear(256, d), nn.SiLU(), nn.Linear(d, d))
        else:
            self.null_cond = nn.Parameter(torch.zeros(d))
        axes = ["full"] * config.depth if config.attention == "full" else ["space", "time"] * config.depth
        self.blocks = nn.ModuleList(Block(d, config.heads, config.mlp_ratio, a) for a in axes[: config.depth])
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Linear(d, 2 * d)
        self.head = nn.Linear(d, config.vocab_size)
        if config.code_features:
            self.register_buffer("codes", torch.zeros(config.vocab_size, config.code_features))  # [V,F]
            self.code_mlp = nn.Sequential(nn.Linear(config.code_features, d), nn.GELU(approximate="tanh"), nn.Linear(d, d))
            self.code_query = nn.Linear(d, d)
        if config.code_digits:
            self.register_buffer("digit_picks", code_digit_picks(config.code_digits), persistent=False)  # [L,V]
            self.digit_embed = nn.Embedding(sum(config.code_digits), d)
            self.digit_head = nn.Linear(d, sum(config.code_digits))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.02)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.token_embed.weight, std=0.02)
        if self.config.code_digits:
            nn.init.normal_(self.digit_embed.weight, std=0.02)
        cfg = self.config
        with torch.no_grad():
            self.space_pos.copy_(POSITION_SCALE * sincos_grid(cfg.height, cfg.width, cfg.dim))
            self.time_pos.copy_(POSITION_SCALE * sincos_positions(cfg.frames, cfg.dim))
        for block in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(block.modulation.weight)
            nn.init.zeros_(block.modulation.bias)
        nn.init.zeros_(self.final_modulation.weight)
        nn.init.zeros_(self.final_modulation.bias)

    def set_code_features(self, features: Tensor) -> None:
        """Store per-code features [V,F] (before training; they are saved with the weights)."""
        assert self.config.code_features and features.shape == self.codes.shape, "features do not fit the config"
        with torch.no_grad():
            self.codes.copy_(features)

    def _digit_log_probs(self, y: Tensor) -> Tensor:
        """[B,T,S,D] -> log p(id) [B,T,S,V] under independent per-channel digits: Σ_q log p_q(digit_q(id))."""
        per_digit = self.digit_head(y).float().split(list(self.config.code_digits), dim=-1)  # Q x [B,T,S,L_q]
        log_probs = torch.cat([F.log_softmax(z, dim=-1) for z in per_digit], dim=-1)  # [B,T,S,L]
        with torch.autocast(y.device.type, enabled=False):  # fp32: sums of log-probabilities, a small product
            return log_probs @ self.digit_picks.float()  # [B,T,S,V]

    def condition(self, t: Tensor) -> Tensor:
        """Per-frame condition [B,T,D] from per-frame levels t [B,T]."""
        if self.config.time_conditioning:
            return self.time_embed(timestep_features(t).to(self.time_pos.dtype))
        return self.null_cond.expand(*t.shape, -1)

    def forward(self, tokens: Tensor, t: Tensor) -> Tensor:
        """tokens: long [B,T,H,W] (mask id = V); t: float [B,T] -> logits [B,T,H,W,V]."""
        b, frames, h, w = tokens.shape
        cfg = self.config
        assert (h, w) == (cfg.height, cfg.width) and frames <= cfg.frames, "window does not fit the model"
        flat = rearrange(tokens, "b t h w -> b t (h w)")
        x = self.token_embed(flat)  # [B,T,S,D]
        if cfg.code_features:
            code_vectors = self.code_mlp(self.codes.to(x.dtype))  # [V,D]
            x = x + F.pad(code_vectors, (0, 0, 0, 1))[flat]  # the mask token (id V) gets a zero row
        if cfg.code_digits:
            digit_vectors = self.digit_picks.T.to(x.dtype) @ self.digit_embed.weight  # [V,D]: the sum over its digits
            x = x + F.pad(digit_vectors, (0, 0, 0, 1))[flat]  # the mask token has no digits
        x = x + self.space_pos + self.time_pos[:frames, None]
        cond = self.condition(t)  # [B,T,D]
        for block in self.blocks:
            x = block(x, cond)
        shift, scale = self.final_modulation(F.silu(cond))[:, :, None].chunk(2, dim=-1)
        y = self.final_norm(x) * (1 + scale) + shift  # [B,T,S,D]
        logits = self.head(y)  # [B,T,S,V]
        if cfg.code_features:
            logits = logits + self.code_query(y) @ code_vectors.T
        if cfg.code_digits:
            logits = logits + self._digit_log_probs(y)
        return rearrange(logits, "b t (h w) v -> b t h w v", h=h)
