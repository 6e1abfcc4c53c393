import random

import pytest

from maskflow_cli.errors import InvalidArgumentError
from maskflow_cli.frame_ranges import parse_ranges
from maskflow_cli.planner import plan_extend, plan_generate, plan_infill, window_settings


def check_plan(plan, settings, given: set[int]) -> None:
    """Invariants every plan must hold."""
    known = set(given)
    kept = []
    for w in plan.windows:
        assert 0 <= w.start < w.stop <= plan.length
        assert w.stop - w.start <= settings.window
        assert set(w.context) <= known, "context must already be known"
        assert not set(w.generated) & known, "a known frame is never generated again"
        assert w.keep and set(w.keep) <= set(w.generated)
        known |= set(w.keep)
        kept += w.keep
    assert len(kept) == len(set(kept)), "every frame is produced once"
    assert known == set(range(plan.length)), "every target frame is produced"
    assert {i for a, b in plan.given for i in range(a, b)} == set(given)


def ar_settings():
    for window in range(2, 9):
        for context in range(1, window):
            for stride in range(1, window - context + 1):
                yield window_settings(window, "ar", context, stride)


@pytest.mark.parametrize("length", [1, 2, 5, 8, 9, 17, 40])
def test_generate_plans_hold_invariants(length):
    for s in ar_settings():
        plan = plan_generate(length, s)
        check_plan(plan, s, set())
        first, rest = plan.windows[0], plan.windows[1:]
        assert first.context == () and len(first.keep) == min(length, s.window)
        for w in rest[:-1]:
            assert len(w.context) == s.context and len(w.keep) == s.stride
            assert w.stop - w.start == s.window
        if rest:  # the last window shrinks to fit
            last = rest[-1]
            assert len(last.context) == s.context and last.stop == length and 1 <= len(last.keep) <= s.window - s.context


@pytest.mark.parametrize("given", [1, 3, 10])
@pytest.mark.parametrize("frames", [1, 4, 13])
def test_extend_plans_hold_invariants(given, frames):
    for s in ar_settings():
        plan = plan_extend(given, frames, s)
        check_plan(plan, s, set(range(given)))
        assert plan.length == given + frames
        for w in plan.windows:
            assert len(w.context) == min(s.context, w.keep[0])  # the last `context` known frames
            assert w.context == tuple(range(w.keep[0] - len(w.context), w.keep[0]))


def random_gaps(rng: random.Random, length: int) -> list[tuple[int, int]]:
    cuts = sorted(rng.sample(range(length + 1), min(length + 1, rng.choice([2, 4, 6])) // 2 * 2))
    gaps = [(a, b) for a, b in zip(cuts[::2], cuts[1::2]) if b > a]
    return parse_ranges([f"{a}:{b}" for a, b in gaps], length) if gaps else [(0, 1)]


def random_infills(rng: random.Random):
    """(settings, length, gaps, given) over all small ar settings, a few random gap sets each."""
    for s in ar_settings():
        for _ in range(4):
            length = rng.randint(2, 40)
            gaps = random_gaps(rng, length)
            yield s, length, gaps, set(range(length)) - {i for a, b in gaps for i in range(a, b)}


@pytest.mark.parametrize("order", ["both", "left"])
def test_infill_plans_hold_invariants(order):
    for s, length, gaps, given in random_infills(random.Random(0)):
        check_plan(plan_infill(length, gaps, s, order), s, given)


def windows_of_gap(plan, a, b):
    return [w for w in plan.windows if set(w.keep) <= set(range(a, b))]


def test_infill_windows_see_both_sides_whenever_they_can():
    """A gap with known frames on both sides: one window with context on each side when the gap has
    room for it (gap ≤ W − 2); else one-sided windows from alternating ends that keep only what the
    final both-sided window (context // 2 frames a side) cannot hold."""
    for s, length, gaps, _ in random_infills(random.Random(1)):
        plan = plan_infill(length, gaps, s)
        for a, b in gaps:
            if a == 0 or b == length or s.window == 2:
                continue  # known frames on one side only; no room for both sides
            windows = windows_of_gap(plan, a, b)
            assert sum(len(w.keep) for w in windows) == b - a
            last = windows[-1]
            assert min(last.context) < min(last.keep) and max(last.context) > max(last.keep), "the final window sees both sides"
            if b - a <= s.window - 2:
                assert len(windows) == 1
            else:
                side = max(1, s.context // 2)
                assert len(last.keep) == s.window - 2 * side
                assert all(max(w.context) < min(w.keep) or min(w.context) > max(w.keep) for w in windows[:-1])
                sides = ["left" if max(w.context) < min(w.keep) else "right" for w in windows[:-1]]
                assert sides[::2] == ["left"] * len(sides[::2]) and sides[1::2] == ["right"] * len(sides[1::2])


def test_infill_uses_both_sides_when_the_gap_fits():
    s = window_settings(16, "ar", 8, 8)
    (window,) = plan_infill(60, [(20, 24)], s).windows
    assert window.keep == (20, 21, 22, 23)
    assert window.context == tuple(range(14, 20)) + tuple(range(24, 30))
    (window,) = plan_infill(60, [(40, 48)], s).windows  # all 8 frames between 4 known on each side
    assert window.context == (36, 37, 38, 39, 48, 49, 50, 51) and window.keep == tuple(range(40, 48))
    (window,) = plan_infill(60, [(40, 54)], s).windows  # W − 2 frames: one known frame a side
    assert window.context == (39, 54)


def test_long_gap_fills_from_both_ends_toward_the_middle():
    s = window_settings(16, "ar", 8, 8)
    plan = plan_infill(60, [(10, 40)], s)
    assert [(w.context, w.keep) for w in plan.windows] == [
        (tuple(range(2, 10)), tuple(range(10, 18))),  # from the left
        (tuple(range(40, 48)), tuple(range(32, 40))),  # from the right
        (tuple(range(10, 18)), tuple(range(18, 24))),  # from the left, only what the last cannot hold
        ((20, 21, 22, 23, 32, 33, 34, 35), tuple(range(24, 32))),  # both sides
    ]


def test_left_order_keeps_the_earlier_plan():
    s = window_settings(8, "ar", 4, 2)
    plan = plan_infill(40, [(5, 25)], s, order="left")
    assert all(max(w.context) < min(w.keep) for w in plan.windows[:-1])
    last = plan.windows[-1]
    assert max(last.context) >= 25 and min(last.context) < min(last.keep)
    with pytest.raises(InvalidArgumentError, match="order"):
        plan_infill(40, [(5, 25)], s, order="middle")


def test_gap_at_the_start_fills_from_the_right():
    s = window_settings(8, "ar", 4, 4)
    plan = plan_infill(30, [(0, 12)], s)
    check_plan(plan, s, set(range(12, 30)))
    assert plan.windows[0].keep == (8, 9, 10, 11) and plan.windows[0].context == (12, 13, 14, 15)


def test_full_mode_uses_one_window_with_most_context():
    s = window_settings(16, "full")
    (w,) = plan_extend(30, 6, s).windows
    assert w.context == tuple(range(20, 30)) and w.keep == tuple(range(30, 36))
    (w,) = plan_generate(16, s).windows
    assert w.context == () and len(w.keep) == 16


@pytest.mark.parametrize("make", [lambda s: plan_generate(17, s), lambda s: plan_extend(5, 16, s), lambda s: plan_infill(40, [(2, 18)], s)])
def test_full_mode_rejects_what_does_not_fit(make):
    with pytest.raises(InvalidArgumentError, match="mode=ar"):
        make(window_settings(16, "full"))


@pytest.mark.parametrize(
    "args, name",
    [((16, "ar", 0, None), "context"), ((16, "ar", 16, None), "context"), ((16, "ar", 8, 9), "stride"),
     ((16, "ar", 8, 0), "stride"), ((16, "sideways", None, None), "mode"), ((16, "full", 4, None), "context")],
)
def test_window_settings_are_validated(args, name):
    with pytest.raises(InvalidArgumentError) as error:
        window_settings(*args)
    assert error.value.name == name and name in str(error.value)


def test_window_settings_defaults():
    s = window_settings(16, "ar")
    assert (s.context, s.stride) == (6, 10)  # 3/8 of the window, the rest new
    assert [window_settings(w, "ar").context for w in (2, 3, 8, 32)] == [1, 1, 3, 12]


@pytest.mark.parametrize("frames", [0, -3, 10**9])
def test_frame_count_is_validated(frames):
    with pytest.raises(InvalidArgumentError, match="for frames:"):
        plan_generate(frames, window_settings(16))


def test_parse_ranges_forms_and_merging():
    assert parse_ranges(["10:20", "3", ":2", "25:"], 30) == [(0, 2), (3, 4), (10, 20), (25, 30)]
    assert parse_ranges(["4:8", "8:10"], 30) == [(4, 10)]


@pytest.mark.parametrize(
    "ranges, message",
    [(["5:5"], "empty or reversed"), (["9:3"], "empty or reversed"), (["10:31"], "beyond the end"),
     (["-1:4"], "here 29:4"), (["-31:"], "before the first frame"), (["a:b"], "expected START:STOP"), (["1:2:3"], "expected START:STOP"),
     (["2:8", "6:10"], "overlaps"), ([], "at least one"), (["99999999999999999999:1"], "empty or reversed")],
)
def test_parse_ranges_rejects_bad_ranges(ranges, message):
    with pytest.raises(InvalidArgumentError, match=message):
        parse_ranges(ranges, 30)
