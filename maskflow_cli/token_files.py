"""Token files: a video's tokens as safetensors, for datasets and pipelines.

One tensor ``tokens`` (int32 [T,H,W]) and metadata key ``maskflow_tokens`` with JSON
``{"format_version": 1, "fps": "30000/1001", "tokenizer": {...config...}}``, so decoding can check
that the tokens came from the same tokenizer. The frame rate follows the package's one rule
(``video_io.rates.representable_fps``) both ways: refused outside 1/1000..1000 frames per second,
else reduced to a fraction every container holds.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from fractions import Fraction
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from .errors import InvalidArgumentError, OutputError, VideoError
from .partial_files import write_safetensors
from .model_configs import TokenizerConfig
from .planner import MAX_FRAMES
from .safetensors_header import declared_shape
from .video_io.limits import PIXEL_BUDGET_ENV, InputLimits
from .video_io.rates import FPS_RANGE, representable_fps

METADATA_KEY = "maskflow_tokens"
FORMAT_VERSION = 1
# A stored frame rate as "N", "N/D" or "N.F": no exponent ("1e999999999" would cost gigabytes to parse).
_FPS_TEXT = re.compile(r"\d{1,40}(?:/\d{1,40}|\.\d{1,40})?")


def check_tokens_output(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse a tokens output that cannot or may not be written: stdout, a folder, a missing
    folder, an existing file without ``overwrite``."""
    where = os.fspath(path)
    if where == "-" or not where:
        raise OutputError(where, "a tokens file needs a path such as clip.tokens.safetensors (not stdout)")
    target = Path(where)
    if target.is_dir() or where.endswith(os.sep):
        raise OutputError(where, "is a folder; give a file such as clip.tokens.safetensors")
    if not target.parent.is_dir():
        raise OutputError(where, f"folder {target.parent} does not exist")
    if os.path.lexists(target) and not overwrite:
        raise OutputError(where, "exists; pass --overwrite to replace it")


def save_tokens(path: str | os.PathLike, tokens: Tensor, fps: Fraction, config: TokenizerConfig, *, overwrite: bool = False) -> None:
    """Write long tokens [T,H,W] atomically (a temporary file beside the target, then renamed);
    ``fps`` must be a frame rate a container can hold (it is stored reduced)."""
    check_tokens_output(path, overwrite)
    if representable_fps(fps) is None:
        raise InvalidArgumentError("fps", fps, f"must be {FPS_RANGE}")
    fps = representable_fps(fps)
    meta = {"format_version": FORMAT_VERSION, "fps": str(fps), "tokenizer": dataclasses.asdict(config)}
    write_safetensors(Path(path), {"tokens": tokens.to(torch.int32).contiguous()}, {METADATA_KEY: json.dumps(meta)})


def load_tokens(path: str | os.PathLike, config: TokenizerConfig) -> tuple[Tensor, Fraction]:
    """Read tokens [T,H,W] (long) and their fps; check they fit the tokenizer ``config``."""
    where = os.fspath(path)
    if not Path(where).is_file():
        raise VideoError(where, "no such tokens file")
    _check_declared_pixels(where, declared_shape(where, "tokens") or [], config)  # from the header, before the file is mapped
    try:
        with safe_open(where, framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[METADATA_KEY])
            tokens = handle.get_tensor("tokens")
        stored = meta["fps"]
        fps = representable_fps(Fraction(stored)) if _FPS_TEXT.fullmatch(stored) else None
        made_by = meta["tokenizer"]
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, ArithmeticError):
        raise VideoError(where, "not a maskflow tokens file (write one with 'maskflow encode')") from None
    if fps is None:
        raise VideoError(where, f"its frame rate {_shown(stored)} is not {FPS_RANGE} (write a new one with 'maskflow encode')")
    if made_by != json.loads(json.dumps(dataclasses.asdict(config))):
        raise VideoError(where, "was encoded by a different tokenizer than the one in --weights")
    expected = (config.token_height, config.token_width)
    if tokens.dim() != 3 or tuple(tokens.shape[1:]) != expected or len(tokens) == 0:
        raise VideoError(where, f"tokens have shape {tuple(tokens.shape)}, expected [T>0,{expected[0]},{expected[1]}]")
    if tokens.is_floating_point() or tokens.is_complex() or tokens.dtype == torch.bool:
        raise VideoError(where, f"tokens are stored as {str(tokens.dtype).removeprefix('torch.')}, not as integers (write a new one with 'maskflow encode')")
    tokens = tokens.long()
    if int(tokens.min()) < 0 or int(tokens.max()) >= config.vocab_size:
        raise VideoError(where, f"token ids outside the vocabulary 0..{config.vocab_size - 1}")
    return tokens, fps



def _shown(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 40 else shown[:36] + "...'"


def _check_declared_pixels(where: str, shape: list[int], config: TokenizerConfig) -> None:
    """VideoError if the frames the header declares decode to more pixels than an input may have
    (``InputLimits.pixel_budget``, ``MASKFLOW_MAX_INPUT_PIXELS``), like a video's."""
    limits = InputLimits.from_env()
    frames = shape[0] if shape else 0
    if frames > MAX_FRAMES:
        raise VideoError(where, f"declares {frames:,} frames, more than the {MAX_FRAMES:,} a video of maskflow's may have")
    if frames * config.height * config.width > limits.pixel_budget:
        raise VideoError(where, f"{frames:,} frames of {config.width}x{config.height} are more than the {limits.pixel_budget:,} "
                                f"decoded pixels an input may have; set {PIXEL_BUDGET_ENV} higher to read it")
