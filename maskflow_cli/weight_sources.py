"""Where weights come from: a weights *source* resolved to its safetensors files.

A source is a ``.safetensors`` file, a folder of them, ``hf://owner/repo[@revision]`` (fetched
through huggingface_hub's cache, which honours ``HF_HUB_OFFLINE``), or the name of a shipped set
(``NAMED_WEIGHTS``: ``digits``, ``maze``); ``None`` means the default weights shipped with the package
(``digits``). A file or folder whose path is a shipped set's name takes precedence over the name.
What the files hold, and how they are read, is weights.py's business.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import WeightsError, first_line

NO_DEFAULT = "no default weights are installed; pass {param:weights} with a folder, a .safetensors file or hf://owner/repo"
DEFAULT_NAME = "digits"
# Weights picked by name: name -> (subfolder of the shipped weights, what to do when it holds none).
# "digits" is the default (the top folder).
NAMED_WEIGHTS: dict[str, tuple[str, str]] = {
    DEFAULT_NAME: ("", NO_DEFAULT),
    "maze": ("maze", "no maze weights are installed (none ship yet); make them on a GPU with "
                     "'maskflow recipe maze --budget 9m -o runs/maze' (the maze model card, weights/maze/README.md of "
                     "the maskflow repository, has the full recipe) and pass {param:weights=runs/maze}"),
}


def _shipped_roots() -> list[Path]:
    """Where shipped weights live: inside an installed package, or ``weights/`` of a source checkout."""
    here = Path(__file__).resolve().parent
    return [here / "default_weights", here.parent / "weights"]


def default_weights_dir() -> Path | None:
    """The shipped default weights' folder, or None when none holds weights."""
    return next((root for root in _shipped_roots() if any(root.glob("*.safetensors"))), None)


def named_weights_dir(name: str) -> Path:
    """The folder of the named weights ``name`` (a key of NAMED_WEIGHTS), installed or not: a
    subfolder of the shipped weights (inside an installed package, or ``weights/`` of a checkout)."""
    roots = _shipped_roots()
    root = next((r for r in roots if r.is_dir()), roots[0])
    return root / NAMED_WEIGHTS[name][0]


def installed_names() -> list[str]:
    """The names of NAMED_WEIGHTS whose files are installed, in NAMED_WEIGHTS' order (what --help lists)."""
    return [name for name in NAMED_WEIGHTS
            if (default_weights_dir() if name == DEFAULT_NAME else any(named_weights_dir(name).glob("*.safetensors")))]


def shipped_name(source: str | os.PathLike | None) -> str | None:
    """The shipped set a source names (``None``: the default, ``digits``), or None for a path or ``hf://``."""
    if source is None:
        return DEFAULT_NAME
    text = os.fspath(source)
    return text if text in NAMED_WEIGHTS and not Path(text).exists() else None


def resolve_weights(source: str | os.PathLike | None) -> list[Path]:
    """The safetensors files of a weights source (see module docstring)."""
    if source is None:
        folder = default_weights_dir()
        if folder is None:
            raise WeightsError("(default)", NO_DEFAULT)
        return sorted(folder.glob("*.safetensors"))
    text = os.fspath(source)
    if shipped_name(text) is not None:
        return _named_weights(text)
    if text.startswith("hf://"):
        return sorted(_download_from_hub(text).glob("*.safetensors"))
    path = Path(text)
    if path.is_dir():
        files = sorted(path.glob("*.safetensors"))
        if not files:
            raise WeightsError(text, "folder holds no .safetensors files")
        return files
    if not path.exists():
        raise WeightsError(text, "no such file or folder")
    return [path]


def _named_weights(name: str) -> list[Path]:
    if name == DEFAULT_NAME:
        return resolve_weights(None)
    files = sorted(named_weights_dir(name).glob("*.safetensors"))
    if not files:
        raise WeightsError(name, NAMED_WEIGHTS[name][1])
    return files


def _download_from_hub(url: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    repo, _, revision = url.removeprefix("hf://").partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise WeightsError(url, "expected hf://owner/repo or hf://owner/repo@revision")
    try:
        folder = snapshot_download(repo, revision=revision or None, allow_patterns=["*.safetensors", "*.json", "*.md"])
    except LocalEntryNotFoundError:
        raise WeightsError(url, "not in the local Hugging Face cache and the Hub cannot be reached (offline?)") from None
    except (HfHubHTTPError, OSError, ValueError) as error:
        raise WeightsError(url, f"could not fetch from the Hugging Face Hub: {first_line(error)}") from None
    return Path(folder)
