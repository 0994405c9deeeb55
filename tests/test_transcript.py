"""The chat transcript in its own append-only table, and the bounded tail kept in checkpointed state."""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Annotated, TypedDict

import pytest

from memory.errors import InputError, ProjectError
from memory.transcript import TAIL_MESSAGES, Transcript, bounded_messages, transcript_path


@pytest.fixture
def transcript(tmp_path: Path):
    (tmp_path / "state").mkdir()         # every project has it (memory.project.PROJECT_FOLDERS)
    store = Transcript(transcript_path(tmp_path))
    yield store
    store.close()


def test_path_is_in_the_project_state_folder(tmp_path: Path) -> None:
    assert transcript_path(tmp_path) == tmp_path / "state" / "transcript.sqlite"


def test_missing_folder_is_a_project_error(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match="does not exist"):
        Transcript(tmp_path / "nope" / "transcript.sqlite")


def test_append_tail_page_and_count(transcript: Transcript) -> None:
    for i in range(100):
        transcript.append("user" if i % 2 == 0 else "assistant", f"message {i}")
    assert transcript.count() == 100
    tail = transcript.tail(5)
    assert [m["content"] for m in tail] == [f"message {i}" for i in range(95, 100)]
    assert [m["role"] for m in tail] == ["assistant", "user", "assistant", "user", "assistant"]
    older = transcript.page(3, before=tail[0]["seq"])
    assert [m["content"] for m in older] == ["message 92", "message 93", "message 94"]
    assert transcript.tail(0) == []
    assert transcript.tail(5, thread_id="another") == [] and transcript.count(thread_id="another") == 0


def test_record_stores_each_message_once_in_order(transcript: Transcript) -> None:
    state: list = []
    state = bounded_messages(state, [{"role": "user", "content": "hello"}])
    assert transcript.record(state) == 1
    state = bounded_messages(state, [{"role": "assistant", "content": "hi"}, {"role": "user", "content": "go"}])
    assert transcript.record(state) == 2                 # "hello" again is not stored twice
    assert transcript.record(state) == 0
    assert [m["content"] for m in transcript.tail()] == ["hello", "hi", "go"]
    assert [m["id"] for m in transcript.tail()] == [m["id"] for m in state]


@pytest.mark.parametrize("message, match", [
    ({"role": "user", "content": "no id"}, "has no id"),
    ({"id": "a", "role": "robot", "content": "x"}, "role 'robot'"),
    ({"id": "a", "role": "user", "content": 5}, "content must be text"),
])
def test_record_refuses_bad_messages_and_stores_none_of_the_batch(transcript: Transcript, message: dict,
                                                                  match: str) -> None:
    with pytest.raises(InputError, match=match):
        transcript.record([{"id": "ok", "role": "user", "content": "fine"}, message])
    assert transcript.count() == 0


def test_rows_are_append_only(transcript: Transcript) -> None:
    transcript.append("user", "keep me")
    conn = sqlite3.connect(transcript.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("UPDATE messages SET content='changed'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM messages")
    finally:
        conn.close()
    assert transcript.tail()[0]["content"] == "keep me"


def test_bounded_messages_keeps_the_tail_and_ids() -> None:
    state: list = []
    for i in range(TAIL_MESSAGES + 25):
        state = bounded_messages(state, [{"role": "user", "content": str(i)}])
    assert len(state) == TAIL_MESSAGES
    assert state[0]["content"] == "25" and state[-1]["content"] == str(TAIL_MESSAGES + 24)
    assert len({m["id"] for m in state}) == TAIL_MESSAGES
    kept = bounded_messages([], [{"role": "user", "content": "x", "id": "mine"}])
    assert kept[0]["id"] == "mine"
    legacy = [{"role": "user", "content": str(i)} for i in range(100)]   # a checkpoint from before
    upgraded = bounded_messages(legacy, [{"role": "assistant", "content": "new"}])
    assert len(upgraded) == TAIL_MESSAGES and all(m.get("id") for m in upgraded)
    assert upgraded[0]["content"] == "61" and upgraded[-1]["content"] == "new"
    assert bounded_messages(None, None) == []


class _ChatState(TypedDict, total=False):
    messages: Annotated[list, bounded_messages]


def _checkpoint_bytes(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        stored = conn.execute("SELECT coalesce(sum(length(checkpoint) + length(metadata)), 0) FROM checkpoints")
        written = conn.execute("SELECT coalesce(sum(length(value)), 0) FROM writes")
        return int(stored.fetchone()[0]) + int(written.fetchone()[0])
    finally:
        conn.close()


def test_checkpoint_growth_per_message_stays_flat(tmp_path: Path) -> None:
    """With the bounded reducer, the 200th message costs the checkpoints what the 60th did (a full
    transcript in state would make each checkpoint grow with the chat)."""
    from langgraph.graph import END, START, StateGraph

    from memory.checkpoints import open_checkpointer

    def reply(state: _ChatState) -> dict:
        return {"messages": [{"role": "assistant", "content": "noted: " + "words " * 30}]}

    builder = StateGraph(_ChatState)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    saver = open_checkpointer(tmp_path / "state" / "checkpoints.sqlite")
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    transcript = Transcript(transcript_path(tmp_path))
    sizes = []
    try:
        for i in range(100):
            graph.invoke({"messages": [{"role": "user", "content": f"message {i} " + "text " * 20}]}, config)
            transcript.record(graph.get_state(config).values["messages"])
            if i in (29, 39, 89, 99):    # the tail is full from message 40 (step 20) on
                sizes.append(_checkpoint_bytes(tmp_path / "state" / "checkpoints.sqlite"))
        assert len(graph.get_state(config).values["messages"]) == TAIL_MESSAGES
        assert transcript.count() == 200                               # every message, once
        early, late = (sizes[1] - sizes[0]) / 10, (sizes[3] - sizes[2]) / 10
        assert late < early * 1.2, (early, late)                     # per-step cost does not grow
        assert late < 40_000, late
    finally:
        transcript.close()
        saver.conn.close()


def test_trim_checkpoints_keeps_resume_working_and_the_file_small(tmp_path: Path) -> None:
    """Old checkpoints go; the newest one (waiting at an interrupt) resumes as before."""
    from langgraph.graph import START, StateGraph
    from langgraph.types import Command, interrupt

    from memory.checkpoints import open_checkpointer
    from memory.transcript import trim_checkpoints

    def ask(state: _ChatState) -> dict:
        answer = interrupt({"kind": "input"})
        return {"messages": [{"role": "assistant", "content": f"you said {answer}"}]}

    builder = StateGraph(_ChatState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "ask")
    path = tmp_path / "state" / "checkpoints.sqlite"
    saver = open_checkpointer(path)
    graph = builder.compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "writers-room"}}
    try:
        graph.invoke({"messages": []}, config)
        sizes, removed = [], 0
        for i in range(60):
            graph.invoke(Command(resume=f"answer {i} " + "x" * 300), config)
            removed += trim_checkpoints(saver, "writers-room", keep=5)
            if i in (44, 59):          # one message a step: the tail is full from step 40 on
                sizes.append(_checkpoint_bytes(path))
        count = saver.conn.execute("SELECT count(*) FROM checkpoints").fetchone()[0]
        assert count == 5 and removed >= 55
        assert sizes[1] <= sizes[0] * 1.1                         # bounded, not growing with the chat
        graph.invoke(Command(resume="last"), config)           # resuming after a trim still works
        assert graph.get_state(config).values["messages"][-1]["content"] == "you said last"
        assert trim_checkpoints(saver, "no-such-thread") == 0
        with pytest.raises(InputError, match="keep=0"):
            trim_checkpoints(saver, "writers-room", keep=0)
    finally:
        saver.conn.close()
