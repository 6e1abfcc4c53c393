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
Position embeddings start from 2-D (space) and 1-D (time) sine-cosine patterns (``embeddings``).
The size presets and the exact parameter count are in model_configs (``TRANSFORMER_PRESETS``,
``transformer_parameters``).

Context attention (``context_attention``): "bidirectional" lets every token attend to every token of
the window. "block_causal" splits the window into clean *context* frames (given, never changed while
sampling) and the frames to generate: context tokens attend only to context tokens, the others to all.
Context frames then do not depend on the frames being generated, so their keys and values are the same
at every sampler step and are computed once per window (``encode_context`` -> ``ContextCache``, used
by ``logits_at``): each step then runs the network on the frames to generate only, with exactly the
result of the uncached model. A bidirectional model's context keys and values can be cached the same
way from the window's first, full pass (``logits_and_context``, "frozen"): cheaper by the same share,
but an approximation.

Axis legend:
    B  batch                    T  frames in the window (<= config.frames)
    Tc context frames           Tn frames to generate (T = Tc + Tn)    M  positions whose logits are wanted
    H  token rows per frame     W  token columns per frame      S = H*W tokens per frame
       (H, W = config.grid_height, grid_width: the token grid, never pixels)
    D  model width              V  vocabulary (the mask token is id V)
    t  per-frame masking time in [0, 1] (``times`` [B,T]; 1 = clean, 0 = fully masked)
    Q  code digits (FSQ channels)   L = ΣL_q digit values over all channels
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from .embeddings import code_digit_rows, sincos_grid, sincos_positions, timestep_features
from .model_configs import TIME_FEATURES, TransformerConfig

KeysValues = tuple[Tensor, Tensor]  # one attention layer's keys and values, each [B',K,N',D/K]
POSITION_SCALE = 0.05  # the sine-cosine start of the position embeddings, next to token embeddings of std 0.02


SCORE_ELEMENTS = 1 << 20  # attention scores computed at once by bf16_cpu_attention (2 MiB in bf16: 4 MiB measured 6 % slower, 512 KiB 13 %)


def bf16_cpu_attention(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """``F.scaled_dot_product_attention`` for bf16 on a CPU without AMX: q [B',K,Nq,d], k, v
    [B',K,Nk,d], bool ``mask`` broadcastable to [B',K,Nq,Nk] (True: attend) -> [B',K,Nq,d].

    Two bf16 matmuls around a softmax (whose sums PyTorch takes in fp32), over blocks of query rows
    so that at most SCORE_ELEMENTS scores exist at once. Where the CPU has AVX512-BF16 but no AMX,
    PyTorch's CPU flash-attention kernel in bf16 runs no faster than in fp32 (14.9 against 14.2 ms for
    4 heads of 1,024 tokens on a Zen 4 core); this runs in 8.2 ms, its bf16 matmuls at about 4x the
    fp32 rate. With AMX the flash kernel is the faster one (a network call 0.65x the CPU time on a
    Xeon core with AMX, ``python -m benchmarks levers``): ``Attention.blocked_bf16`` chooses
    (``runtime.cast_for_inference`` sets it)."""
    q = (q * q.shape[-1] ** -0.5).contiguous()  # blocks of query rows that the matmul need not copy
    keys, v = k.transpose(-1, -2).contiguous(), v.contiguous()  # [B',K,d,Nk]: laid out once, not per block
    rows = max(1, SCORE_ELEMENTS // (q.shape[0] * q.shape[1] * k.shape[2]))
    out = []
    for i in range(0, q.shape[2], rows):
        scores = q[:, :, i : i + rows] @ keys  # [B',K,rows,Nk]
        if mask is not None:
            scores = scores.masked_fill(~mask[..., i : i + rows, :], float("-inf"))
        out.append(scores.softmax(-1) @ v)
    return torch.cat(out, dim=2)


class TanhGELU(nn.Module):
    """GELU in its tanh approximation, the form the model is trained with.

    In bf16 on a CPU the exact (erf) form is computed instead: PyTorch's CPU tanh is slow (the tanh
    form costs 1.6 ms per million bf16 elements on a Zen 4 core, the erf form 0.4 ms: a tenth of a
    network call), and the two forms differ by at most 4.7e-4 (near x = -2.7), less than bf16's own
    rounding. Over every bf16 input in [-8, 8], the tanh form computed in bf16 lies within 0.0078 of
    the exact tanh form and the erf form within 0.0082; 75 % of the outputs are the same bf16 number.
    fp32 runs the tanh form, exactly as trained."""

    def forward(self, x: Tensor) -> Tensor:
        fast = x.dtype == torch.bfloat16 and x.device.type == "cpu"
        return F.gelu(x, approximate="none" if fast else "tanh")


class Attention(nn.Module):
    """Multi-head self-attention over the token axis of [B', N', D] (SDPA).

    ``blocked_bf16``: in bf16 on a CPU, run ``bf16_cpu_attention`` instead of SDPA (the default: faster
    on CPUs with AVX512-BF16 but no AMX; ``MaskFlowTransformer.use_blocked_bf16_attention`` sets every
    block's, ``runtime.cast_for_inference`` for the CPU it runs on).

    ``memory``: keys and values of further tokens (a context cache) that every query also attends to;
    ``queries``: the positions along N' whose outputs are wanted (default all). Returns the output
    [B', N'q, D] and this call's own keys and values."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.blocked_bf16 = True

    def forward(self, x: Tensor, mask: Tensor | None = None, memory: KeysValues | None = None,
                queries: Tensor | None = None) -> tuple[Tensor, KeysValues]:
        q, k, v = rearrange(self.qkv(x), "b n (three k d) -> three b k n d", three=3, k=self.heads)
        if queries is not None:
            q = q[:, :, queries]  # [B',K,N'q,D/K]
        keys, values = (k, v) if memory is None else (torch.cat([memory[0], k], dim=2), torch.cat([memory[1], v], dim=2))
        if self.blocked_bf16 and q.dtype == torch.bfloat16 and q.device.type == "cpu":
            y = bf16_cpu_attention(q, keys, values, mask)
        else:
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=mask)  # [B',K,N'q,D/K]
        return self.out(rearrange(y, "b k n d -> b n (k d)")), (k, v)


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
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), TanhGELU(), nn.Linear(hidden, dim))
        self.modulation = nn.Linear(dim, 6 * dim)

    def _attend(self, x: Tensor, frame_mask: Tensor | None, memory: KeysValues | None,
                queries: Tensor | None) -> tuple[Tensor, KeysValues]:
        """x [B,T,S,D] -> y [B,Tq,S,D] (Tq: the ``queries`` frames, default all T) and keys/values.

        ``frame_mask``: bool [B,Tq,T'] which frames' tokens a query frame may see (T' counts the
        memory's frames first); ``memory``: keys/values of further frames (space blocks take none)."""
        b, t, s, _ = x.shape
        tq = t if queries is None else len(queries)
        if self.axis == "full":
            mask = None if frame_mask is None else frame_mask.repeat_interleave(s, 1).repeat_interleave(s, 2)[:, None]
            rows = None if queries is None else (queries[:, None] * s + torch.arange(s, device=x.device)).flatten()
            y, kv = self.attn(rearrange(x, "b t s d -> b (t s) d"), mask, memory, rows)
            return rearrange(y, "b (t s) d -> b t s d", t=tq), kv
        if self.axis == "space":
            assert memory is None, "space attention stays inside a frame"
            y, kv = self.attn(rearrange(x if queries is None else x[:, queries], "b t s d -> (b t) s d"))
            return rearrange(y, "(b t) s d -> b t s d", b=b), kv
        mask = None if frame_mask is None else frame_mask.repeat_interleave(s, 0)[:, None]  # [(B S),1,Tq,T']
        y, kv = self.attn(rearrange(x, "b t s d -> (b s) t d"), mask, memory, queries)
        return rearrange(y, "(b s) t d -> b t s d", b=b), kv

    def forward(self, x: Tensor, cond: Tensor, frame_mask: Tensor | None = None, memory: KeysValues | None = None,
                queries: Tensor | None = None) -> tuple[Tensor, KeysValues]:
        """x [B,T,S,D], cond [B,T,D] (one condition per frame, broadcast over its tokens) -> the
        ``queries`` frames' outputs [B,Tq,S,D] (default all) and this block's keys and values."""
        mod = self.modulation(F.silu(cond))[:, :, None]  # [B,T,1,6D]
        shift1, scale1, gate1, shift2, scale2, gate2 = mod.chunk(6, dim=-1)
        h = self.norm1(x) * (1 + scale1) + shift1  # keys and values need every frame
        if queries is not None:
            x, gate1, shift2, scale2, gate2 = (z[:, queries] for z in (x, gate1, shift2, scale2, gate2))
        y, kv = self._attend(h, frame_mask, memory, queries)
        x = x + gate1 * y
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2), kv


def context_frame_mask(context: Tensor) -> Tensor:
    """Block-causal visibility from context frames bool [B,T]: bool [B,T,T], True where query frame i
    may attend to key frame j (a context frame sees context frames only; other frames see all)."""
    return ~context[:, :, None] | context[:, None, :]


@dataclass
class ContextCache:
    """Keys and values of a window's context frames in every block of a block-causal model.

    Valid for calls with the same context frames (window positions ``frames``) holding the same
    ``tokens`` at time 1; ``MaskFlowTransformer.logits_at`` checks the tokens."""

    frames: Tensor  # long [Tc], the context frames' positions in the window
    tokens: Tensor  # long [B,Tc,S]
    memory: list[Optional[KeysValues]]  # per block; None for space blocks (they stay inside a frame)


class MaskFlowTransformer(nn.Module):
    """Predicts logits over the vocabulary for every token of a partly masked window."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.checkpoint_activations = False  # training: recompute each block in the backward pass (see forward)
        d = config.dim
        self.token_embed = nn.Embedding(config.vocab_size + 1, d)
        self.space_pos = nn.Parameter(torch.zeros(config.grid_height * config.grid_width, d))
        self.time_pos = nn.Parameter(torch.zeros(config.frames, d))
        if config.time_conditioning:
            self.time_embed = nn.Sequential(nn.Linear(TIME_FEATURES, d), nn.SiLU(), nn.Linear(d, d))
        else:
            self.null_cond = nn.Parameter(torch.zeros(d))
        axes = ["full"] * config.depth if config.attention == "full" else ["space", "time"] * config.depth
        self.blocks = nn.ModuleList(Block(d, config.heads, config.mlp_ratio, a) for a in axes[: config.depth])
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False, eps=1e-6)
        self.final_modulation = nn.Linear(d, 2 * d)
        self.head = nn.Linear(d, config.vocab_size)
        if config.code_features:
            self.register_buffer("codes", torch.zeros(config.vocab_size, config.code_features))  # [V,F]
            self.code_mlp = nn.Sequential(nn.Linear(config.code_features, d), TanhGELU(), nn.Linear(d, d))
            self.code_query = nn.Linear(d, d)
        if config.code_digits:
            self.register_buffer("digit_rows", code_digit_rows(config.code_digits), persistent=False)  # [V,Q]
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
        if not self.space_pos.is_meta:  # a skeleton on the meta device (the weights' shape check) needs no values
            with torch.no_grad():
                self.space_pos.copy_(POSITION_SCALE * sincos_grid(cfg.grid_height, cfg.grid_width, cfg.dim))
                self.time_pos.copy_(POSITION_SCALE * sincos_positions(cfg.frames, cfg.dim))
        for block in self.blocks:  # adaLN-Zero: every block starts as the identity
            nn.init.zeros_(block.modulation.weight)
            nn.init.zeros_(block.modulation.bias)
        nn.init.zeros_(self.final_modulation.weight)
        nn.init.zeros_(self.final_modulation.bias)

    def use_blocked_bf16_attention(self, blocked: bool) -> None:
        """Whether attention in bf16 on a CPU runs in blocks of query rows (``bf16_cpu_attention``)
        rather than through PyTorch's flash kernel: an inference-time choice of kernel, the same
        attention either way (not part of the config)."""
        for module in self.modules():
            if isinstance(module, Attention):
                module.blocked_bf16 = blocked

    def set_code_features(self, features: Tensor) -> None:
        """Store per-code features [V,F] (before training; they are saved with the weights)."""
        assert self.config.code_features and features.shape == self.codes.shape, "features do not fit the config"
        with torch.no_grad():
            self.codes.copy_(features)

    def _digit_log_probs(self, y: Tensor) -> Tensor:
        """[...,D] -> log p(id) [...,V] under independent per-channel digits: Σ_q log p_q(digit_q(id))."""
        per_digit = self.digit_head(y).float().split(list(self.config.code_digits), dim=-1)  # Q x [...,L_q]
        log_probs = torch.cat([F.log_softmax(z, dim=-1) for z in per_digit], dim=-1)  # [...,L]
        with torch.autocast(y.device.type, enabled=False):  # fp32: sums of log-probabilities, a small product
            return log_probs[..., self.digit_rows].sum(-1)  # [...,V,Q] -> [...,V]

    def condition(self, times: Tensor) -> Tensor:
        """Per-frame condition [B,T,D] from the per-frame masking times ``times`` [B,T]."""
        if self.config.time_conditioning:
            return self.time_embed(timestep_features(times, TIME_FEATURES).to(self.time_pos.dtype))
        return self.null_cond.expand(*times.shape, -1)

    def forward(self, tokens: Tensor, times: Tensor, context: Tensor | None = None) -> Tensor:
        """tokens: long [B,T,H,W] (mask id = V); times: float [B,T], t per frame -> logits [B,T,H,W,V].

        ``context``: bool [B,T], the clean context frames of a block-causal model (default: the frames
        at time 1, as in training); a bidirectional model ignores it.

        With ``checkpoint_activations`` set, a training-mode pass with gradients keeps only each
        block's input for the backward pass and runs the block again there (torch.utils.checkpoint):
        the activations kept shrink from every block's to one block's plus the blocks' inputs, for
        one more forward pass of the blocks (about a third more compute a step). The result is the same."""
        b, frames, h, w = tokens.shape
        x, cond, code_vectors = self._embed(tokens, times, torch.arange(frames, device=tokens.device))
        mask = self._frame_mask(times, context)
        recompute = self.checkpoint_activations and self.training and torch.is_grad_enabled()
        for block in self.blocks:
            x, _ = checkpoint(block, x, cond, mask, use_reentrant=False) if recompute else block(x, cond, mask)
        logits = self._logits(self._final(x, cond), code_vectors)  # [B,T,S,V]
        return rearrange(logits, "b t (h w) v -> b t h w v", h=h)

    def logits_at(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor | None = None,
                  cache: ContextCache | None = None) -> Tensor:
        """``forward(tokens, times, context)[wanted]`` [M,V] for bool ``wanted`` [B,T,H,W], computed more cheaply.

        The last block runs its queries and MLP only on the frames that hold wanted positions, and the
        head only on the wanted positions. With a ``cache`` of this window's context frames
        (``encode_context``, ``logits_and_context``) the network runs on the other frames only (exact
        for block-causal models); wanted positions must lie in those, and the context frames must hold
        the cached tokens."""
        return self._wanted_pass(tokens, times, wanted, context, cache)[0]

    @torch.no_grad()
    def logits_and_context(self, tokens: Tensor, times: Tensor, wanted: Tensor, frames: Tensor) -> tuple[Tensor, ContextCache]:
        """A bidirectional model's ``logits_at(tokens, times, wanted)`` [M,V] and, from the same pass, the
        keys and values of the context frames (long [Tc] window positions) in every block: a "frozen"
        context cache (``runtime.ModelDenoiser``) for the window's later calls.

        The cache holds the context's keys and values as they are at this state of the other frames;
        they would drift a little as those frames unmask, so calls that reuse them approximate the
        uncached model."""
        assert not self.config.block_causal, "a block-causal model's context cache comes from encode_context"
        logits, memory = self._wanted_pass(tokens, times, wanted, None, None, frames)
        return logits, ContextCache(frames, rearrange(tokens[:, frames], "b t h w -> b t (h w)"), memory)

    def _wanted_pass(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor | None,
                     cache: ContextCache | None, kept: Tensor | None = None) -> tuple[Tensor, list[Optional[KeysValues]]]:
        """``logits_at``'s pass -> logits [M,V] and, for window frames ``kept`` (long [Tc]; only on a
        whole-window pass), their keys and values in every block (None for space blocks; empty
        without ``kept``)."""
        b, frames, h, w = tokens.shape
        positions = torch.arange(frames, device=tokens.device)
        memory: list[Optional[KeysValues]] = [None] * len(self.blocks)
        mask = None
        if cache is None:
            mask = self._frame_mask(times, context)
        else:
            assert kept is None, "keys and values are kept from a whole-window pass"
            assert torch.equal(rearrange(tokens[:, cache.frames], "b t h w -> b t (h w)"), cache.tokens), "context changed"
            rest = torch.ones(frames, dtype=torch.bool, device=tokens.device)
            rest[cache.frames] = False
            positions, memory = positions[rest], cache.memory
            tokens, times, wanted = tokens[:, rest], times[:, rest], wanted[:, rest]
        x, cond, code_vectors = self._embed(tokens, times, positions)
        queries = wanted.flatten(2).any(2).any(0).nonzero()[:, 0]  # [Tq] frames with wanted positions
        picks = {}
        if kept is not None:
            rows = (kept[:, None] * (h * w) + torch.arange(h * w, device=tokens.device)).flatten()  # [Tc*S] rows of a full block
            picks = {"space": None, "full": rows, "time": kept}
        kept_memory: list[Optional[KeysValues]] = []
        last = len(self.blocks) - 1
        for i, block in enumerate(self.blocks):
            if i < last:
                x, (k, v) = block(x, cond, mask, memory[i])
            else:
                x, (k, v) = block(x, cond, None if mask is None else mask[:, queries], memory[i], queries)
            if picks:
                picked = picks[block.axis]
                kept_memory.append(None if picked is None else (k[:, :, picked], v[:, :, picked]))
        y = self._final(x, cond[:, queries])  # [B,Tq,S,D]
        return self._logits(y[rearrange(wanted[:, queries], "b t h w -> b t (h w)")], code_vectors), kept_memory  # [M,V]

    @torch.no_grad()
    def encode_context(self, tokens: Tensor, times: Tensor, frames: Tensor) -> ContextCache:
        """A block-causal model's keys and values of the context frames (long [Tc] window positions) in
        every block, from the window's tokens [B,T,H,W] and masking times [B,T].

        Context frames attend to each other only, so one pass over them gives exactly what every later
        call with the same context needs. (A bidirectional model's context depends on the other frames:
        its frozen cache comes from a whole-window pass, ``logits_and_context``.)"""
        assert self.config.block_causal, "a bidirectional model's context cache comes from logits_and_context"
        clean = tokens[:, frames]  # [B,Tc,H,W]
        x, cond, _ = self._embed(clean, times[:, frames], frames)
        memory: list[Optional[KeysValues]] = []
        for block in self.blocks:
            x, kv = block(x, cond)
            memory.append(None if block.axis == "space" else kv)
        return ContextCache(frames, rearrange(clean, "b t h w -> b t (h w)"), memory)

    def _embed(self, tokens: Tensor, times: Tensor, positions: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Tokens [B,T,H,W] at window frames ``positions`` [T] -> x [B,T,S,D], conditions [B,T,D] and the
        per-code vectors [V,D] of code features (None without them)."""
        _, frames, h, w = tokens.shape
        cfg = self.config
        assert (h, w) == (cfg.grid_height, cfg.grid_width) and frames <= cfg.frames, "window does not fit the model"
        flat = rearrange(tokens, "b t h w -> b t (h w)")
        x = self.token_embed(flat)  # [B,T,S,D]
        code_vectors = None
        if cfg.code_features:
            code_vectors = self.code_mlp(self.codes.to(x.dtype))  # [V,D]
            x = x + F.pad(code_vectors, (0, 0, 0, 1))[flat]  # the mask token (id V) gets a zero row
        if cfg.code_digits:
            digit_vectors = self.digit_embed.weight[self.digit_rows].sum(1).to(x.dtype)  # [V,D]: the sum over its digits
            x = x + F.pad(digit_vectors, (0, 0, 0, 1))[flat]  # the mask token has no digits
        x = x + self.space_pos + self.time_pos[positions, None]
        return x, self.condition(times), code_vectors

    def _frame_mask(self, times: Tensor, context: Tensor | None) -> Tensor | None:
        if not self.config.block_causal:
            return None
        return context_frame_mask(times >= 1 if context is None else context)  # [B,T,T]

    def _final(self, x: Tensor, cond: Tensor) -> Tensor:
        """The final adaLN: x [B,T,S,D], cond [B,T,D] -> [B,T,S,D]."""
        shift, scale = self.final_modulation(F.silu(cond))[:, :, None].chunk(2, dim=-1)
        return self.final_norm(x) * (1 + scale) + shift

    def _logits(self, y: Tensor, code_vectors: Tensor | None) -> Tensor:
        """[...,D] -> logits [...,V]."""
        logits = self.head(y)
        if code_vectors is not None:
            logits = logits + self.code_query(y) @ code_vectors.T
        if self.config.code_digits:
            logits = logits + self._digit_log_probs(y)
        return logits
