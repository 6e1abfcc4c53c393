"""Video files for the tests, made here with PyAV (independent of the module under test)."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from maskflow_cli.video_io import FrameFormat, open_writer

GRAY = FrameFormat(height=64, width=64, channels=1)
RGB = FrameFormat(height=64, width=64, channels=3)
SMALL_RGB = FrameFormat(height=48, width=32, channels=3)


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


def y4m_bytes(clip: torch.Tensor, fmt: FrameFormat) -> bytes:
    buffer = io.BytesIO()
    with open_writer("-", fmt, Fraction(12), stdout=buffer) as writer:
        writer.write(clip)
    return buffer.getvalue()


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

