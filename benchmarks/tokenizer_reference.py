"""A tokenizer's held-out reconstruction PSNR, measured and stored in its own metadata.

The domain check before sampling (``maskflow_cli/domain.py``) compares an input's reconstruction
PSNR with the tokenizer's own figure, the ``reconstruction_psnr`` key of its ``info`` metadata. This
measures that figure exactly as ``maskflow eval --suite tokenizer`` does (the full size: 2,000
Moving MNIST frames of the reserved test digits, data seed 1234 unless told) and writes it, with what
it was measured on, into the file given as --weights (one holding a tokenizer alone); the tensors
are written back unchanged.

    OMP_NUM_THREADS=1 python -m benchmarks tokenizer_reference --weights weights/tokenizer.safetensors
"""

from __future__ import annotations

import argparse
import json

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from maskflow_cli.domain import REFERENCE_KEY
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import SIZES, evaluate
from maskflow_cli.partial_files import write_safetensors
from maskflow_cli.weight_headers import METADATA_KEY
from maskflow_cli.weights import load_tokenizer

from .markdown import heading, machine

NAME = "tokenizer_reference"
SHARED = {"weights": "weights/tokenizer.safetensors"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-seed", type=int, default=1234, help="the held-out clips, as maskflow eval --data-seed")
    parser.add_argument("--quick", action="store_true", help="200 frames instead of 2,000 (a smoke run)")


def run(args: argparse.Namespace) -> dict:
    with safe_open(args.weights, framework="pt") as handle:
        metadata = handle.metadata()
    manifest = json.loads(metadata[METADATA_KEY])
    if set(manifest["components"]) != {"tokenizer"}:
        raise SystemExit(f"tokenizer_reference: {args.weights} holds {', '.join(manifest['components'])}, not a tokenizer alone")
    size = SIZES["quick" if args.quick else "full"]
    measured = evaluate(None, load_tokenizer(args.weights), torch.device("cpu"), data=None, size=size, suites=("tokenizer",),
                        settings=None, options=SamplingOptions(), data_seed=args.data_seed)["tokenizer"]
    info = manifest["components"]["tokenizer"]["info"]
    info[REFERENCE_KEY] = round(measured["psnr"]["mean"], 3)
    info[f"{REFERENCE_KEY}_data"] = f"{measured['frames']} frames of Moving MNIST test digits, data seed {args.data_seed}"
    write_safetensors(args.weights, load_file(args.weights), {**metadata, METADATA_KEY: json.dumps(manifest)})
    print(f"{args.weights}: {REFERENCE_KEY} {info[REFERENCE_KEY]} dB ({info[f'{REFERENCE_KEY}_data']})")
    return {"weights": args.weights, REFERENCE_KEY: info[REFERENCE_KEY], "psnr": measured["psnr"], "ssim": measured["ssim"],
            "frames": measured["frames"], "data_seed": args.data_seed}


def render(r: dict) -> str:
    return "\n".join(heading("A tokenizer's reference PSNR", r) + [
        f"Machine: {machine(r['machine'])}. `{r['weights']}` reconstructs {r['frames']} held-out Moving MNIST test frames (data seed "
        f"{r['data_seed']}) at PSNR {r['psnr']['mean']:.2f} dB, SSIM {r['ssim']['mean']:.3f}; {r[REFERENCE_KEY]} dB is written into its "
        "metadata as the domain check's reference."])
