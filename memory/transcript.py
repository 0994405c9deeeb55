"""The chat transcript: every message, in its own append-only SQLite table (state/transcript.sqlite).

Checkpointed graph state is copied on every step, so a transcript kept there costs the whole chat
per step (400 messages made 18 MB of checkpoints). Here the state keeps only a bounded tail
(`bounded_messages` as the reducer of `messages`, `TAIL_MESSAGES` long) and the full history lives
in this table, written once per message. The reducer gives each message an `id`, so `record` can
take the state's tail after every graph run and store just the messages it has not seen.
`trim_checkpoints` keeps the checkpoint file itself bounded (each step stores a full state copy).
"""
from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Self

from memory.canon import connect_sqlite, now_iso
from memory.errors import InputError, ProjectError

#: How many messages checkpointed state keeps (what the agent reads back as context); the rest is
#: only in the transcript table.
TAIL_MESSAGES = 40
ROLES = ("user", "assistant", "system")
DEFAULT_THREAD = "writers-room"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_id TEXT NOT NULL,
    msg_id TEXT NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    created_at TEXT NOT NULL,
    UNIQUE (thread_id, msg_id)
);
CREATE INDEX IF NOT EXISTS messages_thread ON messages(thread_id, seq);
CREATE TRIGGER IF NOT EXISTS messages_append_only_update BEFORE UPDATE ON messages
BEGIN SELECT RAISE(ABORT, 'the transcript is append-only'); END;
CREATE TRIGGER IF NOT EXISTS messages_append_only_delete BEFORE DELETE ON messages
BEGIN SELECT RAISE(ABORT, 'the transcript is append-only'); END;
"""


#: Checkpoints kept per thread by `trim_checkpoints`: resume needs only the newest one (and its
#: pending writes); undo works on canon revisions, never on old checkpoints.
KEEP_CHECKPOINTS = 20


def trim_checkpoints(saver: Any, thread_id: str, *, keep: int = KEEP_CHECKPOINTS) -> int:
    """Delete all but the newest `keep` checkpoints of `thread_id` (each namespace) and their
    writes, from a langgraph `SqliteSaver`; returns how many checkpoints went.

    Every graph step writes a full copy of the state, so without this the checkpoints grow with
    every step even when the state itself is bounded. Run it after each graph run, under the
    session's lock. Safe for Storyreel's state (plain reducers): a langgraph delta channel would
    need the older checkpoints, and none is used.
    """
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise InputError(f"keep={keep!r} must be a whole number of checkpoints, 1 or more")
    conn = saver.conn
    removed = 0
    with saver.lock:
        namespaces = [row[0] for row in conn.execute(
            "SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id=?", (thread_id,))]
        for ns in namespaces:
            row = conn.execute(
                "SELECT checkpoint_id FROM checkpoints WHERE thread_id=? AND checkpoint_ns=?"
                " ORDER BY checkpoint_id DESC LIMIT 1 OFFSET ?", (thread_id, ns, keep - 1)).fetchone()
            if row is None:
                continue
            oldest_kept = row[0]
            removed += conn.execute(
                "DELETE FROM checkpoints WHERE thread_id=? AND checkpoint_ns=? AND checkpoint_id < ?",
                (thread_id, ns, oldest_kept)).rowcount
            conn.execute("DELETE FROM writes WHERE thread_id=? AND checkpoint_ns=? AND checkpoint_id < ?",
                         (thread_id, ns, oldest_kept))
        conn.commit()
    return removed


def transcript_path(project_root: Path) -> Path:
    """Where a project keeps its transcript (next to the checkpoints)."""
    return Path(project_root) / "state" / "transcript.sqlite"


def bounded_messages(left: list[dict[str, Any]] | None, right: list[dict[str, Any]] | None
                     ) -> list[dict[str, Any]]:
    """Reducer for `DirectorState.messages`: append, keep the last TAIL_MESSAGES, and give every
    message without an `id` one (new ones, and those of a checkpoint written before this reducer).
    Use as `Annotated[list[ChatMessage], bounded_messages]`."""
    kept = [*(left or []), *(right or [])][-TAIL_MESSAGES:]
    return [m if m.get("id") else {**m, "id": uuid.uuid4().hex} for m in kept]


class Transcript:
    """The project's transcript.sqlite: append, and read a tail or a page, per thread."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._conn = connect_sqlite(self.path)
        try:
            self._conn.executescript(_SCHEMA)
        except Exception as exc:
            self._conn.close()
            raise ProjectError(
                f"{self.path} is not a readable transcript database ({exc}); move it away to start "
                "an empty one (canon, the ledger and the checkpoints do not depend on it)"
            ) from exc

    def append(self, role: str, content: str, *, thread_id: str = DEFAULT_THREAD,
               msg_id: str | None = None) -> int:
        """Store one message; returns its sequence number (a known `msg_id` is not stored twice)."""
        self._check(role, content)
        msg_id = msg_id or uuid.uuid4().hex
        with self._lock:
            cur = self._conn.execute(
                "INSERT OR IGNORE INTO messages(thread_id, msg_id, role, content, created_at)"
                " VALUES (?, ?, ?, ?, ?)", (thread_id, msg_id, role, content, now_iso()))
            if cur.rowcount:
                return int(cur.lastrowid or 0)
            row = self._conn.execute("SELECT seq FROM messages WHERE thread_id=? AND msg_id=?",
                                     (thread_id, msg_id)).fetchone()
            return int(row[0])

    def record(self, messages: Iterable[dict[str, Any]], *, thread_id: str = DEFAULT_THREAD) -> int:
        """Store the messages (each with an `id`, as `bounded_messages` gives them) not stored yet,
        in order, in one transaction; returns how many were new. Cost follows len(messages)."""
        rows = []
        for i, message in enumerate(messages):
            msg_id = message.get("id")
            if not isinstance(msg_id, str) or not msg_id:
                raise InputError(f"message {i} ({str(message)[:60]!r}) has no id; keep the state's messages "
                                 "with memory.transcript.bounded_messages, which gives each one an id")
            role, content = message.get("role"), message.get("content")
            self._check(role, content)
            rows.append((thread_id, msg_id, role, content, now_iso()))
        with self._lock:
            before = self._conn.total_changes
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO messages(thread_id, msg_id, role, content, created_at)"
                    " VALUES (?, ?, ?, ?, ?)", rows)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            return self._conn.total_changes - before

    def tail(self, n: int = TAIL_MESSAGES, *, thread_id: str = DEFAULT_THREAD) -> list[dict[str, Any]]:
        """The last `n` messages, oldest first, as {"id", "role", "content", "seq"}."""
        return self.page(n, thread_id=thread_id)

    def page(self, n: int, *, before: int | None = None, thread_id: str = DEFAULT_THREAD
             ) -> list[dict[str, Any]]:
        """`n` messages before sequence number `before` (None: the newest), oldest first: for a chat
        view that loads older messages as the director scrolls up."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"message count {n!r} must be a whole number, 0 or more")
        sql = "SELECT seq, msg_id, role, content FROM messages WHERE thread_id=?"
        args: list[Any] = [thread_id]
        if before is not None:
            sql += " AND seq < ?"
            args.append(int(before))
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(n)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [{"id": mid, "role": role, "content": content, "seq": seq} for seq, mid, role, content in reversed(rows)]

    def count(self, *, thread_id: str = DEFAULT_THREAD) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM messages WHERE thread_id=?",
                                          (thread_id,)).fetchone()[0])

    @staticmethod
    def _check(role: object, content: object) -> None:
        if role not in ROLES:
            raise InputError(f"message role {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(content, str):
            raise InputError(f"message content must be text, got {type(content).__name__}: {str(content)[:60]!r}")

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
