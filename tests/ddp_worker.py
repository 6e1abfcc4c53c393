"""Run by test_training under torchrun: each process trains the same tiny transformer with DDP
and records a fingerprint of its final weights and its step count. Arguments: the output folder, and
optionally a time limit in seconds (then the steps are unlimited)."""

import json
import sys
from pathlib import Path

import torch
import torch._dynamo  # noqa: F401  imported by the first AdamW: not inside a time limit
import torch.distributed as dist

sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parent.parent)]  # tests, then this checkout
from conftest import tiny_models  # noqa: E402
from test_training import predictable_tokens  # noqa: E402

from maskflow_cli.training import TrainConfig, TransformerTask, fit  # noqa: E402

out = Path(sys.argv[1])
_, model = tiny_models()
task = TransformerTask(model, predictable_tokens(), batch_size=4, device=torch.device("cpu"))
limit = float(sys.argv[2]) if len(sys.argv) > 2 else None
cfg = TrainConfig(steps=30 if limit is None else 10**6, time_limit=limit, batch_size=4, lr=3e-3, warmup=2, log_every=5, checkpoint_every=100, ema=0.9, precision="fp32")
result = fit(task, cfg, out, "transformer.safetensors", {})
rank = dist.get_rank()
flat = torch.cat([p.detach().flatten() for p in model.parameters()])
(out / f"rank{rank}.json").write_text(json.dumps({"sum": flat.double().sum().item(), "first": flat[:16].tolist(), "steps": result.steps}))
dist.destroy_process_group()
