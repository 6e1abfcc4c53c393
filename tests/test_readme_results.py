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


def test_sampler_tuning_renders_and_plots(tmp_path):
    import pytest

    pytest.importorskip("matplotlib")
    from maskflow_cli.plots import write_tuning_plot

    base = {"sampler": "mgm", "steps": 12, "noise": 4.5, "anneal": True, "temperature": 1.0, "context": 8}
    row = {"mse_ci95": 3.0, "psnr": 16.0, "ssim": 0.8, "seconds_per_frame": 1.0}
    result = {"machine": {"cpu": "x", "threads": 1, "torch": "t"}, "sequences": 2, "seed": 0, "base": base, "black_mse": 160.0,
              "rows": [{"group": "steps", **base, "nfe": 24, "mse": 110.0, **row},
                       {"group": "fm", **base, "sampler": "fm", "nfe": 20, "mse": 150.0, "mse_vs_base": 40.0, "mse_vs_base_ci95": 5.0, **row}]}
    lines = _module().render_sampler_tuning(result)
    assert any("| fm | fm | 12 | – | – |" in line and "+40.0 ± 5.0" in line for line in lines) and any("160.0" in line for line in lines)
    path = write_tuning_plot(result, tmp_path / "tuning.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
