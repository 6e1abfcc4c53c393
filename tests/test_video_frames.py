"""maskflow_cli.video_io.frames: resizing (cover and centre crop) and channel conversion."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from maskflow_cli.video_io import FrameFormat, resize_frame

from video_files import GRAY, RGB, random_clip


# --------------------------------------------------------------------------- resize_frame


def test_same_size_frame_passes_through_bit_exact() -> None:
    frame = random_clip(1, RGB)[0]  # [64,64,3]
    assert torch.equal(resize_frame(frame, RGB), frame)
    gray = random_clip(1, GRAY)[0]
    assert torch.equal(resize_frame(gray, GRAY), gray)


def test_rgb_to_gray_uses_rounded_bt601_luma() -> None:
    frame = random_clip(1, RGB, seed=3)[0]  # [64,64,3]
    r, g, b = (frame[..., i].numpy().astype(np.int64) for i in range(3))
    expected = (299 * r + 587 * g + 114 * b + 500) // 1000  # exact, halves rounded up
    result = resize_frame(frame, GRAY)
    assert result.shape == (64, 64, 1) and result.dtype == torch.uint8
    assert np.array_equal(result[..., 0].numpy(), expected)
    pixel = torch.tensor([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [0, 0, 250]]], dtype=torch.uint8)
    luma = resize_frame(pixel, FrameFormat(1, 4, 1))[0, :, 0].tolist()
    assert luma == [76, 150, 29, 29]  # 76.245, 149.685, 29.07, 28.5 -> halves go up


def test_gray_to_rgb_repeats_and_alpha_is_dropped() -> None:
    gray = random_clip(1, GRAY)[0]  # [64,64,1]
    assert torch.equal(resize_frame(gray, RGB), gray.expand(-1, -1, 3))
    rgba = torch.cat([random_clip(1, RGB)[0], torch.zeros(64, 64, 1, dtype=torch.uint8)], dim=2)
    assert torch.equal(resize_frame(rgba, RGB), rgba[..., :3])


def banded_frame(height: int, band_width: int) -> torch.Tensor:
    """uint8 [H, 3*band_width, 3]: left band 0, middle band 200, right band 50."""
    bands = [torch.full((height, band_width, 3), v, dtype=torch.uint8) for v in (0, 200, 50)]
    return torch.cat(bands, dim=1)


def test_wide_frame_is_centre_cropped() -> None:
    frame = banded_frame(height=32, band_width=32)  # [32,96,3]: the middle 32x32 is 200
    assert torch.equal(resize_frame(frame, FrameFormat(32, 32, 3)), frame[:, 32:64])
    scaled = resize_frame(banded_frame(height=64, band_width=64), FrameFormat(32, 32, 1))
    assert scaled.shape == (32, 32, 1)
    assert bool((scaled == 200).all())  # only the middle band survives: cropped, then scaled


def test_tall_frame_covers_target_and_keeps_the_middle_rows() -> None:
    frame = banded_frame(height=48, band_width=48).transpose(0, 1).contiguous()  # [144,48,3]
    result = resize_frame(frame, FrameFormat(24, 24, 3))
    assert result.shape == (24, 24, 3)
    assert bool((result == 200).all())


def test_upscaling_covers_the_target() -> None:
    frame = torch.full((48, 32, 3), 77, dtype=torch.uint8)  # portrait, smaller than the target
    result = resize_frame(frame, GRAY)
    assert result.shape == (64, 64, 1)
    assert bool((result == 77).all())


def test_resize_rejects_a_frame_of_the_wrong_type() -> None:
    with pytest.raises(ValueError):
        resize_frame(torch.zeros(8, 8, 3, dtype=torch.float32), RGB)


