"""A node error never locks the project (issue 9, point 6): every step is contained by agent.guard.

Real graph, checkpointer, canon and animatic painter; failures are injected at the painter Protocol
(a painter that raises) or by deleting files under an open card, as a director could.
"""
from __future__ import annotations

import shutil

import pytest
from langgraph.types import Command

from agent.context import Targets
from agent.guard import contained, describe
from memory.errors import InputError
from memory.project import create_project
from tests.fakes import ScriptedChatModel, accept_vision
from tools.backends.animatic import AnimaticPainter
from ui.session import DirectorSession

TARGETS = Targets(characters=1, locations=1, props=0, episodes=1, scenes=1)


class FlakyPainter(AnimaticPainter):
    """The animatic painter, failing with `error` while `failures` lasts (a Protocol-level fake)."""

    def __init__(self, error: BaseException | None = None, failures: int = 0) -> None:
        super().__init__()
        self.error, self.failures = error, failures

    def paint(self, request, out):
        if self.failures and self.error is not None:
            self.failures -= 1
            raise self.error
        return super().paint(request, out)


def _to_reference(s: DirectorSession):
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while view.pending["kind"] != "reference":
        view = s.decide({"type": "accept"})
    return view


@pytest.fixture
def project(tmp_path):
    return create_project(tmp_path, "Fox Rain")


def test_deleting_the_drafts_under_an_open_card_gives_a_failure_card_not_a_lock(project):
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(),
                         candidates=1) as s:
        _to_reference(s)
        shutil.rmtree(project.root / "assets" / "drafts")
        view = s.decide({"type": "accept"})
        assert view.pending["kind"] == "reference" and "is gone" in view.pending["failure"]
        assert "Redo" in view.pending["failure"] and "Skip" in view.pending["failure"]
        assert s.canon.live("ref-character-aiko") is None
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(),
                         candidates=1) as s:
        view = s.start()                                    # reopening works: no exception
        assert view.pending["failure"] and not view.stalled
        view = s.decide({"type": "redo"})                   # Redo: fresh candidates
        assert view.pending["data"]["candidates"] and not view.pending.get("failure")
        s.decide({"type": "accept"})
        assert s.canon.live("ref-character-aiko") is not None
    failed = [e for e in s.ledger.entries() if e["action"] == "step-failed"]
    assert len(failed) == 1 and "commit" not in failed[0]["note"] and "is gone" in failed[0]["note"]


def test_an_unexpected_exception_in_a_step_is_a_card_with_its_type_and_redo_retries(project):
    painter = FlakyPainter()
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=1) as s:
        _to_reference(s)
        painter.error, painter.failures = RuntimeError("CUDA out of memory"), 1
        view = s.decide({"type": "redo"})
        assert view.pending["kind"] == "reference" and view.pending["data"] is None
        assert "Making the proposal failed: RuntimeError: CUDA out of memory" in view.pending["failure"]
        assert any("CUDA out of memory" in m["content"] for m in view.messages)
        view = s.retry()                                    # Retry on a failure card: redo the step
        assert view.pending["data"]["candidates"] and not view.pending.get("failure")


def test_skip_leaves_a_broken_step_and_goes_back_to_the_interrupted_task(project):
    painter = FlakyPainter()
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=1) as s:
        first = _to_reference(s)
        painter.error, painter.failures = KeyError("layer"), 99      # this image always fails now
        view = s.decide({"type": "open", "task": {"kind": "background", "subject": "location-hilltop-shrine"}})
        assert "KeyError" in view.pending["failure"]
        painter.failures = 0
        view = s.skip()
        assert view.pending["kind"] == "reference" and view.pending["data"]["subject"] == "character-aiko"
        assert not view.pending.get("failure") and first.pending["kind"] == "reference"
        assert any("Skipped the background step" in m["content"] for m in view.messages[-3:])
        skips = [e for e in s.ledger.entries() if e["action"] == "skip"]
        assert len(skips) == 1 and skips[0]["actor"] == "human" and skips[0]["kind"] == "background"


def test_skip_with_nothing_interrupted_waits_for_a_message(project):
    painter = FlakyPainter(RuntimeError("painter crashed"), failures=99)
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=1) as s:
        view = _to_reference_failing(s)
        assert "RuntimeError: painter crashed" in view.pending["failure"]
        view = s.skip()
        assert view.pending["kind"] == "input" and "Skipped the reference step" in view.messages[-1]["content"]
        with pytest.raises(InputError, match="nothing to skip"):
            s.skip()


def _to_reference_failing(s: DirectorSession):
    s.start()
    view = s.send("A shrine maiden hears rain spirits.")
    while not view.pending.get("failure"):
        view = s.decide({"type": "accept"})
    return view


def test_an_invalid_resume_value_inside_the_graph_is_contained(project):
    """`open` with an unknown kind reaching the graph (an old checkpoint, another client) is a card."""
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=AnimaticPainter(),
                         candidates=1) as s:
        _to_reference(s)
        with pytest.raises(InputError, match="cannot open 'villain'"):
            s.decide({"type": "open", "task": {"kind": "villain", "subject": "x"}})
        s.graph.invoke(Command(resume={"type": "open", "task": {"kind": "villain", "subject": "x"}}),
                       s.config, context=s.context)
        view = s.view()
        assert "cannot open 'villain'" in view.pending["failure"] and not view.stalled
        view = s.decide({"type": "redo"})
        assert view.pending["kind"] == "reference" and view.pending["data"]["candidates"]


def test_a_crash_mid_step_then_a_failing_resume_opens_with_a_card(project):
    painter = FlakyPainter()
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=1) as s:
        _to_reference(s)
        painter.error, painter.failures = KeyboardInterrupt(), 1     # the process dies inside propose
        with pytest.raises(KeyboardInterrupt):
            s.decide({"type": "redo"})
        assert s.view().stalled
    broken = FlakyPainter(FileNotFoundError(2, "No such file or directory", "assets/drafts/x.png"), failures=99)
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=broken, candidates=1) as s:
        view = s.start()                 # resumes propose, which fails again: a card, not an exception
        assert "FileNotFoundError" in view.pending["failure"] and "assets/drafts/x.png" in view.pending["failure"]
        view = s.skip()
        assert view.pending["kind"] == "input"


def test_skip_leaves_a_stalled_step_whose_resume_keeps_failing(project):
    painter = FlakyPainter()
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS, painter=painter, candidates=1) as s:
        _to_reference(s)
        painter.error, painter.failures = KeyboardInterrupt(), 1
        with pytest.raises(KeyboardInterrupt):
            s.decide({"type": "redo"})
        assert s.view().stalled
        view = s.skip()                                     # no card to decide on: jump out of the step
        assert view.pending["kind"] == "input" and not view.stalled
        assert "Skipped the propose step" in view.messages[-1]["content"]
        view = s.send("Make Aiko older")                    # the room works again
        assert view.pending is not None


def test_contained_passes_interrupts_through_and_keeps_the_signature():
    import inspect

    from agent import nodes

    wrapped = contained("review", nodes.review)
    assert inspect.signature(wrapped) == inspect.signature(nodes.review)
    from typing import get_type_hints

    assert get_type_hints(wrapped)["return"] == get_type_hints(nodes.review)["return"]


@pytest.mark.parametrize("exc, text", [
    (FileNotFoundError(2, "No such file or directory", "a.png"), "FileNotFoundError: [Errno 2] No such file or directory: 'a.png'"),
    (KeyError("villain"), "KeyError: 'villain'"),
    (InputError("the note is too long"), "the note is too long"),
    (RuntimeError("x" * 1000), "RuntimeError: " + "x" * 400 + "…"),
    (ValueError(""), "ValueError: (no message)"),
])
def test_describe_names_the_error_type_unless_it_is_storyreels_own(exc, text):
    assert describe(exc) == text


class FailingAnswers(ScriptedChatModel):
    """Answers questions (no schema) with an unexpected error while `failures` lasts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def complete(self, messages, *, json_schema=None, **kw):
        if not json_schema and self.failures:
            self.failures -= 1
            raise ConnectionResetError(104, "Connection reset by peer")
        return super().complete(messages, json_schema=json_schema, **kw)


def test_a_failing_answer_keeps_the_card_and_redo_answers_again(project):
    model = FailingAnswers(failures=1)
    with DirectorSession(project, model, targets=TARGETS) as s:
        s.start()
        card = accept_vision(s, s.send("A shrine maiden hears rain spirits.")).pending
        assert card["kind"] == "series"
        view = s.send("What does the shrine look like?")
        assert "Answering your message failed: ConnectionResetError" in view.pending["failure"]
        assert view.pending["data"] == card["data"]          # the proposal is still there
        view = s.decide({"type": "redo"})                   # Redo answers the same message again
        assert view.pending["proposal_id"] == card["proposal_id"] and not view.pending.get("failure")
        assert view.messages[-1]["content"] == "She wears a red scarf."
        assert s.decide({"type": "accept"}).pending["kind"] == "character"


def test_a_bad_message_resumed_into_the_input_wait_is_a_card_and_redo_waits_again(project):
    with DirectorSession(project, ScriptedChatModel(), targets=TARGETS) as s:
        assert s.start().pending["kind"] == "input"
        s.graph.invoke(Command(resume={"type": "chat", "text": ""}), s.config, context=s.context)
        view = s.view()
        assert "Reading your message failed: the message is empty" in view.pending["failure"]
        view = s.decide({"type": "redo"})
        assert view.pending["kind"] == "input" and not s.canon.list("series")
        assert s.send("A shrine maiden hears rain spirits.").pending["kind"] == "vision"
