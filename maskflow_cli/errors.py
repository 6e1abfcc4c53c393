"""Typed errors: the library's single way of reporting bad input.

Every error carries one line of text that names what was wrong (the argument or file, its value)
and how to fix it. The command-line layer prints that line to stderr and exits with ``exit_code``;
nothing else in the package prints or exits.
"""

from __future__ import annotations


class MaskflowError(Exception):
    """Base class. ``str(error)`` is a complete one-line message for a user."""

    exit_code = 1


class InvalidArgumentError(MaskflowError):
    """An option or argument has a value outside what is allowed."""

    exit_code = 2

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"invalid value for {name}: {value!r} ({expected})")


class VideoError(MaskflowError):
    """A video could not be read or written: missing, not a video, corrupt, truncated, ..."""

    exit_code = 3

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem}")


class WeightsError(MaskflowError):
    """Weights are missing, corrupt, of the wrong kind, or do not fit together."""

    exit_code = 4

    def __init__(self, source: str, problem: str) -> None:
        self.source, self.problem = source, problem
        super().__init__(f"weights {source}: {problem}")


class OutputError(MaskflowError):
    """The output cannot be written where asked (would overwrite the input, bad suffix, ...)."""

    exit_code = 5

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"output {path}: {problem}")
