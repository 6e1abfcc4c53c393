"""A training run's folder: claimed so that one run never overwrites or mixes with another.

- :func:`claimed_run_folder` creates the output folder (and its parents) for a run, refuses a folder
  that already holds a run unless the caller resumes it or asks to overwrite it (then the old run's
  files are removed first), and on failure removes the folders it created while they are empty;
- :func:`run_identity` is what a checkpoint records of the settings that shape the run (every
  training and model config field, and the recipe's own settings such as the tokenizer's content
  hash); :func:`check_same_run` refuses to resume with any of them changed, naming the first;
- :func:`write_checkpoint` and :func:`append_metrics` write the run's files, turning any failure to
  write (disk full, no permission) into an OutputError with the OS's reason.

Settings that do not change what is learned may differ on resume: the number of steps (to train on
or stop early), how often to log and checkpoint, the device, precision and compilation.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from .errors import InvalidArgumentError, OutputError, WeightsError
from .partial_files import write_failure
from .signals import signals_deferred

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"
# Files a run writes; a folder holding any of them holds a run.
RUN_FILES = (CHECKPOINT, f".{CHECKPOINT}.tmp", METRICS, "tokenizer.safetensors", "transformer.safetensors")
# TrainConfig fields that a resumed run may change.
FREE_TRAIN_FIELDS = ("steps", "time_limit", "checkpoint_every", "log_every", "precision", "compile")
_RESUME_FIX = "resume with the same setting, or train into another folder"


def make_output_dir(out_dir: Path) -> list[Path]:
    """Create the training output folder (and its parents) -> the folders created, outermost first.
    OutputError, one line, if that is impossible: a file of that name, a file on the way, no permission."""
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(str(out_dir), "is a file, not a folder; give a folder for the weights, checkpoint and metrics")
    missing = [p for p in reversed([out_dir, *out_dir.parents]) if not p.exists()]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(str(out_dir), f"cannot create the folder: {error.strerror or error}") from None
    return missing


@contextmanager
def claimed_run_folder(out_dir: Path, *, resume: bool, overwrite: bool) -> Iterator[None]:
    """The folder for a run that starts (or, with ``resume``, continues) in ``out_dir``.

    OutputError if it holds another run and neither ``resume`` nor ``overwrite`` is set. With
    ``overwrite`` that run's files are set aside (a hidden folder inside ``out_dir``) and removed only
    when the new run has finished; if it fails they are put back. Folders created here are removed
    again if the block fails while they are empty."""
    if resume and overwrite:
        raise InvalidArgumentError("overwrite", True, "{param:resume} continues the run in the folder, {param:overwrite} replaces it: choose one")
    held = [name for name in RUN_FILES if (out_dir / name).exists()] if out_dir.is_dir() else []
    if held and not (resume and CHECKPOINT in held):
        if not overwrite:
            what = "holds a training run" if not resume else "holds a training run but no checkpoint to resume"
            raise OutputError(str(out_dir), f"{what} ({', '.join(held)}); pass {{param:resume=True}} to continue it, "
                                            f"{{param:overwrite=True}} to replace it, or give another folder")
    replaced = _set_aside(out_dir, held) if held and overwrite else None
    created = make_output_dir(out_dir)
    try:
        yield
    except BaseException:
        if replaced is not None:
            _move(replaced, out_dir, held)  # the earlier run back in place of the failed one's files
            replaced.rmdir()
        for folder in reversed(created):  # innermost first; rmdir leaves a folder that is not empty
            try:
                folder.rmdir()
            except OSError:
                break
        raise
    if replaced is not None:
        shutil.rmtree(replaced, ignore_errors=True)


def _set_aside(out_dir: Path, names: list[str]) -> Path:
    """Move the earlier run's files ``names`` into a new hidden folder in ``out_dir`` -> that folder."""
    aside = out_dir / f".replaced-run-{os.getpid()}"
    try:
        aside.mkdir()
    except OSError as error:
        raise OutputError(str(aside), f"cannot set the earlier run aside: {error.strerror or error}") from None
    _move(out_dir, aside, names)
    return aside


def _move(source: Path, target: Path, names: list[str]) -> None:
    for name in names:
        try:
            os.replace(source / name, target / name)
        except OSError as error:
            raise OutputError(str(source / name), f"cannot move the earlier run's file: {error.strerror or error}") from None


def tensors_hash(tensors: Iterable[tuple[str, torch.Tensor]]) -> str:
    """SHA-256 (hex) over named tensors in the order given (names, dtypes, shapes, values)."""
    digest = hashlib.sha256()
    for name, tensor in tensors:
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def content_hash(module: nn.Module) -> str:
    """SHA-256 over a module's state (names, dtypes, shapes, values): equal for the same weights."""
    return tensors_hash(module.state_dict().items())


def run_identity(train_config: object, model_config: object, settings: Mapping[str, object]) -> dict[str, object]:
    """What a checkpoint records of a run: the recipe's ``settings`` (named as its parameters), the
    training config's fields that shape the run, and the model config's fields (``model.NAME``)."""
    train = {k: v for k, v in dataclasses.asdict(train_config).items() if k not in FREE_TRAIN_FIELDS}
    model = {f"model.{k}": v for k, v in dataclasses.asdict(model_config).items()}
    return {**settings, **train, **model}


def check_same_run(checkpoint: Path, recorded: object, current: Mapping[str, object]) -> None:
    """WeightsError naming the first setting of ``current`` that differs from the run ``recorded``
    in the checkpoint (or its absence: a checkpoint that recorded no settings)."""
    if not isinstance(recorded, Mapping):
        raise WeightsError(str(checkpoint), "is not a checkpoint that records its run's settings (another file, or one of an "
                                            "older maskflow); delete it (or pick another output folder) to train from the start")
    for name, value in current.items():
        before = recorded.get(name, "(not recorded)")
        if _plain(before) != _plain(value):
            field = f"the model's {name.removeprefix('model.')}" if name.startswith("model.") else f"{{param:{name}}}"
            raise WeightsError(str(checkpoint), f"this run was trained with {field} {_shown(before)}, not {_shown(value)}; {_RESUME_FIX}")


def _plain(value: object) -> object:
    return list(map(_plain, value)) if isinstance(value, (list, tuple)) else value


def _shown(value: object) -> str:
    text = repr(_plain(value))
    return text if len(text) <= 24 else text[:20] + "..."


class _RecordingWriter:
    """A file for ``torch.save`` that keeps the OSError of a failed write: torch reports it only as a
    RuntimeError of its zip writer."""

    def __init__(self, file) -> None:
        self.file, self.error = file, None

    def write(self, data) -> int:
        try:
            return self.file.write(data)
        except OSError as error:
            self.error = error
            raise

    def flush(self) -> None:
        self.file.flush()


def write_checkpoint(path: Path, state: dict) -> None:
    """``torch.save`` ``state`` to ``path`` through ``.NAME.tmp``, renamed when complete, so the last
    complete checkpoint stays if this one is interrupted or fails. OutputError if it cannot be written."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as file:
            sink = _RecordingWriter(file)
            try:
                with signals_deferred():  # torch's writer calls sink.write: a stop raised in there would corrupt its state
                    torch.save(state, sink)
            except RuntimeError:
                if sink.error is None:
                    raise
                raise sink.error from None
        os.replace(tmp, path)
    except BaseException as error:  # interrupted or failed mid-write: no partial file
        tmp.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise OutputError(str(path), f"cannot write the checkpoint: {write_failure(error)}") from None
        raise


def append_metrics(path: Path, record: dict) -> None:
    """Append one JSON line to the metrics log; OutputError if it cannot be written."""
    try:
        with open(path, "a") as log:
            log.write(json.dumps(record) + "\n")
    except OSError as error:
        raise OutputError(str(path), f"cannot write: {write_failure(error)}") from None
