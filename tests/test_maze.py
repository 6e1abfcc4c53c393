"""The maze dataset: the camera path's invariants (no MuJoCo needed) and tiny real renders.

The render tests need the ``maze`` extra; CI installs it (``.ci/run``), so there they must run: they
are skipped only outside CI when memory-maze is missing.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil

import numpy as np
import pytest
import torch

from maskflow_cli import weight_sources
from maskflow_cli.clips import load_clips, load_training_clips, save_clips
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.model_configs import TokenizerConfig, TransformerConfig
from maskflow_cli.tokenizer import FrameTokenizer
from maskflow_cli.transformer import MaskFlowTransformer
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.weights import save_weights
from maskflow_cli.worlds import maze
from maskflow_cli.worlds.maze import colour_histograms, drift_stats, maze_available, maze_clips, maze_plan, maze_seed, sharpness
from maskflow_cli.worlds.maze_walk import (
    CLEARANCE, EYE_RANGE, MAX_TURN_DEG, PITCH_RANGE, SPEED_RANGE, free_cells, plan_rollout, wall_gap,
)

needs_maze = pytest.mark.skipif(not maze_available() and not os.environ.get("CI"), reason="needs pip install 'maskflow[maze]'")

# A 9x9 maze in labmaze's characters: '*' and digits are walls, 'G' a target sphere's cell, 'P' a spawn.
LAYOUT = np.array([list(row) for row in (
    "*********",
    "*P  *   *",
    "* * * * *",
    "* *   *G*",
    "* ***** *",
    "*   P   *",
    "*0*** * *",
    "*  G  * *",
    "*********",
)])


@pytest.fixture(scope="module")
def rollout():
    return plan_rollout(LAYOUT, 6, 36, np.random.default_rng(3))


def test_free_cells_exclude_walls_and_target_cells():
    free = free_cells(LAYOUT)
    assert free[1, 1] and free[1, 2] and not free[0, 0] and not free[6, 1] and not free[3, 7]


def test_eye_keeps_clear_of_walls_and_targets(rollout):
    free = free_cells(LAYOUT)
    gaps = [wall_gap(p, free) for p in rollout.position]
    assert min(gaps) >= CLEARANCE - 1e-9


def test_turns_are_smooth_and_at_most_seven_degrees_a_frame(rollout):
    turn = np.degrees(np.angle(np.exp(1j * np.diff(rollout.heading))))
    assert np.abs(turn).max() <= MAX_TURN_DEG + 1e-6
    assert np.abs(np.diff(turn)).max() <= 1.5 + 1e-6  # the turn rate itself changes gradually


def test_the_camera_moves_at_a_bounded_speed_and_sometimes_turns(rollout):
    step = np.hypot(*np.diff(rollout.position, axis=0).T)
    assert step.max() <= SPEED_RANGE[1] + 1e-9
    assert step.sum() > 5  # cells travelled in 216 frames: it goes places
    assert np.ptp(np.unwrap(rollout.heading)) > math.radians(90)


def test_eye_height_and_pitch_are_drawn_per_clip(rollout):
    eye, pitch = rollout.eye.reshape(6, 36), rollout.pitch.reshape(6, 36)
    assert (np.ptp(eye, axis=1) == 0).all() and (np.ptp(pitch, axis=1) == 0).all()
    assert len(set(eye[:, 0])) == 6
    assert EYE_RANGE[0] <= eye.min() and eye.max() <= EYE_RANGE[1]
    assert PITCH_RANGE[0] <= pitch.min() and pitch.max() <= PITCH_RANGE[1]


def test_same_generator_seed_same_path():
    a, b = (plan_rollout(LAYOUT, 2, 20, np.random.default_rng(9)) for _ in range(2))
    c = plan_rollout(LAYOUT, 2, 20, np.random.default_rng(10))
    assert np.array_equal(a.position, b.position) and not np.array_equal(a.position, c.position)


def test_train_and_test_mazes_never_share_a_seed():
    train = {maze_seed(s, "train", i) for s in range(3) for i in range(200)}
    test = {maze_seed(s, "test", i) for s in range(3) for i in range(200)}
    assert not train & test and len(train) == 600 and all(0 <= v < 2**31 for v in train | test)
    assert maze_plan(70) == [32, 32, 6]


@pytest.mark.parametrize("kwargs, name", [
    ({"clips": 0}, "clips"), ({"frames": 0}, "frames"), ({"size": 16}, "size"), ({"split": "val"}, "split"),
    ({"workers": 0}, "workers"),
])
def test_bad_arguments_name_the_parameter(kwargs, name):
    args = {"clips": 1, "frames": 1, "seed": 0, "split": "train", "size": 64, "workers": 1, **kwargs}
    with pytest.raises(InvalidArgumentError, match=f"for {name}:"):
        maze.check_maze_args(**args)


def test_missing_extra_is_one_line_naming_the_extra(monkeypatch, cli, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, package=None: None if name == "memory_maze" else real(name, package))
    result = cli("data", "maze", tmp_path / "out", "--clips", 1, "--frames", 2, "--seed", 0)
    assert result.code == 2
    assert result.err.strip().count("\n") == 0 and "pip install 'maskflow[maze]'" in result.err
    assert not (tmp_path / "out").exists()


def test_bad_options_exit_2_before_any_work(cli, tmp_path):
    result = cli("data", "maze", tmp_path / "out", "--clips", 0, "--frames", 2, "--seed", 0)
    assert result.code == 2 and "clips" in result.err and result.err.strip().count("\n") == 0


# ---- real renders (tiny) -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sharded(tmp_path_factory):
    """3 clips of 4 frames at 32x32 from two train mazes (2 clips a maze), in shards of 2 clips."""
    if not maze_available():
        pytest.skip("needs pip install 'maskflow[maze]'") if not os.environ.get("CI") else pytest.fail("CI must install maskflow[maze]")
    from maskflow_cli.cli import main

    folder = tmp_path_factory.mktemp("maze") / "train"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(maze, "CLIPS_PER_MAZE", 2)
        code = main(["data", "maze", str(folder), "--clips", "3", "--frames", "4", "--size", "32", "--seed", "5",
                     "--shard-clips", "2", "--json"])
    assert code == 0
    return folder


@needs_maze
def test_data_maze_writes_rgb_shards_that_load_back(sharded, capsys):
    files = sorted(p.name for p in sharded.iterdir())
    assert files == ["shard-00000.safetensors", "shard-00001.safetensors"]
    frames, meta = load_clips(sharded / files[0])
    assert frames.shape == (2, 4, 32, 32, 3) and frames.dtype == torch.uint8
    assert meta["dataset"] == "maze" and meta["split"] == "train" and len(set(meta["maze_seeds"])) == 1
    assert all(s % 2 == 0 for s in meta["maze_seeds"])  # train mazes
    clips = load_training_clips(sharded, 4, FrameFormat(32, 32, 3))
    assert clips.shape == (3, 4, 32, 32, 3)
    assert float(clips.float().std()) > 10  # walls, floor and sky, not a blank frame
    # smooth motion: consecutive frames differ far less than frames of different mazes
    step = (clips[:, 1:].float() - clips[:, :-1].float()).abs().mean()
    across = (clips[0].float() - clips[2].float()).abs().mean()
    assert step < across


@needs_maze
def test_same_seed_same_clips_with_more_workers(sharded, monkeypatch):
    monkeypatch.setattr(maze, "CLIPS_PER_MAZE", 2)
    parts = [video for video, _ in maze_clips(3, 4, seed=5, split="train", size=32, workers=2)]
    again = torch.from_numpy(np.concatenate(parts))
    assert torch.equal(again, load_training_clips(sharded, 4, FrameFormat(32, 32, 3)))


@needs_maze
def test_existing_shards_need_overwrite(sharded, cli):
    result = cli("data", "maze", sharded, "--clips", 1, "--frames", 4, "--size", 32, "--seed", 5)
    assert result.code == 5 and "--overwrite" in result.err



# ---- RGB drift statistics and evaluation on RGB clips --------------------------------------------


def _rgb_clips(count: int, frames: int, size: int = 32) -> torch.Tensor:
    """Coloured walls drifting past: a deterministic RGB stand-in for maze clips, uint8 [N,T,S,S,3]."""
    generator = torch.Generator().manual_seed(0)
    base = torch.randint(0, 256, (count, 1, size, 2 * size, 3), generator=generator, dtype=torch.uint8)
    return torch.stack([base[:, 0, :, t : t + size] for t in range(frames)], dim=1).contiguous()


def test_colour_distance_and_sharpness_react_to_drift():
    clips = _rgb_clips(2, 4)
    assert torch.allclose(colour_histograms(clips).sum(-1), torch.ones(2, 4))
    same = drift_stats(clips, clips[:1, :1])["colour"]  # against the first frame alone
    assert float(same[0, 0]) == 0.0 and float(same.max()) > 0
    tinted = clips.clone()
    tinted[..., 0] = 255  # all red: far from the real colours
    assert float(drift_stats(tinted, clips)["colour"].min()) > float(drift_stats(clips, clips)["colour"].max())
    blurred = torch.nn.functional.avg_pool2d(clips.float().flatten(0, 1).permute(0, 3, 1, 2), 3, 1, 1)
    blurred = blurred.permute(0, 2, 3, 1).reshape(clips.shape).round().to(torch.uint8)
    assert float(sharpness(blurred).max()) < float(sharpness(clips).min())


@pytest.fixture(scope="module")
def rgb_weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rgb_weights")
    torch.manual_seed(0)
    tokenizer = FrameTokenizer(TokenizerConfig(height=32, width=32, channels=3, base_channels=8, channel_multipliers=(1, 2), levels=(4, 4)))
    transformer = MaskFlowTransformer(TransformerConfig(vocab_size=16, frames=6, grid_height=8, grid_width=8, dim=32, depth=2, heads=2))
    save_weights(folder / "tokenizer.safetensors", {"tokenizer": tokenizer.eval()})
    save_weights(folder / "transformer.safetensors", {"transformer": transformer.eval()}, {"transformer": {"fps": 8}})
    return folder


def test_eval_on_rgb_clip_shards_reports_colour_and_sharpness(cli, rgb_weights, tmp_path):
    shards = tmp_path / "test_clips"
    shards.mkdir()
    clips = _rgb_clips(4, 20)
    save_clips(shards / "shard-00000.safetensors", clips[:2], {"dataset": "maze"})
    save_clips(shards / "shard-00001.safetensors", clips[2:], {"dataset": "maze"})
    result = cli("eval", "-w", rgb_weights, "--data", shards, "--quick", "--json", "--device", "cpu")
    assert result.code == 0, result.err
    horizon = json.loads(result.out)["horizon"]
    assert horizon["real"]["colour"] and len(horizon["generate"]["sharpness"]) == len(horizon["real"]["ink"])
    assert max(horizon["real"]["colour"]) < 0.5  # the real frames' bins are near their own histogram
    table = cli("eval", "-w", rgb_weights, "--data", shards, "--quick", "--suite", "horizon", "--device", "cpu")
    assert table.code == 0 and "sharpness" in table.out


# ---- weights by name -----------------------------------------------------------------------------


def test_maze_weights_by_name_say_how_to_get_them_when_missing(cli, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(weight_sources, "named_weights_dir", lambda name: tmp_path / "nowhere")
    result = cli("info", "-w", "maze")
    assert result.code == 4 and result.err.strip().count("\n") == 0
    assert "no maze weights are installed" in result.err and "weights/maze/README.md" in result.err
    assert "'maskflow recipe maze --budget 9m -o runs/maze'" in result.err and result.err.rstrip().endswith("pass --weights runs/maze")


def test_help_lists_only_the_weights_installed(cli, monkeypatch, tmp_path):
    """No maze weights ship: --help names digits alone; installed maze weights are listed too."""
    from maskflow_cli.cli import options

    result = cli("generate", "--help")
    text = " ".join(result.out.replace("│", " ").split())
    assert result.code == 0 and "a shipped set by name (digits). Default: digits" in text and "maze" not in text
    (tmp_path / "maze").mkdir()
    (tmp_path / "maze" / "transformer.safetensors").write_bytes(b"")  # installed as far as a listing goes
    monkeypatch.setattr(weight_sources, "named_weights_dir", lambda name: tmp_path / name)
    assert "a shipped set by name (digits, maze)." in options._weights_help()


def test_weights_by_name_and_a_folder_of_that_name_wins(cli, monkeypatch, tmp_path, rgb_weights, weights_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(weight_sources, "named_weights_dir", lambda name: rgb_weights)
    named = json.loads(cli("info", "-w", "maze", "--json").out)
    assert named["tokenizer"]["config"]["channels"] == 3
    shutil.copytree(weights_dir, tmp_path / "maze")  # ./maze is a folder: the path is meant
    local = json.loads(cli("info", "-w", "maze", "--json").out)
    assert local["tokenizer"]["config"]["channels"] == 1
    assert weight_sources.resolve_weights("digits") == weight_sources.resolve_weights(None)


def test_maze_tokenizer_presets_code_rgb_frames_as_documented():
    from maskflow_cli.tokenizer import PRESETS

    shapes = {}
    for name in ("maze16", "maze8"):
        config = TokenizerConfig(height=64, width=64, channels=3, **PRESETS[name])
        frames = torch.zeros(2, 64, 64, 3, dtype=torch.uint8)
        tokens = FrameTokenizer(config).eval().encode(frames)
        shapes[name] = (tuple(tokens.shape[1:]), config.vocab_size, int(tokens.max()) < config.vocab_size)
    assert shapes == {"maze16": ((16, 16), 1000, True), "maze8": ((8, 8), 64000, True)}
