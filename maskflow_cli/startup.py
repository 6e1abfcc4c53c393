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

``set_thread_policy`` chooses how the OpenMP threads of PyTorch's CPU kernels wait: a short spin on a
quiet machine, sleep on a busy one (the CLI calls it before torch is imported, when its OpenMP
runtime reads the environment).
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
# On a quiet machine: a thread done with its share of a parallel region spins this many rounds (tens
# of microseconds) for the next one before it sleeps; KMP_BLOCKTIME (milliseconds) is the LLVM/Intel
# runtimes' counterpart (not measured here: PyTorch's wheels bring GNU's).
QUIET_WAIT = {"GOMP_SPINCOUNT": "10000", "KMP_BLOCKTIME": "1"}
BUSY_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}  # elsewhere idle threads sleep at once


def set_thread_policy(environ: MutableMapping[str, str] = os.environ, busy: float | None = None) -> dict[str, str]:
    """Choose how idle OpenMP threads wait, unless ``environ`` already holds one of WAIT_SETTINGS;
    returns what it set. Takes effect only before torch is first imported.

    A network call is hundreds of small parallel kernels. Between two of them a thread that sleeps
    (OMP_WAIT_POLICY=PASSIVE) must be woken, and on a 2-core Xeon that made two threads hardly
    faster than one (0.94x the wall time); spinning for a short while (QUIET_WAIT) catches the next
    kernel, and two threads then took 0.71x. But a thread that spins while another process holds the
    other core takes time from its own partner: beside one busy process two briefly spinning threads
    took 1.70x the time of one thread, two sleeping ones 1.09x (benchmarks/threads.py). So the threads
    spin briefly where the cores that other work keeps ``busy`` (default: ``busy_cores()``) leave a
    core for each of them, and sleep elsewhere. The thread count stays PyTorch's (one per physical
    core) or OMP_NUM_THREADS."""
    if any(name in environ for name in WAIT_SETTINGS):
        return {}
    try:
        cpus = len(os.sched_getaffinity(0))
        busy = busy_cores() if busy is None else busy
    except (AttributeError, OSError):  # no affinity or load to read: the safe choice
        cpus, busy = 1, float("inf")
    try:
        threads = int(environ.get("OMP_NUM_THREADS", "").split(",")[0])
    except ValueError:
        threads = cpus
    chosen = QUIET_WAIT if threads <= 1 or busy + threads <= cpus + 0.5 else BUSY_WAIT
    environ.update(chosen)
    return dict(chosen)


def busy_cores() -> float:
    """The processes runnable right now besides this one (Linux's /proc/loadavg), where that can be
    read; else the 1-minute load average. The count of the moment, not the average, so that a busy
    process started a few seconds ago counts and this tool's own runs that just ended do not."""
    try:
        with open("/proc/loadavg") as f:
            return float(int(f.read().split()[3].partition("/")[0]) - 1)
    except (OSError, ValueError, IndexError):
        return os.getloadavg()[0]
