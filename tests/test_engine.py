"""The rollout engine: the pipeline and the evaluation run one plan through it alike; sampling
options reach the sampler from Python and the CLI; errors name Python parameters, the CLI flags."""

import json

import pytest
import torch

from maskflow_cli import evaluation
from maskflow_cli.defaults import DEFAULT_TEMPERATURE, FREE_TEMPERATURE, MGM_NOISE
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_infill, window_settings
from maskflow_cli.recipes import train_transformer
from maskflow_cli.training import TrainConfig

from conftest import moving_square_frames


def _recording_decode(pipe: MaskFlowPipeline, seen: list) -> None:
    """Make ``pipe.decode`` note every token tensor it is given."""
    decode = pipe.decode
    pipe.decode = lambda tokens: (seen.append(tokens.clone()), decode(tokens))[1]


@pytest.mark.parametrize("options", [SamplingOptions("mgm", 3, seed=5, noise=1.5, temperature=0.8),
                                     SamplingOptions("fm", 4, seed=6, temperature=1.3)])
def test_eval_and_pipeline_give_identical_tokens_for_one_plan_and_seed(weights_dir, options):
    video = torch.from_numpy(moving_square_frames(12))  # [12,32,32,1]
    # fp32: bf16 decoder kernels on two threads round a pixel here and there differently for another
    # batch size (eval decodes a whole batch, the pipeline a window's frames); the tokens stay equal
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu", precision="fp32")
    settings = window_settings(pipe.window, "ar", 2, 1)
    plan = plan_infill(12, [(2, 5), (7, 11)], settings)
    streamed: list = []
    _recording_decode(pipe, streamed)
    run = pipe.run(plan, video, options)
    pipeline_video = torch.cat([c.frames for c in run])
    pipeline_nfe = sum(c.nfe for c in pipe.run(plan, video, options))
    batched: list = []
    _recording_decode(pipe, batched)
    eval_video, eval_nfe = evaluation.sample_videos(pipe, plan, options, video[None], batch=1)
    kept = [i for w in plan.windows for i in w.keep]  # the order the pipeline decodes in
    by_frame = dict(zip(kept, torch.cat(streamed)))
    pipeline_tokens = torch.stack([by_frame[i] for i in sorted(kept)])
    assert len(batched) == 1 and torch.equal(batched[0], pipeline_tokens)  # the same tokens, frame by frame
    assert torch.equal(eval_video[0], pipeline_video) and eval_nfe == pipeline_nfe


def test_sampler_options_reach_the_sampler(weights_dir):
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    settings = window_settings(pipe.window, "full")

    def tokens(**kw):
        return torch.cat([c.frames for c in pipe.generate(6, settings, SamplingOptions("mgm", 4, seed=1, **kw))])

    default = tokens()  # generate: the free temperature
    assert torch.equal(default, tokens(noise=MGM_NOISE, temperature=FREE_TEMPERATURE, anneal=True))  # the defaults, spelled out
    assert not torch.equal(default, tokens(temperature=DEFAULT_TEMPERATURE))  # the temperature of extend and infill
    video = torch.from_numpy(moving_square_frames(4))
    extended = torch.cat([c.frames for c in pipe.extend(video, 4, settings, SamplingOptions("mgm", 4, seed=1))])
    assert torch.equal(extended, torch.cat([c.frames for c in pipe.extend(video, 4, settings, SamplingOptions("mgm", 4, seed=1, temperature=DEFAULT_TEMPERATURE))]))
    assert not torch.equal(default, tokens(noise=0.0)) or not torch.equal(default, tokens(temperature=3.0))
    assert not torch.equal(tokens(noise=8.0), tokens(noise=8.0, anneal=False))  # the noise stays at 8 instead of falling


def test_batches_sum_their_network_calls_and_seed_none_is_fresh(weights_dir, monkeypatch):
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    made = []
    denoiser = pipe.denoiser
    monkeypatch.setattr(pipe, "denoiser", lambda: made.append(denoiser()) or made[-1])
    clips = torch.from_numpy(moving_square_frames(20))[None].repeat(3, 1, 1, 1, 1)  # [3,20,32,32,1]
    settings = window_settings(pipe.window, "ar", 2, 2)
    result = evaluation.continuation_suite(pipe, clips, settings, SamplingOptions("fm", 3, seed=None), batch=2)
    assert isinstance(result["seed"], int)  # the fresh seed drawn is reported
    calls = [d.calls for d in made]
    assert len(calls) == 2 and result["nfe_per_sequence"] == pytest.approx(round((2 * calls[0] + calls[1]) / 3, 2))


@pytest.mark.parametrize("kwargs, name", [({"steps": 0}, "steps"), ({"sampler": "ddim"}, "sampler"), ({"seed": -1}, "seed"),
                                          ({"sampler": "fm", "noise": 1.0}, "noise"), ({"noise": -1.0}, "noise"), ({"sampler": "fm", "anneal": False}, "anneal"),
                                          ({"temperature": 0.0}, "temperature"), ({"temperature": float("nan")}, "temperature")])
def test_sampling_options_name_the_python_parameter(kwargs, name):
    with pytest.raises(InvalidArgumentError) as caught:
        SamplingOptions(**kwargs)
    assert caught.value.name == name and f"invalid value for {name}:" in str(caught.value) and "--" not in str(caught.value)


def test_planner_errors_speak_python():
    with pytest.raises(InvalidArgumentError) as caught:
        window_settings(1, "ar")
    assert "use mode=full" in str(caught.value) and "--" not in str(caught.value)
    assert "use --mode full" in caught.value.message({"mode": "--mode"})


def test_cli_spells_parameters_as_flags(cli, weights_dir):
    r = cli("generate", "-w", weights_dir, "-o", "x.y4m", "--mode", "full", "--context", "3", "--dry-run")
    assert r.code == 2 and "invalid value for --context: 3 (only used with --mode ar)" in r.err
    r = cli("generate", "-w", weights_dir, "-o", "x.y4m", "--sampler", "fm", "--noise", "2", "--dry-run")
    assert r.code == 2 and "invalid value for --noise: 2.0" in r.err and "--sampler mgm" in r.err
    r = cli("generate", "-w", weights_dir, "-o", "x.y4m", "--temperature", "0", "--dry-run")
    assert r.code == 2 and "invalid value for --temperature" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("extend", "in.mkv", "-w", weights_dir, "-o", "x.y4m", "--guidance-anchor", "-1", "--dry-run")
    assert r.code == 2 and "invalid value for --guidance-anchor: -1.0" in r.err and len(r.err.strip().splitlines()) == 1
    r = cli("generate", "-w", weights_dir, "-o", "-", "--json")
    assert r.code == 2 and "invalid value for --json" in r.err and "drop --json" in r.err


@pytest.mark.parametrize("kwargs, name", [({"window": 0}, "window"), ({"attention": "sparse"}, "attention"),
                                          ({"scheduler": "step"}, "scheduler"), ({"preset": "huge"}, "preset"),
                                          ({"context_prob": 2.0}, "context_prob")])
def test_transformer_recipe_blames_the_right_parameter(weights_dir, tmp_path, kwargs, name):
    with pytest.raises(InvalidArgumentError) as caught:
        train_transformer(str(tmp_path / "none.safetensors"), tmp_path / "out", TrainConfig(steps=1), tokenizer=str(weights_dir),
                          device="cpu", **kwargs)
    assert caught.value.name == name


def test_eval_reports_sampler_options_it_was_given(cli, weights_dir):
    r = cli("eval", "--weights", weights_dir, "--quick", "--suite", "continuation", "--steps", "2", "--noise", "1.5",
            "--temperature", "0.5", "--json")
    assert r.code == 0, r.err
    section = json.loads(r.out)["continuation"]
    assert section["noise"] == 1.5 and section["temperature"] == 0.5


def test_callback_states_name_their_window(weights_dir):
    """The engine marks each sampler state with its window's index in the plan, in order."""
    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    settings = window_settings(pipe.window, "ar", 2, 2)
    seen = []
    run = pipe.generate(9, settings, SamplingOptions("mgm", 3, seed=1), callback=lambda s: seen.append((s.window, s.step)))
    windows = len(run.plan.windows)
    list(run)
    assert windows > 1 and seen == [(w, k) for w in range(windows) for k in range(3)]
