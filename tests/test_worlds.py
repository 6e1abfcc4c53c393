"""The registry of worlds: every world gets its data command, eval finds its held-out clips and drift
statistics there, and a new world needs nothing but its entry.

Axis legend: N clips, B sequences, T frames, Y, X pixels, C channels.
"""

from __future__ import annotations

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from maskflow_cli import worlds
from maskflow_cli.clips import check_clips_output, load_clips, save_clips
from maskflow_cli.cli.data_commands import world_command
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.evaluation import EvalSize, evaluate, held_out_sequences
from maskflow_cli.metrics import to_unit
from maskflow_cli.model_configs import TokenizerConfig
from maskflow_cli.tokenizer import FrameTokenizer
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.weight_sources import NAMED_WEIGHTS
from maskflow_cli.worlds import DEFAULT_WORLD, WORLDS, DatasetJob, Option, World, drift_stats, world_named, world_of_weights
from maskflow_cli.worlds.maze import drift_stats as maze_stats
from maskflow_cli.worlds.moving_mnist import frame_stats, moving_mnist


def test_every_world_has_a_data_command_made_from_its_entry(cli):
    listing = cli("data", "--help")
    assert listing.code == 0
    for name, entry in WORLDS.items():
        assert entry.name == name and name in listing.out
        assert entry.weights is None or entry.weights in NAMED_WEIGHTS
        page = cli("data", name, "--help")
        assert page.code == 0 and entry.description.splitlines()[0][:40] in " ".join(page.out.split())
        for option in entry.options:
            assert "--" + option.name.replace("_", "-") in page.out


def test_the_world_of_weights_is_the_world_of_a_shipped_set(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert world_of_weights(None).name == DEFAULT_WORLD == world_of_weights("digits").name == "moving-mnist"
    assert world_of_weights("maze").name == "maze"
    assert world_of_weights(tmp_path).name == DEFAULT_WORLD  # a folder says nothing about its world
    (tmp_path / "maze").mkdir()  # ./maze is a folder: the path is meant, not the shipped set
    assert world_of_weights("maze").name == DEFAULT_WORLD
    with pytest.raises(InvalidArgumentError, match="choose one of moving-mnist, maze") as caught:
        world_named("mazes")
    assert caught.value.name == "world"


def test_drift_statistics_are_those_of_every_world_measured_on_the_frames_channels():
    gray = moving_mnist(2, 4, seed=1, split="test", size=32).frames  # [2,4,32,32,1]
    assert list(drift_stats(gray, gray)) == ["ink", "crisp", "blobs"]
    rgb = torch.randint(0, 256, (2, 4, 32, 32, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    stats = drift_stats(rgb[:1], rgb)
    assert list(stats) == ["ink", "crisp", "blobs", "colour", "sharpness"]
    expected = {**frame_stats(rgb[:1]), **maze_stats(rgb[:1], rgb)}
    assert all(torch.equal(stats[k], expected[k]) for k in expected)


def test_eval_takes_its_default_data_from_the_world():
    fmt = FrameFormat(32, 32, 1)
    clips = held_out_sequences(None, 4, 2, fmt, seed=3)
    assert torch.equal(clips, moving_mnist(2, 4, seed=3, split="test", size=32).frames)
    with pytest.raises(InvalidArgumentError, match="for world:"):
        held_out_sequences(None, 4, 2, fmt, seed=3, world="nowhere")
    tokenizer = FrameTokenizer(TokenizerConfig(height=32, width=32, channels=1, base_channels=8, channel_multipliers=(1, 2), levels=(4, 4)))
    size = EvalSize(tokenizer_frames=8, continuation_sequences=1, horizon_sequences=1, horizon_windows=1, infill_sequences=1, batch=1, fvd_clips=0)
    result = evaluate(None, tokenizer.eval(), torch.device("cpu"), data=None, size=size, suites=("tokenizer",), settings=None,
                      options=SamplingOptions(seed=0), data_seed=1)
    assert result["data"] == "moving-mnist test digits" and result["tokenizer"]["frames"] == 8


# ---- a new world: one entry ----------------------------------------------------------------------


def _flat_dataset(output: str, *, clips: int, frames: int, seed: int, overwrite: bool = False) -> DatasetJob:
    """Clips of one gray level each, drawn by the seed."""
    check_clips_output(output, overwrite)
    levels = torch.randint(0, 256, (clips,), generator=torch.Generator().manual_seed(seed)).to(torch.uint8)  # [N]

    def run(on_progress) -> dict:
        video = levels.view(-1, 1, 1, 1, 1).expand(clips, frames, 8, 8, 1)  # [N,T,8,8,1]
        save_clips(output, video, {"dataset": "flat", "seed": seed}, overwrite=overwrite, extra={"levels": levels})
        if on_progress is not None:
            on_progress(clips)
        return {"dataset": "flat", "clips": clips}

    def report(made: dict, seconds: float) -> tuple[dict, str]:
        return {**made, "seconds": seconds}, f"wrote {output}: {clips} flat clips"

    return DatasetJob(f"making {clips} flat clips", run, report, progress="making", clips=clips)


FLAT = World(
    name="flat",
    description="Write clips of one gray level each.",
    output_help="The clips file to write (.safetensors).",
    options=(Option("clips", int, "Number of clips."), Option("frames", int, "Frames per clip.", short="-n"),
             Option("seed", int, "Random seed.", default=0)),
    dataset=_flat_dataset,
    held_out=lambda count, frames, fmt, seed: torch.full((count, frames, *fmt.shape), 128, dtype=torch.uint8),
    held_out_name="flat gray clips",
    stats=lambda video, real: {"level": to_unit(video).mean((2, 3, 4))},  # [B,T]
    stats_channels=(1,),
)


def test_a_new_world_needs_nothing_but_its_entry(tmp_path, monkeypatch):
    app = typer.Typer()
    app.command("flat")(world_command(FLAT))
    app.command("other")(lambda: None)  # a second command, so that Typer keeps the command name
    out = tmp_path / "flat.safetensors"
    result = CliRunner().invoke(app, ["flat", str(out), "--clips", "3", "-n", "2", "--seed", "4", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"command": "data flat", "output": str(out), "dataset": "flat", "clips": 3,
                                         "seconds": json.loads(result.stdout)["seconds"]}
    frames, metadata = load_clips(out)
    assert frames.shape == (3, 2, 8, 8, 1) and metadata == {"format_version": 1, "dataset": "flat", "seed": 4}
    monkeypatch.setitem(worlds.WORLDS, "flat", FLAT)  # its line in the registry
    fmt = FrameFormat(8, 8, 1)
    assert held_out_sequences(None, 5, 2, fmt, seed=0, world="flat").shape == (2, 5, 8, 8, 1)
    assert list(drift_stats(frames, frames)) == ["ink", "crisp", "blobs", "level"]
