"""Fuzzed frame ranges and option combinations (seeded random generation, no hypothesis).

Each bad value is refused up front, before weights are loaded or the input is read where the
value alone shows it is bad, with one line naming the option and what is allowed (exit 2).
"""

from __future__ import annotations

import json
import math
import random
import re

import pytest

from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.frame_ranges import check_ranges, parse_ranges
from maskflow_cli.planner import default_context

from conftest import TINY_TRANSFORMER

W = TINY_TRANSFORMER.frames  # the tiny model's window: 6
LENGTH = 20  # frames of the clip_mkv fixture
ALLOWED = re.compile(
    r"must be between|must be \w|choose|expected|use |give |only used with|STOP must be greater"
    r"|beyond the end: the input has|before the first frame: the input has|disjoint|not a valid|should be a valid|is not one of|do not fit"
)


pytestmark = pytest.mark.usefixtures("one_thread")


# --------------------------------------------------------------------------- ranges

NUMBERS = ["0", "1", "3", "7", "19", "20", "21", "-1", "-7", "99999999999999999999999", "1" * 40, "+3", "3_0", "0x10",
           "1e3", "٣", " 4 ", "2.5", "", "nan", "abc"]


def _number(rng: random.Random) -> str:
    return str(rng.randrange(0, 22)) if rng.random() < 0.6 else rng.choice(NUMBERS)


def random_range(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.15:
        return _number(rng)
    if shape < 0.85:
        return f"{_number(rng)}:{_number(rng)}"
    return rng.choice([":", "::", "1:2:3", "1-5", "1..5", "[1:2]", "1;2", "10 20", "\t", ":-2", "-:3"])


def reference(texts: list[str], length: int) -> list[tuple[int, int]] | None:
    """What the ranges mean, written independently: Python's index arithmetic (a negative number
    plus the length), but no clipping; sorted, touching ranges merged; None if bad."""
    spans = []
    for text in texts:
        parts = text.split(":")
        if len(parts) > 2:
            return None
        sides = []
        for part in parts:
            part = part.strip()
            if part and not re.fullmatch(r"-?[0-9]+", part):
                return None
            sides.append(None if not part else int(part) + length if int(part) < 0 else int(part))
        if len(sides) == 1:
            if sides[0] is None:
                return None
            a, b = sides[0], sides[0] + 1
        else:
            a = 0 if sides[0] is None else sides[0]
            b = length if sides[1] is None else sides[1]
        if not 0 <= a < b <= length:
            return None
        spans.append((a, b))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for a, b in spans:
        if merged and a < merged[-1][1]:
            return None
        if merged and a == merged[-1][1]:
            merged[-1] = (merged[-1][0], b)
        else:
            merged.append((a, b))
    return merged


def test_random_ranges_against_a_reference():
    rng = random.Random(20240611)
    kinds = {"valid": 0, "invalid": 0}
    for _ in range(3000):
        texts = [random_range(rng) for _ in range(rng.choice([1, 1, 2, 3]))]
        length = rng.choice([1, 5, LENGTH])
        expected = reference(texts, length)
        try:
            got = parse_ranges(texts, length)
        except InvalidArgumentError as error:
            message = str(error)
            assert expected is None, (texts, length, message)
            assert error.name == "ranges" and error.value in texts, (texts, message)
            assert "\n" not in message and ALLOWED.search(message), message
            kinds["invalid"] += 1
        else:
            assert got == expected, (texts, length)
            kinds["valid"] += 1
    assert kinds["valid"] > 200 and kinds["invalid"] > 1000, kinds


def test_range_checks_that_need_no_length_agree_with_the_full_parse():
    """check_ranges (before the input is read) never refuses what parse_ranges would accept for
    some length, and refuses everything that is bad for every length."""
    rng = random.Random(7)
    for _ in range(2000):
        texts = [random_range(rng) for _ in range(rng.choice([1, 2, 3]))]
        try:
            check_ranges(texts)
            early = None
        except InvalidArgumentError as error:
            early = error
        some_length_accepts = any(reference(texts, n) is not None for n in (1, 2, 5, 20, 10**30))
        if early is not None:
            assert not some_length_accepts, (texts, str(early))
        elif not some_length_accepts:
            # only the length can be at fault, and the full parse says how it resolved the ranges
            with pytest.raises(InvalidArgumentError, match="beyond the end|before the first frame|; here [0-9]+:[0-9]+|overlaps [0-9]+:"):
                parse_ranges(texts, LENGTH if rng.random() < 0.5 else 1)


def _one_error_line(result) -> str:
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: "), result.err
    assert "Traceback" not in result.err and result.out == ""
    return lines[0]


@pytest.mark.parametrize("ranges, needle", [
    (["-2:-5"], "STOP must be greater"), ([":-0"], "STOP must be greater"), (["2s:1s"], "STOP must be greater"),
    (["--sed"], "no such option"), (["9:3"], "STOP must be greater"), (["4:4"], "STOP must be greater"),
    (["2:8", "6:"], "disjoint"), (["3_0:40"], "expected START:STOP"), (["1:2:3"], "expected START:STOP"),
    (["x"], "expected START:STOP"), (["1e3"], "expected START:STOP"), (["٣:٥"], "expected START:STOP"),
])
def test_bad_ranges_are_refused_before_weights_or_input(cli, tmp_path, ranges, needle):
    """Neither the input nor the weights exist: the ranges alone are at fault and said so first."""
    result = cli("infill", tmp_path / "missing.mkv", *ranges, "-w", tmp_path / "no-weights", "-o", tmp_path / "x.mkv")
    line = _one_error_line(result)
    assert result.code == 2 and "invalid value for RANGES" in line and needle in line, line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("ranges, needle", [
    (["15:25"], "beyond the end: the input has 20 frames (0..19, or -20..-1 from the end)"), (["20:"], "beyond the end"),
    (["99999999999999999999999"], "beyond the end"), (["1" * 40 + ":"], "beyond the end"), (["0:21"], "beyond the end"),
    (["-21:"], "before the first frame: the input has 20 frames (0..19, or -20..-1 from the end)"), (["-5:3"], "here 15:3"),
    (["2s:"], "beyond the end"),  # 12 fps: frame 24
])
def test_ranges_beyond_the_end_name_the_length(cli, weights_dir, clip_mkv, tmp_path, ranges, needle):
    result = cli("infill", clip_mkv, *ranges, "-w", weights_dir, "-o", tmp_path / "x.mkv", "--steps", 1)
    line = _one_error_line(result)
    assert result.code == 2 and "RANGES" in line and needle in line, line
    assert list(tmp_path.iterdir()) == []


def test_random_ranges_through_the_cli(cli, weights_dir, clip_mkv, tmp_path):
    rng = random.Random(99)
    seen = 0
    while seen < 25:
        texts = [random_range(rng) for _ in range(rng.choice([1, 2]))]
        if any(t.strip() == "" or t.startswith("-") and not re.match(r"-[0-9]", t) for t in texts):
            continue  # an empty argument or a "--" style token means something else to the shell parser
        seen += 1
        expected = reference(texts, LENGTH)
        result = cli("infill", clip_mkv, *texts, "-w", weights_dir, "--dry-run", "--device", "cpu")
        if expected is None:
            assert result.code == 2 and "RANGES" in _one_error_line(result), (texts, result.err)
        else:
            assert result.code == 0, (texts, result.err)
            plan = json.loads(result.out)
            kept = sorted(i for w in plan["windows"] for i in w["keep"])
            assert kept == [i for a, b in expected for i in range(a, b)], texts


# --------------------------------------------------------------------------- option combinations

CHOICES = {
    "--mode": [None, "ar", "full", "AR", "both", ""],
    "--context": [None, -3, 0, 1, 2, 3, 5, 6, 7, 10**30, "x", "2.5"],
    "--stride": [None, -1, 0, 1, 2, 3, 4, 5, 6, 100, 10**30, "x"],
    "--frames": [None, -4, 0, 1, 5, 6, 7, 30, 1_000_001, 10**30, "many", "1e3"],
    "--steps": [None, -1, 0, 1, 3, 10_001, "x"],
    "--seed": [None, -1, 0, 5, 2**63 - 1, 2**63, "x"],
    "--fps": [None, "nan", "inf", "-inf", -1, 0, 1e-300, 0.0001, 0.001, 12, 1000, 1000.5, "x"],
    "--sampler": [None, "mgm", "fm", "ddim", ""],
    "--precision": [None, "auto", "fp32", "bf16", "fp64"],
    "--device": [None, "cpu", "tpu", "cuda:x", "", "meta"],
}


def _int(value) -> int | None:
    """The value as the command line would read an integer, or None when it is not one."""
    try:
        return int(str(value))
    except ValueError:
        return None


def expected_bad_options(options: dict, command: str) -> set[str]:
    """The options that make a combination invalid (empty: the combination is valid)."""
    bad = set()
    for name in ("--context", "--stride", "--frames", "--steps", "--seed"):
        if options.get(name) is not None and _int(options[name]) is None:
            bad.add(name)  # not an integer at all
    try:
        fps = None if options.get("--fps") is None else float(options["--fps"])
    except ValueError:
        fps = float("nan")
    if fps is not None and not (math.isfinite(fps) and 0.001 <= fps <= 1000):
        bad.add("--fps")
    if options.get("--mode") not in (None, "ar", "full"):
        bad.add("--mode")
    if options.get("--sampler") not in (None, "mgm", "fm"):
        bad.add("--sampler")
    if options.get("--precision") not in (None, "auto", "fp32", "bf16"):
        bad.add("--precision")
    if options.get("--device") not in (None, "cpu", "auto"):
        bad.add("--device")
    steps, seed, frames = (_int(options.get(n)) if options.get(n) is not None else None for n in ("--steps", "--seed", "--frames"))
    if steps is not None and not 1 <= steps <= 10_000:
        bad.add("--steps")
    if seed is not None and not 0 <= seed < 2**63:
        bad.add("--seed")
    frames = 16 if options.get("--frames") is None else frames
    if frames is not None and not 1 <= frames <= 1_000_000:
        bad.add("--frames")
    mode = options.get("--mode") or "ar"
    context, stride = (_int(options[n]) if options.get(n) is not None else None for n in ("--context", "--stride"))
    if mode == "full":
        bad |= {n for n in ("--context", "--stride") if options.get(n) is not None}
        known = LENGTH if command == "extend" else 0
        if frames is not None and 1 <= frames <= 1_000_000 and frames + min(known, 1) > W:
            bad.add("--frames")
    elif mode == "ar":
        c = default_context(W) if options.get("--context") is None else context
        if c is not None and not 1 <= c <= W - 1:
            bad.add("--context")
        elif c is not None:
            s = W - c if options.get("--stride") is None else stride
            if s is not None and not 1 <= s <= W - c:
                bad.add("--stride")
    return bad


def _mentions(line: str, name: str) -> bool:
    return name in line or (name == "--frames" and "'-n'" in line)


@pytest.mark.slow
def test_random_option_combinations(cli, weights_dir, clip_mkv):
    """Every combination is either planned (--dry-run) exactly as asked, or refused with one line
    naming one of the options at fault and what it allows."""
    rng = random.Random(31337)
    outcomes = {"valid": 0, "invalid": 0}
    for case in range(70):
        command = "generate" if case % 3 else "extend"
        chosen = {name: rng.choice(values) if rng.random() < 0.35 else None for name, values in CHOICES.items()}
        if case < 10:  # start with single faults, so that each kind is seen for sure
            chosen = {name: None for name in CHOICES} | {list(CHOICES)[case]: CHOICES[list(CHOICES)[case]][-1]}
        args = [a for name, value in chosen.items() if value is not None for a in (name, str(value))]
        bad = expected_bad_options(chosen, command)
        if not bad and (_int(chosen["--frames"]) or 16) > 50:
            continue  # valid but a long plan: nothing more to learn from printing it
        head = ["extend", clip_mkv] if command == "extend" else ["generate"]
        result = cli(*head, "-w", weights_dir, "--dry-run", *args)
        if bad:
            line = _one_error_line(result)
            assert result.code == 2, (args, line)
            assert any(_mentions(line, name) for name in bad), (args, bad, line)
            assert ALLOWED.search(line), line
            outcomes["invalid"] += 1
        else:
            assert result.code == 0, (args, result.err)
            plan = json.loads(result.out)
            mode = chosen["--mode"] or "ar"
            assert plan["mode"] == mode
            if mode == "ar":
                context = default_context(W) if chosen["--context"] is None else _int(chosen["--context"])
                assert plan["context"] == context
                assert plan["stride"] == (W - context if chosen["--stride"] is None else _int(chosen["--stride"]))
            frames = 16 if chosen["--frames"] is None else _int(chosen["--frames"])
            assert plan["length"] == frames + (LENGTH if command == "extend" else 0)
            outcomes["valid"] += 1
    assert outcomes["valid"] >= 4 and outcomes["invalid"] >= 35, outcomes


@pytest.mark.parametrize("options, needle", [
    (["--stride", "5"], "--stride: 5 (must be between 1 and 4 (window 6 − context 2))"),
    (["--context", "5", "--stride", "2"], "--stride: 2 (must be between 1 and 1"),
    (["--context", "6"], "--context: 6 (must be between 1 and 5 for this model's 6-frame window)"),
    (["--context", "99999999999999999999"], "--context"),
    (["--mode", "full", "--context", "2"], "--context: 2 (only used with --mode ar)"),
    (["--fps", "1e-300"], "--fps: 1e-300 (must be between 0.001 and 1000)"),
    (["--fps", "nan"], "--fps: nan (must be between 0.001 and 1000)"),
    (["--frames", "1000001"], "--frames: 1000001 (must be between 1 and 1,000,000)"),
    (["--mode", "full", "--frames", "6"], "--mode ar"),
])
def test_window_options_name_the_allowed_values(cli, weights_dir, clip_mkv, tmp_path, options, needle):
    for head in (["extend", clip_mkv], ["infill", clip_mkv, "2:4"]):
        if head[0] == "infill" and "--frames" in options:
            continue
        result = cli(*head, "-w", weights_dir, "-o", tmp_path / "x.mkv", *options)
        line = _one_error_line(result)
        assert result.code == 2 and needle in line, line
    assert list(tmp_path.iterdir()) == []


def test_output_rate_taken_from_the_input_must_be_writable(cli, weights_dir, tmp_path):
    """An input claiming 100000 fps would give a broken H.264 file; refused as the input's (exit 3), naming --fps as the fix."""
    y4m = tmp_path / "fast.y4m"
    frame = bytes(32 * 32)
    y4m.write_bytes(b"YUV4MPEG2 W32 H32 F100000:1 Ip A1:1 Cmono\n" + b"".join(b"FRAME\n" + frame for _ in range(3)))
    out = tmp_path / "out.mp4"
    result = cli("extend", y4m, "-w", weights_dir, "-o", out, "--frames", 1, "--steps", 1)
    line = _one_error_line(result)
    assert result.code == 3 and "fast.y4m" in line and "--fps" in line and "100000" in line and "0.001 and 1000" in line, line
    assert "invalid value for --fps" not in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.y4m"]
    result = cli("extend", y4m, "-w", weights_dir, "-o", out, "--frames", 1, "--steps", 1, "--fps", 30)
    assert result.code == 0, result.err
