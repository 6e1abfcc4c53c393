"""Which container and codec an output is written with, picked by the target's suffix.

``.mp4 .mov .m4v``: H.264 (yuv420p, CRF 18; even frame sizes only). ``.mkv .nut .avi``: lossless
FFV1 (gray or bgr0, reads back bit-exact). ``.y4m``: raw YUV4MPEG2 (gray or yuv444p), also what
``"-"`` writes to standard output. ``.webm``: VP9 (yuv420p, CRF 30, any size). ``.gif``: looping
GIF, gray frames as 256 gray levels (exact), colour frames through a palette of their own
(:mod:`.palette`). A ``.png`` pattern such as ``frames/%05d.png`` is an image sequence
(:mod:`.image_sequence`), not an entry of this table. Any other suffix is an
:class:`~maskflow_cli.errors.OutputError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from maskflow_cli.errors import OutputError


@dataclass(frozen=True)
class Encoding:
    """How frames are stored for one family of suffixes."""

    muxer: str
    codec: str
    pix_fmt_gray: str
    pix_fmt_rgb: str
    gray_as_rgb: bool = False  # expand gray frames to RGB before the encoder sees them
    even_size: bool = False  # the pixel format subsamples chroma by 2 in both directions
    palette: bool = False  # colour frames go through a palette filter (pix_fmt_rgb is pal8)
    codec_options: dict[str, str] = field(default_factory=dict)
    muxer_options: dict[str, str] = field(default_factory=dict)

    def pix_fmt(self, channels: int) -> str:
        return self.pix_fmt_gray if channels == 1 else self.pix_fmt_rgb


def _h264(muxer: str) -> Encoding:
    return Encoding(
        muxer=muxer,
        codec="libx264",
        pix_fmt_gray="yuv420p",
        pix_fmt_rgb="yuv420p",
        gray_as_rgb=True,
        even_size=True,
        codec_options={"crf": "18", "preset": "medium"},
        muxer_options={"movflags": "+faststart"},
    )


def _ffv1(muxer: str) -> Encoding:
    return Encoding(muxer=muxer, codec="ffv1", pix_fmt_gray="gray", pix_fmt_rgb="bgr0")


# VP9 at constant quality (b=0: no bitrate cap); "good" with cpu-used 4 and row threads is a fraction of
# "best"'s time for nearly its size.
WEBM = Encoding(muxer="webm", codec="libvpx-vp9", pix_fmt_gray="yuv420p", pix_fmt_rgb="yuv420p", gray_as_rgb=True,
                codec_options={"crf": "30", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"})
GIF = Encoding(muxer="gif", codec="gif", pix_fmt_gray="gray", pix_fmt_rgb="pal8", palette=True, muxer_options={"loop": "0"})
Y4M = Encoding(muxer="yuv4mpegpipe", codec="rawvideo", pix_fmt_gray="gray", pix_fmt_rgb="yuv444p")

_ENCODINGS: dict[str, Encoding] = {
    ".mp4": _h264("mp4"),
    ".mov": _h264("mov"),
    ".m4v": _h264("mp4"),
    ".mkv": _ffv1("matroska"),
    ".nut": _ffv1("nut"),
    ".avi": _ffv1("avi"),
    ".y4m": Y4M,
    ".webm": WEBM,
    ".gif": GIF,
}
SEQUENCE_EXAMPLE = "frames/%05d.png"


def encoding_for(path: str) -> Encoding:
    """The encoding of ``path``'s suffix (any case); OutputError naming the choices otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix in _ENCODINGS:
        return _ENCODINGS[suffix]
    if suffix == ".png":
        raise OutputError(path, f"a .png holds one frame; for a PNG per frame give a pattern such as {SEQUENCE_EXAMPLE}")
    choices = " ".join(_ENCODINGS)
    what = f"unsupported suffix '{suffix}'" if suffix else "no suffix"
    raise OutputError(path, f"{what}; use one of {choices}, or {SEQUENCE_EXAMPLE} for PNG images")
