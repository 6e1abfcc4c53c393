"""Training for a wall-clock budget: --time-limit, its schedule, and ranks that agree on when to stop."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch._dynamo  # noqa: F401  the first AdamW imports it (seconds on a busy machine): not inside a 2 s budget

from maskflow_cli.budget import learning_rate, parse_duration, schedule_position
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.training import TrainConfig, fit
from maskflow_cli.weight_headers import inspect_weights

from test_training import quick, read_metrics, transformer_task


def test_durations_are_read_in_seconds_minutes_and_hours():
    assert [parse_duration(t) for t in ("90s", "8m", "2h", "1h30m", "0.5m")] == [90, 480, 7200, 5400, 30]
    for bad in ("", "90", "5 parsecs", "m", "0s", "-3s", "1h-2m"):
        with pytest.raises(InvalidArgumentError, match="time_limit"):
            parse_duration(bad)
    with pytest.raises(InvalidArgumentError, match="for time_limit"):
        TrainConfig(time_limit=0.0)


def test_the_schedule_follows_the_share_of_time_spent():
    cfg = TrainConfig(steps=1000, lr=1.0, warmup=100, min_lr_ratio=0.1, time_limit=10.0)
    # time runs ahead of the steps: the position is the time's share; the warm-up is 10 % of the budget
    assert schedule_position(5, cfg, elapsed=2.5) == pytest.approx(0.25)
    assert learning_rate(0, cfg, elapsed=0.0) == pytest.approx(0.01)  # one step of 1000, a tenth of the warm-up share
    assert learning_rate(5, cfg, elapsed=0.5) == pytest.approx(0.5)
    assert learning_rate(7, cfg, elapsed=1.0) == pytest.approx(1.0)
    assert learning_rate(50, cfg, elapsed=5.5) == pytest.approx(0.55)  # half way through the decay
    assert learning_rate(90, cfg, elapsed=9.999) == pytest.approx(0.1, abs=1e-6)
    # the steps run ahead of the time: they lead, as without a limit
    assert schedule_position(500, cfg, elapsed=1.0) == 0.5
    lrs = [learning_rate(s, cfg, elapsed=s / 100) for s in range(1000)]
    assert lrs[:101] == sorted(lrs[:101]) and lrs[100:] == sorted(lrs[100:], reverse=True)
    # without a time limit, the classic step schedule, unchanged
    plain = TrainConfig(steps=1000, lr=1.0, warmup=100, min_lr_ratio=0.1)
    assert learning_rate(99, plain, elapsed=1e9) == 1.0 and learning_rate(999, plain) == pytest.approx(0.1, abs=1e-5)


def test_a_time_limited_run_anneals_checkpoints_and_exports_on_time(tmp_path):
    result = fit(transformer_task(), quick(steps=10**6, time_limit=2.0, log_every=5, warmup=10**4), tmp_path, "transformer.safetensors", {})
    metrics = read_metrics(tmp_path)
    last = metrics[-1]
    assert last["progress"] == 1.0 and last["step"] == result.steps and last["wall_seconds"] < 2.5  # stopped by the clock (setup before the loop is charged too)
    assert last["lr"] == pytest.approx(3e-4, rel=0.02)  # lr * min_lr_ratio: the schedule's end
    assert max(m["lr"] for m in metrics) == pytest.approx(3e-3, rel=0.1)  # the warm-up (1 % of the budget) was passed
    assert [m["progress"] for m in metrics] == sorted(m["progress"] for m in metrics)
    info = inspect_weights(tmp_path / "transformer.safetensors")["transformer"].info
    assert info["steps"] == result.steps and info["time_limit"] == 2.0
    assert torch.load(tmp_path / "checkpoint.pt", weights_only=True)["step"] == result.steps


def test_steps_end_a_time_limited_run_when_they_come_first(tmp_path):
    result = fit(transformer_task(), quick(steps=6, time_limit=3600.0), tmp_path, "transformer.safetensors", {})
    metrics = read_metrics(tmp_path)
    assert result.steps == 6 and metrics[-1]["progress"] == 1.0
    # the steps lead the schedule, so it is the step schedule's (up to the warm-up's share of 2 in 6, not 2 steps)
    assert [m["lr"] for m in metrics][2:] == pytest.approx([learning_rate(s, quick(steps=6)) for s in range(2, 6)])


def test_train_with_a_time_limit_from_the_command_line(cli, tmp_path):
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 4, "--frames", 6, "--seed", 0, "--size", 32).code == 0
    common = ["--batch-size", 2, "--log-every", 5, "--device", "cpu", "--precision", "fp32", "--json"]
    tok = cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, "--time-limit", "2s", *common)
    assert tok.code == 0, tok.err
    started = time.perf_counter()
    run = cli("train", data, "--tokenizer", tmp_path / "tok", "-o", tmp_path / "mf", "--preset", "tiny", "--window", 6,
              "--time-limit", "5s", "--steps", 10**6, *common)
    assert run.code == 0, run.err
    assert time.perf_counter() - started < 15  # 5 s, and the first AdamW's import of torch._dynamo on a busy machine
    assert (tmp_path / "mf" / "transformer.safetensors").exists()
    last = read_metrics(tmp_path / "mf")[-1]
    assert json.loads(run.out)["steps"] == last["step"] and last["progress"] == 1.0
    assert last["lr"] == pytest.approx(5e-5, rel=0.02) and last["wall_seconds"] < 5.0  # --lr 5e-4 times 0.1; setup counts too
    bad = cli("train", data, "-o", tmp_path / "x", "--time-limit", "soon")
    assert bad.code == 2 and "--time-limit" in bad.err and "90s" in bad.err


@pytest.mark.slow
def test_ranks_agree_on_when_the_time_is_up(tmp_path):
    worker = Path(__file__).parent / "ddp_worker.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29534", str(worker), str(tmp_path), "8"]
    done = subprocess.run(command, capture_output=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1 and r0["steps"] > 0
    assert read_metrics(tmp_path)[-1]["progress"] == 1.0
