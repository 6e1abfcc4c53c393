"""Option groups: options that several commands share, declared once as a frozen dataclass.

A command names a group as one parameter, ``run: SamplingGroup``; the :func:`command` decorator
spreads the group's fields into the command's signature (so Typer shows and parses them as ordinary
options, declared by each field's ``Annotated[..., typer.Option(...)]`` type) and gathers them back
into one group object when the command runs. A command that wants other defaults writes them as the
parameter's default, ``run: SamplingGroup = SamplingGroup(seed=0)``.

The groups turn what they hold into the library's objects in one place each: ``SamplingGroup``
builds the ``SamplingOptions``, the window settings and the pipeline; ``TrainingGroup`` the
``TrainConfig``; ``ReportGroup`` the ``Reporter``. Adding a shared option is one field here.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..defaults import DEFAULT_ANCHOR, DEFAULT_CONTEXT_CACHE, DEFAULT_GUIDANCE, DEFAULT_STEPS
from ..planner import WindowSettings, window_settings
from . import options as opt
from .report import Reporter

if TYPE_CHECKING:  # the methods import them: declaring the options imports no torch
    from ..engine import SamplingOptions
    from ..pipeline import MaskFlowPipeline
    from ..training import TrainConfig


@dataclass(frozen=True)
class ReportGroup:
    """Where results and progress go (every command)."""

    json_: opt.Json = False
    quiet: opt.Quiet = False

    def reporter(self) -> Reporter:
        return Reporter(json_output=self.json_, quiet=self.quiet)


@dataclass(frozen=True)
class SamplingGroup:
    """Which weights, how to sample them and where they run (generate, extend, infill, eval)."""

    weights: opt.Weights = None
    mode: opt.Mode = "ar"
    sampler: opt.Sampler = "mgm"
    steps: opt.Steps = DEFAULT_STEPS
    context: opt.Context = None
    stride: opt.Stride = None
    seed: opt.Seed = None
    noise: opt.Noise = None
    temperature: opt.Temperature = None
    guidance: opt.Guidance = DEFAULT_GUIDANCE
    anchor: opt.Anchor = DEFAULT_ANCHOR
    device: opt.Device = "auto"
    precision: opt.Precision = "auto"
    context_cache: opt.ContextCache = DEFAULT_CONTEXT_CACHE
    compile: opt.CompileNetwork = False

    def sampling_options(self) -> SamplingOptions:
        """The library's sampling options (validated): the one place the CLI builds them."""
        from ..engine import SamplingOptions

        return SamplingOptions(sampler=self.sampler, steps=self.steps, seed=self.seed, noise=self.noise, temperature=self.temperature,
                               guidance=self.guidance, anchor=self.anchor)

    def window_settings(self, window: int) -> WindowSettings:
        """The window plan's settings for a model of ``window`` frames (validated)."""
        return window_settings(window, self.mode, self.context, self.stride)

    def load_pipeline(self) -> MaskFlowPipeline:
        """The pipeline for these weights on this device, precision, cache and compile choice."""
        from ..pipeline import MaskFlowPipeline

        return MaskFlowPipeline.from_weights(self.weights, device=self.device, precision=self.precision, compile=self.compile,
                                             context_cache=self.context_cache)


@dataclass(frozen=True)
class SizeGroup:
    """The output's frame size (generate, extend, infill; generate's default is ``model``)."""

    size: opt.OutputSize = "input"

    def check(self, has_input: bool) -> tuple[int, int] | str:
        """``"input"``, ``"model"`` or ``(width, height)``, checked before any work."""
        return parse_size(self.size, has_input)


@dataclass(frozen=True)
class InputMediaGroup:
    """What an input brings besides its frames (extend, infill): audio, and the rate the model sees."""

    no_audio: opt.NoAudio = False
    model_fps: opt.ModelFrameRate = None


@dataclass(frozen=True)
class TrainingGroup:
    """The optimisation loop of both training commands (defaults: train's; train-tokenizer sets its own)."""

    steps: opt.TrainSteps = 20000
    time_limit: opt.TimeLimit = None
    init_from: opt.InitFrom = None
    batch_size: opt.BatchSize = 32
    lr: opt.Lr = 5e-4
    warmup: opt.Warmup = 500
    ema: opt.Ema = 0.999
    grad_clip: opt.GradClip = 1.0
    seed: opt.TrainSeed = 0
    checkpoint_every: opt.CheckpointEvery = 500
    log_every: opt.LogEvery = 50
    resume: opt.Resume = False
    overwrite: opt.TrainOverwrite = False
    device: opt.Device = "auto"
    precision: opt.TrainPrecision = "auto"
    compile: opt.Compile = False

    def config(self) -> TrainConfig:
        """The library's training configuration (validated)."""
        from ..budget import parse_duration
        from ..training import TrainConfig

        return TrainConfig(steps=self.steps, batch_size=self.batch_size, lr=self.lr, warmup=self.warmup, ema=self.ema,
                           grad_clip=self.grad_clip, precision=self.precision, seed=self.seed,
                           checkpoint_every=self.checkpoint_every, log_every=self.log_every, compile=self.compile,
                           time_limit=None if self.time_limit is None else parse_duration(self.time_limit))


@dataclass(frozen=True)
class TransformerShape:
    """The transformer's architecture and how training runs it, for ``maskflow train`` (the recipe's
    keyword arguments of the same names)."""

    preset: opt.TransformerPreset = "base"
    window: opt.Window = 16
    timestep_independent: opt.TimestepIndependent = False
    attention: opt.Attention = "full"
    scheduler: opt.Scheduler = "sigmoid"
    code_features: opt.CodeFeatures = False
    code_digits: opt.CodeDigits = False
    block_causal: opt.BlockCausal = False
    fps: opt.ModelFps = 10.0
    checkpoint_activations: opt.CheckpointActivations = False

    def recipe_arguments(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


GROUPS = (ReportGroup, SamplingGroup, SizeGroup, InputMediaGroup, TrainingGroup, TransformerShape)


def parse_size(text: str, has_input: bool) -> tuple[int, int] | str:
    """--size: ``"input"`` (only with an input), ``"model"`` or ``"WxH"`` -> ``(width, height)``."""
    from ..errors import InvalidArgumentError

    value = text.strip().lower()
    if value == "model" or (value == "input" and has_input):
        return value
    if value == "input":
        raise InvalidArgumentError("size", text, "there is no input here; use model or WxH")
    width, _, height = value.partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 1 or int(height) < 1:
        raise InvalidArgumentError("size", text, "use input, model or WIDTHxHEIGHT such as 640x360")
    if int(width) * int(height) > 4096 * 4096:
        raise InvalidArgumentError("size", text, "at most 4096x4096 pixels a frame")
    return int(width), int(height)


def _spread(parameter: inspect.Parameter) -> list[inspect.Parameter]:
    """A group parameter -> one keyword parameter per field, with the group's (or the command's) defaults."""
    group = parameter.annotation
    defaults = parameter.default if isinstance(parameter.default, group) else group()
    types = typing.get_type_hints(group, include_extras=True)  # the Annotated declarations, not their strings
    return [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=getattr(defaults, f.name), annotation=types[f.name])
            for f in dataclasses.fields(group)]


def command(function: Callable) -> Callable:
    """Let ``function`` take option groups (parameters annotated with a class of GROUPS) as ordinary options."""
    hints = inspect.get_annotations(function, eval_str=True)
    signature = inspect.signature(function)
    own, groups, spread = [], {}, []
    for name, parameter in signature.parameters.items():
        parameter = parameter.replace(annotation=hints.get(name, parameter.annotation))
        if parameter.annotation in GROUPS:
            groups[name] = parameter.annotation
            spread += _spread(parameter)
        else:
            own.append(parameter)
    taken = [p.name for p in own + spread]
    assert len(taken) == len(set(taken)), f"{function.__name__}: an option group repeats a parameter name"

    @functools.wraps(function)
    def run(**options: Any) -> Any:
        for name, group in groups.items():
            options[name] = group(**{f.name: options.pop(f.name) for f in dataclasses.fields(group)})
        return function(**options)

    # Typer reads the options from the signature (and, for its help, the annotations)
    run.__signature__ = signature.replace(parameters=[p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + spread)
    run.__annotations__ = {p.name: p.annotation for p in run.__signature__.parameters.values()}
    del run.__wrapped__  # inspect.signature must not look through to the grouped signature
    run.option_groups = tuple(groups.values())
    return run
