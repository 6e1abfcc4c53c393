"""The one output path: results to stdout, progress and logs to stderr.

Progress bars and log lines appear only when stderr is a terminal and neither ``--quiet`` nor
``--json`` is given; ``--json`` prints exactly one JSON object to stdout. Every command ends with one
summary line on stderr (what was written, frames, fps, seconds), on a terminal or not, unless
``--quiet`` or ``--json``; warnings go to stderr unless ``--quiet``. ``stage`` adds up the seconds
spent in each stage of a command (reading, sampling, writing, ...) for the JSON summary.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Iterator, TypeVar

from ..errors import OutputError

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID

T = TypeVar("T")


_END = object()


@dataclass(frozen=True)
class ProgressBar:
    progress: Progress
    task: TaskID

    def advance(self, amount: int = 1) -> None:
        self.progress.advance(self.task, amount)

    def set_total(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def note(self, text: str) -> None:
        """Show ``text`` after the bar (e.g. the latest loss)."""
        self.progress.update(self.task, note=text)


def _stderr_console() -> Console:
    from rich.console import Console  # loaded when a command runs, not for --help

    return Console(stderr=True)


@dataclass
class Reporter:
    json_output: bool = False
    quiet: bool = False
    console: Console = field(default_factory=lambda: _stderr_console())
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds

    @property
    def interactive(self) -> bool:
        return not (self.json_output or self.quiet) and self.console.is_terminal

    def log(self, message: str) -> None:
        if self.interactive:
            self.console.print(message, highlight=False)

    @contextmanager
    def progress(self, total: int | None, description: str) -> Iterator[ProgressBar | None]:
        """A bar of ``total`` units (None: not known yet) on stderr, or None when there is no
        terminal to show it on."""
        if not self.interactive or (total is not None and total <= 0):
            yield None
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[note]}"))
        with Progress(*columns, console=self.console, transient=True) as bar:
            yield ProgressBar(bar, bar.add_task(description, total=total, note=""))

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    @contextmanager
    def stage(self, name: str, inner: str | None = None) -> Iterator[None]:
        """Add the seconds spent in the block to ``timings[name]``, less what the block itself adds
        to ``timings[inner]`` (a stage timed inside it, e.g. sampling inside writing)."""
        started, inner_before = time.perf_counter(), self.timings.get(inner, 0.0) if inner else 0.0
        try:
            yield
        finally:
            inner_spent = self.timings.get(inner, 0.0) - inner_before if inner else 0.0
            self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - started - inner_spent

    def timed(self, name: str, items: Iterable[T]) -> Iterator[T]:
        """``items``, with the time spent making each one added to ``timings[name]``."""
        iterator = iter(items)
        while True:
            with self.stage(name):
                item = next(iterator, _END)
            if item is _END:
                return
            yield item  # type: ignore[misc]

    def stage_seconds(self) -> dict[str, float]:
        return {name: round(seconds, 3) for name, seconds in self.timings.items()}

    def warn(self, message: str) -> None:
        """One warning line on stderr, on a terminal or not; only --quiet silences it."""
        if not self.quiet:
            self._line(f"maskflow: warning: {message}")

    def result(self, summary: dict, message: str) -> None:
        """Report a finished command: the JSON object on stdout with --json, else the summary line
        on stderr (unless --quiet)."""
        if self.json_output:
            _print_out(json.dumps(summary))
        else:
            self.summary_line(message)

    def summary_line(self, message: str) -> None:
        """The line that ends a command, on stderr, on a terminal or not; not with --quiet or --json."""
        if not (self.quiet or self.json_output):
            self._line(message)

    def _line(self, text: str) -> None:
        """A plain line on stderr: no markup, no wrapping at the console's width."""
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def data(self, payload: dict) -> None:
        """Print a data result (a plan, model facts) as JSON to stdout, whatever the flags."""
        _print_out(json.dumps(payload, indent=None if self.json_output else 2))


def _print_out(text: str) -> None:
    """One result line on stdout; OutputError when stdout is closed or its reader has gone."""
    if sys.stdout is None:
        raise OutputError("<stdout>", "is closed; the result cannot be printed (redirect stdout to a file or a pipe)")
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except (OSError, ValueError) as error:
        raise OutputError("<stdout>", f"cannot write: {getattr(error, 'strerror', None) or error}") from None
