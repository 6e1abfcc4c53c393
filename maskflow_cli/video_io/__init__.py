"""Reading and writing video files: the only code of the package that touches them.

Frames are handed around as ``torch.uint8`` tensors laid out ``[H,W,C]`` (one frame) or
``[T,H,W,C]`` (a clip), in the model's :class:`FrameFormat` or, read with ``fmt=None``, as decoded.

=============  ==========================================================================
``frames``     :class:`FrameFormat` and :func:`resize_frame` (cover, centre crop, channels)
``geometry``   :class:`OutputGeometry`: input frames and the model's frames at the output's size
``limits``     :class:`InputLimits`: frame size, decoded pixels, bytes spooled from a pipe
``sources``    a path, ``"-"`` or a file object made seekable (pipes are spooled); ``ReusableInput``
``audio``      :class:`AudioCopy`: an input's audio muxed beside the output's video
``reading``    :func:`open_video`, :func:`read_video`: decoded, resized frames; ``VideoError``
``rates``      an input's frame rate (declared, or from its timestamps) and Matroska duration
``suffixes``   which container and codec each output suffix is written with
``palette``    colour frames to GIF palette frames, one at a time
``image_sequence``  one PNG per frame (``frames/%05d.png``), moved into place at the end
``targets``    where an output may go: :func:`check_output`, :func:`check_not_input`
``writing``    :func:`open_writer` (temporary file, renamed at the end); ``OutputError``
=============  ==========================================================================

FFmpeg's own log output is switched off when this package is imported
(``av.logging.set_level(None)``, which is also PyAV's default), so nothing of FFmpeg's reaches
stderr.
"""

from __future__ import annotations

import av.logging

av.logging.set_level(None)  # no FFmpeg log lines on stderr

from .frames import FrameFormat, resize_frame  # noqa: E402
from .limits import MAX_FRAME_PIXELS, InputLimits  # noqa: E402
from .reading import Video, VideoReader, open_video, read_video  # noqa: E402
from .targets import check_not_input, check_output  # noqa: E402
from .writing import VideoWriter, open_writer  # noqa: E402

__all__ = [
    "MAX_FRAME_PIXELS",
    "FrameFormat",
    "InputLimits",
    "Video",
    "VideoReader",
    "VideoWriter",
    "check_not_input",
    "check_output",
    "open_video",
    "open_writer",
    "read_video",
    "resize_frame",
]
