"""The training-throughput benchmark's two counts: its FLOP formula against torch's FLOP counter, and its
fake-tensor memory count against the same count on real tensors."""

from __future__ import annotations

import pytest
import torch

from benchmarks.activation_memory import step_bytes, clips_that_fit, training_memory
from benchmarks.train_throughput import counted_flops, model_flops, preset_config
from maskflow_cli.model_configs import PAPER_PRESETS
from maskflow_cli.transformer import MaskFlowTransformer

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", ["tiny", *PAPER_PRESETS])
def test_the_flop_formula_matches_torchs_counter(name):
    config = preset_config(name, 16)
    formula, counted = model_flops(config, 2), counted_flops(config, 2)
    assert abs(formula - counted) / counted < 1e-3  # what differs: the time embedding's input needs no gradient
    assert model_flops(preset_config(name, 32), 2) > 2 * formula  # attention grows with the square of the tokens


@pytest.mark.parametrize("checkpointing", [False, True])
def test_the_fake_count_is_the_real_count(checkpointing):
    torch.manual_seed(0)
    config = preset_config("tiny", 4)
    real = [step_bytes(MaskFlowTransformer(config).train(), batch, torch.bfloat16, checkpointing) for batch in (1, 2)]
    fake = training_memory(config, torch.bfloat16, checkpointing)
    assert fake["fixed_bytes"] == 2 * real[0] - real[1] and fake["clip_bytes"] == real[1] - real[0] > 0
    assert fake["state_bytes"] == 20 * fake["parameters"]


def test_checkpointing_keeps_less_and_more_clips_fit():
    config = preset_config("s", 16)
    plain, checkpointed = (training_memory(config, torch.bfloat16, c) for c in (False, True))
    assert checkpointed["clip_bytes"] < plain["clip_bytes"] / 3
    assert clips_that_fit(checkpointed, 80e9) > clips_that_fit(plain, 80e9) > 0
