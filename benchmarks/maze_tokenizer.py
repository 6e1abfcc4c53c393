"""Choose the RGB tokenizer for maze frames: train each candidate preset the same way, then measure
held-out reconstruction (PSNR and SSIM on frames of test mazes, which training never saw), tokens per
frame, vocabulary and decode time per frame (every token multiplies sampling time; decoding runs
once per output frame).

    OMP_NUM_THREADS=1 python benchmarks/maze_tokenizer.py --train maze_train/ --test maze_test.safetensors \\
        --steps 1500 --runs runs/maze_tok --out benchmarks/results/maze_tokenizer.json

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine_facts  # noqa: E402

from maskflow_cli.clips import load_training_clips  # noqa: E402
from maskflow_cli.evaluation import tokenizer_suite  # noqa: E402
from maskflow_cli.tokenizer import PRESETS, FrameTokenizer, TokenizerConfig  # noqa: E402
from maskflow_cli.training import TokenizerTask, TrainConfig, fit  # noqa: E402
from maskflow_cli.video_io import FrameFormat  # noqa: E402
from maskflow_cli.weights import inspect_weights, load_tokenizer  # noqa: E402

FORMAT = FrameFormat(64, 64, 3)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="maze training clips (folder of shards or clips file)")
    parser.add_argument("--test", required=True, help="maze test clips (the test split: other mazes)")
    parser.add_argument("--presets", nargs="+", default=["maze16", "maze8"])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-frames", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved decode-timing rounds")
    parser.add_argument("--runs", default="runs/maze_tok")
    parser.add_argument("--measure-only", action="store_true", help="measure the tokenizers already in --runs")
    parser.add_argument("--out", default="benchmarks/results/maze_tokenizer.json")
    args = parser.parse_args()

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
    result = {"machine": machine_facts(), "train": args.train, "test": args.test, "train_frames": len(frames),
              "batch_size": args.batch_size, "lr": args.lr, "rows": list(rows.values())}
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    for row in rows.values():
        print(f"{row['preset']}: {row['tokens_per_frame']} tokens of {row['vocabulary']:,}, PSNR {row['psnr']['mean']:.2f} dB, "
              f"SSIM {row['ssim']['mean']:.3f}, decode {row['decode_ms_per_frame']:.2f} ms/frame, {row['steps']} steps")


if __name__ == "__main__":
    main()
