"""Hostile and unusual video inputs, second round: decompression bombs and the decode budget,
bounded spooling of pipes and named pipes, rotation, frame rates from timestamps, several streams.

Every file is made here (PyAV or a few hand-written bytes) and is tiny; the limits are lowered
where a test would otherwise need a big input.
"""

from __future__ import annotations

import io
import os
import struct
import sys
import threading
import time
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from maskflow_cli.errors import InvalidArgumentError, VideoError
from maskflow_cli.video_io import MAX_FRAME_PIXELS, FrameFormat, InputLimits, open_video, read_video

from video_files import Pipe, gradient_clip, write_with_pyav

GRAY32 = FrameFormat(32, 32, 1)


# ---- decompression bombs and the decode budget ------------------------------------------------------


def _png(width: int, height: int) -> bytes:
    """A PNG whose header declares ``width`` x ``height`` and whose data is a few hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    idat = zlib.compress(b"\0" * (width + 1) * 4)  # four rows; the rest is missing
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _gif(width: int, height: int, frames: int) -> bytes:
    """A GIF89a declaring a ``width`` x ``height`` canvas, with ``frames`` 1x1 images on it."""
    data = b"GIF89a" + struct.pack("<HH", width, height) + b"\x80\x00\x00" + b"\x00\x00\x00\xff\xff\xff"
    data += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"  # loop forever (ignored by the reader)
    for _ in range(frames):
        data += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # graphic control: 0.1 s
        data += b"\x2c" + struct.pack("<HHHH", 0, 0, 1, 1) + b"\x00"  # a 1x1 image at the corner
        data += b"\x02\x02\x44\x01\x00"  # LZW: one white pixel
    return data + b"\x3b"


@pytest.mark.parametrize("name, data", [
    ("bomb.png", _png(8192, 8192)),  # was accepted (the old cap was 8192x8192) and cost gigabytes
    ("bomb.gif", _gif(8192, 8192, 3)),
    ("just_over.png", _png(4097, 4096)),
], ids=["png-8192", "gif-8192", "png-4097"])
def test_a_declared_canvas_over_the_cap_is_refused_at_once(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    assert len(data) < 1000
    started = time.process_time()
    with pytest.raises(VideoError, match=r"frame size \d+x\d+ is too large|over the 16,777,216-pixel frame limit") as caught:
        read_video(path, GRAY32)
    assert "\n" not in str(caught.value)
    assert time.process_time() - started < 2
    assert MAX_FRAME_PIXELS < 8192 * 8192


def test_the_pixel_budget_is_checked_before_and_while_decoding(tmp_path):
    clip = tmp_path / "clip.mp4"  # mp4 declares its frame count: refused at open
    write_with_pyav(clip, gradient_clip(10, 48, 32), muxer="mp4", codec="libx264", pix_fmt="yuv420p")
    with pytest.raises(VideoError, match=r"10 frames of 32x48 are more than the 10,000 decoded pixels.*MASKFLOW_MAX_INPUT_PIXELS"):
        open_video(clip, GRAY32, InputLimits(pixel_budget=10_000))
    gif = tmp_path / "many.gif"  # the GIF demuxer counts its frames: refused at open as well
    gif.write_bytes(_gif(64, 64, 40))
    with pytest.raises(VideoError, match=r"40 frames of 64x64 are more than the 10,000 decoded pixels"):
        read_video(gif, GRAY32, InputLimits(pixel_budget=10_000))
    assert len(read_video(gif, GRAY32).frames) == 40  # the default budget reads it
    mkv = tmp_path / "clip.mkv"  # Matroska declares no count: refused as the running total passes the budget
    mkv.write_bytes(_mkv_bytes(6))  # 6 frames of 32x32
    with pytest.raises(VideoError, match=r"clip.mkv': 3 frames are more than the 3,000 decoded pixels"):
        read_video(mkv, GRAY32, InputLimits(pixel_budget=3000))


def test_limits_from_the_environment():
    limits = InputLimits.from_env({"MASKFLOW_MAX_SPOOL_BYTES": "3M", "MASKFLOW_MAX_INPUT_PIXELS": "12345"})
    assert limits == InputLimits(pixel_budget=12345, spool_bytes=3 * 2**20)
    assert InputLimits.from_env({}) == InputLimits()
    for bad in ("-1", "lots", "0", "1.5G"):
        with pytest.raises(InvalidArgumentError, match="MASKFLOW_MAX_SPOOL_BYTES"):
            InputLimits.from_env({"MASKFLOW_MAX_SPOOL_BYTES": bad})


def test_cli_budget_error_is_one_line(cli, weights_dir, tmp_path, monkeypatch):
    gif = tmp_path / "many.gif"
    gif.write_bytes(_gif(64, 64, 40))
    monkeypatch.setenv("MASKFLOW_MAX_INPUT_PIXELS", "10000")
    result = cli("encode", gif, "-w", weights_dir, "-o", tmp_path / "t.safetensors", "--device", "cpu")
    assert result.code == 3
    assert result.err.strip().splitlines() == [result.err.strip()] and "MASKFLOW_MAX_INPUT_PIXELS" in result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many.gif"]


# ---- pipes: bounded spooling, named pipes ---------------------------------------------------------


def _mkv_bytes(frames: int = 6) -> bytes:
    buffer = io.BytesIO()
    write_with_pyav(buffer, gradient_clip(frames, 32, 32)[..., 0], muxer="matroska", codec="ffv1", pix_fmt="gray")
    return buffer.getvalue()


def test_an_endless_pipe_stops_at_the_spool_limit(monkeypatch):
    class Endless(io.RawIOBase):
        read_bytes = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            buffer[:] = b"y" * len(buffer)
            Endless.read_bytes += len(buffer)
            return len(buffer)

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Endless())))
    with pytest.raises(VideoError, match=r"^<stdin>: is a pipe of more than 1,048,576 bytes.*MASKFLOW_MAX_SPOOL_BYTES"):
        read_video("-", GRAY32, InputLimits(spool_bytes=2**20))
    assert Endless.read_bytes < 4 * 2**20


def test_a_pipe_within_the_limit_is_read(monkeypatch):
    data = _mkv_bytes()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(Pipe(data))))
    assert len(read_video("-", GRAY32, InputLimits(spool_bytes=len(data))).frames) == 6


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_spooled_like_stdin(tmp_path):
    fifo = tmp_path / "clip.fifo"
    os.mkfifo(fifo)
    data = _mkv_bytes()

    def feed() -> None:
        with open(fifo, "wb") as sink:
            sink.write(data)

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    video = read_video(fifo, GRAY32)
    writer.join(timeout=10)
    assert video.frames.shape == (6, 32, 32, 1)


# ---- rotation --------------------------------------------------------------------------------------


def _rotated_mp4(path: Path, degrees: int) -> None:
    """Landscape 32x64 (HxW) frames, white top-left corner, stored with a display rotation."""
    image = np.zeros((32, 64, 3), np.uint8)
    image[:12, :12] = 255
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=12)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(degrees)
        for index in range(3):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.mark.skipif(not hasattr(av.VideoStream, "set_display_rotation"), reason="this PyAV cannot write a display matrix")
@pytest.mark.parametrize("degrees, bright_corner", [(-90, "top right"), (90, "bottom left"), (180, "bottom right")])
def test_a_display_rotation_turns_frames_upright_before_resizing(tmp_path, degrees, bright_corner):
    path = tmp_path / "phone.mp4"
    _rotated_mp4(path, degrees)
    shape = (32, 64) if degrees == 180 else (64, 32)  # a quarter turn makes the landscape frame portrait
    frames = read_video(path, FrameFormat(*shape, 1)).frames  # exactly the upright size: nothing cropped
    corners = {"top left": frames[:, :8, :8], "top right": frames[:, :8, -8:],
               "bottom left": frames[:, -8:, :8], "bottom right": frames[:, -8:, -8:]}
    assert {name for name, block in corners.items() if block.float().mean() > 200} == {bright_corner}


# ---- frame rate from timestamps ------------------------------------------------------------------


def _mkv_with_timestamps(path: Path, stamps_ms: list[int], declared: int | None) -> None:
    """FFV1 in Matroska with millisecond timestamps; ``declared`` the stream's rate (None: PyAV's default, 24)."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=declared) if declared else out.add_stream("ffv1")
        stream.width, stream.height, stream.pix_fmt = 32, 32, "gray"
        stream.codec_context.time_base = Fraction(1, 1000)
        for index, stamp in enumerate(stamps_ms):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32), 10 * index, np.uint8), format="gray")
            frame.pts, frame.time_base = stamp, Fraction(1, 1000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


@pytest.mark.parametrize("declared", [None, 1000])
def test_millisecond_timestamps_at_12_fps_give_12_fps(tmp_path, declared):
    path = tmp_path / "ms.mkv"
    _mkv_with_timestamps(path, [round(i * 1000 / 12) for i in range(24)], declared)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate != 12  # the container claims another rate
    video = read_video(path, GRAY32)
    assert video.fps == 12 and len(video.frames) == 24


def test_variable_frame_rate_gives_the_mean_rate(tmp_path):
    path = tmp_path / "vfr.mkv"
    stamps = [0, 100, 150, 300, 320, 500, 700, 710, 900, 1000, 1250, 1300]
    _mkv_with_timestamps(path, stamps, None)
    video = read_video(path, GRAY32)
    assert abs(float(video.fps) - 11 / 1.3) < 0.01


def test_a_constant_rate_that_agrees_is_kept_exactly(tmp_path):
    path = tmp_path / "ntsc.mkv"
    write_with_pyav(path, gradient_clip(30, 32, 32)[..., 0], muxer="matroska", codec="ffv1", pix_fmt="gray",
                    fps=Fraction(30000, 1001))
    assert read_video(path, GRAY32).fps == Fraction(30000, 1001)


# ---- several video streams -------------------------------------------------------------------------


def test_the_first_of_two_video_streams_is_read_and_reported(tmp_path):
    path = tmp_path / "two.mkv"
    with av.open(str(path), "w") as out:
        streams = [out.add_stream("ffv1", rate=12) for _ in range(2)]
        for stream in streams:
            stream.width, stream.height, stream.pix_fmt = 32, 32, "gray"
        for index in range(4):
            for value, stream in zip((40, 200), streams):
                frame = av.VideoFrame.from_ndarray(np.full((32, 32), value, np.uint8), format="gray")
                frame.pts = index
                out.mux(stream.encode(frame))
        for stream in streams:
            out.mux(stream.encode())
    video = read_video(path, GRAY32)
    assert (video.stream, video.video_streams) == (0, 2)
    assert torch.all(video.frames == 40) and len(video.frames) == 4
