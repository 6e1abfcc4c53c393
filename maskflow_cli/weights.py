"""Weights as safetensors files that carry their own configuration (never pickle): writing them,
and loading their modules.

The file format, and reading what a file holds from its header alone, is weight_headers.py's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import os
from typing import Any, Iterator, Mapping

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from torch import nn

from .errors import WeightsError, first_line
from .model_budget import check_file_size, check_transformer_cost
from .partial_files import write_safetensors
from .tokenizer import FrameTokenizer
from .transformer import MaskFlowTransformer
from .weight_headers import FORMAT_VERSION, METADATA_KEY, Component, check_compatible, inspect_weights

MODULES: dict[str, type[nn.Module]] = {"tokenizer": FrameTokenizer, "transformer": MaskFlowTransformer}  # component -> its module

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
        assert kind in MODULES and isinstance(module, MODULES[kind]), f"not a {kind}: {type(module)}"
        for name, tensor in module.state_dict().items():
            tensor = tensor.detach().cpu()
            if dtype is not None and tensor.is_floating_point():
                tensor = tensor.to(dtype)
            tensors[f"{kind}.{name}"] = tensor.contiguous()
        components[kind] = {"config": dataclasses.asdict(module.config), "info": dict((info or {}).get(kind, {}))}
    metadata = {METADATA_KEY: json.dumps({"format_version": FORMAT_VERSION, "components": components})}
    write_safetensors(path, tensors, metadata)


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
    check_file_size(component.file, where)  # before the file is mapped
    _check_shapes(component, where, prefix)
    try:
        tensors = load_file(str(component.file))
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:  # RuntimeError: the file cannot be mapped
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
            module = MODULES[component.kind](component.config)
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
        skeleton = MODULES[kind](config)
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
    for kind in MODULES:
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
