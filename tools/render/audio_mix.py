"""The episode's sound: dialogue takes on the timeline, a ducked music bed, loudness to a target.

All in float32 numpy at 48 kHz mono, which is cheap next to the video (a 60 s mix is ~3 M samples).
Loudness is ITU-R BS.1770 integrated (pyloudnorm); true peak is estimated by 4x oversampling.
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memory.errors import InputError
from tools.render.spec import EpisodeSpec, frame_plan, total_frames

RATE = 48_000
BLOCK_S = 0.01             # envelope resolution for ducking
DUCK_ATTACK_S = 0.06
DUCK_RELEASE_S = 0.45
DUCK_THRESHOLD_DB = -45.0  # dialogue RMS above this ducks the music
MUSIC_FADE_OUT_S = 2.0
MUSIC_FADE_IN_S = 0.3
LIMITER_WINDOW_S = 0.004


@dataclass(frozen=True)
class MixReport:
    wav: Path
    samples: int
    loudness_lufs: float       # after normalisation (-inf when silent)
    true_peak_db: float
    gain_db: float
    limited: bool


def read_take(path: Path, shot_id: str) -> tuple[np.ndarray, int]:
    """A take as mono float32 at its own rate; InputError names the take when it is empty or bad."""
    import soundfile as sf

    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises its own LibsndfileError / RuntimeError
        raise InputError(f"shot {shot_id}: take {path} is not a readable WAV ({exc}); re-voice the line") from exc
    if data.shape[0] == 0:
        raise InputError(f"shot {shot_id}: take {path} has zero length; re-voice the line")
    return data.mean(axis=1), int(sr)


def _to_rate(audio: np.ndarray, sr: int) -> np.ndarray:
    if sr == RATE:
        return audio
    import soxr

    return soxr.resample(audio, sr, RATE).astype(np.float32)


def decode_music(path: Path, ffmpeg: str, seconds: float | None = None) -> np.ndarray:
    """Any audio file -> mono float32 at 48 kHz via ffmpeg; InputError names a file that is not audio.

    With ``seconds``, only that much is read and decoded (ffmpeg ``-t`` on the input): an hour-long
    bed under a one-minute episode costs one minute of decoding, not an hour."""
    limit = ["-t", f"{max(seconds, 1 / RATE):.6f}"] if seconds is not None else []
    proc = subprocess.run([ffmpeg, "-v", "error", "-nostdin", *limit, "-i", str(path), "-vn", "-f", "f32le",
                           "-ac", "1", "-ar", str(RATE), "-"], capture_output=True, check=False)
    audio = np.frombuffer(proc.stdout, np.float32)
    if proc.returncode != 0 or audio.size == 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no audio stream"]
        raise InputError(f"music file {path} is not audio ({tail[0]}); pick an MP3/WAV/OGG/M4A bed")
    return audio.copy()


def _smooth_envelope(active: np.ndarray) -> np.ndarray:
    """One-pole attack/release smoothing of a 0/1 block signal (100 blocks a second)."""
    up = 1 - np.exp(-BLOCK_S / DUCK_ATTACK_S)
    down = 1 - np.exp(-BLOCK_S / DUCK_RELEASE_S)
    out = np.empty(len(active), np.float32)
    level = 0.0
    for i, target in enumerate(active):
        level += (target - level) * (up if target > level else down)
        out[i] = level
    return out


def duck_gain(dialogue: np.ndarray, duck_db: float) -> np.ndarray:
    """Per-sample linear gain for the music: ``duck_db`` under speech, 0 dB elsewhere."""
    block = int(RATE * BLOCK_S)
    n = len(dialogue) // block + 1
    padded = np.zeros(n * block, np.float32)
    padded[:len(dialogue)] = dialogue
    rms = np.sqrt((padded.reshape(n, block) ** 2).mean(axis=1) + 1e-12)
    active = (20 * np.log10(rms) > DUCK_THRESHOLD_DB).astype(np.float32)
    env = _smooth_envelope(active)
    gain_db = duck_db * env
    centres = (np.arange(n) + 0.5) * block
    return (10 ** (np.interp(np.arange(len(dialogue)), centres, gain_db) / 20)).astype(np.float32)


def oversampled_peaks(x: np.ndarray, chunk: int = 10 * RATE, pad: int = 256) -> np.ndarray:
    """Per-sample peak of the 4x-oversampled signal (float32, len(x)), in chunks so a long mix never
    holds a 4x float64 copy of itself."""
    from scipy.signal import resample_poly

    out = np.empty(len(x), np.float32)
    for a in range(0, len(x), chunk):
        b = min(len(x), a + chunk)
        lo, hi = max(0, a - pad), min(len(x), b + pad)
        over = np.abs(resample_poly(x[lo:hi].astype(np.float64), 4, 1))
        seg = over[(a - lo) * 4:(b - lo) * 4].reshape(-1, 4).max(axis=1)
        out[a:b] = np.maximum(seg, np.abs(x[a:b]))
    return out


def true_peak_db(x: np.ndarray) -> float:
    """True-peak estimate (dBTP) by 4x polyphase oversampling."""
    if x.size == 0:
        return float("-inf")
    peak = float(oversampled_peaks(x).max())
    return 20 * np.log10(peak) if peak > 0 else float("-inf")


def limit(x: np.ndarray, ceiling_db: float) -> np.ndarray:
    """A look-ahead peak limiter on the oversampled peaks: gain never exceeds what each sample needs
    (min-filter, then a moving average no wider than the min-filter's reach)."""
    from scipy.ndimage import minimum_filter1d, uniform_filter1d

    ceiling = 10 ** (ceiling_db / 20)
    need = np.minimum(1.0, ceiling / np.maximum(oversampled_peaks(x), 1e-9)).astype(np.float32)
    w = max(1, int(RATE * LIMITER_WINDOW_S))
    gain = uniform_filter1d(minimum_filter1d(need, 2 * w + 1), w, mode="nearest")
    gain = np.minimum(gain, need)
    return (x * gain).astype(np.float32)


def loudness_lufs(x: np.ndarray) -> float:
    import pyloudnorm

    if len(x) < RATE // 2:
        x = np.pad(x, (0, RATE // 2 - len(x)))
    return float(pyloudnorm.Meter(RATE).integrated_loudness(x.astype(np.float64)))


def normalise(x: np.ndarray, target_lufs: float, ceiling_db: float) -> tuple[np.ndarray, float, float, float, bool]:
    """Gain to the target loudness, then limit if the true peak is over the ceiling; re-measure and
    make up the loudness the limiter took (a few passes at most)."""
    loud = loudness_lufs(x)
    if not np.isfinite(loud):
        return x, loud, true_peak_db(x), 0.0, False
    total_gain, limited = 0.0, False
    margin = 0.3                               # AAC encoding adds a little overshoot
    for _ in range(4):
        g = target_lufs - loud
        total_gain += g
        x = (x * 10 ** (g / 20)).astype(np.float32)
        if true_peak_db(x) > ceiling_db - margin:
            x = limit(x, ceiling_db - margin)
            limited = True
        loud = loudness_lufs(x)
        if abs(loud - target_lufs) < 0.2:
            break
    return x, loud, true_peak_db(x), total_gain, limited


def mix_episode_audio(spec: EpisodeSpec, out_wav: Path, ffmpeg: str) -> MixReport:
    """Write the episode's mixed 48 kHz mono WAV, exactly as long as the video."""
    import soundfile as sf

    plan = frame_plan(spec)
    n = round(total_frames(plan) * RATE / spec.fps)
    dialogue = np.zeros(n, np.float32)
    for f, shot in zip(plan, spec.shots):
        shot_start = f.start / spec.fps
        for take in shot.takes:
            audio, sr = read_take(take.wav, shot.shot_id)
            audio = _to_rate(audio, sr)
            at = round((shot_start + take.start - shot.offset_s) * RATE)
            a, b = max(0, at), min(n, at + len(audio))   # a take may run on (an L-cut)
            if shot.is_piece:   # a piece of a shot plays only its own stretch of the takes
                a, b = max(a, round(shot_start * RATE)), min(b, round((f.start + f.length) / spec.fps * RATE))
            if b > a:
                dialogue[a:b] += audio[a - at:b - at]
    mix = dialogue
    if spec.music is not None:
        music = decode_music(spec.music, ffmpeg, seconds=n / RATE)
        reps = -(-n // len(music))
        music = np.tile(music, reps)[:n] if reps > 1 else music[:n].copy()
        fade_in = min(n, int(MUSIC_FADE_IN_S * RATE))
        fade_out = min(n, int(MUSIC_FADE_OUT_S * RATE))
        music[:fade_in] *= np.linspace(0, 1, fade_in, dtype=np.float32)
        music[n - fade_out:] *= np.linspace(1, 0, fade_out, dtype=np.float32)
        music *= 10 ** (spec.music_gain_db / 20) * duck_gain(dialogue, spec.duck_db)
        mix = dialogue + music
    mix, loud, peak, gain, limited = normalise(mix, spec.target_lufs, spec.true_peak_db)
    tmp = out_wav.with_name(out_wav.name + ".part")
    sf.write(str(tmp), mix, RATE, subtype="FLOAT", format="WAV")
    tmp.replace(out_wav)
    return MixReport(out_wav, n, loud, peak, gain, limited)
