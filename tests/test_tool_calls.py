"""The tool-calling router against a local OpenAI-compatible server speaking the real `tool_calls`
wire format: single and parallel calls, a bad argument and an unknown tool (sent back to the model
once, then a clear message), a prose reply (the offline router reads the message), an endpoint with
no tool calling (JSON actions), and a configured model driving a real session end to end."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.context import Targets
from agent.llm import OpenAIChatModel
from agent.router import ToolCallingRouter, router_for, router_name
from memory.canon import Canon
from memory.project import create_project
from tests.fake_tools_openai import FakeToolsServer
from tests.router_table import build_fixture, open_fixture
from ui.session import DirectorSession


@pytest.fixture
def canon(tmp_path):
    c = open_fixture(tmp_path / "p")
    yield c
    c.close()


def route(server, canon, text, pending=None):
    llm = OpenAIChatModel(base_url=server.url, model="fake-tools")
    router = router_for(llm)
    assert isinstance(router, ToolCallingRouter)
    return router.route(text, SimpleNamespace(canon=canon), {"pending": pending}), llm


def calls_of(result):
    return [(c.name, c.target) for c in result.calls]


def test_a_single_call_is_validated_and_its_references_resolved(canon):
    with FakeToolsServer([{"calls": [("revise", {"record": "Aiko", "instruction": "make her older"})]}]) as srv:
        result, _ = route(srv, canon, "Can you make Aiko older?")
        sent = srv.tool_requests()[0]
    assert calls_of(result) == [("revise", "character-aiko")]
    assert result.calls[0].args.instruction == "make her older"
    names = {t["function"]["name"] for t in sent["tools"]}
    assert {"ask_bible", "status", "revise", "reframe_shot", "dub", "undo"} <= names and sent["tool_choice"] == "auto"
    assert "character-aiko" in sent["messages"][0]["content"]          # the model sees canon's ids


def test_parallel_calls_keep_their_order(canon):
    turn = {"calls": [("revise", {"record": "ren", "instruction": "older"}),
                      ("reframe_shot", {"shot": "scene 2 shot 1", "framing": "close-up"}),
                      ("dub", {"language": "Japanese"})]}
    with FakeToolsServer([turn]) as srv:
        result, _ = route(srv, canon, "make Ren older, shot 4 a close-up, and dub it into Japanese")
    assert calls_of(result) == [("revise", "character-ren"), ("reframe_shot", "scene-ep1-2-s1"),
                                ("dub", "Japanese")]


@pytest.mark.parametrize("bad", [
    ("reframe_shot", {"shot": "shot 99", "framing": "close-up"}),          # no such shot
    ("reframe_shot", {"shot": "scene-ep1-1-s1", "framing": "very close"}),  # not a framing
    ("revise", "{\"record\": \"Aiko\", "),                                  # broken JSON
    ("delete_everything", {}),                                              # an unknown tool
], ids=["unknown-record", "bad-enum", "broken-json", "unknown-tool"])
def test_a_bad_call_goes_back_to_the_model_once(canon, bad):
    good = ("reframe_shot", {"shot": "scene-ep1-1-s1", "framing": "close-up"})
    with FakeToolsServer([{"calls": [bad]}, {"calls": [good]}]) as srv:
        result, _ = route(srv, canon, "make the first shot a close-up")
        second = srv.tool_requests()[1]["messages"]
    assert calls_of(result) == [("reframe_shot", "scene-ep1-1-s1")]
    tool_msgs = [m for m in second if m["role"] == "tool"]
    assert tool_msgs and tool_msgs[0]["content"].startswith("error:")
    assert second[-2]["tool_calls"][0]["function"]["name"] == bad[0]       # the model's call, as it made it


def test_a_call_that_stays_bad_is_a_clear_message_for_the_director(canon):
    bad = {"calls": [("recast", {"character": "Hiroshi", "instruction": "calmer"})]}
    with FakeToolsServer([bad, bad, bad]) as srv:
        result, _ = route(srv, canon, "Hiroshi should sound calmer")
        asked = len(srv.tool_requests())
    assert asked == 2 and not result.calls                                 # bounded: asked twice, no more
    assert "Hiroshi" in result.failure and "Aiko" in result.failure        # names the bad value and the choices


def test_a_prose_reply_falls_back_to_the_offline_router(canon):
    with FakeToolsServer([{"content": "Sure, I'll make Aiko older!"}]) as srv:
        result, _ = route(srv, canon, "make Aiko older")
    assert calls_of(result) == [("revise", "character-aiko")]
    assert "prose" in result.note


def test_an_endpoint_without_tool_calls_gets_json_actions(canon):
    turn = {"calls": [("swap", {})]}
    fixed = {"calls": [("reorder", {"what": "shots", "new_order": [2, 1], "scene": "scene 2"})]}
    with FakeToolsServer([turn, fixed], tools_supported=False) as srv:
        result, llm = route(srv, canon, "swap the two shots of scene 2")
        formats = [r.get("response_format", {}) for r in srv.requests if "tools" not in r]
    assert calls_of(result) == [("reorder", "scene-ep1-2")]
    assert llm.tool_form == "json_action" and "JSON actions" in router_name(llm)
    assert formats and all(f for f in formats)                            # schema-constrained replies


def test_router_choice_follows_the_model():
    class Demo:
        is_demo, description = True, "demo"

        def chat_with_tools(self, *a, **k):  # pragma: no cover - never called for the demo model
            raise AssertionError

    assert "offline" in router_name(Demo())
    assert "offline" in router_name(SimpleNamespace(is_demo=False, description="scripted"))
    assert "tool calling" in router_name(OpenAIChatModel(base_url="http://127.0.0.1:9/v1", model="m"))


def test_a_configured_model_drives_the_session_and_nothing_changes_before_accept(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    with Canon(project.canon_path) as c:
        build_fixture(c)
    turns = [{"calls": [("revise", {"record": "Aiko", "instruction": "make her older"}),
                        ("remove", {"record": "scene-ep1-1-s2"})]}]
    targets = Targets(characters=3, locations=2, props=1, episodes=1, scenes=3)
    with FakeToolsServer(turns) as srv:
        llm = OpenAIChatModel(base_url=srv.url, model="fake-tools")
        srv.model.script = {"CharacterProposal": [{**_aiko(), "age": "30"}]}
        with DirectorSession(project, llm, targets=targets) as s:
            s.start()
            s.send("A premise.")                                            # nothing left to plan
            assert s.view().pending["kind"] == "input"
            revs, decided = s.canon.revision_count(), _decisions(s)
            view = s.send("make Aiko older and drop shot 2")
            assert view.pending["kind"] == "character" and view.pending["target_id"] == "character-aiko"
            assert view.pending["data"]["age"] == "30"
            assert s.canon.revision_count() == revs and _decisions(s) == decided
            view = s.decide({"type": "accept"})
            assert s.canon.get("character-aiko").data["age"] == "30"
            assert view.pending["kind"] == "shots" and view.pending["target_id"] == "scene-ep1-1"
            assert len(view.pending["data"]["shots"]) == 2
            assert s.router_name.startswith("model tool calling")


def _aiko():
    from tests.fakes import CHARACTERS

    return dict(CHARACTERS[0])


def _decisions(s):
    return [e for e in s.ledger.entries() if e.get("actor") in ("human", "auto")]


# ----------------------------------------------------------------------------- storyreel chat --jsonl


@pytest.mark.slow
def test_chat_jsonl_speaks_one_json_event_per_line(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    project = create_project(tmp_path, "Fox Rain", targets={"characters": 3, "locations": 2, "props": 1,
                                                           "episodes": 1, "scenes": 3})
    with Canon(project.canon_path) as c:
        build_fixture(c)
    script = "\n".join([
        "A premise.",                                                     # a plain line: the premise
        json.dumps({"text": "make Aiko older"}),                          # a message as an object
        json.dumps({"type": "reject", "note": "age 30"}),                  # a decision as an object
        "/accept",                                                         # slash commands still work
        "{not json",
        json.dumps({"type": "undo", "record": "character-aiko", "rev": 1}),
        json.dumps({"type": "quit"}),
    ]) + "\n"
    turns = [{"calls": [("revise", {"record": "Aiko", "instruction": "make her older"})]}]
    with FakeToolsServer(turns) as srv:
        srv.model.script = {"CharacterProposal": [{**_aiko(), "age": "25"}, {**_aiko(), "age": "30"}]}
        out = subprocess.run([sys.executable, "-m", "ui.cli", "--projects-dir", str(tmp_path), "chat", "fox-rain",
                              "--jsonl", "--llm-url", srv.url, "--llm-model", "fake-tools"],
                             cwd=Path(__file__).resolve().parents[1], input=script, capture_output=True, text=True,
                             timeout=120, check=False, env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]   # every line is one JSON event
    kinds = [e["event"] for e in events]
    assert set(kinds) <= {"message", "proposal", "decision", "error", "waiting"}
    assert "router: model tool calling" in events[0]["text"]
    first = next(e for e in events if e["event"] == "proposal")
    assert first["kind"] == "reference"                         # the storyboard's next card, before the request
    proposals = [e for e in events if e["event"] == "proposal" and e["kind"] == "character"]
    assert proposals[0]["target"] == "character-aiko"
    assert proposals[0]["data"]["age"] == "25" and proposals[0]["title"]
    assert proposals[1]["data"]["age"] == "30"                                  # the redraft after the note
    decisions = [e for e in events if e["event"] == "decision"]
    assert [(d["type"], d["kind"], d["target"]) for d in decisions] == [
        ("reject", "character", "character-aiko"), ("accept", "character", "character-aiko")]
    assert decisions[0]["proposal_id"] == proposals[0]["proposal_id"]
    errors = [e["message"] for e in events if e["event"] == "error"]
    assert any("not valid JSON" in m for m in errors)
    assert any(e["event"] == "message" and e["role"] == "system" and "Reverted character-aiko" in e["text"]
               for e in events)
    assert kinds.count("waiting") >= 6 and events[-1]["event"] == "waiting"
    after = [e for e in events if e["event"] == "proposal"][-1]
    assert after["kind"] == "reference" and after["proposal_id"] == first["proposal_id"]   # the card came back
    assert {"event": "message", "role": "user", "text": "make Aiko older"} in events


@pytest.mark.parametrize(("line", "expected"), [
    ("make Aiko older", ("make Aiko older", None)),
    ("/accept", ("/accept", None)),
    ('{"text": "/reject too old"}', ("/reject too old", None)),
    ('{"type": "accept"}', ("/accept", None)),
    ('{"type": "skip"}', ("/skip", None)),
    ('{"type": "undo", "record": "character-aiko", "rev": 1}', ("/undo character-aiko 1", None)),
    ('{"type": "undo"}', ("/undo", None)),
    ('{"type": "reject", "note": "older"}', ("", {"type": "reject", "note": "older", "proposal_id": "card1"})),
    ('{"type": "edit", "data": {"age": "30"}, "proposal_id": "p9"}',
     ("", {"type": "edit", "data": {"age": "30"}, "proposal_id": "p9"})),
])
def test_jsonl_input_lines(line, expected):
    from ui.terminal import json_input

    assert json_input(line, "card1") == expected


@pytest.mark.parametrize(("line", "message"), [
    ("{broken", "not valid JSON"), ("[1, 2]", None), ('{"type": "dance"}', "unknown input"), ('["x"]', None),
])
def test_jsonl_bad_input_lines(line, message):
    from memory.errors import InputError
    from ui.terminal import json_input

    if message is None:   # not an object: a plain message line (it does not start with "{")
        assert json_input(line, "c") == (line, None)
        return
    with pytest.raises(InputError, match=message):
        json_input(line, "c")
