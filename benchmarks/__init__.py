"""The project's benchmarks, as one tool: ``python -m benchmarks NAME [options]`` (see ``__main__``).

Each benchmark is a module of this package with

- ``NAME``, the name it runs under, and a docstring whose first line describes it;
- ``SHARED``: which of the runner's shared arguments it takes (weights, sequences, batch, seed), each
  with its own default;
- ``add_arguments(parser)``: its own arguments;
- ``run(args) -> dict``: the measurement, as JSON-ready data;
- ``render(result) -> str``: its section of benchmarks/RESULTS.md, from such data.

``MODULES`` lists them in the order of the results page; ``eval_results`` renders the suites of
`maskflow eval`, run one process per suite.
"""

from __future__ import annotations

import importlib
from types import ModuleType

MODULES = ("eval_results", "long_horizon", "window_speed", "precision", "train_throughput", "length_scaling", "samplers", "sampler_tuning",
           "guidance", "timestep_feeding", "next_frame_knowledge", "infill_plans", "model_fps", "frame_cost", "context_cache", "compare",
           "levers", "maze_data_speed", "maze_tokenizer", "tokenizer_reference", "data_scale", "startup", "threads")


def registry() -> dict[str, ModuleType]:
    """NAME -> module, in the order of the results page."""
    modules = [importlib.import_module(f"{__name__}.{name}") for name in MODULES]
    return {module.NAME: module for module in modules}


def describe(module: ModuleType) -> str:
    """A benchmark's one-line description: the first line of its docstring."""
    return module.__doc__.strip().splitlines()[0]
