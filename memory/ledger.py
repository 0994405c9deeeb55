"""Append-only decision log: who decided what, when, on which inputs (the authorship record).

One JSON object per line in ledger.jsonl. `append` returns only after the line is fsync'd, so the
UI reports a decision as saved only once it is on disk. A thread lock and an `flock` keep writers
from one or several processes from interleaving lines.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import threading
import uuid
from pathlib import Path

from memory.canon import now_iso
from memory.errors import InputError, ProjectError
from memory.project import fsync_dir

ACTORS = ("human", "assistant", "auto")


def inputs_hash(inputs: object) -> str:
    """sha256 of the canonical JSON of `inputs` (sorted keys, no spaces, str() for the rest)."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Ledger:
    """The project's ledger.jsonl."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        if not self.path.parent.is_dir():
            raise ProjectError(
                f"cannot use ledger {self.path}: folder {self.path.parent} does not exist; "
                "open or create the project first"
            )

    def append(
        self,
        *,
        actor: str,
        action: str,
        record_id: str | None = None,
        kind: str | None = None,
        rev: int | None = None,
        inputs: object = None,
        note: str = "",
    ) -> dict:
        """Write one decision and return it once it is durable on disk."""
        if actor not in ACTORS:
            raise InputError(f"ledger actor {actor!r} is not one of {', '.join(ACTORS)}")
        if not isinstance(action, str) or not action.strip():
            raise InputError(f"ledger action {action!r} must be non-empty text, e.g. 'accept'")
        if rev is not None and (isinstance(rev, bool) or not isinstance(rev, int)):
            raise InputError(f"ledger rev {rev!r} must be a whole number or None")
        entry = {
            "id": str(uuid.uuid4()),
            "time": now_iso(),
            "actor": actor,
            "action": action,
            "record_id": record_id,
            "kind": kind,
            "rev": rev,
            "inputs_hash": inputs_hash(inputs),
            "note": str(note),
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    size = os.fstat(fd).st_size
                    # A writer that died mid-line left no newline: start on a fresh line so that
                    # only the torn line is lost, not this one too.
                    if size and os.pread(fd, 1, size - 1) != b"\n":
                        line = b"\n" + line
                    _write_all(fd, line)
                    os.fsync(fd)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.path.parent)
        return entry

    def entries(self, record_id: str | None = None) -> list[dict]:
        """All decisions (about `record_id`), oldest first.

        Lines torn by a crash mid-write are skipped: they were never reported as saved.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return []
        found = []
        for line in raw.split(b"\n"):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                continue
            if not isinstance(entry, dict):
                continue
            if record_id is None or entry.get("record_id") == record_id:
                found.append(entry)
        return found


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
