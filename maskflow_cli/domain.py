"""Does an input look like what the weights were trained on? A cheap check before sampling.

Weights know one world: the default ones know 64×64 gray bouncing digits, and any other video is
scaled, cropped and turned gray to fit, and then comes out as digit-like strokes. The tokenizer
tells when an input is foreign: it reconstructs frames like its training frames well and others
badly. So the check encodes and decodes the first ``DOMAIN_FRAMES`` input frames and measures
their PSNR (peak 1, the mean over the frames).

The rule: the input is *out of domain* when that PSNR is more than ``MARGIN_DB`` below the
tokenizer's own figure, the ``reconstruction_psnr`` (dB, on held-out frames of its training data)
stored in the tokenizer's ``info`` metadata; without that figure, when it is below ``FLOOR_DB``.
The floor comes from the default weights: their 4-frame PSNR on held-out Moving MNIST clips is at
least 19 dB (20.9 dB on average), while colour footage and noise score 5-10 dB.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .metrics import reconstruction_psnr
from .signals import interruptible
from .tokenizer import FrameTokenizer

DOMAIN_FRAMES = 4
MARGIN_DB = 6.0
FLOOR_DB = 14.0
REFERENCE_KEY = "reconstruction_psnr"


@dataclass(frozen=True)
class DomainCheck:
    psnr: float  # dB, mean over the checked frames
    frames: int  # how many input frames were checked
    reference: float | None  # the tokenizer's own figure (dB), when its metadata has one
    threshold: float  # below this PSNR the input counts as out of domain
    trained_on: str | None  # the tokenizer's training data, as its metadata names it

    @property
    def out_of_domain(self) -> bool:
        return self.psnr < self.threshold

    def to_dict(self) -> dict:
        return {"psnr": round(self.psnr, 2), "frames": self.frames, "reference": self.reference,
                "threshold": self.threshold, "trained_on": self.trained_on, "out_of_domain": self.out_of_domain}

    def warning(self, source: str, frame_format: str) -> str:
        """One line for a user: what the weights know, what was measured, what to expect."""
        known = f"{self.trained_on} ({frame_format})" if self.trained_on else frame_format
        own = f"{self.reference:.1f} dB on its own test frames" if self.reference is not None else f"the {self.threshold:g} dB floor"
        return (f"these weights were trained on {known}; their tokenizer reconstructs the first {self.frames} frames "
                f"of {source} at {self.psnr:.1f} dB PSNR, far below {own}, so expect output unlike the input")


def check_domain(tokenizer: FrameTokenizer, info: dict, frames: Tensor, device: torch.device) -> DomainCheck:
    """Measure uint8 [T,Y,X,C] ``frames`` (at the tokenizer's format; the first DOMAIN_FRAMES are
    used) against the tokenizer whose metadata ``info`` is given."""
    reference = info.get(REFERENCE_KEY)
    reference = float(reference) if isinstance(reference, (int, float)) and not isinstance(reference, bool) else None
    threshold = reference - MARGIN_DB if reference is not None else FLOOR_DB
    sample = frames[:DOMAIN_FRAMES]
    psnr = interruptible(lambda: reconstruction_psnr(tokenizer, sample, device))  # in the helper thread with the run's other torch work (pipeline.py)
    trained_on = info.get("dataset")
    return DomainCheck(psnr, len(sample), reference, threshold, str(trained_on) if trained_on else None)
