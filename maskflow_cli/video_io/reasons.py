"""One-line reasons for FFmpeg's and the operating system's exceptions, shared by reading and writing."""

from __future__ import annotations

import av


def av_reason(error: av.FFmpegError) -> str:
    return str(error.strerror or error).strip()


def os_reason(error: OSError) -> str:
    return str(error.strerror or error).strip()


def describe_error(error: BaseException) -> str:
    if isinstance(error, av.FFmpegError):
        return av_reason(error)
    if isinstance(error, OSError):
        return os_reason(error)
    return str(error)
