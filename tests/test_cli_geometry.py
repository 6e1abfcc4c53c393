"""extend and infill keep the input's own frames, size, colour and audio (--size, --no-audio); the
model's frames are mapped back onto the part of the frame the model sees; --model-fps; and the
same mapping feeds the model in inference and in training data. Videos are made here with PyAV."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from maskflow_cli.clips import load_training_clips
from maskflow_cli.pipeline import MaskFlowPipeline
from maskflow_cli.video_io import FrameFormat
from maskflow_cli.video_io.geometry import OutputGeometry

from conftest import one_error_line, run_subprocess

pytestmark = pytest.mark.usefixtures("one_thread")
FAST = ["--steps", "2", "--device", "cpu", "--seed", "0"]
FPS = 12


def colour_frames(count: int, height: int, width: int) -> np.ndarray:
    """uint8 [T,H,W,3]: a red ramp across, green rising in time, a blue bar moving."""
    frames = np.zeros((count, height, width, 3), np.uint8)
    frames[..., 0] = (np.arange(width) * 255 // max(width - 1, 1))[None, None, :]
    frames[..., 1] = (8 * np.arange(count))[:, None, None]
    for t in range(count):
        x = (5 * t) % max(width - 8, 1)
        frames[t, height // 3 : height // 2 + 1, x : x + 8, 2] = 250
    return frames


def write_av(path: Path, frames: np.ndarray, *, video: str = "libx264", pix_fmt: str = "yuv420p",
             audio: list[tuple[str, str, int, str]] = (("aac", "fltp", 44100, "mono"),), rotation: int | None = None) -> Path:
    """Video frames plus one audio stream per ``(codec, sample format, rate, layout)``, each a
    440 Hz sine as long as the video."""
    seconds = len(frames) / FPS
    with av.open(str(path), "w") as out:
        stream = out.add_stream(video, rate=FPS)
        stream.height, stream.width, stream.pix_fmt = frames.shape[1], frames.shape[2], pix_fmt
        if rotation is not None:
            stream.set_display_rotation(rotation)
        sounds = [out.add_stream(codec, rate=rate, layout=layout) for codec, _, rate, layout in audio]
        for sound, (_, sample_format, _, _) in zip(sounds, audio):
            sound.format = sample_format
        for frame in frames:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
        out.mux(stream.encode())
        for sound, (_, sample_format, rate, layout) in zip(sounds, audio):
            samples = int(round(rate * seconds))
            tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(samples) / rate)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(tone[None], format="flt", layout="mono")
            frame.sample_rate, frame.pts = rate, 0
            sound.codec_context.open(strict=False)
            resampler = av.AudioResampler(format=sample_format, layout=layout, rate=rate, frame_size=sound.codec_context.frame_size or None)
            for piece in [*resampler.resample(frame), *resampler.resample(None)]:
                out.mux(sound.encode(piece))
            out.mux(sound.encode())
    return path


def rgb_frames(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def audio_facts(path: Path) -> list[tuple[str, float]]:
    """(codec, seconds up to the end of its last packet) per audio stream."""
    facts = []
    with av.open(str(path)) as container:
        for stream in container.streams.audio:
            end = max((p.pts + p.duration) * p.time_base for p in container.demux(stream) if p.size)
            facts.append((stream.codec_context.name, float(end - (stream.start_time or 0) * stream.time_base)))
            container.seek(0)
    return facts


@pytest.fixture(scope="module")
def clip_with_sound(tmp_path_factory) -> Path:
    """20 frames of 320x180 colour, H.264, with an AAC sine tone as long as the video."""
    return write_av(tmp_path_factory.mktemp("av") / "clip.mp4", colour_frames(20, 180, 320))


def test_infill_keeps_size_colour_frames_and_audio(cli, weights_dir, clip_with_sound, tmp_path):
    out = tmp_path / "out.mkv"
    result = cli("infill", clip_with_sound, "10:14", "-w", weights_dir, "-o", out, *FAST, "--json")
    assert result.code == 0, result.err
    frames, source = rgb_frames(out), rgb_frames(clip_with_sound)
    assert frames.shape == source.shape == (20, 180, 320, 3)
    keep = [i for i in range(20) if not 10 <= i < 14]
    assert np.array_equal(frames[keep], source[keep])  # the decoded input frames themselves
    assert np.abs(frames[..., 0].astype(int) - frames[..., 1]).max() > 100  # colour, not gray
    (codec, seconds), = audio_facts(out)
    assert codec == "aac" and abs(seconds - 20 / FPS) <= 1 / FPS
    summary = json.loads(result.out)
    assert (summary["width"], summary["height"], summary["channels"]) == (320, 180, 3)
    assert summary["audio"] == {"codec": "aac", "copied": True, "written": "aac"}


def test_infill_puts_the_models_frames_on_its_window_in_gray(cli, weights_dir, clip_with_sound, tmp_path):
    out = tmp_path / "out.mkv"
    result = cli("infill", clip_with_sound, "10:14", "-w", weights_dir, "-o", out, *FAST)
    assert result.code == 0, result.err
    assert "the model's 180x180 window, black around it" in result.err and "the model's frames are gray" in result.err
    made = rgb_frames(out)[10:14]  # the 32x32 gray model sees the centre 180x180 of 320x180
    assert made[:, :, :70].max() == 0 and made[:, :, 250:].max() == 0
    assert np.array_equal(made[..., 0], made[..., 1]) and np.array_equal(made[..., 1], made[..., 2])
    assert made[:, :, 70:250].std() > 0


def test_extend_keeps_size_first_frames_and_audio(cli, weights_dir, clip_with_sound, tmp_path):
    out = tmp_path / "ext.mp4"
    result = cli("extend", clip_with_sound, "--frames", 8, "-w", weights_dir, "-o", out, *FAST)
    assert result.code == 0, result.err
    frames, source = rgb_frames(out), rgb_frames(clip_with_sound)
    assert frames.shape == (28, 180, 320, 3)
    assert np.abs(frames[:20].astype(int) - source).mean() < 3  # H.264's loss, no resizing
    (codec, seconds), = audio_facts(out)
    assert codec == "aac" and abs(seconds - 20 / FPS) <= 1 / FPS  # the audio ends where the input ends
    assert "audio copied (aac)" in result.err


def test_size_model_is_the_models_frames_and_size_wxh_scales(cli, weights_dir, clip_with_sound, tmp_path):
    small, large = tmp_path / "small.mkv", tmp_path / "large.mkv"
    assert cli("extend", clip_with_sound, "--frames", 2, "-w", weights_dir, "-o", small, "--size", "model", *FAST).code == 0
    assert rgb_frames(small).shape == (22, 32, 32, 3)
    result = cli("infill", clip_with_sound, "3:5", "-w", weights_dir, "-o", large, "--size", "640x360", *FAST)
    assert result.code == 0, result.err
    frames = rgb_frames(large)
    assert frames.shape == (20, 360, 640, 3)
    assert frames[3:5, :, :140].max() == 0 and frames[3:5, :, 500:].max() == 0  # the window scaled with the frame


def test_no_audio_and_outputs_without_audio(cli, weights_dir, clip_with_sound, tmp_path):
    silent, raw = tmp_path / "silent.mkv", tmp_path / "raw.y4m"
    assert cli("infill", clip_with_sound, "3:5", "-w", weights_dir, "-o", silent, "--no-audio", *FAST).code == 0
    assert audio_facts(silent) == []
    result = cli("infill", clip_with_sound, "3:5", "-w", weights_dir, "-o", raw, *FAST)
    assert result.code == 0 and "video only: y4m carries no audio" in result.err


def test_another_frame_rate_leaves_the_audio_out(cli, weights_dir, clip_with_sound, tmp_path):
    """--fps other than the input's retimes the video; its sound would no longer fit it."""
    same, retimed = tmp_path / "same.mkv", tmp_path / "retimed.mkv"
    rate = av.open(str(clip_with_sound)).streams.video[0].average_rate
    assert cli("infill", clip_with_sound, "3:5", "-w", weights_dir, "-o", same, "--fps", str(rate), *FAST).code == 0
    assert audio_facts(same) != []
    result = cli("infill", clip_with_sound, "3:5", "-w", weights_dir, "-o", retimed, "--fps", str(rate * 2), *FAST)
    assert result.code == 0 and "audio left out: --fps retimes the video" in result.err
    assert audio_facts(retimed) == []


def test_same_model_frames_in_training_data_and_inference(cli, weights_dir, clip_with_sound, tmp_path, monkeypatch):
    """A folder of videos cut into training clips, and the same video read for extend, give the
    model the same frames: one mapping."""
    folder = tmp_path / "videos"
    folder.mkdir()
    (folder / "clip.mp4").write_bytes(clip_with_sound.read_bytes())
    seen = []
    original_run = MaskFlowPipeline.run
    monkeypatch.setattr(MaskFlowPipeline, "run", lambda self, plan, video, *rest: seen.append(video) or original_run(self, plan, video, *rest))
    assert cli("extend", clip_with_sound, "--frames", 2, "-w", weights_dir, "-o", tmp_path / "x.mkv", *FAST).code == 0
    clips = load_training_clips(folder, 20, FrameFormat(32, 32, 1))  # [1,20,32,32,1]
    assert torch.equal(seen[0], clips[0])


@pytest.mark.parametrize("size, window", [((180, 320), (0, 70, 180, 250)), ((320, 180), (70, 0, 250, 180)), ((32, 32), (0, 0, 32, 32))])
def test_the_models_window_is_where_the_model_looks(size, window):
    geometry = OutputGeometry(size, FrameFormat(32, 32, 1), FrameFormat(*size, 3))
    assert geometry.model_box() == window
    placed = geometry.generated(torch.full((32, 32, 1), 200, dtype=torch.uint8))
    top, left, bottom, right = window
    assert placed[top:bottom, left:right].min() == 200 and placed.sum() == 200 * 3 * (bottom - top) * (right - left)


def test_an_input_frame_passes_through_bit_exact():
    frame = torch.randint(0, 256, (7, 5, 3), dtype=torch.uint8)
    assert torch.equal(OutputGeometry((7, 5), FrameFormat(32, 32, 1), FrameFormat(7, 5, 3)).passed(frame), frame)


# ---- hostile inputs ------------------------------------------------------------------------------


def test_audio_only_file_is_one_line(cli, weights_dir, tmp_path):
    path = tmp_path / "sound.mka"
    with av.open(str(path), "w") as out:
        sound = out.add_stream("flac", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts = 8000, 0
        out.mux(sound.encode(frame))
        out.mux(sound.encode())
    result = cli("extend", path, "-w", weights_dir, "-o", tmp_path / "x.mkv", *FAST)
    one_error_line(result, 3, "no video stream", "audio")


def test_several_audio_streams_copy_the_first(cli, weights_dir, tmp_path):
    path = write_av(tmp_path / "two.mkv", colour_frames(10, 36, 64), video="ffv1", pix_fmt="bgr0",
                    audio=[("aac", "fltp", 44100, "mono"), ("flac", "s16", 8000, "mono")])
    out = tmp_path / "out.mkv"
    result = cli("infill", path, "3:5", "-w", weights_dir, "-o", out, *FAST)
    assert result.code == 0, result.err
    assert [codec for codec, _ in audio_facts(out)] == ["aac"]


@pytest.mark.parametrize("codec, sample_format, rate, layout, suffix, written", [
    ("pcm_u8", "u8", 12345, "mono", ".mp4", "aac"),  # MP4 does not take unsigned 8-bit PCM at 12345 Hz: AAC at 12000
    ("pcm_u8", "u8", 44100, "7.1", ".mp4", "aac"),  # eight channels, mixed down to two
    ("pcm_f64le", "dbl", 12345, "mono", ".mkv", "pcm_f64le"),  # Matroska takes it as it is
])
def test_odd_audio_is_carried_or_encoded_again(cli, weights_dir, tmp_path, codec, sample_format, rate, layout, suffix, written):
    path = write_av(tmp_path / "odd.mkv", colour_frames(12, 36, 64), video="ffv1", pix_fmt="bgr0", audio=[(codec, sample_format, rate, layout)])
    out = tmp_path / f"out{suffix}"
    result = cli("infill", path, "3:5", "-w", weights_dir, "-o", out, *FAST, "--json")
    assert result.code == 0, result.err
    (codec_out, seconds), = audio_facts(out)
    assert codec_out == written and abs(seconds - 1) < 0.2
    assert json.loads(result.out)["audio"] == {"codec": codec, "copied": written == codec, "written": written}


@pytest.mark.parametrize("height, width, suffix", [(1, 64, ".mkv"), (64, 1, ".y4m"), (3, 4095, ".mkv")])
def test_odd_frame_sizes_keep_their_size(cli, weights_dir, tmp_path, height, width, suffix):
    frames = colour_frames(8, height, width)
    path = write_av(tmp_path / "odd.nut", frames, video="rawvideo", pix_fmt="rgb24", audio=[])
    out = tmp_path / f"out{suffix}"
    result = cli("infill", path, "2:4", "-w", weights_dir, "-o", out, *FAST)
    assert result.code == 0, result.err
    written = rgb_frames(out)
    assert written.shape == (8, height, width, 3)
    if suffix == ".mkv":  # lossless; y4m stores yuv444p
        assert np.array_equal(written[4:], frames[4:])
    refused = cli("infill", path, "2:4", "-w", weights_dir, "-o", tmp_path / "out.mp4", *FAST)
    one_error_line(refused, 5, "even frame size")


@pytest.mark.skipif(not hasattr(av.VideoStream, "set_display_rotation"), reason="this PyAV cannot write a display matrix")
def test_a_rotated_input_comes_out_upright(cli, weights_dir, tmp_path):
    path = write_av(tmp_path / "phone.mp4", colour_frames(8, 32, 64), rotation=90)
    out = tmp_path / "out.mkv"
    assert cli("infill", path, "2:4", "-w", weights_dir, "-o", out, *FAST).code == 0
    assert rgb_frames(out).shape == (8, 64, 32, 3)


def test_size_is_checked_before_any_work(cli, weights_dir, clip_with_sound, tmp_path):
    for value in ("big", "0x10", "10x", "5000x5000"):
        one_error_line(cli("extend", clip_with_sound, "-w", weights_dir, "-o", tmp_path / "x.mkv", "--size", value), 2, "--size")
    one_error_line(cli("generate", "-w", weights_dir, "-o", tmp_path / "x.mkv", "--size", "input"), 2, "--size", "no input")


# ---- frame rate ----------------------------------------------------------------------------------


def test_timelines_hold_each_model_frame_for_the_stride():
    from maskflow_cli.timeline import extend_timeline, infill_timeline

    ext = extend_timeline(10, 5, stride=3)  # the model sees frames 0, 3, 6, 9 and makes 2 after them
    assert ext.inputs == (0, 3, 6, 9) and ext.gaps == ((4, 6),)
    assert ext.shows == (None,) * 10 + (4, 4, 4, 5, 5) and ext.generated == 5
    assert extend_timeline(10, 5).shows == (None,) * 10 + (10, 11, 12, 13, 14)
    fill = infill_timeline(12, [(4, 9)], stride=2)  # the model sees 0, 2, ..., 10 and remakes 4, 6, 8
    assert fill.inputs == (0, 2, 4, 6, 8, 10) and fill.gaps == ((2, 5),)
    assert fill.shows == (None,) * 4 + (2, 2, 3, 4, 4) + (None,) * 3
    with pytest.raises(Exception, match="holds none of the frames"):
        infill_timeline(12, [(3, 4)], stride=2)


def test_a_fast_input_gets_one_warning_and_model_fps_resamples_it(cli, weights_dir, tmp_path):
    fast = tmp_path / "fast.mkv"
    with av.open(str(fast), "w") as out:  # 30 fps; the tiny weights say 8
        stream = out.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "gray"
        for t in range(24):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((32, 32), 8 * t, np.uint8), format="gray")))
        out.mux(stream.encode())
    plain, resampled = tmp_path / "plain.mkv", tmp_path / "resampled.mkv"
    result = cli("extend", fast, "--frames", 8, "-w", weights_dir, "-o", plain, *FAST)
    warnings = [line for line in result.err.splitlines() if "warning" in line]
    assert result.code == 0 and len(warnings) == 1 and "30 fps" in warnings[0] and "--model-fps 8" in warnings[0]
    result = cli("extend", fast, "--frames", 8, "-w", weights_dir, "-o", resampled, "--model-fps", 8, *FAST, "--json")
    assert result.code == 0 and "warning" not in result.err
    summary = json.loads(result.out)
    assert summary["model_stride"] == 4 and summary["fps"] == 30 and summary["frames"] == 32 and summary["generated"] == 8
    frames = rgb_frames(resampled)[24:]  # two model frames, each held for 4 output frames
    assert all(np.array_equal(frames[i], frames[i - i % 4]) for i in range(8))
    assert cli("extend", fast, "-w", weights_dir, "-o", plain, "--model-fps", 8, "--quiet", "--overwrite", *FAST).err == ""
    one_error_line(cli("infill", fast, "3:4", "-w", weights_dir, "-o", tmp_path / "x.mkv", "--model-fps", 8, *FAST), 2, "--model-fps")


def test_generate_scales_to_a_size(cli, weights_dir, tmp_path):
    out = tmp_path / "big.mkv"
    assert cli("generate", "-w", weights_dir, "-o", out, "--frames", 3, "--size", "48x40", *FAST).code == 0
    assert rgb_frames(out).shape == (3, 40, 48, 3)  # the gray model's frames, scaled to cover 48x40


def test_stdin_is_read_twice_and_keeps_its_audio(weights_dir, clip_with_sound, tmp_path):
    out = tmp_path / "out.mkv"
    done = run_subprocess(["infill", "-", "10:14", "-w", weights_dir, "-o", out, *FAST], stdin=clip_with_sound.read_bytes())
    assert done.returncode == 0, done.stderr
    frames, source = rgb_frames(out), rgb_frames(clip_with_sound)
    assert frames.shape == source.shape and np.array_equal(frames[:10], source[:10])
    assert [codec for codec, _ in audio_facts(out)] == ["aac"]
    piped = run_subprocess(["infill", "-", "10:14", "-w", weights_dir, "-o", "-", *FAST], stdin=clip_with_sound.read_bytes())
    assert piped.returncode == 0 and b"video only: stdout carries no audio" in piped.stderr
    assert piped.stdout.startswith(b"YUV4MPEG2 W320 H180")


def test_audio_is_encoded_again_for_a_container_that_does_not_take_it(clip_with_sound, tmp_path):
    """WebM takes Opus or Vorbis only: the AAC of an MP4 is decoded and encoded again."""
    from maskflow_cli.video_io.audio import AudioCopy

    out = tmp_path / "sound.webm"
    with open(clip_with_sound, "rb") as file, av.open(str(out), "w", format="webm") as container:
        audio = AudioCopy("clip.mp4", file)
        audio.add_stream(str(out), container)
        audio.mux_until(container, Fraction(1))
        audio.finish(container)
        audio.close()
    assert not audio.copied
    (codec, seconds), = audio_facts(out)
    assert codec in ("opus", "vorbis") and abs(seconds - 20 / FPS) <= 0.1
