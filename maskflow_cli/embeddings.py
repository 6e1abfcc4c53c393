"""Fixed, parameter-free tensors the transformer's embeddings start from or are built with.

Pure functions of sizes (and of the masking times): no weights, no model. Sine-cosine patterns
for the masking time (fed to the timestep MLP) and for positions in time and on the token grid (the
start of the learned position embeddings), and the 0/1 table that maps a token id to its FSQ digits.

Axis legend:
    C  channels of a pattern        V  vocabulary (ids of the mixed-radix code)
    Q  code digits (FSQ channels)   L = ΣL_q digit values over all channels
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor


def timestep_features(t: Tensor, channels: int = 256) -> Tensor:
    """Sinusoidal features of masking times t in [0, 1]: [...] -> [..., channels]."""
    half = channels // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    angles = 1000.0 * t.float()[..., None] * freqs  # [..., half]
    return torch.cat([angles.cos(), angles.sin()], dim=-1)


def sincos_positions(length: int, channels: int) -> Tensor:
    """1-D sine-cosine pattern [length, channels], wavelengths 2 to ~4·length (an odd last channel is 0)."""
    freqs = torch.exp(-math.log(2.0 * length) * torch.arange(channels // 2) / max(1, channels // 2 - 1)) * math.pi
    angles = torch.arange(length, dtype=torch.float32)[:, None] * freqs  # [length, channels//2]
    return F.pad(torch.cat([angles.sin(), angles.cos()], dim=-1), (0, channels % 2))


def sincos_grid(height: int, width: int, channels: int) -> Tensor:
    """2-D pattern [height*width, channels]: half the channels code the row, half the column."""
    half = channels // 2
    rows = sincos_positions(height, half)[:, None].expand(height, width, half)
    cols = sincos_positions(width, channels - half)[None].expand(height, width, channels - half)
    return rearrange(torch.cat([rows, cols], dim=-1), "h w c -> (h w) c")


def code_digit_rows(levels: tuple[int, ...]) -> Tensor:
    """Which digit values make up each id of the mixed-radix vocabulary of ``levels`` (least
    significant first): long [V,Q], the row ΣL_<q + digit_q(v) of each channel q's digit of id v
    among the L = ΣL_q digit values. V·Q entries: small for any vocabulary (a one-hot [L,V] table
    would grow with the product of the levels)."""
    place = torch.tensor([math.prod(levels[:q]) for q in range(len(levels))])  # mixed-radix place values
    first_row = torch.tensor([sum(levels[:q]) for q in range(len(levels))])  # where each channel's digit values start
    ids = torch.arange(math.prod(levels))[:, None]  # [V,1]
    return (ids // place) % torch.tensor(levels) + first_row  # [V,Q]
