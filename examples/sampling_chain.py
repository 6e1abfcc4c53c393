"""Render the sampling chain of one window: what the sampler has committed after each step.

    python examples/sampling_chain.py [--weights DIR] [--steps 8] [--seed 0] [--out chain.png]

The sampler calls ``callback(state)`` after every step with a ``sampling.SamplerState``: the step,
the window's tokens as they stand (the mask id where nothing is committed yet) and which positions
are committed. This script generates one window from nothing, keeps a copy of the tokens at every
step, decodes them with the not-yet-committed positions shown as the token of a black frame, and
writes a PNG: one row per step (top: after the first step; bottom: the finished window), the
window's frames from left to right.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings
from maskflow_cli.sampling import SamplerState

from make_samples import GAP, write_png


def chain_tokens(pipe: MaskFlowPipeline, steps: int, seed: int) -> list[torch.Tensor]:
    """The tokens of one window after each sampler step: ``steps`` tensors long [T,H,W]."""
    states: list[torch.Tensor] = []

    def keep(state: SamplerState) -> None:
        states.append(state.tokens[0].clone().cpu())  # the first (only) sequence, [T,H,W]

    plan_frames = pipe.window
    run = pipe.generate(plan_frames, window_settings(pipe.window, "full"), SamplingOptions(steps=steps, seed=seed), callback=keep)
    for _ in run:  # sampling happens as the chunks are drawn
        pass
    return states


def render(pipe: MaskFlowPipeline, states: list[torch.Tensor]) -> torch.Tensor:
    """The steps' tokens -> uint8 [Y,X,C]: a row of decoded frames per step."""
    fmt = pipe.frame_format
    blank = pipe.encode(torch.zeros(1, fmt.height, fmt.width, fmt.channels, dtype=torch.uint8))[0]  # [H,W]: a black frame's tokens
    mask_id = pipe.transformer.config.mask_id
    rows = []
    for tokens in states:  # [T,H,W]
        shown = torch.where(tokens == mask_id, blank, tokens)
        frames = pipe.decode(shown)  # uint8 [T,Y,X,C]
        padded = torch.nn.functional.pad(frames, (0, 0, 0, GAP, 0, GAP), value=255)  # white gaps right of and below each frame
        rows.append(torch.cat(list(padded), dim=1))  # [Y+GAP, T·(X+GAP), C]
    return torch.cat(rows, dim=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=None, help="weights as for maskflow --weights (default: the installed ones)")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("chain.png"))
    args = parser.parse_args()
    pipe = MaskFlowPipeline.from_weights(args.weights, device="cpu")
    write_png(args.out, render(pipe, chain_tokens(pipe, args.steps, args.seed)))
    print(f"wrote {args.out}: {args.steps} steps of a {pipe.window}-frame window")


if __name__ == "__main__":
    main()
