"""The pieces every benchmark's ``render`` writes with: a section heading naming the command that made
the result, the machine it ran on, and markdown tables."""

from __future__ import annotations

import re

# An absolute path of two or more parts (/work/x/weights, /tmp/maze/runs/smoke) not inside a word,
# a relative path or a shell variable: the results page shows it by its last part.
ABSOLUTE_PATH = re.compile(r"(?<![\w.$}~/-])/(?:[\w.@+-]+/)+([\w.@+-]+)")


def hide_machine_paths(text: str) -> str:
    """``text`` with every absolute path shown by its last part (``/work/main/weights`` -> ``weights``):
    the results page and the model card name no folder of the machine that measured."""
    return ABSOLUTE_PATH.sub(r"\1", text)


def heading(title: str, result: dict) -> list[str]:
    """The section's heading, with the command that made the result where the JSON holds it."""
    command = f" (`{result['command']}`)" if "command" in result else ""
    return [f"### {title}{command}", ""]


def machine(m: dict) -> str:
    """The machine a result was measured on. Results since the speed work also name the CPU's flags,
    PyTorch's CPU capability and the fp32 matmul peak measured beside them; the device where it is
    not the CPU."""
    device = f", device {m['device']}" + (f" ({m['gpu']})" if "gpu" in m else "") if m.get("device", "cpu") != "cpu" else ""
    if "flags" not in m:
        return f"{m['cpu']}, {m['threads']} threads, torch {m['torch']}{device}"
    peak = m["matmul_peak_gflops"]["float32"]
    return (f"{m['cpu']} (flags: {', '.join(m['flags']) or 'none of note'}; PyTorch CPU capability {m['capability']}), "
            f"{m['threads']} threads, torch {m['torch']}{device}, fp32 matmul peak {peak:.0f} GFLOP/s measured beside "
            "(far below the CPU's when other processes share it: then read the ratios)")


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows] + [""]


def mean_ci(summary: dict, digits: int = 1) -> str:
    """A ``summarize`` dict as "mean ± 95 % interval"."""
    return f"{summary['mean']:.{digits}f} ± {summary['ci95']:.{digits}f}"
