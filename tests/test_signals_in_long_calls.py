"""A stop signal is answered within seconds even inside one long native call: the network runs in a
helper thread while the main thread keeps handling signals (signals.interruptible).

The weights are built to be slow: one frame of 144x144 tokens (20,736), 768 wide, so the first
network call is one attention over 20,736 tokens that takes half a minute on a CPU core, within
the default work limits.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from maskflow_cli.model_configs import TokenizerConfig, TransformerConfig
from maskflow_cli.tokenizer import FrameTokenizer
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weights import save_weights

SECONDS_TO_STOP = 10


@pytest.fixture(scope="module")
def slow_weights(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slow")
    tokenizer = TokenizerConfig(height=576, width=576, channels=1, base_channels=8, channel_multipliers=(1, 2), levels=(4, 4))
    transformer = TransformerConfig(vocab_size=16, frames=1, grid_height=tokenizer.token_height, grid_width=tokenizer.token_width,
                                    dim=768, depth=1, heads=1)
    save_weights(folder / "tokenizer.safetensors", {"tokenizer": FrameTokenizer(tokenizer)}, {"tokenizer": {"reconstruction_psnr": 0.0}})
    save_weights(folder / "transformer.safetensors", {"transformer": MaskFlowTransformer(transformer)}, {"transformer": {"fps": 8}})
    return folder


@pytest.mark.parametrize("signal_name, code", [("SIGTERM", 143), ("SIGINT", 130)])
def test_a_signal_inside_a_long_network_call_stops_the_run_within_seconds(slow_weights, tmp_path, signal_name, code):
    out = tmp_path / "out.mkv"
    process = subprocess.Popen([sys.executable, "-m", "maskflow_cli", "generate", "-w", str(slow_weights), "-o", str(out), "--frames", "1",
                                "--mode", "full", "--steps", "1", "--device", "cpu", "--seed", "0"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + 120
    while not any(".maskflow-" in p.name for p in tmp_path.iterdir()) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)  # the temporary output appears just before sampling starts
    assert process.poll() is None, process.communicate()[1].decode()
    time.sleep(1.0)  # now inside the first network call
    sent = time.monotonic()
    process.send_signal(getattr(signal, signal_name))
    _, err = process.communicate(timeout=120)
    waited = time.monotonic() - sent
    lines = err.decode().strip().splitlines()
    assert process.returncode == code, err.decode()
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: "), lines
    assert waited < SECONDS_TO_STOP, f"stopped {waited:.1f} s after the signal"
    assert list(tmp_path.iterdir()) == []  # the temporary output removed


def test_interruptible_work_runs_in_one_kept_helper_thread():
    """Every call's work runs in the same helper thread (OpenMP's team and the heap arena are kept
    from call to call); its value and its exceptions come back to the caller."""
    import threading

    from maskflow_cli.signals import interruptible

    def fail() -> None:
        raise ValueError("inside the work")

    threads = [interruptible(threading.current_thread) for _ in range(3)]
    assert len(set(threads)) == 1 and threads[0] is not threading.main_thread()
    with pytest.raises(ValueError, match="inside the work"):
        interruptible(fail)
    assert interruptible(lambda: 7) == 7 and interruptible(threading.current_thread) is threads[0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork here")
def test_a_forked_child_gets_its_own_helper_thread():
    """A child forked after the helper started inherits the queue but not the thread: it starts its own."""
    from maskflow_cli.signals import interruptible

    assert interruptible(lambda: 1) == 1  # the parent's helper is running
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer through the pipe, then leave without running pytest's teardown
        try:
            os.write(write, str(interruptible(lambda: 42)).encode())
        finally:
            os._exit(0)
    os.close(write)
    ready, _, _ = select.select([read], [], [], 30)
    answer = os.read(read, 16) if ready else b""
    if not answer:  # no answer in time: the child waits for a helper it does not have
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    assert answer == b"42"
