"""Training commands: ``maskflow train-tokenizer`` and ``maskflow train`` parse their options, call the
recipes (recipes.py) and report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from . import options as opt
from .groups import ReportGroup, TrainingGroup, TransformerShape, command
from .report import Reporter

if TYPE_CHECKING:
    from ..training import TrainConfig


def _describe(record: dict) -> str:
    extra = "".join(f"  {k} {record[k]:.4g}" for k in ("psnr", "accuracy") if k in record)
    return f"loss {record['loss']:.4f}{extra}  {record['steps_per_second']:.2f} steps/s"


def _progress(reporter: Reporter, cfg: TrainConfig, name: str, recipe):
    """Run ``recipe(on_log)`` with a progress bar on a terminal (in steps, or in percent of a time
    limit), plain log lines on stderr otherwise (not --quiet)."""
    timed = cfg.time_limit is not None
    with reporter.progress(100 if timed else cfg.steps, f"training {name}") as bar:
        done = 0

        def on_log(record: dict) -> None:
            nonlocal done
            if bar is not None:
                position = round(record["progress"] * 100) if timed else record["step"]
                bar.advance(position - done)
                bar.note(_describe(record))
                done = position
            elif not (reporter.quiet or reporter.json_output):
                reporter.console.print(f"step {record['step']}  {_describe(record)}", highlight=False)

        return recipe(on_log)


@command
def train_tokenizer(
    data: opt.Data, output: opt.OutDir, preset: opt.TokenizerPreset = "base", size: opt.FrameSize = 64, channels: opt.Channels = 1,
    decoder_only: opt.DecoderOnly = None, loss: opt.ReconstructionLoss = "l1+mse",
    training: TrainingGroup = TrainingGroup(steps=5000, batch_size=64, lr=1e-3, warmup=200), report: ReportGroup = ReportGroup(),
) -> None:
    """Train the frame tokenizer (conv autoencoder + FSQ) on DATA; writes DIR/tokenizer.safetensors.

    With --decoder-only T, start from the tokenizer in T and train its decoder alone: the encoder,
    and so every token, stays as it is, and transformers trained on T's tokens keep working with it.

    Examples:

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok --steps 5000

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok2 --decoder-only runs/tok --steps 2000

      maskflow train-tokenizer mnist_train.safetensors -o runs/tok3 --decoder-only runs/tok --loss mse --lr 2e-4
    """
    from ..recipes import TOKENIZER_FILE
    from ..recipes import train_tokenizer as tokenizer_recipe

    reporter, cfg = report.reporter(), training.config()
    result = _progress(reporter, cfg, TOKENIZER_FILE, lambda on_log: tokenizer_recipe(
        data, output, cfg, preset=preset, size=size, channels=channels, decoder_only=decoder_only, loss=loss, device=training.device,
        resume=training.resume, overwrite=training.overwrite, on_log=on_log, started=reporter.started, init_from=training.init_from))
    out = Path(output)
    reporter.result({"command": "train-tokenizer", "output": str(out / TOKENIZER_FILE), "steps": result.steps,
                     "final_loss": result.final_loss, "psnr": result.metrics.get("psnr"), "seconds": round(result.wall_seconds, 1)},
                    f"wrote {out / TOKENIZER_FILE}: {result.steps} steps, PSNR {result.metrics.get('psnr', float('nan')):.2f} dB, "
                    f"{result.wall_seconds:.1f} s")


@command
def train(
    data: opt.Data, output: opt.OutDir, tokenizer: opt.TokenizerSource = None, model: TransformerShape = TransformerShape(),
    snr_weighting: opt.SnrWeighting = False, constant_time_prob: opt.ConstantTimeProb = 0.0, context_prob: opt.ContextProb = 0.0,
    export_dtype: opt.ExportDtype = "fp32", workers: opt.LoaderWorkers = 2, training: TrainingGroup = TrainingGroup(),
    report: ReportGroup = ReportGroup(),
) -> None:
    """Train the MaskFlow transformer with frame-level masking on DATA, with the tokenizer of --tokenizer.

    Writes DIR/transformer.safetensors and copies the tokenizer beside it, so DIR is a complete
    weights folder for --weights.

    DATA may be a folder of token shards from 'maskflow tokenize' (by the same tokenizer): training
    then streams them with --workers processes, one shard in memory a reader, so memory stays flat
    in the data's size.

    Examples:

      maskflow train mnist_train.safetensors --tokenizer runs/tok -o runs/mf --window 16 --steps 20000

      maskflow train mnist_tokens/ --tokenizer runs/tok -o runs/mf --window 16 --workers 4
    """
    from ..recipes import TRANSFORMER_FILE
    from ..recipes import train_transformer as transformer_recipe

    reporter, cfg = report.reporter(), training.config()
    result = _progress(reporter, cfg, TRANSFORMER_FILE, lambda on_log: transformer_recipe(
        data, output, cfg, tokenizer=tokenizer, **model.recipe_arguments(), snr_weighting=snr_weighting,
        constant_time_prob=constant_time_prob, context_prob=context_prob, device=training.device, resume=training.resume,
        overwrite=training.overwrite, on_log=on_log, started=reporter.started, init_from=training.init_from, export_dtype=export_dtype,
        workers=workers))
    out = Path(output)
    reporter.result({"command": "train", "output": str(out), "steps": result.steps, "final_loss": result.final_loss,
                     "accuracy": result.metrics.get("accuracy"), "seconds": round(result.wall_seconds, 1)},
                    f"wrote {out / TRANSFORMER_FILE}: {result.steps} steps, loss {result.final_loss:.4f}, {result.wall_seconds:.1f} s")
