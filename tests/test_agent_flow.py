"""The approval loop end to end with a scripted model at the ChatModel boundary.

Real SQLite canon, real chroma bible, real ledger file, real langgraph checkpointer.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agent.context import Targets
from memory.errors import InputError, LLMUnavailableError, ProjectLockedError
from memory.project import create_project, open_project
from tests.fakes import ScriptedChatModel, accept_vision
from ui.cards import safe_draft
from ui.session import DirectorSession

ROOT = Path(__file__).resolve().parents[1]
SMALL = Targets(characters=2, locations=1, props=1, episodes=3, scenes=2)


@pytest.fixture
def project(tmp_path):
    return create_project(tmp_path, "Fox Rain")


@pytest.fixture
def session(project):
    s = DirectorSession(project, ScriptedChatModel(), targets=SMALL)
    yield s
    s.close()


def to_character(s: DirectorSession):
    view = s.start()
    assert view.pending["kind"] == "input"
    view = accept_vision(s, s.send("A shrine maiden hears rain spirits."))
    assert view.pending["kind"] == "series"
    return s.decide({"type": "accept"})


def test_premise_gives_series_proposal_that_is_not_canon_until_accepted(session):
    view = session.start()
    assert view.pending["kind"] == "input" and not view.awaiting_decision
    view = accept_vision(session, session.send("A shrine maiden hears rain spirits."))
    assert view.pending["kind"] == "series" and view.pending["data"]["title"] == "Fox Rain"
    assert session.canon.list("series") == [] and session.canon.list("style") == []
    view = session.decide({"type": "accept"})
    assert session.canon.get("series").data["title"] == "Fox Rain"
    assert session.canon.get("style").data["palette"][0] == "#1b2a4a"
    hits = session.bible.search("colour palette art style", k=3)
    assert "style" in [h.record_id for h in hits]
    accepted = [e for e in session.ledger.entries() if e["action"] == "accept" and e["kind"] != "vision"]
    assert {e["record_id"] for e in accepted} == {"series", "style"}
    assert all(e["actor"] == "human" and e["inputs_hash"].startswith("sha256:") for e in accepted)
    assert [e["actor"] for e in session.ledger.entries() if e["action"] == "propose" and e["kind"] != "vision"
            ] == ["assistant", "assistant"]
    assert view.pending["kind"] == "character"


def test_character_accept_lands_in_canon_bible_and_ledger(session):
    view = to_character(session)
    assert view.pending["data"]["name"] == "Aiko"
    session.decide({"type": "accept"})
    rec = session.canon.find_by_name("character", "Aiko")
    assert rec is not None and rec.rev == 1 and rec.actor == "human"
    assert session.bible.search("who wears a red scarf", kinds=["character"], k=1)[0].record_id == rec.id
    assert any(e["record_id"] == rec.id and e["action"] == "accept" for e in session.ledger.entries())


def test_edit_changes_fields_then_accepts(session):
    view = to_character(session)
    data = dict(view.pending["data"], age="29", look_tags=["green kimono", "long black hair"])
    session.decide({"type": "edit", "data": data})
    rec = session.canon.find_by_name("character", "Aiko")
    assert rec.data["age"] == "29" and rec.data["look_tags"] == ["green kimono", "long black hair"]
    assert [e["action"] for e in session.ledger.entries() if e["record_id"] == rec.id] == ["edit"]


def test_invalid_edit_is_refused_on_the_card_and_nothing_enters_canon(session):
    view = to_character(session)
    view = session.decide({"type": "edit", "data": dict(view.pending["data"], look_tags=[])})
    assert view.pending["kind"] == "character" and "look_tags" in view.pending["error"]
    assert session.canon.list("character") == []


def test_reject_with_note_reaches_the_next_prompt(session):
    view = to_character(session)
    first = view.pending["proposal_id"]
    view = session.decide({"type": "reject", "note": "make her a retired detective"})
    assert view.pending["kind"] == "character" and view.pending["proposal_id"] != first
    assert view.pending["attempt"] == 2
    last_prompt = session.llm.prompts_for("CharacterProposal")[-1]
    assert "make her a retired detective" in last_prompt and "character Aiko" in last_prompt
    assert session.canon.list("character") == []
    assert any(e["action"] == "reject" and e["note"] == "make her a retired detective"
               for e in session.ledger.entries())


def test_redo_asks_again_with_a_new_seed(session):
    to_character(session)
    seeds_before = [c["seed"] for c in session.llm.calls if c["title"] == "CharacterProposal"]
    view = session.decide({"type": "redo"})
    seeds = [c["seed"] for c in session.llm.calls if c["title"] == "CharacterProposal"]
    assert len(seeds) == len(seeds_before) + 1 and seeds[-1] != seeds_before[-1]
    assert view.pending["kind"] == "character" and view.pending["attempt"] == 2


def test_question_between_proposals_keeps_the_card(session):
    view = to_character(session)
    session.decide({"type": "accept"})            # Aiko is canon
    view = session.view()
    pid = view.pending["proposal_id"]
    view = session.send("What does Aiko wear?")
    assert view.pending["proposal_id"] == pid
    answer = view.messages[-1]["content"]
    assert "red scarf" in answer  # the model's answer plus the bible text it retrieved
    prompt = session.llm.calls[-1]["messages"][-1]["content"]
    assert "red scarf" in prompt  # retrieval from chroma reached the prompt


def test_change_request_becomes_a_revision_proposal_then_resumes(session):
    to_character(session)
    session.decide({"type": "accept"})            # Aiko accepted; Ren is on the card
    script = dict(session.llm.script)
    older = dict(session.canon.find_by_name("character", "Aiko").data, age="30")
    session.llm.script = {**script, "CharacterProposal": [older]}
    view = session.send("make Aiko older")
    assert view.pending["target_id"] == "character-aiko" and view.pending["data"]["age"] == "30"
    assert "make Aiko older" in session.llm.prompts_for("CharacterProposal")[-1]
    view = session.decide({"type": "accept"})
    assert session.canon.get("character-aiko").rev == 2
    assert session.canon.history("character-aiko")[0].data["age"] == "17"  # nothing destroyed
    assert view.pending["kind"] == "character" and view.pending["target_id"] is None  # back to Ren


def test_undo_reverts_to_an_earlier_revision_and_is_logged(session):
    view = to_character(session)
    session.decide({"type": "edit", "data": dict(view.pending["data"], age="40")})
    session.send("make Aiko younger")
    session.decide({"type": "edit", "data": dict(session.view().pending["data"], age="12")})
    assert session.canon.get("character-aiko").data["age"] == "12"
    rec = session.undo("character-aiko", 1)
    assert rec.rev == 3 and rec.data["age"] == "40"
    assert session.ledger.entries()[-1]["action"] == "revert"
    assert session.bible.search("Aiko", kinds=["character"], k=1)[0].text.count("40") >= 1
    rec = session.undo()  # the last decided change: the revert itself -> back to rev 2's data
    assert rec.rev == 4 and rec.data["age"] == "12"


def test_invalid_json_gives_a_failure_card_and_redo_recovers(project):
    model = ScriptedChatModel({"SeriesProposal": ["not json at all", "{\"title\": 3", "[]"]})
    with DirectorSession(project, model, targets=SMALL) as s:
        s.start()
        view = accept_vision(s, s.send("A premise."))
        assert view.pending["kind"] == "series" and view.pending["data"] is None
        assert "SeriesProposal" in view.pending["failure"]
        assert s.canon.list("series") == []
        assert safe_draft(view.pending) is not None   # Accept would take it (tests/test_safe_draft.py)
        view = s.decide({"type": "redo"})
        assert view.pending["data"]["title"] == "Fox Rain"


def test_unreachable_model_gives_a_clear_failure(project):
    err = LLMUnavailableError("LLM server at http://127.0.0.1:9/v1 cannot be reached (refused)")
    model = ScriptedChatModel({"SeriesProposal": [err]})
    with DirectorSession(project, model, targets=SMALL) as s:
        s.start()
        view = accept_vision(s, s.send("A premise."))
        assert "http://127.0.0.1:9/v1" in view.pending["failure"]
        assert "Redo" in view.messages[-1]["content"]


def test_ten_megabyte_paste_is_refused_and_loses_nothing(session):
    to_character(session)
    before = session.view()
    with pytest.raises(InputError, match="10,485,760 characters"):
        session.send("x" * 10 * 1024 * 1024)
    after = session.view()
    assert after.pending == before.pending and after.messages == before.messages


def test_scene_contradicting_canon_is_repaired_or_fixed(project):
    bad = {"episode": 1, "number": 1, "title": "S", "location": "Moon Base", "characters": ["Bob"],
           "action": "x", "lines": [{"speaker": "Bob", "line": "Hi", "emotion": "neutral"}]}
    model = ScriptedChatModel({"SceneProposal": [bad, bad, bad]})
    with DirectorSession(project, model, targets=SMALL) as s:
        view = s.start()
        view = accept_vision(s, s.send("premise"))
        while view.pending["kind"] != "scene":
            view = s.decide({"type": "accept"})
        scene = view.pending["data"]
        assert scene["location"] == "Hilltop Shrine"
        assert {ln["speaker"] for ln in scene["lines"]} <= {"Aiko", "Ren", "Narrator"}
        assert any("auto-fixed" in w for w in view.pending["warnings"])
        schema_prompts = [c for c in model.calls if c["title"] == "SceneProposal"]
        assert len(schema_prompts) == 3  # asked, then two repairs naming the problems
        repair = schema_prompts[1]["messages"][-1]["content"]
        assert "location" in repair and "Hilltop Shrine" in repair  # the repair names the canon


def test_full_writers_room_reaches_scenes(session):
    view = session.start()
    view = session.send("premise")
    kinds = []   # the director's vision first, then the writers' room
    while view.awaiting_decision:
        kinds.append(view.pending["kind"])
        view = session.decide({"type": "accept"})
    assert kinds == ["vision", "series", "character", "character", "location", "prop", "outline", "beats",
                     "scene", "scene", "facts"]   # the outline has 5 episodes: episode 1's story so far
    scenes = session.canon.list("scene")
    assert [r.id for r in scenes] == ["scene-ep1-1", "scene-ep1-2"]
    assert scenes[0].data["lines"][0]["id"] == "scene-ep1-1-l1"
    assert len(session.canon.list("episode")) == 5
    assert view.pending["kind"] == "input"


def test_two_sessions_on_one_project_are_refused(session, project):
    with pytest.raises(ProjectLockedError, match=str(os.getpid())):
        DirectorSession(open_project(project.root), ScriptedChatModel())


def test_resume_from_a_fresh_process_keeps_the_pending_proposal(project):
    code = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.fakes import ScriptedChatModel, accept_vision
        from memory.project import open_project
        from ui.session import DirectorSession
        s = DirectorSession(open_project({str(project.root)!r}), ScriptedChatModel())
        s.start(); accept_vision(s, s.send("A shrine maiden hears rain spirits.")); v = s.decide({{"type": "accept"}})
        print(v.pending["proposal_id"], flush=True)
        os._exit(9)   # die without closing anything, like a killed server
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 9, out.stderr
    pid = out.stdout.strip().splitlines()[-1]
    with DirectorSession(open_project(project.root), ScriptedChatModel()) as s:
        view = s.start()
        assert view.pending["proposal_id"] == pid and view.pending["kind"] == "character"
        assert [m["role"] for m in view.messages][:1] == ["user"]
        assert s.canon.get("series").data["title"] == "Fox Rain"
        view = s.decide({"type": "accept"})
        assert s.canon.find_by_name("character", "Aiko") is not None
