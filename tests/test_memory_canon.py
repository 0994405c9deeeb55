"""Canon records with revisions."""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from memory.canon import KINDS, Canon, Record
from memory.errors import InputError, ProjectError, RecordNotFoundError


@pytest.fixture
def canon(tmp_path: Path):
    store = Canon(tmp_path / "canon.sqlite")
    yield store
    store.close()


AIKO = {"name": "Aiko", "role": "lead", "look": "red scarf, short black hair"}


def test_create_uses_name_slug_then_short_uuid(canon: Canon) -> None:
    aiko = canon.create("character", AIKO, actor="human", note="from premise")
    assert aiko.id == "character-aiko"
    assert (aiko.kind, aiko.rev, aiko.data, aiko.actor, aiko.note) == ("character", 1, AIKO, "human", "from premise")
    assert not aiko.deleted and aiko.created_at.endswith("+00:00")
    twin = canon.create("character", {"name": "aiko"}, actor="assistant")
    assert twin.id.startswith("character-") and twin.id != "character-aiko"
    assert len(twin.id) == len("character-") + 8
    nameless = canon.create("shot", {"framing": "close-up"}, actor="assistant")
    assert nameless.id.startswith("shot-")
    chosen = canon.create("episode", {"n": 1}, actor="human", record_id="ep01")
    assert chosen.id == "ep01"
    assert canon.create("location", {"name": "狐の森"}, actor="human").id == "location-狐の森"


def test_create_rejects_unknown_kind_bad_data_and_duplicate_id(canon: Canon) -> None:
    with pytest.raises(InputError, match="'villain'.*character"):
        canon.create("villain", {}, actor="human")
    with pytest.raises(InputError, match=r"look\.when.*datetime"):
        import datetime

        canon.create("character", {"name": "X", "look": {"when": datetime.datetime.now()}}, actor="human")
    with pytest.raises(InputError, match="nan"):
        canon.create("character", {"name": "X", "age": float("nan")}, actor="human")
    with pytest.raises(InputError, match="keys must be text"):
        canon.create("character", {1: "x"}, actor="human")
    with pytest.raises(InputError, match="must be a dict"):
        canon.create("character", ["x"], actor="human")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="actor"):
        canon.create("character", AIKO, actor="")
    canon.create("character", AIKO, actor="human")
    with pytest.raises(InputError, match="'character-aiko' already exists"):
        canon.create("character", AIKO, actor="human", record_id="character-aiko")
    with pytest.raises(InputError, match="record id"):
        canon.create("character", AIKO, actor="human", record_id="has space")
    assert [r.id for r in canon.list()] == ["character-aiko"]


def test_revise_history_get_and_immutable_old_revisions(canon: Canon) -> None:
    first = canon.create("character", AIKO, actor="assistant")
    second = canon.revise(first.id, {**AIKO, "look": "blue coat"}, actor="human", note="director edit")
    assert second.rev == 2 and second.data["look"] == "blue coat" and second.note == "director edit"
    assert canon.get(first.id) == second
    assert canon.get(first.id, rev=1).data == AIKO
    assert [r.rev for r in canon.history(first.id)] == [1, 2]
    assert [r.actor for r in canon.history(first.id)] == ["assistant", "human"]
    # records hand out copies: mutating one does not change the store
    second.data["look"] = "tampered"
    assert canon.get(first.id).data["look"] == "blue coat"
    # the table itself refuses edits of history
    raw = sqlite3.connect(canon.db_path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("UPDATE revisions SET data='{}' WHERE rev=1")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        raw.execute("DELETE FROM revisions")
    raw.close()


def test_get_missing_names_id_and_rev(canon: Canon) -> None:
    with pytest.raises(RecordNotFoundError, match="'character-nobody'"):
        canon.get("character-nobody")
    aiko = canon.create("character", AIKO, actor="human")
    with pytest.raises(RecordNotFoundError, match=r"no rev 5.*1\.\.1"):
        canon.get(aiko.id, rev=5)
    with pytest.raises(RecordNotFoundError):
        canon.history("character-nobody")
    with pytest.raises(RecordNotFoundError):
        canon.revise("character-nobody", {}, actor="human")


def test_revert_is_a_new_revision(canon: Canon) -> None:
    aiko = canon.create("character", AIKO, actor="assistant")
    canon.revise(aiko.id, {**AIKO, "look": "blue coat"}, actor="human")
    canon.revise(aiko.id, {**AIKO, "look": "green hat"}, actor="human")
    back = canon.revert(aiko.id, 1, actor="human")
    assert back.rev == 4 and back.data == AIKO and back.note == "revert to rev 1"
    assert [r.data["look"] for r in canon.history(aiko.id)] == [
        "red scarf, short black hair", "blue coat", "green hat", "red scarf, short black hair",
    ]
    again = canon.revert(aiko.id, 3, actor="human", note="changed my mind")
    assert again.rev == 5 and again.data["look"] == "green hat" and again.note == "changed my mind"
    with pytest.raises(RecordNotFoundError, match="no rev 9"):
        canon.revert(aiko.id, 9, actor="human")


def test_delete_tombstone_hidden_and_revert_restores(canon: Canon) -> None:
    aiko = canon.create("character", AIKO, actor="human")
    fox = canon.create("character", {"name": "Kitsune"}, actor="human")
    tomb = canon.delete(aiko.id, actor="human", note="cut from the series")
    assert tomb.deleted and tomb.rev == 2 and tomb.data == AIKO
    assert [r.id for r in canon.list("character")] == [fox.id]
    assert [r.id for r in canon.list("character", include_deleted=True)] == [aiko.id, fox.id]
    assert canon.get(aiko.id).deleted
    assert canon.find_by_name("character", "aiko") is None
    with pytest.raises(InputError, match="already deleted"):
        canon.delete(aiko.id, actor="human")
    with pytest.raises(InputError, match="is deleted.*revert"):
        canon.revise(aiko.id, AIKO, actor="human")
    with pytest.raises(InputError, match="is a deletion"):
        canon.revert(aiko.id, 2, actor="human")
    back = canon.revert(aiko.id, 1, actor="human")
    assert not back.deleted and back.rev == 3
    assert [r.id for r in canon.list("character")] == [aiko.id, fox.id]
    assert canon.find_by_name("character", "AIKO") == back


def test_list_orders_by_creation_and_filters_kind(canon: Canon) -> None:
    ids = [canon.create(kind, {"name": f"n{i}"}, actor="auto").id for i, kind in enumerate(
        ["character", "location", "character", "prop"])]
    canon.revise(ids[0], {"name": "n0 edited"}, actor="human")
    assert [r.id for r in canon.list()] == ids
    assert [r.id for r in canon.list("character")] == [ids[0], ids[2]]
    assert canon.list("character")[0].rev == 2
    assert canon.list("glossary") == []
    with pytest.raises(InputError, match="unknown record kind"):
        canon.list("villain")
    assert set(KINDS) >= {"character", "location", "shot", "panel", "take", "voice"}


def test_find_by_name_is_case_insensitive_per_kind(canon: Canon) -> None:
    aiko = canon.create("character", AIKO, actor="human")
    canon.create("location", {"name": "Aiko"}, actor="human")
    assert canon.find_by_name("character", "  aIKO ") == aiko
    assert canon.find_by_name("location", "aiko").kind == "location"
    assert canon.find_by_name("prop", "aiko") is None


def test_reopen_persists_everything(tmp_path: Path) -> None:
    path = tmp_path / "canon.sqlite"
    with Canon(path) as first:
        aiko = first.create("character", AIKO, actor="human")
        first.revise(aiko.id, {**AIKO, "role": "rival"}, actor="assistant")
    with Canon(path) as second:
        assert second.get(aiko.id).data["role"] == "rival"
        assert len(second.history(aiko.id)) == 2
        assert second._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_threads_revise_without_losing_revisions(canon: Canon) -> None:
    shot = canon.create("shot", {"n": 0}, actor="auto")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(20):
                canon.revise(shot.id, {"n": worker * 100 + i}, actor="auto")
                canon.list("shot")
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [r.rev for r in canon.history(shot.id)] == list(range(1, 82))


def test_two_connections_share_the_file(tmp_path: Path) -> None:
    path = tmp_path / "canon.sqlite"
    with Canon(path) as a, Canon(path) as b:
        rec = a.create("prop", {"name": "Umbrella"}, actor="human")
        b.revise(rec.id, {"name": "Umbrella", "color": "red"}, actor="human")
        assert a.get(rec.id).rev == 2


def test_corrupt_database_is_a_project_error(tmp_path: Path) -> None:
    path = tmp_path / "canon.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ProjectError, match="canon.sqlite"):
        Canon(path)
    with pytest.raises(ProjectError, match="does not exist"):
        Canon(tmp_path / "missing" / "canon.sqlite")


def test_record_name_property() -> None:
    rec = Record(id="shot-1", kind="shot", rev=1, data={}, created_at="", actor="auto")
    assert rec.name == "shot-1"


# --- one transaction per accepted proposal ----------------------------------------------------


def _write_aiko_and_episode(canon: Canon, calls: list[int]) -> list[Record]:
    calls.append(1)
    return [canon.upsert("character", AIKO, actor="human", record_id=None, note="proposal p1"),
            canon.upsert("episode", {"n": 1}, actor="human", record_id="episode-1", note="proposal p1")]


def test_commit_proposal_writes_once_and_returns_the_stored_records(canon: Canon) -> None:
    calls: list[int] = []
    first, wrote = canon.commit_proposal("p1", lambda: _write_aiko_and_episode(canon, calls),
                                         kind="character", actor="human", action="accept",
                                         note="proposal p1", inputs={"retrieved": ["series"]})
    assert wrote and [(r.id, r.rev) for r in first] == [("character-aiko", 1), ("episode-1", 1)]
    again, wrote = canon.commit_proposal("p1", lambda: _write_aiko_and_episode(canon, calls),
                                         kind="character", actor="human", action="accept", note="proposal p1")
    assert not wrote and calls == [1]          # the second run never wrote
    assert again == first                        # same ids, revs, data, timestamps
    assert [r.id for r in canon.list("character")] == ["character-aiko"]   # no second live Aiko
    commit = canon.commit_of("p1")
    assert commit is not None and commit.records == (("character-aiko", 1), ("episode-1", 1))
    assert (commit.kind, commit.actor, commit.action, commit.inputs) == (
        "character", "human", "accept", {"retrieved": ["series"]})
    assert not commit.ledgered and canon.commits(unledgered_only=True) == [commit]
    canon.mark_ledgered("p1")
    assert canon.commits(unledgered_only=True) == [] and canon.commit_of("p1").ledgered
    assert canon.commit_of("never") is None


def test_a_failing_commit_leaves_nothing(canon: Canon) -> None:
    def half_then_fail() -> list[Record]:
        canon.create("character", AIKO, actor="human")
        canon.revise("series-missing", {"x": 1}, actor="human")   # RecordNotFoundError
        return []

    with pytest.raises(RecordNotFoundError):
        canon.commit_proposal("p2", half_then_fail, kind="character", actor="human", action="accept")
    assert canon.list() == [] and canon.commit_of("p2") is None and canon.revision_count() == 0
    # the same proposal can then commit for real
    records, wrote = canon.commit_proposal(
        "p2", lambda: [canon.create("character", AIKO, actor="human")], kind="character",
        actor="human", action="accept")
    assert wrote and records[0].id == "character-aiko"


def test_an_error_caught_inside_a_commit_undoes_only_its_own_write(canon: Canon) -> None:
    def write() -> list[Record]:
        kept = canon.create("character", AIKO, actor="human")
        try:
            canon.create("character", {"name": "Ren"}, actor="human", record_id="character-aiko")
        except InputError:
            pass   # a nested write that failed rolls back to its savepoint; the outer one goes on
        return [kept]

    canon.commit_proposal("p3", write, kind="character", actor="human", action="accept")
    assert [r.id for r in canon.list()] == ["character-aiko"] and canon.revision_count() == 1


def test_commit_is_atomic_for_other_connections_and_threads(tmp_path: Path) -> None:
    path = tmp_path / "canon.sqlite"
    with Canon(path) as canon, Canon(path) as other:
        inside = threading.Event()
        release = threading.Event()
        seen: list[int] = []

        def slow_write() -> list[Record]:
            rec = canon.create("character", AIKO, actor="human")
            inside.set()
            release.wait(5)
            return [rec]

        worker = threading.Thread(target=canon.commit_proposal, args=("p4", slow_write),
                                  kwargs={"kind": "character", "actor": "human", "action": "accept"})
        worker.start()
        assert inside.wait(5)
        seen.append(len(other.list()))                 # another process sees nothing mid-commit
        reader = threading.Thread(target=lambda: seen.append(len(canon.list())))
        reader.start()                                 # another thread of this process waits for it
        reader.join(0.3)
        assert reader.is_alive()
        release.set()
        worker.join(5)
        reader.join(5)
        assert seen == [0, 1] and len(other.list()) == 1


@pytest.mark.parametrize("proposal_id", ["", "   ", None, 7])
def test_commit_proposal_refuses_a_missing_proposal_id(canon: Canon, proposal_id) -> None:
    with pytest.raises(InputError, match="proposal id"):
        canon.commit_proposal(proposal_id, list, kind="series", actor="human", action="accept")


def test_zeroed_pages_are_a_project_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "canon.sqlite"
    with Canon(path) as canon:
        for i in range(300):
            canon.create("shot", {"framing": "wide", "n": i, "pad": "x" * 200}, actor="human")
    raw = bytearray(path.read_bytes())
    raw[4096 * 2: 4096 * 6] = bytes(4096 * 4)      # zero four pages after the header page
    path.write_bytes(bytes(raw))
    with pytest.raises(ProjectError, match="canon.sqlite.*backup"):
        Canon(path)
