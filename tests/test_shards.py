"""Token shards and the stream that trains on them: disjoint shards per rank and worker, exact
positions after a resume, and `maskflow tokenize` -> `maskflow train` through the real entry point."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.partial_files import write_safetensors
from maskflow_cli.shards import ShardStream, ShardWindows
from maskflow_cli.token_shards import TOKEN_SHARD_KEY, TOKEN_SHARD_NAME


def _shards(folder, count: int = 6, clips: int = 3, frames: int = 5) -> list[tuple[str, int]]:
    """``count`` shards whose every token is the shard's number, [clips,frames,2,2] each."""
    paths = []
    for i in range(count):
        path = folder / TOKEN_SHARD_NAME.format(i)
        write_safetensors(path, {"tokens": torch.full((clips, frames, 2, 2), i, dtype=torch.int16)}, {TOKEN_SHARD_KEY: "{}"})
        paths.append((str(path), clips))
    return paths


def _shard_of(batch: torch.Tensor) -> set[int]:
    return {int(v) for v in batch[:, 0, 0, 0]}


@pytest.mark.parametrize("workers", [0, 2])
def test_ranks_and_workers_read_disjoint_shards(tmp_path, monkeypatch, workers):
    shards = _shards(tmp_path)
    seen = {}
    for rank in range(2):
        monkeypatch.setenv("RANK", str(rank))
        monkeypatch.setenv("WORLD_SIZE", "2")
        source = ShardWindows(shards, window=3, batch_size=2, seed=0, workers=workers)
        source.start(0)
        seen[rank] = set().union(*(_shard_of(source.draw(torch.Generator())) for _ in range(12)))
    assert seen[0].isdisjoint(seen[1]) and seen[0] | seen[1] == set(range(6))
    assert seen[0] == {0, 2, 4} if workers == 0 else seen[0] == {0, 1, 4, 5}  # reader = rank * workers + worker


@pytest.mark.slow
def test_ddp_ranks_started_by_torchrun_read_disjoint_shards(tmp_path):
    (tmp_path / "shards").mkdir()
    _shards(tmp_path / "shards", count=8)
    worker = Path(__file__).parent / "ddp_shards_worker.py"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29541", str(worker),
               str(tmp_path / "shards"), str(tmp_path)]
    done = subprocess.run(command, capture_output=True, timeout=300, cwd=Path(__file__).parent.parent)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    r0, r1 = (set(json.loads((tmp_path / f"rank{r}.json").read_text())) for r in (0, 1))
    assert r0 == {0, 1, 4, 5} and r1 == {2, 3, 6, 7}  # reader = rank * 2 + worker reads shards reader, reader + 4


def test_a_resumed_stream_continues_exactly(tmp_path):
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, 100, (5, 9, 2, 2), generator=g, dtype=torch.int16)
    shards = []
    for i in range(4):  # distinct content: any skipped or repeated window would show
        path = tmp_path / TOKEN_SHARD_NAME.format(i)
        write_safetensors(path, {"tokens": tokens + 100 * i}, {TOKEN_SHARD_KEY: "{}"})
        shards.append((str(path), 5))
    straight = ShardWindows(shards, window=4, batch_size=3, seed=7, workers=2)
    straight.start(0)
    batches = [straight.draw(g) for _ in range(16)]  # more than one epoch of 20 clips
    resumed = ShardWindows(shards, window=4, batch_size=3, seed=7, workers=2)
    resumed.start(11)
    assert all(torch.equal(resumed.draw(g), batches[i]) for i in range(11, 16))
    assert len({tuple(b.flatten().tolist()) for b in batches}) == 16


def test_every_clip_once_an_epoch_and_windows_inside_the_clips(tmp_path):
    shards = _shards(tmp_path, count=2, clips=4, frames=6)
    stream = ShardStream(shards, window=4, seed=1, rank=0, world=1, workers=0)
    windows = [w for _, w in zip(range(8), iter(stream))]
    assert sorted(int(w[0, 0, 0]) for w in windows) == [0] * 4 + [1] * 4 and all(w.shape == (4, 2, 2) for w in windows)


def test_fewer_shards_than_readers(tmp_path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    source = ShardWindows(_shards(tmp_path, count=3), window=3, batch_size=2, seed=0, workers=2)
    source.start(0)  # 3 shards for 2 ranks: one worker a rank
    assert set().union(*(_shard_of(source.draw(torch.Generator())) for _ in range(6))) == {0, 2}
    lonely = ShardWindows(_shards(tmp_path, count=1), window=3, batch_size=2, seed=0, workers=2)
    with pytest.raises(InvalidArgumentError, match="fewer than the 2 ranks"):
        lonely.start(0)


def test_tokenize_then_train_streams_the_shards(cli, tmp_path, weights_dir):
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 5, "--frames", 8, "--seed", 0, "--size", 32).code == 0
    made = cli("tokenize", data, "-o", tmp_path / "tokens", "--tokenizer", weights_dir, "--shard-clips", 2, "--device", "cpu", "--json")
    assert made.code == 0, made.err
    summary = json.loads(made.out)
    assert (summary["shards"], summary["clips"], summary["frames"], summary["tokens"]) == (3, 5, 8, [8, 8])
    assert sorted(p.name for p in (tmp_path / "tokens").iterdir()) == [TOKEN_SHARD_NAME.format(i) for i in range(3)]
    again = cli("tokenize", data, "-o", tmp_path / "tokens", "--tokenizer", weights_dir)
    assert again.code == 5 and "--overwrite" in again.err and len(again.err.strip().splitlines()) == 1
    common = ["--steps", 4, "--batch-size", 2, "--warmup", 1, "--log-every", 2, "--checkpoint-every", 2, "--device", "cpu", "--precision", "fp32"]
    train = ["train", tmp_path / "tokens", "--tokenizer", weights_dir, "-o", tmp_path / "mf", "--preset", "tiny", "--window", 6, "--workers", 2]
    model = cli(*train, *common, "--json")
    assert model.code == 0, model.err
    assert json.loads(model.out)["steps"] == 4
    assert cli(*train, *common, "--steps", 6, "--resume", "--json").code == 0
    features = cli(*train[:-2], "--workers", 0, "-o", tmp_path / "cf", "--code-features", *common)
    assert features.code == 2 and "--code-features" in features.err


def test_train_refuses_shards_of_another_tokenizer(cli, tmp_path, weights_dir):
    folder = tmp_path / "tokens"
    folder.mkdir()
    _shards(folder, count=1, clips=2, frames=8)  # no tokenizer hash in the metadata
    r = cli("train", folder, "--tokenizer", weights_dir, "-o", tmp_path / "mf", "--preset", "tiny", "--window", 6, "--steps", 1)
    assert r.code != 0 and len(r.err.strip().splitlines()) == 1 and "tokens-00000.safetensors" in r.err


def test_tokenize_a_folder_of_videos_one_at_a_time(cli, tmp_path, weights_dir, clip_mkv):
    folder = tmp_path / "videos"
    folder.mkdir()
    for name in ("a.mkv", "b.mkv"):
        (folder / name).write_bytes(clip_mkv.read_bytes())
    (folder / "notes.txt").write_text("not a video")
    made = cli("tokenize", folder, "-o", tmp_path / "tokens", "--tokenizer", weights_dir, "--frames", 8, "--device", "cpu", "--json")
    assert made.code == 0, made.err
    assert json.loads(made.out)["clips"] == 4  # 20 frames a video: two clips of 8 each
    missing = cli("tokenize", folder, "-o", tmp_path / "t2", "--tokenizer", weights_dir)
    assert missing.code == 2 and "--frames" in missing.err
