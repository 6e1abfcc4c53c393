"""maskflow eval: metrics that behave, baselines, batched sampling, and the command's JSON."""

import json

import pytest
import torch

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import infill_baselines, sample_videos
from maskflow_cli.metrics import frame_mse, frame_psnr, frame_ssim, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, plan_infill, window_settings

from conftest import moving_square_frames


def _clip(frames: int = 6) -> torch.Tensor:
    return torch.from_numpy(moving_square_frames(frames))[None]  # [1,T,32,32,1]


def test_identical_videos_score_perfectly_and_shifted_ones_worse():
    clip = _clip()
    assert float(frame_mse(clip, clip).max()) == 0
    assert float(frame_psnr(clip, clip).min()) == 100.0
    assert torch.allclose(frame_ssim(clip, clip), torch.ones(1, 6))
    shifted = torch.roll(clip, 3, dims=3)
    assert float(frame_mse(shifted, clip).min()) > 0
    assert float(frame_psnr(shifted, clip).max()) < 100
    assert float(frame_ssim(shifted, clip).max()) < 0.99
    more = torch.roll(clip, 6, dims=3)
    assert float(frame_ssim(more, clip).mean()) < float(frame_ssim(shifted, clip).mean())


def test_mse_is_a_sum_over_pixels_in_unit_range():
    clip = _clip()
    black = torch.zeros_like(clip)
    assert torch.allclose(frame_mse(black, clip), (clip.float() / 255).square().flatten(2).sum(-1))
    assert summarize(torch.tensor([1.0, 3.0]))["mean"] == 2.0


def test_infill_baselines():
    clip = torch.zeros(1, 6, 4, 4, 1, dtype=torch.uint8)
    clip[:, 4:] = 200  # frames 1..3 are the gap between frame 0 (black) and frame 4 (200)
    base = infill_baselines(clip, 1, 4)
    assert base["repeat_nearest"][0, :, 0, 0, 0].tolist() == [0, 0, 200]
    assert base["crossfade"][0, :, 0, 0, 0].tolist() == [50, 100, 150]


def test_batched_continuation_matches_the_pipeline(weights_dir):
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    given = torch.from_numpy(moving_square_frames(5))  # [5,32,32,1]
    settings = window_settings(pipe.window, "ar", 3, 2)
    options = SamplingOptions(steps=3, seed=9)
    single = torch.cat([c.frames for c in pipe.extend(given, 4, settings, options)])[5:]
    plan = plan_extend(5, 4, settings)
    alone, nfe = sample_videos(pipe, plan, options, given[None], batch=1)
    assert torch.equal(alone[0, 5:], single)  # the same plan, samples and seed stream as the pipeline
    assert nfe == (3 + 2) * 2  # two windows of 3 steps, 2 of them guided (the default guidance)
    pair, _ = sample_videos(pipe, plan, options, torch.stack([given, given]), batch=2)
    assert pair.shape == (2, 9, 32, 32, 1)


def test_batched_infill_matches_the_pipeline(weights_dir):
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    video = torch.from_numpy(moving_square_frames(10))
    settings = window_settings(pipe.window, "ar", 2, None)
    options = SamplingOptions(steps=3, seed=4)
    single = torch.cat([c.frames for c in pipe.infill(video, ["3:7"], settings, options)])
    plan = plan_infill(10, [(3, 7)], settings)
    alone, nfe = sample_videos(pipe, plan, options, video[None], batch=1)
    assert torch.equal(alone[0], single) and nfe == (3 + 2) * len(plan.windows)  # the same plan, samples and seed stream; 2 guided steps
    pair, _ = sample_videos(pipe, plan, options, torch.stack([video, video]), batch=2)
    assert pair.shape == (2, 10, 32, 32, 1)
    assert torch.equal(pair[1, :3], video[:3]) and torch.equal(pair[1, 7:], video[7:])


def test_eval_quick_json_schema(cli, weights_dir):
    r = cli("eval", "--weights", weights_dir, "--quick", "--steps", "2", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert {"tokenizer", "continuation", "horizon", "infill", "size", "seconds"} <= result.keys()
    assert result["tokenizer"]["frames"] == 200 and 0 < result["tokenizer"]["psnr"]["mean"] < 100
    cont = result["continuation"]
    for key in ("sampler", "steps", "mode", "context", "stride", "seed", "nfe_per_sequence"):
        assert key in cont
    assert cont["steps"] == 2 and cont["nfe_per_sequence"] > 0
    for name in ("maskflow", "copy_last", "black"):
        assert len(cont[name]["mse_per_frame"]) == 10 and len(cont[name]["ssim_per_frame"]) == 10
    horizon = result["horizon"]
    assert horizon["frames"] == 12  # 2 windows of 6 in --quick
    for name in ("real", "generate", "extend"):
        assert len(horizon[name]["ink"]) == 1 and len(horizon[name]["blobs"]) == 1
    assert set(result["infill"]) == {"gap_4", "gap_8"}
    assert {"maskflow", "repeat_nearest", "crossfade"} <= result["infill"]["gap_4"].keys()


def test_eval_on_a_folder_of_videos_and_one_suite(cli, weights_dir, clip_mkv):
    r = cli("eval", "--weights", weights_dir, "--data", clip_mkv.parent, "--quick", "--suite", "tokenizer", "--json")
    assert r.code == 0, r.err
    result = json.loads(r.out)
    assert result["tokenizer"]["frames"] == 20 and "continuation" not in result


def test_eval_table_and_plots(cli, weights_dir, tmp_path):
    pytest.importorskip("matplotlib")
    r = cli("eval", "--weights", weights_dir, "--quick", "--steps", "1", "--suite", "continuation", "--suite", "horizon", "--plots", tmp_path / "plots")
    assert r.code == 0, r.err
    assert "continuation 10 -> 10" in r.out and "copy_last" in r.out
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["continuation_per_frame.png", "horizon_drift.png"]


@pytest.mark.parametrize("args, option", [(["--suite", "speed"], "--suite"), (["--steps", "0"], "--steps"), (["--mode", "x"], "--mode")])
def test_eval_rejects_bad_options(cli, weights_dir, args, option):
    r = cli("eval", "--weights", weights_dir, "--quick", *args)
    assert r.code == 2 and option in r.err and len(r.err.strip().splitlines()) == 1
