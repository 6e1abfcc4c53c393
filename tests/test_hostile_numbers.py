"""Numbers that are valid syntax but no usable value: frame rates no container can hold (from an
input video, a tokens file or --fps), tokens stored as floats, frame ranges beyond any input, weights
that are finite as stored but not as float32, a tokenizer whose activations overflow. Each ends in
one line naming its real source and the right exit code, or in a correct result.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import moving_square_frames, one_error_line, tiny_models
from test_untrusted_weights import refused, tensors_and_manifest, write

FAST = ["--steps", "1", "--device", "cpu"]


def _y4m(path: Path, rate: str, frames: int = 3) -> Path:
    """A gray 32x32 y4m file declaring the frame rate ``rate`` ("N:D")."""
    body = b"".join(b"FRAME\n" + frame.tobytes() for frame in moving_square_frames(frames)[..., 0])
    path.write_bytes(f"YUV4MPEG2 W32 H32 F{rate} Ip A1:1 Cmono\n".encode() + body)
    return path


@pytest.mark.parametrize("command", ["encode", "extend"])
def test_an_input_frame_rate_no_container_holds_is_named_as_the_input_s(cli, weights_dir, tmp_path, command):
    source = _y4m(tmp_path / "fast.y4m", "2147483647:1")
    out = tmp_path / ("out.tokens.safetensors" if command == "encode" else "out.mkv")
    extra = ["--device", "cpu"] if command == "encode" else ["--frames", 2, *FAST]
    line = one_error_line(cli(command, source, "-w", weights_dir, "-o", out, *extra), 3, "fast.y4m", "frame rate 2.14748e+09")
    assert "None" not in line and "invalid value for --fps" not in line
    assert not out.exists()


def test_an_input_frame_rate_with_a_huge_denominator_is_reduced(cli, weights_dir, tmp_path):
    source = _y4m(tmp_path / "slow.y4m", "10000001:10000000000")
    out = tmp_path / "out.mp4"
    result = cli("extend", source, "-w", weights_dir, "-o", out, "--frames", 2, *FAST, "--json")
    assert result.code == 0, result.err
    assert 0.001 <= json.loads(result.out)["fps"] <= 1000
    tokens = tmp_path / "slow.tokens.safetensors"
    assert cli("encode", source, "-w", weights_dir, "-o", tokens, "--device", "cpu").code == 0
    assert cli("decode", tokens, "-w", weights_dir, "-o", tmp_path / "back.mkv", "--device", "cpu").code == 0  # what encode writes, decode reads


def _forged_tokens(tokens_file: Path, folder: Path, *, fps=None, dtype=None) -> Path:
    with safe_open(str(tokens_file), framework="pt") as handle:
        meta = json.loads(handle.metadata()["maskflow_tokens"])
        tokens = handle.get_tensor("tokens")
    meta["fps"] = meta["fps"] if fps is None else fps
    forged = folder / "forged.tokens.safetensors"
    save_file({"tokens": tokens if dtype is None else tokens.to(dtype) + 0.7}, str(forged), metadata={"maskflow_tokens": json.dumps(meta)})
    return forged


@pytest.fixture(scope="module")
def tokens_file(weights_dir, clip_mkv, tmp_path_factory) -> Path:
    from maskflow_cli.cli import main

    path = tmp_path_factory.mktemp("tokens") / "clip.tokens.safetensors"
    assert main(["encode", str(clip_mkv), "-w", str(weights_dir), "-o", str(path), "--device", "cpu", "--quiet"]) == 0
    return path


@pytest.mark.parametrize("fps, expected", [("0.0010000001", 0.001), ("99999999999999999999/99999999999999999", None)])
def test_tokens_file_rates_are_reduced_or_refused(cli, weights_dir, tokens_file, tmp_path, fps, expected):
    forged = _forged_tokens(tokens_file, tmp_path, fps=fps)
    out = tmp_path / "out.mkv"
    result = cli("decode", forged, "-w", weights_dir, "-o", out, "--device", "cpu", "--json")
    if expected is None:
        one_error_line(result, 3, "forged.tokens.safetensors", "frame rate")
        assert not out.exists()
    else:
        assert result.code == 0, result.err
        assert json.loads(result.out)["fps"] == expected


def test_a_frame_rate_with_an_exponent_is_refused_without_expanding_it(cli, weights_dir, tokens_file, tmp_path):
    forged = _forged_tokens(tokens_file, tmp_path, fps="1e999999999")  # 10**999999999 would take minutes and gigabytes
    one_error_line(cli("decode", forged, "-w", weights_dir, "-o", tmp_path / "out.mkv", "--device", "cpu"), 3, "frame rate", "1e999999999")


def test_tokens_stored_as_floats_are_refused(cli, weights_dir, tokens_file, tmp_path):
    forged = _forged_tokens(tokens_file, tmp_path, dtype=torch.float32)
    one_error_line(cli("decode", forged, "-w", weights_dir, "-o", tmp_path / "out.mkv", "--device", "cpu"), 3, "stored as float32")


def test_a_huge_range_is_out_of_bounds_not_reversed(cli, weights_dir, clip_mkv, tmp_path):
    result = cli("infill", clip_mkv, "99999999999999999999999:999999999999999999999999", "-w", weights_dir, "-o", tmp_path / "o.mkv", *FAST)
    line = one_error_line(result, 2, "beyond the end: the input has 20 frames")
    assert "reversed" not in line


def test_weights_finite_as_float64_but_not_as_float32_are_refused(tmp_path):
    tensors, manifest = tensors_and_manifest()
    key = next(k for k in tensors if k.startswith("transformer.") and tensors[k].numel() > 1)
    tensors[key] = tensors[key].double()
    tensors[key].view(-1)[0] = 1e300
    refused(write(tmp_path / "huge.safetensors", tensors, manifest), "NaN or infinite", key.removeprefix("transformer."))


def test_a_tokenizer_that_overflows_still_returns_ids_in_the_vocabulary():
    tokenizer, _ = tiny_models()
    with torch.no_grad():
        for tensor in tokenizer.state_dict().values():
            if tensor.is_floating_point():
                tensor.mul_(1e30)  # finite, loads, but its activations overflow to inf and NaN
    tokens = tokenizer.encode(torch.from_numpy(moving_square_frames(2)))
    assert int(tokens.min()) >= 0 and int(tokens.max()) < tokenizer.config.vocab_size
