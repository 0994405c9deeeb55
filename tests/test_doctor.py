"""`storyreel doctor`: each kind of damage is found, repaired when it can be, and nothing accepted is lost.

Every case starts from a real project (a session that accepted the series and a character), damages
it one way, and checks what the doctor says before and after --repair.
"""
from __future__ import annotations

import hashlib
import io
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import ormsgpack
import pytest

from memory.bible import Bible
from memory.canon import Canon
from memory.doctor import MissingCanonError, orphaned_temporaries, run_doctor
from memory.errors import ProjectLockedError
from memory.ledger import Ledger
from memory.project import Project, create_project
from tests.fakes import ScriptedChatModel, accept_vision
from ui.session import DirectorSession

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path) -> Project:
    project = create_project(tmp_path / "projects", "Fox Rain")
    with DirectorSession(project, ScriptedChatModel()) as s:
        s.start()
        accept_vision(s, s.send("A shrine maiden hears rain spirits."))
        s.decide({"type": "accept"})           # series + style
        s.decide({"type": "accept"})           # Aiko
    return project


def doctor(project: Project, repair: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = run_doctor(project, repair=repair, out=out)
    return code, out.getvalue()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- the kinds of damage


def commit_without_ledger(p: Project) -> None:
    """A crash between the canon transaction and the ledger (the bug this replaces)."""
    with Canon(p.canon_path) as canon:
        canon.commit_proposal("p-crash", lambda: [canon.create("location", {"name": "Fox Shrine"}, actor="human",
                                                               note="proposal p-crash")],
                              kind="location", actor="human", action="accept", note="proposal p-crash")


def old_bug_duplicates(p: Project) -> None:
    """What the pre-transaction commit left: a second live Aiko from the same proposal."""
    with Canon(p.canon_path) as canon:
        aiko = canon.find_by_name("character", "Aiko")
        twin = canon.create("character", dict(aiko.data), actor="human", note=aiko.note)
    Ledger(p.ledger_path).append(actor="human", action="accept", record_id=twin.id, kind="character", rev=1,
                                 note=aiko.note)


def revision_without_ledger(p: Project) -> None:
    with Canon(p.canon_path) as canon:
        canon.revise("series", {"title": "Fox Rain", "logline": "changed by hand"}, actor="human")


def decision_without_revision(p: Project) -> None:
    Ledger(p.ledger_path).append(actor="human", action="accept", record_id="character-ghost", kind="character",
                                 rev=1, note="proposal lost")


def bible_out_of_date(p: Project) -> None:
    with Bible(p.chroma_dir) as bible:
        bible.remove("character-aiko")


def bible_deleted(p: Project) -> None:
    shutil.rmtree(p.chroma_dir)


def bible_corrupt(p: Project) -> None:
    for extra in p.chroma_dir.glob("chroma.sqlite3-*"):
        extra.unlink()
    (p.chroma_dir / "chroma.sqlite3").write_bytes(b"not sqlite" * 500)


def missing_asset(p: Project) -> None:
    with Canon(p.canon_path) as canon:
        canon.create("panel", {"kind": "reference", "subject": "character-aiko",
                               "path": "assets/panels/character-aiko/v1-gone.png"}, actor="human",
                     record_id="ref-character-aiko")
    Ledger(p.ledger_path).append(actor="human", action="accept", record_id="ref-character-aiko", kind="panel",
                                 rev=1)


def temporaries(p: Project) -> None:
    for rel in ("renders/ep01/.concat-4242-x.txt", "renders/ep01/.episode.4242.part.mp4",
                "renders/ep01/.mix-4242-a.wav", ".project.toml.abc123.tmp",
                "assets/uploads/.upload-0123456789ab.tmp.png", "assets/drafts/take/l1/en/p/take.raw.wav"):
        path = p.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"half")
    (p.root / "renders/ep01/.side-4242-x").mkdir()


def crafted_checkpoint(p: Project) -> None:
    payload = ormsgpack.packb({"x": ormsgpack.Ext(1, ormsgpack.packb(["os", "system", [f"touch {p.root}/ran"]]))})
    conn = sqlite3.connect(p.checkpoints_path)
    with conn:
        conn.execute("UPDATE checkpoints SET type='msgpack', checkpoint=?", (payload,))
    conn.close()


def garbage_checkpoints(p: Project) -> None:
    for extra in ("-wal", "-shm"):
        Path(str(p.checkpoints_path) + extra).unlink(missing_ok=True)
    p.checkpoints_path.write_bytes(b"\x00garbage" * 100)


@dataclass(frozen=True)
class Case:
    damage: Callable[[Project], None]
    found: str            # what the doctor's report says
    repairable: bool


CASES = {
    "commit without ledger lines": Case(commit_without_ledger, "without all their ledger lines", True),
    "duplicate live records": Case(old_bug_duplicates, "duplicate live records", True),
    "revision without ledger line": Case(revision_without_ledger, "canon revision(s) without a ledger line", True),
    "decision without revision": Case(decision_without_revision, "without their canon revision", False),
    "bible index out of date": Case(bible_out_of_date, "not indexed (character-aiko)", True),
    "bible index deleted": Case(bible_deleted, "is missing; sessions refill it", True),
    "bible index corrupt": Case(bible_corrupt, "cannot be opened", True),
    "missing asset": Case(missing_asset, "canon refers to are missing", False),
    "orphaned temporaries": Case(temporaries, "orphaned temporaries", True),
    "crafted checkpoint": Case(crafted_checkpoint, "never writes", True),
    "garbage checkpoints": Case(garbage_checkpoints, "not an SQLite database", True),
}


def test_a_healthy_project_is_healthy(project) -> None:
    code, text = doctor(project)
    assert code == 0 and text.rstrip().endswith("healthy") and "PROBLEM" not in text
    code, text = doctor(project, repair=True)
    assert code == 0 and "repairing" not in text


@pytest.mark.parametrize("name", list(CASES))
def test_doctor_finds_and_repairs(project, name) -> None:
    case = CASES[name]
    case.damage(project)
    code, text = doctor(project)
    assert code == 1 and "PROBLEM" in text and case.found in text, text
    code, text = doctor(project, repair=True)
    if case.repairable:
        assert code == 0 and "fixed" in text and text.rstrip().endswith("healthy"), text
        assert doctor(project)[0] == 0
    else:
        assert code == 1 and "cannot" in text and "problem(s) remain" in text, text
    assert not (project.root / "ran").exists()


def test_repairs_keep_every_accepted_record_and_asset(project) -> None:
    asset = project.root / "assets/panels/character-aiko/v1-abc.png"
    asset.parent.mkdir(parents=True)
    asset.write_bytes(b"an accepted image")
    with Canon(project.canon_path) as canon:
        canon.create("panel", {"kind": "reference", "subject": "character-aiko",
                               "path": "assets/panels/character-aiko/v1-abc.png"}, actor="human",
                     record_id="ref-character-aiko")
    Ledger(project.ledger_path).append(actor="human", action="accept", record_id="ref-character-aiko",
                                       kind="panel", rev=1)
    temporaries(project)
    run = project.root / "renders/ep01/cache/.run-4242-1-seg"   # a render can still rescue these parts
    run.mkdir(parents=True)
    (run / "parts.json").write_text("{}")
    old_bug_duplicates(project)
    before = _sha(asset)
    with Canon(project.canon_path) as canon:
        live_before = {r.id for r in canon.list()}
    code, text = doctor(project, repair=True)
    assert code == 0, text
    assert _sha(asset) == before and run.is_dir()                  # never moved, never touched
    found, rescuable = orphaned_temporaries(project)
    assert found == [] and rescuable == [run]
    quarantined = sorted(p.relative_to(project.root).as_posix()
                         for p in (project.root / "state/quarantine").rglob("*") if p.is_file())
    assert any(q.endswith("renders/ep01/.episode.4242.part.mp4") for q in quarantined)
    assert any(q.endswith("assets/uploads/.upload-0123456789ab.tmp.png") for q in quarantined)
    with Canon(project.canon_path) as canon:
        live_after = {r.id for r in canon.list()}
        assert [r.id for r in canon.list("character")] == ["character-aiko"]
        twin = (live_before - live_after).pop()
        assert canon.get(twin).deleted and canon.get(twin, 1).data["name"] == "Aiko"   # undoable
    assert live_after == live_before - {twin}
    repairs = [e for e in Ledger(project.ledger_path).entries() if e["action"] == "repair"]
    assert [e["record_id"] for e in repairs] == [twin] and repairs[0]["actor"] == "auto"


def test_after_a_crafted_checkpoint_is_moved_aside_the_chat_starts_over(project) -> None:
    crafted_checkpoint(project)
    assert doctor(project, repair=True)[0] == 0
    assert list((project.root / "state/quarantine").rglob("checkpoints.sqlite"))
    with DirectorSession(project, ScriptedChatModel()) as s:
        view = s.start()
        assert view.pending["kind"] == "input"                  # asks for the premise again ...
        assert s.canon.find_by_name("character", "Aiko")        # ... and canon is all there
    assert not (project.root / "ran").exists()


def _delete(path: Path) -> None:
    path.unlink()
    for extra in ("-wal", "-shm"):
        Path(str(path) + extra).unlink(missing_ok=True)


def _truncate(path: Path) -> None:
    _delete(path)
    path.write_bytes(b"")


def _replace_with_empty_canon(path: Path) -> None:
    _delete(path)
    Canon(path).close()


@pytest.mark.parametrize("damage", [_delete, _truncate, _replace_with_empty_canon],
                         ids=["deleted", "0-byte", "empty database"])
def test_a_lost_canon_is_refused_not_recreated_empty(project, damage) -> None:
    damage(project.canon_path)
    size = project.canon_path.stat().st_size if project.canon_path.exists() else None
    with pytest.raises(MissingCanonError) as refused:
        DirectorSession(project, ScriptedChatModel())
    message = str(refused.value)
    assert "canon.sqlite" in message and "accepted decisions" in message and "backup" in message
    assert (project.canon_path.stat().st_size if project.canon_path.exists() else None) == size  # untouched
    code, text = doctor(project, repair=True)
    assert code == 1 and ("restore" in text)
    with pytest.raises(MissingCanonError):         # the lock was released; still refused
        DirectorSession(project, ScriptedChatModel())


def test_a_new_project_opens_without_canon(tmp_path) -> None:
    project = create_project(tmp_path, "Empty")
    with DirectorSession(project, ScriptedChatModel()) as s:
        assert s.start().pending["kind"] == "input"
    assert doctor(project)[0] == 0


def test_a_deleted_bible_index_is_rebuilt_in_the_background_on_open(project) -> None:
    bible_deleted(project)
    with DirectorSession(project, ScriptedChatModel()) as s:
        s._bible_sync.join(60)
        assert s.bible.missing(s.canon) == ([], [], [])
        assert s.bible.search("red scarf", kinds=["character"], k=1)[0].record_id == "character-aiko"


def test_a_corrupt_bible_index_is_moved_aside_and_refilled_on_open(project) -> None:
    bible_corrupt(project)
    with DirectorSession(project, ScriptedChatModel()) as s:
        s._bible_sync.join(60)
        assert s.bible.missing(s.canon) == ([], [], [])
    assert list((project.root / "state/quarantine").glob("*/bible-chroma/chroma.sqlite3"))


def test_doctor_refuses_while_the_project_is_open(project) -> None:
    with DirectorSession(project, ScriptedChatModel()), pytest.raises(ProjectLockedError):
        doctor(project)


def test_doctor_command_exit_codes(project) -> None:
    def storyreel(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "ui.cli", "--projects-dir", str(project.root.parent),
                               "doctor", "fox-rain", *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                              check=False)

    assert storyreel().returncode == 0
    temporaries(project)
    out = storyreel()
    assert out.returncode == 1 and "orphaned temporaries" in out.stdout and "--repair" in out.stdout
    out = storyreel("--repair")
    assert out.returncode == 0 and "fixed" in out.stdout, out.stdout + out.stderr
    help_text = subprocess.run([sys.executable, "-m", "ui.cli", "doctor", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60, check=False).stdout
    assert "--repair" in help_text and "quarantine" in help_text
