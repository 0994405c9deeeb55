"""The studio chat, kept next to canon so a reopened studio shows the conversation it left."""
from __future__ import annotations

import json
import threading
from pathlib import Path

from memory.canon import check_json, connect_sqlite, now_iso
from memory.errors import InputError

ROLES = ("user", "assistant", "system")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    role TEXT NOT NULL,
    text TEXT NOT NULL,
    meta TEXT NOT NULL DEFAULT '{}',
    time TEXT NOT NULL
);
"""


class Transcript:
    """Append-only chat log in the `chat` table of canon.sqlite."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        self._lock = threading.Lock()
        self._conn = connect_sqlite(self.db_path)
        self._conn.executescript(_SCHEMA)

    def append(self, role: str, text: str, meta: dict | None = None) -> int:
        """Store one message; returns its id (increasing, so the UI can page by id)."""
        if role not in ROLES:
            raise InputError(f"chat role {role!r} is not one of {', '.join(ROLES)}")
        if not isinstance(text, str):
            raise InputError(f"chat text must be a string, got {type(text).__name__}: {str(text)[:60]!r}")
        meta = {} if meta is None else meta
        if not isinstance(meta, dict):
            raise InputError(f"chat meta must be a dict or None, got {type(meta).__name__}")
        check_json(meta, "chat meta")
        with self._lock:
            cursor = self._conn.execute(
                "INSERT INTO chat(role, text, meta, time) VALUES (?, ?, ?, ?)",
                (role, text, json.dumps(meta, ensure_ascii=False), now_iso()),
            )
            return int(cursor.lastrowid)

    def list(self, limit: int | None = None) -> list[dict]:
        """The whole chat, or its last `limit` messages, oldest first."""
        if limit is not None and (not isinstance(limit, int) or limit < 0):
            raise InputError(f"limit {limit!r} must be a non-negative whole number or None")
        with self._lock:
            if limit is None:
                rows = self._conn.execute("SELECT id, role, text, meta, time FROM chat ORDER BY id").fetchall()
            else:
                rows = self._conn.execute(
                    "SELECT * FROM (SELECT id, role, text, meta, time FROM chat ORDER BY id DESC LIMIT ?)"
                    " ORDER BY id",
                    (limit,),
                ).fetchall()
        return [
            {"id": row[0], "role": row[1], "text": row[2], "meta": json.loads(row[3]), "time": row[4]}
            for row in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
