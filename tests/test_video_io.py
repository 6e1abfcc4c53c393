"""Tests for maskflow_cli.video_io: every input file is made here with PyAV, inside tmp_path."""

from __future__ import annotations

import io
import os
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from maskflow_cli.errors import OutputError, VideoError
from maskflow_cli.video_io import (
    FrameFormat,
    check_not_input,
    open_video,
    open_writer,
    read_video,
    resize_frame,
)

GRAY = FrameFormat(height=64, width=64, channels=1)
RGB = FrameFormat(height=64, width=64, channels=3)
SMALL_RGB = FrameFormat(height=48, width=32, channels=3)


# --------------------------------------------------------------------------- helpers


def random_clip(frames: int, fmt: FrameFormat, seed: int = 0) -> torch.Tensor:
    """uint8 [T,H,W,C] seeded noise: any lossy step shows up at once."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (frames, *fmt.shape), dtype=torch.uint8, generator=generator)


def gradient_clip(frames: int, height: int, width: int) -> np.ndarray:
    """uint8 [T,H,W,3] smooth moving colour gradients: survives H.264 almost unchanged."""
    t, y, x = np.meshgrid(np.arange(frames), np.arange(height), np.arange(width), indexing="ij")
    red = x * 200 / max(width - 1, 1) + 2 * t
    green = y * 200 / max(height - 1, 1) + 20
    blue = 96 + 4 * t + 0 * x
    return np.stack([red, green, blue], axis=-1).astype(np.uint8)


def write_with_pyav(
    path: Path | io.BytesIO,
    frames: np.ndarray,  # uint8 [T,H,W,3] rgb24 or [T,H,W] gray
    *,
    muxer: str,
    codec: str,
    pix_fmt: str,
    fps: Fraction = Fraction(12),
    container_options: dict[str, str] | None = None,
) -> None:
    """Encode frames with PyAV directly (independent of the module under test)."""
    in_format = "gray" if frames.ndim == 3 else "rgb24"
    with av.open(path, "w", format=muxer, container_options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = pix_fmt
        for index, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(array), format=in_format)
            frame.pts = index
            frame.time_base = 1 / fps
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def write_mp4(path: Path | io.BytesIO, frames: np.ndarray, **options: object) -> None:
    write_with_pyav(path, frames, muxer="mp4", codec="libx264", pix_fmt="yuv420p", **options)


def write_still(path: Path, image: np.ndarray, codec: str, pix_fmt: str) -> None:
    """One rgb24 [H,W,3] image as a PNG or JPEG file through FFmpeg's image2 muxer."""
    with av.open(str(path), "w", format="image2") as out:
        stream = out.add_stream(codec, rate=1)
        stream.height, stream.width = image.shape[:2]
        stream.pix_fmt = pix_fmt
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())


def write_audio(path: Path, muxer: str, codec: str) -> None:
    """Half a second of a 440 Hz sine, mono, with no video stream."""
    rate = 8000
    t = np.arange(rate // 2) / rate
    samples = (np.sin(2 * np.pi * 440 * t) * 10000).astype(np.int16)[np.newaxis]  # [1,N]
    with av.open(str(path), "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = rate
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode())


class Pipe(io.RawIOBase):
    """A read-only, non-seekable byte stream, like stdin fed by a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, buffer: bytearray) -> int:  # type: ignore[override]
        chunk = self._data.read(min(len(buffer), 4096))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def leftovers(directory: Path) -> list[str]:
    """Temporary files the writer may have left in a directory."""
    return sorted(name for name in os.listdir(directory) if ".maskflow-" in name)


# --------------------------------------------------------------------------- resize_frame


def test_same_size_frame_passes_through_bit_exact() -> None:
    frame = random_clip(1, RGB)[0]  # [64,64,3]
    assert torch.equal(resize_frame(frame, RGB), frame)
    gray = random_clip(1, GRAY)[0]
    assert torch.equal(resize_frame(gray, GRAY), gray)


def test_rgb_to_gray_uses_rounded_bt601_luma() -> None:
    frame = random_clip(1, RGB, seed=3)[0]  # [64,64,3]
    r, g, b = (frame[..., i].numpy().astype(np.int64) for i in range(3))
    expected = (299 * r + 587 * g + 114 * b + 500) // 1000  # exact, halves rounded up
    result = resize_frame(frame, GRAY)
    assert result.shape == (64, 64, 1) and result.dtype == torch.uint8
    assert np.array_equal(result[..., 0].numpy(), expected)
    pixel = torch.tensor([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 250]]], dtype=torch.uint8)
    luma = resize_frame(pixel, FrameFormat(1, 4, 1))[0, :, 0].tolist()
    assert luma == [76, 150, 29, 29]  # 76.245, 149.685, 29.07, 28.5 -> halves go up


def test_gray_to_rgb_repeats_and_alpha_is_dropped() -> None:
    gray = random_clip(1, GRAY)[0]  # [64,64,1]
    assert torch.equal(resize_frame(gray, RGB), gray.expand(-1, -1, 3))
    rgba = torch.cat([random_clip(1, RGB)[0], torch.zeros(64, 64, 1, dtype=torch.uint8)], dim=2)
    assert torch.equal(resize_frame(rgba, RGB), rgba[..., :3])


def banded_frame(height: int, band_width: int) -> torch.Tensor:
    """uint8 [H, 3*band_width, 3]: left band 0, middle band 200, right band 50."""
    bands = [torch.full((height, band_width, 3), v, dtype=torch.uint8) for v in (0, 200, 50)]
    return torch.cat(bands, dim=1)


def test_wide_frame_is_centre_cropped() -> None:
    frame = banded_frame(height=32, band_width=32)  # [32,96,3]: the middle 32x32 is 200
    assert torch.equal(resize_frame(frame, FrameFormat(32, 32, 3)), frame[:, 32:64])
    scaled = resize_frame(banded_frame(height=64, band_width=64), FrameFormat(32, 32, 1))
    assert scaled.shape == (32, 32, 1)
    assert bool((scaled == 200).all())  # only the middle band survives: cropped, then scaled


def test_tall_frame_covers_target_and_keeps_the_middle_rows() -> None:
    frame = banded_frame(height=48, band_width=48).transpose(0, 1).contiguous()  # [144,48,3]
    result = resize_frame(frame, FrameFormat(24, 24, 3))
    assert result.shape == (24, 24, 3)
    assert bool((result == 200).all())


def test_upscaling_covers_the_target() -> None:
    frame = torch.full((48, 32, 3), 77, dtype=torch.uint8)  # portrait, smaller than the target
    result = resize_frame(frame, GRAY)
    assert result.shape == (64, 64, 1)
    assert bool((result == 77).all())


def test_resize_rejects_a_frame_of_the_wrong_type() -> None:
    with pytest.raises(ValueError):
        resize_frame(torch.zeros(8, 8, 3, dtype=torch.float32), RGB)


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


# --------------------------------------------------------------------------- streams


def y4m_bytes(clip: torch.Tensor, fmt: FrameFormat) -> bytes:
    buffer = io.BytesIO()
    with open_writer("-", fmt, Fraction(12), stdout=buffer) as writer:
        writer.write(clip)
    return buffer.getvalue()


def test_write_to_dash_gives_a_y4m_stream() -> None:
    clip = random_clip(6, GRAY)
    data = y4m_bytes(clip, GRAY)
    assert data.startswith(b"YUV4MPEG2 W64 H64 F12:1")
    video = read_video(io.BytesIO(data), GRAY)
    assert torch.equal(video.frames, clip)


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


def make_bad_input(kind: str, directory: Path) -> Path:
    """Create one kind of unreadable input in ``directory`` and return its path."""
    path = directory / f"{kind}.mp4"
    if kind == "missing":
        return path
    if kind == "directory":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    elif kind == "text":
        path.write_text("this is a text file, not a video\n" * 20)
    elif kind in ("audio_wav", "audio_m4a"):
        path = path.with_suffix(".wav" if kind == "audio_wav" else ".m4a")
        write_audio(path, *(("wav", "pcm_s16le") if kind == "audio_wav" else ("mp4", "aac")))
    elif kind == "no_frames":
        path = path.with_suffix(".y4m")
        path.write_bytes(b"YUV4MPEG2 W32 H48 F12:1 Ip A1:1 Cmono\n")
    elif kind in ("cut_mp4", "cut_faststart_mp4"):
        faststart = kind == "cut_faststart_mp4"  # index first: the frames are what is cut
        options = {"movflags": "+faststart"} if faststart else None
        noise = random_clip(12, SMALL_RGB).numpy()  # big frames: the cut lands mid-stream
        write_mp4(path, noise, container_options=options)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


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
    assert message.startswith(f"{path}: ")
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
        f"output {target}: unsupported suffix '.xyz'; "
        "use one of .mp4 .mov .m4v .mkv .nut .avi .y4m"
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
