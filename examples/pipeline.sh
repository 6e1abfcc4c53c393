#!/usr/bin/env bash
# Generate, extend and repair a video in one shell pipeline.
# Usage: examples/pipeline.sh WEIGHTS OUTPUT.mkv   (WEIGHTS: folder, .safetensors file or hf://owner/repo)
set -euo pipefail
weights=${1:?weights folder, file or hf://owner/repo}
output=${2:?output file, e.g. final.mkv}
maskflow generate -w "$weights" -o - --frames 32 --seed 1 \
  | maskflow extend - -w "$weights" --frames 32 -o - \
  | maskflow infill - 20:28 -w "$weights" -o "$output" --json
