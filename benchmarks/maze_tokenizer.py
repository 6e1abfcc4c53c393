"""Choose the RGB tokenizer for maze frames: train each candidate preset alike, then measure each.

Each candidate is measured on held-out reconstruction (PSNR and SSIM on frames of test mazes, which
training never saw), tokens per frame, vocabulary and decode time per frame (every token multiplies
sampling time; decoding runs once per output frame).

    OMP_NUM_THREADS=1 python -m benchmarks maze_tokenizer --train maze_train/ --test maze_test.safetensors \\
        --steps 1500 --runs runs/maze_tok

Each candidate is trained with the library's training recipe (``maskflow train-tokenizer``'s) into
``--runs/PRESET``; its ``tokenizer.safetensors`` can be trained further there with
``maskflow train-tokenizer ... --preset PRESET -o RUNS/PRESET --resume --steps N``. Decode times are
taken in interleaved rounds, so load from other work on the machine hits every candidate alike.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from maskflow_cli.clips import load_training_clips
from maskflow_cli.evaluation import tokenizer_suite
from maskflow_cli.model_configs import TokenizerConfig
from maskflow_cli.tokenizer import PRESETS, FrameTokenizer
from maskflow_cli.training import TokenizerTask, TrainConfig, fit
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_tokenizer

from .markdown import heading, machine, table

NAME = "maze_tokenizer"
SHARED = {"seed": 0}
FORMAT = FrameFormat(64, 64, 3)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train", required=True, help="maze training clips (folder of shards or clips file)")
    parser.add_argument("--test", required=True, help="maze test clips (the test split: other mazes)")
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=["maze16", "maze8"])
    parser.add_argument("--steps", type=int, default=1500, help="training steps per candidate")
    parser.add_argument("--batch-size", type=int, default=16, help="training batch (frames)")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--test-frames", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved decode-timing rounds")
    parser.add_argument("--runs", default="runs/maze_tok", help="where the candidates are trained, one folder each")
    parser.add_argument("--measure-only", action="store_true", help="measure the tokenizers already in --runs")


def train(preset: str, frames: torch.Tensor, args: argparse.Namespace) -> dict:
    """Train one candidate (or only load it with --measure-only); its training facts."""
    out = Path(args.runs) / preset
    if not args.measure_only:
        torch.manual_seed(args.seed)
        model = FrameTokenizer(TokenizerConfig(height=64, width=64, channels=3, **PRESETS[preset]))
        cfg = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, warmup=min(200, args.steps // 10),
                          seed=args.seed, checkpoint_every=max(1, args.steps // 4), log_every=50)
        log = (lambda r: print(f"{preset} step {r['step']} loss {r['loss']:.4f} psnr {r['psnr']:.2f}", file=sys.stderr, flush=True))
        fit(TokenizerTask(model, frames, args.batch_size, torch.device("cpu")), cfg, out, "tokenizer.safetensors",
            {"dataset": args.train, "frames": len(frames)}, resume=True, on_log=log)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    info = inspect_weights(str(out / "tokenizer.safetensors"))["tokenizer"].info
    return {"steps": info["steps"], "wall_seconds": info["wall_seconds"],
            "train_psnr": {str(r["step"]): round(r["psnr"], 2) for r in records}}  # per logged step (batch PSNR)


def decode_ms(tokenizer: FrameTokenizer, tokens: torch.Tensor) -> float:
    started = time.perf_counter()
    tokenizer.decode(tokens)
    return 1000 * (time.perf_counter() - started) / len(tokens)


def run(args: argparse.Namespace) -> dict:
    frames = load_training_clips(args.train, 1, FORMAT)  # [N,1,64,64,3]
    test = load_training_clips(args.test, 1, FORMAT)[: args.test_frames, 0]  # [F,64,64,3]
    rows = {p: {"preset": p, **train(p, frames, args)} for p in args.presets}
    tokenizers = {p: load_tokenizer(str(Path(args.runs) / p)) for p in args.presets}
    tokens = {}
    for p, tok in tokenizers.items():
        quality = tokenizer_suite(tok, test, torch.device("cpu"))
        c = tok.config
        tokens[p] = tok.encode(test[:128])
        rows[p].update(tokens_per_frame=c.token_height * c.token_width, vocabulary=c.vocab_size,
                       parameters=sum(t.numel() for t in tok.parameters()), test_frames=quality["frames"],
                       psnr=quality["psnr"], ssim=quality["ssim"], decode_ms_per_frame=[])
    for _ in range(args.rounds):
        for p, tok in tokenizers.items():
            rows[p]["decode_ms_per_frame"].append(round(decode_ms(tok, tokens[p]), 2))
    for row in rows.values():
        row["decode_ms_per_frame"] = min(row["decode_ms_per_frame"])
    for row in rows.values():
        print(f"{row['preset']}: {row['tokens_per_frame']} tokens of {row['vocabulary']:,}, PSNR {row['psnr']['mean']:.2f} dB, "
              f"SSIM {row['ssim']['mean']:.3f}, decode {row['decode_ms_per_frame']:.2f} ms/frame, {row['steps']} steps")
    return {"train": args.train, "test": args.test, "train_frames": len(frames), "batch_size": args.batch_size, "lr": args.lr,
            "rows": list(rows.values())}


def render(r: dict) -> str:
    out = heading("Maze tokenizer candidates", r) + [
        f"Machine: {machine(r['machine'])}; each trained on {r['train_frames']:,} frames of train mazes (batch {r['batch_size']}, "
        f"lr {r['lr']}), measured on frames of test mazes.", ""]
    rows = [[x["preset"], x["tokens_per_frame"], f"{x['vocabulary']:,}", f"{x['parameters'] / 1e6:.2f}M", x["steps"],
             f"{x['psnr']['mean']:.2f}", f"{x['ssim']['mean']:.3f}", f"{x['decode_ms_per_frame']:.1f}"] for x in r["rows"]]
    return "\n".join(out + table(["preset", "tokens / frame", "vocabulary", "parameters", "steps", "test PSNR (dB)", "test SSIM",
                                  "decode ms / frame"], rows))
