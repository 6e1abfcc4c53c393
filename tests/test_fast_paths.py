"""The fast paths give the reference results: the transformer's logits at wanted positions only, the
block-causal model's context cache (down to the sampled tokens), the compiled network, loading
weights without random initialisation."""

import dataclasses
import json

import pytest
import torch

from maskflow_cli.engine import SamplingOptions, roll_out
from maskflow_cli.planner import plan_extend, plan_generate, plan_infill, window_settings
from maskflow_cli.runtime import ModelDenoiser
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weights import inspect_weights, load_component, save_weights

from conftest import TINY_TRANSFORMER

CONTEXT = torch.tensor([True, True, False, False, True, False])  # frames 0, 1 and 4 given; 2, 3, 5 to generate


def lively(config, seed: int = 0) -> MaskFlowTransformer:
    """A tiny model whose blocks are not the identity (adaLN-Zero starts them so)."""
    torch.manual_seed(seed)
    model = MaskFlowTransformer(config).eval()
    for block in model.blocks:
        torch.nn.init.normal_(block.modulation.weight, std=0.1)
        torch.nn.init.normal_(block.modulation.bias, std=0.3)
    return model


def window(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens [2,6,8,8] with clean context frames, levels [2,6] (1 on context) and wanted positions
    (about a third of the others)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 16, (2, 6, 8, 8), generator=g)
    wanted = (torch.rand(2, 6, 8, 8, generator=g) < 0.3) & ~CONTEXT[None, :, None, None]
    tokens = tokens.masked_fill(wanted, 16)
    levels = torch.where(CONTEXT, 1.0, torch.rand(2, 6, generator=g) * 0.9)
    return tokens, levels, wanted


@pytest.mark.parametrize("attention", ["full", "factorized"])
@pytest.mark.parametrize("context_attention", ["bidirectional", "block_causal"])
def test_logits_at_equals_the_forward_pass_at_those_positions(attention, context_attention):
    config = dataclasses.replace(TINY_TRANSFORMER, attention=attention, context_attention=context_attention, code_digits=(4, 4))
    model = lively(config)
    tokens, levels, wanted = window()
    context = CONTEXT.expand(2, -1)
    with torch.no_grad():
        reference = model(tokens, levels, context)[wanted]  # [M,V]
        assert torch.allclose(model.logits_at(tokens, levels, wanted, context), reference, atol=1e-5)


@pytest.mark.parametrize("attention", ["full", "factorized"])
def test_block_causal_context_ignores_the_frames_to_generate(attention):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, attention=attention, context_attention="block_causal"))
    tokens, levels, _ = window()
    other = tokens.clone()
    other[:, ~CONTEXT] = torch.randint(0, 17, (2, 3, 8, 8))
    context = CONTEXT.expand(2, -1)
    with torch.no_grad():
        a, b = model(tokens, levels, context), model(other, levels, context)
    assert torch.equal(a[:, CONTEXT], b[:, CONTEXT])  # context logits do not see the other frames
    assert not torch.allclose(a[:, ~CONTEXT], b[:, ~CONTEXT])
    with torch.no_grad():  # the default context is the frames at level 1, as in training
        assert torch.equal(model(tokens, levels), a)
    bidirectional = lively(TINY_TRANSFORMER)
    with torch.no_grad():
        assert not torch.allclose(bidirectional(tokens, levels)[:, CONTEXT], bidirectional(other, levels)[:, CONTEXT])


@pytest.mark.parametrize("attention", ["full", "factorized"])
def test_context_cache_gives_the_uncached_logits(attention):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, attention=attention, context_attention="block_causal"))
    tokens, levels, wanted = window()
    with torch.no_grad():
        reference = model(tokens, levels, CONTEXT.expand(2, -1))[wanted]
        cache = model.encode_context(tokens, levels, CONTEXT.nonzero()[:, 0])
        for step in range(2):  # the cache serves every later call with the same context
            assert torch.allclose(model.logits_at(tokens, levels, wanted, cache=cache), reference, atol=1e-5)
            tokens = tokens.masked_fill(wanted & (torch.rand(wanted.shape) < 0.5), 3)
            reference = model(tokens, levels, CONTEXT.expand(2, -1))[wanted]


def test_only_a_block_causal_model_caches_its_context():
    model = lively(TINY_TRANSFORMER)
    tokens, levels, _ = window()
    with pytest.raises(AssertionError):
        model.encode_context(tokens, levels, CONTEXT.nonzero()[:, 0])
    with pytest.raises(ValueError, match="context_attention"):
        dataclasses.replace(TINY_TRANSFORMER, context_attention="causal")


def test_weights_record_the_context_attention_and_old_configs_load_unchanged(tmp_path):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, context_attention="block_causal"))
    save_weights(tmp_path / "bc.safetensors", {"transformer": model})
    component = inspect_weights(tmp_path / "bc.safetensors")["transformer"]
    assert component.config.block_causal
    loaded = load_component(component)
    tokens, levels, _ = window()
    with torch.no_grad():
        assert torch.equal(loaded(tokens, levels), model(tokens, levels))
    # weights written before the option existed have no such field: they load as bidirectional
    old = lively(TINY_TRANSFORMER)
    save_weights(tmp_path / "old.safetensors", {"transformer": old})
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tmp_path / "old.safetensors"), framework="pt") as handle:
        tensors = {k: handle.get_tensor(k) for k in handle.keys()}
        meta = json.loads(handle.metadata()["maskflow"])
    del meta["components"]["transformer"]["config"]["context_attention"]
    save_file(tensors, str(tmp_path / "old.safetensors"), metadata={"maskflow": json.dumps(meta)})
    component = inspect_weights(tmp_path / "old.safetensors")["transformer"]
    assert component.config.context_attention == "bidirectional"
    with torch.no_grad():
        assert torch.equal(load_component(component)(tokens, levels), old(tokens, levels))


def test_loading_builds_no_random_weights(tmp_path, monkeypatch):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, code_digits=(4, 4)))
    save_weights(tmp_path / "t.safetensors", {"transformer": model})
    component = inspect_weights(tmp_path / "t.safetensors")["transformer"]
    drawn = []
    monkeypatch.setattr(torch.nn.init, "normal_", lambda tensor, *a, **k: drawn.append(tensor) or tensor)
    loaded = load_component(component)
    assert drawn == []  # nothing was drawn only to be overwritten
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    tokens, levels, _ = window()
    with torch.no_grad():
        assert torch.equal(loaded(tokens, levels), model(tokens, levels))


def rolled_out(model, plan, options, context_tokens, **denoiser_options) -> tuple[torch.Tensor, int]:
    """Every kept frame's tokens of a plan run through the engine, and the network calls made."""
    denoiser = ModelDenoiser(model, None, **denoiser_options)
    kept = [k for _, k in roll_out(plan, denoiser, options, 3, context_tokens, batch=2)]
    return torch.cat(kept, dim=1), denoiser.calls


@pytest.mark.parametrize("sampler, steps", [("mgm", 5), ("fm", 6)])
@pytest.mark.parametrize("attention", ["full", "factorized"])
def test_cached_context_sampler_gives_exactly_the_uncached_tokens(sampler, steps, attention):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, attention=attention, context_attention="block_causal"))
    settings = window_settings(model.config.frames, "ar", 3, 2)  # windows of 6 frames: 3 context, 2 kept
    given = torch.randint(0, 16, (2, 9, 8, 8), generator=torch.Generator().manual_seed(4))
    options = SamplingOptions(sampler, steps, seed=3)
    for plan in (plan_extend(4, 7, settings), plan_infill(9, [(3, 6)], settings)):  # context before; on both sides
        context = lambda frames: given[:, frames]  # noqa: E731
        cached, calls = rolled_out(model, plan, options, context)
        uncached, uncached_calls = rolled_out(model, plan, options, context, cache_context=False)
        assert torch.equal(cached, uncached) and calls == uncached_calls


def test_compiled_network_gives_the_eager_tokens():
    """The torch.compile path (the whole window through the network, wanted logits picked after)
    samples the same tokens; the "eager" backend runs the same graph capture without a C compiler."""
    torch._dynamo.reset()
    model = lively(TINY_TRANSFORMER)
    settings = window_settings(model.config.frames, "ar", 3, 3)
    plan = plan_generate(9, settings)
    options = SamplingOptions("mgm", 4, seed=1)
    eager, _ = rolled_out(model, plan, options, None)
    compiled, _ = rolled_out(model, plan, options, None, compile=True, compile_backend="eager")
    assert torch.equal(eager, compiled)


def test_compile_option_reaches_the_network(cli, weights_dir, tmp_path, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda model, **options: compiled.append(options) or model)
    out = cli("generate", "-w", weights_dir, "-o", tmp_path / "a.mkv", "--frames", 4, "--steps", 2, "--compile")
    assert out.code == 0, out.err
    assert compiled and compiled[0]["dynamic"] is False and compiled[0]["mode"] is None  # CPU: the default mode
    assert cli("generate", "-w", weights_dir, "-o", tmp_path / "b.mkv", "--frames", 4, "--steps", 2).code == 0
    assert len(compiled) == 1
