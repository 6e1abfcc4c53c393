"""The rollout engine: one function that executes a window plan (planner.py) with a denoiser.

``roll_out`` samples the plan's windows in order for a batch of B token sequences that share the
plan: each window starts from its context frames' tokens (given frames, encoded by the caller, or
frames kept from earlier windows) and the rest masked; the sampler fills it; the frames the window
keeps are handed out as they are made. The pipeline streams chunks of one video over it, and the
evaluation suites and the benchmarks run batches of videos through it, so they cannot drift apart.

``SamplingOptions`` is the one object that says how to sample: which sampler, its step budget, the
seed, the sampler-specific options (MGM's ``noise``, both samplers' ``temperature``) and the
guidance on the context (guidance.py), under which the engine wraps the denoiser.

Axis legend: B sequences, T frames in a window, K frames a window keeps, H, W token grid.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import torch
from torch import Tensor

from .defaults import DEFAULT_ANCHOR, DEFAULT_GUIDANCE, DEFAULT_STEPS, DEFAULT_TEMPERATURE, FREE_TEMPERATURE
from .errors import InvalidArgumentError
from .planner import Plan, Window
from .guidance import GuidanceAnchor, GuidedDenoiser, annealed_weights
from .runtime import ModelDenoiser
from .sampling import SAMPLERS, Callback, SamplerState

MAX_STEPS = 10_000
SEED_LIMIT = 2**63
NOISE_SAMPLERS = ("mgm",)  # samplers that take ``noise``


@dataclass(frozen=True)
class SamplingOptions:
    """How to sample a plan's windows.

    ``seed`` None means a fresh random seed (``resolved()`` draws it; runs report the seed used).
    ``noise``: MGM's Gumbel noise scale on the confidence scores, annealed to zero over the steps
    unless ``anneal`` is False (None: the sampler's default, ``defaults.MGM_NOISE``). ``temperature``: the predicted distributions are sharpened (< 1) or
    flattened (> 1) before tokens are drawn; 1 draws from them as they are. None: DEFAULT_TEMPERATURE
    (0.85) for a plan with given frames (extend, infill), FREE_TEMPERATURE (1) for one without
    (generate), where 0.85 drew fainter frames. ``guidance``: w of the
    classifier-free guidance on the context (guidance.py), 0 for none: w at a window's first step,
    annealed to 0 by its middle step (``guidance.annealed_weights``); each guided step of a window
    with context frames adds one network pass, a shorter one without those frames. ``anchor``: the
    gain of ``guidance.GuidanceAnchor``, which scales w per sequence and window to keep the new
    frames' mean intensity near that of the frames the rollout starts from (0: w as it is)."""

    sampler: str = "mgm"  # "mgm" or "fm"
    steps: int = DEFAULT_STEPS  # K, network calls per window (at most)
    seed: int | None = None
    noise: float | None = None
    temperature: float | None = None
    anneal: bool = True
    guidance: float = DEFAULT_GUIDANCE
    anchor: float = DEFAULT_ANCHOR

    def __post_init__(self) -> None:
        if self.sampler not in SAMPLERS:
            raise InvalidArgumentError("sampler", self.sampler, f"choose one of {', '.join(SAMPLERS)}")
        if not 1 <= self.steps <= MAX_STEPS:
            raise InvalidArgumentError("steps", self.steps, f"must be between 1 and {MAX_STEPS}")
        if self.seed is not None and not 0 <= self.seed < SEED_LIMIT:
            raise InvalidArgumentError("seed", self.seed, "must be between 0 and 2**63 - 1")
        if self.noise is not None:
            if self.sampler not in NOISE_SAMPLERS:
                raise InvalidArgumentError("noise", self.noise, f"only the {', '.join(NOISE_SAMPLERS)} sampler takes it; drop it or use {{param:sampler}} mgm")
            if not (math.isfinite(self.noise) and self.noise >= 0):
                raise InvalidArgumentError("noise", self.noise, "must be a finite number, 0 or more")
        if not self.anneal and self.sampler not in NOISE_SAMPLERS:
            raise InvalidArgumentError("anneal", self.anneal, f"only the {', '.join(NOISE_SAMPLERS)} sampler takes it; drop it or use {{param:sampler}} mgm")
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature > 0):
            raise InvalidArgumentError("temperature", self.temperature, "must be a finite number above 0")
        if not (math.isfinite(self.guidance) and self.guidance >= 0):
            raise InvalidArgumentError("guidance", self.guidance, "must be a finite number, 0 (no guidance) or more")
        if not (math.isfinite(self.anchor) and self.anchor >= 0):
            raise InvalidArgumentError("anchor", self.anchor, "must be a finite number, 0 (none) or more")

    def resolved(self) -> "SamplingOptions":
        """These options with a concrete seed: ``seed`` if given, else a fresh random one."""
        return self if self.seed is not None else replace(self, seed=secrets.randbits(63))

    def temperature_for(self, given: bool) -> float:
        """The temperature of a plan with ``given`` frames (extend, infill) or without (generate)."""
        if self.temperature is not None:
            return self.temperature
        return DEFAULT_TEMPERATURE if given else FREE_TEMPERATURE

    def sampler_options(self, given: bool) -> dict:
        """The keyword arguments of the chosen sampler beyond the shared signature, for a plan with
        given frames or without."""
        extra: dict = {"temperature": self.temperature_for(given)}
        if self.noise is not None:
            extra["noise"] = self.noise
        if not self.anneal:
            extra["anneal"] = False
        return extra


ContextTokens = Callable[[list[int]], Tensor]  # frame indices -> their tokens, long [B,n,H,W]


def roll_out(plan: Plan, denoiser: ModelDenoiser, options: SamplingOptions, seed: int, context_tokens: ContextTokens,
             *, batch: int = 1, callback: Callback = None,
             token_intensity: Callable[[Tensor], Tensor] | None = None) -> Iterator[tuple[Window, Tensor]]:
    """Execute ``plan`` for ``batch`` sequences at once; yield ``(window, kept)`` per window in order,
    ``kept`` the tokens of ``window.keep``, long [B,K,H,W] on the CPU.

    ``context_tokens(frames)`` gives the tokens of given (input) frames the first time a window
    needs them as context; frames made by earlier windows come from those windows. One generator
    seeded with ``seed`` drives every window, so the same plan, options and seed give the same
    tokens. ``callback(state)`` is called after every sampler step with the window's
    :class:`~sampling.SamplerState` (its ``window`` the window's index in the plan); ``denoiser.calls``
    counts the network passes (shared by the batch; a guided step's uncond pass counts as one more).
    ``token_intensity``: long tokens -> their intensities, float of the same shape
    (``MaskFlowPipeline.token_intensity``), on which guided sampling's ``anchor`` works
    (``guidance.GuidanceAnchor``); without it w is not anchored. The pipeline and the evaluation
    suites pass it."""
    sampler, extra = SAMPLERS[options.sampler], options.sampler_options(bool(plan.given))
    generator = torch.Generator(denoiser.device).manual_seed(seed)
    height, width = denoiser.grid
    if options.guidance > 0:
        denoiser = GuidedDenoiser(denoiser, annealed_weights(options.guidance, options.steps))
    if isinstance(denoiser, GuidedDenoiser):
        denoiser.scale = None  # no anchor's scale carried over from an earlier rollout
    anchored = options.anchor > 0 and isinstance(denoiser, GuidedDenoiser) and token_intensity is not None
    anchor: GuidanceAnchor | None = None
    tokens: dict[int, Tensor] = {}  # frame -> long [B,H,W], for frames usable as context
    for index, window in enumerate(plan.windows):
        missing = [i for i in window.context if i not in tokens]
        if missing:
            tokens.update(zip(missing, context_tokens(missing).unbind(1)))
        x = torch.full((batch, window.stop - window.start, height, width), denoiser.mask_id, dtype=torch.long)  # [B,T,H,W]
        known = torch.zeros_like(x, dtype=torch.bool)
        for i in window.context:
            x[:, i - window.start] = tokens[i]
            known[:, i - window.start] = True
        denoiser.start_window()
        with torch.inference_mode():
            out = sampler(denoiser, x.to(denoiser.device), known.to(denoiser.device), steps=options.steps,
                          scheduler=denoiser.scheduler, generator=generator, callback=_in_window(callback, index),
                          **extra).cpu()  # [B,T,H,W]
        kept = out[:, [i - window.start for i in window.keep]]  # [B,K,H,W]
        tokens.update(zip(window.keep, kept.unbind(1)))
        if anchored and index < len(plan.windows) - 1:  # for the next window; reference: the first window's context, else (generate) its new frames
            if anchor is None:
                reference = torch.stack([tokens[i] for i in window.context], 1) if window.context else kept  # [B,n,H,W]
                anchor = GuidanceAnchor(reference, options.anchor, token_intensity)
            denoiser.scale = anchor.scales(kept)
        yield window, kept


def _in_window(callback: Callback, index: int) -> Callback:
    """``callback`` with each state marked as the state of window ``index``."""
    if callback is None:
        return None
    return lambda state: callback(replace(state, window=index))
