"""The cheap speed levers, each timed against its baseline in one process, interleaved.

Each lever is a pair of variants of the same work, run alternately (``common.interleaved``), on the
weights' transformer and tokenizer: a network call on a half-context window through ``forward`` (all
logits) against ``logits_at`` (the last block and the head on the masked frames only); glibc's default
allocator settings against a high mmap/trim threshold (no page faults from freeing and re-mapping large
activations); tanh-approximated against exact (erf) GELU, with how much the logits move; the tokenizer
decoder in the default against the channels-last memory format, with whether the pixels stay
identical; the Gumbel draws of one MGM step against one network call; in bf16 (the model cast as
``--precision bf16`` casts it): PyTorch's flash attention against the blocked matmuls
(``transformer.bf16_cpu_attention``; ``runtime.cast_for_inference`` picks flash where the CPU has
AMX), linear layers packed once in oneDNN's layout (``runtime.PackedLinear``, where PyTorch has its
kernels) against plain ones, with whether the logits stay equal, and network calls in the one kept
helper thread (``signals.interruptible``) against a new thread per call; with --compile also
``torch.compile`` of ``logits_at`` (minutes of compiling on a CPU). Ratios are CPU time (median of
per-round ratios). Prints a table:

    OMP_NUM_THREADS=1 python -m benchmarks levers --weights weights
"""

from __future__ import annotations

import argparse
import copy
import threading
import time
from typing import Callable

import torch

from maskflow_cli.runtime import cpu_has_amx, pack_linears, packed_linears_available
from maskflow_cli.sampling import gumbel
from maskflow_cli.signals import interruptible
from maskflow_cli.startup import set_allocator
from maskflow_cli.transformer import TanhGELU
from maskflow_cli.weights import load_models

from .common import interleaved
from .markdown import heading, machine, table

NAME = "levers"
SHARED = {"weights": None}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=3, help="network calls per timed variant")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile on a CPU)")


def half_context_window(config) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Tokens, times and the masked positions of a window whose first half is context."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, config.vocab_size, (1, config.frames, config.grid_height, config.grid_width), generator=g)
    masked = torch.zeros_like(x, dtype=torch.bool)
    masked[:, config.frames // 2 :] = True
    times = torch.where(masked.flatten(2).all(2), 0.3, 1.0)
    return x.masked_fill(masked, config.mask_id), times, masked


def lever(name: str, baseline: Callable[[], object], variant: Callable[[], object], rounds: int, note: str = "") -> dict:
    r = interleaved({"baseline": baseline, "variant": variant}, rounds)
    return {"lever": name, "baseline_cpu_s": r["baseline"]["median_cpu_s"], "variant_cpu_s": r["variant"]["median_cpu_s"],
            "ratio": r["variant"]["cpu_ratio"], "note": note}


def set_gelu(model, approximate: str) -> None:
    """Every block's GELU in one form ("tanh" or "none": erf) whatever the dtype (the model's own
    ``TanhGELU`` picks the form by dtype); ``restore_gelu`` puts the model's back."""
    for block in model.blocks:
        block.mlp[1] = torch.nn.GELU(approximate=approximate)


def restore_gelu(model) -> None:
    for block in model.blocks:
        block.mlp[1] = TanhGELU()


def run(args: argparse.Namespace) -> dict:
    tokenizer, model, _ = load_models(args.weights)
    x, times, masked = half_context_window(model.config)

    def calls(fn: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            with torch.inference_mode():
                for _ in range(args.calls):
                    fn()
        return run

    forward, masked_only = calls(lambda: model(x, times)), calls(lambda: model.logits_at(x, times, masked))
    rows = [lever("logits and last block on masked frames only", forward, masked_only, args.rounds)]

    def allocator(tuned: bool) -> Callable[[], None]:
        def run() -> None:
            set_allocator(tuned)
            masked_only()
        return run
    rows.append(lever("allocator: high mmap/trim thresholds", allocator(False), allocator(True), args.rounds))
    set_allocator(False)

    def gelu(approximate: str) -> Callable[[], None]:
        def run() -> None:
            set_gelu(model, approximate)
            masked_only()
        return run
    with torch.inference_mode():
        tanh_logits = model.logits_at(x, times, masked).log_softmax(-1)
        set_gelu(model, "none")
        erf_logits = model.logits_at(x, times, masked).log_softmax(-1)
    kl = float((tanh_logits.exp() * (tanh_logits - erf_logits)).sum(-1).mean())
    rows.append(lever("GELU: erf instead of tanh", gelu("tanh"), gelu("none"), args.rounds,
                      f"changes the numerics: mean KL {kl:.1e}, argmax differs at {float((tanh_logits.argmax(-1) != erf_logits.argmax(-1)).float().mean()):.2%}"))
    restore_gelu(model)

    codes = torch.randint(0, model.config.vocab_size, (64, model.config.grid_height, model.config.grid_width), generator=torch.Generator().manual_seed(1))
    channels_last = load_models(args.weights)[0].to(memory_format=torch.channels_last)
    with torch.inference_mode():
        a, b = tokenizer.decode(codes), channels_last.decode(codes)
    differ = float((a != b).float().mean())
    rows.append(lever("tokenizer decoder channels-last (64 frames)", calls(lambda: tokenizer.decode(codes)),
                      calls(lambda: channels_last.decode(codes)), args.rounds,
                      f"pixels differing from the default layout: {differ:.3%} (max {int((a.int() - b.int()).abs().max())} levels)"))

    generator = torch.Generator().manual_seed(2)
    m = int(masked.sum())
    draws = calls(lambda: (gumbel(torch.Size([m, model.config.vocab_size]), generator, x.device), gumbel(torch.Size([m]), generator, x.device)))
    rows.append(lever("one MGM step's Gumbel draws, against a network call", masked_only, draws, args.rounds))

    rows += bf16_levers(model, x, times, masked, calls, args.rounds)
    if args.compile:
        compiled = torch.compile(model.logits_at, dynamic=False)
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(x, times, masked)
        rows.append(lever("torch.compile of logits_at", masked_only, calls(lambda: compiled(x, times, masked)), args.rounds,
                          f"compiling took {time.perf_counter() - start:.0f} s"))
    for r in rows:
        print(f"{r['lever']:55} {r['baseline_cpu_s']:7.3f} s -> {r['variant_cpu_s']:7.3f} s  ratio {r['ratio']:.3f}  {r['note']}")
    return {"weights": args.weights or "(installed)", "calls": args.calls, "rounds": args.rounds, "rows": rows}


def bf16_levers(model, x: torch.Tensor, times: torch.Tensor, masked: torch.Tensor, calls, rounds: int) -> list[dict]:
    """The bf16 levers: the attention kernel, packed linear layers, the kept helper thread; with the
    allocator tuned, as the command line runs."""
    set_allocator(True)
    plain = copy.deepcopy(model).to(torch.bfloat16)  # bf16 without this CPU's kernel choices
    amx = cpu_has_amx()

    one_call = calls(lambda: plain.logits_at(x, times, masked))

    def attention(blocked: bool) -> Callable[[], None]:
        def run() -> None:
            plain.use_blocked_bf16_attention(blocked)
            one_call()
        return run
    rows = [lever("bf16 attention: flash kernel instead of blocked matmuls", attention(True), attention(False), rounds,
                  f"this CPU {'has' if amx else 'has no'} AMX: cast_for_inference runs {'flash' if amx else 'the blocks'}")]
    plain.use_blocked_bf16_attention(not amx)
    if packed_linears_available():
        packed = pack_linears(copy.deepcopy(plain))
        with torch.inference_mode():
            equal = torch.equal(plain.logits_at(x, times, masked), packed.logits_at(x, times, masked))
        rows.append(lever("bf16 linear layers packed once (oneDNN layout)", one_call, calls(lambda: packed.logits_at(x, times, masked)), rounds,
                          f"logits {'equal' if equal else 'not equal'} to the plain layers'"))

    def new_thread() -> None:
        worker = threading.Thread(target=one_call)
        worker.start()
        worker.join()
    rows.append(lever("bf16 calls in the kept helper thread, not a thread per call", new_thread, lambda: interruptible(one_call), rounds))
    set_allocator(False)
    return rows


def render(r: dict) -> str:
    out = heading("Speed levers, each against its baseline", r) + [
        f"Machine: {machine(r['machine'])}. Weights: {r['weights']}. CPU time, variants interleaved, median of {r['rounds']} per-round ratios.", ""]
    rows = [[x["lever"], f"{x['baseline_cpu_s']:.3f}", f"{x['variant_cpu_s']:.3f}", f"{x['ratio']:.3f}", x["note"]] for x in r["rows"]]
    return "\n".join(out + table(["lever", "baseline CPU s", "variant CPU s", "ratio", "note"], rows))
