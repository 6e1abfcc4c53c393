"""--precision auto: fp32 with TF32 matmuls for small models on CUDA, bf16 autocast for large ones;
on a CPU bf16 only where it runs fast. Checked with the device facts patched (no GPU needed)."""

import pytest
import torch

from maskflow_cli import runtime
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.runtime import SMALL_MODEL_PARAMETERS, autocast_dtype, parameter_count

CUDA = torch.device("cuda")


@pytest.fixture
def tf32_restored():
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def test_auto_on_cuda_runs_small_models_in_fp32_with_tf32(monkeypatch, tf32_restored):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert autocast_dtype(CUDA, "auto", 10_264_808) is None
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32


def test_auto_on_cuda_keeps_bf16_for_large_or_unknown_models(monkeypatch, tf32_restored):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert autocast_dtype(CUDA, "auto", SMALL_MODEL_PARAMETERS) is torch.bfloat16
    assert autocast_dtype(CUDA, "auto") is torch.bfloat16
    assert not torch.backends.cuda.matmul.allow_tf32
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert autocast_dtype(CUDA, "auto", 10 * SMALL_MODEL_PARAMETERS) is None


def test_explicit_precisions_and_the_cpu(monkeypatch, tf32_restored):
    assert autocast_dtype(CUDA, "fp32", 1000) is None and not torch.backends.cuda.matmul.allow_tf32
    assert autocast_dtype(CUDA, "bf16", 1000) is torch.bfloat16
    cpu = torch.device("cpu")
    for fast, expected in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(runtime, "_cpu_has_fast_bf16", lambda: fast)
        assert autocast_dtype(cpu, "auto", 1000) is expected
    with pytest.raises(InvalidArgumentError, match="precision"):
        autocast_dtype(cpu, "fp16")


def test_parameter_count_adds_modules():
    assert parameter_count(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1, bias=False)) == 8 + 2
