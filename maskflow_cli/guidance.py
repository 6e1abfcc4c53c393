"""Classifier-free guidance on the context (the ``partial_context_guidance`` of MaskFlow's code).

A guided step asks the network twice: for the window as it is (cond), and for the window without
its context frames (uncond); it returns ``cond + w·(cond − uncond)``, pushing the prediction away
from what the model predicts with no context toward what the context implies. Nothing is retrained:
the model saw fully masked frames in training (independent per-frame masking times). Infill windows,
with context on both sides, are guided against both sides left out.

``GuidedDenoiser`` wraps a ``runtime.ModelDenoiser`` behind the samplers' denoiser signature, so the
samplers are unchanged. ``uncond`` says how the context is left out:
- "masked": the context frames hold mask tokens at masking time 0 and the window keeps its length.
  Cond and uncond run as one batched network call when the denoiser runs the whole window anyway
  (no context cache in use), else as two calls (the cond call keeps its cache);
- "dropped": the context frames are left out of the uncond pass and the other frames keep their
  window positions, a shorter pass (T − Tc frames instead of T; ``ModelDenoiser.without_context``).
  For a bidirectional model the masked frames differ only by their position, so this drops inputs
  that carry almost nothing; it is not exactly "masked" (the other frames no longer attend to them).
  At a window's first step the frames left are all mask tokens: that uncond input is the same for
  every window and video, so its logits are computed once and kept (``ModelDenoiser.without_context``),
  and the first step's guidance costs no pass after the first window.
``weights`` gives w per network call of a window (the k-th entry for the k-th call since
``start_window``; calls past its end are unguided), so guidance can be limited to the first steps.
A call with w = 0, or in a window without context (generate's first window), makes no uncond pass.
``annealed_weights`` is the schedule ``SamplingOptions.guidance`` runs, with the uncond dropped: w at
the first step, falling linearly to 0 by the middle of the window's steps (4 steps: w, w/2, 0, 0),
the way MGM's noise anneals. On the shipped weights (``python -m benchmarks guidance``) this kept the
short-term gain of guiding every step, kept the ink of 160-frame extends near the real one where
every-step guidance over-inked, and costs half the uncond passes; "dropped" measured as good as "masked".
No fixed w held every long video, though: the drift compounds from window to window, and which way
a video goes differs between seeds. ``GuidanceAnchor`` closes the loop: the engine scales w per
sequence after each window (``GuidedDenoiser.scale``) by how far the new frames' intensity has
drifted from the frames the rollout starts from (``SamplingOptions.anchor``, the gain).

NFE: ``ModelDenoiser.calls`` counts network passes, and the uncond pass is one of its own, batched
with the cond pass or not: a guided step counts 2 passes, an unguided one 1, a guided step whose
uncond logits were kept 1. ``uncond_passes`` counts the uncond passes that ran.

Axis legend: B sequences, T frames in the window, Tc context frames, H, W token grid, M wanted
positions, V vocabulary.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor

from .errors import InvalidArgumentError
from .runtime import ModelDenoiser

UNCOND = ("masked", "dropped")
ANCHOR_LIMIT = 2.0  # the largest multiple of w the anchor asks for


def annealed_weights(w: float, steps: int) -> list[float]:
    """w per step of a window of ``steps`` steps: w·(1 − 2k/K), none from the middle step on."""
    return [w * max(0.0, 1 - 2 * k / steps) for k in range(steps)]


class GuidanceAnchor:
    """Keeps a rolled-out video's intensity near the frames it starts from by scaling w.

    Without feedback a long rollout drifts: every window loses or gains a few per cent of its
    intensity against its context, and the drift compounds (unguided, the shipped digits fade to
    black; a guidance w that holds one video over-inks another). The anchor compares, per sequence,
    the mean intensity of the latest window's new frames with the reference's (the frames the rollout
    starts from), each frame's intensity read off its tokens: ``intensity`` gives each token's
    mean pixel value, decoded alone (``MaskFlowPipeline.token_intensity``). Guidance pushes away
    from the model's context-free prediction, which favours empty frames, so w is scaled by the
    relative shortfall: ``clamp(1 + gain·(ref − now) / ref, 0, ANCHOR_LIMIT)``. It is proportional
    feedback on the level itself, which is what the windows accumulate: a video whose new frames
    keep the reference's intensity runs at w, one that fades gets more, one that over-draws less.

    ``reference``: long [B,N,H,W] tokens; ``gain`` > 0; ``intensity``: long tokens -> float
    intensities of the same shape."""

    def __init__(self, reference: Tensor, gain: float, intensity: Callable[[Tensor], Tensor]) -> None:
        self.intensity, self.gain = intensity, gain
        self.reference = self._level(reference)  # [B]

    def _level(self, tokens: Tensor) -> Tensor:
        """Mean token intensity of long [B,...] -> [B]."""
        return self.intensity(tokens.flatten(1)).float().cpu().mean(1)

    def scales(self, made: Tensor) -> Tensor:
        """long [B,K,H,W] new tokens -> w's multiplier per sequence, float [B]."""
        shortfall = (self.reference - self._level(made)) / self.reference.clamp_min(1e-3)
        return (1 + self.gain * shortfall).clamp(0, ANCHOR_LIMIT)


class GuidedDenoiser:
    """A ``ModelDenoiser`` whose logits are guided on the context (see the module docstring)."""

    def __init__(self, inner: ModelDenoiser, weights: Sequence[float], uncond: str = "dropped") -> None:
        if uncond not in UNCOND:
            raise InvalidArgumentError("uncond", uncond, f"choose one of {', '.join(UNCOND)}")
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise InvalidArgumentError("weights", list(weights), "every w must be a finite number, 0 (no guidance) or more")
        self.inner, self.weights, self.uncond = inner, tuple(weights), uncond
        self.mask_id, self.scheduler, self.grid, self.device = inner.mask_id, inner.scheduler, inner.grid, inner.device
        self.uncond_passes = 0
        self.scale: Tensor | None = None  # float [B]: w's multiplier per sequence (GuidanceAnchor), None: 1
        self._step = 0  # network calls asked for since start_window

    @property
    def calls(self) -> int:
        """Network passes so far, cond and uncond alike (``ModelDenoiser.calls``)."""
        return self.inner.calls

    def start_window(self) -> None:
        self.inner.start_window()
        self._step = 0

    def __call__(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor) -> Tensor:
        """The samplers' denoiser: long [B,T,H,W], float [B,T], bool [B,T,H,W], bool [T] -> logits [M,V]."""
        w = self.weights[self._step] if self._step < len(self.weights) else 0.0
        self._step += 1
        if w == 0 or not bool(context.any()):
            return self.inner(tokens, times, wanted, context)
        before = self.inner.calls
        cond, uncond = self._cond_and_uncond(tokens, times, wanted, context)  # [M,V] each
        self.uncond_passes += self.inner.calls - before - 1  # 0 where the blank uncond logits were kept
        if self.scale is None:
            return cond + w * (cond - uncond)
        per_row = w * self.scale.to(cond.device)[wanted.nonzero()[:, 0]]  # [M]: each wanted position's sequence
        return cond + per_row[:, None] * (cond - uncond)

    def _cond_and_uncond(self, tokens: Tensor, times: Tensor, wanted: Tensor, context: Tensor) -> tuple[Tensor, Tensor]:
        """The logits [M,V] at the wanted positions with the context and without it."""
        inner = self.inner
        if self.uncond == "dropped":
            return inner(tokens, times, wanted, context), inner.without_context(tokens, times, wanted, context)
        left_out = context[None, :, None, None]  # [1,T,1,1]
        blank_tokens = tokens.masked_fill(left_out, inner.mask_id)  # [B,T,H,W]
        blank_times = times.masked_fill(context[None], float(inner.scheduler.inverse(torch.tensor(0.0))))  # [B,T]: fully masked
        no_context = torch.zeros_like(context)  # [T]
        if inner.cache_context and inner.compiled is None:  # the cond call keeps its cache; the uncond one runs uncached
            return inner(tokens, times, wanted, context), inner(blank_tokens, blank_times, wanted, no_context)
        batch = tokens.shape[0]
        frames = torch.stack([context, no_context])[:, None].expand(2, batch, -1).flatten(0, 1)  # [2B,T]: per sequence
        logits = inner(torch.cat([tokens, blank_tokens]), torch.cat([times, blank_times]), torch.cat([wanted, wanted]), frames)  # [2M,V]
        inner.calls += 1  # one batched call, two network passes
        return logits.chunk(2)
