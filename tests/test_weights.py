import dataclasses
import json
import os
import pickle
import struct
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from maskflow_cli.errors import WeightsError
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_models, save_weights

from conftest import TINY_TOKENIZER, TINY_TRANSFORMER, run_subprocess, tiny_models


def test_round_trip_rebuilds_identical_modules(tmp_path):
    tokenizer, transformer = tiny_models(seed=3)
    save_weights(tmp_path / "both.safetensors", {"tokenizer": tokenizer, "transformer": transformer}, {"transformer": {"fps": 5, "steps": 7}})
    tok2, tr2, components = load_models(tmp_path / "both.safetensors")
    assert tok2.config == TINY_TOKENIZER and tr2.config == TINY_TRANSFORMER
    assert components["transformer"].info == {"fps": 5, "steps": 7}
    assert components["transformer"].parameters == sum(p.numel() for p in transformer.parameters())
    tokens = torch.randint(0, 17, (1, 3, 8, 8))
    t = torch.rand(1, 3)
    assert torch.equal(transformer(tokens, t), tr2(tokens, t))
    frames = torch.randint(0, 256, (2, 32, 32, 1), dtype=torch.uint8)
    assert torch.equal(tokenizer.encode(frames), tok2.encode(frames))


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_written_weights_get_the_mode_of_any_new_file(tmp_path, umask):
    """0o666 minus the umask, as a plain open() would give: readable by others under umask 022."""
    old = os.umask(umask)
    try:
        save_weights(tmp_path / "w.safetensors", {"tokenizer": tiny_models()[0]})
    finally:
        os.umask(old)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


def test_bf16_storage_loads_as_float32(tmp_path):
    tokenizer, transformer = tiny_models()
    save_weights(tmp_path / "w.safetensors", {"tokenizer": tokenizer, "transformer": transformer}, dtype=torch.bfloat16)
    _, loaded, _ = load_models(tmp_path / "w.safetensors")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert torch.allclose(loaded.head.weight, transformer.head.weight, atol=1e-2)


def test_folder_of_component_files(weights_dir):
    components = inspect_weights(weights_dir)
    assert set(components) == {"tokenizer", "transformer"}


def bad_weights(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "bad.safetensors"
    tokenizer, transformer = tiny_models()
    if kind == "random bytes":
        path.write_bytes(bytes(range(256)) * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"tokenizer.x": torch.zeros(3)}))
    elif kind == "text":
        path.write_text("hello world\n")
    elif kind == "truncated":
        save_weights(path, {"tokenizer": tokenizer, "transformer": transformer})
        path.write_bytes(path.read_bytes()[:-1000])
    elif kind == "header claims too much":
        header = json.dumps({"x": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}).encode()
        path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    elif kind == "no metadata":
        save_file({"a": torch.zeros(2)}, path)
    elif kind == "wrong shapes":
        bigger = MaskFlowTransformer(dataclasses.replace(TINY_TRANSFORMER, dim=64))
        save_weights(path, {"tokenizer": tokenizer, "transformer": bigger})
        raw = path.read_bytes()  # claim the small config over big tensors
        path.write_bytes(raw.replace(b'\\"dim\\": 64', b'\\"dim\\": 32', 1))
    elif kind == "wrong dtype":
        state = {f"transformer.{k}": v.to(torch.int32) for k, v in transformer.state_dict().items()}
        state.update({f"tokenizer.{k}": v for k, v in tokenizer.state_dict().items()})
        meta = {"format_version": 1, "components": {"tokenizer": {"config": dataclasses.asdict(tokenizer.config)}, "transformer": {"config": dataclasses.asdict(transformer.config)}}}
        save_file(state, path, metadata={"maskflow": json.dumps(meta)})
    elif kind == "unknown config field":
        save_weights(path, {"tokenizer": tokenizer, "transformer": transformer})
        raw = path.read_bytes()
        path.write_bytes(raw.replace(b'\\"depth\\": 2', b'\\"dapth\\": 2', 1))  # same length keeps the header valid
    elif kind == "misfit":
        other = MaskFlowTransformer(dataclasses.replace(TINY_TRANSFORMER, vocab_size=32))
        save_weights(path, {"tokenizer": tokenizer, "transformer": other})
    elif kind == "tokenizer only":
        save_weights(path, {"tokenizer": tokenizer})
    return path


@pytest.mark.parametrize(
    "kind, message",
    [("random bytes", "not a valid safetensors"), ("empty", "not a valid safetensors"), ("pickle", "not a valid safetensors"),
     ("text", "not a valid safetensors"), ("truncated", "not a valid safetensors"), ("header claims too much", "not a valid safetensors"),
     ("no metadata", "without maskflow metadata"), ("wrong shapes", "do not match its config"), ("wrong dtype", "expected a float"),
     ("unknown config field", "unknown fields"), ("misfit", "do not fit together"), ("tokenizer only", "has no transformer")],
)
def test_bad_weights_are_rejected_clearly(tmp_path, kind, message):
    path = bad_weights(tmp_path, kind)
    with pytest.raises(WeightsError, match=message) as error:
        load_models(path)
    assert "\n" not in str(error.value)


def test_missing_weights(tmp_path):
    with pytest.raises(WeightsError, match="no such file"):
        load_models(tmp_path / "nope.safetensors")
    with pytest.raises(WeightsError, match="no .safetensors"):
        load_models(tmp_path)


def make_hub_cache(cache: Path, repo: str, source: Path, revision: str = "main") -> None:
    """Lay out a Hugging Face cache entry for ``repo`` by hand (what a past download leaves)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    entry = cache / f"models--{repo.replace('/', '--')}"
    snapshot = entry / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in source.glob("*.safetensors"):
        (snapshot / file.name).write_bytes(file.read_bytes())
    (entry / "refs").mkdir()
    (entry / "refs" / revision).write_text(commit)


@pytest.mark.slow
def test_hub_weights_load_from_the_local_cache_offline(tmp_path, weights_dir):
    cache = tmp_path / "hub"
    make_hub_cache(cache, "someone/tiny-maskflow", weights_dir)
    env = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home")}
    ok = run_subprocess(["info", "--weights", "hf://someone/tiny-maskflow", "--json"], env=env)
    assert ok.returncode == 0, ok.stderr
    info = json.loads(ok.stdout)
    assert info["transformer"]["config"]["frames"] == TINY_TRANSFORMER.frames
    missing = run_subprocess(["info", "--weights", "hf://someone/other-repo"], env=env)
    assert missing.returncode == 4 and "not in the local Hugging Face cache" in missing.stderr.decode()
    assert len(missing.stderr.decode().strip().splitlines()) == 1
