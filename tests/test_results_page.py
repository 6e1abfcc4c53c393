"""benchmarks/RESULTS.md and the model card are rendered from benchmarks/results/*.json, never typed by hand."""

import re

import pytest

from benchmarks import pages, registry
from benchmarks.markdown import hide_machine_paths

MACHINE_PATH = re.compile(r"(?<![\w.$}~/-])/(work|tmp|home|root|mnt|Users)/")


def test_results_page_and_model_card_match_the_json():
    assert pages.update_pages(write=False) == [], "run python -m benchmarks --render"


def test_every_result_names_its_benchmark_and_renders():
    benchmarks = registry()
    for path, result in pages.results():
        assert result.get("benchmark") in benchmarks, path.name
        assert benchmarks[result["benchmark"]].render(result).startswith("### "), path.name


def test_pages_show_no_machine_paths():
    for path in (pages.PAGE, pages.CARD):
        assert not MACHINE_PATH.search(path.read_text()), path


def test_absolute_paths_are_shown_by_their_last_part():
    text = "Weights: /tmp/maze/runs/smoke; `-w /work/main/weights`; W=$PWD/weights; benchmarks/results/eval.json; ink / crisp; 1/0.77"
    assert hide_machine_paths(text) == "Weights: smoke; `-w weights`; W=$PWD/weights; benchmarks/results/eval.json; ink / crisp; 1/0.77"


def test_a_result_of_no_benchmark_is_refused(tmp_path):
    (tmp_path / "stray.json").write_text('{"rows": []}')
    with pytest.raises(SystemExit, match="stray.json"):
        pages.render_page(tmp_path)
