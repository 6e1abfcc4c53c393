"""What the benchmark scripts share: machine facts and held-out test clips."""

from __future__ import annotations

import os
import platform

import torch

from maskflow_cli.evaluation import held_out_sequences
from maskflow_cli.pipeline import MaskFlowPipeline


def machine_facts(pipe: MaskFlowPipeline | None = None) -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    facts = {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(), "torch": torch.__version__}
    if pipe is not None:
        facts.update(device=str(pipe.device), autocast=str(pipe.autocast_dtype).removeprefix("torch.") if pipe.autocast_dtype else "float32")
    return facts


def test_clips(pipe: MaskFlowPipeline, frames: int, count: int, seed: int = 1234) -> torch.Tensor:
    """Moving MNIST sequences from the reserved test digits, at the model's frame format."""
    return held_out_sequences(None, frames, count, pipe.frame_format, seed)
