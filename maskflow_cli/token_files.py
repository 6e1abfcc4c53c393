"""Token files: a video's tokens as safetensors, for datasets and pipelines.

One tensor ``tokens`` (int32 [T,H,W]) and metadata key ``maskflow_tokens`` with JSON
``{"format_version": 1, "fps": "30000/1001", "tokenizer": {...config...}}``, so decoding can check
that the tokens came from the same tokenizer.
"""

from __future__ import annotations

import dataclasses
import json
import os
from fractions import Fraction
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from .errors import OutputError, VideoError
from .partial_files import write_safetensors
from .tokenizer import TokenizerConfig

METADATA_KEY = "maskflow_tokens"
FORMAT_VERSION = 1
MAX_FPS = 1000


def check_tokens_output(path: str | os.PathLike, overwrite: bool = False) -> None:
    """Refuse a tokens output that cannot or may not be written: stdout, a folder, a missing
    folder, an existing file without ``overwrite``."""
    where = os.fspath(path)
    if where == "-" or not where:
        raise OutputError(where or "''", "a tokens file needs a path such as clip.tokens.safetensors (not stdout)")
    target = Path(where)
    if target.is_dir() or where.endswith(os.sep):
        raise OutputError(where, "is a folder; give a file such as clip.tokens.safetensors")
    if not target.parent.is_dir():
        raise OutputError(where, f"folder {target.parent} does not exist")
    if os.path.lexists(target) and not overwrite:
        raise OutputError(where, "exists; pass --overwrite to replace it")


def save_tokens(path: str | os.PathLike, tokens: Tensor, fps: Fraction, config: TokenizerConfig, *, overwrite: bool = False) -> None:
    """Write long tokens [T,H,W] atomically (a temporary file beside the target, then renamed)."""
    check_tokens_output(path, overwrite)
    meta = {"format_version": FORMAT_VERSION, "fps": str(fps), "tokenizer": dataclasses.asdict(config)}
    write_safetensors(Path(path), {"tokens": tokens.to(torch.int32).contiguous()}, {METADATA_KEY: json.dumps(meta)})


def load_tokens(path: str | os.PathLike, config: TokenizerConfig) -> tuple[Tensor, Fraction]:
    """Read tokens [T,H,W] (long) and their fps; check they fit the tokenizer ``config``."""
    where = os.fspath(path)
    if not Path(where).is_file():
        raise VideoError(where, "no such tokens file")
    try:
        with safe_open(where, framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[METADATA_KEY])
            tokens = handle.get_tensor("tokens")
        fps = Fraction(meta["fps"])
        made_by = meta["tokenizer"]
    except (SafetensorError, OSError, KeyError, TypeError, ValueError, ArithmeticError):
        raise VideoError(where, "not a maskflow tokens file (write one with 'maskflow encode')") from None
    if not 0 < fps <= MAX_FPS:
        raise VideoError(where, f"its frame rate {meta['fps']!r} is not between 0 and {MAX_FPS} (write a new one with 'maskflow encode')")
    if made_by != json.loads(json.dumps(dataclasses.asdict(config))):
        raise VideoError(where, "was encoded by a different tokenizer than the one in --weights")
    expected = (config.token_height, config.token_width)
    if tokens.dim() != 3 or tuple(tokens.shape[1:]) != expected or len(tokens) == 0:
        raise VideoError(where, f"tokens have shape {tuple(tokens.shape)}, expected [T>0,{expected[0]},{expected[1]}]")
    tokens = tokens.long()
    if int(tokens.min()) < 0 or int(tokens.max()) >= config.vocab_size:
        raise VideoError(where, f"token ids outside the vocabulary 0..{config.vocab_size - 1}")
    return tokens, fps

