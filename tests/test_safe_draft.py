"""A failed field card's Accept takes the safe draft it shows, as the director's own edit."""
from __future__ import annotations

from agent.context import Targets
from memory.project import create_project
from tests.test_make import PREMISES, JunkModel
from ui.cards import card_markdown, safe_draft
from ui.headless import make_targets
from ui.session import DirectorSession


def test_accept_on_a_failed_card_takes_its_safe_draft_as_the_directors_edit(tmp_path):
    premise, junk = PREMISES["prose-and-empty-plans"]          # a character comes back as HTML
    project = create_project(tmp_path, "Junk", targets=make_targets(1).as_settings())
    with DirectorSession(project, JunkModel(junk), targets=Targets.from_settings(project.settings)) as s:
        s.start()
        view = s.send(premise)
        while not view.pending.get("failure"):
            assert view.pending["kind"] not in ("input", "shots"), view.pending["kind"]
            view = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
        card = view.pending
        assert card["kind"] == "character" and not card.get("data")
        draft = safe_draft(card)
        assert draft and draft.get("name")
        assert "**Accept** takes a safe draft" in card_markdown(card)
        view = s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        assert view.pending.get("proposal_id") != card["proposal_id"]
        made = s.canon.list("character")[-1]
        assert made.data["name"] == draft["name"] and made.actor == "human"
        decided = [e for e in s.ledger.entries() if e.get("record_id") == made.id and e["action"] in ("accept", "edit")]
        assert [(e["action"], e["actor"]) for e in decided] == [("edit", "human")]


def test_a_card_that_did_not_fail_has_no_safe_draft():
    assert safe_draft(None) is None
    assert safe_draft({"kind": "location", "data": {"name": "x"}, "draft": {"name": "y"}}) is None
    assert safe_draft({"kind": "location", "failure": "junk"}) is None                 # nothing to take
    assert safe_draft({"kind": "panel", "failure": "junk", "draft": {"x": 1}}) is None  # pictures have no form
    assert safe_draft({"kind": "location", "failure": "junk", "draft": {"name": "y"}}) == {"name": "y"}
