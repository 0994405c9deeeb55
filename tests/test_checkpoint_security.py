"""A crafted or damaged state/checkpoints.sqlite is refused with a message; nothing in it runs.

Real checkpoints are written by a real session, then one stored value is replaced by a payload that
langgraph's permissive default serializer would turn into a call (proved below for each payload),
and the project is opened again: the session, the CLI and the doctor must refuse it.
"""
from __future__ import annotations

import json
import pickle
import sqlite3
import subprocess
import sys
from pathlib import Path

import ormsgpack
import pytest

from memory.checkpoints import (
    ALLOWED_TYPES,
    CheckpointError,
    UnsafeCheckpointError,
    open_checkpointer,
    strict_serializer,
    unsafe_rows,
    vet_payload,
)
from memory.errors import ProjectError
from memory.project import create_project
from tests.fakes import ScriptedChatModel, accept_vision
from ui.session import DirectorSession

ROOT = Path(__file__).resolve().parents[1]


def _ext(code: int, *parts: object) -> ormsgpack.Ext:
    return ormsgpack.Ext(code, ormsgpack.packb(list(parts)))


def _payloads(marker: Path) -> dict[str, tuple[str, bytes]]:
    """(format, bytes) values that create `marker` when a permissive reader loads them."""
    cmd = f"touch {marker}"
    code = f"open({str(marker)!r}, 'w').close()"
    return {
        "os.system, positional args": ("msgpack", ormsgpack.packb(
            {"v": 4, "channel_values": {"premise": _ext(1, "os", "system", [cmd])}})),
        "os.system, single arg": ("msgpack", ormsgpack.packb({"x": _ext(0, "os", "system", cmd)})),
        "subprocess.run, keyword args": ("msgpack", ormsgpack.packb(
            _ext(2, "subprocess", "run", {"args": ["touch", str(marker)]}))),
        "hidden inside an allowed Interrupt": ("msgpack", ormsgpack.packb(
            _ext(2, "langgraph.types", "Interrupt", {"value": _ext(1, "os", "system", [cmd]), "id": "x"}))),
        "pydantic model of any class": ("msgpack", ormsgpack.packb(
            _ext(5, "subprocess", "Popen", {"args": ["touch", str(marker)]}, "model_validate_json"))),
        "pickle": ("pickle", pickle.dumps(_PickleBomb(cmd))),
        "builtins.exec, method call": ("msgpack", ormsgpack.packb([_ext(3, "builtins", "exec", code, "__call__")])),
        "old json constructor": ("json", json.dumps(
            {"lc": 2, "type": "constructor", "id": ["os", "system"], "args": [cmd]}).encode()),
    }


#: Payloads langgraph's own default reader already blocks (the rest run under it).
BLOCKED_BY_LANGGRAPH_TOO = ("builtins.exec, method call", "old json constructor")


class _PickleBomb:
    def __init__(self, cmd: str) -> None:
        self.cmd = cmd

    def __reduce__(self):
        import os

        return (os.system, (self.cmd,))


@pytest.fixture
def project(tmp_path):
    project = create_project(tmp_path / "projects", "Fox Rain")
    with DirectorSession(project, ScriptedChatModel()) as s:
        s.start()
        accept_vision(s, s.send("A shrine maiden hears rain spirits."))   # a real checkpoint with a review card
    return project


def _plant(path: Path, table: str, payload: tuple[str, bytes]) -> None:
    """Put `payload` (format, bytes) into the newest checkpoint, the one a session loads on open:
    as the checkpoint itself, or as one of its pending writes."""
    conn = sqlite3.connect(path)
    with conn:
        thread, ns, newest = conn.execute("SELECT thread_id, checkpoint_ns, checkpoint_id FROM checkpoints "
                                          "ORDER BY checkpoint_id DESC LIMIT 1").fetchone()
        if table == "checkpoints":
            conn.execute("UPDATE checkpoints SET type=?, checkpoint=? WHERE checkpoint_id=?", (*payload, newest))
        else:
            conn.execute("INSERT INTO writes(thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, type,"
                         " value) VALUES (?, ?, ?, 'crafted', 0, 'premise', ?, ?)", (thread, ns, newest, *payload))
    conn.close()


PAYLOAD_NAMES = list(_payloads(Path("m")))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_the_payloads_would_run_under_langgraphs_permissive_default(tmp_path, name) -> None:
    """The control: the payloads really run with a permissive serializer (langgraph's default
    unless LANGGRAPH_STRICT_MSGPACK is set), so the refusals below mean something."""
    import time

    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    marker = tmp_path / "ran"
    JsonPlusSerializer(pickle_fallback=True, allowed_msgpack_modules=True).loads_typed(_payloads(marker)[name])
    deadline = time.monotonic() + 5
    while not marker.exists() and time.monotonic() < deadline and name not in BLOCKED_BY_LANGGRAPH_TOO:
        time.sleep(0.05)                      # Popen returns before its child has run
    assert marker.exists() == (name not in BLOCKED_BY_LANGGRAPH_TOO)


@pytest.mark.parametrize("table", ["checkpoints", "writes"])
@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_a_crafted_checkpoint_is_refused_and_nothing_runs(project, tmp_path, name, table) -> None:
    marker = tmp_path / "ran"
    _plant(project.checkpoints_path, table, _payloads(marker)[name])
    with pytest.raises(UnsafeCheckpointError) as refused:
        DirectorSession(project, ScriptedChatModel())
    message = str(refused.value)
    assert str(project.checkpoints_path) in message and "never writes" in message
    assert f"storyreel doctor {project.root} --repair" in message and "quarantine" in message
    assert not marker.exists()
    with pytest.raises(UnsafeCheckpointError):   # the refusal released the project lock
        DirectorSession(project, ScriptedChatModel())
    assert [row[0] for row in unsafe_rows(project.checkpoints_path)] == [table]


def test_chat_refuses_a_crafted_project_with_a_message_not_a_traceback(project, tmp_path) -> None:
    marker = tmp_path / "ran"
    _plant(project.checkpoints_path, "checkpoints", _payloads(marker)["os.system, positional args"])
    out = subprocess.run([sys.executable, "-m", "ui.cli", "--projects-dir", str(project.root.parent), "chat",
                          "fox-rain", "--llm-url", "http://127.0.0.1:9/v1"], cwd=ROOT, input="/quit\n",
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr and "never writes" in out.stderr and "doctor" in out.stderr
    assert not marker.exists()


def test_the_real_conversation_round_trips_through_the_strict_serializer(project) -> None:
    """What Storyreel writes, it reads: a session reopens the card it left (allow-list complete)."""
    assert unsafe_rows(project.checkpoints_path) == []
    with DirectorSession(project, ScriptedChatModel()) as s:
        view = s.start()
        assert view.pending["kind"] == "series"
        view = s.decide({"type": "reject", "note": "darker"})
        assert view.pending["kind"] == "series"
    with DirectorSession(project, ScriptedChatModel()) as s:
        assert s.view().pending["kind"] == "series"
    assert unsafe_rows(project.checkpoints_path) == []


@pytest.mark.parametrize("value", [
    {"a": [1, 2.5, "x", None, True]}, [], "text", 3,
])
def test_plain_values_pass_and_come_back(tmp_path, value) -> None:
    serde = strict_serializer(tmp_path / "state" / "checkpoints.sqlite")
    assert serde.loads_typed(serde.dumps_typed(value)) == value


def test_allowed_langgraph_types_pass_and_others_fail_when_written(tmp_path) -> None:
    from langgraph.types import Interrupt

    serde = strict_serializer(tmp_path / "checkpoints.sqlite")
    back = serde.loads_typed(serde.dumps_typed({"i": Interrupt(value={"kind": "input"}, id="abc")}))
    assert back["i"].value == {"kind": "input"}
    with pytest.raises(TypeError, match="uuid.UUID"):   # state must stay plain data
        import uuid

        serde.dumps_typed({"u": uuid.uuid4()})
    assert ("langgraph.types", "Interrupt") in ALLOWED_TYPES
    assert vet_payload("msgpack", b"\xc1") is not None       # never-used byte: unreadable, refused
    assert vet_payload("null", b"") is None


def _garbage(path: Path) -> None:
    path.write_bytes(b"GIF89a not a database at all" * 50)


def _zeroed(path: Path) -> None:
    path.write_bytes(bytes(8192))


def _zeroed_pages(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[100:] = bytes(len(raw) - 100)          # header kept, every page zeroed
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("damage", [_garbage, _zeroed, _zeroed_pages], ids=["garbage", "zeroed", "zeroed-pages"])
def test_a_damaged_checkpoints_file_is_a_clear_project_error(project, damage) -> None:
    path = project.checkpoints_path
    for extra in (path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        extra.unlink(missing_ok=True)
    damage(path)
    with pytest.raises(CheckpointError, match="checkpoints.sqlite") as refused:
        DirectorSession(project, ScriptedChatModel())
    assert "doctor" in str(refused.value) and isinstance(refused.value, ProjectError)


def test_state_being_a_file_is_a_clear_project_error(tmp_path) -> None:
    (tmp_path / "state").write_text("not a folder")
    with pytest.raises(CheckpointError, match="is a file"):
        open_checkpointer(tmp_path / "state" / "checkpoints.sqlite")
