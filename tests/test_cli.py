"""Every command end to end through the real entry point, on real video files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from maskflow_cli import weight_sources
from maskflow_cli.pipeline import MaskFlowPipeline

from conftest import read_frames, run_subprocess
from video_files import make_bad_input
from test_weights import bad_weights

FAST = ["--steps", "3", "--device", "cpu"]


def only_file(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_generate_writes_the_frames_at_the_models_fps(cli, weights_dir, tmp_path):
    out = tmp_path / "gen.mkv"
    result = cli("generate", "-w", weights_dir, "-o", out, "--frames", 14, "--seed", 1, *FAST, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    frames, fps = read_frames(out)
    assert len(frames) == 14 and fps == 8 and frames.shape[1:] == (32, 32)
    # window 6, default context 3·6//8 = 2, stride 4: one window of 6, then 2 windows of 4 new frames
    assert summary["frames"] == summary["generated"] == 14 and summary["windows"] == 3
    # 3 steps per window; the default guidance adds uncond passes at 2 of the 3 steps of the windows with context
    assert summary["nfe"] == 3 + 2 * (3 + 2) - 1 and summary["seed"] == 1 and summary["fps"] == 8.0  # the second guided window keeps the first's blank uncond
    assert result.err == ""  # no progress or logs off a terminal


def test_generate_fps_option_and_full_mode(cli, weights_dir, tmp_path):
    out = tmp_path / "gen.mp4"
    result = cli("generate", "-w", weights_dir, "-o", out, "--frames", 6, "--mode", "full", "--fps", 24, *FAST, "--json")
    assert result.code == 0, result.err
    frames, fps = read_frames(out)
    assert len(frames) == 6 and fps == 24 and json.loads(result.out)["windows"] == 1


def test_extend_passes_input_frames_through(cli, weights_dir, clip_mkv, tmp_path):
    out = tmp_path / "ext.mkv"
    result = cli("extend", clip_mkv, "-w", weights_dir, "-o", out, "--frames", 7, *FAST, "--seed", 0)
    assert result.code == 0, result.err
    frames, fps = read_frames(out)
    source, _ = read_frames(clip_mkv)
    assert len(frames) == 27 and fps == 12
    assert np.array_equal(frames[:20], source)


def test_extend_keeps_other_sizes_and_fps(cli, weights_dir, clip_mp4, tmp_path):
    out, small = tmp_path / "ext.mp4", tmp_path / "small.mp4"
    result = cli("extend", clip_mp4, "-w", weights_dir, "-o", out, "--frames", 4, *FAST, "--json")
    assert result.code == 0, result.err
    frames, fps = read_frames(out)
    assert frames.shape == (24, 48, 64) and fps == 12  # the input's size (tests/test_cli_geometry.py)
    assert cli("extend", clip_mp4, "-w", weights_dir, "-o", small, "--frames", 4, "--size", "model", *FAST).code == 0
    assert read_frames(small)[0].shape == (24, 32, 32)


def test_infill_regenerates_only_the_ranges(cli, weights_dir, clip_mkv, tmp_path):
    out = tmp_path / "fill.mkv"
    result = cli("infill", clip_mkv, "3:6", "12:", "-w", weights_dir, "-o", out, *FAST, "--seed", 4, "--json")
    assert result.code == 0, result.err
    frames, fps = read_frames(out)
    source, _ = read_frames(clip_mkv)
    assert len(frames) == 20 and fps == 12
    keep = [i for i in range(20) if not (3 <= i < 6 or i >= 12)]
    assert np.array_equal(frames[keep], source[keep])
    assert not np.array_equal(frames[3:6], source[3:6])
    assert json.loads(result.out)["generated"] == 11


def test_still_image_is_a_one_frame_video(cli, weights_dir, tmp_path):
    import av

    png = tmp_path / "still.png"
    with av.open(str(png), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width = stream.height = 40
        stream.pix_fmt = "rgb24"
        image = np.zeros((40, 40, 3), np.uint8)
        image[10:30, 10:30] = 255
        container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    out = tmp_path / "from_still.mkv"
    result = cli("extend", png, "-w", weights_dir, "-o", out, "--frames", 5, *FAST)
    assert result.code == 0, result.err
    frames, fps = read_frames(out)
    assert len(frames) == 6 and fps == 8  # a still has no rate: the model's


@pytest.mark.parametrize("command", ["generate", "extend", "infill"])
def test_same_seed_same_output(cli, weights_dir, clip_mkv, tmp_path, command):
    args = {"generate": ["generate"], "extend": ["extend", clip_mkv], "infill": ["infill", clip_mkv, "2:9"]}[command]
    outputs = []
    for name, seed in (("a", 11), ("b", 11), ("c", 12)):
        out = tmp_path / f"{name}.mkv"
        assert cli(*args, "-w", weights_dir, "-o", out, "--seed", seed, *FAST).code == 0
        outputs.append(read_frames(out)[0])
    assert np.array_equal(outputs[0], outputs[1]) and not np.array_equal(outputs[0], outputs[2])
    assert (tmp_path / "a.mkv").read_bytes() == (tmp_path / "b.mkv").read_bytes()  # byte-identical files


def test_dry_run_prints_the_plan_and_writes_nothing(cli, weights_dir, clip_mkv, tmp_path):
    result = cli("infill", clip_mkv, "4:8", "-w", weights_dir, "--dry-run", "--mode", "full")
    assert result.code == 0, result.err
    plan = json.loads(result.out)
    assert plan["length"] == 20 and plan["window"] == 6 and len(plan["windows"]) == 1
    assert plan["windows"][0]["keep"] == [4, 5, 6, 7]
    assert only_file(tmp_path) == []


def test_encode_then_decode_is_the_tokenizer_reconstruction(cli, weights_dir, clip_mkv, tmp_path):
    tokens = tmp_path / "clip.tokens.safetensors"
    assert cli("encode", clip_mkv, "-w", weights_dir, "-o", tokens).code == 0
    out = tmp_path / "recon.mkv"
    result = cli("decode", tokens, "-w", weights_dir, "-o", out, "--json")
    assert result.code == 0, result.err
    decoded, fps = read_frames(out)
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu", precision="fp32")  # decode runs the tokenizer as stored
    source = torch.from_numpy(read_frames(clip_mkv)[0])[..., None]
    expected = pipe.decode(pipe.encode(source))[..., 0].numpy()
    assert fps == 12 and np.array_equal(decoded, expected)


def test_info_describes_the_weights(cli, weights_dir):
    result = cli("info", "-w", weights_dir, "--json")
    assert result.code == 0
    info = json.loads(result.out)
    assert info["transformer"]["config"]["frames"] == 6 and info["tokenizer"]["config"]["levels"] == [4, 4]
    assert info["transformer"]["parameters"] > 0 and info["transformer"]["info"]["fps"] == 8
    text = cli("info", "-w", weights_dir)
    assert text.code == 0 and "transformer" in text.out
    first = text.out.splitlines()[0]  # one readable line, then labelled tables
    assert first.startswith("32×32 gray frames, 6-frame window, vocabulary 16 (8×8 tokens per frame), 8 fps, transformer ")
    assert "window (frames)" in text.out and "token grid height" in text.out and "fps (stored)" in text.out
    assert info["summary"].startswith("32×32 gray frames, 6-frame window")


def test_no_default_weights_says_so(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(weight_sources, "default_weights_dir", lambda: None)
    result = cli("generate", "-o", tmp_path / "x.mkv")
    assert result.code == 4 and "no default weights are installed" in result.err


def check_failure(result, folder: Path, expected_files: list[str], *needles: str) -> None:
    assert result.code != 0
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: "), result.err
    assert "Traceback" not in result.err and result.out == ""
    for needle in needles:
        assert needle in lines[0]
    assert only_file(folder) == expected_files, "no output or temporary file is left behind"


@pytest.mark.parametrize(
    "kind, needle",
    [("missing", "no such file"), ("directory", "is a directory"), ("empty", "is empty"), ("random", "not a video file"),
     ("text", "not a video file"), ("audio_wav", "has no video stream"), ("cut_mp4", "truncated or corrupt"),
     ("cut_faststart_mp4", "truncated or corrupt")],
)
@pytest.mark.parametrize("command", ["extend", "infill"])
def test_bad_video_input(cli, weights_dir, tmp_path, kind, needle, command):
    inputs = tmp_path / "in"
    inputs.mkdir()
    bad = make_bad_input(kind, inputs)
    outputs = tmp_path / "out"
    outputs.mkdir()
    ranges = ["1:2"] if command == "infill" else []
    result = cli(command, bad, *ranges, "-w", weights_dir, "-o", outputs / "x.mp4", *FAST)
    check_failure(result, outputs, [], str(bad), needle)
    assert result.code == 3


@pytest.mark.parametrize(
    "ranges, needle",
    [(["15:25"], "beyond the end"), (["5:5"], "empty or reversed"), (["9:3"], "empty or reversed"),
     (["2:8", "6:10"], "overlaps"), (["x"], "expected START:STOP")],
)
def test_bad_ranges(cli, weights_dir, clip_mkv, tmp_path, ranges, needle):
    result = cli("infill", clip_mkv, *ranges, "-w", weights_dir, "-o", tmp_path / "x.mkv", *FAST)
    check_failure(result, tmp_path, [], "RANGES", needle)
    assert result.code == 2


@pytest.mark.parametrize(
    "options, needle",
    [(["--frames", "0"], "--frames"), (["--frames", "-4"], "--frames"), (["--steps", "0"], "--steps"),
     (["--context", "6"], "--context"), (["--stride", "9"], "--stride"), (["--mode", "full", "--frames", "7"], "--mode ar"),
     (["--sampler", "ddim"], "--sampler"), (["--fps", "0"], "--fps"), (["--frames", "many"], "--frames"),
     (["--device", "tpu"], "--device")],
)
def test_bad_options(cli, weights_dir, tmp_path, options, needle):
    result = cli("generate", "-w", weights_dir, "-o", tmp_path / "x.mkv", *options)
    check_failure(result, tmp_path, [], needle)


@pytest.mark.parametrize("kind, needle", [("random bytes", "not a valid safetensors"), ("pickle", "not a valid safetensors"), ("misfit", "do not fit together")])
def test_bad_weights(cli, tmp_path, kind, needle):
    weights = tmp_path / "w"
    weights.mkdir()
    path = bad_weights(weights, kind)
    out = tmp_path / "out"
    out.mkdir()
    result = cli("generate", "-w", path, "-o", out / "x.mkv")
    check_failure(result, out, [], needle)
    assert result.code == 4


def test_missing_weights(cli, tmp_path):
    check_failure(cli("generate", "-w", tmp_path / "nothing", "-o", tmp_path / "x.mkv"), tmp_path, [], "no such file")


def test_output_safety(cli, weights_dir, clip_mkv, tmp_path):
    out = tmp_path / "taken.mkv"
    out.write_bytes(b"precious")
    check_failure(cli("generate", "-w", weights_dir, "-o", out, *FAST), tmp_path, ["taken.mkv"], "--overwrite")
    assert out.read_bytes() == b"precious"
    assert cli("generate", "-w", weights_dir, "-o", out, "--overwrite", *FAST).code == 0
    assert len(read_frames(out)[0]) == 16
    original = clip_mkv.read_bytes()
    result = cli("extend", clip_mkv, "-w", weights_dir, "-o", clip_mkv, "--overwrite", *FAST)
    assert result.code != 0 and "is the input" in result.err and clip_mkv.read_bytes() == original
    check_failure(cli("generate", "-w", weights_dir, "-o", tmp_path / "x.bmp", *FAST), tmp_path, ["taken.mkv"], "unsupported suffix")


@pytest.mark.slow
def test_pipeline_through_stdin_and_stdout(weights_dir, tmp_path):
    generated = run_subprocess(["generate", "-w", weights_dir, "-o", "-", "--frames", "5", *FAST, "--seed", "1"])
    assert generated.returncode == 0 and generated.stdout.startswith(b"YUV4MPEG2"), generated.stderr
    extended = run_subprocess(["extend", "-", "-w", weights_dir, "-o", "-", "--frames", "3", *FAST], stdin=generated.stdout)
    assert extended.returncode == 0, extended.stderr
    out = tmp_path / "piped.mkv"
    filled = run_subprocess(["infill", "-", "1:3", "-w", weights_dir, "-o", out, *FAST, "--json"], stdin=extended.stdout)
    assert filled.returncode == 0, filled.stderr
    assert json.loads(filled.stdout)["frames"] == 8 and len(read_frames(out)[0]) == 8
    assert filled.stderr == b""


def test_console_script_reports_errors_in_one_line(tmp_path):
    result = run_subprocess(["extend", tmp_path / "missing.mp4", "-o", tmp_path / "x.mp4", "-w", tmp_path])
    assert result.returncode != 0 and len(result.stderr.decode().strip().splitlines()) == 1


def test_json_is_refused_when_stdout_carries_the_video(cli, weights_dir, tmp_path):
    check_failure(cli("generate", "-w", weights_dir, "-o", "-", "--json", *FAST), tmp_path, [], "--json")


@pytest.mark.slow
@pytest.mark.parametrize("signal_name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_interrupt_leaves_no_output_and_no_temporary_file(weights_dir, tmp_path, signal_name, code):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "long.mkv"
    args = [sys.executable, "-m", "maskflow_cli", "generate", "-w", str(weights_dir), "-o", str(out), "--frames", "100000", "--steps", "2"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not list(tmp_path.iterdir()) and time.monotonic() < deadline:  # wait until the writer has started
            time.sleep(0.05)
        assert list(tmp_path.iterdir()), "the temporary output never appeared"
        os.kill(process.pid, getattr(signal, signal_name))
        _, err = process.communicate(timeout=60)
    finally:  # a failed wait must not leave a 100,000-frame run behind
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == code and err.decode().strip().splitlines() == [f"maskflow: error: {'interrupted' if code == 130 else 'terminated'}"]
    assert list(tmp_path.iterdir()) == []
