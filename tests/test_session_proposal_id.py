"""A decision is bound to the card it was made on: `DirectorSession.decide` / `upload` refuse a
decision whose proposal_id is not the pending card's, and nothing is applied to another card.

Real canon, bible, ledger and checkpointer; the LLM is scripted, the painter is the animatic.
"""
from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from agent.context import Targets
from memory.errors import InputError
from memory.project import create_project
from tests.fakes import CHARACTERS, ScriptedChatModel, accept_vision
from tools.backends.animatic import AnimaticPainter
from ui.session import DirectorSession

SMALL = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)


def _fingerprint(s: DirectorSession) -> tuple[str, list[tuple[str, int]]]:
    ledger = hashlib.sha256(s.project.ledger_path.read_bytes()).hexdigest()
    canon = sorted((r.id, r.rev) for r in s.canon.list(include_deleted=True))
    return ledger, canon


@pytest.fixture
def session(tmp_path):
    s = DirectorSession(create_project(tmp_path, "Fox Rain"), ScriptedChatModel(), targets=SMALL,
                        painter=AnimaticPainter(), candidates=2)
    s.start()
    accept_vision(s, s.send("A shrine maiden hears rain spirits."))
    yield s
    s.close()


@pytest.mark.parametrize("decision", [
    {"type": "accept"},
    {"type": "redo"},
    {"type": "reject", "note": "older"},
    {"type": "edit", "data": {"name": "Mina"}},
])
def test_a_decision_for_a_card_already_decided_is_refused_and_nothing_changes(session, decision):
    series = session.view().pending
    view = session.decide({"type": "accept", "proposal_id": series["proposal_id"]})
    card = view.pending
    assert card["kind"] == "character" and card["proposal_id"] != series["proposal_id"]
    before = _fingerprint(session)
    with pytest.raises(InputError) as err:
        session.decide({**decision, "proposal_id": series["proposal_id"]})   # the old card's id
    message = str(err.value)
    assert "already decided" in message and card["proposal_id"] in message and "Character" in message
    assert _fingerprint(session) == before                                  # canon and ledger untouched
    assert session.view().pending["proposal_id"] == card["proposal_id"]     # the card stays
    assert session.canon.find_by_name("character", CHARACTERS[0]["name"]) is None


def test_a_decision_naming_the_card_shown_is_applied(session):
    card = session.view().pending
    view = session.decide({"type": "accept", "proposal_id": card["proposal_id"]})
    assert session.canon.get("series").data["title"] == "Fox Rain"
    char = view.pending
    view = session.decide({"type": "edit", "proposal_id": char["proposal_id"],
                           "data": {**char["data"], "age": "31"}})
    assert session.canon.find_by_name("character", char["data"]["name"]).data["age"] == "31"


def test_a_decision_without_proposal_id_applies_to_the_pending_card(session):
    session.decide({"type": "accept"})                     # scripts and older callers
    assert session.canon.get("series").data["title"] == "Fox Rain"


def test_a_stale_decision_when_the_agent_waits_for_a_message_is_refused(tmp_path):
    with DirectorSession(create_project(tmp_path, "Rain"), ScriptedChatModel(), targets=SMALL) as s:
        view = s.start()
        assert view.pending["kind"] == "input"
        with pytest.raises(InputError, match="already decided; the card now shows no proposal"):
            s.decide({"type": "accept", "proposal_id": "0123456789ab"})


def test_proposal_id_must_be_a_string(session):
    with pytest.raises(InputError, match="proposal_id must be"):
        session.decide({"type": "accept", "proposal_id": 7})


@pytest.fixture
def panel_session(tmp_path):
    s = DirectorSession(create_project(tmp_path, "Fox Rain"), ScriptedChatModel(), targets=SMALL,
                        painter=AnimaticPainter(), candidates=2)
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] != "reference":
        view = s.decide({"type": "accept"})
    yield s
    s.close()


def test_an_edit_on_a_picture_card_never_accepts_a_candidate(panel_session):
    s = panel_session
    card = s.view().pending
    before = _fingerprint(s)
    with pytest.raises(InputError, match="no fields to edit; pick a candidate"):
        s.decide({"type": "edit", "data": {"name": "Aiko"}, "proposal_id": card["proposal_id"]})
    with pytest.raises(InputError, match="no fields to edit"):
        s.decide({"type": "edit", "data": {}})
    assert _fingerprint(s) == before and s.canon.live("ref-character-aiko") is None
    assert s.view().pending["proposal_id"] == card["proposal_id"]


def test_an_upload_for_a_card_already_decided_is_refused_before_importing(panel_session, tmp_path):
    s = panel_session
    first = s.view().pending
    s.decide({"type": "accept", "choice": 0, "proposal_id": first["proposal_id"]})
    now = s.view().pending
    assert now["proposal_id"] != first["proposal_id"]
    png = tmp_path / "mine.png"
    Image.new("RGB", (64, 96), (200, 30, 30)).save(png)
    uploads = s.project.assets_dir / "uploads"
    before = _fingerprint(s)
    with pytest.raises(InputError, match="already decided"):
        s.upload(png, proposal_id=first["proposal_id"])
    assert _fingerprint(s) == before and not (uploads.exists() and any(uploads.iterdir()))
    s.upload(png, proposal_id=now["proposal_id"])         # the card shown takes it
    assert any(uploads.iterdir())
