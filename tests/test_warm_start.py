"""--init-from: training that starts from exported weights, refuses a config that does not match them,
and records the lineage that info and the model card show."""

import json

import torch
from safetensors.torch import load_file

from maskflow_cli.lineage import content_hash, history_lines
from maskflow_cli.weight_headers import inspect_weights

from test_training import read_metrics

COMMON = ["--batch-size", 2, "--warmup", 1, "--log-every", 1, "--device", "cpu", "--precision", "fp32", "--json"]


def test_a_warm_start_continues_the_weights_and_records_their_lineage(cli, tmp_path):
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 4, "--frames", 6, "--seed", 0, "--size", 32).code == 0
    assert cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, "--steps", 2, *COMMON).code == 0
    shape = ["--preset", "tiny", "--window", 6]
    first = cli("train", data, "--tokenizer", tmp_path / "tok", "-o", tmp_path / "a", *shape, "--steps", 30, "--lr", 3e-3, *COMMON)
    assert first.code == 0, first.err
    # a differing setting is refused by name, exit 4, before any training
    wrong = cli("train", data, "-o", tmp_path / "x", "--init-from", tmp_path / "a", "--preset", "tiny", "--window", 4, "--steps", 2, *COMMON)
    assert wrong.code == 4 and "frames = 6" in wrong.err and "--window" in wrong.err, wrong.err
    wrong = cli("train", data, "-o", tmp_path / "x", "--init-from", tmp_path / "a", "--window", 6, "--steps", 2, *COMMON)
    assert wrong.code == 4 and "--preset" in wrong.err, wrong.err
    # --init-from a: its tokenizer (no --tokenizer), its transformer, a fresh optimizer and warm-up
    second = cli("train", data, "-o", tmp_path / "b", "--init-from", tmp_path / "a", *shape, "--steps", 3, "--lr", 1e-6, *COMMON)
    assert second.code == 0, second.err
    a, b = (read_metrics(tmp_path / name) for name in ("a", "b"))
    assert b[0]["loss"] < 0.7 * a[0]["loss"]  # starts where a ended, not from scratch
    before, after = load_file(tmp_path / "a" / "transformer.safetensors"), load_file(tmp_path / "b" / "transformer.safetensors")
    assert max((before[k] - after[k]).abs().max().item() for k in before) < 1e-4  # a tiny lr keeps it where it was
    parent = inspect_weights(tmp_path / "a")["transformer"]
    info = inspect_weights(tmp_path / "b")["transformer"].info
    assert info["init_from"] == "a" and info["lineage"] == [{"hash": content_hash(parent), "steps": 30, "clips_seen": 60,
                                                             "dataset": "mm.safetensors", "hardware": parent.info["hardware"],
                                                             "wall_seconds": parent.info["wall_seconds"]}]
    assert (info["steps"], info["clips_seen"], info["total_steps"], info["total_clips_seen"]) == (3, 6, 33, 66)
    # a third generation keeps the whole history
    third = cli("train", data, "-o", tmp_path / "c", "--init-from", tmp_path / "b", *shape, "--steps", 2, *COMMON)
    assert third.code == 0, third.err
    info = inspect_weights(tmp_path / "c")["transformer"].info
    assert [g["steps"] for g in info["lineage"]] == [30, 3] and info["total_steps"] == 35
    lines = history_lines(info)
    assert len(lines) == 4 and lines[0].startswith(f"1. {content_hash(parent)}: 30 steps, 60 clips") and lines[-1] == "total: 35 steps, 70 clips"
    shown = cli("info", "-w", tmp_path / "c")
    assert shown.code == 0 and "history" in shown.out and "total: 35 steps" in shown.out
    assert json.loads(cli("info", "-w", tmp_path / "c", "--json").out)["transformer"]["info"]["total_steps"] == 35
    from benchmarks.pages import render_card

    card = render_card(tmp_path / "c", tmp_path / "no-results")
    assert "History (oldest first" in card and f"- {lines[0]}" in card and "| total_steps | 35 |" in card


def test_a_tokenizer_warm_start_and_its_refusals(cli, tmp_path):
    data = tmp_path / "mm.safetensors"
    assert cli("data", "moving-mnist", data, "--sequences", 2, "--frames", 4, "--seed", 0, "--size", 32).code == 0
    assert cli("train-tokenizer", data, "-o", tmp_path / "tok", "--preset", "tiny", "--size", 32, "--steps", 2, *COMMON).code == 0
    more = cli("train-tokenizer", data, "-o", tmp_path / "tok2", "--init-from", tmp_path / "tok", "--preset", "tiny", "--size", 32,
               "--steps", 2, *COMMON)
    assert more.code == 0, more.err
    info = inspect_weights(tmp_path / "tok2")["tokenizer"].info
    assert info["init_from"] == "tok" and info["total_steps"] == 4 and info["lineage"][0]["clips_seen"] == 4
    wrong = cli("train-tokenizer", data, "-o", tmp_path / "x", "--init-from", tmp_path / "tok", "--preset", "tiny", "--size", 64,
                "--steps", 2, *COMMON)
    assert wrong.code == 4 and "height = 32" in wrong.err and "--size" in wrong.err, wrong.err
    both = cli("train-tokenizer", data, "-o", tmp_path / "x", "--init-from", tmp_path / "tok", "--decoder-only", tmp_path / "tok",
               "--steps", 2, *COMMON)
    assert both.code == 2 and "--init-from" in both.err and "--decoder-only" in both.err, both.err
    missing = cli("train", data, "-o", tmp_path / "x", "--init-from", tmp_path / "tok", "--preset", "tiny", "--steps", 2, *COMMON)
    assert missing.code == 4 and "no transformer" in missing.err


def test_the_content_hash_follows_the_tensors_not_the_metadata(tmp_path):
    from conftest import tiny_models
    from maskflow_cli.weights import save_weights

    _, model = tiny_models()
    save_weights(tmp_path / "a.safetensors", {"transformer": model}, {"transformer": {"note": 1}})
    save_weights(tmp_path / "b.safetensors", {"transformer": model}, {"transformer": {"note": 2}})
    with torch.no_grad():
        next(model.parameters()).add_(1e-3)
    save_weights(tmp_path / "c.safetensors", {"transformer": model})
    a, b, c = (content_hash(inspect_weights(tmp_path / f"{n}.safetensors")["transformer"]) for n in "abc")
    assert a == b != c and len(a) == 16
