"""The declared shapes of a safetensors file, read from its header alone.

``safe_open`` maps the whole file into memory first, which fails (or costs address space) for a
file that declares gigabytes, sparse or not; a budget check needs the shapes before that. The format
starts with an 8-byte little-endian header length and a JSON object naming each tensor's dtype and
shape.
"""

from __future__ import annotations

import json
import os

MAX_HEADER_BYTES = 100_000_000  # safetensors' own limit


def declared_shape(path: str | os.PathLike, name: str) -> list[int] | None:
    """The shape the header of ``path`` declares for tensor ``name``; None when the file has no such
    readable header or tensor (the full read that follows reports what is wrong)."""
    try:
        with open(path, "rb") as file:
            length = int.from_bytes(file.read(8), "little")
            if not 0 < length <= MAX_HEADER_BYTES:
                return None
            header = json.loads(file.read(length))
        shape = header[name]["shape"]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(shape, list) or not all(isinstance(n, int) and n >= 0 for n in shape):
        return None
    return shape
