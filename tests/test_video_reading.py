"""maskflow_cli.video_io reading: files, file objects, pipes, still images and unreadable inputs."""

from __future__ import annotations

import io
import sys
from fractions import Fraction
from pathlib import Path

import pytest
import torch

from maskflow_cli.errors import VideoError
from maskflow_cli.video_io import open_video, open_writer, read_video

from video_files import GRAY, RGB, SMALL_RGB, Pipe, gradient_clip, make_bad_input, random_clip, write_mp4, write_still, y4m_bytes


def test_mp4_from_pyav_keeps_frame_count_and_fps(tmp_path: Path) -> None:
    frames = gradient_clip(15, 48, 32)  # [15,48,32,3]
    path = tmp_path / "clip.mp4"
    write_mp4(path, frames, fps=Fraction(12))
    with open_video(path, SMALL_RGB) as reader:
        assert reader.fps == Fraction(12)
        assert reader.declared_frames == 15
        decoded = torch.stack(list(reader))
    assert decoded.shape == (15, 48, 32, 3)
    assert (decoded.float() - torch.from_numpy(frames).float()).abs().mean() < 3


# --------------------------------------------------------------------------- streams


def test_read_y4m_and_mp4_from_binary_file_objects(tmp_path: Path) -> None:
    clip = random_clip(8, RGB)
    from_y4m = read_video(io.BytesIO(y4m_bytes(clip, RGB)), RGB)
    assert from_y4m.frames.shape == (8, 64, 64, 3) and from_y4m.fps == Fraction(12)

    mp4 = io.BytesIO()
    write_mp4(mp4, gradient_clip(9, 48, 32))  # moov atom at the end
    from_mp4 = read_video(io.BytesIO(mp4.getvalue()), SMALL_RGB)
    assert from_mp4.frames.shape == (9, 48, 32, 3) and from_mp4.fps == Fraction(12)


def test_non_seekable_pipe_is_spooled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mp4 = io.BytesIO()
    write_mp4(mp4, gradient_clip(9, 48, 32))  # needs seeking: index at the end
    pipe = Pipe(mp4.getvalue())
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(pipe)))
    video = read_video("-", SMALL_RGB)
    assert video.frames.shape == (9, 48, 32, 3)
    assert video.fps == Fraction(12)


def test_empty_pipe_is_reported_as_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Pipe(b""))))
    with pytest.raises(VideoError, match=r"^<stdin>: is empty"):
        read_video("-", GRAY)


# --------------------------------------------------------------------------- still images


@pytest.mark.parametrize(("name", "codec", "pix_fmt"), [
    ("still.png", "png", "rgb24"),
    ("still.jpg", "mjpeg", "yuvj420p"),
])
def test_still_image_is_a_one_frame_video(
    tmp_path: Path, name: str, codec: str, pix_fmt: str
) -> None:
    image = gradient_clip(1, 48, 32)[0]  # [48,32,3]
    write_still(tmp_path / name, image, codec, pix_fmt)
    video = read_video(tmp_path / name, SMALL_RGB)
    assert video.fps is None
    assert video.frames.shape == (1, 48, 32, 3)
    error = (video.frames[0].float() - torch.from_numpy(image).float()).abs().mean()
    assert error == 0 if codec == "png" else error < 4


# --------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(("kind", "problem"), [
    ("missing", "no such file"),
    ("directory", "is a directory"),
    ("empty", "is empty (0 bytes)"),
    ("random", "not a video file that FFmpeg can read"),
    ("text", "not a video file that FFmpeg can read"),
    ("audio_wav", "has no video stream"),
    ("audio_m4a", "has no video stream"),
    ("no_frames", "no decodable video frames"),
    ("cut_mp4", "truncated or corrupt"),
    ("cut_faststart_mp4", "truncated or corrupt: decoded "),
])
def test_bad_input_raises_video_error_naming_the_path(
    tmp_path: Path, kind: str, problem: str
) -> None:
    path = make_bad_input(kind, tmp_path)
    with pytest.raises(VideoError) as caught:
        read_video(path, SMALL_RGB)
    message = str(caught.value)
    assert message.startswith(f"{str(path)!r}: ")
    assert problem in message
    assert "\n" not in message


def test_truncated_faststart_mp4_reports_decoded_count(tmp_path: Path) -> None:
    path = make_bad_input("cut_faststart_mp4", tmp_path)
    with open_video(path, SMALL_RGB) as reader:
        assert reader.declared_frames == 12
        with pytest.raises(VideoError, match=r"truncated or corrupt: decoded \d+ of 12 frames"):
            for _ in reader:
                pass


def test_ffmpeg_prints_nothing_to_stderr(tmp_path: Path, capfd: pytest.CaptureFixture) -> None:
    for kind in ("random", "cut_faststart_mp4", "cut_mp4"):
        with pytest.raises(VideoError):
            read_video(make_bad_input(kind, tmp_path), SMALL_RGB)
    with open_writer(tmp_path / "out.mp4", GRAY, Fraction(12)) as writer:
        writer.write(random_clip(3, GRAY))
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""


