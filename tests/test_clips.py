"""Clips files and folders of videos: the training data format and how training data is read.

Axis legend: N clips, T frames, H, W pixels, C channels.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from maskflow_cli.clips import clips_from_folder, load_clip, load_clips, load_training_clips, save_clips
from maskflow_cli.errors import InvalidArgumentError, OutputError, VideoError
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.worlds.moving_mnist import moving_mnist

from conftest import moving_square_frames, read_frames, write_video

# ---- clips files ---------------------------------------------------------------------------------


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
    save_clips(path, built.frames, {"dataset": "moving-mnist"})
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


# ---- one clip back to a video: maskflow data show --------------------------------------------------


@pytest.fixture
def clips_file(tmp_path) -> tuple[Path, torch.Tensor]:
    clips = torch.randint(0, 256, (5, 12, 32, 32, 1), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    path = tmp_path / "clips.safetensors"
    save_clips(path, clips, {"dataset": "moving-mnist", "split": "test", "seed": 1})
    return path, clips


def test_load_clip_reads_one_clip_counting_from_either_end(clips_file):
    path, clips = clips_file
    for index in (0, 3, -1, -5):
        frames, metadata, count = load_clip(path, index)
        assert torch.equal(frames, clips[index]) and count == 5 and metadata["split"] == "test"
    with pytest.raises(InvalidArgumentError, match=r"holds 5 clips: give 0..4 \(or -5..-1 from the end\)"):
        load_clip(path, 5)
    with pytest.raises(VideoError, match="is a folder; give one of its .safetensors files"):
        load_clip(path.parent, 0)


def test_data_show_says_what_the_file_holds(cli, clips_file):
    path, _ = clips_file
    result = cli("data", "show", path)
    assert result.code == 0 and result.err == f"{path}: 5 clips of 12 frames, 32x32 gray (dataset moving-mnist, split test, seed 1)\n"
    assert json.loads(cli("data", "show", path, "--json").out)["clips"] == 5


def test_a_clip_written_by_data_show_plays_and_infills(cli, clips_file, weights_dir, tmp_path):
    """The newcomer's path: a clip of the training data as a video, then infill on it."""
    path, clips = clips_file
    result = cli("data", "show", path, "--index", "3", "-o", tmp_path / "clip.mkv")
    assert result.code == 0, result.err
    frames, fps = read_frames(tmp_path / "clip.mkv")
    assert np.array_equal(frames, clips[3, ..., 0].numpy()) and fps == 10  # lossless, at the default rate
    assert cli("data", "show", path, "-i", "-1", "-o", tmp_path / "clip.mp4", "--fps", "25").code == 0
    assert read_frames(tmp_path / "clip.mp4")[0].shape == (12, 32, 32)
    fixed = cli("infill", tmp_path / "clip.mkv", "-4:", "-w", weights_dir, "-o", tmp_path / "fixed.mkv", "--steps", "2", "--device", "cpu")
    assert fixed.code == 0, fixed.err
    out = read_frames(tmp_path / "fixed.mkv")[0]
    assert out.shape == (12, 32, 32) and np.array_equal(out[:8], frames[:8])  # frames outside -4: pass through


def test_data_show_refuses_a_missing_clip_before_writing(cli, clips_file, tmp_path):
    path, _ = clips_file
    result = cli("data", "show", path, "--index", "7", "-o", tmp_path / "clip.mkv")
    assert result.code == 2 and "invalid value for --index: 7" in result.err and not (tmp_path / "clip.mkv").exists()
