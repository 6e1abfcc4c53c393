"""PNG plots of evaluation and benchmark results (needs matplotlib: ``pip install 'maskflow[plot]'``).

Each function takes the JSON-ready dict that evaluation.py or a benchmark script made and returns
the paths it wrote; nothing here computes a number. A file or folder that cannot be written is an
OutputError with the OS's reason.
"""

from __future__ import annotations

from pathlib import Path

from .errors import OutputError


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def write_eval_plots(result: dict, folder: Path) -> list[Path]:
    """Quality per future frame (continuation) and drift per bin (long horizon), as PNG files."""
    plt = _pyplot()
    written = []
    if "continuation" in result:
        c = result["continuation"]
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
        for ax, metric in zip(axes, ("mse", "psnr", "ssim")):
            for name in ("maskflow", "copy_last", "black"):
                values = c[name][f"{metric}_per_frame"]
                ax.plot(range(c["given"] + 1, c["given"] + len(values) + 1), values, marker="o", label=name)
            ax.set_xlabel("frame")
            ax.set_title(metric.upper())
        axes[0].legend()
        fig.suptitle(f"continuation {c['given']} -> {c['future']} ({c['sampler']}, {c['steps']} steps)")
        written.append(_save(fig, folder / "continuation_per_frame.png", plt))
    if "horizon" in result:
        h = result["horizon"]
        fig, axes = plt.subplots(1, 3, figsize=(12, 3.5))
        for ax, stat in zip(axes, ("ink", "crisp", "blobs")):
            for name in ("real", "generate", "extend"):
                values = h[name][stat]
                ax.plot([h["bin"] * (i + 0.5) for i in range(len(values))], values, marker="o", label=name)
            ax.set_xlabel("frame")
            ax.set_title(stat)
        axes[0].legend()
        fig.suptitle(f"long horizon: {h['frames']} frames, per {h['bin']}-frame bin")
        written.append(_save(fig, folder / "horizon_drift.png", plt))
    return written


def write_sampler_plot(rows: list[dict], path: Path) -> Path:
    """Quality against NFE per sampler, from the sampler benchmark's rows (sampler, nfe, mse, psnr)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for sampler in sorted({r["sampler"] for r in rows}):
        mine = sorted((r for r in rows if r["sampler"] == sampler), key=lambda r: r["nfe"])
        for ax, metric in zip(axes, ("mse", "psnr")):
            ax.plot([r["nfe"] for r in mine], [r[metric] for r in mine], marker="o", label=sampler)
            ax.set_xscale("log")
            ax.set_xlabel("NFE per sequence")
            ax.set_title(metric.upper())
    axes[0].legend()
    return _save(fig, path, plt)


def write_tuning_plot(result: dict, path: Path) -> Path:
    """Continuation MSE against network passes (guidance's uncond passes included) for every point of the
    sampler-tuning benchmark, one colour per group; points measured before guidance existed ran without it."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for group in dict.fromkeys(r["group"] for r in result["rows"]):
        mine = [r for r in result["rows"] if r["group"] == group]
        ax.errorbar([r["nfe"] for r in mine], [r["mse"] for r in mine], yerr=[r["mse_ci95"] for r in mine], fmt="o",
                    capsize=3, label=group)
        for r in mine:
            changed = ", ".join(f"{k} {r.get(k, 0.0):g}" for k in ("steps", "noise", "anneal", "temperature", "context", "guidance")
                                if r.get(k, 0.0) != result["base"].get(k, 0.0)) or "base"
            ax.annotate(f"{r['sampler']}: {changed}", (r["nfe"], r["mse"]), fontsize=7, xytext=(4, 2), textcoords="offset points")
    if "black_mse" in result:
        ax.axhline(result["black_mse"], color="gray", linestyle="--", label="all-black frames")
    ax.set_xscale("log")
    nfes = sorted({r["nfe"] for r in result["rows"]})
    ax.set_xticks(nfes, [f"{n:g}" for n in nfes])
    ax.minorticks_off()
    ax.set_xlabel("network passes per sequence")
    ax.set_ylabel("MSE per frame (10 -> 10)")
    ax.legend(fontsize=8)
    return _save(fig, path, plt)


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
    except OSError as error:
        raise OutputError(str(path), f"cannot write: {error.strerror or error}") from None
    finally:
        plt.close(fig)
    return path
