"""The command line's shape: shared options declared once (cli/groups.py), flags read from the
declarations, commands with few options of their own, info labels for every config field."""

import ast
import dataclasses
import inspect
from pathlib import Path

from maskflow_cli.cli.app import app
from maskflow_cli.cli.groups import GROUPS
from maskflow_cli.cli.info_command import LABELS
from maskflow_cli.cli.options import flags_for
from maskflow_cli.model_configs import TokenizerConfig, TransformerConfig

CLI = Path(__file__).resolve().parent.parent / "maskflow_cli" / "cli"
MAX_OWN_OPTIONS = 8


def _calls(name: str) -> list[str]:
    """Where in cli/ ``name(...)`` is called: 'file:function' for each call."""
    found = []
    for path in CLI.glob("*.py"):
        tree = ast.parse(path.read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for call in (n for n in ast.walk(function) if isinstance(n, ast.Call)):
                if isinstance(call.func, ast.Name) and call.func.id == name:
                    found.append(f"{path.name}:{function.name}")
    return found


def test_sampling_options_are_built_in_one_cli_function():
    assert _calls("SamplingOptions") == ["groups.py:sampling_options"]


def _callbacks(typer_app):
    """Every command function registered in ``typer_app`` and its sub-apps."""
    yield from (info.callback for info in typer_app.registered_commands)
    for group in typer_app.registered_groups:
        yield from _callbacks(group.typer_instance)


def test_no_command_takes_more_than_eight_options_of_its_own():
    own = {}
    for callback in _callbacks(app):
        grouped = {f.name for group in getattr(callback, "option_groups", ()) for f in dataclasses.fields(group)}
        grouped |= set(getattr(callback, "world_options", ()))  # maskflow data NAME: declared by the world's registry entry
        own[callback.__name__] = [name for name in inspect.signature(callback).parameters if name not in grouped]
    assert len(own) >= 10
    assert {name: params for name, params in own.items() if len(params) > MAX_OWN_OPTIONS} == {}


def test_flags_are_read_from_the_declarations():
    assert flags_for(app, ["generate"])["context_cache"] == "--context-cache"
    assert flags_for(app, ["infill"])["ranges"] == "RANGES"
    assert flags_for(app, ["train"])["data"] == "DATA" and flags_for(app, ["eval"])["data"] == "--data"
    assert flags_for(app, ["train-tokenizer"])["constant_time_prob"] == "--constant-time-prob"  # another command's, as a fallback
    assert flags_for(app, ["generate"])["json_"] == "--json"


def test_info_labels_every_config_field():
    for kind, config in (("tokenizer", TokenizerConfig), ("transformer", TransformerConfig)):
        assert {f.name for f in dataclasses.fields(config)} <= set(LABELS[kind]), kind
