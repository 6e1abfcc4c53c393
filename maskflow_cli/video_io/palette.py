"""Colour frames to palette frames for GIF, one frame at a time.

A GIF frame holds at most 256 colours. FFmpeg's ``palettegen`` with ``stats_mode=single`` makes a
palette for each frame from that frame alone, and ``paletteuse`` with ``new=1`` maps the frame
onto it (Sierra-2-4A error diffusion), so every frame gets the colours it needs and a frame leaves
the filter as soon as it entered it: memory stays flat however long the video. (One palette for
the whole video would need every frame before the first could be written.) The GIF encoder stores
each frame's palette as the frame's local colour table.
"""

from __future__ import annotations

from fractions import Fraction

import av
import av.filter


class PaletteFilter:
    """rgb24 ``av.VideoFrame`` in, pal8 frames out (each with its own palette)."""

    def __init__(self, width: int, height: int, fps: Fraction) -> None:
        graph = av.filter.Graph()
        source = graph.add_buffer(width=width, height=height, format="rgb24", time_base=1 / fps)
        split = graph.add("split")
        make_palette = graph.add("palettegen", "stats_mode=single")
        use_palette = graph.add("paletteuse", "new=1")
        sink = graph.add("buffersink")
        source.link_to(split)
        split.link_to(use_palette, 0, 0)  # the frame ...
        split.link_to(make_palette, 1, 0)
        make_palette.link_to(use_palette, 0, 1)  # ... and its own palette
        use_palette.link_to(sink)
        graph.configure()
        self._graph = graph

    def push(self, frame: av.VideoFrame | None) -> list[av.VideoFrame]:
        """Feed one rgb24 frame (None: the end) and take the pal8 frames that are ready."""
        self._graph.vpush(frame)
        ready = []
        while True:
            try:
                ready.append(self._graph.vpull())
            except (av.BlockingIOError, av.EOFError):
                return ready
