"""maskflow recipe NAME --smoke: every recipe runs end to end on the CPU, writes only the weights and
RECORD.md, and its RECORD.md's commands remake the same weights."""

import json
import re
import shlex

import pytest
from safetensors.torch import load_file

from maskflow_cli.window_recipes import MAX_FOLDER_BYTES, command_line

FILES = ["RECORD.md", "tokenizer.safetensors", "transformer.safetensors"]


def run_recipe(cli, name, out):
    result = cli("recipe", name, "--smoke", "-o", out, "--json")
    assert result.code == 0, result.err
    summary = json.loads(result.out)
    assert summary["files"] == FILES and sorted(p.name for p in out.parent.iterdir()) == [out.name]  # no work files left
    assert sorted(p.name for p in out.iterdir()) == FILES and summary["bytes"] < MAX_FOLDER_BYTES
    return summary, (out / "RECORD.md").read_text()


def recorded_commands(record: str) -> list[list[str]]:
    """The maskflow commands of RECORD.md, without 'maskflow' (and the mkdir lines)."""
    lines = [shlex.split(line) for block in re.findall(r"```bash\n(.*?)```", record, re.S) for line in block.splitlines()]
    return [words[1:] for words in lines if words[0] == "maskflow"]


def test_the_command_lines_are_written_from_the_arguments():
    line = command_line("train", "data", output="runs/x", time_limit=90.0, block_causal=True, snr_weighting=False, tokenizer=None,
                        suite=["a", "b"], lr=5e-4)
    assert line == "maskflow train data --output runs/x --time-limit 90s --block-causal --suite a --suite b --lr 0.0005"


def test_digits_fast_smoke_and_its_record_remakes_the_weights(cli, tmp_path, monkeypatch):
    summary, record = run_recipe(cli, "digits-fast", tmp_path / "out")
    commands = recorded_commands(record)
    assert [c[0] for c in commands] == ["data", "train", "eval"]
    assert {"--attention", "--block-causal", "--context-prob", "--export-dtype", "--time-limit"} <= set(commands[1])
    assert "## Training log: fast" in record and '"progress": 1.0' in record
    evaluation = json.loads(record.split("```json\n")[-1].split("```")[0])
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.chdir(scratch)
    (scratch / "data").mkdir()  # RECORD.md's mkdir -p data
    for command in commands[:2]:
        assert cli(*command).code == 0
    made, shipped = load_file(scratch / "runs/fast/transformer.safetensors"), load_file(tmp_path / "out/transformer.safetensors")
    assert made.keys() == shipped.keys() and all((made[k] == shipped[k]).all() for k in made)
    again = json.loads(cli(*commands[2]).out)
    assert again["continuation"]["maskflow"]["mse"] == evaluation["continuation"]["maskflow"]["mse"]
    refused = cli("recipe", "digits-fast", "--smoke", "-o", tmp_path / "out")
    assert refused.code == 2 and "empty" in refused.err
    assert cli("recipe", "nope", "-o", tmp_path / "new").code == 2


@pytest.mark.slow
def test_digits_continue_smoke_warm_starts_the_shipped_transformer(cli, tmp_path):
    _, record = run_recipe(cli, "digits-continue", tmp_path / "out")
    assert "--init-from digits" in record and "--export-dtype bf16" in record
    from maskflow_cli.weight_headers import inspect_weights

    info = inspect_weights(tmp_path / "out")["transformer"].info
    assert info["init_from"] == "digits" and info["lineage"][0]["steps"] == 7800 and info["storage"] == "bfloat16"


@pytest.mark.slow
def test_maze_smoke_renders_trains_both_models_and_evaluates(cli, tmp_path):
    _, record = run_recipe(cli, "maze", tmp_path / "out")
    assert [c[:2] for c in recorded_commands(record)] == [["data", "maze"], ["data", "maze"], ["train-tokenizer", "data/train"],
                                                         ["train", "data/train"], ["eval", "--weights"]]
    assert "Rendering rate measured" in record and "## Training log: tok" in record
