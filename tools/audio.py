"""The project's audio format and the measurements every take carries.

Every take that reaches the edit is a 48 kHz mono WAV with 16-bit PCM samples (``PROJECT_SUBTYPE``):
48 kHz is the video world's rate (no resampling in the final mux), mono because dialogue is placed
in the mix later, and 16-bit because every editor, browser and ffmpeg build reads it, at half the
size of float32, with 96 dB of range that dialogue never needs more of. Processing happens in
float32; only the file on disk is 16-bit.

Voice backends write whatever their engine produces; `to_project_wav` brings it to the project
format with a real resampler (soxr), and `import_recording` does the same for the creator's own
recordings (WAV, MP3, M4A, FLAC, OGG) through ffmpeg, after checking that the file is audio, whole,
not silent and not absurdly long.

Heavy imports (soundfile, soxr, librosa, pyloudnorm) stay inside the functions so that importing
this module is free.
"""
from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from memory.errors import BackendError, InputError
from memory.project import atomic_write_bytes

if TYPE_CHECKING:
    import numpy as np

PROJECT_SAMPLE_RATE = 48_000
PROJECT_SUBTYPE = "PCM_16"
#: pyloudnorm's gating block: integrated loudness (BS.1770) is undefined for shorter clips.
LOUDNESS_MIN_SECONDS = 0.4
#: A take whose peak stays below this is treated as silence (a muted microphone, an empty track).
SILENCE_PEAK_DBFS = -60.0
#: Decoded audio shorter than this share of the duration the container promises is "truncated".
_TRUNCATED_SHARE = 0.9
_PROBE_TIMEOUT_S = 30
_DECODE_TIMEOUT_S = 300
_DURATION_RE = re.compile(r"Duration:\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM_RE = re.compile(r"Stream #\d+:\d+[^:]*:\s*(Audio|Video|Subtitle|Data|Attachment):\s*([^\s,]+)")


@dataclass(frozen=True)
class TakeInfo:
    """What the edit needs to know about one take without opening it again.

    ``loudness_lufs`` is BS.1770 integrated loudness; it is ``-inf`` for clips shorter than
    ``LOUDNESS_MIN_SECONDS`` (one gating block) and for digital silence, where it is undefined.
    ``peak_dbfs`` is the sample peak (``-inf`` for all-zero audio).
    """

    path: Path
    sample_rate: int
    duration_s: float
    peak_dbfs: float
    loudness_lufs: float


# --------------------------------------------------------------------------- samples in, samples out


def read_mono(path: Path) -> tuple[np.ndarray, int]:
    """Read any WAV/FLAC/OGG that libsndfile knows as float32 mono (channels averaged)."""
    import numpy as np
    import soundfile as sf

    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise InputError(f"{path} is not a readable audio file ({exc}); export it as WAV and retry") from exc
    return np.ascontiguousarray(data.mean(axis=1), dtype=np.float32), int(rate)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> Path:
    """Write float samples as a 16-bit mono WAV, atomically (readers never see half a file)."""
    import numpy as np
    import soundfile as sf

    buffer = io.BytesIO()
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    sf.write(buffer, clipped, int(sample_rate), format="WAV", subtype=PROJECT_SUBTYPE)
    atomic_write_bytes(Path(path), buffer.getvalue())
    return Path(path)


def resample(samples: np.ndarray, rate: int, target: int = PROJECT_SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling with soxr's HQ preset (no aliasing, unlike index picking)."""
    import numpy as np
    import soxr

    if rate == target or len(samples) == 0:
        return np.asarray(samples, dtype=np.float32)
    return np.asarray(soxr.resample(samples, rate, target, "HQ"), dtype=np.float32)


def pitch_shift(samples: np.ndarray, rate: int, semitones: float, *, n_fft: int = 1024) -> np.ndarray:
    """Shift pitch by ``semitones`` while keeping the duration: phase-vocoder time stretch, then
    soxr resampling back to the original length (the method of ``librosa.effects.pitch_shift``).

    A plain speed change would also change the line's length and every lip-sync frame after it.
    Written with numpy's FFT rather than calling librosa because importing and warming up librosa
    (numba, scipy, scikit-learn) costs 3-5 s per process, a twentieth of a whole episode's voicing
    budget; ``tests/test_voices.py`` checks it against librosa. ``n_fft=1024`` (46 ms at 22.05 kHz)
    keeps speech transients tighter than a 2048-point frame.
    """
    import numpy as np
    import soxr

    audio = np.asarray(samples, dtype=np.float32)
    if abs(semitones) < 0.01 or len(audio) < n_fft:
        return audio
    stretch = 2.0 ** (-float(semitones) / 12.0)  # < 1 stretches longer, then resampling raises pitch
    stretched = _time_stretch(audio, stretch, n_fft)
    shifted = np.asarray(soxr.resample(stretched, rate / stretch, rate, "HQ"), dtype=np.float32)
    if len(shifted) >= len(audio):
        return shifted[: len(audio)]
    return np.pad(shifted, (0, len(audio) - len(shifted)))


def _time_stretch(audio: np.ndarray, speed: float, n_fft: int) -> np.ndarray:
    """Phase vocoder (Flanagan & Golden; Laroche & Dolson phase propagation) with a periodic Hann
    window, 75 % overlap and centred frames; output length ``round(len / speed)``."""
    import numpy as np

    hop = n_fft // 4
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    padded = np.pad(audio, n_fft // 2)
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    spectrum = np.fft.rfft(frames * window, axis=1)  # (frames, bins)
    steps = np.arange(0, spectrum.shape[0], speed)
    spectrum = np.pad(spectrum, [(0, 2), (0, 0)])
    index = np.floor(steps).astype(np.int64)
    alpha = (steps - index)[:, None]
    magnitude = np.abs(spectrum)
    phase = np.angle(spectrum)
    expected = np.linspace(0, np.pi * hop, spectrum.shape[1])  # phase advance of each bin per hop
    mag = (1.0 - alpha) * magnitude[index] + alpha * magnitude[index + 1]
    delta = phase[index + 1] - phase[index] - expected
    delta -= 2.0 * np.pi * np.round(delta / (2.0 * np.pi))
    advance = expected + delta
    accumulated = np.empty_like(advance)
    accumulated[0] = phase[0]
    np.cumsum(advance[:-1], axis=0, out=accumulated[1:])
    accumulated[1:] += phase[0]
    out_frames = np.fft.irfft(mag * np.exp(1j * accumulated), n=n_fft, axis=1).astype(np.float32) * window
    # Overlap-add: with hop = n_fft / 4 each frame covers four hop-sized segments.
    count = out_frames.shape[0]
    segments = out_frames.reshape(count, 4, hop)
    summed = np.zeros((count + 3, hop), dtype=np.float32)
    norm = np.zeros((count + 3, hop), dtype=np.float32)
    window_sq = (window ** 2).reshape(4, hop)
    for k in range(4):
        summed[k:k + count] += segments[:, k]
        norm[k:k + count] += window_sq[k]
    signal = summed.reshape(-1)
    norm = norm.reshape(-1)
    signal = np.where(norm > 1e-6, signal / np.maximum(norm, 1e-6), signal)
    length = round(len(audio) / speed)
    start = n_fft // 2
    out = signal[start:start + length]
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out.astype(np.float32)


def measure(samples: np.ndarray, rate: int, path: Path) -> TakeInfo:
    """Peak and integrated loudness of float samples already written to ``path``."""
    import numpy as np

    duration = len(samples) / rate if rate else 0.0
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    peak_dbfs = 20.0 * math.log10(peak) if peak > 0 else float("-inf")
    loudness = float("-inf")
    if duration >= LOUDNESS_MIN_SECONDS and peak > 0:
        import pyloudnorm

        loudness = float(pyloudnorm.Meter(rate).integrated_loudness(samples.astype(np.float64)))
    return TakeInfo(
        path=Path(path), sample_rate=int(rate), duration_s=duration, peak_dbfs=peak_dbfs, loudness_lufs=loudness
    )


def to_project_wav(src: Path, dst: Path) -> TakeInfo:
    """Convert a backend's WAV (any rate, any channel count) to the project format and measure it."""
    samples, rate = read_mono(Path(src))
    samples = resample(samples, rate, PROJECT_SAMPLE_RATE)
    write_wav(Path(dst), samples, PROJECT_SAMPLE_RATE)
    return measure(samples, PROJECT_SAMPLE_RATE, Path(dst))


def take_info(path: Path) -> TakeInfo:
    """Measure an existing WAV (used when a take is reopened)."""
    samples, rate = read_mono(Path(path))
    return measure(samples, rate, Path(path))


# --------------------------------------------------------------------------- analysis


def median_f0_hz(path: Path) -> float:
    """Median fundamental frequency of the voiced frames (pYIN, 60-500 Hz).

    Used to check that two cast voices really sound different. The take is resampled to 16 kHz
    first: pitch lives far below 8 kHz and pYIN's cost grows with the sample rate.
    """
    import librosa
    import numpy as np

    samples, rate = read_mono(Path(path))
    samples = resample(samples, rate, 16_000)
    if len(samples) < 2048:
        raise InputError(f"{path} is too short ({len(samples) / 16_000:.2f} s) to measure its pitch")
    f0, voiced, _ = librosa.pyin(samples, fmin=60.0, fmax=500.0, sr=16_000, frame_length=1024)
    voiced_f0 = f0[voiced & np.isfinite(f0)]
    if voiced_f0.size == 0:
        raise InputError(f"{path} has no voiced speech to measure a pitch from")
    return float(np.median(voiced_f0))


def envelope(path: Path, fps: int) -> np.ndarray:
    """Per-video-frame loudness (RMS) of a take, scaled to 0..1 by its loudest frame.

    One value per frame of a ``fps`` video, so frame ``i`` of an animation can open the mouth by
    ``envelope[i]``. Scaling by the take's own maximum makes a whispered line flap as visibly as
    a shouted one.
    """
    import numpy as np

    if fps <= 0:
        raise InputError(f"fps must be a positive number of frames per second, got {fps}")
    samples, rate = read_mono(Path(path))
    frames = max(1, math.ceil(len(samples) * fps / rate)) if len(samples) else 0
    if frames == 0:
        return np.zeros(0, dtype=np.float32)
    edges = np.round(np.arange(frames + 1) * rate / fps).astype(np.int64)
    edges[-1] = len(samples)
    squares = np.concatenate([[0.0], np.cumsum(samples.astype(np.float64) ** 2)])
    lo, hi = edges[:-1], np.maximum(edges[1:], edges[:-1] + 1)
    hi = np.minimum(hi, len(samples))
    counts = np.maximum(hi - lo, 1)
    rms = np.sqrt(np.maximum(squares[hi] - squares[lo], 0.0) / counts)
    top = float(rms.max())
    if top <= 0:
        return np.zeros(frames, dtype=np.float32)
    return np.clip(rms / top, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------- creator recordings


@dataclass(frozen=True)
class RecordingProbe:
    """What ffprobe (or ``ffmpeg -i``) says about a file before anything is decoded."""

    format_name: str
    audio_codec: str | None
    other_streams: tuple[str, ...]
    duration_s: float | None


@lru_cache(maxsize=1)
def ffmpeg_tools() -> tuple[str, str | None]:
    """(ffmpeg, ffprobe or None): Debian's binaries when installed, else imageio-ffmpeg's ffmpeg.

    imageio-ffmpeg ships ffmpeg only, so probing then falls back to parsing ``ffmpeg -i``.
    """
    ffmpeg = shutil.which("ffmpeg")
    ffprobe = shutil.which("ffprobe")
    if ffmpeg:
        return ffmpeg, ffprobe
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe(), ffprobe
    except (ImportError, RuntimeError) as exc:
        raise BackendError(
            "no ffmpeg found to decode recordings; install it with 'apt-get install ffmpeg' "
            "or 'pip install imageio-ffmpeg'"
        ) from exc


def probe_recording(src: Path, *, use_ffprobe: bool = True) -> RecordingProbe:
    """Container, audio codec, other streams and duration of ``src``, without decoding it.

    Uses ffprobe's JSON when there is an ffprobe (and ``use_ffprobe``), else parses the banner of
    ``ffmpeg -i`` (imageio-ffmpeg ships no ffprobe). Unreadable files raise `InputError`.
    """
    src = Path(src)
    ffmpeg, ffprobe = ffmpeg_tools()
    if ffprobe and use_ffprobe:
        proc = subprocess.run(
            [ffprobe, "-v", "error", "-show_entries", "format=format_name,duration:stream=codec_type,codec_name",
             "-of", "json", str(src)],
            capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False,
        )
        if proc.returncode != 0:
            reason = (proc.stderr.strip().splitlines() or ["unknown format"])[-1]
            raise InputError(f"{src.name} is not a readable audio file ({reason}); it may be corrupt or truncated; re-export it as WAV, MP3, M4A, FLAC or OGG")
        info = json.loads(proc.stdout or "{}")
        fmt = info.get("format", {})
        streams = info.get("streams", [])
        audio = [s for s in streams if s.get("codec_type") == "audio"]
        others = tuple(f"{s.get('codec_type')}:{s.get('codec_name')}" for s in streams if s.get("codec_type") != "audio")
        try:
            duration = float(fmt["duration"])
        except (KeyError, TypeError, ValueError):
            duration = None
        return RecordingProbe(fmt.get("format_name", "?"), audio[0].get("codec_name") if audio else None, others, duration)
    proc = subprocess.run(
        [ffmpeg, "-hide_banner", "-nostdin", "-i", str(src)],
        capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S, check=False,
    )
    text = proc.stderr
    if "Input #0" not in text:
        reason = (text.strip().splitlines() or ["unknown format"])[-1]
        raise InputError(f"{src.name} is not a readable audio file ({reason}); it may be corrupt or truncated; re-export it as WAV, MP3, M4A, FLAC or OGG")
    fmt_match = re.search(r"Input #0, ([^,]+(?:,[^,]+)*?), from", text)
    streams = _STREAM_RE.findall(text)
    audio = [codec for kind, codec in streams if kind == "Audio"]
    others = tuple(f"{kind.lower()}:{codec}" for kind, codec in streams if kind != "Audio")
    match = _DURATION_RE.search(text)
    duration = int(match[1]) * 3600 + int(match[2]) * 60 + float(match[3]) if match else None
    return RecordingProbe(fmt_match[1] if fmt_match else "?", audio[0] if audio else None, others, duration)


def import_recording(src: Path, dst: Path, *, max_seconds: float = 600.0) -> TakeInfo:
    """Bring a creator's recording (WAV, MP3, M4A, FLAC, OGG) into the project format.

    The file is probed before anything is decoded, so a picture renamed ``.wav`` or a two-hour
    file is refused at once; decoding is capped at ``max_seconds`` anyway, because a container's
    duration can lie. Refusals are `InputError`s naming the file and what to do.
    """
    import numpy as np

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise InputError(f"recording {src} does not exist; pick the file again")
    if src.stat().st_size == 0:
        raise InputError(f"{src.name} is empty (0 bytes); the upload or export did not finish, try again")
    probe = probe_recording(src)
    if probe.audio_codec is None:
        seen = ", ".join(probe.other_streams) or "no streams at all"
        raise InputError(
            f"{src.name} is not audio (it is {probe.format_name} with {seen}); upload a WAV, MP3, M4A, FLAC or OGG"
        )
    if probe.duration_s is not None and probe.duration_s > max_seconds:
        raise InputError(
            f"{src.name} is {probe.duration_s / 60:.1f} minutes long, over the {max_seconds / 60:.0f}-minute limit "
            "for one recording; trim it to the line you need"
        )
    ffmpeg, _ = ffmpeg_tools()
    proc = subprocess.run(
        [ffmpeg, "-v", "error", "-nostdin", "-i", str(src), "-t", f"{max_seconds + 1.0:.3f}", "-vn", "-sn", "-dn",
         "-ac", "1", "-ar", str(PROJECT_SAMPLE_RATE), "-f", "f32le", "-acodec", "pcm_f32le", "pipe:1"],
        capture_output=True, timeout=_DECODE_TIMEOUT_S, check=False,
    )
    errors = proc.stderr.decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        reason = (errors.splitlines() or ["decoder failed"])[-1]
        raise InputError(f"{src.name} could not be decoded ({reason}); it may be corrupt, re-export it")
    samples = np.frombuffer(proc.stdout, dtype=np.float32)  # read-only view; never modified in place
    decoded_s = len(samples) / PROJECT_SAMPLE_RATE
    if len(samples) == 0:
        raise InputError(f"{src.name} has no audio samples (zero length); record or export it again")
    if decoded_s > max_seconds:
        raise InputError(
            f"{src.name} is longer than the {max_seconds / 60:.0f}-minute limit for one recording; trim it"
        )
    if probe.duration_s and probe.duration_s > 0.5 and decoded_s < _TRUNCATED_SHARE * probe.duration_s:
        raise InputError(
            f"{src.name} is truncated: its header promises {probe.duration_s:.1f} s but only {decoded_s:.1f} s "
            "could be decoded; upload the complete file"
        )
    peak = float(np.max(np.abs(samples)))
    if peak <= 0 or 20 * math.log10(peak) < SILENCE_PEAK_DBFS:
        raise InputError(
            f"{src.name} is silent (peak below {SILENCE_PEAK_DBFS:.0f} dBFS); check the microphone and record again"
        )
    write_wav(dst, samples, PROJECT_SAMPLE_RATE)
    return measure(np.clip(samples, -1.0, 1.0), PROJECT_SAMPLE_RATE, dst)
