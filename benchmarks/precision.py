"""Precision: bf16 and int8 against fp32, in quality (paired, on held-out sequences) and in CPU time.

Variants of the installed (or ``--weights``) models, all on the CPU:
- fp32: as stored;
- bf16: the transformer's and the tokenizer decoder's weights cast to bf16 (``--precision bf16``,
  ``runtime.cast_for_inference``);
- int8: the transformer's linear layers dynamically quantized to int8 (``--precision int8``,
  ``runtime.quantize_linears``: int8 weights, activations quantized per call), the rest fp32.
Quality, on the held-out sequences ``maskflow eval`` uses (``--data-seed``): the 10 -> 10
continuation at the default sampler settings and seed ``--seed``, per-sequence MSE paired against
fp32 (mean difference and its 95 % interval); and *token agreement*, the share of masked positions
whose most likely token equals fp32's, from one network call on each sequence's first continuation
window (context frames clean, the rest masked). Speed: CPU seconds per network call on that window
(one sequence) and per decoded frame, interleaved, as ratios to fp32. On a machine whose PyTorch
kernels use AVX-512 the CPU's capability can be lowered to AVX2 for a rough picture of an AVX2-only
CPU (oneDNN and MKL told the same; FBGEMM, which runs the int8 layers, reads none of these settings
and keeps its AVX-512 kernels; the CPU itself keeps its caches and clock):

    OMP_NUM_THREADS=1 python -m benchmarks precision
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2 OMP_NUM_THREADS=1 \\
        python -m benchmarks precision --out benchmarks/results/precision_avx2.json
"""

from __future__ import annotations

import argparse
import copy
import os

import torch
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import FUTURE, GIVEN, held_out_sequences, sample_videos
from maskflow_cli.metrics import frame_mse, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, window_settings
from maskflow_cli.runtime import ModelDenoiser, cast_for_inference, quantize_linears

from .common import interleaved
from .markdown import heading, machine, table

NAME = "precision"
SHARED = {"weights": None, "sequences": 32, "batch": 16, "seed": 0}
PEAK_DTYPES = (torch.float32, torch.bfloat16)
VARIANTS = ("fp32", "bf16", "int8")
PARTS = ("quality", "speed")
PROXY_SETTINGS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_ENABLE_INSTRUCTIONS")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-seed", type=int, default=1234, help="seed of the held-out Moving MNIST sequences")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS), help="fp32 (the reference) always runs")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS), help="quality (seeded: the same on every machine) and speed")


def variant_pipe(fp32: MaskFlowPipeline, name: str) -> MaskFlowPipeline:
    if name == "fp32":
        return fp32
    if name == "bf16":
        tokenizer = copy.deepcopy(fp32.tokenizer)
        cast_for_inference(tokenizer.decoder, torch.bfloat16)
        return MaskFlowPipeline(tokenizer, cast_for_inference(copy.deepcopy(fp32.transformer), torch.bfloat16), device=fp32.device, dtype=torch.bfloat16)
    return MaskFlowPipeline(fp32.tokenizer, quantize_linears(copy.deepcopy(fp32.transformer)), device=fp32.device)


def first_window(pipe: MaskFlowPipeline, clips: torch.Tensor, context: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The continuation's first window at its first step: tokens [N,W,H,W'] (the last ``context``
    given frames clean, the rest masked), times [N,W], wanted [N,W,H,W'] and the context frames [W]."""
    window = pipe.window
    frames = clips[:, GIVEN - context : GIVEN - context + window]
    tokens = torch.stack([pipe.encode(f) for f in frames])
    new = torch.arange(window) >= context
    wanted = new[None, :, None, None].expand_as(tokens)
    times = (~new).float()[None].expand(len(tokens), -1)
    return tokens.masked_fill(wanted, pipe.transformer.config.mask_id), times, wanted, ~new


def run(args: argparse.Namespace) -> dict:
    fp32 = MaskFlowPipeline.from_weights(args.weights, device="cpu", precision="fp32")
    pipes = {name: variant_pipe(fp32, name) for name in ["fp32", *(v for v in args.variants if v != "fp32")]}
    settings = window_settings(fp32.window, "ar")
    clips = held_out_sequences(None, GIVEN + FUTURE, args.sequences, fp32.frame_format, args.data_seed)
    options = SamplingOptions(seed=args.seed)
    tokens, times, wanted, context = first_window(fp32, clips, settings.context)
    rows = [{"variant": name} for name in pipes]
    reference: dict = {}
    for row, pipe in zip(rows, pipes.values() if "quality" in args.parts else []):
        video, _ = sample_videos(pipe, plan_extend(GIVEN, FUTURE, settings), options, clips[:, :GIVEN], args.batch)
        mse = frame_mse(video[:, GIVEN:], clips[:, GIVEN:]).mean(1)  # [N]
        with torch.inference_mode():
            best = ModelDenoiser(pipe.transformer)(tokens, times, wanted, context).argmax(-1)  # [M]
        reference = reference or {"mse": mse, "best": best}
        row.update({"mse": summarize(mse), "mse_vs_fp32": summarize(mse - reference["mse"]),
                    "token_agreement": round(float((best == reference["best"]).float().mean()), 4)})
        print(f"{row['variant']:5} MSE {row['mse']['mean']:7.2f}  vs fp32 {row['mse_vs_fp32']['mean']:+6.2f} ± {row['mse_vs_fp32']['ci95']:.2f}"
              f"  token agreement {row['token_agreement']:.4f}", flush=True)
    one = tuple(x[:1] for x in (tokens, times, wanted)) + (context,)
    codes = torch.stack([fp32.encode(f) for f in clips[:4, :GIVEN]]).flatten(0, 1)  # [40,H,W]

    def call(pipe: MaskFlowPipeline):
        denoiser = ModelDenoiser(pipe.transformer)

        def once() -> None:
            with torch.inference_mode():
                denoiser(*one)
        return once

    if "speed" not in args.parts:
        return result(args, clips, settings, options, rows)
    calls = interleaved({name: call(pipe) for name, pipe in pipes.items()}, args.rounds)
    decodes = interleaved({name: (lambda p=pipe: p.decode(codes)) for name, pipe in pipes.items() if name != "int8"}, args.rounds)
    for row in rows:
        c, d = calls[row["variant"]], decodes.get(row["variant"])
        row.update({"cpu_ms_per_call": round(1000 * c["median_cpu_s"], 1), "call_cpu_vs_fp32": c["cpu_ratio"]})
        if d:
            row.update({"cpu_ms_per_decoded_frame": round(1000 * d["median_cpu_s"] / len(codes), 2), "decode_cpu_vs_fp32": d["cpu_ratio"]})
        print(f"{row['variant']:5} {row['cpu_ms_per_call']:7.1f} CPU ms/call ({row['call_cpu_vs_fp32']:.3f}x fp32)"
              + (f", {row['cpu_ms_per_decoded_frame']:.2f} ms/decoded frame ({row['decode_cpu_vs_fp32']:.3f}x)" if d else ""))
    return result(args, clips, settings, options, rows)


def result(args: argparse.Namespace, clips: torch.Tensor, settings, options: SamplingOptions, rows: list[dict]) -> dict:
    return {"weights": args.weights or "(installed)", "sequences": len(clips), "data_seed": args.data_seed, "seed": args.seed,
            "context": settings.context, "steps": options.steps, "load_average": list(os.getloadavg()),
            "proxy": {k: os.environ[k] for k in PROXY_SETTINGS if k in os.environ}, "rows": rows}


def render(r: dict) -> str:
    proxy = " ".join(f"{k}={v}" for k, v in r["proxy"].items())
    out = heading("Precision: bf16 and int8 against fp32" + (" (AVX2 proxy)" if proxy else ""), r) + [
        f"Machine: {machine(r['machine'])}" + (f"; run as {proxy}: PyTorch's, oneDNN's and MKL's kernels limited to AVX2, a rough proxy "
                                                "for an AVX2-only CPU (same caches and clock; FBGEMM's int8 kernels are not limited, so the "
                                                "int8 row is not a proxy)" if proxy else "") +
        f". Load average {', '.join(f'{x:.1f}' for x in r['load_average'])} after the run. Quality: the 10 -> 10 continuation of "
        f"{r['sequences']} held-out sequences (data seed {r['data_seed']}), MGM {r['steps']} steps, context {r['context']}, seed "
        f"{r['seed']}; MSE paired against fp32 (mean ± 95 % interval). Token agreement: the share of masked positions whose most likely "
        "token equals fp32's, one network call on each sequence's first window. CPU time per network call (one sequence, the same "
        "window) and per decoded frame, interleaved, medians and per-round ratios to fp32.", ""]
    rows = [[x["variant"], f"{x['mse']['mean']:.2f} ± {x['mse']['ci95']:.2f}" if "mse" in x else "—",
             f"{x['mse_vs_fp32']['mean']:+.2f} ± {x['mse_vs_fp32']['ci95']:.2f}" if "mse" in x and x["variant"] != "fp32" else "—",
             f"{100 * x['token_agreement']:.1f} %" if "mse" in x else "—",
             f"{x['cpu_ms_per_call']:.0f}" if "cpu_ms_per_call" in x else "—",
             f"{1 / x['call_cpu_vs_fp32']:.2f}×" if "cpu_ms_per_call" in x else "—",
             f"{x['cpu_ms_per_decoded_frame']:.1f}" if "cpu_ms_per_decoded_frame" in x else "—",
             f"{1 / x['decode_cpu_vs_fp32']:.2f}×" if "decode_cpu_vs_fp32" in x else "—"] for x in r["rows"]]
    return "\n".join(out + table(["precision", "MSE", "MSE − fp32 (paired)", "token agreement", "CPU ms / call", "speed-up",
                                  "CPU ms / decoded frame", "decode speed-up"], rows))
