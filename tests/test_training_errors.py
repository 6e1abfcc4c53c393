"""Training inputs that must end in one line and the right exit code: bad checkpoints for --resume,
an output that is a file, float options that are not finite, --window out of range.

The data is a 20-frame clip at the tiny tokenizer's size; runs are one or two steps of the tiny preset.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

COMMON = ["--preset", "tiny", "--batch-size", "2", "--warmup", "0", "--device", "cpu", "--precision", "fp32"]


def _train(cli, clip, weights_dir, out: Path, *options):
    return cli("train", clip, "--tokenizer", weights_dir, "-o", out, "--window", 4, *COMMON, *options)


def _one_line(result, code: int, *needles: str) -> str:
    lines = result.err.strip().splitlines()
    assert result.code == code, result.err
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: ") and "internal error" not in lines[0], lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


class _Marker:
    """Unpickling this would create a file: proof that a checkpoint's code ran."""

    path = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory, weights_dir, clip_mkv) -> bytes:
    from maskflow_cli.cli import main

    out = tmp_path_factory.mktemp("run")
    code = main(["train", str(clip_mkv), "--tokenizer", str(weights_dir), "-o", str(out), "--window", "4", *COMMON,
                 "--steps", "1", "--quiet"])
    assert code == 0
    return (out / "checkpoint.pt").read_bytes()


def _checkpoint(kind: str, good: bytes, folder: Path) -> bytes:
    if kind == "empty":
        return b""
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "corrupt":
        return bytes(b ^ 0x5A for b in good[:4096]) + good[4096:]
    if kind == "foreign":  # a readable torch file that is no training checkpoint
        path = folder / "foreign.pt"
        torch.save({"weights": torch.zeros(3)}, path)
        return path.read_bytes()
    if kind == "other model":  # a real checkpoint of a different model (the tokenizer's)
        state = torch.load(_write(folder / "good.pt", good), weights_only=True)
        state["model"] = {"something.else": torch.zeros(2)}
        torch.save(state, folder / "other.pt")
        return (folder / "other.pt").read_bytes()
    if kind == "malicious":
        _Marker.path = str(folder / "marker")
        return pickle.dumps({"step": _Marker()}, protocol=2)
    raise ValueError(kind)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("kind", ["empty", "truncated", "corrupt", "foreign", "other model", "malicious"])
def test_resume_from_a_bad_checkpoint_is_one_line(cli, weights_dir, clip_mkv, good_checkpoint, tmp_path, kind):
    out = tmp_path / "run"
    out.mkdir()
    data = _checkpoint(kind, good_checkpoint, tmp_path)
    _write(out / "checkpoint.pt", data)
    result = _train(cli, clip_mkv, weights_dir, out, "--steps", 2, "--resume")
    _one_line(result, 4, "checkpoint.pt", "train from the start")
    assert (out / "checkpoint.pt").read_bytes() == data  # left as it was
    assert not (tmp_path / "marker").exists()
    assert not (out / "transformer.safetensors").exists()


@pytest.mark.parametrize("command", ["train", "train-tokenizer"])
def test_an_output_that_is_a_file_is_refused_before_any_work(cli, weights_dir, clip_mkv, tmp_path, command):
    target = _write(tmp_path / "existing", b"keep me")
    if command == "train":
        result = _train(cli, clip_mkv, weights_dir, target, "--steps", 1)
    else:
        result = cli("train-tokenizer", clip_mkv, "-o", target, "--size", 32, *COMMON, "--steps", 1)
    _one_line(result, 5, str(target), "is a file")
    assert target.read_bytes() == b"keep me"


@pytest.mark.parametrize("option, value", [
    ("--lr", "inf"), ("--lr", "nan"), ("--grad-clip", "inf"), ("--ema", "nan"), ("--fps", "nan"), ("--fps", "inf"),
    ("--constant-level-prob", "nan"), ("--context-prob", "inf"),
])
def test_float_options_must_be_finite(cli, weights_dir, clip_mkv, tmp_path, option, value):
    result = _train(cli, clip_mkv, weights_dir, tmp_path / "run", "--steps", 1, option, value)
    _one_line(result, 2, option)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value", [("--lr", "inf"), ("--grad-clip", "nan")])
def test_tokenizer_float_options_must_be_finite(cli, clip_mkv, tmp_path, option, value):
    result = cli("train-tokenizer", clip_mkv, "-o", tmp_path / "tok", "--size", 32, *COMMON, "--steps", 1, option, value)
    _one_line(result, 2, option)


@pytest.mark.parametrize("window", [0, 100_000])
def test_window_errors_name_the_window(cli, weights_dir, clip_mkv, tmp_path, window):
    result = cli("train", clip_mkv, "--tokenizer", weights_dir, "-o", tmp_path / "run", "--window", window, *COMMON)
    line = _one_line(result, 2, "--window")
    assert "--frames" not in line
