import torch

from maskflow_cli.evaluation import continue_batch, frame_mse, frame_psnr, summarize
from maskflow_cli.pipeline import MaskFlowPipeline, SamplingOptions
from maskflow_cli.planner import window_settings

from conftest import moving_square_frames


def test_metrics_behave():
    clip = torch.from_numpy(moving_square_frames(6))[None]  # [1,6,32,32,1]
    assert float(frame_mse(clip, clip).max()) == 0 and float(frame_psnr(clip, clip).min()) == 100.0
    shifted = torch.roll(clip, 3, dims=3)
    assert float(frame_mse(shifted, clip).min()) > 0 and float(frame_psnr(shifted, clip).max()) < 100
    black = torch.zeros_like(clip)
    expected = (clip.float() / 255).square().flatten(2).sum(-1)
    assert torch.allclose(frame_mse(black, clip), expected)
    assert summarize(torch.tensor([1.0, 3.0]))["mean"] == 2.0


def test_batched_continuation_matches_the_pipeline(weights_dir):
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    given = torch.from_numpy(moving_square_frames(5))  # [5,32,32,1]
    settings = window_settings(pipe.window, "ar", 3, 2)
    options = SamplingOptions(steps=3, seed=9)
    single = torch.cat([c.frames for c in pipe.extend(given, 4, settings, options)])[5:]
    alone, nfe = continue_batch(pipe, given[None], 4, settings, options, seed=9)
    assert torch.equal(alone[0], single)  # the same plan, samples and seed stream as the pipeline
    assert nfe == 3 * 2  # two windows of 3 steps
    pair, _ = continue_batch(pipe, torch.stack([given, given]), 4, settings, options, seed=9)
    assert pair.shape == (2, 4, 32, 32, 1)
