"""``maskflow encode`` and ``maskflow decode``: videos to tokens files and back, with the tokenizer
alone; ``maskflow tokenize``: a whole dataset to token shards for training."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import VideoError
from . import options as opt
from .groups import ReportGroup, command
from .steps import FPS_FIX, check_domain_of, check_video_output, fps_option, output_fps, read_input, require_output

if TYPE_CHECKING:  # the commands import what they use when they run
    import torch

    from ..tokenizer import FrameTokenizer


def _tokenizer(weights: str | None, device: str) -> tuple[FrameTokenizer, torch.device]:
    from ..runtime import resolve_device
    from ..weights import load_tokenizer

    dev = resolve_device(device)
    return load_tokenizer(weights).to(dev), dev


@command
def encode(
    input: opt.Input, output: opt.Output = None, weights: opt.Weights = None, device: opt.Device = "auto",
    report: ReportGroup = ReportGroup(), overwrite: opt.Overwrite = False,
) -> None:
    """Turn a video into a tokens file (safetensors) with the tokenizer of --weights.

    Example:

      maskflow encode clip.mp4 -o clip.tokens.safetensors
    """
    from .. import token_files
    from ..defaults import DEFAULT_FPS
    from ..runtime import encode_frames
    from ..video_io import FrameFormat, check_not_input

    reporter = report.reporter()
    output = require_output(output, "clip.tokens.safetensors")
    check_not_input(output, [input])
    token_files.check_tokens_output(output, overwrite)  # before any work
    with reporter.stage("load"):
        tokenizer, dev = _tokenizer(weights, device)
    cfg = tokenizer.config
    video = read_input(reporter, input, FrameFormat.of(cfg))
    fps = output_fps(None, video.fps or DEFAULT_FPS, lambda problem: VideoError(input, f"{problem}, which a tokens file cannot keep"))
    domain = check_domain_of(reporter, tokenizer, dev, weights, video, input)
    with reporter.stage("encode"):
        tokens = encode_frames(tokenizer, video.frames, dev)  # [T,H,W]
    with reporter.stage("write"):
        token_files.save_tokens(output, tokens, fps, cfg, overwrite=overwrite)
    summary = {"command": "encode", "output": output, "frames": len(tokens), "tokens": list(tokens.shape[1:]),
               "vocab_size": cfg.vocab_size, "fps": float(fps), "seconds": reporter.seconds(),
               "timings": reporter.stage_seconds(), "domain": domain}
    reporter.result(summary, f"wrote {output}: {len(tokens)} frames of {tokens.shape[1]}x{tokens.shape[2]} tokens "
                             f"at {float(fps):g} fps, {summary['seconds']:.1f} s")


@command
def decode(
    input: opt.TokensInput, output: opt.Output = None, weights: opt.Weights = None, fps: opt.Fps = None,
    device: opt.Device = "auto", report: ReportGroup = ReportGroup(), overwrite: opt.Overwrite = False,
) -> None:
    """Turn a tokens file back into a video (the tokenizer's reconstruction).

    Example:

      maskflow decode clip.tokens.safetensors -o reconstruction.mkv
    """
    from .. import token_files
    from ..runtime import CODEC_BATCH, decode_tokens
    from ..video_io import FrameFormat, open_writer

    reporter = report.reporter()
    output = require_output(output, "reconstruction.mkv")
    rate = fps_option(fps)
    check_video_output(output, overwrite, report.json_, [input])
    with reporter.stage("load"):
        tokenizer, dev = _tokenizer(weights, device)
    cfg = tokenizer.config
    with reporter.stage("read"):
        tokens, stored_fps = token_files.load_tokens(input, cfg)
    rate = output_fps(rate, stored_fps, lambda problem: VideoError(input, problem + FPS_FIX))
    with reporter.stage("write", inner="decode"), open_writer(output, FrameFormat.of(cfg), rate, overwrite=overwrite) as writer:
        batches = (tokens[start : start + CODEC_BATCH] for start in range(0, len(tokens), CODEC_BATCH))
        for frames in reporter.timed("decode", (decode_tokens(tokenizer, batch, dev) for batch in batches)):
            writer.write(frames)
    summary = {"command": "decode", "output": output, "frames": len(tokens), "fps": float(rate),
               "width": cfg.width, "height": cfg.height, "seconds": reporter.seconds(), "timings": reporter.stage_seconds()}
    reporter.result(summary, f"wrote {output}: {len(tokens)} frames at {float(rate):g} fps, "
                             f"{cfg.width}x{cfg.height}, {summary['seconds']:.1f} s")


@command
def tokenize(
    data: opt.Data, output: opt.ShardsOutDir, tokenizer: opt.TokenizerSource = None, shard_clips: opt.ShardClips = 1000,
    frames: opt.ClipFrames = None, device: opt.Device = "auto", overwrite: opt.Overwrite = False, report: ReportGroup = ReportGroup(),
) -> None:
    """Tokenize a dataset once into token shards (DIR/tokens-00000.safetensors, ...) that 'maskflow train' streams.

    DATA is read one clips file at a time (a folder of clips shards, or one clips file); a folder of
    videos is cut into clips of --frames frames.

    Example:

      maskflow tokenize mnist_train.safetensors -o mnist_tokens/ --tokenizer runs/tok
    """
    from pathlib import Path

    from ..token_shards import check_shards_output, write_token_shards

    reporter = report.reporter()
    check_shards_output(Path(output), overwrite)  # before any work
    with reporter.stage("load"):
        tok, dev = _tokenizer(tokenizer, device)
    with reporter.stage("tokenize"):
        summary = write_token_shards(tok, data, output, dev, shard_clips=shard_clips, frames=frames, overwrite=overwrite)
    reporter.result({"command": "tokenize", "output": output, **summary, "seconds": reporter.seconds()},
                    f"wrote {summary['shards']} token shards to {output}: {summary['clips']} clips of {summary['frames']} frames, "
                    f"{reporter.seconds():.1f} s")
