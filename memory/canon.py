"""Canonical records (characters, episodes, shots, ...) with full revision history, in SQLite.

Only accepted proposals land here. Every change is a new revision; nothing is ever overwritten or
removed, so undo (`revert`) and delete are themselves revisions and the history stays the
authorship record. WAL mode lets the studio read while a worker thread writes; one connection is
shared by threads behind a lock because the UI calls from worker threads.

An accepted proposal is written by `commit_proposal`: every record it produces and a `commits` row
naming its proposal id go in ONE SQLite transaction, so a crash leaves either all of it or none of
it, and running the same commit again (a resumed graph step) returns the stored records instead of
writing them twice. The ledger lines are derived from that row afterwards (`commits` keeps what they
need); `Ledger.complete` appends any a crash left out.
"""
from __future__ import annotations

import json
import math
import re
import sqlite3
import threading
import unicodedata
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from memory.errors import InputError, ProjectError, RecordNotFoundError

T = TypeVar("T")

KINDS = (
    "series", "style", "character", "location", "prop", "outline", "episode", "beats", "scene",
    "shot", "line", "glossary", "panel", "take", "voice", "motion", "fact", "summary", "vision", "cold_open",
)
CANON_SCHEMA_VERSION = 1
MAX_ID_LENGTH = 200

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    current_rev INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS revisions (
    record_id TEXT NOT NULL REFERENCES records(id),
    rev INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (record_id, rev)
);
CREATE INDEX IF NOT EXISTS records_kind ON records(kind, seq);
-- Children by parent without scanning the kind (see `Canon.children`): a scene's shots, an
-- episode's scenes and facts. Expression indexes, so older canon files gain them on open.
CREATE INDEX IF NOT EXISTS revisions_scene ON revisions(kind, json_extract(data, '$.scene_id'));
CREATE INDEX IF NOT EXISTS revisions_episode ON revisions(kind, json_extract(data, '$.episode'));
CREATE TRIGGER IF NOT EXISTS revisions_append_only_update BEFORE UPDATE ON revisions
BEGIN SELECT RAISE(ABORT, 'canon revisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS revisions_append_only_delete BEFORE DELETE ON revisions
BEGIN SELECT RAISE(ABORT, 'canon revisions are append-only'); END;
-- One row per accepted proposal (or undo), written in the same transaction as its revisions.
-- records: JSON [[record_id, rev], ...]; inputs: JSON for the derived ledger lines;
-- ledgered: 1 once every ledger line of this commit is on disk.
CREATE TABLE IF NOT EXISTS commits (
    proposal_id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT NOT NULL,
    inputs TEXT NOT NULL,
    records TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ledgered INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS commits_kind ON commits(kind);
"""


@dataclass(frozen=True)
class Record:
    """One revision of one canonical record. `data` is a fresh copy; changing it changes nothing."""

    id: str
    kind: str
    rev: int
    data: dict
    created_at: str
    actor: str
    deleted: bool = False
    note: str = ""

    @property
    def name(self) -> str:
        """The record's display name (data["name"], else its id)."""
        name = self.data.get("name")
        return name if isinstance(name, str) and name.strip() else self.id


@dataclass(frozen=True)
class Commit:
    """The canon side of one accepted proposal: which revisions it made, and for the ledger who
    decided, how (accept, edit, upload, revert) and on which inputs."""

    proposal_id: str
    kind: str
    actor: str
    action: str
    note: str
    inputs: dict
    records: tuple[tuple[str, int], ...]
    created_at: str
    ledgered: bool


def connect_sqlite(db_path: Path) -> sqlite3.Connection:
    """Open a project SQLite file for sharing between threads, in WAL mode with durable commits.

    Autocommit mode (`isolation_level=None`): writers open their own `BEGIN IMMEDIATE` so a
    read-then-write (next revision number) is atomic across processes too.
    """
    db_path = Path(db_path)
    if not db_path.parent.is_dir():
        raise ProjectError(
            f"cannot open {db_path}: folder {db_path.parent} does not exist; open or create the project first"
        )
    try:
        conn = sqlite3.connect(db_path, timeout=15, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as exc:
        raise ProjectError(
            f"{db_path} is not a readable SQLite database ({exc}); restore it from a backup or "
            "move it away to start an empty one"
        ) from exc
    return conn


def now_iso() -> str:
    """UTC time with milliseconds, the one timestamp format of the project store."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def check_json(value: object, where: str) -> None:
    """Refuse anything that would not come back from JSON exactly as it went in."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"{where} is {value!r}; only finite numbers can be stored, use a number or null")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InputError(f"{where} has key {key!r} ({type(key).__name__}); keys must be text")
            check_json(item, f"{where}.{key}")
        return
    raise InputError(
        f"{where} is a {type(value).__name__} ({str(value)[:60]!r}), which cannot be stored; "
        "use text, numbers, true/false, null, lists or dicts (e.g. str(path) for a path)"
    )


def slug_for_id(text: str) -> str:
    """Lower-case words joined by '-', unicode letters kept ("Aiko Mori" -> "aiko-mori")."""
    normal = unicodedata.normalize("NFKC", text).strip().lower()
    return re.sub(r"[^\w]+", "-", normal).strip("-_")[:60]


class Canon:
    """The canonical store of one project (canon.sqlite)."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = Path(db_path)
        # Re-entrant: a proposal's commit runs other canon calls inside its transaction.
        self._lock = threading.RLock()
        self._depth = 0   # open (nested) write transactions of the thread holding the lock
        self._memo: dict[str, tuple[int, Any]] = {}   # derived values by key: (change mark, value)
        self._conn = connect_sqlite(self.db_path)
        try:
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > CANON_SCHEMA_VERSION:
                raise ProjectError(
                    f"{self.db_path} has canon schema {version}, this Storyreel supports "
                    f"{CANON_SCHEMA_VERSION}; upgrade Storyreel to open it"
                )
            check = self._conn.execute("PRAGMA quick_check").fetchone()[0]
            if check != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {check}")
            self._conn.executescript(_SCHEMA)
            if version < CANON_SCHEMA_VERSION:
                self._conn.execute(f"PRAGMA user_version={CANON_SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ProjectError(
                f"{self.db_path} is not a readable canon database ({exc}); nothing was changed. "
                f"Restore it from a backup; `storyreel doctor {self.db_path.parent}` shows what else is there"
            ) from exc
        except BaseException:
            self._conn.close()
            raise

    # --- writes -------------------------------------------------------------------------

    def commit_proposal(
        self,
        proposal_id: str,
        write: Callable[[], list[Record]],
        *,
        kind: str,
        actor: str,
        action: str,
        note: str = "",
        inputs: dict[str, Any] | None = None,
    ) -> tuple[list[Record], bool]:
        """Run `write` (any canon writes) and record `proposal_id` in one transaction, once.

        Returns (records, True) when this call wrote them; (the records the first commit stored,
        False) when the proposal was committed before, in which case `write` does not run. If
        `write` raises, nothing of it stays. Other threads wait for the transaction to end.
        """
        if not isinstance(proposal_id, str) or not proposal_id.strip():
            raise InputError(f"proposal id {proposal_id!r} must be non-empty text")
        self._check_actor(actor)
        inputs_json = json.dumps(inputs or {}, ensure_ascii=False, default=str)
        with self._write() as conn:
            row = conn.execute(
                "SELECT records FROM commits WHERE proposal_id=?", (proposal_id,)
            ).fetchone()
            if row is not None:
                return [self._revision(conn, rid, rev) for rid, rev in json.loads(row[0])], False
            records = list(write())
            conn.execute(
                "INSERT INTO commits(proposal_id, kind, actor, action, note, inputs, records, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (proposal_id, kind, actor, action, str(note), inputs_json,
                 json.dumps([[r.id, r.rev] for r in records]), now_iso()),
            )
            return records, True

    def commit_of(self, proposal_id: str) -> Commit | None:
        """The stored commit of a proposal, or None when it was never committed."""
        with self._lock:
            row = self._conn.execute(
                "SELECT * FROM commits WHERE proposal_id=?", (proposal_id,)
            ).fetchone()
        return self._row_to_commit(row) if row else None

    def commits(self, *, unledgered_only: bool = False, kind: str | None = None) -> list[Commit]:
        """Every commit, oldest first (only those whose ledger lines are not all written; only those
        of one proposal kind, an indexed lookup)."""
        where = [w for w, on in (("ledgered = 0", unledgered_only), ("kind = ?", kind is not None)) if on]
        sql = "SELECT * FROM commits" + (" WHERE " + " AND ".join(where) if where else "")
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY rowid", (kind,) if kind is not None else ()).fetchall()
        return [self._row_to_commit(row) for row in rows]

    def mark_ledgered(self, proposal_id: str) -> None:
        """Note that every ledger line of this commit is durable (see `Ledger.complete`)."""
        with self._write() as conn:
            conn.execute("UPDATE commits SET ledgered=1 WHERE proposal_id=?", (proposal_id,))

    def create(
        self,
        kind: str,
        data: dict,
        *,
        actor: str,
        record_id: str | None = None,
        note: str = "",
    ) -> Record:
        """Add a new record at rev 1. The id defaults to "<kind>-<slug of name>" when free."""
        if kind not in KINDS:
            raise InputError(f"unknown record kind {kind!r}; use one of {', '.join(KINDS)}")
        payload = self._encode(data, kind)
        self._check_actor(actor)
        if record_id is not None:
            self._check_id(record_id)
        with self._write() as conn:
            if record_id is None:
                record_id = self._new_id(conn, kind, data)
            elif self._exists(conn, record_id):
                raise InputError(
                    f"record id {record_id!r} already exists; revise it, or create without record_id"
                )
            self._add_record(conn, record_id, kind)
            return self._insert_revision(conn, record_id, kind, 1, payload, actor, False, note)

    def _exists(self, conn: sqlite3.Connection, record_id: str) -> bool:
        """Whether ``record_id`` is taken (a branch also counts its own records)."""
        return bool(conn.execute("SELECT 1 FROM records WHERE id=?", (record_id,)).fetchone())

    def _add_record(self, conn: sqlite3.Connection, record_id: str, kind: str) -> None:
        """The records row of a new id at rev 1 (a branch keeps its own rows in `_insert_revision`)."""
        conn.execute("INSERT INTO records(id, kind, current_rev) VALUES (?, ?, 1)", (record_id, kind))

    def revise(self, record_id: str, data: dict, *, actor: str, note: str = "") -> Record:
        """Store `data` as the record's next revision; older revisions stay as they were."""
        self._check_actor(actor)
        with self._write() as conn:
            current = self._current(conn, record_id)
            if current.deleted:
                raise InputError(
                    f"record {record_id!r} is deleted (rev {current.rev}); revert it to an earlier "
                    "rev before revising"
                )
            payload = self._encode(data, current.kind)
            return self._insert_revision(
                conn, record_id, current.kind, current.rev + 1, payload, actor, False, note
            )

    def live(self, record_id: str) -> Record | None:
        """The current revision of a record, or None when it does not exist or is deleted."""
        try:
            rec = self.get(record_id)
        except RecordNotFoundError:
            return None
        return None if rec.deleted else rec

    def upsert(self, kind: str, data: dict, *, actor: str, record_id: str | None, note: str = "") -> Record:
        """Create the record, or store `data` as its next revision (also over a deletion: the
        accepted proposal brings the id back). Earlier revisions always stay."""
        self._check_actor(actor)
        if record_id is None:
            return self.create(kind, data, actor=actor, note=note)
        with self._write() as conn:
            try:
                current = self._current(conn, record_id)
            except RecordNotFoundError:
                current = None
            if current is not None:
                payload = self._encode(data, current.kind)
                return self._insert_revision(
                    conn, record_id, current.kind, current.rev + 1, payload, actor, False, note
                )
        return self.create(kind, data, actor=actor, record_id=record_id, note=note)

    def revert(self, record_id: str, to_rev: int, *, actor: str, note: str = "") -> Record:
        """Undo as a new revision whose data equals rev `to_rev`; also brings back a deleted record."""
        self._check_actor(actor)
        with self._write() as conn:
            current = self._current(conn, record_id)
            target = self._revision(conn, record_id, to_rev)
            if target.deleted:
                raise InputError(
                    f"rev {to_rev} of {record_id!r} is a deletion; revert to a rev before it, "
                    "or use delete()"
                )
            payload = json.dumps(target.data, ensure_ascii=False)
            return self._insert_revision(
                conn, record_id, current.kind, current.rev + 1, payload, actor, False,
                note or f"revert to rev {to_rev}",
            )

    def delete(self, record_id: str, *, actor: str, note: str = "") -> Record:
        """Hide a record behind a tombstone revision (keeps the last data for history/revert)."""
        self._check_actor(actor)
        with self._write() as conn:
            current = self._current(conn, record_id)
            if current.deleted:
                raise InputError(f"record {record_id!r} is already deleted (rev {current.rev})")
            payload = json.dumps(current.data, ensure_ascii=False)
            return self._insert_revision(
                conn, record_id, current.kind, current.rev + 1, payload, actor, True, note or "deleted"
            )

    # --- reads --------------------------------------------------------------------------

    def get(self, record_id: str, rev: int | None = None) -> Record:
        """The current revision, or revision `rev`, of a record (deleted ones included)."""
        with self._lock:
            if rev is None:
                return self._current(self._conn, record_id)
            return self._revision(self._conn, record_id, rev)

    def list(self, kind: str | None = None, *, include_deleted: bool = False) -> list[Record]:
        """Current revision of every record (of `kind`), in creation order."""
        if kind is not None and kind not in KINDS:
            raise InputError(f"unknown record kind {kind!r}; use one of {', '.join(KINDS)}")
        sql = (
            "SELECT v.* FROM records r JOIN revisions v ON v.record_id = r.id AND v.rev = r.current_rev"
        )
        where, args = [], []
        if kind is not None:
            where.append("r.kind = ?")
            args.append(kind)
        if not include_deleted:
            where.append("v.deleted = 0")
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY r.seq"
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
        return [self._row_to_record(row) for row in rows]

    def ids(self, kind: str) -> list[str]:
        """The ids of the live records of `kind`, in creation order: `list` without reading their
        data (the History tab's record picker lists every shot and panel of the series)."""
        if kind not in KINDS:
            raise InputError(f"unknown record kind {kind!r}; use one of {', '.join(KINDS)}")
        if type(self).list is not Canon.list:   # a subclass (a branch) that sees records its own way
            return [r.id for r in self.list(kind)]
        with self._lock:
            rows = self._conn.execute(
                "SELECT r.id FROM records r JOIN revisions v ON v.record_id = r.id AND v.rev = r.current_rev"
                " WHERE r.kind = ? AND v.deleted = 0 ORDER BY r.seq", (kind,)).fetchall()
        return [row[0] for row in rows]

    #: data keys `children` can look records up by, each backed by an index (see _SCHEMA).
    CHILD_KEYS = ("scene_id", "episode")

    def children(self, kind: str, key: str, value: str | int) -> list[Record]:
        """Live records of `kind` whose data[key] == value (a scene's shots: ("shot", "scene_id",
        scene id); an episode's scenes or facts: (kind, "episode", n)), in creation order.

        An index lookup: the cost follows the number of matches, not the size of the series.
        """
        if kind not in KINDS:
            raise InputError(f"unknown record kind {kind!r}; use one of {', '.join(KINDS)}")
        if key not in self.CHILD_KEYS:
            raise InputError(f"cannot look records up by {key!r}; use one of {', '.join(self.CHILD_KEYS)}")
        sql = (
            "SELECT v.* FROM revisions v JOIN records r ON r.id = v.record_id AND r.current_rev = v.rev"
            f" WHERE v.kind = ? AND json_extract(v.data, '$.{key}') = ? AND v.deleted = 0 ORDER BY r.seq"
        )
        with self._lock:
            rows = self._conn.execute(sql, (kind, value)).fetchall()
        return [self._row_to_record(row) for row in rows]

    def history(self, record_id: str) -> list[Record]:
        """Every revision of a record, oldest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM revisions WHERE record_id=? ORDER BY rev", (record_id,)
            ).fetchall()
        if not rows:
            raise RecordNotFoundError(f"no canon record {record_id!r}; list records to see the ids")
        return [self._row_to_record(row) for row in rows]

    # --- derived values, kept until canon changes ------------------------------------------

    def change_mark(self) -> int | None:
        """A mark that grows with every revision written, by any process (the newest revision's
        row). None inside a write transaction: what it reads may still be rolled back, so nothing
        derived from it may be kept; None too for a subclass (a branch keeps its revisions in tables
        of its own) unless it overrides this with a mark of its own."""
        if type(self).change_mark is Canon.change_mark and type(self) is not Canon:
            return None
        with self._lock:
            if self._conn.in_transaction:
                return None
            return int(self._conn.execute("SELECT coalesce(max(rowid), 0) FROM revisions").fetchone()[0])

    def changes_since(self, mark: int, *, limit: int = 500) -> list[Record] | None:
        """The revisions written after `mark` (a `change_mark`), oldest first; None when there are
        more than `limit` (recompute instead). A rowid range: the cost follows what changed."""
        with self._lock:
            rows = self._conn.execute("SELECT * FROM revisions WHERE rowid > ? ORDER BY rowid LIMIT ?",
                                      (mark, limit + 1)).fetchall()
        return None if len(rows) > limit else [self._row_to_record(row) for row in rows]

    def memo(self, key: str, compute: Callable[[], T]) -> T:
        """`compute()`, kept until canon changes: for values derived from canon that every step reads
        (the continuity facts). Computed afresh inside a write transaction."""
        mark = self.change_mark()
        if mark is None:
            return compute()
        hit = self._memo.get(key)
        if hit is not None and hit[0] == mark:
            return hit[1]
        value = compute()
        self._memo[key] = (mark, value)
        return value

    def revision_count(self) -> int:
        """How many revisions canon holds (0: nothing was ever accepted)."""
        with self._lock:
            return self._conn.execute("SELECT count(*) FROM revisions").fetchone()[0]

    def revision_keys(self) -> list[tuple[str, int]]:
        """(record id, rev) of every revision, for checking canon against the ledger."""
        with self._lock:
            return [(rid, int(rev)) for rid, rev in
                    self._conn.execute("SELECT record_id, rev FROM revisions ORDER BY record_id, rev")]

    def find_by_name(self, kind: str, name: str) -> Record | None:
        """The live record of `kind` whose data["name"] matches `name`, ignoring case."""
        wanted = name.strip().casefold()
        for record in self.list(kind):
            value = record.data.get("name")
            if isinstance(value, str) and value.strip().casefold() == wanted:
                return record
        return None

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- internals ----------------------------------------------------------------------

    def _write(self) -> _WriteTransaction:
        return _WriteTransaction(self)

    @staticmethod
    def _row_to_commit(row: tuple) -> Commit:
        proposal_id, kind, actor, action, note, inputs, records, created_at, ledgered = row
        return Commit(
            proposal_id=proposal_id, kind=kind, actor=actor, action=action, note=note,
            inputs=json.loads(inputs), records=tuple((rid, int(rev)) for rid, rev in json.loads(records)),
            created_at=created_at, ledgered=bool(ledgered),
        )

    @staticmethod
    def _encode(data: dict, kind: str) -> str:
        if not isinstance(data, dict):
            raise InputError(f"{kind} data must be a dict, got {type(data).__name__}: {str(data)[:60]!r}")
        check_json(data, f"{kind} data")
        return json.dumps(data, ensure_ascii=False)

    @staticmethod
    def _check_actor(actor: str) -> None:
        if not isinstance(actor, str) or not actor.strip():
            raise InputError(f"actor {actor!r} must be non-empty text, e.g. 'human' or 'assistant'")

    @staticmethod
    def _check_id(record_id: str) -> None:
        if (
            not isinstance(record_id, str)
            or not record_id.strip()
            or len(record_id) > MAX_ID_LENGTH
            or any(ch.isspace() or not ch.isprintable() for ch in record_id)
        ):
            raise InputError(
                f"record id {record_id!r} must be 1-{MAX_ID_LENGTH} printable characters without "
                "spaces, e.g. 'character-aiko'"
            )

    @staticmethod
    def _new_id(conn: sqlite3.Connection, kind: str, data: dict) -> str:
        name = data.get("name")
        if isinstance(name, str) and (slug := slug_for_id(name)):
            candidate = f"{kind}-{slug}"
            if not conn.execute("SELECT 1 FROM records WHERE id=?", (candidate,)).fetchone():
                return candidate
        while True:
            candidate = f"{kind}-{uuid.uuid4().hex[:8]}"
            if not conn.execute("SELECT 1 FROM records WHERE id=?", (candidate,)).fetchone():
                return candidate

    def _insert_revision(
        self,
        conn: sqlite3.Connection,
        record_id: str,
        kind: str,
        rev: int,
        payload: str,
        actor: str,
        deleted: bool,
        note: str,
    ) -> Record:
        created_at = now_iso()
        conn.execute(
            "INSERT INTO revisions(record_id, rev, kind, data, created_at, actor, deleted, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (record_id, rev, kind, payload, created_at, actor, int(deleted), str(note)),
        )
        conn.execute("UPDATE records SET current_rev=? WHERE id=?", (rev, record_id))
        return Record(
            id=record_id, kind=kind, rev=rev, data=json.loads(payload), created_at=created_at,
            actor=actor, deleted=deleted, note=str(note),
        )

    def _current(self, conn: sqlite3.Connection, record_id: str) -> Record:
        row = conn.execute(
            "SELECT v.* FROM records r JOIN revisions v ON v.record_id = r.id AND v.rev = r.current_rev"
            " WHERE r.id = ?",
            (record_id,),
        ).fetchone()
        if row is None:
            raise RecordNotFoundError(f"no canon record {record_id!r}; list records to see the ids")
        return self._row_to_record(row)

    def _revision(self, conn: sqlite3.Connection, record_id: str, rev: int) -> Record:
        row = conn.execute(
            "SELECT * FROM revisions WHERE record_id=? AND rev=?", (record_id, rev)
        ).fetchone()
        if row is None:
            latest = conn.execute(
                "SELECT current_rev FROM records WHERE id=?", (record_id,)
            ).fetchone()
            if latest is None:
                raise RecordNotFoundError(f"no canon record {record_id!r}; list records to see the ids")
            raise RecordNotFoundError(
                f"record {record_id!r} has no rev {rev!r}; its revisions are 1..{latest[0]}"
            )
        return self._row_to_record(row)

    @staticmethod
    def _row_to_record(row: tuple) -> Record:
        record_id, rev, kind, data, created_at, actor, deleted, note = row
        return Record(
            id=record_id, kind=kind, rev=rev, data=json.loads(data), created_at=created_at,
            actor=actor, deleted=bool(deleted), note=note,
        )


class _WriteTransaction:
    """Thread lock + `BEGIN IMMEDIATE` ... COMMIT (ROLLBACK on any error).

    Nested use on the same thread (a canon write inside `commit_proposal`) becomes a SAVEPOINT of
    the outer transaction: the outer one decides whether anything is kept.
    """

    def __init__(self, canon: Canon) -> None:
        self._canon = canon
        self._savepoint: str | None = None

    def __enter__(self) -> sqlite3.Connection:
        canon = self._canon
        canon._lock.acquire()
        try:
            if canon._depth == 0:
                canon._conn.execute("BEGIN IMMEDIATE")
            else:
                self._savepoint = f"nested_{canon._depth}"
                canon._conn.execute(f"SAVEPOINT {self._savepoint}")
            canon._depth += 1
        except BaseException:
            canon._lock.release()
            raise
        return canon._conn

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        canon = self._canon
        try:
            canon._depth -= 1
            if self._savepoint is None:
                canon._conn.execute("ROLLBACK" if exc_type else "COMMIT")
            else:
                if exc_type:
                    canon._conn.execute(f"ROLLBACK TO {self._savepoint}")
                canon._conn.execute(f"RELEASE {self._savepoint}")
        finally:
            canon._lock.release()
