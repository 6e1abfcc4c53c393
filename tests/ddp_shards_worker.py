"""Run by test_shards under torchrun: each process joins the gloo group, streams token shards whose
every token is the shard's number through ShardWindows with two DataLoader workers, and records which
shards it read. Arguments: the shards folder, the output folder."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

sys.path[:0] = [str(Path(__file__).parent.parent)]  # this checkout

from maskflow_cli.shards import ShardWindows  # noqa: E402

shards_folder, out = Path(sys.argv[1]), Path(sys.argv[2])
dist.init_process_group("gloo")
shards = [(str(p), 3) for p in sorted(shards_folder.glob("tokens-*.safetensors"))]
source = ShardWindows(shards, window=3, batch_size=2, seed=0, workers=2)
source.start(0)
seen = sorted({int(v) for _ in range(12) for v in source.draw(torch.Generator())[:, 0, 0, 0]})
(out / f"rank{dist.get_rank()}.json").write_text(json.dumps(seen))
dist.destroy_process_group()
