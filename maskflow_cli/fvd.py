"""Fréchet Video Distance (FVD) with an I3D detector the user supplies.

The detector is a TorchScript file; the one video papers use is ``i3d_torchscript.pt``, the
Kinetics-400 I3D of the original FVD (Unterthiner et al. 2018) converted to TorchScript for the
StyleGAN-V and DIGAN evaluation code. Nothing here downloads it: the user passes the file they have.
It is called as ``detector(videos, rescale=False, resize=False, return_features=True)`` on float
videos [B,3,T,224,224] in [-1, 1] and returns features [B,D] (D = 400 for that file: the logits
before the softmax). ``rescale=False, resize=False`` because the frames are prepared here, the same
way for real and generated clips:

- uint8 frames -> float in [-1, 1]; gray frames are repeated into 3 channels;
- the shorter side is resized to 224 (bilinear, no antialiasing) and the centre 224×224 is kept;
- a clip is FVD_FRAMES (16) consecutive frames.

The Fréchet distance of the two feature sets is computed in float64 with torch alone:
``|μ₁-μ₂|² + tr Σ₁ + tr Σ₂ - 2 tr (Σ₁^½ Σ₂ Σ₁^½)^½``, where ``Σ₁^½ Σ₂ Σ₁^½`` is symmetric and has the
eigenvalues of ``Σ₁Σ₂``, so both roots come from symmetric eigen-decompositions.

Axis legend: N clips, T frames, Y, X pixels, C channels, D features.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from .errors import InvalidArgumentError, first_line

FVD_FRAMES = 16  # frames of one clip
FVD_RESOLUTION = 224  # the detector's frame size
DETECTOR_CALL = {"rescale": False, "resize": False, "return_features": True}
DETECTOR_FIX = "give the I3D TorchScript file i3d_torchscript.pt of the StyleGAN-V / DIGAN FVD code"


def load_detector(path: str | os.PathLike, device: torch.device) -> torch.jit.ScriptModule:
    """The TorchScript detector in ``path`` on ``device``, checked with one call on a blank clip.
    InvalidArgumentError naming ``fvd_detector`` for a missing file, a file that is not TorchScript,
    or a module that does not take the detector's call or does not return features [1,D]."""
    where = os.fspath(path)
    if not Path(where).is_file():
        raise InvalidArgumentError("fvd_detector", where, f"no such file; {DETECTOR_FIX}")
    try:
        detector = torch.jit.load(where, map_location=device).eval()
    except Exception as error:  # TorchScript raises RuntimeError, ValueError, zip errors, ... for what it cannot read
        raise InvalidArgumentError("fvd_detector", where, f"not a TorchScript file ({first_line(error)}); {DETECTOR_FIX}") from None
    blank = torch.zeros(1, 3, FVD_FRAMES, FVD_RESOLUTION, FVD_RESOLUTION, device=device)
    try:
        with torch.no_grad():
            features = detector(blank, **DETECTOR_CALL)
    except Exception as error:  # the module's own code fails on the call: not a detector of this kind
        raise InvalidArgumentError("fvd_detector", where, f"does not take the I3D call ({first_line(error)}); {DETECTOR_FIX}") from None
    if not isinstance(features, Tensor) or features.dim() != 2 or features.shape[0] != 1 or not features.is_floating_point():
        shown = tuple(features.shape) if isinstance(features, Tensor) else type(features).__name__
        raise InvalidArgumentError("fvd_detector", where, f"returns {shown}, not features [1,D]; {DETECTOR_FIX}")
    return detector


def detector_input(clips: Tensor) -> Tensor:
    """uint8 [N,T,Y,X,C] clips -> float [N,3,T,224,224] in [-1, 1] (the module docstring's protocol)."""
    n, t, y, x, c = clips.shape
    frames = rearrange(clips, "n t y x c -> (n t) c y x").float() / 127.5 - 1
    if c == 1:
        frames = frames.expand(-1, 3, -1, -1)
    scale = FVD_RESOLUTION / min(y, x)
    size = (max(FVD_RESOLUTION, math.ceil(y * scale)), max(FVD_RESOLUTION, math.ceil(x * scale)))
    frames = F.interpolate(frames, size=size, mode="bilinear", align_corners=False)
    top, left = (size[0] - FVD_RESOLUTION) // 2, (size[1] - FVD_RESOLUTION) // 2
    frames = frames[:, :, top : top + FVD_RESOLUTION, left : left + FVD_RESOLUTION]
    return rearrange(frames, "(n t) c y x -> n c t y x", n=n, t=t)


@torch.no_grad()
def video_features(detector: torch.jit.ScriptModule, clips: Tensor, device: torch.device, batch: int = 8) -> Tensor:
    """The detector's features of uint8 [N,T,Y,X,C] clips, ``batch`` at a time -> float64 [N,D]."""
    parts = [detector(detector_input(clips[i : i + batch]).to(device), **DETECTOR_CALL) for i in range(0, len(clips), batch)]
    return torch.cat(parts).double().cpu()


def _psd_sqrt(matrix: Tensor) -> Tensor:
    """The square root of a symmetric positive semi-definite float64 [D,D] matrix (negative
    eigenvalues from rounding are taken as 0)."""
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def frechet_distance(mean_a: Tensor, cov_a: Tensor, mean_b: Tensor, cov_b: Tensor) -> float:
    """The Fréchet distance of the Gaussians N(mean_a, cov_a) and N(mean_b, cov_b), in float64:
    ``|μa-μb|² + tr Σa + tr Σb - 2 tr (Σa^½ Σb Σa^½)^½``."""
    mean_a, cov_a, mean_b, cov_b = (v.double() for v in (mean_a, cov_a, mean_b, cov_b))
    root_a = _psd_sqrt(cov_a)
    middle = root_a @ cov_b @ root_a
    cross = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()  # tr (Σa^½ Σb Σa^½)^½
    return float((mean_a - mean_b).square().sum() + cov_a.trace() + cov_b.trace() - 2 * cross)


def feature_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    """float [N,D] features -> their mean [D] and unbiased covariance [D,D], float64."""
    features = features.double()
    return features.mean(0), torch.cov(features.T)


def fvd(real: Tensor, generated: Tensor) -> float:
    """FVD between two feature sets float [N,D] and [M,D] (N, M >= 2)."""
    return frechet_distance(*feature_statistics(real), *feature_statistics(generated))
