"""Work and memory bounded before anything is allocated: a transformer config is costed (model
bytes, one window's activations, operations per call) and checked against limits before it is
built, even on the meta device; building it on the meta device allocates nothing; tokens and clips
files are checked against the pixel budget from their header, before any tensor is read. Every
refusal is one line with its numbers and the setting that raises the limit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from maskflow_cli.model_budget import WorkLimits, check_transformer_cost, transformer_cost
from maskflow_cli.model_configs import PAPER_PRESETS, TRANSFORMER_PRESETS, TransformerConfig
from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_component

from test_untrusted_weights import address_space_limit, refused, tensors_and_manifest, write

from conftest import one_error_line


def test_the_presets_fit_the_default_limits_and_the_bombs_do_not():
    for name, preset in TRANSFORMER_PRESETS.items():  # the paper's presets at a 32-frame window, twice the paper's
        frames = 32 if name in PAPER_PRESETS else 64
        check_transformer_cost(TransformerConfig(vocab_size=1000, frames=frames, grid_height=8, grid_width=8, **preset), "w", WorkLimits())
    wide = TransformerConfig(vocab_size=1000, frames=16, grid_height=64, grid_width=64, dim=65536, depth=1, heads=1)
    huge_grid = TransformerConfig(vocab_size=16, frames=1, grid_height=1024, grid_width=1024, dim=4, depth=1, heads=1)
    for config, needle in ((wide, "bytes of parameters"), (huge_grid, "bytes of activations for a window of 1 frames of 1024x1024")):
        with pytest.raises(Exception, match=needle):
            check_transformer_cost(config, "w", WorkLimits())


def test_the_cost_grows_as_attention_does():
    small = TransformerConfig(vocab_size=16, frames=4, grid_height=8, grid_width=8, dim=32, depth=2, heads=2)
    double = TransformerConfig(**{**small.__dict__, "frames": 8})
    factorized = TransformerConfig(**{**double.__dict__, "attention": "factorized"})
    assert transformer_cost(double).call_flops > 2 * transformer_cost(small).call_flops  # tokens² in full attention
    assert transformer_cost(factorized).window_bytes < transformer_cost(double).window_bytes


@pytest.mark.parametrize("variable, needle", [
    ("MASKFLOW_MAX_CALL_FLOPS", "operations per network call"), ("MASKFLOW_MAX_WINDOW_BYTES", "bytes of activations"),
    ("MASKFLOW_MAX_MODEL_BYTES", "bytes of parameters"),
])
def test_weights_over_a_limit_are_refused_naming_the_numbers_and_the_setting(cli, weights_dir, tmp_path, monkeypatch, variable, needle):
    monkeypatch.setenv(variable, "1K")
    result = cli("generate", "-w", weights_dir, "-o", tmp_path / "x.mkv", "--frames", 2, "--steps", 1, "--device", "cpu")
    one_error_line(result, 4, needle, "1,024 allowed", variable)
    assert list(tmp_path.iterdir()) == []


def test_the_shape_check_of_a_big_config_allocates_nothing(tmp_path, monkeypatch):
    """Limits raised by hand: a 64x64-token, 65,536-wide config (a 1 GB position grid) in a small
    file is refused from the header's shapes with at most 512 MiB more address space: its sin-cos
    position grid is built on the meta device too."""
    for variable in ("MASKFLOW_MAX_MODEL_BYTES", "MASKFLOW_MAX_WINDOW_BYTES", "MASKFLOW_MAX_CALL_FLOPS"):
        monkeypatch.setenv(variable, "1000000T")
    tensors, manifest = tensors_and_manifest()
    manifest["components"]["transformer"]["config"].update(grid_height=64, grid_width=64, dim=65536, depth=1, heads=1)
    path = write(tmp_path / "wide.safetensors", tensors, manifest)
    with address_space_limit(512 * 2**20):
        message = refused(path, "transformer tensors do not match its config",
                          loader=lambda p: load_component(inspect_weights(p)["transformer"]))
    assert "allocate" not in message


def _tokens_file(cli, weights_dir, clip_mkv, folder: Path) -> Path:
    path = folder / "clip.tokens.safetensors"
    assert cli("encode", clip_mkv, "-w", weights_dir, "-o", path, "--device", "cpu").code == 0
    return path


def test_a_tokens_file_over_the_pixel_budget_is_refused_from_its_header(cli, weights_dir, clip_mkv, tmp_path, monkeypatch):
    tokens = _tokens_file(cli, weights_dir, clip_mkv, tmp_path)  # 20 frames of 32x32: 20,480 pixels
    monkeypatch.setenv("MASKFLOW_MAX_INPUT_PIXELS", "10000")
    result = cli("decode", tokens, "-w", weights_dir, "-o", tmp_path / "out.mkv", "--device", "cpu")
    one_error_line(result, 3, "clip.tokens.safetensors", "20 frames of 32x32", "10,000", "MASKFLOW_MAX_INPUT_PIXELS")
    assert not (tmp_path / "out.mkv").exists()


def test_a_sparse_tokens_file_declaring_ten_million_frames_is_refused_before_reading(cli, weights_dir, clip_mkv, tmp_path):
    """The header says 10^7 frames (2.5 GB of tokens, 10^10 pixels decoded); the file is sparse."""
    small = _tokens_file(cli, weights_dir, clip_mkv, tmp_path)
    with safe_open(str(small), framework="pt") as handle:
        metadata = handle.metadata()
    frames, grid = 10**7, 8
    header = {"__metadata__": metadata, "tokens": {"dtype": "I32", "shape": [frames, grid, grid], "data_offsets": [0, frames * grid * grid * 4]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    sparse = tmp_path / "sparse.tokens.safetensors"
    with open(sparse, "wb") as file:
        file.write(len(text).to_bytes(8, "little") + text)
        file.truncate(8 + len(text) + frames * grid * grid * 4)
    with address_space_limit(1 * 2**30):
        result = cli("decode", sparse, "-w", weights_dir, "-o", tmp_path / "out.mkv", "--device", "cpu")
    one_error_line(result, 3, "sparse.tokens.safetensors", "10,000,000 frames", "1,000,000")


def test_a_clips_file_over_the_pixel_budget_is_refused_from_its_header(cli, tmp_path, monkeypatch):
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 2, "--frames", 4, "--seed", 0, "--size", 32).code == 0
    monkeypatch.setenv("MASKFLOW_MAX_INPUT_PIXELS", "1000")
    result = cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, "--steps", 1, "--device", "cpu")
    one_error_line(result, 3, "mm.safetensors", "2 clips of 4 frames of 32x32", "1,000", "MASKFLOW_MAX_INPUT_PIXELS")
    assert not (tmp_path / "tok").exists()


def test_training_a_model_over_the_limits_is_refused_before_the_data_is_read(cli, weights_dir, clip_mkv, tmp_path, monkeypatch):
    monkeypatch.setenv("MASKFLOW_MAX_CALL_FLOPS", "1M")
    result = cli("train", clip_mkv, "--tokenizer", weights_dir, "-o", tmp_path / "run", "--window", 4, "--preset", "tiny",
                 "--steps", 1, "--device", "cpu")
    one_error_line(result, 2, "--window: 4", "operations per network call on a window of 4 frames of 8x8 tokens", "MASKFLOW_MAX_CALL_FLOPS")
    assert not (tmp_path / "run").exists()


def test_a_sparse_weights_file_of_a_terabyte_is_refused_before_it_is_mapped(cli, clip_mkv, tmp_path):
    """A valid header declaring 2**40 bytes of tensors, the rest a hole: refused by size, one line (was
    an internal error from the allocator when the file was mapped)."""
    header = {"__metadata__": {"maskflow": json.dumps({"format_version": 1, "components": {"tokenizer": {"config": {}, "info": {}}}})},
              "tokenizer.x": {"dtype": "F32", "shape": [2**38], "data_offsets": [0, 2**40]}}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    huge = tmp_path / "huge.safetensors"
    with open(huge, "wb") as file:
        file.write(len(text).to_bytes(8, "little") + text)
        file.truncate(8 + len(text) + 2**40)
    result = cli("encode", clip_mkv, "-w", huge, "-o", tmp_path / "x.tokens.safetensors", "--device", "cpu")
    one_error_line(result, 4, "bytes of parameters", "MASKFLOW_MAX_MODEL_BYTES")
