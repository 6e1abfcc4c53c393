"""Tokens made once before training: :func:`pretokenize` in memory, and token shards on disk for
training that streams them (shards.py).

A token-shards folder holds ``tokens-00000.safetensors``, ``tokens-00001.safetensors``, ...: each one
tensor ``tokens`` (int16, or int32 for a vocabulary of 2**15 or more) [N,T,H,W] and the metadata key
``maskflow_token_shard`` with JSON ``{"format_version": 1, "tokenizer": "sha256 ...", "vocab_size": V,
"source": NAME}``: the tokenizer's content hash, so that training on them with another tokenizer is
refused. :func:`write_token_shards` tokenizes a clips file, a folder of clips shards or a folder of
videos one source file at a time, so memory holds one source file and one shard.

Axis legend: N clips, T frames, Y, X pixels, C channels, H, W token grid.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator

import torch
from einops import rearrange
from safetensors import SafetensorError, safe_open
from torch import Tensor

from .clips import CLIPS_SUFFIX, load_clips, load_training_clips
from .errors import InvalidArgumentError, OutputError, VideoError, check_range
from .partial_files import write_safetensors
from .run_folders import content_hash
from .runtime import encode_frames
from .tokenizer import FrameTokenizer
from .video_io import FrameFormat

TOKEN_SHARD_KEY = "maskflow_token_shard"
TOKEN_SHARD_VERSION = 1
TOKEN_SHARD_NAME = "tokens-{:05d}.safetensors"
TOKEN_SHARD_GLOB = "tokens-*.safetensors"
MAX_SHARD_CLIPS = 1_000_000
NOT_TOKEN_SHARDS = "not a maskflow token shard (write them with 'maskflow tokenize')"


def pretokenize(tokenizer: FrameTokenizer, clips: Tensor, device: torch.device) -> Tensor:
    """Clips uint8 [N,T,Y,X,C] -> tokens int16/int32 [N,T,H,W] on the CPU, once before training."""
    n, t = clips.shape[:2]
    flat = encode_frames(tokenizer, rearrange(clips, "n t y x c -> (n t) y x c"), device)  # [N*T,H,W]
    small = torch.int16 if tokenizer.config.vocab_size < 2**15 else torch.int32
    return rearrange(flat.to(small), "(n t) h w -> n t h w", n=n, t=t)


def _shard_files(folder: Path) -> list[Path]:
    return sorted(folder.glob(TOKEN_SHARD_GLOB))


def is_token_folder(data: str | os.PathLike) -> bool:
    """Whether ``data`` is a folder of token shards (it holds ``tokens-*.safetensors``)."""
    return Path(data).is_dir() and bool(_shard_files(Path(data)))


def _read_header(path: Path) -> tuple[dict, list[int]]:
    """A token shard's metadata and the shape of its tokens; VideoError if it is not one."""
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {})[TOKEN_SHARD_KEY])
            shape = list(handle.get_slice("tokens").get_shape())
    except (SafetensorError, OSError, KeyError, TypeError, ValueError):
        raise VideoError(str(path), NOT_TOKEN_SHARDS) from None
    if not isinstance(meta, dict) or meta.get("format_version") != TOKEN_SHARD_VERSION or len(shape) != 4:
        raise VideoError(str(path), NOT_TOKEN_SHARDS)
    return meta, shape


def token_shards(data: str | os.PathLike, tokenizer: FrameTokenizer, window: int) -> list[tuple[str, int]]:
    """The shards of a token-shards folder as (path, clips), in name order, checked from their
    headers alone: made by ``tokenizer`` (by content), of its token grid, with clips of at least
    ``window`` frames. VideoError naming the shard otherwise."""
    digest, cfg = f"sha256 {content_hash(tokenizer)}", tokenizer.config
    shards = []
    for path in _shard_files(Path(data)):
        meta, (n, t, h, w) = _read_header(path)
        if meta.get("tokenizer") != digest:
            raise VideoError(str(path), "was tokenized by another tokenizer than --tokenizer's; run 'maskflow tokenize' again with it")
        if (h, w) != (cfg.token_height, cfg.token_width):
            raise VideoError(str(path), f"holds a {h}x{w} token grid, the tokenizer makes {cfg.token_height}x{cfg.token_width}")
        if t < window:
            raise InvalidArgumentError("window", window, f"{path.name} holds clips of {t} frames; a window of at most {t} fits")
        if n:
            shards.append((str(path), n))
    if not shards:
        raise VideoError(os.fspath(data), "holds no clips in its token shards")
    return shards


def _source_clips(data: str, fmt: FrameFormat, frames: int | None) -> Iterator[Tensor]:
    """The clips of ``data`` one source file at a time, uint8 [N,T,Y,X,C]: each clips file of a
    folder of clips shards (or the one clips file) with its sequences whole; each video of a folder
    of videos (or the one video) cut into clips of ``frames`` frames, skipping files that are not
    videos or are too short, as training does."""
    path = Path(data)
    if not path.exists():
        raise VideoError(data, "no such file or folder")
    files = sorted(path.glob(f"*{CLIPS_SUFFIX}")) if path.is_dir() else [path] if path.suffix == CLIPS_SUFFIX else []
    for file in files:
        clips, _ = load_clips(file)  # [N,T,Y,X,C]
        if tuple(clips.shape[2:]) != fmt.shape:
            raise InvalidArgumentError("data", str(file), f"its frames are {'x'.join(map(str, clips.shape[2:]))} (HxWxC) but the tokenizer takes "
                                                          f"{fmt.height}x{fmt.width}x{fmt.channels}")
        yield clips
    if files:
        return
    if frames is None:
        raise InvalidArgumentError("frames", frames, "the data are videos: give the clip length to cut them into")
    if not path.is_dir():
        yield load_training_clips(data, frames, fmt)
        return
    made = 0
    for video in sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            clips = load_training_clips(video, frames, fmt)  # [n,frames,Y,X,C], one video in memory
        except (VideoError, InvalidArgumentError):  # not a video, or shorter than a clip
            continue
        made += len(clips)
        yield clips
    if not made:
        raise VideoError(data, f"holds no video of {frames} frames or more")


def shard_metadata(tokenizer: FrameTokenizer, source: str) -> dict[str, str]:
    """The safetensors metadata of a token shard made by ``tokenizer`` from the data named ``source``."""
    return {TOKEN_SHARD_KEY: json.dumps({"format_version": TOKEN_SHARD_VERSION, "tokenizer": f"sha256 {content_hash(tokenizer)}",
                                         "vocab_size": tokenizer.config.vocab_size, "source": source})}


def check_shards_output(out: Path, overwrite: bool) -> None:
    """OutputError unless token shards may be written into the folder ``out`` (created if missing)."""
    if out.exists() and not out.is_dir():
        raise OutputError(str(out), "is a file; give a folder for the token shards")
    if not out.parent.is_dir():
        raise OutputError(str(out), f"folder {out.parent} does not exist")
    if out.is_dir() and _shard_files(out) and not overwrite:
        raise OutputError(str(out), "already holds token shards; pass {param:overwrite=True} to replace them")


def write_token_shards(tokenizer: FrameTokenizer, data: str, out: str | os.PathLike, device: torch.device, *, shard_clips: int = 1000,
                       frames: int | None = None, overwrite: bool = False) -> dict:
    """Tokenize ``data`` (a clips file, a folder of clips shards, a folder of videos or one video cut
    into clips of ``frames`` frames) into token shards of ``shard_clips`` clips in the folder ``out``.
    Earlier shards there are replaced only with ``overwrite`` (and removed first). -> a summary:
    shards, clips, frames per clip, token grid."""
    check_range("shard_clips", shard_clips, 1, MAX_SHARD_CLIPS)
    target = Path(out)
    check_shards_output(target, overwrite)
    target.mkdir(exist_ok=True)
    for old in _shard_files(target):
        old.unlink()
    meta = shard_metadata(tokenizer, Path(data).name)
    written, clips, lengths = 0, 0, set()
    pending: list[Tensor] = []  # tokens of whole clips not yet in a shard, [n,T,H,W] each
    for source in _source_clips(data, FrameFormat.of(tokenizer.config), frames):
        for i in range(0, len(source), shard_clips):
            pending.append(pretokenize(tokenizer, source[i : i + shard_clips], device))
            lengths.add(source.shape[1])
            if len(lengths) > 1:
                raise InvalidArgumentError("data", data, f"its clips files hold sequences of {sorted(lengths)} frames; tokenize each length apart")
            while sum(len(p) for p in pending) >= shard_clips:
                written, clips, pending = _flush(target, written, clips, pending, shard_clips, meta)
    if pending:
        written, clips, pending = _flush(target, written, clips, pending, shard_clips, meta)
    grid = [tokenizer.config.token_height, tokenizer.config.token_width]
    return {"shards": written, "clips": clips, "frames": lengths.pop() if lengths else 0, "tokens": grid}


def _flush(target: Path, written: int, clips: int, pending: list[Tensor], shard_clips: int, meta: dict[str, str]) -> tuple[int, int, list[Tensor]]:
    """Write the first ``shard_clips`` pending clips (or all, if fewer) as the next shard."""
    joined = torch.cat(pending)
    shard, rest = joined[:shard_clips], joined[shard_clips:]
    write_safetensors(target / TOKEN_SHARD_NAME.format(written), {"tokens": shard.contiguous()}, meta)
    return written + 1, clips + len(shard), [rest] if len(rest) else []
