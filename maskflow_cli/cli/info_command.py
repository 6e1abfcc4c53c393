"""``maskflow info``: what a set of weights is, read from the weights' own metadata."""

from __future__ import annotations

from . import options as opt
from .report import Reporter
from .steps import frames_of

LABELS = {  # what each config field means, for the info tables
    "tokenizer": {"height": "frame height (pixels)", "width": "frame width (pixels)", "channels": "channels (1 gray, 3 colour)",
                  "base_channels": "base conv channels", "channel_multipliers": "channel multipliers per stage",
                  "blocks_per_stage": "blocks per stage", "levels": "FSQ levels per latent channel", "encoder": "encoder"},
    "transformer": {"vocab_size": "vocabulary (codes)", "frames": "window (frames)", "grid_height": "token grid height",
                    "grid_width": "token grid width", "dim": "model width", "depth": "layers", "heads": "attention heads",
                    "mlp_ratio": "MLP ratio", "attention": "attention", "time_conditioning": "timestep-dependent",
                    "scheduler": "masking scheduler", "code_features": "code features (patch size, 0 off)",
                    "code_digits": "code digits (FSQ levels, empty off)",
                    "context_attention": "context attention (bidirectional or block_causal)"},
}


def _millions(parameters: int) -> str:
    return f"{parameters / 1e6:.1f}M"


def describe_weights(components: dict) -> str:
    """One line: what frames the weights take, their window, vocabulary, sizes and training data."""
    tok, model = components.get("tokenizer"), components.get("transformer")
    parts = []
    if tok is not None:
        parts.append(frames_of(tok.config))
    if model is not None:
        parts.append(f"{model.config.frames}-frame window")
    if tok is not None:
        parts.append(f"vocabulary {tok.config.vocab_size} ({tok.config.token_width}×{tok.config.token_height} tokens per frame)")
    if model is not None:
        m, fps = model.config, model.info.get("fps")
        parts += [f"{fps:g} fps" if isinstance(fps, (int, float)) else "fps not stored",
                  f"transformer {_millions(model.parameters)} parameters ({m.depth} layers, width {m.dim}, {m.attention} attention, "
                  f"{'timestep-dependent' if m.time_conditioning else 'timestep-independent'})"]
    if tok is not None:
        parts.append(f"tokenizer {_millions(tok.parameters)} parameters")
    trained = [f"{kind} on {comp.info['dataset']}" + (f" ({comp.info['steps']:,} steps)" if isinstance(comp.info.get("steps"), int) else "")
               for kind, comp in components.items() if comp.info.get("dataset")]
    return ", ".join(parts) + ("; trained: " + ", ".join(trained) if trained else "")


def info(weights: opt.Weights = None, json_: opt.Json = False) -> None:
    """Show what a set of weights is: components, configuration, parameters, frame size, window.

    Examples:

      maskflow info

      maskflow info --weights hf://owner/repo --json
    """
    from ..lineage import history_lines
    from ..weight_headers import inspect_weights

    components = inspect_weights(weights)
    summary = describe_weights(components)
    payload = {
        kind: {"file": str(c.file), "parameters": c.parameters, "config": c.config.__dict__, "info": c.info}
        for kind, c in components.items()
    }
    if json_:
        return Reporter(json_output=True).data({"summary": summary, **payload})
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(summary, markup=False, highlight=False, soft_wrap=True)
    for kind, entry in payload.items():
        table = Table(title=f"{kind}  ({entry['parameters']:,} parameters)  {entry['file']}", show_header=False, title_justify="left")
        for key, value in entry["config"].items():
            table.add_row(LABELS.get(kind, {}).get(key, key), str(value))
        if kind == "tokenizer":
            c = components[kind].config
            table.add_row("vocabulary (codes)", str(c.vocab_size))
            table.add_row("tokens per frame", f"{c.token_width}×{c.token_height}")
        for key, value in entry["info"].items():
            if key != "lineage":  # written out as the history below
                table.add_row(f"{key} (stored)", str(value))
        for number, line in enumerate(history_lines(entry["info"])):
            table.add_row("history" if number == 0 else "", line)
        console.print(table)
