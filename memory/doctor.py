"""`storyreel doctor PROJECT [--repair]`: check a project's stores agree, and mend what can be mended.

Checks: SQLite integrity of canon and of the checkpoints (and that no checkpoint holds an object the
strict reader refuses), ledger against canon (accepted decisions without revisions and the reverse,
commits whose ledger lines a crash kept off, duplicate live records left by a commit that ran twice),
the bible index against canon, files canon refers to that are missing, and temporaries left by a
crash. With --repair it appends derived ledger lines, re-indexes the bible, retires duplicates with a
tombstone revision (undoable), and moves bad checkpoints and orphaned temporaries aside into
`state/quarantine/<time>/`. It never deletes a file and never touches an accepted asset.

Also here: `require_canon`, the check a session runs before opening canon, so that a deleted or
emptied canon.sqlite is refused instead of silently recreated empty while the ledger lists decisions.
"""
from __future__ import annotations

import fnmatch
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from memory.canon import Canon
from memory.errors import PathOutsideProjectError, ProjectError, StoryreelError
from memory.ledger import CANON_ACTIONS, Ledger
from memory.project import Project, ProjectLock

#: Names of temporaries that only a crashed write leaves behind (render runs, side products, audio
#: mixes, concat lists, half-written segments, atomic-write temp files, raw takes, uploads).
TEMPORARY_PATTERNS = (".run-*", ".side-*", ".mix-*.wav", ".concat-*", "*.part.mp4", "*.part.png",
                      "*.part", ".*.tmp", "*.tmp", "*.raw.wav", ".upload-*.tmp.*")
#: Folders the temporaries scan leaves alone: quarantine itself, chroma's own files, the venv.
_SKIP_DIRS = ("state/quarantine", "bible/chroma")
QUARANTINE = Path("state") / "quarantine"


class MissingCanonError(ProjectError):
    """canon.sqlite is missing or empty while the ledger lists accepted decisions."""


# ----------------------------------------------------------------------------- opening canon


def accepted_decisions(ledger: Ledger) -> list[dict]:
    """Ledger lines that put a revision into main's canon (record id and rev given); decisions on
    a branch (memory/branches.py) name the branch's own revisions and are left out."""
    return [e for e in ledger.entries()
            if e.get("action") in CANON_ACTIONS and e.get("record_id") and isinstance(e.get("rev"), int)
            and (e.get("branch") or "main") == "main"]


def _refusal(project: Project, state: str, decided: list[dict]) -> MissingCanonError:
    last = decided[-1]
    return MissingCanonError(
        f"{project.canon_path} is {state}, but {project.ledger_path.name} lists {len(decided)} accepted "
        f"decisions (the last: {last.get('record_id')} rev {last.get('rev')} on {last.get('time')}); "
        "opening it would start an empty canon and lose them, so nothing was opened or changed. "
        f"Restore canon.sqlite from a backup, then run `storyreel doctor {project.root}` to check it. "
        f"To start the series over instead, move {project.ledger_path.name} out of the project folder"
    )


def require_canon(project: Project, ledger: Ledger) -> Canon:
    """Open canon, refusing a missing, empty or emptied canon.sqlite when the ledger lists
    accepted decisions (a fresh project, or one with no decisions yet, opens as usual)."""
    path = project.canon_path
    missing = not path.exists()
    empty = not missing and path.is_file() and path.stat().st_size == 0
    if missing or empty:
        decided = accepted_decisions(ledger)
        if decided:
            raise _refusal(project, "missing" if missing else "an empty file (0 bytes)", decided)
    canon = Canon(path)
    try:
        if canon.revision_count() == 0:
            decided = accepted_decisions(ledger)
            if decided:
                raise _refusal(project, "a database without any records", decided)
    except BaseException:
        canon.close()
        raise
    return canon


# ----------------------------------------------------------------------------- findings


@dataclass
class Finding:
    """One thing the doctor looked at: fine, or a problem with (maybe) a repair."""

    area: str
    message: str
    ok: bool = False
    repair: Callable[[], str] | None = None   # returns what it did
    done: str | None = None                    # what --repair did
    failed: str | None = None                  # why the repair did not work


@dataclass
class Report:
    project: Project
    findings: list[Finding] = field(default_factory=list)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if not f.ok and f.done is None]

    def add(self, area: str, message: str, *, ok: bool = False,
            repair: Callable[[], str] | None = None) -> None:
        self.findings.append(Finding(area, message, ok=ok, repair=repair))


class _Quarantine:
    """state/quarantine/<time>/: where --repair moves what it takes out, keeping relative paths."""

    def __init__(self, project: Project) -> None:
        self.project = project
        self._dir: Path | None = None

    @property
    def folder(self) -> Path:
        if self._dir is None:
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
            base = self.project.root / QUARANTINE / stamp
            n, folder = 1, base
            while folder.exists():
                n += 1
                folder = base.with_name(f"{stamp}-{n}")
            folder.mkdir(parents=True)
            self._dir = folder
        return self._dir

    def move(self, path: Path) -> Path:
        rel = path.relative_to(self.project.root)
        dest = self.folder / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(path), str(dest))
        return dest

    def rel(self, path: Path) -> str:
        return path.relative_to(self.project.root).as_posix()


# ----------------------------------------------------------------------------- the checks


def _integrity(path: Path) -> str:
    """'ok', or what SQLite's integrity_check (or opening the file) says is wrong."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return str(exc)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    finally:
        conn.close()
    result = "; ".join(str(r[0]) for r in rows[:5])
    return "ok" if result == "ok" else result


def _check_checkpoints(project: Project, report: Report, quarantine: _Quarantine) -> None:
    from memory.checkpoints import SQLITE_HEADER, unsafe_rows

    path = project.checkpoints_path
    if not path.exists():
        report.add("checkpoints", f"{quarantine.rel(path)}: none yet (a new conversation)", ok=True)
        return

    def move_aside() -> str:
        moved = [quarantine.move(p) for p in (path, path.with_name(path.name + "-wal"),
                                             path.with_name(path.name + "-shm")) if p.exists()]
        return (f"moved {', '.join(quarantine.rel(m) for m in moved)}; the chat starts over from the "
                "premise and carries on from canon (canon, ledger and assets are kept)")

    if not path.is_file():
        report.add("checkpoints", f"{quarantine.rel(path)} is not a file", repair=move_aside)
        return
    if path.stat().st_size:
        with path.open("rb") as handle:
            if handle.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                report.add("checkpoints", f"{quarantine.rel(path)} is not an SQLite database",
                           repair=move_aside)
                return
    verdict = _integrity(path)
    if verdict != "ok":
        report.add("checkpoints", f"{quarantine.rel(path)} is damaged: {verdict}", repair=move_aside)
        return
    try:
        unsafe = unsafe_rows(path)
    except sqlite3.DatabaseError as exc:  # no langgraph tables: not a checkpoint database
        report.add("checkpoints", f"{quarantine.rel(path)} is not a checkpoint database ({exc})",
                   repair=move_aside)
        return
    if unsafe:
        table, key, why = unsafe[0]
        report.add("checkpoints", f"{quarantine.rel(path)}: {len(unsafe)} stored value(s) hold what "
                   f"Storyreel never writes (first: {table} {key}: {why}); they are refused on open",
                   repair=move_aside)
        return
    report.add("checkpoints", f"{quarantine.rel(path)}: integrity ok, nothing refused", ok=True)


def _check_canon(project: Project, report: Report, ledger: Ledger) -> Canon | None:
    path = project.canon_path
    decided = accepted_decisions(ledger)
    if not path.exists() or (path.is_file() and path.stat().st_size == 0):
        state = "missing" if not path.exists() else "empty (0 bytes)"
        if decided:
            report.add("canon", f"canon.sqlite is {state} but the ledger lists {len(decided)} accepted "
                       "decisions; doctor cannot rebuild canon (the ledger holds hashes, not the "
                       "records): restore canon.sqlite from a backup")
        else:
            report.add("canon", f"canon.sqlite is {state}; no decisions yet, it is created on open", ok=True)
        return None
    verdict = _integrity(path)
    if verdict != "ok":
        report.add("canon", f"canon.sqlite is damaged: {verdict}; restore it from a backup "
                   "(doctor does not rewrite canon)")
        return None
    try:
        canon = Canon(path)
    except StoryreelError as exc:
        report.add("canon", f"canon.sqlite cannot be opened: {exc}")
        return None
    report.add("canon", f"canon.sqlite: integrity ok, {len(canon.list())} live records, "
               f"{canon.revision_count()} revisions", ok=True)
    return canon


def _check_ledger(project: Project, report: Report, canon: Canon, ledger: Ledger) -> None:
    unledgered = canon.commits(unledgered_only=True)
    if unledgered:
        report.add("ledger", f"{len(unledgered)} commit(s) in canon without all their ledger lines "
                   f"(first: {unledgered[0].proposal_id}, a crash between canon and ledger)",
                   repair=lambda: f"appended {ledger.complete(canon)} ledger line(s) derived from canon")
    decided = accepted_decisions(ledger)
    revisions = set(canon.revision_keys())
    stray = [e for e in decided if (e["record_id"], e["rev"]) not in revisions]
    if stray:
        shown = ", ".join(f"{e['record_id']} rev {e['rev']}" for e in stray[:5])
        report.add("ledger", f"{len(stray)} accepted decision(s) without their canon revision ({shown}); "
                   "canon lost them: restore canon.sqlite from a backup")
    logged = {(e["record_id"], e["rev"]) for e in decided}
    committed = {key for c in unledgered for key in c.records}
    orphans = sorted(key for key in revisions if key not in logged and key not in committed)
    if orphans:
        shown = ", ".join(f"{rid} rev {rev}" for rid, rev in orphans[:5])

        def log_orphans() -> str:
            for rid, rev in orphans:
                rec = canon.get(rid, rev)
                actor = rec.actor if rec.actor in ("human", "assistant", "auto") else "auto"
                ledger.append(actor=actor, action="recovered", record_id=rid, kind=rec.kind, rev=rev,
                              inputs={"data": rec.data, "note": rec.note},
                              note=f"ledger line restored by storyreel doctor from canon ({rec.note})")
            return f"appended {len(orphans)} 'recovered' ledger line(s) from canon's revisions"

        report.add("ledger", f"{len(orphans)} canon revision(s) without a ledger line ({shown})",
                   repair=log_orphans)
    if not stray and not orphans and not unledgered:
        report.add("ledger", f"ledger and canon agree ({len(decided)} decisions)", ok=True)


def duplicate_records(canon: Canon) -> list[tuple[str, list[str]]]:
    """(proposal note, [kept id, duplicate ids...]) for live records of one kind and one name that
    one proposal created more than once (a commit that ran twice, before commits were atomic)."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for rec in canon.list():
        name = rec.data.get("name")
        if not isinstance(name, str) or not name.strip():
            continue
        first = canon.get(rec.id, 1)
        if not first.note.startswith("proposal "):
            continue
        groups.setdefault((rec.kind, name.strip().casefold(), first.note), []).append(rec.id)
    return [(note, ids) for (_, _, note), ids in groups.items() if len(ids) > 1]


def _check_duplicates(report: Report, canon: Canon, ledger: Ledger) -> None:
    dupes = duplicate_records(canon)
    if not dupes:
        report.add("canon", "no duplicate live records", ok=True)
        return
    shown = "; ".join(f"{', '.join(ids)} from {note}" for note, ids in dupes[:5])

    def retire() -> str:
        retired = []
        for note, ids in dupes:
            for rid in ids[1:]:
                rec = canon.delete(rid, actor="auto",
                                   note=f"storyreel doctor: duplicate of {ids[0]} ({note})")
                ledger.append(actor="auto", action="repair", record_id=rid, kind=rec.kind, rev=rec.rev,
                              inputs={"duplicate_of": ids[0], "note": note}, note=rec.note)
                retired.append(rid)
        return (f"retired {', '.join(retired)} with a tombstone revision (undo brings one back); "
                "the first of each is kept")

    report.add("canon", f"duplicate live records created by one proposal: {shown}", repair=retire)


def _check_bible(project: Project, report: Report, canon: Canon, quarantine: _Quarantine) -> None:
    from memory.bible import Bible

    folder = project.chroma_dir
    if not folder.exists():
        def build() -> str:
            with Bible(folder) as fresh:
                return f"rebuilt the index from canon ({fresh.rebuild(canon)} records)"

        report.add("bible", f"the bible index ({quarantine.rel(folder)}) is missing; sessions refill it "
                   "in the background", repair=build)
        return
    try:
        bible = Bible(folder)
    except StoryreelError as exc:
        def rebuild_fresh() -> str:
            moved = quarantine.move(folder) if folder.exists() else None
            with Bible(folder) as fresh:
                count = fresh.rebuild(canon)
            return (f"moved the broken index to {quarantine.rel(moved)} and " if moved else "") + \
                f"rebuilt it from canon ({count} records)"

        report.add("bible", f"the bible index cannot be opened: {exc}", repair=rebuild_fresh)
        return
    try:
        missing, stale, extra = bible.missing(canon)
    finally:
        bible.close()
    if missing or stale or extra:
        parts = [f"{len(ids)} {what} ({', '.join(ids[:3])}{'…' if len(ids) > 3 else ''})"
                 for what, ids in (("not indexed", missing), ("indexed at an older revision", stale),
                                   ("indexed but not in canon", extra)) if ids]

        def sync() -> str:
            with Bible(folder) as again:
                return f"re-indexed {again.sync(canon)} record(s) from canon"

        report.add("bible", "bible index out of date: " + "; ".join(parts), repair=sync)
    else:
        report.add("bible", "bible index matches canon", ok=True)


def _paths_in(value: object) -> Iterator[str]:
    if isinstance(value, str):
        if value.startswith(("assets/", "renders/")):
            yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from _paths_in(item)


def _check_files(project: Project, report: Report, canon: Canon) -> None:
    missing, outside = [], []
    for rec in canon.list():
        for rel in _paths_in(rec.data):
            try:
                if not project.resolve(rel).exists():
                    missing.append(f"{rel} ({rec.id})")
            except PathOutsideProjectError:
                outside.append(f"{rel} ({rec.id})")
    if missing:
        report.add("files", f"{len(missing)} file(s) canon refers to are missing: {', '.join(missing[:5])}; "
                   "restore them from a backup, or redo those items (Redo, or Upload your own)")
    if outside:
        report.add("files", f"{len(outside)} path(s) in canon point outside the project: "
                   f"{', '.join(outside[:5])}; they are never read")
    if not missing and not outside:
        report.add("files", "every file canon refers to is there", ok=True)


def orphaned_temporaries(project: Project) -> tuple[list[Path], list[Path]]:
    """(temporaries a crash left, render run folders a later render can still rescue parts from)."""
    root = project.root
    skip = {root / d for d in _SKIP_DIRS}
    found, rescuable = [], []
    for folder, dirs, files in os.walk(root):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for name in [*dirs, *files]:
            if name == ".storyreel.lock" or not any(fnmatch.fnmatch(name, p) for p in TEMPORARY_PATTERNS):
                continue
            path = here / name
            if name.startswith(".run-") and path.is_dir() and (path / "parts.json").exists():
                rescuable.append(path)
            else:
                found.append(path)
        dirs[:] = [d for d in dirs if here / d not in found and here / d not in rescuable]
    return found, rescuable


def _check_temporaries(project: Project, report: Report, quarantine: _Quarantine) -> None:
    found, rescuable = orphaned_temporaries(project)
    if rescuable:
        report.add("temporaries", f"{len(rescuable)} interrupted render run(s) kept for the next render "
                   f"to rescue finished segments from: {', '.join(quarantine.rel(p) for p in rescuable)}",
                   ok=True)
    if not found:
        report.add("temporaries", "no orphaned temporaries", ok=True)
        return
    shown = ", ".join(quarantine.rel(p) for p in found[:5]) + ("…" if len(found) > 5 else "")

    def move_all() -> str:
        for path in found:
            quarantine.move(path)
        noun = "temporary" if len(found) == 1 else "temporaries"
        return f"moved {len(found)} {noun} to {quarantine.rel(quarantine.folder)}"

    report.add("temporaries", f"{len(found)} orphaned temporar{'y' if len(found) == 1 else 'ies'} left "
               f"by a crash: {shown}", repair=move_all)


# ----------------------------------------------------------------------------- running


def diagnose(project: Project, quarantine: _Quarantine | None = None) -> tuple[Report, Canon | None]:
    """Every check; the caller holds the project lock and closes the returned canon."""
    quarantine = quarantine or _Quarantine(project)
    report = Report(project)
    ledger = Ledger(project.ledger_path)
    canon = _check_canon(project, report, ledger)
    _check_checkpoints(project, report, quarantine)
    if canon is not None:
        _check_ledger(project, report, canon, ledger)
        _check_duplicates(report, canon, ledger)
        _check_bible(project, report, canon, quarantine)
        _check_files(project, report, canon)
    _check_temporaries(project, report, quarantine)
    return report, canon


def run_doctor(project: Project, *, repair: bool, out: TextIO) -> int:
    """Check (and with `repair`, mend) `project`; prints findings. 0 when healthy, 1 otherwise."""
    with ProjectLock(project):
        quarantine = _Quarantine(project)
        report, canon = diagnose(project, quarantine)
        try:
            print(f"storyreel doctor: {project.name!r} at {project.root}", file=out)
            for f in report.findings:
                print(f"  {'ok' if f.ok else 'PROBLEM':8} {f.area}: {f.message}", file=out)
            if repair and report.problems:
                print("repairing:", file=out)
                for f in report.problems:
                    if f.repair is None:
                        print(f"  {'cannot':8} {f.area}: needs you (see above)", file=out)
                        continue
                    try:
                        f.done = f.repair()
                    except (StoryreelError, OSError, sqlite3.Error) as exc:
                        f.failed = str(exc)
                        print(f"  {'FAILED':8} {f.area}: {exc}", file=out)
                    else:
                        print(f"  {'fixed':8} {f.area}: {f.done}", file=out)
        finally:
            if canon is not None:
                canon.close()
        if repair and any(f.done for f in report.findings):
            again, canon = diagnose(project, quarantine)   # what is left after the repairs
            if canon is not None:
                canon.close()
            remaining = again.problems
        else:
            remaining = report.problems
        if not remaining:
            print("healthy", file=out)
            return 0
        fixable = any(f.repair for f in remaining)
        hint = f"; run `storyreel doctor {project.root} --repair`" if fixable and not repair else ""
        print(f"{len(remaining)} problem(s) remain{hint}", file=out)
        return 1
