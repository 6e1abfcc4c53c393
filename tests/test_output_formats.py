"""Outputs people use: .gif, .webm, PNG sequences, and -o - refused on a terminal; infill ranges
from the end and in seconds, through the real entry point."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from maskflow_cli.errors import OutputError
from maskflow_cli.video_io import FrameFormat, open_writer
from maskflow_cli.video_io.palette import PaletteFilter

from conftest import read_frames

FAST = ["--steps", "2", "--device", "cpu", "--seed", "3"]
pytestmark = pytest.mark.usefixtures("one_thread")


def _generate(cli, weights_dir, output: Path, *extra: str):
    result = cli("generate", "-w", weights_dir, "-o", output, "--frames", "8", *FAST, *extra)
    assert result.code == 0, result.err
    return result


@pytest.fixture(scope="module")
def reference(tmp_path_factory, weights_dir) -> np.ndarray:
    """The 8 frames that generate makes with FAST, from a lossless .mkv: uint8 [T,H,W] gray."""
    from maskflow_cli.cli import main

    target = tmp_path_factory.mktemp("reference") / "a.mkv"
    assert main(["generate", "-w", str(weights_dir), "-o", str(target), "--frames", "8", *FAST, "--quiet"]) == 0
    return read_frames(target)[0]


def test_generate_gif_is_a_looping_gif_with_the_exact_gray_frames(cli, weights_dir, tmp_path, reference):
    target = tmp_path / "a.gif"
    _generate(cli, weights_dir, target)
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert container.format.name == "gif" and stream.codec_context.name == "gif"
        frames = np.stack([f.to_ndarray(format="gray") for f in container.decode(stream)])
    assert np.array_equal(frames, reference)  # a gray model's 256 levels are a GIF's palette: nothing lost
    assert b"NETSCAPE2.0\x03\x01\x00\x00" in target.read_bytes()  # the looping block: loop forever


def test_generate_webm_is_vp9_close_to_the_frames(cli, weights_dir, tmp_path, reference):
    target = tmp_path / "a.webm"
    _generate(cli, weights_dir, target)
    with av.open(str(target)) as container:
        stream = container.streams.video[0]
        assert container.format.name.startswith("matroska") and stream.codec_context.name == "vp9"
        frames = np.stack([f.to_ndarray(format="gray") for f in container.decode(stream)])
        assert stream.average_rate == 8  # the tiny weights' rate
    assert frames.shape == reference.shape
    mse = np.mean((frames.astype(float) - reference) ** 2)
    assert 10 * np.log10(255**2 / max(mse, 1e-9)) > 30, mse


def test_colour_gif_frames_with_few_colours_come_back(tmp_path):
    """Each frame gets a palette of its own: a frame of at most 255 colours comes back within one
    level (FFmpeg's palettegen rounds through OkLab), whatever colours the other frames use."""
    rng = np.random.default_rng(0)
    frames = []
    for t in range(8):
        colours = rng.integers(0, 256, (60, 3), dtype=np.uint8)  # 60 colours a frame, 480 in all: more than one palette holds
        frames.append(colours[rng.integers(0, 60, (24, 30))])  # [H,W,3]
    clip = torch.from_numpy(np.stack(frames))  # [T,24,30,3] uint8; odd sizes are fine for GIF
    target = tmp_path / "colour.gif"
    with open_writer(target, FrameFormat(24, 30, 3), Fraction(10)) as writer:
        writer.write(clip[:4])
        writer.write(clip[4:])
    with av.open(str(target)) as container:
        back = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    assert back.shape == clip.shape and np.abs(back.astype(int) - clip.numpy()).max() <= 1


def test_the_palette_filter_holds_no_frame_back():
    """Memory stays flat: every frame pushed comes out at once, nothing waits for the end."""
    palette = PaletteFilter(16, 8, Fraction(10))
    for t in range(5):
        frame = av.VideoFrame.from_ndarray(np.full((8, 16, 3), 40 * t, dtype=np.uint8), format="rgb24")
        frame.pts = t
        out = palette.push(frame)
        assert [f.format.name for f in out] == ["pal8"] and out[0].pts == t
    assert palette.push(None) == []


def test_png_sequence_holds_every_frame_in_a_new_folder(cli, weights_dir, tmp_path, reference):
    _generate(cli, weights_dir, tmp_path / "frames" / "%05d.png")
    names = sorted(os.listdir(tmp_path / "frames"))
    assert names == [f"{i:05d}.png" for i in range(8)]  # numbered from 0, as frame ranges are
    for i, name in enumerate(names):
        with av.open(str(tmp_path / "frames" / name)) as container:
            image = next(container.decode(video=0)).to_ndarray(format="gray")
        assert np.array_equal(image, reference[i])
    assert sorted(os.listdir(tmp_path)) == ["frames"]  # no temporary folder left


def test_png_sequence_in_an_existing_folder_is_refused_then_replaced(cli, weights_dir, tmp_path):
    folder = tmp_path / "shots"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    for i in range(12):  # an earlier, longer sequence
        (folder / f"f{i:03d}.png").write_bytes(b"old")
    result = cli("generate", "-w", weights_dir, "-o", folder / "f%03d.png", "--frames", "8", *FAST)
    assert result.code == 5 and "f000.png' and 11 more frames exist; pass --overwrite" in result.err
    _generate(cli, weights_dir, folder / "f%03d.png", "--overwrite")
    assert sorted(os.listdir(folder)) == sorted(["keep.txt", *(f"f{i:03d}.png" for i in range(8))])
    assert (folder / "f000.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("pattern, needle", [
    ("f%d%d.png", "give one %d or %0Nd"), ("f%s.png", "give one %d or %0Nd"), ("a%/f%03d.png", "give one %d"),
    ("frame.png", "for a PNG per frame give a pattern such as frames/%05d.png"), ("no/such/f%03d.png", "does not exist"),
])
def test_bad_png_patterns_are_refused_before_work(cli, tmp_path, pattern, needle):
    result = cli("generate", "-w", tmp_path / "no-weights", "-o", tmp_path / pattern, *FAST)
    assert result.code == 5 and needle in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert os.listdir(tmp_path) == []


def test_an_aborted_png_sequence_leaves_nothing(tmp_path):
    fmt = FrameFormat(8, 8, 1)
    with pytest.raises(RuntimeError):
        with open_writer(tmp_path / "out" / "%04d.png", fmt, Fraction(5)) as writer:
            writer.write(torch.zeros(3, 8, 8, 1, dtype=torch.uint8))
            raise RuntimeError("stop")
    assert os.listdir(tmp_path) == []
    with pytest.raises(OutputError, match="no frames were written"):
        open_writer(tmp_path / "%04d.png", fmt, Fraction(5)).close()
    assert os.listdir(tmp_path) == []


def test_stdout_on_a_terminal_is_refused(weights_dir):
    """As gzip does: -o - with stdout on a terminal writes nothing there and says what to do."""
    leader, follower = pty.openpty()
    try:
        result = subprocess.run([sys.executable, "-m", "maskflow_cli", "generate", "-w", str(weights_dir), "-o", "-", *FAST],
                                stdout=follower, stderr=subprocess.PIPE, timeout=120)
        os.set_blocking(leader, False)
        try:
            shown = os.read(leader, 4096)
        except BlockingIOError:
            shown = b""
    finally:
        os.close(leader)
        os.close(follower)
    assert result.returncode == 5 and shown == b""
    assert result.stderr.decode() == ("maskflow: error: output <stdout>: refusing to write video to a terminal; "
                                      "redirect it (> out.y4m, | ffplay -) or use -o FILE\n")


def test_infill_the_last_frames(cli, weights_dir, clip_mp4, tmp_path):
    result = cli("infill", clip_mp4, "-4:", "-w", weights_dir, "-o", tmp_path / "fixed.mkv", *FAST, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["frames"] == 20 and summary["generated"] == 4
    assert read_frames(tmp_path / "fixed.mkv")[0].shape[0] == 20


@pytest.mark.parametrize("ranges, kept", [(["-10:-2"], range(10, 18)), (["-1s:"], range(8, 20)), (["0.5s:1s", "-1"], [*range(6, 12), 19])])
def test_infill_ranges_from_the_end_and_in_seconds(cli, weights_dir, clip_mkv, ranges, kept):
    result = cli("infill", clip_mkv, *ranges, "-w", weights_dir, "--dry-run", *FAST)  # clip_mkv: 20 frames at 12 fps
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert sorted(i for w in plan["windows"] for i in w["keep"]) == list(kept)


def test_a_mistyped_option_is_not_taken_for_a_range(cli, weights_dir, clip_mkv, tmp_path):
    result = cli("infill", clip_mkv, "2:4", "--sed", "3", "-w", weights_dir, "-o", tmp_path / "x.mkv")
    assert result.code == 2 and result.err == ("maskflow: error: invalid value for RANGES: '--sed' "
                                               "(no such option, and not a frame range; see maskflow infill --help)\n")
