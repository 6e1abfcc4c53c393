import pytest
import torch

from maskflow_cli.sampling import SAMPLERS, frame_times, sample_fm, sample_mgm
from maskflow_cli.schedules import SCHEDULERS, arccos_commit_counts

from conftest import tiny_models

V = 16


class CountingDenoiser:
    """Wraps a model as a sampler's denoiser; records every call's input."""

    mask_id = V

    def __init__(self, model) -> None:
        self.model, self.calls = model, []

    def __call__(self, tokens, times, wanted, context):
        self.calls.append((tokens.clone(), times.clone()))
        return self.model(tokens, times)[wanted]


def window(batch: int = 2, frames: int = 6, context: int = 2, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, V, (batch, frames, 8, 8), generator=g)
    known = torch.zeros_like(tokens, dtype=torch.bool)
    known[:, :context] = True
    return tokens, known


@pytest.mark.parametrize("time_conditioning", [True, False])
@pytest.mark.parametrize("steps", [1, 7, 20])
def test_mgm_commits_every_masked_token_in_exactly_k_calls_and_keeps_context(time_conditioning, steps):
    _, model = tiny_models(time_conditioning)
    tokens, known = window()
    denoiser = CountingDenoiser(model)
    with torch.inference_mode():
        out = sample_mgm(denoiser, tokens, known, steps=steps, scheduler=SCHEDULERS["sigmoid"], generator=torch.Generator().manual_seed(1))
    assert len(denoiser.calls) == steps
    assert not (out == V).any() and out.min() >= 0 and out.max() < V
    assert torch.equal(out[known], tokens[known])
    masked_before = [int((x == V).sum()) for x, _ in denoiser.calls] + [0]
    committed = [a - b for a, b in zip(masked_before, masked_before[1:])]
    n = int((~known).sum() // 2)
    assert committed == [2 * c for c in arccos_commit_counts(n, steps)]  # both batch items follow the schedule
    for x, _ in denoiser.calls:  # context is shown to the network unchanged at every step
        assert torch.equal(x[known], tokens[known])


def test_times_fed_to_the_model_follow_the_unmasked_fraction():
    _, model = tiny_models()
    tokens, known = window(context=2)
    denoiser = CountingDenoiser(model)
    with torch.inference_mode():
        sample_mgm(denoiser, tokens, known, steps=5, scheduler=SCHEDULERS["cosine"], generator=torch.Generator().manual_seed(0))
    _, first_times = denoiser.calls[0]
    assert torch.allclose(first_times[:, :2], torch.ones(2, 2)) and torch.allclose(first_times[:, 2:], torch.zeros(2, 4))
    x, times = denoiser.calls[3]
    assert torch.allclose(times, frame_times(x != V, SCHEDULERS["cosine"]))
    assert torch.allclose(times[:, :2], torch.ones(2, 2)) and (times[:, 2:] < 1).all() and (times[:, 2:] > 0).any()


@pytest.mark.parametrize("time_conditioning", [True, False])
@pytest.mark.parametrize("scheduler", ["sigmoid", "linear", "cosine"])
def test_fm_leaves_no_mask_and_keeps_context(time_conditioning, scheduler):
    _, model = tiny_models(time_conditioning)
    tokens, known = window()
    denoiser = CountingDenoiser(model)
    with torch.inference_mode():
        out = sample_fm(denoiser, tokens, known, steps=10, scheduler=SCHEDULERS[scheduler], generator=torch.Generator().manual_seed(3))
    assert not (out == V).any()
    assert torch.equal(out[known], tokens[known])
    assert 1 <= len(denoiser.calls) <= 10


@pytest.mark.parametrize("name", ["mgm", "fm"])
def test_samplers_are_reproducible_with_a_seed(name):
    _, model = tiny_models()
    tokens, known = window()
    runs = []
    for seed in (5, 5, 6):
        with torch.inference_mode():
            runs.append(SAMPLERS[name](CountingDenoiser(model), tokens, known, steps=6, scheduler=SCHEDULERS["sigmoid"], generator=torch.Generator().manual_seed(seed)))
    assert torch.equal(runs[0], runs[1]) and not torch.equal(runs[0], runs[2])


def test_mgm_follows_a_confident_model():
    """A denoiser that is certain of one answer must get exactly that answer."""
    target = torch.randint(0, V, (1, 4, 8, 8), generator=torch.Generator().manual_seed(0))

    class Oracle:
        mask_id = V

        def __call__(self, tokens, times, wanted, context):
            return (torch.nn.functional.one_hot(target, V).float() * 50.0)[wanted]

    known = torch.zeros_like(target, dtype=torch.bool)
    out = sample_mgm(Oracle(), torch.zeros_like(target), known, steps=8, scheduler=SCHEDULERS["sigmoid"], generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, target)


@pytest.mark.parametrize("masked, steps", [(1024, 20), (20, 20), (21, 20), (5, 20), (0, 4), (7, 1)])
def test_arccos_commit_counts(masked, steps):
    counts = arccos_commit_counts(masked, steps)
    assert len(counts) == steps and sum(counts) == masked and min(counts) >= 0
    if masked >= steps:
        assert min(counts) >= 1
    if masked >= 4 * steps > 4:  # arccos commits slowly at first and fastest at the end
        assert counts[0] < counts[-1]


@pytest.mark.parametrize("name", ["sigmoid", "linear", "cosine"])
def test_schedulers_run_from_zero_to_one_and_invert(name):
    s = SCHEDULERS[name]
    t = torch.linspace(0, 1, 101, dtype=torch.float64)
    k = s.kappa(t)
    assert abs(float(k[0])) < 1e-9 and abs(float(k[-1]) - 1) < 1e-9 and (k.diff() >= 0).all()
    assert torch.allclose(s.inverse(k), t, atol=1e-6)
    numeric = (s.kappa(t[1:]) - s.kappa(t[:-1])) / (t[1] - t[0])
    assert torch.allclose(numeric, s.dkappa((t[1:] + t[:-1]) / 2), rtol=1e-2, atol=1e-3)


def test_gumbel_noise_is_finite_and_standard():
    from maskflow_cli.sampling import gumbel

    g = gumbel(torch.Size([200_000]), torch.Generator().manual_seed(0), torch.device("cpu"))
    assert torch.isfinite(g).all()
    assert abs(float(g.mean()) - 0.5772) < 0.02 and abs(float(g.std()) - 1.2825) < 0.02


@pytest.mark.parametrize("name", ["mgm", "fm"])
def test_callback_sees_each_step_with_the_window_as_it_stands(name):
    """callback(state): one call per step, tokens committed only grow, the last state is the result."""
    _, model = tiny_models()
    tokens, known = window()
    states = []
    with torch.inference_mode():
        out = SAMPLERS[name](CountingDenoiser(model), tokens, known, steps=5, scheduler=SCHEDULERS["sigmoid"],
                             generator=torch.Generator().manual_seed(2), callback=lambda s: states.append((s.step, s.steps, s.tokens.clone(), s.committed.clone())))
    assert [s[0] for s in states] == list(range(5)) and {s[1] for s in states} == {5}
    for (_, _, before, done_before), (_, _, after, done_after) in zip(states, states[1:]):
        assert bool((done_after | ~done_before).all())  # nothing committed is taken back
        assert torch.equal(after[done_before], before[done_before])
    assert bool(states[0][3][known].all()) and torch.equal(states[-1][2], out) and bool(states[-1][3].all())
