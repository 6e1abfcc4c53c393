"""The command-line interface: a thin layer over the library.

``main`` (the console script) installs its signal handlers before anything heavy is imported; the
Typer ``app`` is imported on first use.
"""

from .main import main


def __getattr__(name: str):
    if name == "app":
        from .app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["app", "main"]
