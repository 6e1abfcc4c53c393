"""Clips: the training data format and how training data is read.

- :func:`save_clips` / :func:`load_clips` store clips as a compact uint8 safetensors file: a tensor
  ``frames`` uint8 [N,T,H,W,C], any per-clip tensors a world keeps beside them, and the world's
  metadata under the key ``maskflow_data``; :func:`load_clip` reads one clip of such a file.
- :func:`clips_from_folder` cuts a folder of the user's own videos into clips.
- :func:`load_training_clips` is what training and evaluation call: a clips file, a folder of clips
  shards, a folder of videos or one video, always returned as clips of the requested length.

Axis legend: N clips, T frames, H, W pixels, C channels.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from .errors import InvalidArgumentError, OutputError, VideoError, check_range
from .partial_files import write_safetensors
from .safetensors_header import declared_shape
from .video_io import FrameFormat, InputLimits, read_video
from .video_io.limits import PIXEL_BUDGET_ENV

MAX_FRAMES = 10_000
CLIPS_METADATA_KEY = "maskflow_data"
CLIPS_FORMAT_VERSION = 1
CLIPS_SUFFIX = ".safetensors"
NOT_A_CLIPS_FILE = "not a maskflow clips file (make one with 'maskflow data moving-mnist')"


# ---- clips files ---------------------------------------------------------------------------------


def check_clips_output(path: str | os.PathLike, overwrite: bool = False) -> None:
    """OutputError unless a clips file can be written at ``path`` (suffix, folder, existing file)."""
    target = Path(path)
    if target.suffix != CLIPS_SUFFIX:
        raise OutputError(str(path), f"a clips file needs the {CLIPS_SUFFIX} suffix")
    if target.is_dir():
        raise OutputError(str(path), "is a directory")
    if not target.parent.is_dir():
        raise OutputError(str(path), f"folder {target.parent} does not exist")
    if target.exists() and not overwrite:
        raise OutputError(str(path), "exists; pass {param:overwrite=True} to replace it")


def _check_clips(frames: Tensor) -> None:
    if frames.dtype != torch.uint8 or frames.dim() != 5 or frames.shape[-1] not in (1, 3) or 0 in frames.shape:
        raise ValueError(f"expected uint8 [N,T,H,W,C] clips with C in (1, 3), got {frames.dtype} {tuple(frames.shape)}")


def save_clips(path: str | os.PathLike, frames: Tensor, metadata: dict, overwrite: bool = False, *,
               extra: Mapping[str, Tensor] | None = None) -> None:
    """Write clips atomically: the tensor ``frames`` (uint8 [N,T,H,W,C]), the tensors of ``extra``
    (a world's facts per clip, e.g. which digits a Moving MNIST clip shows) and the metadata.

    The metadata key ``maskflow_data`` holds ``{"format_version": 1, **metadata}`` as JSON (e.g.
    dataset, split, seed, sequences, frames, size).
    """
    check_clips_output(path, overwrite)
    _check_clips(frames)
    tensors = {"frames": frames.contiguous(), **{name: tensor.contiguous() for name, tensor in (extra or {}).items()}}
    header = {CLIPS_METADATA_KEY: json.dumps({"format_version": CLIPS_FORMAT_VERSION, **metadata})}
    write_safetensors(path, tensors, header)


def load_clips(path: str | os.PathLike) -> tuple[Tensor, dict]:
    """Read a clips file: (frames uint8 [N,T,H,W,C], its metadata dict). VideoError if it is not one."""
    where = _clips_file(path)
    _check_declared_pixels(where, declared_shape(where, "frames") or [])  # from the header, before the file is mapped
    return _read_clips(where, lambda handle: handle.get_tensor("frames"))


def load_clip(path: str | os.PathLike, index: int) -> tuple[Tensor, dict, int]:
    """Clip ``index`` of a clips file (negative: from the end), reading no other clip: (frames uint8
    [T,H,W,C], the file's metadata, how many clips it holds). VideoError if it is not a clips file,
    InvalidArgumentError naming ``index`` if the file has no such clip."""
    where = _clips_file(path)
    shape = declared_shape(where, "frames") or []
    count = shape[0] if len(shape) == 5 else 0
    if len(shape) == 5 and not -count <= index < count:
        raise InvalidArgumentError("index", index, f"the file holds {count:,} clips: give 0..{count - 1} (or -{count}..-1 from the end)")
    _check_declared_pixels(where, [1, *shape[1:]])
    frames, metadata = _read_clips(where, lambda handle: handle.get_slice("frames")[index % max(count, 1)][None])  # [1,T,H,W,C]
    return frames[0], metadata, count


def _clips_file(path: str | os.PathLike) -> str:
    where = os.fspath(path)
    if Path(where).is_dir():
        raise VideoError(where, f"is a folder; give one of its {CLIPS_SUFFIX} files")
    if not Path(where).is_file():
        raise VideoError(where, "no such file" if not Path(where).exists() else NOT_A_CLIPS_FILE)
    return where


def _read_clips(where: str, read: Callable[[Any], Tensor]) -> tuple[Tensor, dict]:
    """``read(handle)``'s uint8 [n,T,H,W,C] clips of a clips file, and its metadata; VideoError if it is not one."""
    try:
        with safe_open(where, framework="pt") as handle:
            metadata = json.loads((handle.metadata() or {})[CLIPS_METADATA_KEY])
            frames = read(handle)  # [n,T,H,W,C] uint8
    except (SafetensorError, OSError, KeyError, TypeError, ValueError):
        raise VideoError(where, NOT_A_CLIPS_FILE) from None
    if not isinstance(metadata, dict) or metadata.get("format_version") != CLIPS_FORMAT_VERSION:
        raise VideoError(where, NOT_A_CLIPS_FILE)
    try:
        _check_clips(frames)
    except ValueError:
        raise VideoError(where, NOT_A_CLIPS_FILE) from None
    return frames, metadata


def _check_declared_pixels(where: str, shape: list[int]) -> None:
    """VideoError if the clips the header declares hold more pixels than an input may decode
    (``InputLimits.pixel_budget``, ``MASKFLOW_MAX_INPUT_PIXELS``)."""
    limits = InputLimits.from_env()
    pixels = math.prod(shape[:4]) if len(shape) == 5 else 0
    if pixels > limits.pixel_budget:
        raise VideoError(where, f"{shape[0]:,} clips of {shape[1]:,} frames of {shape[3]}x{shape[2]} are more than the "
                                f"{limits.pixel_budget:,} pixels an input may have; set {PIXEL_BUDGET_ENV} higher to read it")


# ---- user videos ---------------------------------------------------------------------------------


def _windows(video: Tensor, frames: int, stride: int) -> Tensor:
    """Cut [T,H,W,C] into clips [n,frames,H,W,C] starting every ``stride`` frames (n may be 0)."""
    starts = range(0, len(video) - frames + 1, stride)
    if len(starts) == 0:
        return video.new_empty(0, frames, *video.shape[1:])
    return torch.stack([video[s : s + frames] for s in starts])  # [n,frames,H,W,C]


def _check_lengths(frames: int, stride: int | None) -> int:
    """Validate ``frames`` and ``stride``; the stride to use (default: ``frames``, no overlap)."""
    check_range("frames", frames, 1, MAX_FRAMES)
    if stride is not None:
        check_range("stride", stride, 1, MAX_FRAMES)
    return frames if stride is None else stride


def _folder_files(folder: str | os.PathLike) -> list[Path]:
    """The visible files of a folder, sorted by name; VideoError if it is not a folder."""
    where = Path(folder)
    if not where.is_dir():
        raise VideoError(os.fspath(folder), "is not a folder" if where.exists() else "no such folder")
    return sorted(p for p in where.iterdir() if p.is_file() and not p.name.startswith("."))


def clips_from_folder(folder: str | os.PathLike, frames: int, fmt: FrameFormat, *, stride: int | None = None) -> Tensor:
    """Every video in ``folder`` (sorted by name) cut into clips: uint8 [N,frames,H,W,C] at ``fmt``.

    Clips start every ``stride`` frames (default ``frames``: no overlap); a video's last frames that
    do not fill a clip are dropped. Files that cannot be read as video are skipped; VideoError if no
    clip results. Subfolders and hidden files are ignored.
    """
    step = _check_lengths(frames, stride)
    files = _folder_files(folder)
    clips, lengths = [], []
    for file in files:
        try:
            video = read_video(file, fmt).frames  # [T,H,W,C] uint8
        except VideoError:
            continue  # not a video (or unreadable): skip it
        lengths.append(len(video))
        clips.append(_windows(video, frames, step))
    if sum(len(c) for c in clips) == 0:
        found = f"{len(files)} files, {len(lengths)} readable videos"
        longest = f", the longest has {max(lengths)} frames" if lengths else ""
        raise VideoError(os.fspath(folder), f"holds no video of {frames} frames or more ({found}{longest})")
    return torch.cat(clips)  # [N,frames,H,W,C] uint8


def _clips_from_file(path: str, frames: int, fmt: FrameFormat, step: int) -> Tensor:
    """A clips file's sequences, checked against ``fmt`` and cut into [N,frames,H,W,C] windows."""
    stored, _ = load_clips(path)  # [N,T,H,W,C] uint8
    height, width, channels = stored.shape[2:]
    if (height, width, channels) != fmt.shape:
        raise InvalidArgumentError(
            "data", path, f"its frames are {height}x{width}x{channels} (HxWxC) but the model needs {fmt.height}x{fmt.width}x{fmt.channels}"
        )
    length = stored.shape[1]
    if length < frames:
        raise InvalidArgumentError("data", path, f"its sequences have {length} frames, fewer than the {frames} frames needed")
    if step == frames:  # no overlap: a reshape, without a copy when the length divides evenly
        used = length // frames * frames
        return stored[:, :used].reshape(-1, frames, height, width, channels)  # [N*k,frames,H,W,C]
    windows = stored.unfold(1, frames, step)  # [N,k,H,W,C,frames] view
    return windows.permute(0, 1, 5, 2, 3, 4).flatten(0, 1).contiguous()  # [N*k,frames,H,W,C]


def load_training_clips(source: str | os.PathLike, frames: int, fmt: FrameFormat, *, stride: int | None = None) -> Tensor:
    """Training clips uint8 [N,frames,H,W,C] from a clips file, a folder of videos or one video.

    A ``.safetensors`` source must be a clips file (:func:`save_clips`) whose frames already have
    ``fmt``'s size and channels (else InvalidArgumentError naming DATA); its sequences are cut into
    windows of ``frames`` starting every ``stride`` frames (default: no overlap), and a sequence
    shorter than ``frames`` is an error. A folder that holds ``.safetensors`` files is a sharded clips
    dataset: every such file, in name order, is read as above. Any other folder goes through
    :func:`clips_from_folder`; any other
    file is read as one video (resized to ``fmt``) and cut the same way.
    """
    step = _check_lengths(frames, stride)
    where = os.fspath(source)
    path = Path(where)
    if path.is_dir():
        shards = sorted(path.glob(f"*{CLIPS_SUFFIX}"))  # a sharded clips dataset (e.g. 'maskflow data maze')
        if shards:
            return torch.cat([_clips_from_file(str(shard), frames, fmt, step) for shard in shards])
        return clips_from_folder(where, frames, fmt, stride=stride)
    if not path.exists():
        raise VideoError(where, "no such file or folder")
    if path.suffix == CLIPS_SUFFIX:
        return _clips_from_file(where, frames, fmt, step)
    clips = _windows(read_video(where, fmt).frames, frames, step)  # [n,frames,H,W,C] uint8
    if len(clips) == 0:
        raise InvalidArgumentError("data", where, f"the video is shorter than the {frames} frames needed")
    return clips


__all__ = ["check_clips_output", "clips_from_folder", "load_clip", "load_clips", "load_training_clips", "save_clips"]
