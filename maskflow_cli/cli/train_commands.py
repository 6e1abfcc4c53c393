"""Training commands: ``maskflow train-tokenizer`` and ``maskflow train``."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import load_training_clips
from ..errors import InvalidArgumentError
from ..pipeline import resolve_device
from ..schedules import SCHEDULERS
from ..tokenizer import PRESETS as TOKENIZER_PRESETS
from ..tokenizer import FrameTokenizer, TokenizerConfig
from ..training import TokenizerTask, TrainConfig, TransformerTask, code_centroids, fit, pretokenize
from ..transformer import PRESETS as TRANSFORMER_PRESETS
from ..transformer import MaskFlowTransformer, TransformerConfig
from ..video_io import FrameFormat
from ..weights import inspect_weights, load_tokenizer, save_weights
from . import options as opt
from .report import Reporter


def _preset(presets: dict, name: str) -> dict:
    if name not in presets:
        raise InvalidArgumentError("--preset", name, f"choose one of {', '.join(presets)}")
    return presets[name]


def _describe(record: dict) -> str:
    extra = "".join(f"  {k} {record[k]:.4g}" for k in ("psnr", "accuracy") if k in record)
    return f"loss {record['loss']:.4f}{extra}  {record['steps_per_second']:.2f} steps/s"


def _run_fit(reporter: Reporter, task, cfg: TrainConfig, out: Path, name: str, info: dict, resume: bool):
    """Train with a progress bar on a terminal, plain log lines on stderr otherwise (not --quiet)."""
    with reporter.progress(cfg.steps, f"training {name}") as bar:
        done = 0

        def on_log(record: dict) -> None:
            nonlocal done
            if bar is not None:
                bar.advance(record["step"] - done)
                bar.note(_describe(record))
                done = record["step"]
            elif not (reporter.quiet or reporter.json_output):
                reporter.console.print(f"step {record['step']}  {_describe(record)}", highlight=False)

        return fit(task, cfg, out, name, info, resume=resume, on_log=on_log)


def _public_name(source: str) -> str:
    """What weights' metadata records of a data or weights source: its file or folder name only, so
    published weights do not carry a path of the training machine (``hf://`` sources stay whole)."""
    return source if source.startswith("hf://") else Path(source).name


def train_tokenizer(
    data: opt.Data, output: opt.OutDir, preset: opt.TokenizerPreset = "base", steps: opt.TrainSteps = 5000, batch_size: opt.BatchSize = 64,
    lr: opt.Lr = 1e-3, warmup: opt.Warmup = 200, ema: opt.Ema = 0.999, grad_clip: opt.GradClip = 1.0, seed: opt.TrainSeed = 0,
    checkpoint_every: opt.CheckpointEvery = 500, log_every: opt.LogEvery = 50, resume: opt.Resume = False,
    device: opt.Device = "auto", precision: opt.Precision = "auto", compile: opt.Compile = False,
    size: opt.FrameSize = 64, channels: opt.Channels = 1, decoder_only: opt.DecoderOnly = None,
    json_: opt.Json = False, quiet: opt.Quiet = False,
) -> None:
    """Train the frame tokenizer (conv autoencoder + FSQ) on DATA; writes DIR/tokenizer.safetensors.

    With --decoder-only T, start from the tokenizer in T and train its decoder alone: the encoder,
    and so every token, stays as it is, and transformers trained on T's tokens keep working with it.

    Examples:

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok --steps 5000

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok2 --decoder-only runs/tok --steps 2000
    """
    reporter = Reporter(json_output=json_, quiet=quiet)
    cfg = TrainConfig(steps=steps, batch_size=batch_size, lr=lr, warmup=warmup, ema=ema, grad_clip=grad_clip, precision=precision,
                      seed=seed, checkpoint_every=checkpoint_every, log_every=log_every, compile=compile)
    dev = resolve_device(device)
    torch.manual_seed(seed)
    if decoder_only is None:
        try:
            config = TokenizerConfig(height=size, width=size, channels=channels, **_preset(TOKENIZER_PRESETS, preset))
        except ValueError as error:
            raise InvalidArgumentError("--size", size, str(error)) from None
        model = FrameTokenizer(config)
    else:
        model = load_tokenizer(decoder_only)
        model.encoder.requires_grad_(False)
        config = model.config
    clips = load_training_clips(data, 1, FrameFormat(config.height, config.width, config.channels))
    task = TokenizerTask(model.to(dev), clips, batch_size, dev)
    out = Path(output)
    info = {"dataset": _public_name(data), "frames": len(clips),
            **({"decoder_only_from": _public_name(decoder_only)} if decoder_only else {})}
    result = _run_fit(reporter, task, cfg, out, "tokenizer.safetensors", info, resume)
    reporter.result({"command": "train-tokenizer", "output": str(out / "tokenizer.safetensors"), "steps": result.steps,
                     "final_loss": result.final_loss, "psnr": result.metrics.get("psnr"), "seconds": round(result.wall_seconds, 1)},
                    f"wrote {out / 'tokenizer.safetensors'}: {result.steps} steps, PSNR {result.metrics.get('psnr', float('nan')):.2f} dB")


def train(
    data: opt.Data, output: opt.OutDir, tokenizer: opt.TokenizerSource = None, preset: opt.TransformerPreset = "base",
    window: opt.Window = 16, timestep_independent: opt.TimestepIndependent = False, attention: opt.Attention = "full",
    scheduler: opt.Scheduler = "sigmoid", code_features: opt.CodeFeatures = False, code_digits: opt.CodeDigits = False,
    snr_weighting: opt.SnrWeighting = False,
    constant_level_prob: opt.ConstantLevelProb = 0.0, context_prob: opt.ContextProb = 0.0, fps: opt.ModelFps = 10.0,
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
    if scheduler not in SCHEDULERS:
        raise InvalidArgumentError("--scheduler", scheduler, f"choose one of {', '.join(SCHEDULERS)}")
    if not 0 <= constant_level_prob <= 1:
        raise InvalidArgumentError("--constant-level-prob", constant_level_prob, "must be in [0, 1]")
    if not 0 <= context_prob <= 1:
        raise InvalidArgumentError("--context-prob", context_prob, "must be in [0, 1]")
    if window < 1:
        raise InvalidArgumentError("--window", window, "must be at least 1")
    dev = resolve_device(device)
    tok = load_tokenizer(tokenizer).to(dev)
    tok_info = inspect_weights(tokenizer)["tokenizer"].info
    tc = tok.config
    patch_size = (tc.height // tc.token_height) * (tc.width // tc.token_width) * tc.channels
    try:
        config = TransformerConfig(vocab_size=tc.vocab_size, frames=window, height=tc.token_height, width=tc.token_width,
                                   attention=attention, time_conditioning=not timestep_independent, scheduler=scheduler,
                                   code_features=patch_size if code_features else 0,
                                   code_digits=tuple(tc.levels) if code_digits else (), **_preset(TRANSFORMER_PRESETS, preset))
    except ValueError as error:
        raise InvalidArgumentError("--attention", attention, str(error)) from None
    clips = load_training_clips(data, window, FrameFormat(tc.height, tc.width, tc.channels))
    tokens = pretokenize(tok, clips, dev)  # [N,T,H,W], once
    torch.manual_seed(seed)
    model = MaskFlowTransformer(config)
    if code_features:
        model.set_code_features(code_centroids(clips, tokens, tc.vocab_size))
    task = TransformerTask(model.to(dev), tokens, batch_size, dev,
                           snr_weighting=snr_weighting, constant_level_prob=constant_level_prob, context_prob=context_prob)
    out = Path(output)
    info = {"fps": fps, "dataset": _public_name(data), "clips": len(clips), "window": window}
    result = _run_fit(reporter, task, cfg, out, "transformer.safetensors", info, resume)
    save_weights(out / "tokenizer.safetensors", {"tokenizer": tok.cpu()}, {"tokenizer": tok_info})  # DIR is complete
    reporter.result({"command": "train", "output": str(out), "steps": result.steps, "final_loss": result.final_loss,
                     "accuracy": result.metrics.get("accuracy"), "seconds": round(result.wall_seconds, 1)},
                    f"wrote {out / 'transformer.safetensors'}: {result.steps} steps, loss {result.final_loss:.4f}")
