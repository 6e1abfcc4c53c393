"""Signals that stop a run, a block that holds them back for a few statements, and a way to keep
answering them during one long native call.

Light on purpose (no torch, no FFmpeg): the command line installs its handlers for
:data:`STOP_SIGNALS` from here before anything heavy is imported.
"""

from __future__ import annotations

import functools
import os
import queue
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
_WAIT_SLICE = 0.1  # seconds between the main thread's chances to run a signal handler

# The signals that end a run cleanly (outputs removed, one line, exit 128 + number) and their words.
# (SIGHUP and SIGQUIT do not exist on Windows.)
STOP_SIGNALS: dict[int, str] = {
    getattr(signal, name): word
    for name, word in (("SIGINT", "interrupted"), ("SIGTERM", "terminated"), ("SIGHUP", "hung up"), ("SIGQUIT", "quit"))
    if hasattr(signal, name)
}


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold the :data:`STOP_SIGNALS` back while the block runs; one that arrives meanwhile is handed to
    its handler (which may raise) as the block ends.

    For the few statements between creating a temporary file and handing it to the code that
    removes it on failure: a signal handled in between would leave the file behind. Python runs
    signal handlers in the main thread only, so this swaps the handlers there for a recorder (a
    signal mask would not do: FFmpeg's and torch's threads would take the signal instead)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    previous: dict[int, object] = {}
    try:
        for signum in STOP_SIGNALS:
            handler = signal.getsignal(signum)
            if handler is not None:  # None: not set from Python, cannot be put back
                previous[signum] = signal.signal(signum, lambda number, frame: caught.append(number))
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if caught:
            _deliver(caught[0], previous[caught[0]])


def _deliver(signum: int, handler: object) -> None:
    """Act on a signal that was held back, as its handler would have."""
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL:
        os.kill(os.getpid(), signum)  # the default action, now that the handler is back



def interruptible(work: Callable[[], T]) -> T:
    """``work()``, run in a helper thread while the main thread waits in short slices, so that a stop
    signal's handler runs within a fraction of a second even when ``work`` is one long native call
    (Python runs handlers in the main thread only, between bytecodes). An exception of ``work`` is
    raised here; if the handler raises instead (the run stops), the helper is left to finish that
    work on its own, its result dropped (the program then ends with ``os._exit``, cli/main.py).
    Outside the main thread ``work`` simply runs. (Thread-local state such as torch's grad mode is
    the caller's to carry into ``work``.)

    The helper is one long-lived daemon thread (``_work_queue``), not a thread per call: OpenMP
    keeps its worker threads per calling thread, so a fresh thread for every call would start a new
    team each time, and a run's torch work could not keep to one team (pipeline.py)."""
    if threading.current_thread() is not threading.main_thread():
        return work()
    outcome: dict[str, object] = {}
    done = threading.Event()
    _work_queue().put((work, outcome, done))
    while not done.wait(_WAIT_SLICE):
        pass
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]


Job = tuple[Callable[[], object], dict, threading.Event]  # work, where its outcome goes, set when it is there


@functools.cache
def _work_queue() -> "queue.SimpleQueue[Job]":
    """The queue of ``interruptible``'s helper thread, started at the first call (and again in a
    forked child, which inherits the queue but not the thread)."""
    jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
    threading.Thread(target=_serve, args=(jobs,), name="maskflow-work", daemon=True).start()
    return jobs


def _serve(jobs: "queue.SimpleQueue[Job]") -> None:
    """The helper thread: run each job in turn, its value or exception into its outcome."""
    while True:
        work, outcome, done = jobs.get()
        try:
            outcome["value"] = work()
        except BaseException as error:  # handed to the waiting thread
            outcome["error"] = error
        finally:
            done.set()
            del work, outcome, done  # nothing of a finished job is kept alive while the next is awaited


if hasattr(os, "register_at_fork"):  # POSIX; Windows has no fork
    os.register_at_fork(after_in_child=_work_queue.cache_clear)
