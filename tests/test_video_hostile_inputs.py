"""Hardening: fuzzed, truncated, huge and long video inputs; interrupts; output safety.

Every input here is made at test time. Each command that reads video must answer each input with
one clear line on stderr (exit 3) or a correct result, within a bounded time, and leave neither an
output nor a temporary file behind when it fails.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from maskflow_cli.errors import VideoError
from maskflow_cli.video_io import FrameFormat, open_video, read_video

from conftest import moving_square_frames, read_frames, write_video
from video_files import Pipe, gradient_clip, write_audio, write_still, write_with_pyav

FAST = ["--steps", "1", "--device", "cpu"]
MODEL = FrameFormat(32, 32, 1)  # the tiny weights' frame format
SECONDS_PER_INPUT = 20  # CPU seconds; generous: an answer, not a hang


pytestmark = pytest.mark.usefixtures("one_thread")


class Hang(BaseException):
    """Raised by the timers: not an Exception, so the CLI's error boundary does not swallow it."""


@contextmanager
def time_limit(cpu_seconds: float, wall_seconds: float = 300):
    """Fail instead of hanging: a CPU-time timer catches a busy loop (and is fair on a machine
    shared with other work), a generous wall-clock timer catches a block on I/O."""

    def _raise(signum, frame):
        raise Hang(f"no answer within {cpu_seconds} CPU seconds or {wall_seconds} s")

    previous = {sig: signal.signal(sig, _raise) for sig in (signal.SIGPROF, signal.SIGALRM)}
    signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
    signal.setitimer(signal.ITIMER_REAL, wall_seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------- the corpus

CUTS = (0.25, 0.5, 0.7, 0.95)  # where valid files are cut, as fractions of their size
LOSSLESS = ("mkv", "avi", "nut", "y4m")  # a truncated file may decode to a prefix of the original


def _valid_videos(folder: Path) -> dict[str, Path]:
    """Small valid videos, one per container, of the same 6 frames (RGB 48x64)."""
    frames = gradient_clip(6, 48, 64)
    specs = {
        "mp4": ("mp4", "libx264", "yuv420p", None),  # index at the end
        "faststart.mp4": ("mp4", "libx264", "yuv420p", {"movflags": "+faststart"}),  # index first
        "mkv": ("matroska", "ffv1", "bgr0", None),
        "avi": ("avi", "ffv1", "bgr0", None),
        "nut": ("nut", "ffv1", "bgr0", None),
        "y4m": ("yuv4mpegpipe", "rawvideo", "yuv444p", None),
    }
    made = {}
    for name, (muxer, codec, pix_fmt, options) in specs.items():
        path = folder / f"valid.{name}"
        write_with_pyav(path, frames, muxer=muxer, codec=codec, pix_fmt=pix_fmt, container_options=options)
        made[name] = path
    return made


def _zero_frame_mkv(path: Path) -> None:
    """A Matroska file with a video stream and not a single frame in it."""
    with av.open(str(path), "w", format="matroska") as out:
        stream = out.add_stream("ffv1", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "gray"
        out.start_encoding()  # the header, though no frame follows
        out.mux(stream.encode(None))


def _png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose header claims a huge picture and whose data is a few bytes: a memory bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * (3 * 64 + 1) * 4)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def build_corpus(folder: Path) -> tuple[dict[str, Path], dict[str, Path]]:
    """``(bad-or-odd inputs by name, the valid originals by container)``, all inside ``folder``."""
    originals = folder / "originals"
    originals.mkdir(parents=True)
    valid = _valid_videos(originals)
    rng = np.random.default_rng(1234)
    corpus: dict[str, Path] = {}

    def add(name: str, data: bytes) -> None:
        path = folder / name
        path.write_bytes(data)
        corpus[name] = path

    for kind, source in valid.items():
        data = source.read_bytes()
        size = len(data)
        offsets = sorted({1, 40, 200, *(int(size * f) for f in CUTS)})
        for offset in (o for o in offsets if 0 < o < size):
            add(f"cut{offset:06d}.{kind}", data[:offset])  # truncated at many byte offsets
        for header in (64,):  # a valid header, then garbage
            add(f"garbage{header}.{kind}", data[:header] + rng.integers(0, 256, size - header, np.uint8).tobytes())
        middle = bytearray(data)  # garbage in the middle of a valid file
        middle[size // 3 : size // 3 + 64] = rng.integers(0, 256, 64, np.uint8).tobytes()
        add(f"middle.{kind}", bytes(middle))
    for size in (1, 100, 4096, 65536):
        add(f"random{size}.mp4", rng.integers(0, 256, size, np.uint8).tobytes())
    add("empty.mp4", b"")
    add("text.mp4", b"this is a text file, not a video\n" * 30)
    add("zero_frames.y4m", b"YUV4MPEG2 W32 H48 F12:1 Ip A1:1 Cmono\n")
    add("huge_header.y4m", b"YUV4MPEG2 W60000 H60000 F12:1 Ip A1:1 Cmono\nFRAME\n" + bytes(4096))
    add("concat.mp4", f"ffconcat version 1.0\nfile '{valid['mkv']}'\n".encode())  # names another file
    add("playlist.mp4", f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{valid['mkv']}\n#EXT-X-ENDLIST\n".encode())
    for name, make in {
        "audio.wav": lambda p: write_audio(p, "wav", "pcm_s16le"),
        "audio.m4a": lambda p: write_audio(p, "mp4", "aac"),
        "still.png": lambda p: write_still(p, gradient_clip(1, 48, 64)[0], "png", "rgb24"),
        "zero_frames.mkv": _zero_frame_mkv,
        "huge_picture.png": lambda p: _png_header_only(p, 20000, 20000),
    }.items():
        make(folder / name)
        corpus[name] = folder / name
    return corpus, valid


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[dict[str, Path], dict[str, Path]]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def test_corpus_is_as_varied_as_asked(corpus):
    bad, valid = corpus
    assert len(valid) == 6 and len(bad) >= 60
    kinds = {name.split(".")[0].rstrip("0123456789") for name in bad}
    assert {"cut", "garbage", "middle", "random", "empty", "text", "audio", "still", "zero_frames"} <= kinds


# --------------------------------------------------------------------------- the reader itself


def _original(valid: dict[str, Path], name: str) -> torch.Tensor | None:
    """The original's frames at the model's format, for a truncated lossless file; else None."""
    kind = name.split(".", 1)[1]
    if not name.startswith("cut") or kind not in LOSSLESS:
        return None
    return read_video(valid[kind], MODEL).frames


def test_reader_answers_every_input_clearly_or_correctly(corpus):
    bad, valid = corpus
    outcomes = {}
    for name, path in sorted(bad.items()):
        with time_limit(SECONDS_PER_INPUT):
            try:
                video = read_video(path, MODEL)
            except VideoError as error:
                message = str(error)
                assert message.startswith(f"{str(path)!r}: ") and "\n" not in message, message
                outcomes[name] = "error"
            else:
                outcomes[name] = len(video.frames)
                assert video.frames.dtype == torch.uint8 and video.frames.shape[1:] == MODEL.shape
                assert len(video.frames) >= 1
                original = _original(valid, name)
                if original is not None:  # a cut-short lossless file may only give a prefix
                    assert torch.equal(video.frames, original[: len(video.frames)]), name
    must_fail = [n for n in bad if n.split(".")[0] in ("empty", "text", "zero_frames", "concat", "playlist", "huge_header",
                                                      "huge_picture", "audio") or n.startswith("random")]
    assert all(outcomes[n] == "error" for n in must_fail), {n: outcomes[n] for n in must_fail}
    assert outcomes["still.png"] == 1
    # Matroska states its duration: every cut-short mkv is refused, never half a video
    assert all(outcomes[n] == "error" for n in bad if n.startswith("cut") and n.endswith(".mkv"))
    # a cut-short MP4 states its frame count: refused as well
    assert all(outcomes[n] == "error" for n in bad if n.startswith("cut") and n.endswith("faststart.mp4"))


def cut_at(bad: dict[str, Path], valid: dict[str, Path], kind: str, fraction: float) -> Path:
    """The corpus file holding the first ``fraction`` of the valid ``kind`` video."""
    offset = int(valid[kind].stat().st_size * fraction)
    return bad[f"cut{offset:06d}.{kind}"]


@pytest.mark.parametrize("name, problem", [
    ("concat.mp4", "FFmpeg cannot open it"),  # a list naming another file is not opened
    ("playlist.mp4", "not a video file"),
    ("huge_picture.png", "truncated or corrupt"),  # refused before 20000x20000 pixels are allocated
    ("huge_header.y4m", "FFmpeg cannot open it"),
    ("zero_frames.y4m", "no decodable video frames"),
    ("zero_frames.mkv", "FFmpeg cannot open it"),  # FFmpeg finds nothing to probe
    ("cut 0.7 mkv", r"truncated or corrupt: decoded \d frames \(0\.\d+ s\) of a stream that lasts 0\.500 s"),
    ("cut 0.5 faststart.mp4", r"truncated or corrupt: decoded \d of 6 frames"),
])
def test_specific_refusals(corpus, name, problem):
    bad, valid = corpus
    if name.startswith("cut "):
        _, fraction, kind = name.split()
        path = cut_at(bad, valid, kind, float(fraction))
    else:
        path = bad[name]
    started = time.process_time()
    with pytest.raises(VideoError, match=problem):
        read_video(path, MODEL)
    assert time.process_time() - started < 5


@pytest.mark.parametrize("muxer, suffix", [("matroska", ".mkv"), ("avi", ".avi"), ("mp4", ".mp4")])
def test_metadata_that_is_not_utf8_is_no_crash(cli, weights_dir, tmp_path, muxer, suffix):
    """FFmpeg hands tags over as bytes; a title that is not UTF-8 made PyAV raise
    UnicodeDecodeError, which reached the user as an internal error."""
    path = tmp_path / f"latin1{suffix}"
    with av.open(str(path), "w", format=muxer) as out:
        out.metadata["title"] = "TITLEMARKER"
        stream = out.add_stream("libx264" if muxer == "mp4" else "ffv1", rate=12)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for index, image in enumerate(gradient_clip(4, 32, 32)):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    data = path.read_bytes()
    assert data.count(b"TITLEMARKER") == 1
    path.write_bytes(data.replace(b"TITLEMARKER", b"TITLE\xe4\xff\xfeKER"))  # same length: still valid
    with pytest.raises(UnicodeDecodeError):
        av.open(str(path)).close()  # what PyAV does by default
    assert len(read_video(path, MODEL).frames) == 4
    result = cli("extend", path, "-w", weights_dir, "-o", tmp_path / "out.mkv", "--frames", 1, *FAST)
    assert result.code == 0, result.err


def test_a_concat_list_cannot_make_the_reader_open_other_files(tmp_path, monkeypatch):
    """FFmpeg's concat demuxer opens the files a list names; an untrusted input may not do that."""
    secret = write_video(tmp_path / "secret.mkv", moving_square_frames(5))
    monkeypatch.chdir(tmp_path)
    listing = tmp_path / "innocent.mp4"
    listing.write_text("ffconcat version 1.0\nfile 'secret.mkv'\n")
    with pytest.raises(VideoError, match="FFmpeg cannot open it"):
        read_video(listing, MODEL)
    assert len(read_video(secret, MODEL).frames) == 5


# --------------------------------------------------------------------------- every command


def _assert_clean_failure(result, input_path: str, folder: Path) -> None:
    lines = result.err.strip().splitlines()
    assert result.code == 3, (input_path, result.code, result.err)
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: "), result.err
    assert "Traceback" not in result.err and result.out == ""
    assert input_path in lines[0]
    assert os.listdir(folder) == [], "no output and no temporary file is left behind"


def _run_command(cli, command: str, path: Path, weights_dir: Path, out_dir: Path):
    if command == "extend":
        target = out_dir / "out.mkv"
        args = ["extend", path, "-w", weights_dir, "-o", target, "--frames", 1, "--size", "model", *FAST, "--seed", 0]
    elif command in ("infill", "infill at the input's size"):
        target = out_dir / "out.mkv"
        size = ["--size", "model"] if command == "infill" else []
        args = ["infill", path, "0", "-w", weights_dir, "-o", target, *size, *FAST, "--seed", 0]
    else:
        target = out_dir / "out.tokens.safetensors"
        args = ["encode", path, "-w", weights_dir, "-o", target, "--device", "cpu"]
    with time_limit(SECONDS_PER_INPUT):
        return cli(*args), target


@pytest.mark.parametrize("command", ["extend", "infill", "infill at the input's size", "encode"])
def test_every_command_answers_every_input(cli, weights_dir, corpus, tmp_path, command):
    bad, valid = corpus
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name, path in sorted(bad.items()):
        result, target = _run_command(cli, command, path, weights_dir, out_dir)
        if result.code != 0:
            _assert_clean_failure(result, str(path), out_dir)
            continue
        readable = read_video(path, MODEL).frames  # the command's answer is the reader's
        assert os.listdir(out_dir) == [target.name], name
        if command == "encode":
            from safetensors import safe_open

            with safe_open(str(target), framework="pt") as handle:
                assert handle.get_slice("tokens").get_shape() == [len(readable), 8, 8]
        elif command == "infill at the input's size":  # the input read again, at its own size
            frames, _ = read_frames(target)
            with open_video(path, None) as reader:
                native = torch.stack(list(reader))  # [T,H,W,C]
            assert frames.shape == (len(readable), *native.shape[1:3]), name
            if native.shape[3] == 1:
                assert np.array_equal(frames[1:], native[1:, ..., 0].numpy()), name
        else:
            frames, _ = read_frames(target)
            assert len(frames) == len(readable) + (command == "extend"), name
            passed = slice(0, len(readable)) if command == "extend" else slice(1, len(readable))
            assert np.array_equal(frames[passed], readable[passed, ..., 0].numpy()), name
        target.unlink()


def test_stdin_inputs_are_answered_the_same_way(cli, weights_dir, corpus, tmp_path, monkeypatch):
    bad, _ = corpus
    for name in ("empty.mp4", "random4096.mp4", "text.mp4", "audio.wav", "zero_frames.y4m"):
        for seekable in (True, False):
            data = bad[name].read_bytes()
            raw = io.BytesIO(data) if seekable else io.BufferedReader(Pipe(data))
            monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(raw))
            with time_limit(SECONDS_PER_INPUT):
                result = cli("extend", "-", "-w", weights_dir, "-o", tmp_path / "out.mkv", *FAST)
            _assert_clean_failure(result, "<stdin>", tmp_path)


def test_eval_data_folder_of_fuzzed_files(cli, weights_dir, corpus, tmp_path):
    """`eval --data FOLDER` skips what is not a video and says so when nothing is left."""
    bad, _ = corpus
    folder = tmp_path / "data"
    folder.mkdir()
    for name, path in bad.items():
        (folder / name).write_bytes(path.read_bytes())
    before = sorted(os.listdir(folder))
    args = ["eval", "-w", weights_dir, "--data", folder, "--quick", "--suite", "tokenizer", "--device", "cpu", "--json"]
    with time_limit(60):
        result = cli(*args)
    lines = result.err.strip().splitlines()
    assert result.code == 3 and len(lines) == 1 and lines[0].startswith("maskflow: error: "), result.err
    assert "holds no video of 20 frames or more" in lines[0] and "Traceback" not in result.err
    write_video(folder / "zz_real.mkv", moving_square_frames(20))  # one usable clip among the garbage
    with time_limit(60):
        result = cli(*args)
    assert result.code == 0, result.err
    assert json.loads(result.out)["tokenizer"]["frames"] == 20
    assert sorted(os.listdir(folder)) == sorted([*before, "zz_real.mkv"])  # nothing written there


# --------------------------------------------------------------------------- interrupts


def _y4m(path: Path, frames: int, size: int = 32) -> Path:
    """A gray YUV4MPEG2 file, written directly: thousands of frames in milliseconds."""
    values = (np.arange(frames, dtype=np.uint8)[:, None] * np.ones((1, size * size), np.uint8)).astype(np.uint8)
    header = f"YUV4MPEG2 W{size} H{size} F12:1 Ip A1:1 Cmono\n".encode()
    path.write_bytes(header + b"".join(b"FRAME\n" + row.tobytes() for row in values))
    return path


def test_interrupted_extend_and_infill_leave_nothing(weights_dir, clip_mkv, tmp_path):
    """extend stopped by SIGINT exits 130, infill stopped by SIGTERM 143 (run side by side): one
    line on stderr, no output and no temporary file. (The signal handling is shared by every
    command; generate is covered by test_cli.py.)"""
    long_input = _y4m(tmp_path / "long.y4m", 3000)
    cases = {"extend": (["extend", clip_mkv, "--frames", "100000"], signal.SIGINT, 130, "interrupted"),
             "infill": (["infill", long_input, "1:"], signal.SIGTERM, 143, "terminated")}
    runs = {}
    try:
        for command, (args, *_) in cases.items():
            folder = tmp_path / command
            folder.mkdir()
            argv = [sys.executable, "-m", "maskflow_cli", *map(str, args), "-w", str(weights_dir),
                    "-o", str(folder / "out.mkv"), "--steps", "2", "--device", "cpu"]
            runs[command] = (subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE), folder)
        deadline = time.monotonic() + 300  # only a bound for a broken run; normally seconds
        for command, (process, folder) in runs.items():
            while not os.listdir(folder) and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.02)  # until the writer has made its temporary file
            assert os.listdir(folder), f"{command}: the temporary output never appeared ({process.poll()})"
            hidden = os.listdir(folder)[0]
            assert hidden.startswith(".out.maskflow-") and hidden.endswith(".mkv"), hidden
            os.kill(process.pid, cases[command][1])
        for command, (process, folder) in runs.items():
            _, err = process.communicate(timeout=60)
            _, _, code, reason = cases[command]
            assert process.returncode == code, (command, err)
            assert err.decode().strip().splitlines() == [f"maskflow: error: {reason}"], (command, err)
            assert os.listdir(folder) == [], command
    finally:
        for process, _ in runs.values():
            if process.poll() is None:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------- large and long inputs


# Runs the CLI and writes the process's own peak RSS (VmHWM, kB) to the file named by argv[1] as it exits.
# Not wait4's ru_maxrss: a child started from this test process inherits its parent's high-water
# mark at exec, so after many tests in one pytest process ru_maxrss reads the parent's size.
_MEASURED = """import runpy, sys
peak_file, sys.argv = sys.argv[1], ["maskflow", *sys.argv[2:]]
try:
    runpy.run_module("maskflow_cli", run_name="__main__")
finally:
    status = open("/proc/self/status").read()
    open(peak_file, "w").write(status.split("VmHWM:")[1].split()[0])
"""


def _run_measured(args: list[str]) -> tuple[int, int, bytes, bytes]:
    """Run ``python -m maskflow_cli ARGS``: (exit code, the child's own peak RSS in bytes (VmHWM),
    stdout, stderr). Output goes to files, so nothing can block the child."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile("r") as peak:
        done = subprocess.run([sys.executable, "-c", _MEASURED, peak.name, *map(str, args)], stdout=out, stderr=err)
        out.seek(0)
        err.seek(0)
        return done.returncode, int(peak.read()) * 1024, out.read(), err.read()


GIB = 1024**3


def _write_4k(path: Path, frames: int) -> None:
    base = np.zeros((2160, 3840, 3), np.uint8)
    base[..., 0] = np.arange(3840) % 256
    base[..., 1] = (np.arange(2160) % 256)[:, None]
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 3840, 2160, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.roll(base, 32 * index, axis=1), format="rgb24")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _write_long(path: Path, frames: int, size: int) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = size, size, "gray"
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(np.full((size, size), index % 251, np.uint8), format="gray")
            frame.pts = index
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_4k_and_10000_frame_inputs_stream_with_bounded_memory(weights_dir, tmp_path):
    """Peak RSS (VmHWM) of two real runs, side by side.

    * `encode` of 8 frames of 3840x2160 H.264: frames are decoded and resized one at a time, so
      the peak stays near a bare process's (~250 MB here, ~450 MB with one 4K frame in flight);
      keeping the frames as float would add 800 MB.
    * `extend --dry-run` of 10,000 frames (16x16 FFV1, resized up to 32x32): extend keeps the
      whole input at the model's size (10 MB here), since every input frame is passed through to
      the output; nothing else grows with the length.
    """
    uhd, long = tmp_path / "uhd.mp4", tmp_path / "long.mkv"
    _write_4k(uhd, 8)
    _write_long(long, 10_000, 16)
    tokens = tmp_path / "uhd.tokens.safetensors"
    with ThreadPoolExecutor(2) as pool:
        encoded = pool.submit(_run_measured, ["encode", uhd, "-w", weights_dir, "-o", tokens, "--device", "cpu", "--json"])
        planned = pool.submit(_run_measured, ["extend", long, "-w", weights_dir, "--frames", 12, "--dry-run", "--device", "cpu"])
        (code, peak, out, err), (long_code, long_peak, long_out, long_err) = encoded.result(), planned.result()
    assert code == 0, err
    summary = json.loads(out)
    assert summary["frames"] == 8 and summary["tokens"] == [8, 8] and summary["fps"] == 24
    assert peak < 1.0 * GIB, f"4K: peak RSS {peak / 2**20:.0f} MiB"
    assert long_code == 0, long_err
    plan = json.loads(long_out)
    assert plan["length"] == 10_012 and plan["given"] == [[0, 10_000]]
    assert all(w["start"] >= 10_000 - plan["context"] for w in plan["windows"])  # only the end is context
    assert long_peak < 1.0 * GIB, f"10,000 frames: peak RSS {long_peak / 2**20:.0f} MiB"


# --------------------------------------------------------------------------- output safety


@pytest.fixture
def tokens_file(cli, weights_dir, clip_mkv, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tokens") / "clip.tokens.safetensors"
    assert cli("encode", clip_mkv, "-w", weights_dir, "-o", path, "--device", "cpu").code == 0
    return path


def _command_args(command: str, source: Path, output: Path, weights_dir: Path) -> list:
    extra = {"extend": ["--frames", 2, *FAST], "infill": ["1:3", *FAST], "generate": ["--frames", 2, *FAST],
             "encode": ["--device", "cpu"], "decode": ["--device", "cpu"]}[command]
    first = [] if command == "generate" else [source]
    return [command, *first, "-w", weights_dir, "-o", output, *extra]


@pytest.mark.parametrize("command", ["extend", "infill", "encode", "decode"])
def test_output_is_never_the_input(cli, weights_dir, clip_mkv, tokens_file, tmp_path, command):
    source = tokens_file if command == "decode" else tmp_path / "in.mkv"
    if command != "decode":
        source.write_bytes(clip_mkv.read_bytes())
    original = source.read_bytes()
    (tmp_path / "hard").mkdir()
    os.link(source, tmp_path / "hard" / "link.mkv")
    (tmp_path / "sym.mkv").symlink_to(source)
    for same in (source, tmp_path / "sym.mkv", tmp_path / "hard" / "link.mkv", source.parent / "." / source.name):
        result = cli(*_command_args(command, source, same, weights_dir), "--overwrite")
        assert result.code == 5 and "is the input file" in result.err, (same, result.err)
        assert len(result.err.strip().splitlines()) == 1
    assert source.read_bytes() == original
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


@pytest.mark.parametrize("command", ["generate", "extend", "infill", "encode", "decode"])
def test_existing_output_is_refused_before_any_work(cli, weights_dir, tokens_file, tmp_path, command):
    """Refused without --overwrite, even before a missing input is noticed; kept intact."""
    output = tmp_path / ("taken.tokens.safetensors" if command == "encode" else "taken.mkv")
    output.write_bytes(b"precious")
    missing = tmp_path / "missing.mkv"
    result = cli(*_command_args(command, missing, output, weights_dir))
    assert result.code == 5 and "exists; pass --overwrite" in result.err, result.err
    assert output.read_bytes() == b"precious" and sorted(os.listdir(tmp_path)) == [output.name]


@pytest.mark.parametrize("command", ["extend", "encode"])
def test_failed_run_keeps_an_existing_output(cli, weights_dir, corpus, tmp_path, command):
    bad, _ = corpus
    output = tmp_path / ("taken.tokens.safetensors" if command == "encode" else "taken.mkv")
    output.write_bytes(b"precious")
    result = cli(*_command_args(command, cut_at(bad, corpus[1], "mkv", 0.5), output, weights_dir), "--overwrite")
    assert result.code == 3
    assert output.read_bytes() == b"precious" and os.listdir(tmp_path) == [output.name]


def test_overwrite_replaces_through_a_temporary_file(cli, weights_dir, clip_mkv, tmp_path):
    for command, output in (("extend", tmp_path / "out.mkv"), ("encode", tmp_path / "out.tokens.safetensors")):
        output.write_bytes(b"old")
        inode = output.stat().st_ino
        result = cli(*_command_args(command, clip_mkv, output, weights_dir), "--overwrite")
        assert result.code == 0, result.err
        assert output.read_bytes() != b"old" and output.stat().st_ino != inode  # renamed over, not rewritten
    assert sorted(os.listdir(tmp_path)) == ["out.mkv", "out.tokens.safetensors"]


@pytest.mark.parametrize("output, problem", [
    ("-", "needs a path"), ("folder", "is a folder"), ("folder/", "is a folder"), ("nowhere/x.safetensors", "does not exist"),
])
def test_encode_refuses_outputs_it_cannot_write(cli, weights_dir, clip_mkv, tmp_path, monkeypatch, output, problem):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    result = cli("encode", clip_mkv, "-w", weights_dir, "-o", output, "--device", "cpu", "--overwrite")
    assert result.code == 5 and problem in result.err and len(result.err.strip().splitlines()) == 1, result.err
    assert sorted(os.listdir(tmp_path)) == ["folder"] and os.listdir(tmp_path / "folder") == []


@pytest.mark.parametrize("fps", ["0", "-5", "1/0", "abc", float("inf"), None])
def test_decode_refuses_a_tokens_file_with_a_bad_frame_rate(cli, weights_dir, tokens_file, tmp_path, fps):
    """The rate stored in a tokens file is input too: 0 used to reach the writer as an internal error."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(tokens_file), framework="pt") as handle:
        meta = json.loads(handle.metadata()["maskflow_tokens"])
        tokens = handle.get_tensor("tokens")
    meta["fps"] = fps
    forged = tmp_path / "forged.tokens.safetensors"
    save_file({"tokens": tokens}, str(forged), metadata={"maskflow_tokens": json.dumps(meta)})
    out = tmp_path / "out" / "x.mkv"
    out.parent.mkdir()
    result = cli("decode", forged, "-w", weights_dir, "-o", out, "--device", "cpu")
    _assert_clean_failure(result, str(forged), out.parent)


FORGED = "clip\nmaskflow: error: forged"


@pytest.mark.parametrize("where", ["input", "output", "weights"])
def test_a_newline_in_a_name_cannot_split_or_forge_an_error_line(cli, weights_dir, clip_mkv, tmp_path, where):
    """Names are shown repr-style, so a crafted name stays inside the one error line."""
    inp = tmp_path / f"{FORGED}.mkv" if where == "input" else clip_mkv
    out = tmp_path / (f"{FORGED}.xyz" if where == "output" else "out.mkv")
    weights = tmp_path / FORGED if where == "weights" else weights_dir
    result = cli("extend", inp, "-w", weights, "-o", out, "--frames", 2, *FAST)
    lines = result.err.strip().splitlines()
    assert result.code == {"input": 3, "output": 5, "weights": 4}[where], result.err
    assert len(lines) == 1 and lines[0].startswith("maskflow: error: "), lines
    assert "'" + str(tmp_path) + "/clip\\nmaskflow: error: forged" in lines[0], lines[0]  # quoted, the newline escaped


def test_library_errors_are_one_line_whatever_their_parts_hold():
    from maskflow_cli.errors import OutputError, WeightsError

    for error in (VideoError("a\nb.mkv", "x"), OutputError("a\rb", "y"), WeightsError("w", "foreign text\nsecond line")):
        assert "\n" not in str(error) and "\r" not in str(error), str(error)
    assert str(OutputError("<stdout>", "closed")) == "output <stdout>: closed"  # stand-ins stay as they are
