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
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from memory.canon import now_iso
from memory.errors import InputError, ProjectError
from memory.project import fsync_dir

if TYPE_CHECKING:
    from memory.canon import Canon, Commit

ACTORS = ("human", "assistant", "auto")
#: Ledger actions that put a revision into canon (each names the record and its rev); "recovered"
#: and "repair" are written by `storyreel doctor`, "adopt" by adopting a branch (memory/branches.py).
CANON_ACTIONS = ("accept", "edit", "upload", "revert", "recovered", "repair", "adopt")


def inputs_hash(inputs: object) -> str:
    """sha256 of the canonical JSON of `inputs` (sorted keys, no spaces, str() for the rest)."""
    canonical = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class Ledger:
    """The project's ledger.jsonl."""

    def __init__(self, path: Path, branch: str = "main") -> None:
        """`branch`: the line of canon this session decides on (memory/branches.py); every line it
        appends names it unless the call names another."""
        self.path = Path(path)
        self.branch = branch
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
        branch: str | None = None,
        from_branch: str | None = None,
    ) -> dict:
        """Write one decision and return it once it is durable on disk.

        `branch` is the line of canon it was decided on (default: this ledger's; lines written before
        branches existed have none and read as "main"); `from_branch` names the branch an `adopt`
        line brought into main."""
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
            "branch": str(branch or self.branch),
        }
        if from_branch is not None:
            entry["from_branch"] = str(from_branch)
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
        if proposal_id is not None:
            # The hot path (every commit): this commit's lines can only have been written after its
            # canon row, so only the ledger's tail since then is read, not the whole file (from a few
            # seconds earlier: lines of concurrent writers may land slightly out of time order).
            since = _earlier(pending[0].created_at)
            recent = self.iter_reversed(stop=lambda e: str(e.get("time", "")) < since)
        else:
            recent = iter(self.entries())
        present = {(e.get("branch") or "main", e.get("record_id"), e.get("rev")) for e in recent
                   if e.get("action") in CANON_ACTIONS}
        appended = 0
        for commit in pending:
            for line in commit_lines(canon, commit):
                if (line["branch"], line["record_id"], line["rev"]) not in present:
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

    def iter_reversed(self, *, stop: Callable[[dict], bool] | None = None,
                      chunk: int = 65536) -> Iterator[dict]:
        """Decisions newest first, read backwards from the end of the file a chunk at a time, so
        the cost follows how many are read, not the size of the ledger. Ends before the first
        entry for which `stop(entry)` is true. Torn lines are skipped, as in `entries`."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        try:
            end = os.fstat(fd).st_size
            rest = b""
            while end > 0:
                start = max(0, end - chunk)
                block = os.pread(fd, end - start, start) + rest
                end = start
                lines = block.split(b"\n")
                rest = lines.pop(0) if end > 0 else b""   # may continue in the chunk before
                for line in reversed(lines):
                    entry = _parse_line(line)
                    if entry is None:
                        continue
                    if stop is not None and stop(entry):
                        return
                    yield entry
            entry = _parse_line(rest)
            if entry is not None and not (stop is not None and stop(entry)):
                yield entry
        finally:
            os.close(fd)

    def tail(self, n: int, *, where: Callable[[dict], bool] | None = None) -> list[dict]:
        """The last `n` decisions (those for which `where(entry)` holds), oldest first: what the
        studio's Decisions table shows, without reading the whole ledger."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise InputError(f"ledger tail size {n!r} must be a whole number, 0 or more")
        found: list[dict] = []
        if n:
            for entry in self.iter_reversed():
                if where is None or where(entry):
                    found.append(entry)
                    if len(found) == n:
                        break
        return found[::-1]

    def last(self, where: Callable[[dict], bool]) -> dict | None:
        """The newest decision for which `where(entry)` holds (e.g. the last accepted change, for
        undo), or None; reads backwards only as far as that entry."""
        return next((e for e in self.iter_reversed() if where(e)), None)

    def last_decided(self) -> dict | None:
        """The newest accepted, edited or reverted record (by the director or `auto`) on this
        ledger's branch: what a bare undo reverts."""
        return self.last(lambda e: e.get("actor") in ("human", "auto") and bool(e.get("record_id"))
                         and e.get("action") in ("accept", "edit", "revert")
                         and (e.get("branch") or "main") == self.branch)

    def last_for(self, record_id: str) -> dict | None:
        """The newest decision about `record_id`, or None."""
        return self.last(lambda e: e.get("record_id") == record_id)


#: How much earlier than its commit row a commit's ledger line may be dated (writers that took their
#: timestamp before waiting for the ledger's lock).
CLOCK_SLACK = timedelta(seconds=5)


def _earlier(iso: str) -> str:
    try:
        when = datetime.fromisoformat(iso)
    except ValueError:
        return ""   # unreadable: read the whole ledger rather than miss a line
    return (when - CLOCK_SLACK).isoformat(timespec="milliseconds")


def _parse_line(line: bytes) -> dict | None:
    if not line.strip():
        return None
    try:
        entry = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    return entry if isinstance(entry, dict) else None


def commit_lines(canon: Canon, commit: Commit) -> list[dict]:
    """The ledger lines of one commit, one per revision it made (keyword arguments of `append`)."""
    lines = []
    branch = getattr(canon, "branch", "main")   # a memory.branches.BranchCanon has one
    from_branch = commit.inputs.get("from_branch") if commit.action == "adopt" else None
    for record_id, rev in commit.records:
        record = canon.get(record_id, rev)
        lines.append({
            "actor": commit.actor, "action": commit.action, "record_id": record_id,
            "kind": record.kind, "rev": rev, "note": commit.note,
            "inputs": {"proposal_id": commit.proposal_id, **commit.inputs, "data": record.data},
            "branch": branch, **({"from_branch": from_branch} if from_branch else {}),
        })
    return lines


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
