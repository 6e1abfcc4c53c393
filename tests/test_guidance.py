"""Classifier-free guidance on the context: w = 0 changes nothing, the guided logits are the formula
over separate cond and uncond calls under every context cache, the uncond pass sees no context
token, windows without context make no extra pass, and the NFE counts every network pass."""

import dataclasses
import json

import pytest
import torch

from maskflow_cli import evaluation
from maskflow_cli.defaults import DEFAULT_GUIDANCE
from maskflow_cli.engine import SamplingOptions, roll_out
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.guidance import ANCHOR_LIMIT, GuidanceAnchor, GuidedDenoiser, annealed_weights
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, plan_generate, window_settings
from maskflow_cli.runtime import ModelDenoiser
from maskflow_cli.transformer import ContextCache, MaskFlowTransformer

from conftest import TINY_TRANSFORMER, moving_square_frames

pytestmark = pytest.mark.usefixtures("one_thread")

CONTEXT = torch.tensor([True, True, False, False, False, True])  # context on both sides, as in an infill window
V = TINY_TRANSFORMER.vocab_size  # the mask id


def lively(context_attention: str = "bidirectional") -> MaskFlowTransformer:
    """A tiny model whose blocks are not the identity (adaLN-Zero starts them so)."""
    torch.manual_seed(0)
    model = MaskFlowTransformer(dataclasses.replace(TINY_TRANSFORMER, context_attention=context_attention)).eval()
    for block in model.blocks:
        torch.nn.init.normal_(block.modulation.weight, std=0.1)
        torch.nn.init.normal_(block.modulation.bias, std=0.3)
    return model


def window() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens [2,6,8,8] (context frames clean, the others partly masked), times [2,6], wanted positions."""
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, V, (2, 6, 8, 8), generator=g)
    wanted = (torch.rand(2, 6, 8, 8, generator=g) < 0.6) & ~CONTEXT[None, :, None, None]
    times = torch.where(CONTEXT, 1.0, 0.3).expand(2, -1).contiguous()
    return tokens.masked_fill(wanted, V), times, wanted


def dropped_reference(model: MaskFlowTransformer, tokens, times, wanted) -> torch.Tensor:
    """The logits of the non-context frames run alone at their window positions, by a copy of the model
    whose first time positions are those frames' positions."""
    rest = (~CONTEXT).nonzero()[:, 0]
    shifted = MaskFlowTransformer(model.config).eval()
    shifted.load_state_dict(model.state_dict())
    with torch.no_grad():
        shifted.time_pos[: len(rest)] = model.time_pos[rest]
        return shifted.logits_at(tokens[:, rest], times[:, rest], wanted[:, rest], torch.zeros(2, len(rest), dtype=torch.bool))


@pytest.mark.parametrize("uncond", ["masked", "dropped"])
@pytest.mark.parametrize("context_attention, cache", [("bidirectional", "exact"), ("bidirectional", "frozen"), ("bidirectional", "off"),
                                                      ("block_causal", "exact"), ("block_causal", "off")])
def test_guided_logits_are_the_formula_over_separate_cond_and_uncond_calls(uncond, context_attention, cache):
    """Over two steps of a window, so that a context cache made at the first one serves the second."""
    model = lively(context_attention)
    tokens, times, wanted = window()
    guided = GuidedDenoiser(ModelDenoiser(model, context_cache=cache), [0.7, 0.3], uncond)
    cond_only = ModelDenoiser(model, context_cache=cache)  # the cond call as the denoiser makes it
    plain = ModelDenoiser(model, context_cache="off")
    for w in (0.7, 0.3):
        with torch.inference_mode():
            logits = guided(tokens, times, wanted, CONTEXT)
            cond = cond_only(tokens, times, wanted, CONTEXT)
            if uncond == "masked":
                blank = tokens.masked_fill(CONTEXT[None, :, None, None], V)
                without = plain(blank, times.masked_fill(CONTEXT, 0.0), wanted, torch.zeros(6, dtype=torch.bool))
            else:
                without = dropped_reference(model, tokens, times, wanted)
        assert not torch.allclose(cond, without, atol=1e-3)  # the context matters to this model
        assert torch.allclose(logits, cond + w * (cond - without), atol=1e-4)
        tokens = tokens.masked_fill(wanted & (torch.rand(wanted.shape, generator=torch.Generator().manual_seed(2)) < 0.5), 3)
        times, wanted = torch.where(CONTEXT, 1.0, 0.6).expand(2, -1), tokens == V
    assert guided.calls == 4 and guided.uncond_passes == 2


@pytest.mark.parametrize("uncond", ["masked", "dropped"])
def test_the_uncond_pass_sees_no_context_token(uncond):
    model = lively()
    tokens, times, wanted = window()
    seen = []  # (tokens, times, positions) of every network input
    embed = model._embed
    model._embed = lambda t, s, p: seen.append((t.clone(), s.clone(), p.clone())) or embed(t, s, p)
    with torch.inference_mode():
        GuidedDenoiser(ModelDenoiser(model), [0.5], uncond)(tokens, times, wanted, CONTEXT)
    if uncond == "masked":  # one batched call: the cond half, then the uncond half
        (both, both_times, positions), = seen
        assert torch.equal(both[:2], tokens) and torch.equal(positions, torch.arange(6))
        assert (both[2:, CONTEXT] == V).all() and (both_times[2:, CONTEXT] == 0).all()
        assert torch.equal(both[2:, ~CONTEXT], tokens[:, ~CONTEXT]) and torch.equal(both_times[2:, ~CONTEXT], times[:, ~CONTEXT])
    else:  # the cond call, then a pass over the other frames only, at their positions
        (cond, _, cond_positions), (rest, _, positions) = seen
        assert torch.equal(cond, tokens) and torch.equal(cond_positions, torch.arange(6))
        assert torch.equal(positions, (~CONTEXT).nonzero()[:, 0]) and torch.equal(rest, tokens[:, ~CONTEXT])


def rolled(model, plan, options, denoiser, given=None):
    """Kept tokens of every window of ``plan`` for 2 sequences, in order."""
    context_tokens = (lambda frames: given[:, frames]) if given is not None else None
    return torch.cat([k for _, k in roll_out(plan, denoiser, options, 3, context_tokens, batch=2)], dim=1)


def test_zero_guidance_gives_exactly_the_unguided_tokens():
    model = lively()
    plan = plan_extend(3, 7, window_settings(6, "ar", 2))
    given = torch.randint(0, V, (2, 3, 8, 8), generator=torch.Generator().manual_seed(4))
    options = SamplingOptions("mgm", 3, seed=0, temperature=1.0, guidance=0.0)  # the sampling before guidance
    unguided = rolled(model, plan, options, ModelDenoiser(model), given)
    for uncond in ("masked", "dropped"):  # through the wrapper with w = 0 at every step
        assert torch.equal(rolled(model, plan, options, GuidedDenoiser(ModelDenoiser(model), [0.0] * 3, uncond), given), unguided)
    guided = rolled(model, plan, dataclasses.replace(options, guidance=1.0), ModelDenoiser(model), given)
    assert not torch.equal(guided, unguided)


BLANK_KEPT = [(2, 6), (2, 6), (2, 4), (2, 6), (2, 4)]  # a later window: its first step's uncond logits were kept


@pytest.mark.parametrize("uncond, guided_windows, passes", [
    ("masked", [(4, 6)] * 6, 3 + 2 * 3 * 2),
    ("dropped", [(2, 6), (1, 4), (2, 6), (2, 4), (2, 6), (2, 4)] + BLANK_KEPT, 3 + 2 * 3 * 2 - 1),
])
def test_windows_without_context_make_no_extra_pass(uncond, guided_windows, passes):
    model = lively()
    plan = plan_generate(14, window_settings(6, "ar", 2))  # a first window without context, then 2 with
    assert [len(w.context) for w in plan.windows] == [0, 2, 2]
    inputs = []  # (sequences, frames) of every network input
    embed = model._embed
    model._embed = lambda t, s, p: inputs.append(tuple(t.shape[:2])) or embed(t, s, p)
    denoiser = GuidedDenoiser(ModelDenoiser(model), [0.5] * 3, uncond)
    rolled(model, plan, SamplingOptions("mgm", 3, seed=0, guidance=0.0), denoiser)
    assert inputs == [(2, 6)] * 3 + guided_windows  # the first window's calls carry the cond sequences only
    assert denoiser.calls == passes and denoiser.uncond_passes == passes - 3 * 3  # a guided step is two passes, or one where kept


@torch.no_grad()
def test_blank_uncond_logits_are_computed_once_for_one_sequence_and_kept():
    """A window's first step leaves only mask tokens once the context is dropped: the same input for
    every sequence and window. Its logits come from one one-sequence pass, equal the batched pass's,
    and are reused; a window whose frames are not all masked runs its own pass."""
    model = lively()
    denoiser = ModelDenoiser(model)
    context = torch.tensor([True, True, False, False, False, False])
    tokens = torch.randint(0, V, (3, 6, 8, 8), generator=torch.Generator().manual_seed(2))
    tokens[:, 2:] = V
    times = torch.zeros(3, 6)
    times[:, :2] = 1
    wanted = torch.zeros(3, 6, 8, 8, dtype=torch.bool)
    wanted[:, 2:] = torch.rand(3, 4, 8, 8, generator=torch.Generator().manual_seed(3)) < 0.5
    direct = model.logits_at(tokens[:, 2:], times[:, 2:], wanted[:, 2:])  # the frames at positions 0..3: not what is asked
    left_out = ContextCache(torch.tensor([0, 1]), tokens[:, :2].flatten(2), [None] * len(model.blocks))
    batched = model.logits_at(tokens, times, wanted, cache=left_out)  # all 3 sequences, the frames at positions 2..5
    kept = denoiser.without_context(tokens, times, wanted, context)
    assert denoiser.calls == 1 and torch.allclose(kept, batched, atol=1e-5) and not torch.allclose(kept, direct, atol=1e-3)
    other = tokens.clone()
    other[:, :2] = (other[:, :2] + 1) % V  # another video's context: dropped anyway
    assert torch.equal(denoiser.without_context(other, times, wanted, context), kept) and denoiser.calls == 1
    unmasked = tokens.clone()
    unmasked[0, 3, 0, 0] = 5  # one token drawn: no longer blank
    denoiser.without_context(unmasked, times, wanted & (unmasked == V), context)
    assert denoiser.calls == 2


def test_the_engine_anneals_the_guidance_to_zero_by_the_middle_step():
    assert annealed_weights(0.5, 4) == [0.5, 0.25, 0.0, 0.0] and annealed_weights(0.6, 3) == pytest.approx([0.6, 0.2, 0.0])
    model = lively()
    plan = plan_generate(14, window_settings(6, "ar", 2))
    denoiser = ModelDenoiser(model)
    rolled(model, plan, SamplingOptions("mgm", 3, seed=0, guidance=0.6), denoiser)
    assert denoiser.calls == 3 + 2 * (3 + 2) - 1  # 2 of the 3 steps of each window with context are guided; one blank uncond kept
    first_step = ModelDenoiser(model)
    rolled(model, plan, SamplingOptions("mgm", 3, seed=0, guidance=0.0), GuidedDenoiser(first_step, [0.5], "dropped"))
    assert first_step.calls == 3 + 2 * 3 + 1  # guided on the first step of each window only: one blank uncond pass, then kept


def test_pipeline_and_eval_report_the_guided_passes(weights_dir):
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    video = torch.from_numpy(moving_square_frames(4))
    settings = window_settings(pipe.window, "ar", 2)
    options = SamplingOptions("mgm", 3, seed=1, guidance=0.5)
    chunks = list(pipe.extend(video, 8, settings, options))
    windows = len(plan_extend(4, 8, settings).windows)
    assert sum(c.nfe for c in chunks) == (3 + 2) * windows - (windows - 1)  # 2 of 3 steps guided; the first step's uncond pass kept
    clips = torch.from_numpy(moving_square_frames(20))[None].repeat(2, 1, 1, 1, 1)
    result = evaluation.continuation_suite(pipe, clips, settings, options, batch=2)
    assert len(plan_extend(10, 10, settings).windows) == 3  # the last one shorter: its blank frames are other ones
    assert result["guidance"] == 0.5 and result["nfe_per_sequence"] == (3 + 2) * 3 - 1  # the second window reuses the first's blank uncond


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_guidance_is_validated_by_name(value):
    with pytest.raises(InvalidArgumentError, match="guidance"):
        SamplingOptions(guidance=value)


def test_guidance_reaches_the_sampler_from_the_command_line(weights_dir, tmp_path, cli):
    """--guidance W: the summary's NFE counts the uncond passes; no --guidance is the default W, byte for byte."""
    runs = {}
    default = f"{DEFAULT_GUIDANCE:g}"
    for w in ("0", default):
        out = tmp_path / f"g{w}.y4m"
        result = cli("generate", "-w", weights_dir, "-o", out, "--frames", "7", "--steps", "2", "--context", "2", "--seed", "3", "--guidance", w, "--json")
        assert result.code == 0, result.err
        runs[w] = (json.loads(result.out)["nfe"], out.read_bytes())
    plain = tmp_path / "plain.y4m"
    assert cli("generate", "-w", weights_dir, "-o", plain, "--frames", "7", "--steps", "2", "--context", "2", "--seed", "3").code == 0
    assert runs[default][1] == plain.read_bytes()
    assert runs[default][0] > runs["0"][0]  # the windows with context made uncond passes too
    bad = cli("generate", "-w", weights_dir, "-o", tmp_path / "x.y4m", "--guidance", "-1")
    assert bad.code == 2 and "--guidance" in bad.err


@pytest.mark.parametrize("kwargs, name", [({"weights": [0.5, -1.0]}, "weights"), ({"weights": [float("nan")]}, "weights"),
                                          ({"weights": [0.5], "uncond": "zeros"}, "uncond")])
def test_the_wrapper_names_a_wrong_argument(kwargs, name):
    with pytest.raises(InvalidArgumentError, match=name):
        GuidedDenoiser(ModelDenoiser(lively()), **kwargs)


def test_eval_tables_say_when_guidance_was_used(weights_dir, cli):
    guided = cli("eval", "--weights", weights_dir, "--quick", "--steps", "1", "--suite", "continuation", "--guidance", "0.5")
    plain = cli("eval", "--weights", weights_dir, "--quick", "--steps", "1", "--suite", "continuation", "--guidance", "0")
    assert guided.code == 0 and plain.code == 0, guided.err + plain.err
    assert "1 steps, guidance 0.5," in guided.out and "guidance" not in plain.out


def test_the_anchor_scales_w_by_the_relative_shortfall_of_intensity():
    """Token 1 has intensity 0.5, token 2 1.0, the rest 0. w's multiplier is 1 where the new frames
    keep the reference's mean intensity, above 1 where it fell (fading), below where it rose, within
    [0, ANCHOR_LIMIT]."""
    values = torch.zeros(V + 1)
    values[1], values[2] = 0.5, 1.0
    reference = torch.zeros(2, 1, 4, 4, dtype=torch.long)
    reference[0, 0, 0] = 2  # mean 4/16 = 0.25
    reference[1, 0, :2] = 1  # mean 8·0.5/16 = 0.25
    anchor = GuidanceAnchor(reference, gain=2.0, intensity=lambda tokens: values[tokens])
    assert torch.allclose(anchor.reference, torch.tensor([0.25, 0.25]))
    assert torch.allclose(anchor.scales(reference.clone()), torch.ones(2))
    moved = torch.zeros(2, 1, 4, 4, dtype=torch.long)  # sequence 0: black: 1 + 2·1 = 3, held at the limit
    moved[1, 0, 0, :2] = 2  # sequence 1: 2/16: half the reference: 1 + 2·0.5 = 2
    assert torch.allclose(anchor.scales(moved), torch.tensor([ANCHOR_LIMIT, 2.0]))
    moved[0, 0, :3] = 2  # 12/16 against 4/16: w off
    moved[1, 0, 0, :3] = 2  # 3/16: 1 + 2·(0.25 − 0.1875)/0.25 = 1.5
    assert torch.allclose(anchor.scales(moved), torch.tensor([0.0, 1.5]))
    moved[1, 0, 1, :2] = 2  # 5/16: 1 + 2·(0.25 − 0.3125)/0.25 = 0.5
    assert torch.allclose(anchor.scales(moved)[1], torch.tensor(0.5))


@torch.no_grad()
def test_a_scaled_guided_denoiser_applies_w_per_sequence():
    model = lively()
    tokens, times, wanted = window()
    guided = GuidedDenoiser(ModelDenoiser(model), [0.7], "dropped")
    guided.scale = torch.tensor([2.0, 0.0])
    logits = guided(tokens, times, wanted, CONTEXT)
    cond = ModelDenoiser(model)(tokens, times, wanted, CONTEXT)
    without = dropped_reference(model, tokens, times, wanted)
    first = int(wanted[0].sum())  # the first sequence's wanted positions come first
    assert torch.allclose(logits[:first], (cond + 1.4 * (cond - without))[:first], atol=1e-4)
    assert torch.allclose(logits[first:], cond[first:], atol=1e-6)


def test_the_engine_anchors_guidance_after_each_window_and_zero_gain_changes_nothing():
    model = lively()
    plan = plan_extend(3, 7, window_settings(6, "ar", 2))
    given = torch.randint(0, V, (2, 3, 8, 8), generator=torch.Generator().manual_seed(4))
    options = SamplingOptions("mgm", 3, seed=0, guidance=0.6)
    plain = rolled(model, plan, options, ModelDenoiser(model), given)
    assert torch.equal(rolled(model, plan, dataclasses.replace(options, anchor=0.0), ModelDenoiser(model), given), plain)
    scales = []
    guided = GuidedDenoiser(ModelDenoiser(model), [0.6], "dropped")
    start = guided.start_window
    guided.start_window = lambda: scales.append(guided.scale) or start()
    values = torch.rand(V + 1, generator=torch.Generator().manual_seed(5))
    anchored = dataclasses.replace(options, guidance=0.0, anchor=3.0)
    list(roll_out(plan, guided, anchored, 3, lambda frames: given[:, frames], batch=2, token_intensity=lambda tokens: values[tokens]))
    assert scales[0] is None and all(s is not None and s.shape == (2,) for s in scales[1:])
    scales.clear()  # without the tokens' intensities w is not anchored
    list(roll_out(plan, guided, anchored, 3, lambda frames: given[:, frames], batch=2))
    assert all(s is None for s in scales)
    with pytest.raises(InvalidArgumentError, match="anchor"):
        SamplingOptions(anchor=-1.0)


def test_token_intensity_is_each_token_decoded_alone_once(weights_dir, monkeypatch):
    from maskflow_cli import pipeline as pipeline_module

    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu", precision="fp32")
    vocabulary = pipe.transformer.config.vocab_size
    seven = pipe.decode(torch.tensor([[[7]]])).float().mean() / 255  # before decodes are counted
    decoded = []
    decode = pipeline_module.decode_tokens
    monkeypatch.setattr(pipeline_module, "decode_tokens", lambda tok, tokens, device: decoded.append(tokens.flatten().tolist()) or decode(tok, tokens, device))
    tokens = torch.tensor([[7, 3, vocabulary], [7, 7, 3]])
    values = pipe.token_intensity(tokens)
    assert values.shape == tokens.shape and values[0, 2] == 0 and values[0, 0] == values[1, 1] == values[1, 0]
    assert torch.isclose(values[0, 0], seven)
    assert decoded == [[3, 7]]  # the distinct ids met, the mask token never
    pipe.token_intensity(torch.tensor([3, 9]))
    assert decoded == [[3, 7], [9]]  # only the new one
