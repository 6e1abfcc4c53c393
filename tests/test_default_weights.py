"""The weights shipped in weights/ load, reconstruct held-out digits above the floor, continue
held-out sequences better than all-black frames, and sample through the CLI."""

import json

import pytest
import torch

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import held_out_sequences, sample_videos
from maskflow_cli.metrics import frame_mse, frame_psnr
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, window_settings
from maskflow_cli.runtime import decode_tokens, encode_frames
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.weight_sources import default_weights_dir
from maskflow_cli.weight_headers import inspect_weights
from maskflow_cli.weights import load_tokenizer

# A regression floor for the shipped tokenizer: it measures 23.4 dB on these clips (the project's
# 24 dB bar is not met yet; weights/README.md gives the full-size measurement).
PSNR_FLOOR = 23.0


def test_default_weights_are_installed_and_complete():
    components = inspect_weights(None)
    assert set(components) == {"tokenizer", "transformer"}, default_weights_dir()
    tok, tf = components["tokenizer"].config, components["transformer"].config
    assert (tok.height, tok.width, tok.channels) == (64, 64, 1) and tf.frames == 16
    assert tf.vocab_size == tok.vocab_size and tf.time_conditioning
    assert components["transformer"].parameters <= 20_500_000  # the size bar: ~20M parameters or less


def test_default_tokenizer_reconstructs_held_out_digits_above_the_floor():
    tokenizer = load_tokenizer(None)
    clips = held_out_sequences(None, 20, 2, FrameFormat(64, 64, 1), seed=99)  # reserved test digits only
    frames = clips.flatten(0, 1)
    recon = decode_tokens(tokenizer, encode_frames(tokenizer, frames, torch.device("cpu")), torch.device("cpu"))
    assert float(frame_psnr(recon[None], frames[None]).mean()) >= PSNR_FLOOR


def test_default_tokenizer_states_its_reference_and_held_out_digits_pass_the_domain_check():
    from maskflow_cli.domain import REFERENCE_KEY, check_domain

    info = inspect_weights(None)["tokenizer"].info
    assert PSNR_FLOOR <= info[REFERENCE_KEY] < 30  # measured by benchmarks/tokenizer_reference.py
    clips = held_out_sequences(None, 8, 4, FrameFormat(64, 64, 1), seed=5)  # reserved test digits only
    for clip in clips:
        check = check_domain(load_tokenizer(None), info, clip, torch.device("cpu"))
        assert check.reference == info[REFERENCE_KEY] and not check.out_of_domain, check


def test_default_weights_continue_held_out_sequences_better_than_black_frames():
    """At the default sampling settings. One sampled continuation can lose to black frames (on the
    full eval the per-sequence MSE spreads widely), so: the mean beats black, and 2 of the 3 do."""
    pipe = MaskFlowPipeline.from_weights(None, device="cpu")
    clips = held_out_sequences(None, 20, 3, pipe.frame_format, seed=7)  # reserved test digits only
    plan = plan_extend(10, 10, window_settings(pipe.window))
    video, _ = sample_videos(pipe, plan, SamplingOptions(seed=0), clips[:, :10], batch=3)
    mse = frame_mse(video[:, 10:], clips[:, 10:]).mean(1)  # [3] per sequence
    black = frame_mse(torch.zeros_like(clips[:, 10:]), clips[:, 10:]).mean(1)
    assert float(mse.mean()) < float(black.mean()) and int((mse < black).sum()) >= 2, (mse, black)


@pytest.mark.slow
def test_default_weights_generate_through_the_cli(cli, tmp_path):
    out = tmp_path / "sample.mkv"
    r = cli("generate", "-o", out, "--frames", 16, "--steps", 4, "--seed", 0, "--json")
    assert r.code == 0, r.err
    summary = json.loads(r.out)
    assert summary["frames"] == 16 and summary["width"] == 64 and summary["nfe"] == 4
