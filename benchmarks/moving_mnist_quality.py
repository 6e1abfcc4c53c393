"""Quality of a set of weights on held-out Moving MNIST (test digits only), with simple baselines.

Measures tokenizer reconstruction PSNR and, when the weights hold a transformer, 10 -> 10 continuation (per-frame MSE summed over pixels,
PSNR) against copying the last frame and an all-black frame. Prints a table and writes JSON:

    python benchmarks/moving_mnist_quality.py --weights weights/ --sequences 64 --out quality.json
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from maskflow_cli.data import moving_mnist
from maskflow_cli.evaluation import continue_batch, frame_mse, frame_psnr, reconstruction_psnr, summarize
from maskflow_cli.pipeline import MaskFlowPipeline, SamplingOptions, resolve_device
from maskflow_cli.planner import window_settings
from maskflow_cli.weights import inspect_weights, load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--given", type=int, default=10)
    parser.add_argument("--future", type=int, default=10)
    parser.add_argument("--sampler", default="mgm")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--mode", default="ar")
    parser.add_argument("--context", type=int, default=None)
    parser.add_argument("--stride", type=int, default=None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-seed", type=int, default=1234)
    parser.add_argument("--out", default="quality.json")
    args = parser.parse_args()

    device = resolve_device("auto")
    clips = moving_mnist(args.sequences, args.given + args.future, seed=args.data_seed, split="test").frames  # [N,T,64,64,1]
    results = {"weights": args.weights or "(default)", "sequences": args.sequences, "data_seed": args.data_seed,
               "tokenizer_psnr": round(reconstruction_psnr(load_tokenizer(args.weights).to(device), clips.flatten(0, 1), device), 2)}
    if "transformer" in inspect_weights(args.weights):
        results.update(continuation(args, clips))
    print(f"tokenizer reconstruction PSNR on test frames: {results['tokenizer_psnr']:.2f} dB")
    if "maskflow" in results:
        print(f"10 -> 10 continuation, NFE {results['nfe_per_sequence']} per sequence ({results['seconds']} s in all)")
        print(f"{'method':10} {'MSE/frame':>10} {'PSNR':>7}")
        for name in ("maskflow", "copy_last", "black"):
            r = results[name]
            print(f"{name:10} {r['mse']['mean']:10.1f} {r['psnr']['mean']:7.2f}")
    with open(args.out, "w") as f:
        json.dump(results, f, indent=2)


def continuation(args: argparse.Namespace, clips: torch.Tensor) -> dict:
    """Given the first frames of each clip, predict the rest; score against the truth and baselines."""
    pipe = MaskFlowPipeline.from_weights(args.weights, device="auto")
    given, target = clips[:, : args.given], clips[:, args.given :]
    context = args.context if args.context is not None or args.mode == "full" else min(args.given, pipe.window - 1)
    settings = window_settings(pipe.window, args.mode, context, args.stride)
    options = SamplingOptions(sampler=args.sampler, steps=args.steps, seed=args.seed)
    started = time.perf_counter()
    predicted, nfe = [], 0
    for i in range(0, len(clips), args.batch):
        frames, nfe = continue_batch(pipe, given[i : i + args.batch], args.future, settings, options, args.seed + i)
        predicted.append(frames)
    predicted = torch.cat(predicted)
    seconds = time.perf_counter() - started
    baselines = {"copy_last": given[:, -1:].expand_as(target), "black": torch.zeros_like(target)}
    return {
        "given": args.given, "future": args.future, "sampler": args.sampler, "steps": args.steps, "mode": settings.mode,
        "context": settings.context, "stride": settings.stride, "nfe_per_sequence": nfe, "seconds": round(seconds, 1), "seed": args.seed,
        "maskflow": {"mse": summarize(frame_mse(predicted, target).mean(1)), "psnr": summarize(frame_psnr(predicted, target).mean(1)),
                     "mse_per_future_frame": [round(float(v), 1) for v in frame_mse(predicted, target).mean(0)]},
        **{name: {"mse": summarize(frame_mse(b, target).mean(1)), "psnr": summarize(frame_psnr(b, target).mean(1))} for name, b in baselines.items()},
    }



if __name__ == "__main__":
    main()
