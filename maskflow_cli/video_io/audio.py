"""The input's audio, carried into an output beside its video.

:class:`AudioCopy` reads the first audio stream of an input and muxes it into the output as the
video is written, in step with it (so memory stays flat): packet for packet where the output's
container takes the codec (a remux, bit-exact), otherwise decoded and encoded again with a codec
the container takes (AAC for MP4/MOV, Opus for WebM, ...). The audio keeps its timing relative to
the input's video; it ends where the input's audio ends, so frames added after the input's end
(``extend``) have no sound. Problems are :class:`~maskflow_cli.errors.VideoError` (the input) or
:class:`~maskflow_cli.errors.OutputError` (the output), one line each.
"""

from __future__ import annotations

from fractions import Fraction
from typing import BinaryIO, Iterator

import av

from maskflow_cli.errors import OutputError, VideoError

from .reading import SAFE_DEMUXING
from .reasons import describe_error

_ENCODERS = ("aac", "libopus", "libvorbis", "flac", "libmp3lame", "pcm_s16le")  # preferred first
_COMMON_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000)
_NO_AUDIO_HINT = "; pass --no-audio to leave it out"


def audio_streams(name: str, file: BinaryIO) -> int:
    """How many audio streams the input holds (0 for none)."""
    try:
        with av.open(file, container_options=SAFE_DEMUXING, metadata_errors="replace") as container:
            return len(container.streams.audio)
    except (av.FFmpegError, OSError, ValueError) as error:
        raise VideoError(name, f"cannot read its audio: {describe_error(error)}") from error


def carries_audio(muxer: str) -> bool:
    """Whether an output container (an FFmpeg muxer name) can hold an audio stream at all."""
    return _container_codecs(muxer) is not None


class AudioCopy:
    """The first audio stream of an input, muxed into an output container alongside its video.

    Call :meth:`add_stream` once the video stream is added and before anything is muxed, then
    :meth:`mux_until` as the video advances and :meth:`finish` before the container is closed.
    ``file`` (the input, at its start) stays the caller's to close."""

    def __init__(self, name: str, file: BinaryIO) -> None:
        self.name = name
        try:
            self._input = av.open(file, container_options=SAFE_DEMUXING, metadata_errors="replace")
        except (av.FFmpegError, OSError, ValueError) as error:
            raise VideoError(name, f"cannot read its audio: {describe_error(error)}") from error
        if not self._input.streams.audio:
            self._input.close()
            raise VideoError(name, "has no audio stream")
        self._stream = self._input.streams.audio[0]
        self.codec = self._stream.codec_context.name if self._stream.codec_context else "unknown"
        self._start = _video_start(self._input)
        self._packets: Iterator[av.Packet] | None = None
        self._pending: av.Packet | None = None  # read but not yet muxed
        self._output: av.AudioStream | None = None
        self._resampler: av.AudioResampler | None = None
        self.copied = True  # packets copied as they are (False: encoded again)
        self.written: str | None = None  # the output's audio codec, once added

    def add_stream(self, name: str, container: av.container.OutputContainer) -> None:
        """Add the audio stream to ``container`` (the output called ``name``): a copy of the input's
        when the container takes its codec, else an encoder the container takes."""
        supported = container.supported_codecs
        try:
            if self.codec in supported and self._stream.codec_context is not None:
                self._output = container.add_stream_from_template(self._stream)
            else:
                self._output = self._add_encoder(name, container, supported)
        except (av.FFmpegError, ValueError) as error:
            raise OutputError(name, f"cannot add the input's {self.codec} audio: {describe_error(error)}{_NO_AUDIO_HINT}") from error
        self.written = self._output.codec_context.name  # the output's audio codec
        self._packets = self._input.demux(self._stream)

    def _add_encoder(self, name: str, container: av.container.OutputContainer, supported: set[str]) -> av.AudioStream:
        codec = _encoder_for(supported)
        if codec is None or self._stream.codec_context is None:
            raise OutputError(name, f"cannot hold the input's {self.codec} audio, and no encoder it takes is available{_NO_AUDIO_HINT}")
        source = self._stream.codec_context
        codec_name = codec.name
        rates = codec.audio_rates or _COMMON_RATES
        rate = min(rates, key=lambda r: (abs(r - source.sample_rate), -r))  # the source's, where the codec takes it
        layout = "mono" if source.channels == 1 else "stereo"  # more channels are mixed down to two
        stream = container.add_stream(codec_name, rate=rate, layout=layout)
        formats = codec.audio_formats
        sample_format = formats[0].name if formats else "s16"
        stream.format = sample_format
        stream.codec_context.open(strict=False)
        frame_size = stream.codec_context.frame_size or None
        self._resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate, frame_size=frame_size)
        self.copied = False
        return stream

    def mux_until(self, container: av.container.OutputContainer, seconds: Fraction) -> None:
        """Mux the audio that starts before ``seconds`` of the output's video."""
        assert self._packets is not None, "add_stream() first"
        while True:
            packet = self._pending if self._pending is not None else self._next_packet()
            if packet is None:
                return
            if _packet_time(packet) - self._start >= seconds:
                self._pending = packet
                return
            self._pending = None
            self._mux(container, packet)

    def finish(self, container: av.container.OutputContainer) -> None:
        """Mux the rest of the audio and flush an encoder."""
        self.mux_until(container, Fraction(10**12))
        if self._resampler is not None:
            self._encode(container, None)

    def close(self) -> None:
        try:
            self._input.close()
        except (av.FFmpegError, OSError):
            pass

    def _next_packet(self) -> av.Packet | None:
        try:
            while (packet := next(self._packets, None)) is not None:
                if packet.size:  # the demuxer's flush packet carries nothing
                    return packet
            return None
        except (av.FFmpegError, OSError, ValueError) as error:
            raise VideoError(self.name, f"cannot read its audio: {describe_error(error)}") from error

    def _mux(self, container: av.container.OutputContainer, packet: av.Packet) -> None:
        offset = round(self._start / packet.time_base) if packet.time_base else 0
        if self._resampler is None:
            if packet.pts is not None:
                packet.pts -= offset
            if packet.dts is not None:
                packet.dts -= offset
            packet.stream = self._output
            self._write(container, [packet])
            return
        try:
            frames = packet.decode()
        except (av.FFmpegError, ValueError) as error:
            raise VideoError(self.name, f"cannot decode its {self.codec} audio: {describe_error(error)}") from error
        for frame in frames:
            frame.pts = None  # the resampler and encoder count samples from the audio's start
            self._encode(container, frame)

    def _encode(self, container: av.container.OutputContainer, frame: av.AudioFrame | None) -> None:
        try:
            for resampled in self._resampler.resample(frame):
                self._write(container, self._output.encode(resampled))
            if frame is None:
                self._write(container, self._output.encode(None))
        except (av.FFmpegError, ValueError) as error:
            raise OutputError(container.name, f"cannot encode the audio: {describe_error(error)}{_NO_AUDIO_HINT}") from error

    def _write(self, container: av.container.OutputContainer, packets: list[av.Packet]) -> None:
        try:
            container.mux(packets)
        except (av.FFmpegError, ValueError) as error:
            raise OutputError(container.name, f"cannot write the audio: {describe_error(error)}{_NO_AUDIO_HINT}") from error


def _encoder_for(supported: set[str]) -> av.Codec | None:
    """The first encoder of _ENCODERS this FFmpeg has whose codec is in ``supported``."""
    for name in _ENCODERS:
        try:
            codec = av.Codec(name, "w")
        except ValueError:  # UnknownCodecError: not built into this FFmpeg
            continue
        if codec.canonical_name in supported:
            return codec
    return None


def _container_codecs(muxer: str) -> set[str] | None:
    """The codecs an FFmpeg muxer takes, or None when it takes no audio."""
    import io

    with av.open(io.BytesIO(), "w", format=muxer) as probe:
        return None if probe.default_audio_codec == "none" else probe.supported_codecs


def _video_start(container: av.container.InputContainer) -> Fraction:
    """Where the input's first video stream starts, in seconds (0 without one or a start time)."""
    videos = container.streams.video
    if not videos or videos[0].start_time is None or videos[0].time_base is None:
        return Fraction(0)
    return videos[0].start_time * Fraction(videos[0].time_base)


def _packet_time(packet: av.Packet) -> Fraction:
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is None or packet.time_base is None:
        return Fraction(0)
    return stamp * Fraction(packet.time_base)
