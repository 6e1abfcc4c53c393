"""Extend one held-out sequence to 160 frames with and without guidance on the context, side by side.

    python examples/guidance_extend.py [--weights DIR] [--frames 160] [--guidance W] [--temperature T] [--anchor A] [--seed 0] [--out examples/]

Both runs start from the same 10 real frames with the same seed: the unguided one samples as the
library did before guidance (``guidance=0``, temperature 1), the guided one with ``guidance=W``,
``temperature=T`` and the guidance anchor's gain A (default: the library's defaults, 0.65, 0.85 and 10).
Writes into ``--out``:
- guidance_extend.png: every 16th frame of the real sequence (top), the unguided extend (middle)
  and the guided one (bottom);
- guidance_extend.mp4: the three videos side by side (real | unguided | guided).
Prints the ink per 16-frame bin of the three, as the horizon suite of ``maskflow eval`` measures it.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import torch

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import held_out_sequences
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings
from maskflow_cli.video_io import open_writer
from maskflow_cli.worlds import drift_stats

from make_samples import GAP, strip, write_png

GIVEN = 10  # real frames each extend starts from
BIN = 16  # frames per ink bin and between the strip's frames


def side_by_side(videos: list[torch.Tensor]) -> torch.Tensor:
    """Videos uint8 [T,Y,X,C] of one length -> uint8 [T,Y,n·X+(n−1)·GAP,C], grey between them."""
    gap = torch.full((*videos[0].shape[:2], GAP, videos[0].shape[3]), 128, dtype=torch.uint8)  # [T,Y,GAP,C]
    parts = [p for v in videos for p in (v, gap)][:-1]
    return torch.cat(parts, dim=2)


def ink_per_bin(video: torch.Tensor, real: torch.Tensor) -> list[float]:
    """uint8 [T,Y,X,C] -> the horizon suite's ink (``worlds.drift_stats``), its mean per BIN-frame bin."""
    per_frame = drift_stats(video[None], real[None])["ink"][0]  # [T]
    return [round(float(per_frame[i : i + BIN].mean()), 1) for i in range(0, len(per_frame), BIN)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=160)
    parser.add_argument("--guidance", type=float, default=SamplingOptions.guidance, help="w of the guided run (default: the library's, %(default)s)")
    parser.add_argument("--temperature", type=float, default=None, help="of the guided run (default: the library's)")
    parser.add_argument("--anchor", type=float, default=SamplingOptions.anchor, help="the guidance anchor's gain in the guided run (default: the library's, %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequence-seed", type=int, default=7, help="which held-out sequence (default: %(default)s, as make_samples.py)")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = MaskFlowPipeline.from_weights(args.weights)
    settings = window_settings(pipe.window, "ar")
    guided = SamplingOptions(seed=args.seed, guidance=args.guidance, temperature=args.temperature, anchor=args.anchor)
    real = held_out_sequences(None, args.frames, 1, pipe.frame_format, seed=args.sequence_seed)[0]  # [T,Y,X,C]

    videos = {"real": real}
    for name, options in (("unguided", replace(guided, guidance=0.0, temperature=1.0)), (f"w {args.guidance:g}, T {guided.temperature_for(True):g}, A {args.anchor:g}", guided)):
        videos[name] = torch.cat([c.frames for c in pipe.extend(real[:GIVEN], args.frames - GIVEN, settings, options)])

    write_png(out / "guidance_extend.png", strip(list(videos.values()), every=BIN))
    together = side_by_side(list(videos.values()))
    fmt = replace(pipe.frame_format, width=together.shape[2])
    with open_writer(str(out / "guidance_extend.mp4"), fmt, Fraction(pipe.fps), overwrite=True) as writer:
        writer.write(together)
    print(f"ink per {BIN}-frame bin (the horizon suite's statistic):")
    for name, video in videos.items():
        print(f"  {name:22} " + " ".join(f"{v:6.1f}" for v in ink_per_bin(video, real)))
    print(f"wrote guidance_extend.png and guidance_extend.mp4 into {out}")


if __name__ == "__main__":
    main()
