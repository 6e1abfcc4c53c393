"""Make the sample videos and PNG strips in examples/ with the installed (or given) weights.

    python examples/make_samples.py [--weights DIR] [--frames 160] [--steps K] [--guidance W] [--out examples/]

Writes, all seeded so a rerun on the same machine gives the same files:
- generate.mp4: a video made from nothing;
- extend.mp4: 10 frames of a held-out Moving MNIST test sequence (test digits only), continued;
- infill.mp4: a 32-frame test sequence with frames 12:20 regenerated from both sides;
- strip.png: every 16th frame of generate (top row), extend (middle) and the real sequence that
  extend started from (bottom); infill_strip.png: the infilled frames above the true ones.
"""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

import av
import torch

from maskflow_cli.evaluation import held_out_sequences
from maskflow_cli.engine import SamplingOptions
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import window_settings
from maskflow_cli.video_io import open_writer

GAP = 2  # pixels between frames in a strip


def write_png(path: Path, image: torch.Tensor) -> None:
    """uint8 [Y,X,C] (C 1 or 3) -> a PNG file."""
    gray = image.shape[-1] == 1
    array = (image[..., 0] if gray else image).contiguous().numpy()
    with av.open(str(path), "w", format="image2") as container:
        stream = container.add_stream("png")
        stream.width, stream.height = image.shape[1], image.shape[0]
        stream.pix_fmt = "gray" if gray else "rgb24"
        frame = av.VideoFrame.from_ndarray(array, format="gray" if gray else "rgb24")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


def strip(rows: list[torch.Tensor], every: int) -> torch.Tensor:
    """Videos uint8 [T,Y,X,C] -> one image with a row per video and every ``every``-th frame."""
    picked = [video[::every] for video in rows]
    t = max(len(p) for p in picked)
    y, x, c = rows[0].shape[1:]
    canvas = torch.full((len(rows) * (y + GAP) - GAP, t * (x + GAP) - GAP, c), 128, dtype=torch.uint8)
    for r, frames in enumerate(picked):
        for i, frame in enumerate(frames):
            canvas[r * (y + GAP) : r * (y + GAP) + y, i * (x + GAP) : i * (x + GAP) + x] = frame
    return canvas


def save_video(path: Path, frames: torch.Tensor, pipe: MaskFlowPipeline) -> None:
    with open_writer(str(path), pipe.frame_format, Fraction(pipe.fps), overwrite=True) as writer:
        writer.write(frames)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", default=None)
    parser.add_argument("--frames", type=int, default=160)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=SamplingOptions.steps, help="MGM steps per window (default: the library's)")
    parser.add_argument("--guidance", type=float, default=SamplingOptions.guidance, help="guidance on the context (default: the library's)")
    parser.add_argument("--out", default=str(Path(__file__).parent))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pipe = MaskFlowPipeline.from_weights(args.weights)
    settings = window_settings(pipe.window, "ar")
    options = SamplingOptions(steps=args.steps, seed=args.seed, guidance=args.guidance)
    real = held_out_sequences(None, args.frames, 1, pipe.frame_format, seed=7)[0]  # [T,Y,X,C]

    generated = torch.cat([c.frames for c in pipe.generate(args.frames, settings, options)])
    extended = torch.cat([c.frames for c in pipe.extend(real[:10], args.frames - 10, settings, options)])
    clip = real[:32]
    infilled = torch.cat([c.frames for c in pipe.infill(clip, ["12:20"], settings, options)])

    save_video(out / "generate.mp4", generated, pipe)
    save_video(out / "extend.mp4", extended, pipe)
    save_video(out / "infill.mp4", infilled, pipe)
    write_png(out / "strip.png", strip([generated, extended, real], every=16))
    write_png(out / "infill_strip.png", strip([infilled[10:22], clip[10:22]], every=1))
    print(f"wrote {', '.join(n for n in ('generate.mp4', 'extend.mp4', 'infill.mp4', 'strip.png', 'infill_strip.png'))} into {out}")


if __name__ == "__main__":
    main()
