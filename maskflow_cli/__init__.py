"""maskflow: generate, extend and infill videos with MaskFlow (discrete flow matching under
frame-level masking, sampled MaskGIT-style, rolled out by sliding windows)."""

from .errors import InvalidArgumentError, MaskflowError, OutputError, VideoError, WeightsError
from .engine import SamplingOptions
from .pipeline import Chunk, MaskFlowPipeline
from .planner import window_settings

__version__ = "0.1.0"
__all__ = [
    "Chunk", "MaskFlowPipeline", "SamplingOptions", "window_settings",
    "MaskflowError", "InvalidArgumentError", "OutputError", "VideoError", "WeightsError",
]
