"""Warm starts and lineage: training that begins from exported weights (``init_from``), and the history
the new weights carry.

- ``warm_start`` loads one component of a weights source (its exported EMA weights) after checking that
  its config is the one the run builds; a field that differs is refused (WeightsError, exit 4) by name.
- ``lineage_of`` is what the new weights record of their parent: the parent's content hash, its steps
  and training clips, and the parent's own lineage before it (oldest first).
- ``lineage_totals`` adds up the whole history; ``history_lines`` writes it out for ``maskflow info``
  and the model card.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import WeightsError
from .weight_headers import Component, inspect_weights

if TYPE_CHECKING:  # torch is imported by what trains, not by maskflow info, which shows history_lines
    from torch import nn

HASH_DIGITS = 16
ANCESTOR_FACTS = ("dataset", "hardware", "wall_seconds")  # kept of each ancestor besides hash, steps and clips


def content_hash(component: Component) -> str:
    """SHA-256 of a component's tensors (names, dtypes, shapes and bytes, in name order), its first
    HASH_DIGITS hex digits: the same weights give the same hash whatever metadata their file has."""
    from safetensors import safe_open

    from .run_folders import tensors_hash

    prefix = component.kind + "."
    with safe_open(str(component.file), framework="pt") as handle:
        keys = sorted(k for k in handle.keys() if k.startswith(prefix))
        return tensors_hash((key, handle.get_tensor(key)) for key in keys)[:HASH_DIGITS]


def clips_seen(info: dict) -> int:
    """Training clips (or frames, for a tokenizer) a component saw in its own run: recorded, or its
    steps times its batch size for weights written before that was recorded (0 when unknown)."""
    if isinstance(info.get("clips_seen"), int):
        return info["clips_seen"]
    steps, batch = info.get("steps"), info.get("batch_size")
    return steps * batch if isinstance(steps, int) and isinstance(batch, int) else 0


def lineage_of(parent: Component, source: str) -> dict[str, Any]:
    """The facts a component trained from ``parent`` records: ``init_from`` (the source's name, no
    path) and ``lineage``, its ancestors oldest first, the parent last."""
    info = parent.info
    entry = {"hash": content_hash(parent), "steps": info.get("steps") if isinstance(info.get("steps"), int) else 0,
             "clips_seen": clips_seen(info), **{k: info[k] for k in ANCESTOR_FACTS if k in info}}
    earlier = info.get("lineage") if isinstance(info.get("lineage"), list) else []
    name = source if source.startswith("hf://") else Path(source).name
    return {"init_from": name, "lineage": [*earlier, entry]}


def lineage_totals(facts: dict) -> dict[str, int]:
    """``total_steps`` and ``total_clips_seen`` over a component's lineage and its own run; nothing
    for a component trained from scratch."""
    ancestors = facts.get("lineage")
    if not isinstance(ancestors, list):
        return {}
    return {"total_steps": facts["steps"] + sum(int(a.get("steps") or 0) for a in ancestors),
            "total_clips_seen": facts["clips_seen"] + sum(int(a.get("clips_seen") or 0) for a in ancestors)}


def history_lines(info: dict) -> list[str]:
    """A component's training history, one line a run, oldest first; [] for one trained from scratch."""
    ancestors = info.get("lineage")
    if not isinstance(ancestors, list):
        return []
    runs = [*ancestors, {**info, "hash": "these weights"}]
    lines = []
    for number, run in enumerate(runs, 1):
        where = ", ".join(str(run[k]) for k in ("dataset", "hardware") if run.get(k))
        lines.append(f"{number}. {run.get('hash')}: {run.get('steps', 0):,} steps, {clips_seen(run):,} clips" + (f" ({where})" if where else ""))
    if "total_steps" in info:
        lines.append(f"total: {info['total_steps']:,} steps, {info.get('total_clips_seen', 0):,} clips")
    return lines


def warm_start(source: str | os.PathLike, kind: str, config: Any, fields: dict[str, str], fallback: str) -> tuple[nn.Module, dict]:
    """The ``kind`` module of weights ``source`` to train on, and the lineage facts for the weights it
    becomes. ``config`` is the config the run builds; the first field where the source's differs is
    refused (WeightsError) with the parameter that sets it: ``fields[name]``, else ``fallback``."""
    where = os.fspath(source)
    components = inspect_weights(source)
    if kind not in components:
        raise WeightsError(where, f"has no {kind} to start from")
    parent = components[kind]
    for field in dataclasses.fields(config):
        theirs, mine = getattr(parent.config, field.name), getattr(config, field.name)
        if theirs != mine:
            raise WeightsError(where, f"its {kind} has {field.name} = {theirs!r}, this run builds {mine!r}: "
                                      f"set {{param:{fields.get(field.name, fallback)}}} as it was trained")
    from .weights import load_component

    return load_component(parent).train(), lineage_of(parent, where)
