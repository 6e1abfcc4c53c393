"""Measure a tokenizer's held-out reconstruction PSNR and store it in its metadata.

The domain check before sampling (``maskflow_cli/domain.py``) compares an input's reconstruction
PSNR with the tokenizer's own figure, the ``reconstruction_psnr`` key of its ``info`` metadata. This
script measures that figure exactly as ``maskflow eval --suite tokenizer`` does (the full size: 2,000
Moving MNIST frames of the reserved test digits, data seed 1234 unless told) and writes it, with what
it was measured on, into the file. The tensors are written back unchanged.

    OMP_NUM_THREADS=1 python benchmarks/tokenizer_reference.py weights/tokenizer.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

from maskflow_cli.domain import REFERENCE_KEY
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import SIZES, evaluate
from maskflow_cli.partial_files import write_safetensors
from maskflow_cli.weights import METADATA_KEY, load_tokenizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", help="a safetensors file holding exactly one tokenizer")
    parser.add_argument("--data-seed", type=int, default=1234, help="the held-out clips, as maskflow eval --data-seed")
    parser.add_argument("--quick", action="store_true", help="200 frames instead of 2,000 (a smoke run)")
    args = parser.parse_args()
    with safe_open(args.file, framework="pt") as handle:
        metadata = handle.metadata()
    manifest = json.loads(metadata[METADATA_KEY])
    if set(manifest["components"]) != {"tokenizer"}:
        sys.exit(f"tokenizer_reference: {args.file} holds {', '.join(manifest['components'])}, not a tokenizer alone")
    size = SIZES["quick" if args.quick else "full"]
    result = evaluate(None, load_tokenizer(args.file), torch.device("cpu"), data=None, size=size, suites=("tokenizer",),
                      settings=None, options=SamplingOptions(), data_seed=args.data_seed)["tokenizer"]
    info = manifest["components"]["tokenizer"]["info"]
    info[REFERENCE_KEY] = round(result["psnr"]["mean"], 3)
    info[f"{REFERENCE_KEY}_data"] = f"{result['frames']} frames of Moving MNIST test digits, data seed {args.data_seed}"
    write_safetensors(args.file, load_file(args.file), {**metadata, METADATA_KEY: json.dumps(manifest)})
    print(json.dumps({"file": args.file, REFERENCE_KEY: info[REFERENCE_KEY], "ssim": result["ssim"]["mean"],
                      "frames": result["frames"], "data_seed": args.data_seed}))


if __name__ == "__main__":
    main()
