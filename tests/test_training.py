import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings
from maskflow_cli.tokenizer import FrameTokenizer
from maskflow_cli.budget import learning_rate, parse_duration
from maskflow_cli.training import TrainConfig, TransformerTask, TokenizerTask, code_centroids, fit
from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_models, load_tokenizer, save_weights

from conftest import moving_square_frames, tiny_models


def predictable_tokens(clips: int = 4, frames: int = 6) -> torch.Tensor:
    """Copies of one token clip [N,T,8,8] (each frame the previous one plus 1): learnable in a few steps."""
    base = torch.arange(64).reshape(8, 8) % 16
    return torch.stack([(base + t) % 16 for t in range(frames)])[None].repeat(clips, 1, 1, 1).to(torch.int16)


def transformer_task(seed: int = 0) -> TransformerTask:
    _, model = tiny_models(seed=seed)
    return TransformerTask(model, predictable_tokens(), batch_size=4, device=torch.device("cpu"))


def quick(**overrides) -> TrainConfig:
    return TrainConfig(**{"steps": 12, "batch_size": 4, "lr": 3e-3, "warmup": 2, "log_every": 1, "checkpoint_every": 5,
                          "ema": 0.9, "precision": "fp32", **overrides})


def read_metrics(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_learning_rate_warms_up_then_decays():
    cfg = TrainConfig(steps=100, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert learning_rate(0, cfg) == pytest.approx(0.1) and learning_rate(9, cfg) == pytest.approx(1.0)
    assert learning_rate(99, cfg) == pytest.approx(0.1, abs=1e-3)
    assert all(learning_rate(s, cfg) >= learning_rate(s + 1, cfg) for s in range(10, 99))


@pytest.mark.slow
def test_transformer_loss_goes_down(tmp_path):
    fit(transformer_task(), quick(steps=60, log_every=10), tmp_path, "transformer.safetensors", {"fps": 5})
    metrics = read_metrics(tmp_path)
    assert metrics[-1]["loss"] < 0.6 * metrics[0]["loss"]
    assert {"step", "loss", "lr", "accuracy", "steps_per_second", "wall_seconds"} <= set(metrics[-1])


def test_tokenizer_training_improves_reconstruction(tmp_path):
    tokenizer, _ = tiny_models()
    clips = torch.from_numpy(moving_square_frames(16))[None]  # [1,16,32,32,1]
    fit(TokenizerTask(tokenizer, clips, 8, torch.device("cpu")), quick(steps=40, log_every=10, lr=5e-3), tmp_path, "tokenizer.safetensors", {})
    metrics = read_metrics(tmp_path)
    assert metrics[-1]["psnr"] > metrics[0]["psnr"] + 1.0


def test_reconstruction_loss_mse_is_the_mse_alone():
    tokenizer, _ = tiny_models()
    clips = torch.from_numpy(moving_square_frames(16))[None]  # [1,16,32,32,1]
    losses = {}
    for name in ("l1+mse", "mse"):
        task = TokenizerTask(tokenizer, clips, 8, torch.device("cpu"), reconstruction_loss=name)
        loss, metrics = task.loss(lambda x: tokenizer.reconstruct(x), torch.Generator().manual_seed(3))
        losses[name] = (loss.item(), metrics["mse"])
    assert losses["mse"][0] == pytest.approx(losses["mse"][1], rel=1e-6)
    assert losses["l1+mse"][1] == pytest.approx(losses["mse"][1], rel=1e-6)  # the same batch
    assert losses["l1+mse"][0] > losses["mse"][0] + 0.05  # the L1 term on top
    with pytest.raises(InvalidArgumentError, match="reconstruction_loss"):
        TokenizerTask(tokenizer, clips, 8, torch.device("cpu"), reconstruction_loss="l2")


def test_resume_after_an_interrupt_gives_the_same_weights(tmp_path):
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    fit(transformer_task(), quick(), straight, "transformer.safetensors", {})

    def crash(record: dict) -> None:
        if record["step"] == 8:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(transformer_task(), quick(), broken, "transformer.safetensors", {}, on_log=crash)
    assert (broken / "checkpoint.pt").exists() and not (broken / "transformer.safetensors").exists()
    fit(transformer_task(seed=99), quick(), broken, "transformer.safetensors", {}, resume=True)  # init is overwritten
    a, b = load_file(straight / "transformer.safetensors"), load_file(broken / "transformer.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_at_the_checkpoint_step_exports_it_without_training(tmp_path):
    """A run stopped for good (killed, out of time) is exported as it is by --resume with --steps at its step."""

    def stop(record: dict) -> None:
        if record["step"] == 11:  # logged before step 11's (absent) checkpoint: the last one is step 10's
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(transformer_task(), quick(), tmp_path, "transformer.safetensors", {}, on_log=stop)
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    assert state["step"] == 10
    with pytest.raises(InvalidArgumentError, match="steps.*at step 10"):
        fit(transformer_task(), quick(steps=8), tmp_path, "transformer.safetensors", {}, resume=True)
    logged = len(read_metrics(tmp_path))
    fit(transformer_task(seed=99), quick(steps=10), tmp_path, "transformer.safetensors", {}, resume=True)
    exported = load_file(tmp_path / "transformer.safetensors")
    assert exported.keys() == {f"transformer.{k}" for k in state["ema"]}
    assert all(torch.equal(exported[f"transformer.{k}"], v) for k, v in state["ema"].items())
    assert len(read_metrics(tmp_path)) == logged  # no step ran
    info = inspect_weights(tmp_path / "transformer.safetensors")["transformer"].info
    assert info["steps"] == 10 and info["final_loss"] == pytest.approx(state["loss"], abs=1e-5)


def test_export_loads_and_samples(tmp_path):
    tokenizer, _ = tiny_models()
    fit(transformer_task(), quick(steps=3), tmp_path, "transformer.safetensors", {"fps": 6, "dataset": "toy"})
    save_weights(tmp_path / "tokenizer.safetensors", {"tokenizer": tokenizer})
    _, _, components = load_models(tmp_path)
    info = components["transformer"].info
    assert info["steps"] == 3 and info["fps"] == 6 and info["dataset"] == "toy" and "hardware" in info and "final_loss" in info
    pipe = MaskFlowPipeline.from_weights(str(tmp_path), device="cpu")
    video = torch.cat([c.frames for c in pipe.generate(9, window_settings(pipe.window), SamplingOptions(steps=2, seed=0))])
    assert video.shape == (9, 32, 32, 1)


def test_bad_training_options():
    with pytest.raises(InvalidArgumentError, match="for steps:"):
        TrainConfig(steps=0)
    with pytest.raises(InvalidArgumentError, match="for ema:"):
        TrainConfig(ema=1.0)


@pytest.mark.slow
def test_two_processes_keep_identical_weights_and_learn(tmp_path):
    worker = Path(__file__).parent / "ddp_worker.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533", str(worker), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0 == r1
    metrics = read_metrics(tmp_path)
    assert metrics[-1]["loss"] < metrics[0]["loss"]


def test_train_commands_end_to_end(cli, tmp_path):
    """data -> train-tokenizer -> train -> generate, all through the real entry point."""
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 6, "--frames", 8, "--seed", 0, "--size", 32).code == 0
    common = ["--steps", 4, "--batch-size", 2, "--warmup", 1, "--log-every", 2, "--checkpoint-every", 2, "--device", "cpu", "--precision", "fp32"]
    tok = cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, *common, "--json")
    assert tok.code == 0, tok.err
    assert json.loads(tok.out)["steps"] == 4
    model = cli("train", data, "--tokenizer", tmp_path / "tok", "-o", tmp_path / "mf", "--preset", "tiny", "--window", 6, *common, "--json")
    assert model.code == 0, model.err
    assert sorted(p.name for p in (tmp_path / "mf").glob("*.safetensors")) == ["tokenizer.safetensors", "transformer.safetensors"]
    assert (tmp_path / "mf" / "metrics.jsonl").exists() and (tmp_path / "mf" / "checkpoint.pt").exists()
    out = tmp_path / "sample.mkv"
    assert cli("generate", "-w", tmp_path / "mf", "-o", out, "--frames", 8, "--steps", 2).code == 0
    resumed = cli("train", data, "--tokenizer", tmp_path / "tok", "-o", tmp_path / "mf", "--preset", "tiny", "--window", 6, *common, "--resume", "--json")
    assert resumed.code == 0, resumed.err


def test_train_rejects_bad_options(cli, tmp_path):
    result = cli("train-tokenizer", tmp_path / "none.safetensors", "-o", tmp_path / "tok", "--steps", 0)
    assert result.code == 2 and "--steps" in result.err and len(result.err.strip().splitlines()) == 1
    result = cli("train", tmp_path / "none.safetensors", "-o", tmp_path / "mf", "--context-prob", 1.5)
    assert result.code == 2 and "--context-prob" in result.err and len(result.err.strip().splitlines()) == 1
    result = cli("train-tokenizer", tmp_path / "none.safetensors", "-o", tmp_path / "tok", "--loss", "l2")
    assert result.code == 2 and "--loss" in result.err and "mse" in result.err and len(result.err.strip().splitlines()) == 1


def test_decoder_only_fine_tuning_keeps_every_token(cli, tmp_path):
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 4, "--frames", 4, "--seed", 0, "--size", 32).code == 0
    common = ["--batch-size", 4, "--warmup", 1, "--log-every", 1, "--device", "cpu", "--precision", "fp32", "--ema", 0, "--json"]
    assert cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, "--steps", 3, *common).code == 0
    r = cli("train-tokenizer", data, "-o", tmp_path / "dec", "--decoder-only", tmp_path / "tok", "--steps", 8, "--lr", 3e-3,
            "--loss", "mse", *common)
    assert r.code == 0, r.err
    before, after = (load_file(tmp_path / name / "tokenizer.safetensors") for name in ("tok", "dec"))
    encoder = [k for k in before if ".encoder." in f".{k}"]
    decoder = [k for k in before if ".decoder." in f".{k}"]
    assert encoder and decoder
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    assert any(not torch.equal(before[k], after[k]) for k in decoder)
    frames = torch.from_numpy(moving_square_frames(4))
    old, new = (load_tokenizer(str(tmp_path / name)) for name in ("tok", "dec"))
    assert torch.equal(old.encode(frames), new.encode(frames))
    info = inspect_weights(tmp_path / "dec")["tokenizer"].info  # names only: no path of the training machine
    assert info["dataset"] == "mm.safetensors" and info["decoder_only_from"] == "tok" and info["loss"] == "mse"
    assert inspect_weights(tmp_path / "tok")["tokenizer"].info["loss"] == "l1+mse"


def test_ema_warms_up_so_the_initial_weights_fade():
    from maskflow_cli.training import EMA

    live = torch.nn.Linear(2, 2, bias=False)
    torch.nn.init.zeros_(live.weight)
    ema = EMA(live, 0.999)
    assert ema.decay_at(0) == pytest.approx(0.1) and ema.decay_at(100_000) == 0.999
    torch.nn.init.ones_(live.weight)
    for step in range(200):
        ema.update(live, step)
    assert float(ema.shadow.weight.min()) > 0.99  # a fixed 0.999 would still be at 1 - 0.999**200 = 0.18


@pytest.mark.slow
@pytest.mark.parametrize("signal_name, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_signal_during_training_keeps_the_last_checkpoint_and_resume_finishes(cli, tmp_path, signal_name, code):
    import os
    import signal
    import time

    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 4, "--frames", 2, "--seed", 0, "--size", 32).code == 0
    out = tmp_path / "tok"
    common = [sys.executable, "-m", "maskflow_cli", "train-tokenizer", str(data), "-o", str(out), "--preset", "tiny", "--size", "32",
              "--batch-size", "2", "--checkpoint-every", "2", "--device", "cpu", "--precision", "fp32"]
    process = subprocess.Popen([*common, "--steps", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not (out / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (out / "checkpoint.pt").exists(), "no checkpoint was written"
    os.kill(process.pid, getattr(signal, signal_name))
    _, err = process.communicate(timeout=60)
    assert process.returncode == code and len(err.decode().strip().splitlines()) == 1
    state = torch.load(out / "checkpoint.pt", weights_only=True)  # complete: it loads
    assert state["step"] >= 2 and state["step"] % 2 == 0
    assert {p.name for p in out.iterdir()} <= {"checkpoint.pt", "metrics.jsonl"}  # no temporary files, no export
    resumed = subprocess.run([*common, "--steps", str(state["step"] + 2), "--resume", "--json"], capture_output=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert json.loads(resumed.stdout)["steps"] == state["step"] + 2 and (out / "tokenizer.safetensors").exists()


def test_code_centroids_average_the_pixels_of_each_code():
    clips = torch.zeros(1, 2, 4, 4, 1, dtype=torch.uint8)  # 2 frames of 2x2 patches of 2x2 pixels
    clips[0, 0, :2, :2] = 255  # top-left patch of frame 0 is white
    clips[0, 1, :2, :2] = 51  # and of frame 1 a dark gray
    tokens = torch.tensor([[[[3, 0], [0, 0]], [[3, 0], [0, 1]]]])  # [1,2,2,2]: code 3 both times, code 2 never
    features = code_centroids(clips, tokens, vocab_size=4, chunk=1)
    assert features.shape == (4, 4)
    assert torch.allclose(features[3], torch.full((4,), (1.0 + 0.2) / 2))
    assert torch.equal(features[0], torch.zeros(4)) and torch.equal(features[2], torch.zeros(4))


def train_tiny_with(cli, tmp_path: Path, *options) -> None:
    """Moving MNIST at 32x32 -> a tiny tokenizer -> a tiny transformer trained with ``options``, in tmp_path/mf."""
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 4, "--frames", 8, "--seed", 0, "--size", 32).code == 0
    common = ["--steps", 3, "--batch-size", 2, "--warmup", 1, "--device", "cpu", "--precision", "fp32"]
    assert cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, *common).code == 0
    model = cli("train", data, "--tokenizer", tmp_path / "tok", "-o", tmp_path / "mf", "--preset", "tiny", "--window", 6,
                *options, *common)
    assert model.code == 0, model.err


def test_code_features_are_trained_saved_and_used(cli, tmp_path):
    train_tiny_with(cli, tmp_path, "--code-features", "--context-prob", 0.5)
    _, transformer, _ = load_models(tmp_path / "mf")
    assert transformer.config.code_features == 4 * 4  # one 4x4 gray patch per code at 32x32 with 8x8 tokens
    assert transformer.codes.max() > 0 and transformer.codes.max() <= 1
    tokens = torch.zeros(1, 6, 8, 8, dtype=torch.long)
    with torch.no_grad():
        before = transformer(tokens, torch.ones(1, 6))
        transformer.codes.zero_()  # the features reach the output
        assert not torch.allclose(before, transformer(tokens, torch.ones(1, 6)))
    assert cli("generate", "-w", tmp_path / "mf", "-o", tmp_path / "s.mkv", "--frames", 8, "--steps", 2).code == 0


def test_code_digits_are_trained_saved_and_checked_against_the_tokenizer(cli, tmp_path):
    train_tiny_with(cli, tmp_path, "--code-digits")
    tokenizer, transformer, _ = load_models(tmp_path / "mf")
    assert transformer.config.code_digits == tokenizer.config.levels == (4, 4)
    assert cli("generate", "-w", tmp_path / "mf", "-o", tmp_path / "s.mkv", "--frames", 8, "--steps", 2).code == 0
    other = FrameTokenizer(dataclasses.replace(tokenizer.config, levels=(2, 8)))  # the same 16 ids, other digits
    save_weights(tmp_path / "mf" / "tokenizer.safetensors", {"tokenizer": other})
    refused = cli("generate", "-w", tmp_path / "mf", "-o", tmp_path / "t.mkv", "--frames", 8, "--steps", 2)
    assert refused.code != 0 and "FSQ digits of levels [4, 4]" in refused.err and len(refused.err.strip().splitlines()) == 1
    assert not (tmp_path / "t.mkv").exists()


def test_block_causal_model_is_trained_recorded_and_sampled_with_its_cache(cli, tmp_path):
    train_tiny_with(cli, tmp_path, "--block-causal", "--context-prob", 0.5)
    _, transformer, components = load_models(tmp_path / "mf")
    assert transformer.config.context_attention == "block_causal"
    assert components["transformer"].config.block_causal
    out = cli("generate", "-w", tmp_path / "mf", "-o", tmp_path / "s.mkv", "--frames", 10, "--steps", 2, "--seed", 1, "--json")
    assert out.code == 0, out.err
