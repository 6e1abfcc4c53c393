"""Typed errors: the library's single way of reporting bad input.

Every error carries one line of text that names what was wrong (the argument or file, its value)
and how to fix it. The command-line layer prints that line to stderr and exits with ``exit_code``;
nothing else in the package prints or exits.

Errors name Python parameters (``steps``, ``context``), never command-line flags. A message that
refers to a parameter writes it as ``{param:NAME}`` or ``{param:NAME=VALUE}``; ``str(error)`` spells
these ``NAME`` and ``NAME=VALUE`` for a Python caller, and ``error.message(flags)`` with the CLI's
table of flags spells them ``--name`` and ``--name VALUE`` (``--name`` alone for ``=True``).

File, folder and weights names are shown repr-style (:func:`quoted`), and a message escapes any
control character left in it, so a name holding a newline cannot split a message into two lines
(nor forge a second error line).
"""

from __future__ import annotations

import re
from typing import Mapping

_PARAM = re.compile(r"\{param:(\w+)(?:=([^}]*))?\}")
# Stand-ins for names that are not a file's (the standard streams, the default weights): shown as they are.
STAND_INS = ("<stdin>", "<stdout>", "(default)")


def quoted(name: object) -> str:
    """How a message shows a file, folder or weights name: repr-style (``'my clip.mkv'``), so that no
    character in it (a newline, a quote) can end the line or blur where the name ends; the
    STAND_INS as they are."""
    text = str(name)
    return text if text in STAND_INS else repr(text)


def _escaped(text: str) -> str:
    """``text`` with every non-printable character (newline, carriage return, escape, ...) spelled as
    its escape sequence: one line, whatever a name or a foreign error's text held."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def _spell(match: re.Match, flags: Mapping[str, str] | None) -> str:
    name, value = match.group(1), match.group(2)
    if flags is None or name not in flags:
        return name if value is None else f"{name}={value}"
    flag = flags[name]
    return flag if value is None or value == "True" else f"{flag} {value}"


class MaskflowError(Exception):
    """Base class. ``str(error)`` is a complete one-line message for a user."""

    exit_code = 1

    def template(self) -> str:
        """The message with its ``{param:...}`` references unspelled."""
        return str(self.args[0]) if self.args else ""

    def message(self, flags: Mapping[str, str] | None = None) -> str:
        """The one-line message; parameter names spelled as ``flags`` maps them (None: as in Python)."""
        return _escaped(_PARAM.sub(lambda m: _spell(m, flags), self.template()))

    def __str__(self) -> str:
        return self.message()


class InvalidArgumentError(MaskflowError):
    """An option or argument has a value outside what is allowed."""

    exit_code = 2

    def __init__(self, name: str, value: object, expected: str) -> None:
        self.name, self.value, self.expected = name, value, expected
        super().__init__(f"invalid value for {{param:{name}}}: {value!r} ({expected})")


class ConfigError(InvalidArgumentError, ValueError):
    """A model config field out of range; ``name`` is the field. Recipes re-raise it under the name
    of their own parameter that set the field (``frames`` is ``window`` to ``train_transformer``)."""


class VideoError(MaskflowError):
    """A video could not be read or written: missing, not a video, corrupt, truncated, ..."""

    exit_code = 3

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{quoted(path)}: {problem}")


class WeightsError(MaskflowError):
    """Weights are missing, corrupt, of the wrong kind, or do not fit together."""

    exit_code = 4

    def __init__(self, source: str, problem: str) -> None:
        self.source, self.problem = source, problem
        super().__init__(f"weights {quoted(source)}: {problem}")


class OutputError(MaskflowError):
    """The output cannot be written where asked (would overwrite the input, bad suffix, ...)."""

    exit_code = 5

    def __init__(self, path: str, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"output {quoted(path)}: {problem}")


def check_range(name: str, value: int, low: int, high: int) -> None:
    """InvalidArgumentError naming parameter ``name`` unless ``low <= value <= high``."""
    if not low <= value <= high:
        raise InvalidArgumentError(name, value, f"must be between {low:,} and {high:,}")


def first_line(error: BaseException) -> str:
    """The first line of a foreign exception's text (its type's name when it has none), for a message."""
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
