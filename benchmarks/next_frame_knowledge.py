"""What the transformer knows about the next frames, from one network call on clean context.

A diagnosis for continuation, cheap enough to run on every checkpoint: held-out Moving MNIST clips
of one window W are encoded, the first W/2 frames stay clean (t = 1), the rest are fully masked
(t = 0), and the model is called once, as at the first step of every sampler. For each future
frame the script reports, over the positions whose true token is *ink* (not the token of an empty
patch) and over the *background* positions:

- ``p_true``: the probability the model gives the true token (chance over the vocabulary is 1/V);
- ``accuracy``: how often the most likely token is the true one;
- ``p_background``: the probability it gives the empty-patch token;

and, as pixel MSE per frame (sum over pixels in [0, 1], the continuation metric), the frames decoded
from the most likely tokens, from the true tokens (the tokenizer's floor) and all-black frames.
A model that has learned the motion puts p_true near 1 at ink positions of the first future frame;
one that only knows roughly where ink will be spreads it over many codes, and its samples fade
(MGM commits the confident background token first) or scramble.

What exactness the task asks for is measured beside it, on the test frames: the share of ink tokens
that stay the same when the frame is shifted by 1, 2 or 3 pixels, and the pixel MSE of a frame
against itself shifted so (a prediction that is right but for that offset). Prints tables:

    OMP_NUM_THREADS=1 python -m benchmarks next_frame_knowledge --weights weights --sequences 32
"""

from __future__ import annotations

import argparse

import torch
from torch import Tensor

from maskflow_cli.metrics import frame_mse
from maskflow_cli.pipeline import MaskFlowPipeline

from .common import dtype_name, test_clips
from .markdown import heading, table

NAME = "next_frame_knowledge"
SHARED = {"weights": None, "sequences": 32, "precision": "auto"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--given", type=int, default=None, help="context frames (default: half the window)")


def mean_frame_mse(frames: Tensor, real: Tensor) -> list[float]:
    """uint8 [N,T,Y,X,C] twice -> the continuation metric (``evaluation.frame_mse``) averaged over N, per T."""
    return frame_mse(frames, real).mean(0).tolist()


def decode_clips(pipe: MaskFlowPipeline, tokens: Tensor) -> Tensor:
    """long [N,T,H,W] -> uint8 [N,T,Y,X,C]."""
    return torch.stack([pipe.decode(clip) for clip in tokens])


@torch.inference_mode()
def next_frame_knowledge(pipe: MaskFlowPipeline, clips: Tensor, given: int) -> dict:
    """clips uint8 [N,W,Y,X,C]; the first ``given`` frames are context -> per-future-frame figures."""
    model = pipe.transformer
    vocab, n, window = model.config.vocab_size, clips.shape[0], clips.shape[1]
    tokens = torch.stack([pipe.encode(clip) for clip in clips])  # [N,W,H,W']
    empty = int(pipe.encode(torch.zeros_like(clips[0, :1]))[0, 0, 0])  # the token of an empty patch
    masked = tokens.clone()
    masked[:, given:] = vocab  # the mask id
    times = torch.zeros(n, window)
    times[:, :given] = 1
    future = torch.zeros_like(masked, dtype=torch.bool)
    future[:, given:] = True
    context = torch.arange(window) < given  # [W]
    logits = pipe.denoiser()(masked.to(pipe.device), times.to(pipe.device), future.to(pipe.device), context.to(pipe.device))
    probs = logits.float().cpu().view(n, window - given, *masked.shape[2:], vocab).softmax(-1)  # [N,F,H,W',V]
    truth = tokens[:, given:]  # [N,F,H,W']
    p_true = probs.gather(-1, truth[..., None])[..., 0]
    right = probs.argmax(-1) == truth
    ink = truth != empty
    frames = []
    for f in range(window - given):
        row = {}
        for name, where in (("ink", ink[:, f]), ("background", ~ink[:, f])):
            count = int(where.sum())
            row[name] = {
                "positions": count,
                "p_true": float(p_true[:, f][where].mean()) if count else None,
                "accuracy": float(right[:, f][where].float().mean()) if count else None,
                "p_background": float(probs[:, f][..., empty][where].mean()) if count else None,
            }
        frames.append(row)
    real = clips[:, given:]
    return {
        "chance": 1 / vocab, "empty_token": empty, "frames": frames,
        "mse_argmax": mean_frame_mse(decode_clips(pipe, probs.argmax(-1)), real),
        "mse_tokenizer_floor": mean_frame_mse(decode_clips(pipe, truth), real),
        "mse_black": mean_frame_mse(torch.zeros_like(real), real),
    }


@torch.inference_mode()
def shift_sensitivity(pipe: MaskFlowPipeline, frames: Tensor, shifts: tuple[int, ...] = (1, 2, 3)) -> list[dict]:
    """frames uint8 [N,Y,X,C] -> per horizontal shift: share of ink tokens unchanged, MSE per frame."""
    tokens = pipe.encode(frames)  # [N,H,W]
    ink = tokens != int(pipe.encode(torch.zeros_like(frames[:1]))[0, 0, 0])
    rows = []
    for shift in shifts:
        moved = torch.roll(frames, shift, dims=2)
        rows.append({"shift_px": shift, "ink_tokens_unchanged": float((pipe.encode(moved) == tokens)[ink].float().mean()),
                     "mse": mean_frame_mse(moved[:, None], frames[:, None])[0]})
    return rows


def run(args: argparse.Namespace) -> dict:
    pipe = MaskFlowPipeline.from_weights(args.weights, precision=args.precision)
    given = args.given if args.given is not None else pipe.window // 2
    clips = test_clips(pipe, pipe.window, args.sequences)
    result = {"weights": args.weights or "(installed)", "autocast": dtype_name(pipe.dtype),
              "sequences": args.sequences, "given": given, **next_frame_knowledge(pipe, clips, given),
              "shift_sensitivity": shift_sensitivity(pipe, clips[:, 0])}
    print(f"{result['weights']}: {given} clean frames, one call, {args.sequences} test clips (chance p = {result['chance']:.4f})")
    print("  future frame  ink p_true  ink acc  ink p_bg  bg p_true  MSE argmax  floor  black")
    for f, row in enumerate(result["frames"][:4]):
        print(f"  +{f + 1:<12} {row['ink']['p_true']:9.4f} {row['ink']['accuracy']:8.3f} {row['ink']['p_background']:9.3f}"
              f" {row['background']['p_true']:10.3f} {result['mse_argmax'][f]:11.1f} {result['mse_tokenizer_floor'][f]:6.1f}"
              f" {result['mse_black'][f]:6.1f}")
    for row in result["shift_sensitivity"]:
        print(f"  a frame shifted {row['shift_px']} px: {row['ink_tokens_unchanged']:.1%} of its ink tokens unchanged, "
              f"MSE {row['mse']:.1f} against the unshifted frame")
    return result


def _share(value: float | None, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def render(r: dict) -> str:
    out = heading("What the model knows of the next frames", r) + [
        (f"Weights: {r['weights']}; {r['given']} clean frames, the rest masked, one network call, {r['sequences']} test "
         f"clips. Ink: positions whose true token is not the empty patch's. Chance: p = {r['chance']:.4f}."), ""]
    rows = [[f"+{f + 1}", _share(x["ink"]["p_true"], 4), _share(x["ink"]["accuracy"], 3), _share(x["ink"]["p_background"], 3),
             _share(x["background"]["p_true"], 3), f"{r['mse_argmax'][f]:.1f}", f"{r['mse_tokenizer_floor'][f]:.1f}", f"{r['mse_black'][f]:.1f}"]
            for f, x in enumerate(r["frames"][:4])]
    out += table(["future frame", "p(true), ink", "accuracy, ink", "p(empty), ink", "p(true), background", "MSE of argmax",
                  "MSE of true tokens", "MSE of black"], rows)
    out += [("The exactness the task asks for: a test frame shifted by a few pixels keeps few of its ink tokens, "
             "and its MSE against the unshifted frame grows fast with the shift:"), ""]
    return "\n".join(out + table(["shift", "ink tokens unchanged", "MSE/frame"],
                                 [[f"{x['shift_px']} px", f"{x['ink_tokens_unchanged']:.1%}", f"{x['mse']:.1f}"] for x in r["shift_sensitivity"]]))
