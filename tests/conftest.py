"""Shared fixtures: tiny random models saved as real safetensors files, and real video files."""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from maskflow_cli.cli import main
from maskflow_cli.model_configs import TokenizerConfig, TransformerConfig
from maskflow_cli.tokenizer import FrameTokenizer
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weights import save_weights

TINY_TOKENIZER = TokenizerConfig(height=32, width=32, channels=1, base_channels=8, channel_multipliers=(1, 2), levels=(4, 4))
TINY_TRANSFORMER = TransformerConfig(vocab_size=16, frames=6, grid_height=8, grid_width=8, dim=32, depth=2, heads=2)


def tiny_models(time_conditioning: bool = True, seed: int = 0) -> tuple[FrameTokenizer, MaskFlowTransformer]:
    torch.manual_seed(seed)
    config = TransformerConfig(**{**TINY_TRANSFORMER.__dict__, "time_conditioning": time_conditioning})
    return FrameTokenizer(TINY_TOKENIZER).eval(), MaskFlowTransformer(config).eval()


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory) -> Path:
    """A folder with tokenizer.safetensors and transformer.safetensors (the usual layout). The random
    tokenizer states its own reconstruction PSNR as 0 dB, so no input is out of its domain and the
    commands stay silent on stderr (tests/test_cli_ux.py checks the domain warning)."""
    folder = tmp_path_factory.mktemp("weights")
    tokenizer, transformer = tiny_models()
    save_weights(folder / "tokenizer.safetensors", {"tokenizer": tokenizer}, {"tokenizer": {"reconstruction_psnr": 0.0}})
    save_weights(folder / "transformer.safetensors", {"transformer": transformer}, {"transformer": {"fps": 8}})
    return folder


def write_video(path: Path, frames: np.ndarray, fps: int = 12) -> Path:
    """Write uint8 [T,H,W,1|3] frames; FFV1 (lossless) for .mkv/.nut, H.264 for .mp4."""
    lossless = path.suffix in (".mkv", ".nut")
    gray = frames.shape[-1] == 1
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1" if lossless else "libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = ("gray" if gray else "bgr0") if lossless else "yuv420p"
        for frame in frames:
            image = frame[..., 0] if gray else frame
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="gray" if gray else "rgb24")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))
    return path


def moving_square_frames(count: int, size: int = 32, channels: int = 1) -> np.ndarray:
    """A bright square drifting over a dark gradient: simple, deterministic test content."""
    frames = np.zeros((count, size, size, channels), dtype=np.uint8)
    ramp = np.linspace(0, 60, size, dtype=np.uint8)
    for t in range(count):
        frames[t] = ramp[None, :, None]
        x = (2 * t) % (size - 8)
        frames[t, 10:18, x : x + 8] = 230
    return frames


@pytest.fixture(scope="session")
def clip_mkv(tmp_path_factory) -> Path:
    """20 frames at the tiny model's size (32x32 gray), lossless, 12 fps."""
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mkv", moving_square_frames(20))


@pytest.fixture(scope="session")
def clip_mp4(tmp_path_factory) -> Path:
    """20 RGB frames of 48x64 (needs resizing), H.264, 12 fps."""
    frames = np.repeat(moving_square_frames(20, size=64), 3, axis=-1)[:, 8:56]
    return write_video(tmp_path_factory.mktemp("clips") / "clip.mp4", frames)


def read_frames(path: Path) -> tuple[np.ndarray, Fraction]:
    """All frames of a video as uint8 [T,H,W] gray, and its frame rate."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="gray") for f in container.decode(stream)]
        return np.stack(frames), stream.average_rate


class CliResult:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def cli(capsys):
    """Run the real entry point (maskflow_cli.cli.main) in-process."""

    def run(*args: str) -> CliResult:
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


def run_subprocess(args: list[str], stdin: bytes | None = None, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run ``python -m maskflow_cli ARGS`` as a separate process (for pipes, signals, env)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "maskflow_cli", *map(str, args)], input=stdin, capture_output=True, env=full_env, timeout=timeout)


@pytest.fixture(scope="module")
def one_thread():
    """Torch in one thread for a module (``pytestmark = pytest.mark.usefixtures("one_thread")``): the
    tiny models are faster so on two cores shared with other work."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)



def one_error_line(result: CliResult, code: int, *needles: str) -> str:
    """The one ``maskflow: error:`` line a failed run printed, checked: exit ``code``, not an internal
    error, every needle in it."""
    lines = result.err.strip().splitlines()
    assert result.code == code, result.err
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: ") and "internal error" not in lines[0], lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
