"""Frame ranges from the end (negative numbers) and in seconds, resolved against a video's length and rate."""

from __future__ import annotations

import itertools
from fractions import Fraction

import pytest

from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.frame_ranges import check_ranges, parse_ranges


def test_negative_numbers_count_from_the_end_as_python_slices_do():
    """START:STOP with numbers from -12 to 12 names the frames Python's slice names, and is refused
    exactly where the slice would be empty or would be clipped at either end."""
    length, accepted = 10, 0
    for a, b in itertools.product([None, *range(-12, 13)], repeat=2):
        text = f"{'' if a is None else a}:{'' if b is None else b}"
        python = list(range(length))[slice(a, b)]
        start = 0 if a is None else a + length if a < 0 else a
        stop = length if b is None else b + length if b < 0 else b
        clipped = not (0 <= start < length and 0 <= stop <= length)
        try:
            got = parse_ranges([text], length)
        except InvalidArgumentError:
            assert clipped or not python, text
            continue
        assert not clipped and [i for x, y in got for i in range(x, y)] == python, text
        accepted += 1
    assert accepted > 100


def test_one_negative_number_is_one_frame_from_the_end():
    assert parse_ranges(["-1"], 20) == [(19, 20)]
    assert parse_ranges(["-20"], 20) == [(0, 1)]
    assert parse_ranges(["-4:"], 20) == [(16, 20)]
    assert parse_ranges(["-0:"], 20) == [(0, 20)]  # as in Python, -0 is 0


def test_times_round_to_the_nearest_frame_at_the_rate():
    assert parse_ranges(["1.5s:3s"], 100, Fraction(10)) == [(15, 30)]
    ntsc = Fraction(30000, 1001)  # 1.5 s is frame 44.96, 3 s frame 89.91
    assert parse_ranges(["1.5s:3s"], 200, ntsc) == [(45, 90)]
    assert parse_ranges(["-2s:"], 100, Fraction(10)) == [(80, 100)]
    assert parse_ranges(["2s"], 100, Fraction(10)) == [(20, 21)]
    assert parse_ranges([".5s:10", "2s:-1"], 100, Fraction(8)) == [(4, 10), (16, 99)]


def test_time_ranges_need_a_rate():
    with pytest.raises(InvalidArgumentError, match="needs the input's frame rate.*give frame numbers") as caught:
        parse_ranges(["1s:2s"], 100, None)
    assert caught.value.name == "ranges" and caught.value.value == "1s:2s"


@pytest.mark.parametrize("texts, message", [
    (["-21:"], "before the first frame: the input has 20 frames (0..19, or -20..-1 from the end)"),
    (["-5:3"], "empty or reversed; STOP must be greater than START (STOP is exclusive); here 15:3"),
    (["-6:", "12:16"], "overlaps 12:16"),
    (["3s:"], "beyond the end: the input has 20 frames"),
])
def test_ranges_that_only_the_length_shows_wrong(texts, message):
    check_ranges(texts)  # nothing to say before the input is read
    with pytest.raises(InvalidArgumentError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        parse_ranges(texts, 20, Fraction(10))


@pytest.mark.parametrize("texts, message", [
    (["-2:-5"], "empty or reversed"), (["3s:1.5s"], "empty or reversed"), (["1.5.2s"], "expected START:STOP"),
    (["1e3s"], "expected START:STOP"), (["s"], "expected START:STOP"), (["2:6", "4"], "overlaps 2:6"),
])
def test_ranges_wrong_whatever_the_input(texts, message):
    with pytest.raises(InvalidArgumentError, match=message):
        check_ranges(texts)


def test_the_pipeline_resolves_ranges_from_the_end_and_in_seconds(weights_dir):
    """From Python: pipe.infill takes the same ranges; times need fps=."""
    import torch

    from maskflow_cli.engine import SamplingOptions
    from maskflow_cli.pipeline import MaskFlowPipeline
    from maskflow_cli.planner import window_settings

    pipe = MaskFlowPipeline.from_weights(str(weights_dir), device="cpu")
    video = torch.randint(0, 256, (12, 32, 32, 1), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    settings, options = window_settings(pipe.window), SamplingOptions(steps=1, seed=0)
    out = torch.cat([c.frames for c in pipe.infill(video, ["-0.5s:"], settings, options, fps=Fraction(4))])  # the last 2 frames
    assert out.shape == video.shape and torch.equal(out[:10], video[:10]) and not torch.equal(out[10:], video[10:])
    with pytest.raises(InvalidArgumentError, match="needs the input's frame rate"):
        pipe.infill(video, ["1s:"], settings, options)
