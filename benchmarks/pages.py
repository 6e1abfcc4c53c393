"""benchmarks/RESULTS.md and the model card's facts (weights/README.md), rendered from the results.

No figure on either page is typed by hand: the results page is every benchmark's ``render`` of its
JSON in benchmarks/results/ (the ``benchmark`` key names the module), in the registry's order; the
card shows, for the shipped weights, the training facts stored in their metadata and the results
measured on them. Absolute paths are shown by their last part (``markdown.hide_machine_paths``).
"""

from __future__ import annotations

import json
from pathlib import Path

from . import registry
from .common import ROOT
from .markdown import hide_machine_paths, table

RESULTS = ROOT / "benchmarks" / "results"
PAGE = ROOT / "benchmarks" / "RESULTS.md"
CARD = ROOT / "weights" / "README.md"
CARD_START, CARD_END = "<!-- card:start -->", "<!-- card:end -->"
FACTS = ("parameters", "dataset", "frames", "clips", "window", "steps", "batch_size", "lr", "ema", "seed", "precision",
         "hardware", "wall_seconds", "final_loss", "decoder_only_from", "loss", "reconstruction_psnr", "storage",
         "time_limit", "clips_seen", "init_from", "total_steps", "total_clips_seen")
INTRO = """# Results

Rendered by `python -m benchmarks --render` from the JSON in `benchmarks/results/`, which the
benchmarks (`python -m benchmarks --list`) write; `python -m benchmarks --check` and a test fail when
this page and the JSON disagree, so no figure here is typed by hand. Each section names the command
that made it and the machine it ran on: the CPU's model and flags (AVX2, AVX-512, AMX, bf16),
PyTorch's CPU capability, the threads and a matmul peak measured in the same run, because the same
code runs several times faster or slower on another CPU. Speed numbers taken while other work shares
the CPU are noisy: variants run interleaved, and the ratios are what to compare.
"""


def results(folder: Path = RESULTS) -> list[tuple[Path, dict]]:
    """Every result in ``folder`` (not its subfolders), by file name."""
    return [(path, json.loads(path.read_text())) for path in sorted(folder.glob("*.json"))]


def render_page(folder: Path = RESULTS) -> str:
    """The results page: each benchmark's sections, in the registry's order."""
    benchmarks = registry()
    found = results(folder)
    for path, result in found:
        if result.get("benchmark") not in benchmarks:
            raise SystemExit(f"{path.name}: its 'benchmark' ({result.get('benchmark')!r}) names none of {', '.join(benchmarks)}")
    sections = [module.render(result) for name, module in benchmarks.items() for _, result in found if result["benchmark"] == name]
    return hide_machine_paths("\n\n".join([INTRO.rstrip(), *(s.rstrip() for s in sections)]) + "\n")


def _without_heading(markdown: str) -> list[str]:
    return markdown.splitlines()[2:]


def render_card(weights: Path = ROOT / "weights", folder: Path = RESULTS) -> str:
    """The model card's facts: per component its config and training facts, then the measured quality."""
    from maskflow_cli.lineage import history_lines
    from maskflow_cli.weight_headers import inspect_weights

    lines = [CARD_START, ""]
    if not list(weights.glob("*.safetensors")):
        return "\n".join(lines + ["*No weights in this folder yet.*", "", CARD_END])
    for kind, c in inspect_weights(str(weights)).items():
        facts = {"parameters": f"{c.parameters:,}", **c.info}
        lines += [f"**{kind}** (`{c.file.name}`): " + ", ".join(f"{k}={v}" for k, v in c.config.__dict__.items()), ""]
        lines += table(["fact", "value"], [[k, facts[k]] for k in FACTS if k in facts])
        history = history_lines(c.info)
        lines += ["History (oldest first; each run's content hash, its steps and training clips):", "", *[f"- {h}" for h in history], ""] if history else []
    benchmarks = registry()
    shown = {path.name: result for path, result in results(folder)}
    captions = {"eval.json": "Measured quality, from `benchmarks/results/eval.json` (all results: `benchmarks/RESULTS.md`):",
                "sampler_tuning.json": "Sampler settings on these weights, from `benchmarks/results/sampler_tuning.json` (the defaults were chosen from these):",
                "sampler_tuning_8_steps.json": ("Sampler settings on these weights, from `benchmarks/results/sampler_tuning_8_steps.json` "
                                                "(the defaults were chosen from these):"),
                "sampler_tuning_guidance.json": ("Guidance on the context on these weights, from `benchmarks/results/sampler_tuning_guidance.json` "
                                                 "(each w against the unguided base; `benchmarks/results/guidance.json` holds the schedules and both test sets):"),
                "eval_h100.json": "The H100's own evaluation, from `benchmarks/results/eval_h100.json`, next to this machine's:"}
    for name, caption in captions.items():
        if name in shown:
            lines += [caption, ""] + _without_heading(benchmarks[shown[name]["benchmark"]].render(shown[name])) + [""]
    return hide_machine_paths("\n".join(lines + [CARD_END]))


def updated(text: str, section: str, start: str, end: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    return head + section + rest.split(end, 1)[1]


def update_pages(write: bool) -> list[str]:
    """The pages that differ from their rendering (written anew when ``write``), relative to the checkout."""
    card = CARD.read_text()
    wanted = {PAGE: render_page(), CARD: updated(card, render_card(), CARD_START, CARD_END)}
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if write:
        for path in stale:
            path.write_text(wanted[path])
    return [str(path.relative_to(ROOT)) for path in stale]
