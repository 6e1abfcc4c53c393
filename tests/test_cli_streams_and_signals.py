"""Standard streams and signals through the real entry point: closed stdin/stdout, stdin that is the
output file, process substitution, signals during start-up, SIGHUP/SIGQUIT, a killed run's leftovers.

Each test runs ``python -m maskflow_cli`` as a child process with a tiny model and a few frames.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

FAST = ["--steps", "1", "--device", "cpu"]
TIMEOUT = 120


def _run(args: list, *, close: int | None = None, stdin=None) -> subprocess.CompletedProcess:
    """``python -m maskflow_cli ARGS``; ``close`` 0 or 1 starts it with that descriptor closed."""
    closing = None if close is None else (lambda: os.close(close))
    return subprocess.run([sys.executable, "-m", "maskflow_cli", *map(str, args)], stdin=stdin,
                          stdout=subprocess.DEVNULL if close == 1 else subprocess.PIPE, stderr=subprocess.PIPE,
                          preexec_fn=closing, timeout=TIMEOUT)


def _one_line(result: subprocess.CompletedProcess) -> str:
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("maskflow: error: ") and "internal error" not in lines[0]
    return lines[0]


# ---- closed streams -------------------------------------------------------------------------------
# In-process, Python's view of a closed descriptor is sys.stdin / sys.stdout being None; one child
# process checks the real thing.


@pytest.mark.slow
def test_closed_stdin_in_a_real_process(weights_dir, tmp_path):
    result = _run(["extend", "-", "--frames", "2", *FAST, "-w", weights_dir, "-o", tmp_path / "out.mkv"], close=0)
    assert result.returncode == 3
    assert "<stdin>: is closed" in _one_line(result)
    assert list(tmp_path.iterdir()) == []


def _cli_line(result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: ") and "internal error" not in lines[0], lines
    return lines[0]


@pytest.mark.parametrize("command", ["extend", "infill", "encode"])
def test_closed_stdin_is_one_clear_line(cli, weights_dir, tmp_path, monkeypatch, command):
    output = tmp_path / ("out.tokens.safetensors" if command == "encode" else "out.mkv")
    args = {"extend": ["extend", "-", "--frames", "2", *FAST], "infill": ["infill", "-", "1:2", *FAST],
            "encode": ["encode", "-", "--device", "cpu"]}[command]
    monkeypatch.setattr(sys, "stdin", None)
    result = cli(*args, "-w", weights_dir, "-o", output)
    assert result.code == 3
    assert "<stdin>: is closed" in _cli_line(result)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["extend", "infill", "decode", "encode --json"])
def test_closed_stdout_is_one_clear_line(cli, weights_dir, clip_mkv, tmp_path, monkeypatch, command):
    if command == "decode":
        tokens = tmp_path / "clip.tokens.safetensors"
        assert cli("encode", clip_mkv, "-w", weights_dir, "-o", tokens, "--device", "cpu").code == 0
        args = ["decode", tokens, "-o", "-", "--device", "cpu"]
    elif command == "encode --json":  # the tokens file is written; the summary cannot be
        args = ["encode", clip_mkv, "-o", tmp_path / "t.tokens.safetensors", "--json", "--device", "cpu"]
    else:
        args = [command, clip_mkv, *(["--frames", "2"] if command == "extend" else ["1:2"]), "-o", "-", *FAST]
    monkeypatch.setattr(sys, "stdout", None)
    result = cli(*args, "-w", weights_dir)
    assert result.code == 5
    assert "<stdout>: is closed" in _cli_line(result)


# ---- stdin as the output, process substitution -------------------------------------------------------


def test_the_file_behind_stdin_is_never_overwritten(cli, weights_dir, clip_mkv, tmp_path, monkeypatch):
    source = tmp_path / "in.mkv"
    shutil.copy(clip_mkv, source)
    with open(source, "rb") as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        result = cli("extend", "-", "--frames", "2", "-w", weights_dir, "-o", source, "--overwrite", *FAST)
    assert result.code == 5
    assert "is the input file" in _cli_line(result)
    assert source.read_bytes() == clip_mkv.read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mkv"]


@pytest.mark.skipif(not Path("/dev/fd").is_dir(), reason="needs /dev/fd")
def test_process_substitution_is_read(cli, weights_dir, clip_mkv, tmp_path):
    """``extend <(cat clip.mkv)`` hands over /dev/fd/N, a pipe that cannot seek."""
    read_end, write_end = os.pipe()
    feeder = threading.Thread(target=lambda: (os.write(write_end, clip_mkv.read_bytes()), os.close(write_end)), daemon=True)
    feeder.start()
    try:
        result = cli("extend", f"/dev/fd/{read_end}", "--frames", "2", "-w", weights_dir, "-o", tmp_path / "out.mkv", *FAST)
    finally:
        feeder.join(timeout=10)
        os.close(read_end)
    assert result.code == 0, result.err
    assert (tmp_path / "out.mkv").exists()


# ---- signals ------------------------------------------------------------------------------------


def _catches(pid: int, signum: int) -> bool:
    """Whether process ``pid`` has a handler for ``signum`` (its SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    caught = next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(int(caught, 16) >> (signum - 1) & 1)


def _torch_loading(pid: int) -> bool:
    try:
        return "libtorch" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc")
def test_sigint_during_start_up_is_one_line(weights_dir, tmp_path):
    """The signal is sent as soon as the handlers are installed or torch starts loading, whichever
    comes first: with the handlers installed before the heavy imports, that is during them."""
    output = tmp_path / "out.mkv"
    process = subprocess.Popen([sys.executable, "-m", "maskflow_cli", "generate", "-w", str(weights_dir), "-o", str(output), *FAST],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline:
        if _catches(process.pid, signal.SIGTERM) or _torch_loading(process.pid):
            break
        time.sleep(0.001)
    assert not _torch_loading(process.pid) or _catches(process.pid, signal.SIGTERM), "torch loaded before the handlers"
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130
    assert err.decode().strip().splitlines() == ["maskflow: error: interrupted"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("signal_name, code, word", [("SIGHUP", 129, "hung up"), ("SIGQUIT", 131, "quit")])
def test_sighup_and_sigquit_are_like_sigterm(weights_dir, tmp_path, signal_name, code, word):
    """The signal is sent to a running generate once its temporary output exists. (A child process:
    a stop signal sent to the test process itself would reach it whenever a run ends first.)"""
    process = subprocess.Popen([sys.executable, "-m", "maskflow_cli", "generate", "-w", str(weights_dir), "-o", str(tmp_path / "long.mkv"),
                                "--frames", "100000", "--steps", "2", "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not list(tmp_path.iterdir()) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    process.send_signal(getattr(signal, signal_name))
    _, err = process.communicate(timeout=60)
    assert process.returncode == code and err.decode().strip().splitlines() == [f"maskflow: error: {word}"]
    assert list(tmp_path.iterdir()) == []


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_killed_runs_temporary_file_is_removed_by_the_next_run(cli, weights_dir, tmp_path):
    stale = tmp_path / f".out.maskflow-{_dead_pid()}-0123abcd.mkv"
    alive = tmp_path / f".out.maskflow-{os.getpid()}-89abcdef.mkv"  # a running process's: kept
    other = tmp_path / f".other.maskflow-{_dead_pid()}-0123abcd.mkv"  # another target's: kept
    for path in (stale, alive, other):
        path.write_bytes(b"partial")
    result = cli("generate", "-w", weights_dir, "-o", tmp_path / "out.mkv", "--frames", "2", *FAST)
    assert result.code == 0, result.err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, other.name, "out.mkv"])

