"""The fast paths give the reference results: the transformer's logits at wanted positions only, the
block-causal model's context cache (down to the sampled tokens), the compiled network, loading
weights without random initialisation."""

import dataclasses
import json

import pytest
import torch

from maskflow_cli.engine import SamplingOptions, roll_out
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.planner import plan_extend, plan_generate, plan_infill, window_settings
from maskflow_cli.runtime import ModelDenoiser
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_component, save_weights

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
    """Tokens [2,6,8,8] with clean context frames, times [2,6] (1 on context) and wanted positions
    (about a third of the others)."""
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 16, (2, 6, 8, 8), generator=g)
    wanted = (torch.rand(2, 6, 8, 8, generator=g) < 0.3) & ~CONTEXT[None, :, None, None]
    tokens = tokens.masked_fill(wanted, 16)
    times = torch.where(CONTEXT, 1.0, torch.rand(2, 6, generator=g) * 0.9)
    return tokens, times, wanted


@pytest.mark.parametrize("attention", ["full", "factorized"])
@pytest.mark.parametrize("context_attention", ["bidirectional", "block_causal"])
def test_logits_at_equals_the_forward_pass_at_those_positions(attention, context_attention):
    config = dataclasses.replace(TINY_TRANSFORMER, attention=attention, context_attention=context_attention, code_digits=(4, 4))
    model = lively(config)
    tokens, times, wanted = window()
    context = CONTEXT.expand(2, -1)
    with torch.no_grad():
        reference = model(tokens, times, context)[wanted]  # [M,V]
        assert torch.allclose(model.logits_at(tokens, times, wanted, context), reference, atol=1e-5)


@pytest.mark.parametrize("attention", ["full", "factorized"])
def test_block_causal_context_ignores_the_frames_to_generate(attention):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, attention=attention, context_attention="block_causal"))
    tokens, times, _ = window()
    other = tokens.clone()
    other[:, ~CONTEXT] = torch.randint(0, 17, (2, 3, 8, 8))
    context = CONTEXT.expand(2, -1)
    with torch.no_grad():
        a, b = model(tokens, times, context), model(other, times, context)
    assert torch.equal(a[:, CONTEXT], b[:, CONTEXT])  # context logits do not see the other frames
    assert not torch.allclose(a[:, ~CONTEXT], b[:, ~CONTEXT])
    with torch.no_grad():  # the default context is the frames at time 1, as in training
        assert torch.equal(model(tokens, times), a)
    bidirectional = lively(TINY_TRANSFORMER)
    with torch.no_grad():
        assert not torch.allclose(bidirectional(tokens, times)[:, CONTEXT], bidirectional(other, times)[:, CONTEXT])


@pytest.mark.parametrize("attention", ["full", "factorized"])
def test_context_cache_gives_the_uncached_logits(attention):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, attention=attention, context_attention="block_causal"))
    tokens, times, wanted = window()
    with torch.no_grad():
        reference = model(tokens, times, CONTEXT.expand(2, -1))[wanted]
        cache = model.encode_context(tokens, times, CONTEXT.nonzero()[:, 0])
        for step in range(2):  # the cache serves every later call with the same context
            assert torch.allclose(model.logits_at(tokens, times, wanted, cache=cache), reference, atol=1e-5)
            tokens = tokens.masked_fill(wanted & (torch.rand(wanted.shape) < 0.5), 3)
            reference = model(tokens, times, CONTEXT.expand(2, -1))[wanted]


@pytest.mark.parametrize("attention", ["full", "factorized"])
def test_frozen_context_of_a_bidirectional_model_is_exact_at_first_and_then_approximate(attention):
    """A bidirectional model's cache holds the context's keys and values of the state it was made
    from: the same logits for that state, close but no longer equal ones once other tokens change
    (with two blocks that mix frames, so that the second one's context depends on the other frames)."""
    model = lively(dataclasses.replace(TINY_TRANSFORMER, attention=attention, depth=2 if attention == "full" else 4))
    tokens, times, wanted = window()
    with torch.no_grad():
        logits, cache = model.logits_and_context(tokens, times, wanted, CONTEXT.nonzero()[:, 0])
        assert torch.equal(logits, model.logits_at(tokens, times, wanted))  # the uncached pass itself
        assert torch.allclose(model.logits_at(tokens, times, wanted, cache=cache), model(tokens, times)[wanted], atol=1e-5)
        later = tokens.masked_fill(~CONTEXT[None, :, None, None] & ~wanted, 7)  # other frames' tokens change
        frozen, exact = model.logits_at(later, times, wanted, cache=cache), model(later, times)[wanted]
        assert not torch.allclose(frozen, exact, atol=1e-5)
        assert (frozen.softmax(-1) - exact.softmax(-1)).abs().max() < 0.2


def test_frozen_context_costs_one_pass_at_a_windows_first_call():
    """The first call of a window runs the network once (logits and cache from the same pass), the
    later calls on the frames outside the context only."""
    model = lively(TINY_TRANSFORMER)
    tokens, times, wanted = window()
    seen = []  # the window positions of every network input
    embed = model._embed
    model._embed = lambda t, s, p: seen.append(p.tolist()) or embed(t, s, p)
    denoiser = ModelDenoiser(model, context_cache="frozen")
    with torch.no_grad():
        first = denoiser(tokens, times, wanted, CONTEXT)
        denoiser(tokens, times, wanted, CONTEXT)
    assert seen == [list(range(6)), (~CONTEXT).nonzero()[:, 0].tolist()]
    with torch.no_grad():
        assert torch.equal(first, model.logits_at(tokens, times, wanted))


def test_context_cache_modes_decide_which_models_reuse_their_context():
    bidirectional, block_causal = lively(TINY_TRANSFORMER), lively(dataclasses.replace(TINY_TRANSFORMER, context_attention="block_causal"))
    reuses = {(name, mode): ModelDenoiser(m, context_cache=mode).cache_context
              for name, m in (("bidirectional", bidirectional), ("block_causal", block_causal)) for mode in ("exact", "frozen", "off")}
    assert [k for k, v in reuses.items() if v] == [("bidirectional", "frozen"), ("block_causal", "exact"), ("block_causal", "frozen")]
    with pytest.raises(InvalidArgumentError, match="context_cache"):
        ModelDenoiser(bidirectional, context_cache="always")
    with pytest.raises(ValueError, match="context_attention"):
        dataclasses.replace(TINY_TRANSFORMER, context_attention="causal")


def test_frozen_context_is_made_anew_for_every_window():
    """Two windows with the same context tokens but other frames still get their own cache."""
    model = lively(TINY_TRANSFORMER)
    denoiser = ModelDenoiser(model, context_cache="frozen")
    tokens, times, wanted = window()
    made = []
    original = model.logits_and_context
    model.logits_and_context = lambda *a: made.append(1) or original(*a)
    with torch.no_grad():
        for _ in range(2):
            denoiser.start_window()
            denoiser(tokens, times, wanted, CONTEXT)
            denoiser(tokens, times, wanted, CONTEXT)
    assert len(made) == 2 and denoiser.calls == 4


def test_weights_record_the_context_attention_and_old_configs_load_unchanged(tmp_path):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, context_attention="block_causal"))
    save_weights(tmp_path / "bc.safetensors", {"transformer": model})
    component = inspect_weights(tmp_path / "bc.safetensors")["transformer"]
    assert component.config.block_causal
    loaded = load_component(component)
    tokens, times, _ = window()
    with torch.no_grad():
        assert torch.equal(loaded(tokens, times), model(tokens, times))
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
        assert torch.equal(load_component(component)(tokens, times), old(tokens, times))


def test_loading_builds_no_random_weights(tmp_path, monkeypatch):
    model = lively(dataclasses.replace(TINY_TRANSFORMER, code_digits=(4, 4)))
    save_weights(tmp_path / "t.safetensors", {"transformer": model})
    component = inspect_weights(tmp_path / "t.safetensors")["transformer"]
    drawn = []
    monkeypatch.setattr(torch.nn.init, "normal_", lambda tensor, *a, **k: drawn.append(tensor) or tensor)
    loaded = load_component(component)
    assert drawn == []  # nothing was drawn only to be overwritten
    assert not any(t.is_meta for t in [*loaded.parameters(), *loaded.buffers()])
    tokens, times, _ = window()
    with torch.no_grad():
        assert torch.equal(loaded(tokens, times), model(tokens, times))


def rolled_out(model, plan, options, context_tokens, **denoiser_options) -> tuple[torch.Tensor, int]:
    """Every kept frame's tokens of a plan run through the engine, and the network calls made."""
    denoiser = ModelDenoiser(model, **denoiser_options)
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
        uncached, uncached_calls = rolled_out(model, plan, options, context, context_cache="off")
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


def test_context_cache_option_reaches_the_denoiser(cli, weights_dir, tmp_path, monkeypatch):
    made = []
    original = MaskFlowTransformer.logits_and_context
    monkeypatch.setattr(MaskFlowTransformer, "logits_and_context", lambda self, *a: made.append(1) or original(self, *a))
    args = ("generate", "-w", weights_dir, "--frames", 10, "--steps", 3, "--seed", 0)
    assert cli(*args, "-o", tmp_path / "a.mkv").code == 0 and made == []  # exact: a bidirectional model runs uncached
    out = cli(*args, "-o", tmp_path / "b.mkv", "--context-cache", "frozen")
    assert out.code == 0, out.err
    assert made  # the windows with context reused their context's keys and values
    bad = cli(*args, "-o", tmp_path / "c.mkv", "--context-cache", "sometimes")
    assert bad.code != 0 and "--context-cache" in bad.err and len(bad.err.strip().splitlines()) == 1
    assert not (tmp_path / "c.mkv").exists()
