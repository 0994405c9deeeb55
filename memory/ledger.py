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
from typing import TYPE_CHECKING

from memory.canon import now_iso
from memory.errors import InputError, ProjectError
from memory.project import fsync_dir

if TYPE_CHECKING:
    from memory.canon import Canon, Commit

ACTORS = ("human", "assistant", "auto")
#: Ledger actions that put a revision into canon (each names the record and its rev); "recovered"
#: and "repair" are written by `storyreel doctor`.
CANON_ACTIONS = ("accept", "edit", "upload", "revert", "recovered", "repair")


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

    def complete(self, canon: Canon, proposal_id: str | None = None) -> int:
        """Append the ledger lines that canon's commits say exist but a crash kept off the ledger.

        Canon is the truth: a proposal's records and its commit row land in one transaction, and
        its ledger lines (one per record revision) are derived from that row. This appends the
        lines not yet present (matched by record id and rev), then marks the commit as ledgered,
        so it is safe to run any number of times. Returns how many lines it appended.
        """
        if proposal_id is not None:
            found = canon.commit_of(proposal_id)
            pending = [found] if found is not None and not found.ledgered else []
        else:
            pending = canon.commits(unledgered_only=True)
        if not pending:
            return 0
        present = {(e.get("record_id"), e.get("rev")) for e in self.entries()
                   if e.get("action") in CANON_ACTIONS}
        appended = 0
        for commit in pending:
            for line in commit_lines(canon, commit):
                if (line["record_id"], line["rev"]) not in present:
                    self.append(**line)
                    appended += 1
            canon.mark_ledgered(commit.proposal_id)
        return appended

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


def commit_lines(canon: Canon, commit: Commit) -> list[dict]:
    """The ledger lines of one commit, one per revision it made (keyword arguments of `append`)."""
    lines = []
    for record_id, rev in commit.records:
        record = canon.get(record_id, rev)
        lines.append({
            "actor": commit.actor, "action": commit.action, "record_id": record_id,
            "kind": record.kind, "rev": rev, "note": commit.note,
            "inputs": {"proposal_id": commit.proposal_id, **commit.inputs, "data": record.data},
        })
    return lines


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
