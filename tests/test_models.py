import dataclasses

import pytest
import torch

from maskflow_cli.embeddings import code_digit_rows
from maskflow_cli.model_configs import TokenizerConfig
from maskflow_cli.objective import fused_snr_weights, mask_frames, masking_loss
from maskflow_cli.schedules import SCHEDULERS
from maskflow_cli.tokenizer import FrameTokenizer
from maskflow_cli.transformer import MaskFlowTransformer

from conftest import TINY_TOKENIZER, TINY_TRANSFORMER, tiny_models


def test_tokenizer_shapes_and_vocabulary():
    tokenizer, _ = tiny_models()
    frames = torch.randint(0, 256, (5, 32, 32, 1), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    tokens = tokenizer.encode(frames)
    assert tokens.shape == (5, 8, 8) and tokens.dtype == torch.long
    assert 0 <= int(tokens.min()) and int(tokens.max()) < TINY_TOKENIZER.vocab_size == 16
    decoded = tokenizer.decode(tokens)
    assert decoded.shape == (5, 32, 32, 1) and decoded.dtype == torch.uint8


def test_fsq_indices_round_trip_through_codes():
    tokenizer = FrameTokenizer(TokenizerConfig(height=16, width=16, base_channels=8, channel_multipliers=(1,), levels=(3, 5, 4)))
    tokens = torch.arange(60).reshape(1, 6, 10) % 60
    codes = tokenizer.indices_to_codes(tokens)  # [1,3,6,10]
    assert codes.shape == (1, 3, 6, 10)
    assert torch.equal((codes.long() * tokenizer.basis[:, None, None]).sum(1), tokens)


def test_patch_encoder_tokens_see_only_their_own_patch():
    torch.manual_seed(0)
    patch = FrameTokenizer(dataclasses.replace(TINY_TOKENIZER, encoder="patch")).eval()
    frames = torch.zeros(2, 32, 32, 1, dtype=torch.uint8)
    frames[1, 0:4, 0:4] = 255  # a change inside the first 4x4 patch of frame 1 only
    tokens = patch.encode(frames)
    assert torch.equal(tokens[0].flatten()[1:], tokens[1].flatten()[1:])  # no other token moves
    assert (tokens[0] == tokens[0, 0, 0]).all()  # equal (empty) patches get one token
    conv = FrameTokenizer(TINY_TOKENIZER).eval()  # the conv encoder's tokens see their neighbours
    assert TINY_TOKENIZER.encoder == "conv"
    with pytest.raises(ValueError, match="encoder"):
        TokenizerConfig(encoder="vit")
    assert conv.encode(frames).shape == tokens.shape


def test_rgb_tokenizer_and_reconstruct_gradients():
    config = TokenizerConfig(height=16, width=16, channels=3, base_channels=8, channel_multipliers=(1, 1), levels=(5, 5))
    tokenizer = FrameTokenizer(config)
    x = torch.rand(2, 3, 16, 16, requires_grad=True) * 2 - 1
    y = tokenizer.reconstruct(x)
    assert y.shape == x.shape
    y.square().mean().backward()
    assert tokenizer.encoder[0].weight.grad is not None and tokenizer.encoder[0].weight.grad.abs().sum() > 0  # straight-through


@pytest.mark.parametrize("attention", ["full", "factorized"])
@pytest.mark.parametrize("time_conditioning", [True, False])
def test_transformer_shapes_and_shorter_windows(attention, time_conditioning):
    config = dataclasses.replace(TINY_TRANSFORMER, attention=attention, time_conditioning=time_conditioning)
    model = MaskFlowTransformer(config)
    tokens = torch.randint(0, 17, (2, 4, 8, 8))
    assert model(tokens, torch.rand(2, 4)).shape == (2, 4, 8, 8, 16)


def test_time_conditioning_changes_the_output_only_when_enabled():
    for enabled in (True, False):
        model = MaskFlowTransformer(dataclasses.replace(TINY_TRANSFORMER, time_conditioning=enabled))
        for block in model.blocks:  # leave adaLN-Zero so the condition matters
            torch.nn.init.normal_(block.modulation.weight, std=0.1)
        tokens = torch.randint(0, 17, (1, 3, 8, 8))
        a, b = model(tokens, torch.zeros(1, 3)), model(tokens, torch.ones(1, 3))
        assert (not torch.allclose(a, b)) == enabled


def test_attention_is_bidirectional_over_time():
    _, model = tiny_models()
    for block in model.blocks:
        torch.nn.init.normal_(block.modulation.weight, std=0.1)
        torch.nn.init.normal_(block.modulation.bias, std=0.5)
    tokens = torch.randint(0, 16, (1, 4, 8, 8))
    changed = tokens.clone()
    changed[0, 3] = 16
    delta = (model(tokens, torch.ones(1, 4)) - model(changed, torch.ones(1, 4))).abs()
    assert delta[0, 0].max() > 0  # frame 0 sees frame 3


def test_code_digits_read_ids_as_the_tokenizer_does():
    tokenizer = FrameTokenizer(dataclasses.replace(TINY_TOKENIZER, levels=(2, 3, 4)))
    ids = torch.arange(24).reshape(1, 4, 6)
    digits = tokenizer.indices_to_codes(ids).long().reshape(3, 24)  # [Q,V]: each id's code per FSQ channel
    expected = digits.T + torch.tensor([0, 2, 5])  # [V,Q]: each channel's digit among the 2 + 3 + 4 digit values
    assert torch.equal(code_digit_rows((2, 3, 4)), expected)


def test_code_digits_make_a_product_of_per_channel_distributions():
    model = MaskFlowTransformer(dataclasses.replace(TINY_TRANSFORMER, code_digits=(4, 4)))
    torch.nn.init.zeros_(model.head.weight)  # the free head silent: only the digit term is left
    torch.nn.init.normal_(model.digit_head.weight, std=1.0)
    probs = model(torch.randint(0, 17, (1, 2, 8, 8)), torch.rand(1, 2)).softmax(-1)
    grid = probs.reshape(-1, 4, 4)  # [N, second digit, first digit]: id = first + 4 * second
    assert torch.allclose(grid, grid.sum(2, keepdim=True) * grid.sum(1, keepdim=True), atol=1e-6)
    assert not torch.allclose(grid, torch.full_like(grid, 1 / 16), atol=1e-3)
    with torch.no_grad():  # ids that share a digit share its embedding
        model.digit_embed.weight[1].fill_(1.0)  # first digit = 1: ids 1, 5, 9, 13
        changed = model(torch.tensor([1, 5, 2, 0]).repeat(16).reshape(1, 1, 8, 8), torch.ones(1, 1))
        assert not torch.allclose(changed, model(torch.tensor([2, 6, 2, 0]).repeat(16).reshape(1, 1, 8, 8), torch.ones(1, 1)))


def test_code_digits_must_multiply_to_the_vocabulary():
    with pytest.raises(ValueError, match="code_digits"):
        dataclasses.replace(TINY_TRANSFORMER, code_digits=(4, 3))
    with pytest.raises(ValueError, match="code_digits"):
        dataclasses.replace(TINY_TRANSFORMER, code_digits=(16, 1))


def test_mask_frames_draws_one_time_per_frame():
    s = SCHEDULERS["linear"]
    clean = torch.randint(0, 16, (64, 6, 8, 8))
    batch = mask_frames(clean, s, 16, torch.Generator().manual_seed(0))
    assert batch.times.shape == (64, 6) and (batch.times > 0).all() and (batch.times <= 1).all()
    assert torch.equal(batch.tokens == 16, batch.masked) and torch.equal(batch.tokens[~batch.masked], clean[~batch.masked])
    kept = (~batch.masked).float().mean(dim=(2, 3))  # per-frame keep fraction tracks κ(t_i)
    assert (kept - s.kappa(batch.times)).abs().mean() < 0.06
    assert batch.times.std(dim=1).mean() > 0.1  # frames of a clip get different times
    constant = mask_frames(clean, s, 16, torch.Generator().manual_seed(0), constant_time_prob=1.0)
    assert (constant.times == constant.times[:, :1]).all()


def test_context_masking_gives_clean_frames_at_the_ends_and_one_time_between():
    s = SCHEDULERS["sigmoid"]
    clean = torch.randint(0, 16, (400, 8, 4, 4))
    batch = mask_frames(clean, s, 16, torch.Generator().manual_seed(3), context_prob=1.0)
    at_one = batch.times == 1.0  # [B,T] clean context frames
    assert not batch.masked[at_one].any()  # a context frame is never masked
    assert at_one[:, 0].all() and not at_one.all(dim=1).any()  # a clean prefix, and something left to predict
    for times, ctx in zip(batch.times, at_one):
        inner = times[~ctx]
        assert (inner == inner[0]).all()  # one shared time for the unknown frames
        unknown = (~ctx).nonzero()[:, 0]
        assert (unknown == torch.arange(unknown[0], unknown[-1] + 1)).all()  # one contiguous unknown span
    with_suffix = at_one[:, -1].float().mean()
    assert 0.1 < with_suffix < 0.4  # a quarter of the clips also get a clean suffix (minus empty ones)
    mixed = mask_frames(clean, s, 16, torch.Generator().manual_seed(3), context_prob=0.5)
    share = (mixed.times == 1.0).any(dim=1).float().mean()
    assert 0.35 < share < 0.65


def test_mask_frames_is_seeded():
    clean = torch.randint(0, 16, (4, 6, 8, 8))
    a = mask_frames(clean, SCHEDULERS["sigmoid"], 16, torch.Generator().manual_seed(7))
    b = mask_frames(clean, SCHEDULERS["sigmoid"], 16, torch.Generator().manual_seed(7))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.times, b.times)


def test_loss_counts_masked_positions_only():
    clean = torch.randint(0, 16, (3, 6, 8, 8))

    def perfect_on_unmasked_only(tokens, times):  # right where visible, uniform where masked
        logits = torch.nn.functional.one_hot(tokens.clamp(max=15), 16).float() * 100
        return torch.where((tokens == 16)[..., None], torch.zeros_like(logits), logits)

    out = masking_loss(perfect_on_unmasked_only, clean, SCHEDULERS["sigmoid"], 16, torch.Generator().manual_seed(0))
    assert abs(float(out.loss) - float(torch.log(torch.tensor(16.0)))) < 1e-4  # only masked tokens count
    weighted = masking_loss(perfect_on_unmasked_only, clean, SCHEDULERS["sigmoid"], 16, torch.Generator().manual_seed(0), snr_weighting=True)
    assert torch.isfinite(weighted.loss)


def test_fused_snr_weights():
    times = torch.tensor([[0.05, 0.5, 0.99], [0.9, 0.9, 0.9]])
    w = fused_snr_weights(times, SCHEDULERS["sigmoid"], clip=5.0)
    assert w.shape == times.shape and torch.isclose(w.mean(), torch.tensor(1.0))
    assert w[0, 0] < w[0, 1] < w[0, 2]


@pytest.mark.slow
def test_objective_trains_a_tiny_model():
    torch.manual_seed(0)
    _, model = tiny_models()
    model.train()
    pattern = torch.arange(64).reshape(8, 8) % 16
    clean = torch.stack([(pattern + t) % 16 for t in range(6)])[None].repeat(8, 1, 1, 1)  # predictable clips
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(60):
        out = masking_loss(model, clean, SCHEDULERS["sigmoid"], 16, g)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        losses.append(out.loss.item())
    assert sum(losses[-10:]) / 10 < 0.5 * sum(losses[:10]) / 10
