"""The frame tokenizer: a per-frame convolutional autoencoder with an FSQ bottleneck.

Finite scalar quantisation (Mentzer et al. 2023, "Finite Scalar Quantization: VQ-VAE Made Simple")
squashes each of d latent channels into L_i levels and rounds (straight-through), so the vocabulary is
the product of the levels and no codebook can collapse. Each frame of H×P by W×P pixels becomes H×W
tokens, P = 2**len(channel_multipliers).

Axis legend:
    T  frames   C  pixel channels (1 gray, 3 RGB)   Y, X  pixel rows, columns (config.height, width)
    H, W  token rows, columns (config.token_height, token_width; the transformer's grid_height, grid_width)
    Q  FSQ channels (len(levels))
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .model_configs import TokenizerConfig

# Size presets for training: conv widths, stages (downsampling 2**stages), FSQ levels.
PRESETS: dict[str, dict] = {
    "tiny": {"base_channels": 8, "channel_multipliers": (1, 2), "levels": (4, 4)},  # tests
    "base": {  # 64x64 -> 8x8 tokens of 1000
        "base_channels": 32, "channel_multipliers": (1, 2, 4), "levels": (8, 5, 5, 5), "encoder": "patch",
    },
    # RGB first-person mazes (maskflow data maze): textured walls need finer tokens than digits.
    # benchmarks/maze_tokenizer.py compares these by held-out PSNR/SSIM, tokens per frame and decode time.
    "maze8": {  # 64x64 RGB -> 8x8 tokens of 64,000
        "base_channels": 32, "channel_multipliers": (1, 2, 4), "levels": (8, 8, 8, 5, 5, 5), "encoder": "conv",
    },
    "maze16": {  # 64x64 RGB -> 16x16 tokens of 1,000
        "base_channels": 32, "channel_multipliers": (1, 2), "levels": (8, 5, 5, 5), "encoder": "conv",
    },
}


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(8 if channels % 8 == 0 else 1, channels)


class ResBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _norm(c_in), nn.SiLU(), nn.Conv2d(c_in, c_out, 3, padding=1),
            _norm(c_out), nn.SiLU(), nn.Conv2d(c_out, c_out, 3, padding=1),
        )
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.skip(x) + self.body(x)


class Upsample(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


def _conv_encoder(config: TokenizerConfig, widths: list[int]) -> nn.Sequential:
    """[T,C,Y,X] -> [T,Q,H,W] through ResBlocks and strided convolutions (overlapping receptive fields)."""
    layers: list[nn.Module] = [nn.Conv2d(config.channels, widths[0], 3, padding=1)]
    c = widths[0]
    for width in widths:
        for _ in range(config.blocks_per_stage):
            layers.append(ResBlock(c, width))
            c = width
        layers.append(nn.Conv2d(c, c, 4, stride=2, padding=1))
    layers += [ResBlock(c, c), _norm(c), nn.SiLU(), nn.Conv2d(c, len(config.levels), 1)]
    return nn.Sequential(*layers)


def _patch_encoder(config: TokenizerConfig, width: int) -> nn.Sequential:
    """[T,C,Y,X] -> [T,Q,H,W] by an MLP applied to each P×P patch on its own (1×1 convolutions)."""
    hidden = 2 * width
    layers: list[nn.Module] = [
        nn.PixelUnshuffle(config.downsample),  # [T,C*P*P,H,W]
        nn.Conv2d(config.channels * config.downsample**2, hidden, 1),
    ]
    for _ in range(2 * config.blocks_per_stage):
        layers += [nn.SiLU(), nn.Conv2d(hidden, hidden, 1)]
    layers += [nn.SiLU(), nn.Conv2d(hidden, len(config.levels), 1)]
    return nn.Sequential(*layers)


class FrameTokenizer(nn.Module):
    def __init__(self, config: TokenizerConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.base_channels * m for m in config.channel_multipliers]
        q = len(config.levels)

        c = widths[-1]
        self.encoder = _conv_encoder(config, widths) if config.encoder == "conv" else _patch_encoder(config, c)

        dec: list[nn.Module] = [nn.Conv2d(q, c, 3, padding=1), ResBlock(c, c)]
        for width in reversed(widths):
            dec.append(Upsample(c))
            for _ in range(config.blocks_per_stage):
                dec.append(ResBlock(c, width))
                c = width
        dec += [_norm(c), nn.SiLU(), nn.Conv2d(c, config.channels, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

        levels = torch.tensor(config.levels)
        basis = torch.tensor([math.prod(config.levels[:i]) for i in range(q)])  # 1, L_1, L_1 L_2, ...
        self.register_buffer("levels", levels, persistent=False)  # [Q]
        self.register_buffer("basis", basis, persistent=False)  # [Q] mixed-radix place values

    # ---- FSQ -----------------------------------------------------------------------------------
    def _scaled(self, z: Tensor) -> Tensor:
        """Latents [T,Q,H,W] -> values in [0, L_i - 1] per channel."""
        return torch.sigmoid(z.float()) * (self.levels - 1)[:, None, None]

    def _to_decoder(self, codes: Tensor) -> Tensor:
        """Codes in [0, L_i - 1] (float) [T,Q,H,W] -> decoder input in [-1, 1]."""
        return codes / (self.levels - 1)[:, None, None] * 2 - 1

    def indices_to_codes(self, tokens: Tensor) -> Tensor:
        """long [T,H,W] -> float codes [T,Q,H,W]."""
        codes = (tokens[:, None] // self.basis[:, None, None]) % self.levels[:, None, None]
        return codes.float()

    # ---- training path -------------------------------------------------------------------------
    def reconstruct(self, x: Tensor) -> Tensor:
        """Pixels in [-1, 1] [T,C,Y,X] -> reconstruction [T,C,Y,X] (straight-through rounding)."""
        u = self._scaled(self.encoder(x))
        q = u + (u.round() - u).detach()
        return self.decoder(self._to_decoder(q).to(x.dtype))

    # ---- inference path ------------------------------------------------------------------------
    @torch.no_grad()
    def encode(self, frames: Tensor) -> Tensor:
        """uint8 frames [T,Y,X,C] -> long tokens [T,H,W], always within the vocabulary: a latent that
        is not a number (weights that overflow) becomes digit 0 instead of an id out of range."""
        x = rearrange(frames, "t y x c -> t c y x").float() / 127.5 - 1
        scaled = self._scaled(self.encoder(x)).nan_to_num(0.0)  # [T,Q,H,W] in [0, L_i - 1]
        codes = scaled.round().long()
        return (codes * self.basis[:, None, None]).sum(1)

    @torch.no_grad()
    def decode(self, tokens: Tensor) -> Tensor:
        """long tokens [T,H,W] -> uint8 frames [T,Y,X,C]."""
        codes = self._to_decoder(self.indices_to_codes(tokens)).to(self.decoder[0].weight.dtype)  # [T,Q,H,W], in the decoder's dtype
        x = self.decoder(codes.contiguous(memory_format=torch.channels_last))  # channels-last convolutions: ~0.8 of the time on CPUs
        pixels = ((x.float() + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
        return rearrange(pixels, "t c y x -> t y x c")
