"""The model's frame format and the conversion of any decoded frame to it (size and channels).

Frames are uint8 tensors laid out ``[H,W,C]`` (H rows, W columns, C channels: 1 gray, 3 RGB,
4 RGBA on input only).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # BT.601
_LUMA_WEIGHTS_PER_MILLE = (299, 587, 114)


@dataclass(frozen=True)
class FrameFormat:
    """The model's frame format: every frame read is converted to it, every frame written has it."""

    height: int
    width: int
    channels: int  # 1 (gray) or 3 (RGB)

    def __post_init__(self) -> None:
        if self.height < 1 or self.width < 1:
            raise ValueError(f"frame size must be positive, got {self.height}x{self.width}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)``: the shape of one frame tensor."""
        return (self.height, self.width, self.channels)

    @classmethod
    def of(cls, tokenizer_config) -> "FrameFormat":
        """The frame format a tokenizer config (``height``, ``width``, ``channels``) implies."""
        return cls(tokenizer_config.height, tokenizer_config.width, tokenizer_config.channels)


def resize_frame(frame: torch.Tensor, fmt: FrameFormat) -> torch.Tensor:
    """Convert one frame of any size and channel count to ``fmt``.

    ``frame`` is uint8 ``[H,W,C]`` with C = 1 (gray), 3 (RGB) or 4 (RGBA); the result is uint8
    ``[fmt.height, fmt.width, fmt.channels]``.

    Rule:

    * Size: the frame is scaled, keeping its aspect ratio, until it just *covers* the target, and
      the part sticking out is cropped evenly from both sides (centre crop). It is implemented by
      first cutting the centred window with the target's aspect ratio out of the source and then
      resampling that window to exactly the target size with
      ``torch.nn.functional.interpolate``: antialiased bilinear when no side grows (a triangle
      filter as wide as the reduction, so every source pixel counts, as with an area filter), and
      bicubic when a side grows (sharper than bilinear; the result is clamped to 0..255). When the
      window already has the target size nothing is resampled, so a frame of the right size passes
      through bit-exact.
    * Channels: alpha is dropped; RGB -> gray uses BT.601 luma ``0.299 R + 0.587 G + 0.114 B``,
      rounded to the nearest integer (halves up); gray -> RGB repeats the gray value three times.
    * All arithmetic of a resampled frame is done in float32 and rounded once at the end, one
      plane at a time (a 4096x4096 frame costs one 64 MiB float plane at a time).
    """
    _check_frame(frame)
    rgb_or_gray = frame[..., :3]  # [H,W,C<=3] alpha dropped
    window = _centre_crop_to_aspect(rgb_or_gray, fmt.height, fmt.width)  # [h',w',C]
    if tuple(window.shape[:2]) == (fmt.height, fmt.width):
        return _convert_channels_exact(window, fmt.channels).contiguous()
    return _resample(window, fmt)


def _check_frame(frame: torch.Tensor) -> None:
    """Raise ValueError unless ``frame`` is a uint8 ``[H,W,C]`` tensor with C in 1, 3, 4."""
    if frame.dtype != torch.uint8 or frame.dim() != 3 or frame.shape[2] not in (1, 3, 4):
        raise ValueError(
            f"expected a uint8 [H,W,C] frame with C in (1, 3, 4), "
            f"got {frame.dtype} {tuple(frame.shape)}"
        )
    if frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"frame is empty: {tuple(frame.shape)}")


def centre_window(src_h: int, src_w: int, height: int, width: int) -> tuple[int, int, int, int]:
    """``(top, left, rows, columns)`` of the largest centred window with aspect ratio
    ``height:width`` in a ``src_h`` x ``src_w`` frame: the part of it a ``height`` x ``width``
    frame shows (the one mapping of a user's frame to the model's, and its inverse)."""
    if src_h * width > src_w * height:  # source is relatively taller: crop rows
        keep_h = max(1, min(src_h, round(src_w * height / width)))
        return (src_h - keep_h) // 2, 0, keep_h, src_w
    keep_w = max(1, min(src_w, round(src_h * width / height)))
    return 0, (src_w - keep_w) // 2, src_h, keep_w


def _centre_crop_to_aspect(frame: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Cut the largest centred window with aspect ratio ``height:width`` out of ``frame``.

    uint8 [H,W,C] -> uint8 [h',w',C] with h'/w' ~= height/width (a view, no copy).
    """
    top, left, rows, columns = centre_window(frame.shape[0], frame.shape[1], height, width)
    return frame[top : top + rows, left : left + columns]


def _convert_channels_exact(frame: torch.Tensor, channels: int) -> torch.Tensor:
    """Channel conversion of a uint8 [H,W,C] frame in exact integer arithmetic -> [H,W,channels]."""
    if frame.shape[2] == channels:
        return frame
    if channels == 3:  # gray -> RGB
        return frame.expand(-1, -1, 3)
    wr, wg, wb = _LUMA_WEIGHTS_PER_MILLE
    rgb = frame.to(torch.int32)  # [H,W,3]
    luma = (wr * rgb[..., 0] + wg * rgb[..., 1] + wb * rgb[..., 2] + 500) // 1000  # [H,W]
    return luma.to(torch.uint8).unsqueeze(-1)  # [H,W,1]


def _resample(window: torch.Tensor, fmt: FrameFormat) -> torch.Tensor:
    """Resample a uint8 [h',w',C] window to uint8 [fmt.height, fmt.width, fmt.channels].

    One plane at a time, so a large frame costs one float32 plane at a time, not C of them."""
    if fmt.channels == 1 and window.shape[2] == 3:
        planes = [_luma_plane(window)]  # [h',w'] float32
    else:
        planes = [window[..., c].to(torch.float32) for c in range(window.shape[2])]  # C x [h',w']
    mode = "bicubic" if fmt.height > window.shape[0] or fmt.width > window.shape[1] else "bilinear"
    resized = torch.stack([_resize_plane(plane, fmt, mode) for plane in planes])  # [C,h,w]
    if fmt.channels == 3 and resized.shape[0] == 1:
        resized = resized.expand(3, -1, -1)  # [3,h,w]
    pixels = resized.round().clamp(0, 255).to(torch.uint8)  # [C,h,w]
    return pixels.permute(1, 2, 0).contiguous()  # [h,w,C]


def _luma_plane(window: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of a uint8 [h',w',3] window in float32 -> [h',w'], one channel at a time."""
    luma = window[..., 0].to(torch.float32) * _LUMA_WEIGHTS[0]
    for c in (1, 2):
        luma += window[..., c].to(torch.float32) * _LUMA_WEIGHTS[c]
    return luma


def _resize_plane(plane: torch.Tensor, fmt: FrameFormat, mode: str) -> torch.Tensor:
    """float32 [h',w'] -> [fmt.height, fmt.width], antialiased ``mode`` (bilinear or bicubic)."""
    return F.interpolate(
        plane[None, None],  # [1,1,h',w']
        size=(fmt.height, fmt.width),
        mode=mode,
        align_corners=False,
        antialias=True,
    )[0, 0]
