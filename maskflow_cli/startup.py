"""Process-wide settings for speed: a start-up cost avoided, and the allocator.

``defer_einops_dynamo`` keeps einops from importing ``torch._dynamo`` when nothing is compiled.

einops 0.8 registers its functions with ``torch._dynamo`` the first time it meets a torch tensor
(``einops._torch_specific``, imported by its torch backend). Importing ``torch._dynamo`` costs about as
much as importing torch itself, and einops means to skip the registration from torch 2.8 on, but
compares version strings, so "2.13" counts as older than "2.8". ``defer_einops_dynamo`` puts a stand-in
for that module in ``sys.modules``: einops' backend import then finds it and registers nothing, and the
first attribute anyone reads from it (``einops.layers.torch`` does) imports the real module in its place.

``set_allocator`` tunes glibc's malloc for the network's large activations (the CLI calls it; a
library user may).

``set_thread_policy`` chooses how the OpenMP threads of PyTorch's CPU kernels wait (the CLI calls it
before torch is imported, when its OpenMP runtime reads the environment).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import sys
import types
from typing import MutableMapping

_NAME = "einops._torch_specific"


class _Deferred(types.ModuleType):
    def __getattr__(self, attribute: str):
        if sys.modules.get(_NAME) is self:
            del sys.modules[_NAME]
        return getattr(importlib.import_module(_NAME), attribute)


def defer_einops_dynamo() -> None:
    """Install the stand-in unless einops' torch module is already loaded (then it is too late)."""
    sys.modules.setdefault(_NAME, _Deferred(_NAME))


# glibc mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TUNED = {_M_MMAP_THRESHOLD: 256 << 20, _M_TRIM_THRESHOLD: 512 << 20}
_DEFAULT = {_M_MMAP_THRESHOLD: 128 << 10, _M_TRIM_THRESHOLD: 128 << 10}


def set_allocator(tuned: bool = True) -> bool:
    """With ``tuned``, glibc serves allocations up to 256 MiB from its heap and keeps up to 512 MiB of
    freed memory instead of returning it: each network call's activations (a few MiB each) then reuse
    pages, where by default every one is mapped, zero-filled and unmapped again (thousands of page
    faults per call; see benchmarks/levers.py). ``tuned=False`` restores glibc's initial values.
    Returns False where the C library has no ``mallopt`` (not glibc), and changes nothing there."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt if name else None
    except (OSError, AttributeError):
        mallopt = None
    if mallopt is None:
        return False
    for parameter, value in (_TUNED if tuned else _DEFAULT).items():
        mallopt(parameter, value)
    return True


# The OpenMP settings that say how idle threads wait (GNU libgomp, which PyTorch's CPU wheels use, and
# LLVM/Intel runtimes); the user's own setting of any of them wins.
WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def set_thread_policy(environ: MutableMapping[str, str] = os.environ) -> dict[str, str]:
    """Idle OpenMP threads sleep instead of spinning: OMP_WAIT_POLICY=PASSIVE, unless ``environ``
    already holds one of WAIT_SETTINGS. Returns what it set.

    By default libgomp keeps a thread that has finished its share of a parallel region spinning for
    a while in case more work comes. Between a network call's many small kernels that spinning costs
    CPU time with nothing done, and on a machine whose cores are busy with other work it competes
    with that work (benchmarks/threads.py measures it). The thread count stays PyTorch's choice (or
    OMP_NUM_THREADS). Takes effect only before torch is first imported."""
    if any(name in environ for name in WAIT_SETTINGS):
        return {}
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return {"OMP_WAIT_POLICY": "PASSIVE"}
