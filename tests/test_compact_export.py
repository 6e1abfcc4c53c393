"""train --export-dtype bf16: the transformer stored in half the bytes, loaded back as float32."""

import torch
from safetensors.torch import load_file

from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_models


def test_a_bf16_export_is_the_fp32_export_rounded_and_loads_as_fp32(cli, tmp_path):
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 2, "--frames", 4, "--seed", 0, "--size", 32).code == 0
    common = ["--batch-size", 2, "--steps", 2, "--warmup", 1, "--device", "cpu", "--precision", "fp32", "--json"]
    assert cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, *common).code == 0
    for dtype in ("fp32", "bf16"):
        run = cli("train", data, "-t", tmp_path / "tok", "-o", tmp_path / dtype, "--preset", "tiny", "--window", 4,
                  "--export-dtype", dtype, *common)
        assert run.code == 0, run.err
    full, half = (tmp_path / d / "transformer.safetensors" for d in ("fp32", "bf16"))
    assert half.stat().st_size < 0.55 * full.stat().st_size
    a, b = load_file(full), load_file(half)
    assert all(b[k].dtype == torch.bfloat16 and torch.equal(b[k], a[k].to(torch.bfloat16)) for k in a)
    assert inspect_weights(half)["transformer"].info["storage"] == "bfloat16"
    assert "storage" not in inspect_weights(full)["transformer"].info
    _, model, _ = load_models(tmp_path / "bf16")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    bad = cli("train", data, "-o", tmp_path / "x", "--export-dtype", "fp8")
    assert bad.code == 2 and "--export-dtype" in bad.err
