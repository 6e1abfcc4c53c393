"""``maskflow data show CLIPS``: what a clips file holds, and one of its clips as a video (``-o``)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from . import options as opt
from .groups import ReportGroup, command
from .steps import check_video_output, fps_option, output_fps

ClipsInput = Annotated[str, typer.Argument(metavar="CLIPS", help="A clips file written by 'maskflow data' (.safetensors).", show_default=False)]
ClipIndex = Annotated[int, typer.Option("--index", "-i", help="Which clip to write: 0 is the first, -1 the last.")]
ShowOutput = Annotated[
    Optional[str], typer.Option("--output", "-o", metavar="FILE", rich_help_panel=opt.OUTPUT,
                                help="Write the clip as a video (any output that generate takes). Without it: say what the file holds.")
]
ShowFps = Annotated[Optional[float], typer.Option("--fps", rich_help_panel=opt.OUTPUT,
                                                  help="The video's frame rate. Default: the rate the clips file records, else 10.")]


@command
def show(clips: ClipsInput, output: ShowOutput = None, index: ClipIndex = 0, fps: ShowFps = None, report: ReportGroup = ReportGroup(),
         overwrite: opt.Overwrite = False) -> None:
    """Write one clip of a clips file as a video (-o), or say what the file holds.

    A clip written as a video can be watched, or given to extend and infill: the model's own world,
    without writing code. The frames are written as stored (.mkv, .nut and .avi keep them bit-exact).

    Examples:

      maskflow data show mnist_test.safetensors

      maskflow data show mnist_test.safetensors --index 3 -o clip.mkv

      maskflow infill clip.mkv -4: -o fixed.mkv
    """
    from ..clips import load_clip
    from ..defaults import DEFAULT_FPS
    from ..errors import VideoError
    from ..video_io import FrameFormat, open_writer

    reporter = report.reporter()
    rate = fps_option(fps)
    if output is not None:
        check_video_output(output, overwrite, report.json_, [clips])
    frames, metadata, count = load_clip(clips, index)  # [T,H,W,C] uint8
    length, height, width, channels = frames.shape
    made = ", ".join(f"{key} {metadata[key]}" for key in ("dataset", "split", "seed") if key in metadata)
    described = {"clips": count, "frames": length, "width": width, "height": height, "channels": channels, "metadata": metadata}
    what = f"{count:,} clips of {length} frames, {width}x{height} {'gray' if channels == 1 else 'colour'}" + (f" ({made})" if made else "")
    if output is None:
        return reporter.result({"command": "data show", "input": clips, **described}, f"{clips}: {what}")
    rate = output_fps(rate, metadata.get("fps", DEFAULT_FPS), lambda problem: VideoError(clips, f"the recorded rate: {problem}; give {{param:fps}}"))
    with reporter.stage("write"), open_writer(output, FrameFormat(height, width, channels), rate, overwrite=overwrite) as writer:
        writer.write(frames)
    summary = {"command": "data show", "input": clips, "output": output, "index": index, "fps": float(rate), **described}
    reporter.result(summary, f"wrote {output}: clip {index % count} of {what}, at {float(rate):g} fps")
