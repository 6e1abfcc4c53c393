"""Every benchmark runs through `python -m benchmarks` on tiny weights and renders its result."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import MODULES, common, registry
from benchmarks.__main__ import main
from maskflow_cli.worlds import maze
from maskflow_cli.clips import save_clips

pytestmark = pytest.mark.usefixtures("one_thread")

# The tiniest run of each benchmark: {weights} is the tiny weights folder, {tmp} a scratch folder.
SMOKE = {
    "eval": ["--weights", "{weights}", "--suites", "tokenizer", "--label", "tiny", "--", "--quick"],
    "long_horizon": ["--weights", "{weights}", "--frames", "12", "--steps", "1", "--guidance", "0.5", "--runs", "extend"],
    "window_speed": ["--weights", "{weights}", "--presets", "tiny", "--frames", "4", "--steps", "1", "--repeats", "1"],
    "train_throughput": ["--presets", "tiny", "--window", "2", "--batch", "1", "--steps", "1", "--warmup", "0", "--checkpointing", "off", "on",
                         "--memory-presets", "tiny"],
    "length_scaling": ["--weights", "{weights}", "--frames", "2", "--steps", "1"],
    "samplers": ["--weights", "{weights}", "--sequences", "2", "--batch", "2", "--points", "mgm:1", "fm:2"],
    "sampler_tuning": ["--weights", "{weights}", "--sequences", "2", "--batch", "2", "--base", "steps=1", "context=2",
                       "--points", "sampler=fm", "anneal=false", "guidance=0.5"],
    "guidance": ["--weights", "{weights}", "--data", "{tmp}/clips.safetensors", "--sequences", "2", "--batch", "2", "--steps", "2",
                 "--context", "2", "--suites", "continuation", "horizon", "infill", "--variants", "anneal0.5/dropped", "0.5/masked",
                 "--horizon-sequences", "1", "--horizon-frames", "20", "--infill-sequences", "2"],
    "timestep_feeding": ["--weights", "{weights}", "--sequences", "2", "--batch", "2", "--steps", "1"],
    "next_frame_knowledge": ["--weights", "{weights}", "--sequences", "2"],
    "infill_plans": ["--weights", "{weights}", "--sequences", "2", "--batch", "2", "--frames", "12", "--gaps", "4", "--steps", "1"],
    "model_fps": ["--weights", "{weights}", "--sequences", "2", "--batch", "2", "--given", "4", "--future", "4", "--steps", "1"],
    "frame_cost": ["--weights", "{weights}", "--rounds", "1", "--context", "3"],
    "context_cache": ["--weights", "{weights}", "--sequences", "2", "--batch", "2", "--steps", "1"],
    "compare": ["--variant", "one=.", "--variant", "two=. --seed 1", "--rounds", "1",
                "--", "generate", "-w", "{weights}", "--frames", "2", "--steps", "1", "-o", "{out}.mkv"],
    "levers": ["--weights", "{weights}", "--rounds", "1", "--calls", "1"],
    "maze_data_speed": ["--mazes", "1", "--clips", "1", "--frames", "2", "--size", "16"],
    "maze_tokenizer": ["--train", "{tmp}/maze.safetensors", "--test", "{tmp}/maze.safetensors", "--presets", "maze16", "--steps", "1",
                       "--batch-size", "2", "--test-frames", "2", "--rounds", "1", "--runs", "{tmp}/runs"],
    "tokenizer_reference": ["--weights", "{tmp}/tokenizer.safetensors", "--quick"],
    "data_scale": ["--tokenizer", "{weights}", "--scales", "1", "2", "--clips", "4", "--frames", "8", "--shard-clips", "2",
                   "--steps", "2", "--batch-size", "2", "--window", "6", "--workers", "1", "--scratch", "{tmp}/scale"],
    "startup": ["--weights", "{weights}", "--rounds", "1"],
    "precision": ["--weights", "{weights}", "--sequences", "2", "--batch", "2", "--rounds", "1"],
    "threads": ["--weights", "{weights}", "--frames", "2", "--rounds", "1", "--threads", "1", "--policies", "passive"],
}


def _prepare(name: str, tmp: Path, weights: Path, monkeypatch) -> None:
    """What a benchmark reads besides the tiny weights."""
    if name == "guidance":
        save_clips(tmp / "clips.safetensors", torch.randint(0, 256, (2, 20, 32, 32, 1), dtype=torch.uint8), {"dataset": "noise"})
    elif name == "maze_tokenizer":
        save_clips(tmp / "maze.safetensors", torch.randint(0, 256, (4, 1, 64, 64, 3), dtype=torch.uint8), {"dataset": "noise"})
    elif name == "tokenizer_reference":  # it writes into the file
        shutil.copy(weights / "tokenizer.safetensors", tmp / "tokenizer.safetensors")
    elif name == "maze_data_speed":  # rendering a maze takes seconds; its benchmark's bookkeeping is what runs here
        if not maze.maze_available():
            pytest.skip("needs maskflow[maze]")
        monkeypatch.setattr(maze, "render_maze", lambda seed, clips, frames, size: np.zeros((clips, frames, size, size, 3), np.uint8))


@pytest.mark.parametrize("name", list(registry()))
def test_benchmark_runs_on_tiny_weights_and_renders(name, weights_dir, tmp_path, monkeypatch):
    assert name in SMOKE, f"give {name} its tiniest run in SMOKE"
    monkeypatch.setattr(common, "PEAK_SIZE", 64)
    _prepare(name, tmp_path, weights_dir, monkeypatch)
    out = tmp_path / "result.json"
    args = [a.format(weights=weights_dir, tmp=tmp_path, out="{out}") for a in SMOKE[name]]
    main([name, "--out", str(out), *args])
    result = json.loads(out.read_text())
    assert result["benchmark"] == name and f"python -m benchmarks {name} --out " in result["command"]
    assert {"cpu", "flags", "capability", "threads", "torch", "device", "matmul_peak_gflops"} <= set(result["machine"])
    text = registry()[name].render(result)
    heading, blank, *body = text.splitlines()
    assert heading.startswith("### ") and result["command"] in heading and blank == "" and body


def test_every_module_with_a_run_is_registered():
    folder = Path(__file__).resolve().parent.parent / "benchmarks"
    runnable = {p.stem for p in folder.glob("*.py") if "\ndef run(" in p.read_text()}
    assert runnable == set(MODULES)


def test_list_names_every_benchmark(capsys):
    main(["--list"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == list(registry())


def test_guidance_runs_append_to_one_file_and_pair_with_the_stored_base(weights_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(common, "PEAK_SIZE", 64)
    _prepare("guidance", tmp_path, weights_dir, monkeypatch)
    out = tmp_path / "guidance.json"
    run = ["guidance", "--out", str(out), "--weights", str(weights_dir), "--data", str(tmp_path / "clips.safetensors"),
           "--sequences", "2", "--batch", "1", "--steps", "2", "--context", "2", "--variants", "0.5/dropped"]
    main(run)
    stored = json.loads(out.read_text())
    base = stored["runs"][0]["rows"][0]
    base["mse"] = [v + 1 for v in base["mse"]]  # a stored base the second run can only have read from the file
    out.write_text(json.dumps(stored))
    main(run)  # the base of this setup is stored: not run again
    main([*run, "--seed", "1"])  # another setup: its own base
    runs = json.loads(out.read_text())["runs"]
    assert [[row["variant"] for row in r["rows"]] for r in runs] == [["0", "0.5/dropped"], ["0.5/dropped"], ["0", "0.5/dropped"]]
    first, second = runs[0]["rows"][1], runs[1]["rows"][0]
    assert second["mse"] == first["mse"] and second["vs_base"]["mse_vs_base"] == pytest.approx(first["vs_base"]["mse_vs_base"] - 1, abs=1e-3)
    assert [r["command"].endswith("--seed 1") for r in runs] == [False, False, True]


def test_guidance_rows_of_another_setup_pair_with_the_unguided_base_too(weights_dir, tmp_path, monkeypatch):
    from benchmarks import guidance

    monkeypatch.setattr(common, "PEAK_SIZE", 64)
    monkeypatch.setattr(guidance, "UNGUIDED", {"steps": 2, "context": 2})  # the tiny weights' window is too short for 6
    _prepare("guidance", tmp_path, weights_dir, monkeypatch)
    out = tmp_path / "guidance.json"
    run = ["guidance", "--out", str(out), "--weights", str(weights_dir), "--data", str(tmp_path / "clips.safetensors"),
           "--sequences", "2", "--batch", "1", "--steps", "2", "--variants", "0.5/dropped"]
    main([*run, "--context", "2"])
    main([*run, "--context", "3", "--temperature", "0.8"])
    runs = json.loads(out.read_text())["runs"]
    (base, _), (other_base, other) = runs[0]["rows"], runs[1]["rows"]
    assert other["temperature"] == 0.8 and other["vs_base"]["mse_vs_base"] == pytest.approx(
        sum(a - b for a, b in zip(other["mse"], other_base["mse"])) / 2, abs=1e-3)
    against = guidance.vs_unguided(other, runs)
    assert against["mse_vs_base"] == pytest.approx(sum(a - b for a, b in zip(other["mse"], base["mse"])) / 2, abs=1e-3)
    assert guidance.vs_unguided(base, runs) is None
    page = guidance.render({"runs": runs, "command": runs[-1]["command"], "machine": runs[-1]["machine"]})
    assert "temperature 0.8, context 3" in page and "vs unguided, 2 steps, context 2" in page
    main([*run, "--context", "3", "--temperature", "0.7", "--pair-unguided"])  # no base of its own: paired with the unguided one
    (alone,) = json.loads(out.read_text())["runs"][2]["rows"]
    assert alone["vs_base"]["mse_vs_base"] == pytest.approx(sum(a - b for a, b in zip(alone["mse"], base["mse"])) / 2, abs=1e-3)
