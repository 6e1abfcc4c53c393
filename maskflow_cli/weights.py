"""Weights as safetensors files that carry their own configuration (never pickle).

A weights file holds one or more *components* (``tokenizer``, ``transformer``). Its tensors are named
``<component>.<parameter>`` and its metadata key ``maskflow`` holds JSON::

    {"format_version": 1,
     "components": {"tokenizer": {"config": {...}, "info": {"dataset": ..., "steps": ...}}, ...}}

``config`` rebuilds the module (its frozen dataclass); ``info`` holds facts about the weights (fps,
dataset, training steps, ...). Reading takes a weights *source* (a file, a folder, ``hf://``, a
shipped set's name, ``None`` for the default weights): weight_sources.py resolves it to files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from .errors import WeightsError, first_line
from .model_budget import check_transformer_cost
from .partial_files import write_safetensors
from .tokenizer import FrameTokenizer, TokenizerConfig
from .transformer import MaskFlowTransformer, TransformerConfig
from .weight_sources import resolve_weights

FORMAT_VERSION = 1
METADATA_KEY = "maskflow"
KINDS: dict[str, tuple[type, type]] = {
    "tokenizer": (TokenizerConfig, FrameTokenizer),
    "transformer": (TransformerConfig, MaskFlowTransformer),
}
# Generous bounds on config values: a config beyond them is forged or broken, and building its module
# (even only to compare shapes) could take all memory or time. Ints not listed: at most 2**20;
# tuples: (most items, largest item).
LIMITS: dict[str, dict[str, Any]] = {
    "tokenizer": {"height": 8192, "width": 8192, "base_channels": 4096, "blocks_per_stage": 64,
                  "channel_multipliers": (12, 64), "levels": (16, 4096)},
    "transformer": {"frames": 4096, "grid_height": 1024, "grid_width": 1024, "dim": 65536, "depth": 256, "heads": 1024,
                    "mlp_ratio": 64.0},
}
MAX_CONFIG_INT = 2**20
# Config fields renamed since weights were first written: old JSON key -> field. Weights are written with
# the new names; the old ones are read as these (the transformer's token grid was height/width).
RENAMED_FIELDS: dict[str, dict[str, str]] = {"transformer": {"height": "grid_height", "width": "grid_width"}}


@dataclass(frozen=True)
class Component:
    """What a weights file says about one of its components (read from the header only)."""

    kind: str
    config: Any  # TokenizerConfig or TransformerConfig
    info: dict
    file: Path
    parameters: int


# ---- writing -------------------------------------------------------------------------------------


def save_weights(
    path: str | os.PathLike,
    modules: Mapping[str, nn.Module],
    info: Mapping[str, dict] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write ``{"tokenizer": module, ...}`` to one safetensors file, atomically.

    ``info[kind]`` is stored beside each config; ``dtype`` (e.g. torch.bfloat16) casts floating
    tensors for smaller files. Loading always returns float32 modules.
    """
    tensors, components = {}, {}
    for kind, module in modules.items():
        assert kind in KINDS and isinstance(module, KINDS[kind][1]), f"not a {kind}: {type(module)}"
        for name, tensor in module.state_dict().items():
            tensor = tensor.detach().cpu()
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            tensors[f"{kind}.{name}"] = tensor.contiguous()
        components[kind] = {"config": dataclasses.asdict(module.config), "info": dict((info or {}).get(kind, {}))}
    metadata = {METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION, "components": components})}
    write_safetensors(path, tensors, metadata)


# ---- reading -------------------------------------------------------------------------------------


def inspect_weights(source: str | os.PathLike | None) -> dict[str, Component]:
    """Components of a weights source, from the file headers only (no tensor data read)."""
    found: dict[str, Component] = {}
    for file in resolve_weights(source):
        for kind, component in _read_header(file).items():
            if kind in found:
                raise WeightsError(str(file), f"a second {kind} (the first is in {found[kind].file}); keep one")
            found[kind] = component
    if not found:
        raise WeightsError(str(source or "(default)"), "holds no maskflow components")
    return found


def _read_header(file: Path) -> dict[str, Component]:
    where = str(file)
    if file.is_dir() or not file.exists():
        raise WeightsError(where, "no such file")
    try:
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
            shapes = {key: handle.get_slice(key).get_shape() for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(where, f"not a valid safetensors file ({first_line(error)})") from None
    try:
        manifest = json.loads(metadata[METADATA_KEY])
        version, entries = manifest["format_version"], manifest["components"]
    except (KeyError, TypeError, ValueError, RecursionError):
        raise WeightsError(where, "a safetensors file without maskflow metadata (not maskflow weights)") from None
    if version != FORMAT_VERSION:
        raise WeightsError(where, f"format version {version!r} is not supported (this maskflow reads {FORMAT_VERSION})")
    if not isinstance(entries, dict):
        raise WeightsError(where, "maskflow metadata: 'components' is not an object")
    components = {}
    for kind, entry in entries.items():
        if kind not in KINDS:
            raise WeightsError(where, f"unknown component {kind!r}")
        if not isinstance(entry, dict) or not isinstance(entry.get("info") or {}, dict):
            raise WeightsError(where, f"maskflow metadata: {kind} is not an object with 'config' and 'info' objects")
        config = _config_from_json(KINDS[kind][0], entry.get("config"), where, kind)
        count = sum(_numel(shape) for key, shape in shapes.items() if key.startswith(kind + "."))
        components[kind] = Component(kind, config, dict(entry.get("info") or {}), file, count)
    return components


def _config_from_json(cls: type, data: Any, where: str, kind: str) -> Any:
    if not isinstance(data, dict):
        raise WeightsError(where, f"{kind} config is missing")
    data = _renamed(data, RENAMED_FIELDS.get(kind, {}), where, kind)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise WeightsError(where, f"{kind} config has unknown fields {unknown}")
    types = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        problem = _config_value_problem(types[name], value, LIMITS[kind].get(name))
        if problem:
            raise WeightsError(where, f"bad {kind} config: {name} = {_short(value)} ({problem})")
        values[name] = tuple(value) if isinstance(value, list) else value
    try:
        config = cls(**values)
    except (TypeError, ValueError, ArithmeticError) as error:
        raise WeightsError(where, f"bad {kind} config: {first_line(error)}") from None
    if kind == "tokenizer" and config.vocab_size > MAX_CONFIG_INT:
        raise WeightsError(where, f"bad {kind} config: levels {list(config.levels)} make a vocabulary of {config.vocab_size:,} (at most {MAX_CONFIG_INT:,})")
    return config


def _renamed(data: dict, renames: dict[str, str], where: str, kind: str) -> dict:
    """A config's JSON with old field names replaced by the current ones (a file with both is refused)."""
    both = sorted(old for old, new in renames.items() if old in data and new in data)
    if both:
        raise WeightsError(where, f"{kind} config has both old and new names for {[renames[old] for old in both]}")
    return {renames.get(name, name): value for name, value in data.items()}


def _config_value_problem(expected: Any, value: Any, limit: Any) -> str | None:
    """Why ``value`` from a config's JSON is not a valid value of the field type ``expected``, or None."""
    if expected is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if expected is str:
        return None if isinstance(value, str) else "expected a string"
    if expected is int:
        if not isinstance(value, int) or isinstance(value, bool):
            return "expected a whole number"
        high = MAX_CONFIG_INT if limit is None else limit
        return None if 0 <= value <= high else f"expected a whole number between 0 and {high:,}"
    if expected is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
            return "expected a number"
        high = float(MAX_CONFIG_INT if limit is None else limit)
        return None if 0 < value <= high else f"expected a number above 0 and at most {high:g}"
    if typing.get_origin(expected) is tuple:
        most, largest = limit if limit is not None else (64, MAX_CONFIG_INT)
        if not isinstance(value, list) or len(value) > most:
            return f"expected a list of at most {most} whole numbers"
        if not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= largest for v in value):
            return f"expected whole numbers between 0 and {largest:,}"
        return None
    return None


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _numel(shape: list[int]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count


# ---- loading -------------------------------------------------------------------------------------


def load_component(component: Component) -> nn.Module:
    """Build the module from its config and load its tensors (float32), checking every one.

    The module is built without random initialisation (``uninitialised``) and takes the loaded
    tensors as its parameters, so no time goes into drawing weights that loading would overwrite.

    The tensors' names and shapes are compared with the config from the file header first, with
    the module built on the meta device (no memory), so a config that disagrees with its tensors
    is refused before anything is allocated for it."""
    where = str(component.file)
    prefix = component.kind + "."
    _check_shapes(component, where, prefix)
    try:
        tensors = load_file(str(component.file))
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(where, f"not a valid safetensors file ({first_line(error)})") from None
    state = {k.removeprefix(prefix): v for k, v in tensors.items() if k.startswith(prefix)}
    bad = sorted(k for k, v in state.items() if not v.is_floating_point())
    if bad:
        raise WeightsError(where, f"{component.kind} tensor {bad[0]} has dtype {state[bad[0]].dtype}, expected a float type")
    state = {k: v.float() for k, v in state.items()}  # the run's dtype first: float64 1e300 is finite, its float32 is not
    broken = next((k for k in sorted(state) if not bool(torch.isfinite(state[k]).all())), None)
    if broken is not None:
        raise WeightsError(where, f"{component.kind} tensor {broken} holds NaN or infinite values (as float32)")
    try:
        with uninitialised():
            module = KINDS[component.kind][1](component.config)
        module.load_state_dict(state, strict=True, assign=True)
    except (RuntimeError, TypeError, ValueError) as error:
        raise WeightsError(where, f"{component.kind} tensors do not match its config: {first_line(error)}") from None
    return module.eval()


@contextlib.contextmanager
def uninitialised() -> Iterator[None]:
    """Module constructors inside leave their parameters as allocated: torch.nn.init's in-place
    initialisers do nothing. For modules whose every parameter is loaded next. (On the meta device the
    initialisers would also import torch._dynamo, through torch's reference implementations, which
    costs about as much as importing torch.) Not thread-safe: it swaps module attributes."""
    names = [n for n in dir(nn.init) if n.endswith("_") and not n.startswith("_")]
    saved = {n: getattr(nn.init, n) for n in names}
    try:
        for n in names:
            setattr(nn.init, n, _leave)
        yield
    finally:
        for n, initialiser in saved.items():
            setattr(nn.init, n, initialiser)


def _leave(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
    return tensor


@functools.lru_cache(maxsize=8)
def _expected_shapes(kind: str, config: Any) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of the module ``config`` builds, from a copy on the meta device."""
    with torch.device("meta"), uninitialised():
        skeleton = KINDS[kind][1](config)
    return {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}


def _check_shapes(component: Component, where: str, prefix: str) -> None:
    """The file's tensor names and shapes (header only) against the module its config builds."""
    try:
        with safe_open(where, framework="pt") as handle:
            found = {k.removeprefix(prefix): tuple(handle.get_slice(k).get_shape()) for k in handle.keys() if k.startswith(prefix)}
    except (SafetensorError, OSError, ValueError) as error:
        raise WeightsError(where, f"not a valid safetensors file ({first_line(error)})") from None
    if component.kind == "transformer":
        check_transformer_cost(component.config, where)  # before anything is built for it, even on the meta device
    try:
        expected = _expected_shapes(component.kind, component.config)
    except (RuntimeError, TypeError, ValueError, ArithmeticError) as error:
        raise WeightsError(where, f"bad {component.kind} config: {first_line(error)}") from None
    mismatch = "do not match its config"
    missing = sorted(set(expected) - set(found))
    if missing:
        raise WeightsError(where, f"{component.kind} tensors {mismatch}: {len(missing)} missing, e.g. {missing[0]}")
    unexpected = sorted(set(found) - set(expected))
    if unexpected:
        raise WeightsError(where, f"{component.kind} tensors {mismatch}: {len(unexpected)} unexpected, e.g. {unexpected[0]}")
    wrong = next((k for k in sorted(expected) if expected[k] != found[k]), None)
    if wrong is not None:
        raise WeightsError(where, f"{component.kind} tensors {mismatch}: {wrong} has shape {list(found[wrong])}, the config needs {list(expected[wrong])}")


def load_models(source: str | os.PathLike | None) -> tuple[FrameTokenizer, MaskFlowTransformer, dict[str, Component]]:
    """The tokenizer and transformer of a weights source, checked to fit together."""
    components = inspect_weights(source)
    where = str(source or "(default)")
    for kind in KINDS:
        if kind not in components:
            raise WeightsError(where, f"has no {kind}; a weights source needs both a tokenizer and a transformer")
    check_compatible(components["tokenizer"].config, components["transformer"].config, where)
    tokenizer = load_component(components["tokenizer"])
    transformer = load_component(components["transformer"])
    return tokenizer, transformer, components


def load_tokenizer(source: str | os.PathLike | None) -> FrameTokenizer:
    """Only the tokenizer of a weights source (for encode / decode)."""
    components = inspect_weights(source)
    if "tokenizer" not in components:
        raise WeightsError(str(source or "(default)"), "has no tokenizer")
    return load_component(components["tokenizer"])


def check_compatible(tok: TokenizerConfig, model: TransformerConfig, where: str) -> None:
    if (tok.vocab_size, tok.token_height, tok.token_width) != (model.vocab_size, model.grid_height, model.grid_width):
        raise WeightsError(
            where,
            f"tokenizer (vocabulary {tok.vocab_size}, {tok.token_height}x{tok.token_width} tokens a frame) and "
            f"transformer (vocabulary {model.vocab_size}, {model.grid_height}x{model.grid_width}) do not fit together",
        )
    if model.code_digits and tuple(model.code_digits) != tuple(tok.levels):
        raise WeightsError(where, f"the transformer reads codes as FSQ digits of levels {list(model.code_digits)}, but the "
                                  f"tokenizer's levels are {list(tok.levels)}: use the tokenizer it was trained with")

