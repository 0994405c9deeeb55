"""Branches of canon: explore "what if Ren dies in episode 3?" without touching the main line.

A branch is a name in canon.sqlite, opened from the current main canon. It is **copy-on-write**:
it stores only the revisions made on it (`branch_revisions`), and per record the main revision it
started from (`branch_records.base_rev`, 0 for a record the branch created). No project folder,
asset or index is copied.

Reads on a branch see **the branch's revisions over main's as of now**: a record the branch changed
reads as the branch's latest revision; every other record reads as main's current one, so what the
main line accepts meanwhile (an unrelated character, a new scene) shows on the branch too. A
branch's revision numbers continue the record's main numbering from its base (main rev 2, branch
revs 3, 4, ...), so a record's history on a branch reads main 1..base, then the branch's.

`Branches.adopt` writes, in ONE canon transaction, each changed record's latest branch revision as
main's next revision (actor and note kept, the note naming the branch), a `commits` row (ledger
action `adopt`, `from_branch` = the branch) and the branch's status `adopted`. **Conflict rule:** a
record main revised after the branch's base (its main rev is no longer `base_rev`) makes adopt
refuse with `BranchConflictError` naming the records, unless `prefer_branch=True`, which adopts the
branch's version over main's (main's revision stays in history, as every revision does).
`discard` only marks a branch `discarded` (nothing is deleted); `reopen` makes it `open` again.

Crash points (memory/faults.py's `STORYREEL_CRASH_AT`): `adopt-mid-write@N` inside the adopt
transaction after N records, `adopt-after-commit` after it committed and before its ledger lines.
"""
from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.canon import Canon, Commit, Record, now_iso
from memory.errors import InputError, RecordNotFoundError
from memory.faults import crash_point

if TYPE_CHECKING:
    from memory.bible import Bible, BibleHit
    from memory.ledger import Ledger
    from memory.project import Project

MAIN = "main"
STATUSES = ("open", "adopted", "discarded")
_NAME = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
#: Order of branch-created records after every main record (main's `seq` never gets this far).
_BRANCH_SEQ = 1 << 40

_SCHEMA = """
CREATE TABLE IF NOT EXISTS branches (
    name TEXT PRIMARY KEY,
    question TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    status_at TEXT NOT NULL,
    adopted_as TEXT
);
CREATE TABLE IF NOT EXISTS branch_records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    branch TEXT NOT NULL REFERENCES branches(name),
    id TEXT NOT NULL,
    kind TEXT NOT NULL,
    base_rev INTEGER NOT NULL,
    current_rev INTEGER NOT NULL,
    UNIQUE (branch, id)
);
CREATE TABLE IF NOT EXISTS branch_revisions (
    branch TEXT NOT NULL,
    record_id TEXT NOT NULL,
    rev INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at TEXT NOT NULL,
    actor TEXT NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0,
    note TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (branch, record_id, rev)
);
CREATE TRIGGER IF NOT EXISTS branch_revisions_append_only_update BEFORE UPDATE ON branch_revisions
BEGIN SELECT RAISE(ABORT, 'branch revisions are append-only'); END;
CREATE TRIGGER IF NOT EXISTS branch_revisions_append_only_delete BEFORE DELETE ON branch_revisions
BEGIN SELECT RAISE(ABORT, 'branch revisions are append-only'); END;
CREATE TABLE IF NOT EXISTS branch_commits (
    branch TEXT NOT NULL,
    proposal_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    note TEXT NOT NULL,
    inputs TEXT NOT NULL,
    records TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ledgered INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (branch, proposal_id)
);
"""


class BranchError(InputError):
    """A branch name that is bad, unknown, taken, or in a state that does not allow the request."""


class BranchConflictError(BranchError):
    """Main revised records after the branch's base; adopting would silently drop those revisions."""

    def __init__(self, message: str, records: Sequence[str]) -> None:
        super().__init__(message)
        self.records = tuple(records)


@dataclass(frozen=True)
class Branch:
    name: str
    question: str
    created_at: str
    status: str        # open | adopted | discarded
    status_at: str
    adopted_as: str | None   # the adopt commit's proposal id


def check_branch_name(name: object) -> str:
    """`name` when it is a usable branch name (lower-case letters, digits, '-', 1-40), else BranchError."""
    if not isinstance(name, str) or not _NAME.match(name) or name == MAIN:
        raise BranchError(
            f"branch name {name!r} must be 1-40 lower-case letters, digits or '-' (not 'main'), "
            "e.g. 'ren-dies'; branch_name() makes one from words"
        )
    return name


def branch_name(words: str) -> str:
    """A branch name from free words ("What if Ren dies?" -> "what-if-ren-dies")."""
    slug = re.sub(r"[^a-z0-9]+", "-", str(words).lower()).strip("-")[:40].strip("-")
    return slug if slug and slug != MAIN else "branch"


def ensure_schema(canon: Canon) -> None:
    """Create the branch tables in canon.sqlite when missing (older projects gain them on use)."""
    with canon._lock:
        canon._conn.executescript(_SCHEMA)


def _row_to_branch(row: tuple) -> Branch:
    return Branch(*row)


def _row_to_record(row: tuple) -> Record:
    _branch, record_id, rev, kind, data, created_at, actor, deleted, note = row
    return Record(id=record_id, kind=kind, rev=rev, data=json.loads(data), created_at=created_at,
                  actor=actor, deleted=bool(deleted), note=note)


class BranchCanon(Canon):
    """Canon as seen and written on one branch: the same API as `Canon`, main left untouched.

    Writes need the branch `open`; reads work in any state (compare an adopted or discarded one).
    """

    def __init__(self, db_path: Path, branch: str) -> None:
        super().__init__(db_path)
        try:
            ensure_schema(self)
            self.branch = check_branch_name(branch)
            self.info()   # refuses an unknown branch
        except BaseException:
            self.close()
            raise

    def info(self) -> Branch:
        with self._lock:
            row = self._conn.execute("SELECT * FROM branches WHERE name=?", (self.branch,)).fetchone()
        if row is None:
            raise BranchError(f"no branch {self.branch!r}; open it first (Branches.open)")
        return _row_to_branch(row)

    def changed(self) -> list[Record]:
        """The latest branch revision of every record this branch changed (deleted ones too)."""
        return [rec for _, rec in sorted(self._branch_current(), key=lambda pair: pair[0])]

    def overridden(self) -> dict[str, int]:
        """{record id: base rev} of every record this branch has revisions of."""
        with self._lock:
            return dict(self._conn.execute(
                "SELECT id, base_rev FROM branch_records WHERE branch=?", (self.branch,)).fetchall())

    # --- writes: every canon write ends in `_insert_revision`, which goes to the branch -----

    def _require_open(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT status FROM branches WHERE name=?", (self.branch,)).fetchone()
        if row is None or row[0] != "open":
            state = "gone" if row is None else row[0]
            raise BranchError(
                f"branch {self.branch!r} is {state}; reopen it (a discarded one) or open a new branch "
                "to change it"
            )

    def _add_record(self, conn: sqlite3.Connection, record_id: str, kind: str) -> None:
        pass        # main's records table stays untouched; `_insert_revision` adds the branch_records row

    def _exists(self, conn: sqlite3.Connection, record_id: str) -> bool:
        return bool(conn.execute("SELECT 1 FROM records WHERE id=?", (record_id,)).fetchone()
                    or conn.execute("SELECT 1 FROM branch_records WHERE branch=? AND id=?",
                                    (self.branch, record_id)).fetchone())

    def _new_id(self, conn: sqlite3.Connection, kind: str, data: dict) -> str:  # type: ignore[override]
        candidate = Canon._new_id(conn, kind, data)
        while self._exists(conn, candidate):
            candidate = Canon._new_id(conn, kind, {})
        return candidate

    def _insert_revision(self, conn: sqlite3.Connection, record_id: str, kind: str, rev: int,
                         payload: str, actor: str, deleted: bool, note: str) -> Record:
        self._require_open(conn)
        created_at = now_iso()
        conn.execute(
            "INSERT INTO branch_revisions(branch, record_id, rev, kind, data, created_at, actor, deleted,"
            " note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (self.branch, record_id, rev, kind, payload, created_at, actor, int(deleted), str(note)),
        )
        conn.execute(
            "INSERT INTO branch_records(branch, id, kind, base_rev, current_rev) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT(branch, id) DO UPDATE SET current_rev=excluded.current_rev",
            (self.branch, record_id, kind, rev - 1, rev),
        )
        return Record(id=record_id, kind=kind, rev=rev, data=json.loads(payload), created_at=created_at,
                      actor=actor, deleted=deleted, note=str(note))

    # --- reads --------------------------------------------------------------------------

    def _current(self, conn: sqlite3.Connection, record_id: str) -> Record:
        row = conn.execute(
            "SELECT v.* FROM branch_records b JOIN branch_revisions v ON v.branch = b.branch"
            " AND v.record_id = b.id AND v.rev = b.current_rev WHERE b.branch=? AND b.id=?",
            (self.branch, record_id),
        ).fetchone()
        return _row_to_record(row) if row else super()._current(conn, record_id)

    def _revision(self, conn: sqlite3.Connection, record_id: str, rev: int) -> Record:
        base = conn.execute("SELECT base_rev, current_rev FROM branch_records WHERE branch=? AND id=?",
                            (self.branch, record_id)).fetchone()
        if base is None or rev <= base[0]:
            return super()._revision(conn, record_id, rev)
        row = conn.execute("SELECT * FROM branch_revisions WHERE branch=? AND record_id=? AND rev=?",
                           (self.branch, record_id, rev)).fetchone()
        if row is None:
            raise RecordNotFoundError(
                f"record {record_id!r} has no rev {rev!r} on branch {self.branch!r}; its revisions are "
                f"1..{base[1]}"
            )
        return _row_to_record(row)

    def _branch_current(self, kind: str | None = None) -> list[tuple[int, Record]]:
        sql = ("SELECT b.seq, v.* FROM branch_records b JOIN branch_revisions v ON v.branch = b.branch"
               " AND v.record_id = b.id AND v.rev = b.current_rev WHERE b.branch=?")
        args: list[Any] = [self.branch]
        if kind is not None:
            sql += " AND b.kind=?"
            args.append(kind)
        with self._lock:
            rows = self._conn.execute(sql, args).fetchall()
            seqs = dict(self._conn.execute("SELECT id, seq FROM records").fetchall()) if rows else {}
        return [(seqs.get(row[2], _BRANCH_SEQ + row[0]), _row_to_record(row[1:])) for row in rows]

    def _merged(self, main: list[Record], kind: str | None, keep: Callable[[Record], bool]) -> list[Record]:
        mine = self._branch_current(kind)
        if not mine:
            return main
        ids = {rec.id for _, rec in mine}
        with self._lock:
            seqs = dict(self._conn.execute("SELECT id, seq FROM records").fetchall())
        merged = [(seqs.get(r.id, 0), r) for r in main if r.id not in ids]
        merged += [(seq, rec) for seq, rec in mine if keep(rec)]
        return [rec for _, rec in sorted(merged, key=lambda pair: pair[0])]

    def list(self, kind: str | None = None, *, include_deleted: bool = False) -> list[Record]:
        main = super().list(kind, include_deleted=include_deleted)
        return self._merged(main, kind, lambda r: include_deleted or not r.deleted)

    def children(self, kind: str, key: str, value: str | int) -> list[Record]:
        main = super().children(kind, key, value)
        return self._merged(main, kind, lambda r: not r.deleted and r.data.get(key) == value
                            and type(r.data.get(key)) is type(value))

    def history(self, record_id: str) -> list[Record]:
        base = self.overridden().get(record_id)
        if base is None:
            return super().history(record_id)
        main = [r for r in super().history(record_id) if r.rev <= base] if base else []
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM branch_revisions WHERE branch=? AND record_id=? ORDER BY rev",
                (self.branch, record_id)).fetchall()
        return main + [_row_to_record(row) for row in rows]

    # --- the branch's own commits (the ledger lines of its decisions come from these) -------

    def commit_proposal(self, proposal_id: str, write: Callable[[], list[Record]], *, kind: str,
                        actor: str, action: str, note: str = "",
                        inputs: dict[str, Any] | None = None) -> tuple[list[Record], bool]:
        if not isinstance(proposal_id, str) or not proposal_id.strip():
            raise InputError(f"proposal id {proposal_id!r} must be non-empty text")
        self._check_actor(actor)
        inputs_json = json.dumps(inputs or {}, ensure_ascii=False, default=str)
        with self._write() as conn:
            row = conn.execute("SELECT records FROM branch_commits WHERE branch=? AND proposal_id=?",
                               (self.branch, proposal_id)).fetchone()
            if row is not None:
                return [self._revision(conn, rid, rev) for rid, rev in json.loads(row[0])], False
            records = list(write())
            conn.execute(
                "INSERT INTO branch_commits(branch, proposal_id, kind, actor, action, note, inputs, records,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self.branch, proposal_id, kind, actor, action, str(note), inputs_json,
                 json.dumps([[r.id, r.rev] for r in records]), now_iso()),
            )
            return records, True

    def commit_of(self, proposal_id: str) -> Commit | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT proposal_id, kind, actor, action, note, inputs, records, created_at, ledgered"
                " FROM branch_commits WHERE branch=? AND proposal_id=?", (self.branch, proposal_id)).fetchone()
        return self._row_to_commit(row) if row else None

    def commits(self, *, unledgered_only: bool = False, kind: str | None = None) -> list[Commit]:
        sql = ("SELECT proposal_id, kind, actor, action, note, inputs, records, created_at, ledgered"
               " FROM branch_commits WHERE branch=?" + (" AND ledgered = 0" if unledgered_only else "")
               + (" AND kind = ?" if kind is not None else ""))
        args = (self.branch,) + ((kind,) if kind is not None else ())
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY rowid", args).fetchall()
        return [self._row_to_commit(row) for row in rows]

    def mark_ledgered(self, proposal_id: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE branch_commits SET ledgered=1 WHERE branch=? AND proposal_id=?",
                         (self.branch, proposal_id))

    def revision_count(self) -> int:
        with self._lock:
            return super().revision_count() + self._conn.execute(
                "SELECT count(*) FROM branch_revisions WHERE branch=?", (self.branch,)).fetchone()[0]


# --- the branches of a project ---------------------------------------------------------------


@dataclass(frozen=True)
class RecordDiff:
    """One record that differs between two lines: its data on each (None: not there / deleted)."""

    record_id: str
    kind: str
    left: dict | None
    right: dict | None


class Branches:
    """Open, list, compare, adopt, discard and reopen the branches of one canon (main's `Canon`).

    Every change of a branch's status is a ledger line (`branch-open`, `branch-discard`,
    `branch-reopen`); adopt's lines are the main revisions it writes (action `adopt`).
    """

    def __init__(self, canon: Canon, ledger: Ledger | None = None) -> None:
        if isinstance(canon, BranchCanon):
            raise BranchError("Branches needs main's Canon, not a branch view; open Canon(path)")
        self.canon = canon
        self.ledger = ledger
        ensure_schema(canon)

    def list(self) -> list[Branch]:
        with self.canon._lock:
            rows = self.canon._conn.execute("SELECT * FROM branches ORDER BY created_at, name").fetchall()
        return [_row_to_branch(row) for row in rows]

    def get(self, name: str) -> Branch:
        check_branch_name(name)
        with self.canon._lock:
            row = self.canon._conn.execute("SELECT * FROM branches WHERE name=?", (name,)).fetchone()
        if row is None:
            known = ", ".join(b.name for b in self.list()) or "none yet"
            raise BranchError(f"no branch {name!r} (branches: {known}); open it first")
        return _row_to_branch(row)

    def open(self, name: str, question: str = "", *, actor: str = "human") -> Branch:
        """A new open branch from main as it is now (nothing is copied)."""
        check_branch_name(name)
        stamp = now_iso()
        with self.canon._write() as conn:
            if conn.execute("SELECT 1 FROM branches WHERE name=?", (name,)).fetchone():
                raise BranchError(f"branch {name!r} already exists; switch to it, or pick another name")
            conn.execute("INSERT INTO branches(name, question, created_at, status, status_at)"
                         " VALUES (?, ?, ?, 'open', ?)", (name, str(question), stamp, stamp))
        self._log(actor, "branch-open", name, question)
        return self.get(name)

    def view(self, name: str) -> BranchCanon:
        """Canon on branch `name` (close it when done). `main` is not a branch: use the Canon itself."""
        self.get(name)
        return BranchCanon(self.canon.db_path, name)

    def changed(self, name: str) -> list[Record]:
        """The latest branch revision of every record the branch changed, in branch order."""
        self.get(name)
        with self.canon._lock:
            rows = self.canon._conn.execute(
                "SELECT v.* FROM branch_records b JOIN branch_revisions v ON v.branch = b.branch"
                " AND v.record_id = b.id AND v.rev = b.current_rev WHERE b.branch=? ORDER BY b.seq",
                (name,)).fetchall()
        return [_row_to_record(row) for row in rows]

    def conflicts(self, name: str) -> list[str]:
        """Ids of records main revised (or created) after the branch's base for them."""
        with self.canon._lock:
            return self._conflicts(self.canon._conn, name)

    @staticmethod
    def _conflicts(conn: sqlite3.Connection, name: str) -> list[str]:
        rows = conn.execute(
            "SELECT b.id FROM branch_records b LEFT JOIN records r ON r.id = b.id"
            " WHERE b.branch=? AND coalesce(r.current_rev, 0) != b.base_rev ORDER BY b.seq", (name,)
        ).fetchall()
        return [row[0] for row in rows]

    def compare(self, left: str, right: str, *, record_ids: Sequence[str] | None = None,
                episode: int | None = None) -> list[RecordDiff]:
        """Records whose data differs between two lines (`main` or a branch name), optionally only
        `record_ids` or the records of `episode` (its scenes, and their shots, lines and media)."""
        views = {side: (self.canon if side == MAIN else self.view(side)) for side in {left, right}}
        try:
            ids: list[str] = []
            for side in (left, right):
                if side != MAIN:
                    ids += [r.id for r in self.changed(side)]
            if record_ids is not None:
                ids = list(record_ids)
            found = []
            for rid in dict.fromkeys(ids):
                a, b = (_live(views[left], rid), _live(views[right], rid))
                if episode is not None and not (_in_episode(views[left], a, episode)
                                                or _in_episode(views[right], b, episode)):
                    continue
                if (a.data if a else None) != (b.data if b else None):
                    kind = (a or b).kind if (a or b) else ""
                    found.append(RecordDiff(rid, kind, a.data if a else None, b.data if b else None))
            return found
        finally:
            for side, view in views.items():
                if side != MAIN:
                    view.close()

    def adopt(self, name: str, *, actor: str = "human", prefer_branch: bool = False) -> list[Record]:
        """Make the branch's latest revisions main's next revisions, in one transaction; returns the
        main revisions written. Refuses (BranchConflictError) when main revised one of the records
        after the branch's base, unless `prefer_branch` (then the branch's version wins)."""
        branch = self.get(name)
        if branch.status != "open":
            raise BranchError(f"branch {name!r} is {branch.status}; only an open branch can be adopted"
                              + (" (reopen it first)" if branch.status == "discarded" else ""))
        proposal_id = f"adopt-{name}-{now_iso()}"
        canon = self.canon

        def write() -> list[Record]:
            conn = canon._conn
            status = conn.execute("SELECT status FROM branches WHERE name=?", (name,)).fetchone()[0]
            if status != "open":   # another adopt or discard got there first
                raise BranchError(f"branch {name!r} is {status} now; nothing was adopted")
            clashes = self._conflicts(conn, name)
            if clashes and not prefer_branch:
                raise BranchConflictError(
                    f"main changed {', '.join(clashes)} after branch {name!r} was based on it; adopt "
                    "with prefer_branch=True to keep the branch's version, or compare and redo the "
                    "change on main", clashes)
            written: list[Record] = []
            for rec in self.changed(name):
                row = conn.execute("SELECT current_rev FROM records WHERE id=?", (rec.id,)).fetchone()
                note = f"adopted from branch {name} (rev {rec.rev}){': ' + rec.note if rec.note else ''}"
                if row is None:
                    if rec.deleted:
                        continue   # made and removed on the branch: main never had it
                    conn.execute("INSERT INTO records(id, kind, current_rev) VALUES (?, ?, 0)", (rec.id, rec.kind))
                    row = (0,)
                current = None if row[0] == 0 else canon._current(conn, rec.id)
                if current is not None and current.deleted == rec.deleted and current.data == rec.data:
                    continue   # main already says the same
                written.append(canon._insert_revision(
                    conn, rec.id, rec.kind, row[0] + 1, json.dumps(rec.data, ensure_ascii=False),
                    rec.actor, rec.deleted, note))
                crash_point("adopt-mid-write")
            conn.execute("UPDATE branches SET status='adopted', status_at=?, adopted_as=? WHERE name=?",
                         (now_iso(), proposal_id, name))
            return written

        records, _ = canon.commit_proposal(
            proposal_id, write, kind="branch", actor=actor, action="adopt",
            note=f"adopt branch {name}", inputs={"from_branch": name, "question": branch.question})
        crash_point("adopt-after-commit")
        if self.ledger is not None:
            self.ledger.complete(canon, proposal_id)
        return records

    def discard(self, name: str, *, actor: str = "human", note: str = "") -> Branch:
        """Mark an open branch discarded; its revisions stay and `reopen` brings it back."""
        return self._set_status(name, "open", "discarded", actor, "branch-discard", note)

    def reopen(self, name: str, *, actor: str = "human", note: str = "") -> Branch:
        """Make a discarded branch open again."""
        return self._set_status(name, "discarded", "open", actor, "branch-reopen", note)

    def _set_status(self, name: str, before: str, after: str, actor: str, action: str, note: str) -> Branch:
        self.get(name)
        with self.canon._write() as conn:
            status = conn.execute("SELECT status FROM branches WHERE name=?", (name,)).fetchone()[0]
            if status != before:
                raise BranchError(f"branch {name!r} is {status}, not {before}; nothing was changed")
            conn.execute("UPDATE branches SET status=?, status_at=? WHERE name=?", (after, now_iso(), name))
        self._log(actor, action, name, note)
        return self.get(name)

    def _log(self, actor: str, action: str, name: str, note: str) -> None:
        if self.ledger is not None:
            self.ledger.append(actor=actor, action=action, inputs={"branch": name}, note=str(note),
                               branch=name)


def _live(canon: Canon, record_id: str) -> Record | None:
    try:
        rec = canon.get(record_id)
    except RecordNotFoundError:
        return None
    return None if rec.deleted else rec


def _in_episode(canon: Canon, rec: Record | None, episode: int) -> bool:
    """Whether a record belongs to `episode`: its own `episode`, or its scene's (shots, lines,
    panels, takes and motion name a scene or a shot)."""
    if rec is None:
        return False
    data = rec.data
    if data.get("episode") == episode:
        return True
    for key in ("scene_id", "shot_id"):
        parent = data.get(key)
        if isinstance(parent, str) and parent != rec.id:
            found = _live(canon, parent)
            if found is not None and _in_episode(canon, found, episode):
                return True
    return False


def entry_branch(entry: dict) -> str:
    """The branch a ledger line was decided on; lines written before branches existed are main's."""
    branch = entry.get("branch")
    return branch if isinstance(branch, str) and branch else MAIN


def render_dir(project: Project, episode: int, branch: str = MAIN) -> Path:
    """Where an episode's render of `branch` lives: renders/epNN/ on main,
    renders/branches/<name>/epNN/ on a branch (through the project's resolver)."""
    if branch == MAIN:
        return project.resolve(Path("renders", f"ep{episode:02d}"))
    return project.resolve(Path("renders", "branches", check_branch_name(branch), f"ep{episode:02d}"))


def thread_id(base: str, branch: str = MAIN) -> str:
    """The checkpoint thread of a conversation on `branch` (main keeps `base` as it always was)."""
    return base if branch == MAIN else f"{base}@branch:{check_branch_name(branch)}"


def branch_of_thread(thread: str) -> str:
    """The branch a checkpoint thread id belongs to (`thread_id`'s inverse)."""
    _, sep, name = thread.partition("@branch:")
    return name if sep and name else MAIN


# --- the bible on a branch -------------------------------------------------------------------


class BranchBible:
    """Bible search on a branch: the branch's changed records live in their own chroma collection
    (`branch-<name>`), merged at query time with main's results minus the ids the branch overrides,
    so main's index and search results never change through branch work. Same API as `Bible`."""

    def __init__(self, main: Bible, canon: BranchCanon) -> None:
        self.main = main
        self.canon = canon
        self.branch = canon.branch
        self._collection = main.side_collection(f"branch-{canon.branch}")

    def index(self, record: Record) -> None:
        from memory.bible import NOT_INDEXED, record_metadata, record_text

        if record.deleted or record.kind in NOT_INDEXED:
            self.remove(record.id)
            return
        with self.main._lock:
            self._collection.upsert(ids=[record.id], documents=[record_text(record)],
                                    metadatas=[record_metadata(record)])

    def remove(self, record_id: str) -> None:
        with self.main._lock:
            self._collection.delete(ids=[record_id])

    def search(self, query: str, *, kinds: Sequence[str] | None = None, k: int = 5,
               before_episode: int | None = None) -> list[BibleHit]:
        hidden = set(self.canon.overridden())
        main_hits = self.main.search(query, kinds=kinds, k=k + len(hidden), before_episode=before_episode)
        hits = [h for h in main_hits if h.record_id not in hidden]
        hits += self.main.search_collection(self._collection, query, kinds=kinds, k=k,
                                            before_episode=before_episode)
        return sorted(hits, key=lambda h: h.distance)[:k]

    def sync(self, canon: Canon | None = None, *, stop: Any = None) -> int:
        """Index the branch's changed records that are missing or stale; drop the rest."""
        from memory.bible import NOT_INDEXED

        wanted = {r.id: r for r in self.canon.changed() if r.kind not in NOT_INDEXED
                  and not r.deleted}
        with self.main._lock:
            have = self._collection.get(include=["metadatas"])
        indexed = {rid: (meta or {}).get("rev") for rid, meta in zip(have["ids"], have["metadatas"])}
        extra = [rid for rid in indexed if rid not in wanted]
        if extra:
            with self.main._lock:
                self._collection.delete(ids=extra)
        todo = [r for rid, r in wanted.items() if indexed.get(rid) != r.rev]
        for rec in todo:
            self.index(rec)
        return len(todo)

    def rebuild(self, canon: Canon | None = None) -> int:
        with self.main._lock:
            have = self._collection.get()
            if have["ids"]:
                self._collection.delete(ids=have["ids"])
        return self.sync()

    def count(self) -> int:
        with self.main._lock:
            return self._collection.count()

    def close(self) -> None:
        """Nothing to release: the chroma client is main's (close the main Bible)."""


# --- the history of one line (the authorship report per branch) --------------------------------------


def line_entries(canon: Canon, entries: list[dict]) -> list[dict]:
    """The ledger lines of `canon`'s line: main's only on main; on a branch, main's (less those about
    revisions of records the branch changed after its base) and the branch's own."""
    branch = getattr(canon, "branch", MAIN)
    if branch == MAIN:
        return [e for e in entries if entry_branch(e) == MAIN]
    base = canon.overridden()   # type: ignore[attr-defined]
    kept = []
    for e in entries:
        line = entry_branch(e)
        rid, rev = e.get("record_id"), e.get("rev")
        if line == branch or (line == MAIN and not (rid in base and isinstance(rev, int) and rev > base[rid])):
            kept.append(e)
    return kept


def line_commits(canon: Canon) -> list[Commit]:
    """The commits of `canon`'s line, oldest first: main's on main; on a branch, main's (without the
    revisions of records the branch changed after its base), then the branch's."""
    from dataclasses import replace

    if not isinstance(canon, BranchCanon):
        return canon.commits()
    base = canon.overridden()
    main = [replace(c, records=tuple((rid, rev) for rid, rev in c.records if not (rid in base and rev > base[rid])))
            for c in Canon.commits(canon)]
    return main + canon.commits()


_ADOPTED_NOTE = re.compile(r"adopted from branch ([a-z0-9-]+) \(rev (\d+)\)")


def adopted_decision(ctx: Any, commit: Commit, rec: Record) -> Any:
    """The authorship decision (memory/authorship.py) of a main revision an `adopt` wrote: that of
    the branch revision it brought (as a revert takes that of the revision it brings back), with
    the adopt named in its action; None when the branch revision cannot be found."""
    from memory.authorship import _Context, _Decision

    found = _ADOPTED_NOTE.match(rec.note)
    if found is None or not isinstance(getattr(ctx.canon, "db_path", None), Path):
        return None
    name, rev = found.group(1), int(found.group(2))
    try:
        view = BranchCanon(ctx.canon.db_path, name)
    except InputError:
        return None
    try:
        by_rev = {key: c for c in line_commits(view) for key in c.records}
        entries = line_entries(view, list(getattr(ctx, "every_entry", [])))
        actions = {(e.get("record_id"), e.get("rev")): e for e in entries if e.get("rev") is not None}
        back = _Context(view, by_rev, actions).decision(rec.id, rev)
    except RecordNotFoundError:
        return None
    finally:
        view.close()
    return _Decision(back.category, back.actor, f"adopt {name}: {back.action}", rec.rev, back.decided_at,
                     back.proposal_id, back.proposed, back.model)
