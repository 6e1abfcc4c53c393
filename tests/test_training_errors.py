"""Training inputs that must end in one line and the right exit code: bad checkpoints for --resume,
an output that is a file, float options that are not finite, --window out of range.

The data is a 20-frame clip at the tiny tokenizer's size; runs are one or two steps of the tiny preset.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from conftest import one_error_line

COMMON = ["--preset", "tiny", "--batch-size", "2", "--warmup", "0", "--device", "cpu", "--precision", "fp32"]


def _train(cli, clip, weights_dir, out: Path, *options):
    return cli("train", clip, "--tokenizer", weights_dir, "-o", out, "--window", 4, *COMMON, *options)


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
def test_resume_from_a_bad_checkpoint_isone_error_line(cli, weights_dir, clip_mkv, good_checkpoint, tmp_path, kind):
    out = tmp_path / "run"
    out.mkdir()
    data = _checkpoint(kind, good_checkpoint, tmp_path)
    _write(out / "checkpoint.pt", data)
    result = _train(cli, clip_mkv, weights_dir, out, "--steps", 2, "--resume")
    one_error_line(result, 4, "checkpoint.pt", "train from the start")
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
    one_error_line(result, 5, str(target), "is a file")
    assert target.read_bytes() == b"keep me"


@pytest.mark.parametrize("option, value", [
    ("--lr", "inf"), ("--lr", "nan"), ("--grad-clip", "inf"), ("--ema", "nan"), ("--fps", "nan"), ("--fps", "inf"),
    ("--constant-time-prob", "nan"), ("--context-prob", "inf"),
])
def test_float_options_must_be_finite(cli, weights_dir, clip_mkv, tmp_path, option, value):
    result = _train(cli, clip_mkv, weights_dir, tmp_path / "run", "--steps", 1, option, value)
    one_error_line(result, 2, option)
    assert not (tmp_path / "run").exists()


def test_the_older_constant_level_prob_flag_is_the_same_option(cli, weights_dir, clip_mkv, tmp_path):
    result = _train(cli, clip_mkv, weights_dir, tmp_path / "run", "--steps", 1, "--constant-level-prob", "nan")
    one_error_line(result, 2, "invalid value for --constant-time-prob: nan")  # parsed as the same option
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("option, value", [("--lr", "inf"), ("--grad-clip", "nan")])
def test_tokenizer_float_options_must_be_finite(cli, clip_mkv, tmp_path, option, value):
    result = cli("train-tokenizer", clip_mkv, "-o", tmp_path / "tok", "--size", 32, *COMMON, "--steps", 1, option, value)
    one_error_line(result, 2, option)


@pytest.mark.parametrize("window", [0, 100_000])
def test_window_errors_name_the_window(cli, weights_dir, clip_mkv, tmp_path, window):
    result = cli("train", clip_mkv, "--tokenizer", weights_dir, "-o", tmp_path / "run", "--window", window, *COMMON)
    line = one_error_line(result, 2, "--window")
    assert "--frames" not in line


# ---- runs are never overwritten or mixed ---------------------------------------------------------


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, weights_dir, clip_mkv) -> Path:
    """A folder holding a one-step run of ``train`` (checkpoint, metrics, weights)."""
    from maskflow_cli.cli import main

    out = tmp_path_factory.mktemp("held") / "run"
    assert main(["train", str(clip_mkv), "--tokenizer", str(weights_dir), "-o", str(out), "--window", "4", *COMMON,
                 "--steps", "1", "--quiet"]) == 0
    return out


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _copy_run(run: Path, folder: Path) -> Path:
    folder.mkdir()
    for name, data in _snapshot(run).items():
        (folder / name).write_bytes(data)
    return folder


def test_training_into_a_folder_holding_a_run_is_refused(cli, weights_dir, clip_mkv, trained_run, tmp_path):
    out = _copy_run(trained_run, tmp_path / "run")
    before = _snapshot(out)
    result = _train(cli, clip_mkv, weights_dir, out, "--steps", 1)
    one_error_line(result, 5, "holds a training run", "--resume", "--overwrite")
    result = cli("train-tokenizer", clip_mkv, "-o", out, "--size", 32, *COMMON, "--steps", 1)
    one_error_line(result, 5, "holds a training run")
    assert _snapshot(out) == before  # nothing replaced, nothing appended


def test_overwrite_replaces_the_run_and_cannot_be_combined_with_resume(cli, weights_dir, clip_mkv, trained_run, tmp_path):
    out = _copy_run(trained_run, tmp_path / "run")
    one_error_line(_train(cli, clip_mkv, weights_dir, out, "--steps", 1, "--overwrite", "--resume"), 2, "--overwrite", "--resume")
    result = _train(cli, clip_mkv, weights_dir, out, "--steps", 1, "--overwrite", "--seed", 5)
    assert result.code == 0, result.err
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1  # the old run's log is gone, not appended to
    assert torch.load(out / "checkpoint.pt", weights_only=True)["config"]["seed"] == 5


@pytest.fixture(scope="module")
def other_tokenizer(tmp_path_factory) -> Path:
    """A tokenizer of the same shape as weights_dir's, with other weights."""
    from conftest import tiny_models
    from maskflow_cli.weights import save_weights

    folder = tmp_path_factory.mktemp("other")
    tokenizer, _ = tiny_models(seed=1)
    save_weights(folder / "tokenizer.safetensors", {"tokenizer": tokenizer}, {"tokenizer": {"reconstruction_psnr": 0.0}})
    return folder


@pytest.mark.parametrize("change, flag", [
    ("tokenizer", "--tokenizer"), (("--lr", "1e-3"), "--lr"), (("--context-prob", "0.5"), "--context-prob"),
    (("--seed", "3"), "--seed"), (("--fps", "12"), "--fps"),
])
def test_resume_with_another_tokenizer_or_setting_is_refused_naming_it(cli, weights_dir, clip_mkv, trained_run, other_tokenizer,
                                                                       tmp_path, change, flag):
    out = _copy_run(trained_run, tmp_path / "run")
    before = _snapshot(out)
    tokenizer = other_tokenizer if change == "tokenizer" else weights_dir
    extra = () if change == "tokenizer" else change
    result = _train(cli, clip_mkv, tokenizer, out, "--steps", 2, "--resume", *extra)
    one_error_line(result, 4, "checkpoint.pt", f"trained with {flag} ")
    assert _snapshot(out) == before


def test_resume_with_the_same_settings_continues(cli, weights_dir, clip_mkv, trained_run, tmp_path):
    out = _copy_run(trained_run, tmp_path / "run")
    result = _train(cli, clip_mkv, weights_dir, out, "--steps", 2, "--resume", "--log-every", 1)  # log_every may change
    assert result.code == 0, result.err
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2


@pytest.mark.parametrize("command", ["train", "train-tokenizer"])
def test_a_failed_run_leaves_no_folder_it_created(cli, weights_dir, tmp_path, command):
    out = tmp_path / "new" / "run"
    missing = tmp_path / "missing.mkv"
    if command == "train":
        result = _train(cli, missing, weights_dir, out, "--steps", 1)
    else:
        result = cli("train-tokenizer", missing, "-o", out, "--size", 32, *COMMON, "--steps", 1)
    one_error_line(result, 3, "missing.mkv")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_overwrite_keeps_the_earlier_run(cli, weights_dir, clip_mkv, trained_run, tmp_path):
    """--overwrite replaces a run only once the new one has finished: a run that fails puts the earlier
    one back, byte for byte, and leaves nothing of its own."""
    out = _copy_run(trained_run, tmp_path / "run")
    before = _snapshot(out)
    result = _train(cli, tmp_path / "missing.mkv", weights_dir, out, "--steps", 1, "--overwrite")
    assert result.code != 0
    assert _snapshot(out) == before
