"""Weights files are untrusted input.

Truncated files, headers that claim more data than the file holds, wrong dtypes and shapes,
configs that disagree with their tensors or hold values of the wrong type, forged configs that
would build enormous modules, pickles renamed .safetensors: each is refused with one clear line
(WeightsError, exit 4 through the CLI), and no pickle is ever loaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import random
import resource
import struct
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from maskflow_cli.errors import WeightsError
from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_models, load_tokenizer, save_weights

from conftest import TINY_TOKENIZER, TINY_TRANSFORMER, tiny_models


@contextmanager
def address_space_limit(extra: int):
    """At most ``extra`` more bytes of address space for this process while the block runs."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (size + extra if hard == resource.RLIM_INFINITY else min(hard, size + extra), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


@pytest.fixture(autouse=True)
def bounded_memory():
    """Forged configs must never make a test allocate without bound: at most 4 GiB more address
    space per test (a regression then fails with "can't allocate memory" instead of swapping)."""
    with address_space_limit(4 * 2**30):
        yield


@pytest.fixture(scope="module")
def good_file(tmp_path_factory) -> Path:
    """Both components in one file."""
    path = tmp_path_factory.mktemp("good") / "both.safetensors"
    tokenizer, transformer = tiny_models()
    save_weights(path, {"tokenizer": tokenizer, "transformer": transformer}, {"transformer": {"fps": 8}})
    return path


def tensors_and_manifest() -> tuple[dict[str, torch.Tensor], dict]:
    tokenizer, transformer = tiny_models()
    tensors = {f"tokenizer.{k}": v.contiguous() for k, v in tokenizer.state_dict().items()}
    tensors.update({f"transformer.{k}": v.contiguous() for k, v in transformer.state_dict().items()})
    manifest = {"format_version": 1, "components": {
        "tokenizer": {"config": dataclasses.asdict(TINY_TOKENIZER), "info": {}},
        "transformer": {"config": dataclasses.asdict(TINY_TRANSFORMER), "info": {"fps": 8}},
    }}
    return tensors, manifest


def write(path: Path, tensors: dict[str, torch.Tensor], manifest: object) -> Path:
    metadata = {"maskflow": manifest if isinstance(manifest, str) else json.dumps(manifest)}
    save_file(tensors, str(path), metadata=metadata)
    return path


def refused(path: Path, *needles: str, loader=load_models) -> str:
    """Load ``path``; it must raise WeightsError with a one-line message holding every needle."""
    started = time.process_time()  # CPU seconds: fair on a machine shared with other work
    with pytest.raises(WeightsError) as caught:
        loader(path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith("weights "), message
    for needle in needles:
        assert needle in message, message
    assert time.process_time() - started < 10
    return message


# --------------------------------------------------------------------------- the container


def test_truncated_at_every_kind_of_offset(good_file, tmp_path):
    data = good_file.read_bytes()
    header = 8 + struct.unpack("<Q", data[:8])[0]
    offsets = [0, 1, 7, 8, 9, header // 2, header - 1, header, header + 1, header + 100, (header + len(data)) // 2, len(data) - 1]
    for offset in offsets:
        path = tmp_path / f"cut{offset}.safetensors"
        path.write_bytes(data[:offset])
        refused(path, "not a valid safetensors file")


def _raw(header: dict | bytes, body: bytes, length: int | None = None) -> bytes:
    text = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(text) if length is None else length) + text + body


BROKEN = {
    "data beyond the end": _raw({"a": {"dtype": "F32", "shape": [1000], "data_offsets": [0, 4000]}}, bytes(16)),
    "header longer than the file": _raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, bytes(4), length=10**6),
    "header length 2**63": _raw(b"{}", b"", length=2**63),
    "header not json": _raw(b"{not json at all}", bytes(8)),
    "header a list": _raw(b"[1, 2, 3]", b""),
    "offsets reversed": _raw({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}, bytes(4)),
    "offsets overlap": _raw({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                             "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, bytes(12)),
    "shape disagrees with the bytes": _raw({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, bytes(8)),
    "unknown dtype": _raw({"a": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}}, bytes(4)),
    "zero bytes": b"",
    "text": b"hello, I am weights\n" * 10,
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_containers(tmp_path, name):
    path = tmp_path / "w.safetensors"
    path.write_bytes(BROKEN[name])
    refused(path, "not a valid safetensors file")
    with pytest.raises(WeightsError):
        inspect_weights(path)  # `maskflow info` reads only the header, and refuses it too


class _Marker:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    path = ""

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.mark.parametrize("kind", ["pickle", "torch.save zip", "torch.save legacy"])
def test_pickles_renamed_safetensors_are_never_unpickled(tmp_path, monkeypatch, kind):
    marker = tmp_path / "unpickled"
    _Marker.path = str(marker)
    payload = {"tokenizer.x": torch.zeros(3), "evil": _Marker()}
    path = tmp_path / "model.safetensors"
    if kind == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path, _use_new_zipfile_serialization=(kind == "torch.save zip"))

    def forbidden(*args, **kwargs):
        raise AssertionError("a pickle was about to be loaded")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, forbidden)
    refused(path, "not a valid safetensors file")
    refused(path, "not a valid safetensors file", loader=load_tokenizer)
    assert not marker.exists()


# --------------------------------------------------------------------------- tensors against the config


def test_wrong_dtypes(tmp_path):
    tensors, manifest = tensors_and_manifest()
    for dtype in (torch.int32, torch.bool, torch.uint8):
        changed = dict(tensors)
        changed["transformer.head.weight"] = tensors["transformer.head.weight"].to(dtype)
        refused(write(tmp_path / f"{dtype}.safetensors", changed, manifest), "transformer tensor head.weight", "expected a float type")
    for dtype in (torch.float64, torch.bfloat16):  # other float types are fine
        changed = {k: v.to(dtype) for k, v in tensors.items()}
        _, transformer, _ = load_models(write(tmp_path / f"ok-{dtype}.safetensors", changed, manifest))
        assert all(p.dtype == torch.float32 for p in transformer.parameters())


def test_tensors_that_disagree_with_the_config(tmp_path):
    tensors, manifest = tensors_and_manifest()
    missing = {k: v for k, v in tensors.items() if k != "transformer.head.bias"}
    refused(write(tmp_path / "missing.safetensors", missing, manifest), "do not match its config", "missing", "head.bias")
    extra = {**tensors, "transformer.blocks.9.attn.weight": torch.zeros(2, 2)}
    refused(write(tmp_path / "extra.safetensors", extra, manifest), "do not match its config", "unexpected", "blocks.9")
    reshaped = {**tensors, "transformer.head.weight": tensors["transformer.head.weight"].reshape(-1)}
    refused(write(tmp_path / "shape.safetensors", reshaped, manifest), "head.weight has shape", "the config needs")
    for field, value, needle in (("depth", 3, "missing"), ("dim", 64, "has shape"), ("frames", 8, "has shape"),
                                 ("time_conditioning", False, "missing, e.g. null_cond")):
        wrong = json.loads(json.dumps(manifest))
        wrong["components"]["transformer"]["config"][field] = value
        refused(write(tmp_path / f"cfg-{field}.safetensors", tensors, wrong), "transformer tensors do not match its config", needle)
    levels = json.loads(json.dumps(manifest))
    levels["components"]["tokenizer"]["config"]["levels"] = [4, 4, 4]
    refused(write(tmp_path / "levels.safetensors", tensors, levels), "do not fit together")
    refused(tmp_path / "levels.safetensors", "tokenizer tensors do not match its config", loader=load_tokenizer)


def test_nan_and_infinite_weights(tmp_path):
    tensors, manifest = tensors_and_manifest()
    for value in (float("nan"), float("inf")):
        broken = dict(tensors)
        key = next(k for k in tensors if k.startswith("tokenizer.") and tensors[k].is_floating_point() and tensors[k].numel() > 1)
        weight = tensors[key].clone()
        weight.view(-1)[0] = value
        broken[key] = weight
        refused(write(tmp_path / f"{value}.safetensors", broken, manifest), "NaN or infinite", key.removeprefix("tokenizer."))


def test_forged_config_is_refused_before_anything_is_allocated(tmp_path):
    """A 1 MB file whose config asks for a 16384-wide, 64-deep transformer (about 200 billion
    parameters) is refused from its config's cost, not by trying to build the module: with at
    most 2 GiB more address space, any such attempt fails with "can't allocate memory". (With the
    limits raised, the header's shapes refuse it: tests/test_work_limits.py.)"""
    tensors, manifest = tensors_and_manifest()
    forged = json.loads(json.dumps(manifest))
    forged["components"]["transformer"]["config"].update(dim=16384, depth=64, heads=8)
    path = write(tmp_path / "forged.safetensors", tensors, forged)
    with address_space_limit(2 * 2**30):
        message = refused(path, "bytes of parameters", "MASKFLOW_MAX_MODEL_BYTES")
    assert "allocate" not in message


# --------------------------------------------------------------------------- the metadata


@pytest.mark.parametrize("manifest, needle", [
    ("not json", "without maskflow metadata"),
    pytest.param("[" * 5000 + "]" * 5000, "without maskflow metadata", id="nested beyond the recursion limit"),
    ([1, 2], "without maskflow metadata"),
    ({"format_version": 2, "components": {}}, "format version 2"),
    ({"format_version": "1", "components": {}}, "format version '1'"),
    ({"format_version": 1, "components": []}, "'components' is not an object"),
    ({"format_version": 1, "components": {"tokenizer": "x"}}, "is not an object"),
    ({"format_version": 1, "components": {"tokenizer": {"config": {}, "info": [1]}}}, "is not an object"),
    ({"format_version": 1, "components": {"vae": {"config": {}}}}, "unknown component 'vae'"),
    ({"format_version": 1, "components": {"tokenizer": {"info": {}}}}, "tokenizer config is missing"),
])
def test_broken_metadata(tmp_path, manifest, needle):
    tensors, _ = tensors_and_manifest()
    refused(write(tmp_path / "w.safetensors", tensors, manifest), needle)


BAD_VALUES = [None, True, False, -1, 0, 2.5, 64.0, float("1e308"), "64", "", [], [64], {"a": 1}, 2**31, 10**30, [4, "4"], [4.0, 4.0],
              [1] * 100, [True, 2], 3]


def test_random_config_values(tmp_path):
    """Seeded random edits of config fields: every outcome is a loaded model whose config is as
    written, or a WeightsError; never another exception, never a hang."""
    rng = random.Random(4242)
    tensors, manifest = tensors_and_manifest()
    outcomes = {"loaded": 0, "refused": 0}
    path = tmp_path / "w.safetensors"
    for case in range(80):
        edited = json.loads(json.dumps(manifest))
        for _ in range(rng.choice([1, 1, 2])):
            kind = rng.choice(["tokenizer", "transformer"])
            config = edited["components"][kind]["config"]
            config[rng.choice(sorted(config))] = rng.choice(BAD_VALUES)
        write(path, tensors, json.dumps(edited, allow_nan=True))
        started = time.process_time()
        try:
            tokenizer, transformer, _ = load_models(path)
        except WeightsError as error:
            assert "\n" not in str(error)
            outcomes["refused"] += 1
        else:
            assert dataclasses.asdict(tokenizer.config) == {k: tuple(v) if isinstance(v, list) else v
                                                             for k, v in edited["components"]["tokenizer"]["config"].items()}
            outcomes["loaded"] += 1
        assert time.process_time() - started < 10, edited
    assert outcomes["refused"] >= 60, outcomes


@pytest.mark.parametrize("field, value, needle", [
    ("height", 64.0, "expected a whole number"), ("height", True, "expected a whole number"),
    ("height", 2**20, "between 0 and 8,192"), ("levels", [4, "4"], "expected whole numbers"),
    ("levels", [1024, 1024, 1024], "vocabulary of 1,073,741,824"), ("channel_multipliers", [1] * 40, "at most 12"),
    ("encoder", 3, "expected a string"),
])
def test_tokenizer_config_values_are_checked(tmp_path, field, value, needle):
    tensors, manifest = tensors_and_manifest()
    manifest["components"]["tokenizer"]["config"][field] = value
    message = refused(write(tmp_path / "w.safetensors", tensors, manifest), "bad tokenizer config", needle)
    assert field in message


def test_a_transformer_config_with_the_old_token_grid_names_still_loads(tmp_path, good_file):
    """Weights written before the token grid was named grid_height/grid_width (height/width) load as
    the same config; new weights carry the new names; a config holding both spellings is refused."""
    tensors, manifest = tensors_and_manifest()
    config = manifest["components"]["transformer"]["config"]
    old = {("height" if k == "grid_height" else "width" if k == "grid_width" else k): v for k, v in config.items()}
    manifest["components"]["transformer"]["config"] = old
    _, transformer, _ = load_models(write(tmp_path / "old.safetensors", tensors, manifest))
    assert transformer.config == TINY_TRANSFORMER and "grid_height" not in old
    written = json.loads(inspect_weights_metadata(good_file))["components"]["transformer"]["config"]
    assert written["grid_height"] == written["grid_width"] == 8 and "height" not in written
    manifest["components"]["transformer"]["config"] = {**old, "grid_height": 8}
    refused(write(tmp_path / "both.safetensors", tensors, manifest), "both old and new names", "grid_height")


def inspect_weights_metadata(path: Path) -> str:
    """The raw maskflow metadata JSON of a weights file."""
    with safe_open(str(path), framework="pt") as handle:
        return handle.metadata()["maskflow"]


# --------------------------------------------------------------------------- through the command line


@pytest.mark.parametrize("kind", ["truncated", "pickle", "forged", "nan"])
@pytest.mark.parametrize("command", ["generate", "extend", "encode"])
def test_cli_exit_code_4_and_no_output(cli, clip_mkv, good_file, tmp_path, kind, command):
    folder = tmp_path / "weights"
    folder.mkdir()
    path = folder / "w.safetensors"
    tensors, manifest = tensors_and_manifest()
    if kind == "truncated":
        path.write_bytes(good_file.read_bytes()[:-500])
    elif kind == "pickle":
        path.write_bytes(pickle.dumps({"tokenizer.x": [1, 2, 3]}))
    elif kind == "forged":
        manifest["components"]["tokenizer"]["config"]["base_channels"] = 4096
        write(path, tensors, manifest)
    else:
        key = next(k for k in tensors if k.startswith("tokenizer.") and tensors[k].numel() > 1)
        tensors[key] = tensors[key].clone().fill_(float("nan"))
        write(path, tensors, manifest)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    head = {"generate": ["generate"], "extend": ["extend", clip_mkv], "encode": ["encode", clip_mkv]}[command]
    out = out_dir / ("x.tokens.safetensors" if command == "encode" else "x.mkv")
    result = cli(*head, "-w", path, "-o", out, "--device", "cpu")
    lines = result.err.strip().splitlines()
    assert result.code == 4, result.err
    assert len(lines) == 1 and lines[0].startswith(f"maskflow: error: weights {str(path)!r}"), result.err
    assert "Traceback" not in result.err and result.out == ""
    assert os.listdir(out_dir) == []
