"""The tool-calling path end to end against the embedded llama.cpp server (`chatml-function-calling`,
the shipped SmolLM2-135M): real process, real model, no network.

The demo model chooses tools badly, and that is allowed: what it returns must be validated by the
tools' pydantic argument models (a bad call is refused with a ToolError, never run), the session
must never crash, and canon and the ledger must stay unchanged until the director decides (only the
director's direct instructions, undo / dub / pronounce, write at once, and they are logged as such).
"""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from agent.context import Targets
from agent.llm import OpenAIChatModel
from agent.llm_server import EmbeddedLLMServer
from agent.router import ToolCallingRouter, router_for
from agent.tools import TOOLS, ToolCall, ToolError, call
from memory.canon import Canon
from memory.project import create_project
from tests.router_table import build_fixture
from ui.session import DirectorSession

pytestmark = pytest.mark.slow

FIXTURE_TARGETS = Targets(characters=3, locations=2, props=1, episodes=1, scenes=3)
# a proposal and a structural edit (each turn costs the 135M model about a minute on 2 CPU cores)
UTTERANCES = ["make Aiko older", "swap scenes 2 and 3"]
DIRECT = ("undo", "dub", "pronounce")   # the director's own instructions: logged writes, no card


@pytest.fixture(scope="module")
def llm() -> Iterator[OpenAIChatModel]:
    with EmbeddedLLMServer() as server:
        yield OpenAIChatModel(base_url=server.start(), model=server.model_id, json_mode="json_object", timeout=300,
                              description="SmolLM2-135M (llama.cpp, chatml-function-calling)")


def test_native_tool_calls_come_back_in_the_wire_format_and_are_validated(llm):
    schemas = [tool.schema() for tool in TOOLS.values()]
    seen = 0
    for text in UTTERANCES[:1]:
        reply = llm.chat_with_tools([{"role": "system", "content": "You are a director's assistant; call tools."},
                                     {"role": "user", "content": text}], schemas)
        assert llm.tool_form == "tools"     # the server takes `tools=[…]` natively
        assert set(reply) == {"content", "tool_calls"}
        for raw in reply["tool_calls"]:
            assert isinstance(raw["name"], str) and isinstance(raw["arguments"], str) and raw["id"]
            seen += 1
            try:
                made = call(raw["name"], json.loads(raw["arguments"]))
            except (ToolError, json.JSONDecodeError):
                continue   # a bad choice, refused by name and arguments: what the router sends back once
            assert isinstance(made, ToolCall) and isinstance(made.args, TOOLS[made.name].args)
    assert seen >= 1   # the model called tools at least once (it may choose badly)


@pytest.fixture
def session(tmp_path, llm) -> Iterator[DirectorSession]:
    project = create_project(tmp_path, "Fox Rain")
    with Canon(project.canon_path) as c:
        build_fixture(c)
    s = DirectorSession(project, llm, targets=FIXTURE_TARGETS)
    s.start()
    s.send("A shrine maiden hears rain spirits.")
    if s.view().awaiting_decision:
        s.decide({"type": "skip"})
    yield s
    s.close()


def _canon_lines(s: DirectorSession) -> list[dict]:
    return [e for e in s.ledger.entries() if e.get("actor") in ("human", "auto")
            and e.get("action") in ("accept", "edit", "upload", "revert")]


def test_director_utterances_through_the_model_never_crash_and_wait_for_a_decision(session):
    s = session
    assert isinstance(router_for(s.context.llm), ToolCallingRouter)
    for text in UTTERANCES:
        revs, decided = s.canon.revision_count(), _canon_lines(s)
        view = s.send(text)                      # whatever the model chose: no exception reaches here
        said = [m["content"] for m in view.messages[-3:]]
        assert any(said), text
        new = _canon_lines(s)[len(decided):]
        if s.canon.revision_count() != revs:     # only a direct instruction writes, and it is logged
            assert new and all(e["action"] in ("revert", "edit") for e in new), (text, new)
            assert all(e["action"] == "revert" or e["record_id"] in ("glossary", "lexicon") for e in new), new
            continue
        assert new == [], (text, new)
        if view.awaiting_decision and view.pending.get("kind") != "input":
            # a proposal is on the card: still nothing in canon, and a rejection keeps it that way
            assert s.canon.revision_count() == revs
            view = s.decide({"type": "skip"})
            assert s.canon.revision_count() == revs and _canon_lines(s) == decided
    assert s.canon.revision_count() >= 1
