"""The README's Results section is rendered from benchmarks/results/*.json, never typed by hand."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _module():
    spec = importlib.util.spec_from_file_location("readme_results", ROOT / "benchmarks" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_match_the_json():
    module = _module()
    readme = (ROOT / "README.md").read_text()
    assert module.updated(readme, module.render()) == readme, "run python benchmarks/readme_results.py"


def test_model_card_matches_the_weights_and_the_json():
    module = _module()
    card = (ROOT / "weights" / "README.md").read_text()
    assert module.updated(card, module.render_card(), module.CARD_START, module.CARD_END) == card, "run python benchmarks/readme_results.py"


def test_every_results_file_has_a_renderer():
    module = _module()
    for path in (ROOT / "benchmarks" / "results").glob("*.json"):
        assert path.stem in module.RENDERERS, path
        assert module.RENDERERS[path.stem](json.loads(path.read_text()))
