"""maskflow_cli.video_io writing: round trips per suffix, stdout, temporary files, refused targets."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from maskflow_cli.errors import OutputError
from maskflow_cli.video_io import FrameFormat, check_not_input, open_writer, read_video, resize_frame

from video_files import GRAY, RGB, gradient_clip, leftovers, random_clip, y4m_bytes


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".mkv", ".nut", ".avi"])
@pytest.mark.parametrize("fmt", [GRAY, RGB], ids=["gray", "rgb"])
def test_lossless_round_trip_is_bit_exact(tmp_path: Path, suffix: str, fmt: FrameFormat) -> None:
    clip = random_clip(12, fmt)
    target = tmp_path / f"out{suffix}"
    with open_writer(target, fmt, Fraction(12)) as writer:
        writer.write(clip[:5])
        writer.write(clip[5:])
    video = read_video(target, fmt)
    assert torch.equal(video.frames, clip)
    assert video.fps == Fraction(12)
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("fmt", [GRAY, RGB], ids=["gray", "rgb"])
def test_mp4_writer_round_trip(tmp_path: Path, fmt: FrameFormat) -> None:
    rgb = torch.from_numpy(gradient_clip(10, 64, 64))  # [10,64,64,3]
    clip = rgb if fmt.channels == 3 else resize_frame(rgb[0], fmt)[None].repeat(10, 1, 1, 1)
    target = tmp_path / "out.mp4"
    with open_writer(target, fmt, Fraction(24)) as writer:
        writer.write(clip)
    video = read_video(target, fmt)
    assert video.frames.shape == (10, *fmt.shape)
    assert video.fps == Fraction(24)
    assert (video.frames.float() - clip.float()).abs().mean() < 3


def test_y4m_round_trip(tmp_path: Path) -> None:
    gray = random_clip(10, GRAY)
    with open_writer(tmp_path / "gray.y4m", GRAY, Fraction(30000, 1001)) as writer:
        writer.write(gray)
    video = read_video(tmp_path / "gray.y4m", GRAY)
    assert torch.equal(video.frames, gray)  # gray y4m is stored as is
    assert video.fps == Fraction(30000, 1001)

    rgb = random_clip(10, RGB)
    with open_writer(tmp_path / "rgb.y4m", RGB, Fraction(12)) as writer:
        writer.write(rgb)
    back = read_video(tmp_path / "rgb.y4m", RGB).frames
    assert back.shape == rgb.shape
    assert (back.int() - rgb.int()).abs().max() <= 3  # only yuv444p rounding


def test_write_to_dash_gives_a_y4m_stream() -> None:
    clip = random_clip(6, GRAY)
    data = y4m_bytes(clip, GRAY)
    assert data.startswith(b"YUV4MPEG2 W64 H64 F12:1")
    video = read_video(io.BytesIO(data), GRAY)
    assert torch.equal(video.frames, clip)


# --------------------------------------------------------------------------- writer safety


def test_exception_inside_with_leaves_no_temp_file_and_old_target(tmp_path: Path) -> None:
    target = tmp_path / "out.mkv"
    target.write_bytes(b"old contents")
    for interruption in (RuntimeError("boom"), KeyboardInterrupt()):
        with pytest.raises(type(interruption)):
            with open_writer(target, GRAY, Fraction(12), overwrite=True) as writer:
                writer.write(random_clip(4, GRAY))
                hidden = leftovers(tmp_path)
                assert len(hidden) == 1
                assert hidden[0].startswith(".out.maskflow-") and hidden[0].endswith(".mkv")
                raise interruption
        assert leftovers(tmp_path) == []
        assert target.read_bytes() == b"old contents"


def test_overwrite_replaces_an_existing_target(tmp_path: Path) -> None:
    target = tmp_path / "out.y4m"
    target.write_bytes(b"old contents")
    with pytest.raises(OutputError, match="exists; pass --overwrite to replace it"):
        open_writer(target, GRAY, Fraction(12))
    assert leftovers(tmp_path) == []
    clip = random_clip(3, GRAY)
    with open_writer(target, GRAY, Fraction(12), overwrite=True) as writer:
        writer.write(clip)
    assert torch.equal(read_video(target, GRAY).frames, clip)


def test_unsupported_suffix(tmp_path: Path) -> None:
    target = tmp_path / "out.xyz"
    with pytest.raises(OutputError) as caught:
        open_writer(target, GRAY, Fraction(12))
    assert str(caught.value) == (
        f"output {str(target)!r}: unsupported suffix '.xyz'; "
        "use one of .mp4 .mov .m4v .mkv .nut .avi .y4m .webm .gif, or frames/%05d.png for PNG images"
    )


def test_target_in_a_missing_directory(tmp_path: Path) -> None:
    target = tmp_path / "missing_dir" / "out.mkv"
    with pytest.raises(OutputError, match="does not exist"):
        open_writer(target, GRAY, Fraction(12))


def test_target_that_is_a_directory(tmp_path: Path) -> None:
    target = tmp_path / "folder.mkv"
    target.mkdir()
    with pytest.raises(OutputError, match="is a directory"):
        open_writer(target, GRAY, Fraction(12), overwrite=True)
    assert leftovers(tmp_path) == []


def test_odd_size_is_refused_for_h264(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="even frame size"):
        open_writer(tmp_path / "out.mp4", FrameFormat(63, 64, 1), Fraction(12))
    assert leftovers(tmp_path) == []


def test_writer_without_frames_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="no frames"):
        with open_writer(tmp_path / "out.mkv", GRAY, Fraction(12)):
            pass
    assert os.listdir(tmp_path) == []


def test_write_rejects_frames_of_the_wrong_shape(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        with open_writer(tmp_path / "out.mkv", GRAY, Fraction(12)) as writer:
            writer.write(random_clip(2, RGB))
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- check_not_input


def test_check_not_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "in.mkv"
    source.write_bytes(b"video")
    (tmp_path / "link.mkv").symlink_to(source)
    monkeypatch.chdir(tmp_path)
    for same in (source, "in.mkv", "./in.mkv", tmp_path / "link.mkv"):
        with pytest.raises(OutputError, match="is the input file; choose another output"):
            check_not_input(same, ["-", source])
    check_not_input("-", ["-", source])
    check_not_input(tmp_path / "other.mkv", ["-", source])
    check_not_input("out.mkv", [])
