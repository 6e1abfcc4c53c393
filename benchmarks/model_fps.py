"""Does showing the model every n-th frame (--model-fps) help it continue a faster video?

Moving MNIST held-out sequences rendered at ``--factor`` times the weights' rate: the digits move
1/factor of the usual distance per frame (speed range divided by the factor, same bounces), so every
factor-th frame is a sequence at the model's own rate. Each sequence's first ``--given`` frames are
given to ``extend`` and the next ``--future`` frames are compared with the truth, per-frame MSE
(summed over the pixels in [0, 1], the continuation metric), in two ways:

- ``every frame``: the model sees every input frame and makes every output frame (no --model-fps);
- ``every n-th``: ``extend_timeline`` with stride ``--factor``: the model sees every factor-th
  input frame (ending with the last one), makes 1/factor of the new frames, each held for factor
  output frames (what ``--model-fps`` does);

beside copying the last given frame. Paired per sequence (same sequences, same seed):

    OMP_NUM_THREADS=1 python -m benchmarks model_fps --sequences 16 --batch 16
"""

from __future__ import annotations

import argparse

import torch

from maskflow_cli.engine import SamplingOptions
from maskflow_cli.evaluation import sample_videos
from maskflow_cli.metrics import frame_mse, summarize
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.planner import plan_extend, window_settings
from maskflow_cli.timeline import extend_timeline
from maskflow_cli.worlds.moving_mnist import SPEED_RANGE, moving_mnist

from .common import dtype_name
from .markdown import heading, table

NAME = "model_fps"
SHARED = {"weights": None, "sequences": 16, "batch": 16, "seed": 0, "precision": "fp32"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--factor", type=int, default=2, help="input frames per model frame (default: %(default)s)")
    parser.add_argument("--given", type=int, default=20, help="input frames given to extend (default: %(default)s)")
    parser.add_argument("--future", type=int, default=20, help="new frames compared with the truth (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=4, help="sampler steps per window (default: %(default)s)")
    parser.add_argument("--data-seed", type=int, default=1234, help="seed of the held-out sequences (default: %(default)s)")


def fast_sequences(count: int, frames: int, factor: int, size: int, channels: int, seed: int) -> torch.Tensor:
    """Held-out Moving MNIST at ``factor`` times the usual frame rate: uint8 [N,frames,S,S,C]."""
    low, high = SPEED_RANGE
    clips = moving_mnist(count, frames, seed=seed, split="test", size=size, speed=(low / factor, high / factor)).frames
    return clips.expand(*clips.shape[:-1], channels).contiguous()


@torch.inference_mode()
def run(args: argparse.Namespace) -> dict:
    pipe = MaskFlowPipeline.from_weights(args.weights, device="cpu", precision=args.precision)
    fmt = pipe.frame_format
    videos = fast_sequences(args.sequences, args.given + args.future, args.factor, fmt.height, fmt.channels, args.data_seed)
    given, truth = videos[:, : args.given], videos[:, args.given :]
    settings = window_settings(pipe.window, "ar")
    options = SamplingOptions(steps=args.steps, seed=args.seed)
    rows = {"copy last frame": given[:, -1:].expand_as(truth)}
    for name, stride in (("every frame", 1), (f"one frame in {args.factor}", args.factor)):
        timeline = extend_timeline(args.given, args.future, stride)
        made = timeline.gaps[0][1] - timeline.gaps[0][0]
        plan = plan_extend(len(timeline.inputs), made, settings)
        out, _ = sample_videos(pipe, plan, options.resolved(), given[:, list(timeline.inputs)], args.batch)  # [N,S+made,...]
        rows[name] = out[:, list(timeline.shows[args.given :])]  # [N,future,...] at the input's rate
    scores = {}
    for name, frames in rows.items():
        mse = frame_mse(frames, truth)  # [N,future]
        half = args.future // 2
        scores[name] = {"all": summarize(mse.mean(1)), "first_half": summarize(mse[:, :half].mean(1)),
                        "second_half": summarize(mse[:, half:].mean(1)), "per_sequence": [round(v, 2) for v in mse.mean(1).tolist()]}
    base = torch.tensor(scores["every frame"]["per_sequence"])
    for name, score in scores.items():
        score["paired_difference"] = summarize(torch.tensor(score["per_sequence"]) - base)
    result = {"weights": args.weights or "(installed)", "autocast": dtype_name(pipe.dtype), "weights_fps": float(pipe.fps),
              "input_fps": float(pipe.fps) * args.factor, "factor": args.factor, "sequences": args.sequences, "given": args.given,
              "future": args.future, "steps": args.steps, "seed": args.seed, "data_seed": args.data_seed, "scores": scores}
    print(render(result))
    return result


def render(r: dict) -> str:
    out = heading("Showing the model every n-th frame of a faster video (--model-fps)", r) + [
        (f"Weights: {r['weights']} (trained at {r['weights_fps']:g} fps). {r['sequences']} held-out Moving MNIST sequences at "
         f"{r['factor']}x the rate ({r['input_fps']:g} fps: 1/{r['factor']} of the motion per frame); extend from {r['given']} "
         f"frames by {r['future']}, {r['steps']} MGM steps per window, seed {r['seed']}. MSE per frame against the truth "
         "(mean ± 95 % interval over the sequences); the paired difference is against 'every frame'."), ""]
    rows = [[name, _ci(s["all"]), _ci(s["first_half"]), _ci(s["second_half"]), _ci(s["paired_difference"])]
            for name, s in r["scores"].items()]
    return "\n".join(out + table(["the model sees", "MSE/frame", "first half", "second half", "paired difference"], rows))


def _ci(summary: dict) -> str:
    return f"{summary['mean']:.1f} ± {summary['ci95']:.1f}"

