"""Training commands: ``maskflow train-tokenizer`` and ``maskflow train`` parse their options, call the
recipes (recipes.py) and report."""

from __future__ import annotations

from pathlib import Path

from ..recipes import TOKENIZER_FILE, TRANSFORMER_FILE
from ..recipes import train_tokenizer as tokenizer_recipe
from ..recipes import train_transformer as transformer_recipe
from ..training import TrainConfig
from . import options as opt
from .report import Reporter


def _describe(record: dict) -> str:
    extra = "".join(f"  {k} {record[k]:.4g}" for k in ("psnr", "accuracy") if k in record)
    return f"loss {record['loss']:.4f}{extra}  {record['steps_per_second']:.2f} steps/s"


def _progress(reporter: Reporter, steps: int, name: str, recipe):
    """Run ``recipe(on_log)`` with a progress bar on a terminal, plain log lines on stderr otherwise
    (not --quiet)."""
    with reporter.progress(steps, f"training {name}") as bar:
        done = 0

        def on_log(record: dict) -> None:
            nonlocal done
            if bar is not None:
                bar.advance(record["step"] - done)
                bar.note(_describe(record))
                done = record["step"]
            elif not (reporter.quiet or reporter.json_output):
                reporter.console.print(f"step {record['step']}  {_describe(record)}", highlight=False)

        return recipe(on_log)


def train_tokenizer(
    data: opt.Data, output: opt.OutDir, preset: opt.TokenizerPreset = "base", steps: opt.TrainSteps = 5000, batch_size: opt.BatchSize = 64,
    lr: opt.Lr = 1e-3, warmup: opt.Warmup = 200, ema: opt.Ema = 0.999, grad_clip: opt.GradClip = 1.0, seed: opt.TrainSeed = 0,
    checkpoint_every: opt.CheckpointEvery = 500, log_every: opt.LogEvery = 50, resume: opt.Resume = False,
    device: opt.Device = "auto", precision: opt.Precision = "auto", compile: opt.Compile = False,
    size: opt.FrameSize = 64, channels: opt.Channels = 1, decoder_only: opt.DecoderOnly = None,
    loss: opt.ReconstructionLoss = "l1+mse", json_: opt.Json = False, quiet: opt.Quiet = False,
) -> None:
    """Train the frame tokenizer (conv autoencoder + FSQ) on DATA; writes DIR/tokenizer.safetensors.

    With --decoder-only T, start from the tokenizer in T and train its decoder alone: the encoder,
    and so every token, stays as it is, and transformers trained on T's tokens keep working with it.

    Examples:

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok --steps 5000

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok2 --decoder-only runs/tok --steps 2000

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok3 --decoder-only runs/tok --loss mse --lr 2e-4
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, ema=ema, grad_clip=grad_clip, precision=precision,
                      seed=seed, checkpoint_every=checkpoint_every, log_every=log_every, compile=compile)
    result = _progress(reporter, cfg.steps, TOKENIZER_FILE, lambda on_log: tokenizer_recipe(
        data, output, cfg, preset=preset, size=size, channels=channels, decoder_only=decoder_only, loss=loss, device=device,
        resume=resume, on_log=on_log))
    out = Path(output)
    reporter.result({"command": "train-tokenizer", "output": str(out / TOKENIZER_FILE), "steps": result.steps,
                     "final_loss": result.final_loss, "psnr": result.metrics.get("psnr"), "seconds": round(result.wall_seconds, 1)},
                    f"wrote {out / TOKENIZER_FILE}: {result.steps} steps, PSNR {result.metrics.get('psnr', float('nan')):.2f} dB, "
                    f"{result.wall_seconds:.1f} s")


def train(
    data: opt.Data, output: opt.OutDir, tokenizer: opt.TokenizerSource = None, preset: opt.TransformerPreset = "base",
    window: opt.Window = 16, timestep_independent: opt.TimestepIndependent = False, attention: opt.Attention = "full",
    scheduler: opt.Scheduler = "sigmoid", code_features: opt.CodeFeatures = False, code_digits: opt.CodeDigits = False,
    block_causal: opt.BlockCausal = False,
    snr_weighting: opt.SnrWeighting = False,
    constant_time_prob: opt.ConstantTimeProb = 0.0, context_prob: opt.ContextProb = 0.0, fps: opt.ModelFps = 10.0,
    steps: opt.TrainSteps = 20000, batch_size: opt.BatchSize = 32, lr: opt.Lr = 5e-4, warmup: opt.Warmup = 500,
    ema: opt.Ema = 0.999, grad_clip: opt.GradClip = 1.0, seed: opt.TrainSeed = 0, checkpoint_every: opt.CheckpointEvery = 500,
    log_every: opt.LogEvery = 50, resume: opt.Resume = False, device: opt.Device = "auto", precision: opt.Precision = "auto",
    compile: opt.Compile = False, json_: opt.Json = False, quiet: opt.Quiet = False,
) -> None:
    """Train the MaskFlow transformer with frame-level masking on DATA, with the tokenizer of --tokenizer.

    Writes DIR/transformer.safetensors and copies the tokenizer beside it, so DIR is a complete
    weights folder for --weights.

    Example:

      maskflow train mnist_train.safetensors --tokenizer runs/tok -o runs/mf --window 16 --steps 20000
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, ema=ema, grad_clip=grad_clip, precision=precision,
                      seed=seed, checkpoint_every=checkpoint_every, log_every=log_every, compile=compile)
    result = _progress(reporter, cfg.steps, TRANSFORMER_FILE, lambda on_log: transformer_recipe(
        data, output, cfg, tokenizer=tokenizer, preset=preset, window=window, timestep_independent=timestep_independent,
        attention=attention, scheduler=scheduler, code_features=code_features, code_digits=code_digits, block_causal=block_causal,
        snr_weighting=snr_weighting, constant_time_prob=constant_time_prob, context_prob=context_prob, fps=fps,
        device=device, resume=resume, on_log=on_log))
    out = Path(output)
    reporter.result({"command": "train", "output": str(out), "steps": result.steps, "final_loss": result.final_loss,
                     "accuracy": result.metrics.get("accuracy"), "seconds": round(result.wall_seconds, 1)},
                    f"wrote {out / TRANSFORMER_FILE}: {result.steps} steps, loss {result.final_loss:.4f}, {result.wall_seconds:.1f} s")
