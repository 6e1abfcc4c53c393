"""The transformer's size presets, the paper's S/B/L/XL among them: each builds on the meta device with
exactly the parameter count of the torch-free formula that ``train --help`` quotes; activation
checkpointing changes no gradient and keeps fewer activations; the smallest paper preset trains."""

from __future__ import annotations

import json

import pytest
import torch

from maskflow_cli.clips import save_clips
from maskflow_cli.model_configs import (PAPER_PRESETS, REFERENCE_GRID, TRANSFORMER_PRESETS, TransformerConfig, preset_parameters,
                                        transformer_parameters)
from maskflow_cli.transformer import MaskFlowTransformer

pytestmark = pytest.mark.usefixtures("one_thread")

LATTE_SHAPES = {"s": (12, 384, 6), "b": (12, 768, 12), "l": (24, 1024, 16), "xl": (28, 1152, 16)}  # depth, width, heads


def _built_parameters(config: TransformerConfig) -> int:
    with torch.device("meta"):
        model = MaskFlowTransformer(config)
    assert all(p.is_meta for p in model.parameters())
    return sum(p.numel() for p in model.parameters())


def test_the_paper_presets_have_latte_shapes():
    assert set(PAPER_PRESETS) <= set(TRANSFORMER_PRESETS)
    for name, (depth, dim, heads) in LATTE_SHAPES.items():
        assert TRANSFORMER_PRESETS[name] == {"depth": depth, "dim": dim, "heads": heads}


@pytest.mark.parametrize("name", list(TRANSFORMER_PRESETS))
def test_every_preset_builds_on_meta_with_the_formulas_parameter_count(name):
    config = TransformerConfig(**REFERENCE_GRID, **TRANSFORMER_PRESETS[name])
    assert _built_parameters(config) == transformer_parameters(config) == preset_parameters(name)


@pytest.mark.parametrize("options", [
    {"time_conditioning": False}, {"code_features": 48}, {"code_digits": (8, 5, 5, 5)}, {"mlp_ratio": 2.5},
    {"attention": "factorized", "frames": 5, "grid_height": 4, "grid_width": 6}])
def test_the_formula_counts_every_optional_part(options):
    config = TransformerConfig(**{**REFERENCE_GRID, **TRANSFORMER_PRESETS["small"], **options})
    assert _built_parameters(config) == transformer_parameters(config)


def test_the_help_lists_every_preset_with_its_size(cli):
    text = " ".join(cli("train", "--help").out.replace("│", " ").split())
    for name in TRANSFORMER_PRESETS:
        assert f"{name} {preset_parameters(name) / 1e6:.1f}M" in text
    assert "xl 676.0M (depth 28, width 1152, 16 heads)" in text


def _step(model: MaskFlowTransformer, tokens: torch.Tensor, times: torch.Tensor) -> tuple[float, list[torch.Tensor], int]:
    """Loss, gradients and the bytes autograd saved for the backward pass (each storage once)."""
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    model.zero_grad()
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = model(tokens, times).logsumexp(-1).mean()
    loss.backward()
    return loss.item(), [p.grad.clone() for p in model.parameters()], sum(saved.values())


def test_checkpointing_gives_the_same_gradients_and_keeps_fewer_activations():
    torch.manual_seed(0)
    config = TransformerConfig(vocab_size=16, frames=4, grid_height=4, grid_width=4, dim=32, depth=4, heads=2)
    model = MaskFlowTransformer(config).train()
    tokens, times = torch.randint(0, 17, (2, 4, 4, 4)), torch.rand(2, 4)
    loss, grads, kept = _step(model, tokens, times)
    model.checkpoint_activations = True
    loss_c, grads_c, kept_c = _step(model, tokens, times)
    assert loss_c == loss
    for g, g_c in zip(grads, grads_c):
        torch.testing.assert_close(g_c, g, rtol=0, atol=1e-7)
    assert kept_c < kept / 2
    with torch.no_grad():  # no gradients, or eval mode: the plain pass
        assert torch.equal(model(tokens, times), model.eval()(tokens, times))


def test_the_smallest_paper_preset_trains_on_the_cpu(cli, weights_dir, tmp_path):
    """The S preset (about 32M parameters on the tiny tokenizer's 16 codes), two steps of one 2-frame clip."""
    data = tmp_path / "clips.safetensors"
    save_clips(data, torch.randint(0, 256, (2, 3, 32, 32, 1), dtype=torch.uint8), {"dataset": "noise"})
    result = cli("train", data, "--tokenizer", weights_dir, "-o", tmp_path / "s", "--preset", "s", "--window", 2, "--steps", 2,
                 "--batch-size", 1, "--warmup", 0, "--device", "cpu", "--precision", "fp32", "--checkpoint-activations", "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["steps"] == 2 and summary["final_loss"] > 0
    metrics = [json.loads(line) for line in (tmp_path / "s" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["step"] == 2 and all(r["grad_norm"] > 0 for r in metrics)
