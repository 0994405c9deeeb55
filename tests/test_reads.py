"""Reads never wait for a generation (issue 9, point 8).

A chat model that hangs (a threading.Event) holds the session's write mutex in another thread, as a
slow LLM call does; every read the studio's page load, bible, history and decisions tabs use must
answer at once from SQLite and the last checkpoint.
"""
from __future__ import annotations

import threading
import time

import pytest

from agent.context import Targets
from memory.project import create_project
from tests.fakes import ScriptedChatModel, accept_vision
from ui.session import DirectorSession


class HangingModel(ScriptedChatModel):
    """The scripted model, hanging inside the character generation until released."""

    def __init__(self) -> None:
        super().__init__()
        self.entered, self.release = threading.Event(), threading.Event()

    def complete(self, messages, *, json_schema=None, **kw):
        if (json_schema or {}).get("title") == "CharacterProposal":
            self.entered.set()
            assert self.release.wait(60), "the test never released the model"
        return super().complete(messages, json_schema=json_schema, **kw)


def test_reads_answer_within_a_second_while_the_llm_hangs(tmp_path):
    model = HangingModel()
    project = create_project(tmp_path, "Fox Rain")
    with DirectorSession(project, model, targets=Targets(characters=1, locations=1, props=0)) as s:
        s.start()
        view = accept_vision(s, s.send("A shrine maiden hears rain spirits."))
        assert view.pending["kind"] == "series"
        errors: list[BaseException] = []

        def accept() -> None:
            try:
                s.decide({"type": "accept"})         # commits the series, then generates a character
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        worker = threading.Thread(target=accept)
        worker.start()
        try:
            assert model.entered.wait(30), "the generation never started"
            timings = {}
            for name, read in [("view", s.view), ("records", s.records), ("history", lambda: s.history("series")),
                               ("ledger", s.ledger.entries), ("storyboard", s.storyboard), ("outline", s.outline),
                               ("voices", s.voices)]:
                t0 = time.monotonic()
                result = read()
                timings[name] = time.monotonic() - t0
                assert result is not None
            assert max(timings.values()) < 1.0, timings
            during = s.view()
            assert not during.stalled            # busy, not broken: no "press Retry" while it thinks
            assert [r.id for r in s.records()["series"]] == ["series"]
            assert {e["record_id"] for e in s.ledger.entries() if e["actor"] == "human"} == {"vision", "series", "style"}
        finally:
            model.release.set()
            worker.join(60)
        assert not errors and not worker.is_alive()
        assert s.view().pending["kind"] == "character"


@pytest.mark.parametrize("read", ["view", "records", "storyboard"])
def test_reads_do_not_take_the_session_mutex(tmp_path, read):
    """Even with the write mutex held by another thread, a read returns."""
    project = create_project(tmp_path, "Fox Rain")
    with DirectorSession(project, ScriptedChatModel()) as s:
        s.start()
        held, done = threading.Event(), threading.Event()

        def hold() -> None:
            with s._mutex:
                held.set()
                done.wait(30)

        holder = threading.Thread(target=hold)
        holder.start()
        try:
            assert held.wait(10)
            t0 = time.monotonic()
            getattr(s, read)()
            assert time.monotonic() - t0 < 1.0
        finally:
            done.set()
            holder.join(30)
