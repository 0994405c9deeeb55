"""The project audio format: conversion, measurement, envelopes and creator recordings (real ffmpeg)."""
from __future__ import annotations

import math
import os
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from memory.errors import InputError
from tools.audio import (
    PROJECT_SAMPLE_RATE,
    envelope,
    import_recording,
    median_f0_hz,
    probe_recording,
    take_info,
    to_project_wav,
)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-nostdin", *args], check=True)


def _tone(path: Path, seconds: float = 1.0, freq: float = 440.0, *extra: str) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"sine=frequency={freq}:duration={seconds}", *extra, str(path))
    return path


def _png_bytes() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\xff\x00\x00" * 8 for _ in range(8))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


# --------------------------------------------------------------------------- to_project_wav / measure


def test_to_project_wav_resamples_stereo_22k_to_48k_mono(tmp_path: Path) -> None:
    rate = 22_050
    t = np.arange(rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 220 * t)
    sf.write(tmp_path / "in.wav", np.stack([left, left], axis=1), rate, subtype="FLOAT")

    info = to_project_wav(tmp_path / "in.wav", tmp_path / "out.wav")

    data, out_rate = sf.read(tmp_path / "out.wav", always_2d=True)
    assert out_rate == PROJECT_SAMPLE_RATE == info.sample_rate
    assert data.shape[1] == 1
    assert sf.info(str(tmp_path / "out.wav")).subtype == "PCM_16"
    assert info.duration_s == pytest.approx(1.0, abs=0.002)
    assert info.peak_dbfs == pytest.approx(20 * math.log10(0.5), abs=0.2)
    # A full-scale-0.5 sine reads about -9 LUFS (-6 dB peak, -3 dB crest, +0.7 K-weighting at 220 Hz).
    assert -12.0 < info.loudness_lufs < -6.0
    # The resampler keeps the tone's pitch: 220 Hz in, 220 Hz out.
    assert median_f0_hz(tmp_path / "out.wav") == pytest.approx(220.0, rel=0.02)


def test_short_clip_has_no_integrated_loudness(tmp_path: Path) -> None:
    sf.write(tmp_path / "blip.wav", 0.3 * np.ones(4_800, dtype=np.float32), PROJECT_SAMPLE_RATE)
    info = take_info(tmp_path / "blip.wav")
    assert info.duration_s == pytest.approx(0.1)
    assert info.loudness_lufs == float("-inf")
    assert info.peak_dbfs == pytest.approx(20 * math.log10(0.3), abs=0.01)


def test_to_project_wav_names_a_file_that_is_not_audio(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("not audio at all")
    with pytest.raises(InputError, match="notes.wav"):
        to_project_wav(tmp_path / "notes.wav", tmp_path / "out.wav")


def test_envelope_follows_loudness_per_video_frame(tmp_path: Path) -> None:
    rate = 16_000
    quiet = 0.05 * np.sin(2 * np.pi * 200 * np.arange(rate // 2) / rate)
    loud = 0.8 * np.sin(2 * np.pi * 200 * np.arange(rate // 2) / rate)
    sf.write(tmp_path / "ramp.wav", np.concatenate([np.zeros(rate // 2), quiet, loud]), rate)

    env = envelope(tmp_path / "ramp.wav", fps=24)

    assert len(env) == 36  # 1.5 s at 24 fps
    assert env.min() >= 0.0 and env.max() == pytest.approx(1.0)
    assert env[:11].max() < 0.01  # silence: mouth shut
    assert 0.04 < np.median(env[13:23]) < 0.1  # quiet half: about 0.05 / 0.8 of the loud half
    assert np.median(env[26:]) > 0.95
    with pytest.raises(InputError, match="fps"):
        envelope(tmp_path / "ramp.wav", fps=0)


# --------------------------------------------------------------------------- import_recording


@needs_ffmpeg
@pytest.mark.parametrize("suffix, extra", [
    (".wav", ()),
    (".mp3", ("-c:a", "libmp3lame", "-b:a", "64k")),
    (".m4a", ("-c:a", "aac", "-b:a", "64k")),
    (".flac", ()),
    (".ogg", ("-c:a", "libvorbis")),
])
def test_import_recording_brings_common_formats_to_48k_mono(tmp_path: Path, suffix: str, extra: tuple) -> None:
    src = _tone(tmp_path / f"take{suffix}", 1.0, 330.0, "-ar", "44100", "-ac", "2", *extra)

    info = import_recording(src, tmp_path / "take48.wav")

    data, rate = sf.read(tmp_path / "take48.wav", always_2d=True)
    assert (rate, data.shape[1]) == (PROJECT_SAMPLE_RATE, 1)
    # Lossy codecs add encoder padding (a few dozen ms); the tone itself is 1 s.
    assert info.duration_s == pytest.approx(1.0, abs=0.06)
    assert info.peak_dbfs == pytest.approx(-18.06, abs=1.0)  # lavfi sine is 1/8 of full scale
    assert np.isfinite(info.loudness_lufs)


@needs_ffmpeg
def test_import_rejects_a_picture_renamed_wav(tmp_path: Path) -> None:
    fake = tmp_path / "x.wav"
    fake.write_bytes(_png_bytes())
    with pytest.raises(InputError, match=r"x\.wav is not audio .*png"):
        import_recording(fake, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()


@needs_ffmpeg
def test_import_rejects_text_and_random_bytes_and_a_cut_header(tmp_path: Path) -> None:
    text = tmp_path / "lines.wav"
    text.write_text("INT. ROOFTOP - NIGHT\n" * 30)
    noise = tmp_path / "noise.mp3"
    noise.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    cut = tmp_path / "cut.wav"
    _tone(tmp_path / "good.wav", 1.0)
    cut.write_bytes((tmp_path / "good.wav").read_bytes()[:20])
    for bad in (text, noise, cut):
        with pytest.raises(InputError, match=bad.name) as caught:
            import_recording(bad, tmp_path / "out.wav")
        assert "not" in str(caught.value) or "corrupt" in str(caught.value)


@needs_ffmpeg
def test_import_rejects_a_recording_cut_off_mid_file(tmp_path: Path) -> None:
    full = _tone(tmp_path / "full.mp3", 4.0, 440.0, "-c:a", "libmp3lame", "-b:a", "64k", "-write_xing", "1")
    cut = tmp_path / "half.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match=r"half\.mp3 is truncated"):
        import_recording(cut, tmp_path / "out.wav")


@needs_ffmpeg
def test_import_rejects_a_two_hour_file_from_the_probe(tmp_path: Path) -> None:
    # A real 2-hour WAV, kept small (7 MB) by its 1 kHz, 8-bit format.
    long = tmp_path / "podcast.wav"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=1000:cl=mono", "-t", "7200", "-c:a", "pcm_u8", str(long))
    with pytest.raises(InputError, match=r"podcast\.wav is 120\.0 minutes long, over the 10-minute limit"):
        import_recording(long, tmp_path / "out.wav")


@needs_ffmpeg
def test_import_rejects_empty_and_silent_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.m4a"
    empty.touch()
    with pytest.raises(InputError, match=r"empty\.m4a is empty \(0 bytes\)"):
        import_recording(empty, tmp_path / "out.wav")
    silent = tmp_path / "silent.wav"
    _ffmpeg("-f", "lavfi", "-i", "anullsrc=r=48000:cl=mono", "-t", "1", str(silent))
    with pytest.raises(InputError, match=r"silent\.wav is silent"):
        import_recording(silent, tmp_path / "out.wav")
    header_only = tmp_path / "nothing.wav"
    sf.write(header_only, np.zeros(0, dtype=np.float32), 48_000)
    with pytest.raises(InputError, match=r"nothing\.wav has no audio samples"):
        import_recording(header_only, tmp_path / "out.wav")


@needs_ffmpeg
def test_probe_without_ffprobe_parses_ffmpeg_banner(tmp_path: Path) -> None:
    """imageio-ffmpeg ships no ffprobe: the `ffmpeg -i` fallback must agree with ffprobe."""
    if shutil.which("ffprobe") is None:
        pytest.skip("needs ffprobe to compare against")
    m4a = _tone(tmp_path / "a.m4a", 2.0, 440.0, "-c:a", "aac")
    pic = tmp_path / "p.wav"
    pic.write_bytes(_png_bytes())
    for path in (m4a, pic):
        with_probe = probe_recording(path)
        banner = probe_recording(path, use_ffprobe=False)
        assert banner.audio_codec == with_probe.audio_codec
        assert (banner.duration_s or 0) == pytest.approx(with_probe.duration_s or 0, abs=0.02)
    assert probe_recording(m4a, use_ffprobe=False).audio_codec == "aac"
    assert probe_recording(pic, use_ffprobe=False).other_streams == ("video:png",)
    garbage = tmp_path / "g.wav"
    garbage.write_bytes(os.urandom(64))
    with pytest.raises(InputError, match=r"g\.wav is not a readable audio file"):
        probe_recording(garbage, use_ffprobe=False)
