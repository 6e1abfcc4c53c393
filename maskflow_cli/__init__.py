"""maskflow: generate, extend and infill videos with MaskFlow (discrete flow matching under
frame-level masking, sampled MaskGIT-style, rolled out by sliding windows).

The pipeline names are imported on first use, so ``import maskflow_cli`` (and the command line's
start-up, which installs its signal handlers first) does not wait for torch.
"""

from importlib import import_module

from .errors import InvalidArgumentError, MaskflowError, OutputError, VideoError, WeightsError

__version__ = "0.1.0"
_LAZY = {"Chunk": "pipeline", "MaskFlowPipeline": "pipeline", "SamplingOptions": "engine", "window_settings": "planner"}
__all__ = [
    "Chunk", "MaskFlowPipeline", "SamplingOptions", "window_settings",
    "MaskflowError", "InvalidArgumentError", "OutputError", "VideoError", "WeightsError",
]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
