"""Every failure to write ends in one line, exit 5 with the OS's reason, and no leftovers: a full
disk (simulated by a file-size limit, RLIMIT_FSIZE, which fails writes with "File too large" as a
full disk fails them with "No space left on device") while writing a tokens file, a training
checkpoint or the metrics log; a plot into a folder that cannot exist. Temporary names fit NAME_MAX
whenever the output's name does.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import write_video, moving_square_frames

pytestmark = pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="needs RLIMIT_FSIZE")
TRAIN = ["--preset", "tiny", "--size", "32", "--batch-size", "2", "--warmup", "0", "--device", "cpu", "--precision", "fp32"]


def _run_with_file_limit(args: list, limit: int) -> subprocess.CompletedProcess:
    """``python -m maskflow_cli ARGS`` in a process whose files cannot grow beyond ``limit`` bytes."""

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run([sys.executable, "-m", "maskflow_cli", *map(str, args)], capture_output=True, preexec_fn=limited,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def _one_line(done: subprocess.CompletedProcess, code: int, *needles: str) -> str:
    err = done.stderr.decode()
    lines = err.strip().splitlines()
    assert done.returncode == code, err
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: ") and "internal error" not in lines[0], lines
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def test_a_full_disk_while_writing_a_tokens_file_is_exit_5(weights_dir, clip_mkv, tmp_path):
    out = tmp_path / "clip.tokens.safetensors"
    done = _run_with_file_limit(["encode", clip_mkv, "-w", weights_dir, "-o", out], 1000)  # the file needs ~5 KB
    _one_line(done, 5, str(out), "File too large")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def frames_clip(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("clip") / "clip.mkv", moving_square_frames(4))


@pytest.mark.parametrize("limit, what", [(50_000, "checkpoint.pt"), (40, "metrics.jsonl")])
def test_a_full_disk_while_training_writes_is_exit_5(frames_clip, tmp_path, limit, what):
    out = tmp_path / "tok"
    done = _run_with_file_limit(["train-tokenizer", frames_clip, "-o", out, *TRAIN, "--steps", "1", "--log-every", "1", "--quiet"], limit)
    _one_line(done, 5, what, "File too large")
    assert not list(out.glob(".*")), list(out.iterdir())  # no temporary file left


def test_a_plot_that_cannot_be_written_is_an_output_error(tmp_path):
    pytest.importorskip("matplotlib")
    from maskflow_cli.errors import OutputError
    from maskflow_cli.plots import write_sampler_plot

    (tmp_path / "file").write_text("in the way")
    with pytest.raises(OutputError, match="plot.png': cannot write: File exists"):
        write_sampler_plot([{"sampler": "mgm", "nfe": 8, "mse": 0.1, "psnr": 20.0}], tmp_path / "file" / "plot.png")


def test_an_output_name_at_name_max_is_written(weights_dir, clip_mkv, cli, tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    suffix = ".tokens.safetensors"
    out = tmp_path / ("t" * (name_max - len(suffix)) + suffix)
    result = cli("encode", clip_mkv, "-w", weights_dir, "-o", out)
    assert result.code == 0, result.err
    assert [p.name for p in tmp_path.iterdir()] == [out.name]
    video = tmp_path / ("v" * (name_max - 4) + ".mkv")
    result = cli("decode", out, "-w", weights_dir, "-o", video)
    assert result.code == 0, result.err
    assert video.exists()
