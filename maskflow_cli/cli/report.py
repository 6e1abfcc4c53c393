"""The one output path: results to stdout, progress and logs to stderr.

Progress bars and log lines appear only when stderr is a terminal and neither ``--quiet`` nor
``--json`` is given; ``--json`` prints exactly one JSON object to stdout.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..errors import OutputError


@dataclass(frozen=True)
class ProgressBar:
    progress: Progress
    task: TaskID

    def advance(self, amount: int = 1) -> None:
        self.progress.advance(self.task, amount)

    def note(self, text: str) -> None:
        """Show ``text`` after the bar (e.g. the latest loss)."""
        self.progress.update(self.task, note=text)


@dataclass
class Reporter:
    json_output: bool = False
    quiet: bool = False
    console: Console = field(default_factory=lambda: Console(stderr=True))
    started: float = field(default_factory=time.perf_counter)

    @property
    def interactive(self) -> bool:
        return not (self.json_output or self.quiet) and self.console.is_terminal

    def log(self, message: str) -> None:
        if self.interactive:
            self.console.print(message, highlight=False)

    @contextmanager
    def progress(self, total: int, description: str) -> Iterator[ProgressBar | None]:
        """A bar of ``total`` units on stderr, or None when there is no terminal to show it on."""
        if not self.interactive or total <= 0:
            yield None
            return
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TimeRemainingColumn(), TextColumn("{task.fields[note]}"))
        with Progress(*columns, console=self.console, transient=True) as bar:
            yield ProgressBar(bar, bar.add_task(description, total=total, note=""))

    def seconds(self) -> float:
        return round(time.perf_counter() - self.started, 3)

    def result(self, summary: dict, message: str) -> None:
        """Report a finished command: the JSON object on stdout with --json, else a log line."""
        if self.json_output:
            _print_out(json.dumps(summary))
        else:
            self.log(message)

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
