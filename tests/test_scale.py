"""Per-step cost independent of series length: indexed canon lookups, ledger reads from the tail."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from memory.canon import Canon
from memory.errors import InputError
from memory.ledger import Ledger


@pytest.fixture
def canon(tmp_path: Path):
    store = Canon(tmp_path / "canon.sqlite")
    yield store
    store.close()


# ----------------------------------------------------------------------------- canon.children


def test_children_are_the_live_current_revisions_in_creation_order(canon: Canon) -> None:
    for i in range(3):
        canon.create("shot", {"scene_id": "scene-ep1-1", "index": i}, actor="human", record_id=f"s1-{i}")
        canon.create("shot", {"scene_id": "scene-ep1-2", "index": i}, actor="human", record_id=f"s2-{i}")
    assert [r.id for r in canon.children("shot", "scene_id", "scene-ep1-1")] == ["s1-0", "s1-1", "s1-2"]
    canon.revise("s1-1", {"scene_id": "scene-ep1-2", "index": 9}, actor="human")   # moved to scene 2
    canon.delete("s1-2", actor="human")
    assert [r.id for r in canon.children("shot", "scene_id", "scene-ep1-1")] == ["s1-0"]
    moved = canon.children("shot", "scene_id", "scene-ep1-2")
    assert [r.id for r in moved] == ["s2-0", "s1-1", "s2-1", "s2-2"] and moved[1].rev == 2
    canon.create("scene", {"episode": 2, "number": 1}, actor="human", record_id="scene-ep2-1")
    canon.create("fact", {"episode": 2, "subject": "x"}, actor="human", record_id="fact-ep2-x")
    assert [r.id for r in canon.children("scene", "episode", 2)] == ["scene-ep2-1"]
    assert canon.children("scene", "episode", 3) == []


def test_children_refuses_unindexed_keys_and_unknown_kinds(canon: Canon) -> None:
    with pytest.raises(InputError, match="'framing'.*scene_id, episode"):
        canon.children("shot", "framing", "wide")
    with pytest.raises(InputError, match="'villain'"):
        canon.children("villain", "episode", 1)


def test_children_query_uses_an_index(canon: Canon) -> None:
    """The plan searches an index by (kind, parent) instead of scanning every shot."""
    conn = sqlite3.connect(canon.db_path)
    try:
        for key, index in (("scene_id", "revisions_scene"), ("episode", "revisions_episode")):
            plan = " ".join(row[-1] for row in conn.execute(
                "EXPLAIN QUERY PLAN SELECT v.* FROM revisions v JOIN records r ON r.id = v.record_id "
                f"AND r.current_rev = v.rev WHERE v.kind = ? AND json_extract(v.data, '$.{key}') = ? "
                "AND v.deleted = 0 ORDER BY r.seq", ("shot", "x")))
            assert f"USING INDEX {index}" in plan, plan
    finally:
        conn.close()


def test_an_older_canon_file_gains_the_indexes_on_open(tmp_path: Path) -> None:
    path = tmp_path / "canon.sqlite"
    Canon(path).close()
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX revisions_scene")
    conn.execute("DROP INDEX revisions_episode")
    conn.commit()
    conn.close()
    Canon(path).close()
    conn = sqlite3.connect(path)
    try:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    finally:
        conn.close()
    assert {"revisions_scene", "revisions_episode"} <= names


# ----------------------------------------------------------------------------- ledger tail reads


def _fill(ledger: Ledger, n: int) -> None:
    for i in range(n):
        ledger.append(actor="human" if i % 3 else "assistant", action="accept" if i % 2 else "propose",
                      record_id=f"r{i % 7}", rev=i, note=f"n{i}")


@pytest.mark.parametrize("chunk", [16, 100, 65536])
def test_iter_reversed_reads_every_line_newest_first_across_chunks(tmp_path: Path, chunk: int) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    _fill(ledger, 40)
    with ledger.path.open("ab") as f:     # a torn line in the middle, then more lines
        f.write(b'{"id": "torn", "act')
    _fill(ledger, 5)
    got = [e["note"] for e in ledger.iter_reversed(chunk=chunk)]
    assert got == [e["note"] for e in reversed(ledger.entries())]
    assert len(got) == 45 and got[0] == "n4" and got[-1] == "n0"


def test_tail_last_and_last_for(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    assert ledger.tail(5) == [] and ledger.last_for("r1") is None
    _fill(ledger, 30)
    everything = ledger.entries()
    assert ledger.tail(4) == everything[-4:]
    assert ledger.tail(1000) == everything
    accepted = ledger.tail(3, where=lambda e: e["action"] == "accept")
    assert accepted == [e for e in everything if e["action"] == "accept"][-3:]
    assert ledger.last_for("r3") == [e for e in everything if e["record_id"] == "r3"][-1]
    assert ledger.last(lambda e: e["actor"] == "assistant") == [e for e in everything if e["actor"] == "assistant"][-1]
    assert ledger.last_for("nobody") is None
    with pytest.raises(InputError, match="tail size -1"):
        ledger.tail(-1)


def test_complete_for_one_commit_reads_only_the_ledger_since_it(tmp_path: Path, canon: Canon) -> None:
    """The per-commit completion looks at the ledger's recent tail: a line from before the commit
    (here planted, with the same record and rev, dated a day earlier) is not even read."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    stale = {"id": "old", "time": "2000-01-01T00:00:00.000+00:00", "actor": "human", "action": "accept",
             "record_id": "character-aiko", "kind": "character", "rev": 1, "inputs_hash": "", "note": ""}
    ledger.path.write_text(json.dumps(stale) + "\n")
    canon.commit_proposal("p1", lambda: [canon.create("character", {"name": "Aiko"}, actor="human")],
                          kind="character", actor="human", action="accept")
    assert ledger.complete(canon, "p1") == 1          # the old line was not taken for this commit's
    assert ledger.complete(canon, "p1") == 0          # once ledgered, never again
    lines = [e for e in ledger.entries() if e["record_id"] == "character-aiko"]
    assert [e["id"] == "old" for e in lines] == [True, False]


def test_complete_after_a_crash_between_append_and_mark(tmp_path: Path, canon: Canon) -> None:
    """A line written before a crash (commit not marked ledgered) is found in the tail, not doubled."""
    ledger = Ledger(tmp_path / "ledger.jsonl")
    _fill(ledger, 50)
    canon.commit_proposal("p2", lambda: [canon.create("character", {"name": "Ren"}, actor="human")],
                          kind="character", actor="human", action="accept")
    from memory.ledger import commit_lines

    ledger.append(**commit_lines(canon, canon.commit_of("p2"))[0])   # appended, then the crash
    assert ledger.complete(canon, "p2") == 0
    assert canon.commit_of("p2").ledgered
    assert len([e for e in ledger.entries() if e["record_id"] == "character-ren"]) == 1


# ----------------------------------------------------------------------------- derived values until canon changes


def test_memo_is_kept_until_canon_changes_and_never_inside_a_transaction(tmp_path: Path, canon: Canon) -> None:
    calls: list[int] = []

    def count() -> int:
        calls.append(1)
        return len(canon.list("fact"))

    assert canon.memo("n", count) == 0 and canon.memo("n", count) == 0 and len(calls) == 1
    canon.create("fact", {"episode": 1, "subject": "x"}, actor="human", record_id="fact-ep1-x")
    assert canon.memo("n", count) == 1 and len(calls) == 2
    with pytest.raises(RuntimeError), canon._write():   # read inside a transaction that is rolled back: not kept
        canon.create("fact", {"episode": 1, "subject": "y"}, actor="human", record_id="fact-ep1-y")
        assert canon.change_mark() is None and canon.memo("n", count) == 2
        raise RuntimeError("rolled back")
    assert canon.memo("n", count) == 1
    other = Canon(canon.db_path)                 # another process's write counts too
    try:
        other.create("fact", {"episode": 2, "subject": "z"}, actor="human", record_id="fact-ep2-z")
    finally:
        other.close()
    assert canon.memo("n", count) == 2
    mark = canon.change_mark()
    canon.delete("fact-ep2-z", actor="human")
    assert [(r.id, r.deleted) for r in canon.changes_since(mark)] == [("fact-ep2-z", True)]
    assert canon.changes_since(0, limit=1) is None


def test_all_facts_are_read_once_per_canon_change(canon: Canon) -> None:
    from memory.continuity import all_facts, write_facts

    write_facts(canon, {"episode": 1, "summary": "s", "facts": [{"subject": "Ren", "type": "dead"}]}, actor="human")
    first = all_facts(canon)
    assert [f.id for f in first] == ["fact-ep1-ren-dead"] and all_facts(canon) == first
    first.clear()                                         # a caller's list is its own
    assert len(all_facts(canon)) == 1
    canon.delete("fact-ep1-ren-dead", actor="human")
    assert all_facts(canon) == []


@pytest.mark.parametrize("kind, data, rev, deleted, expected", [
    ("scene", {"episode": 2, "number": 1}, 1, False, 2),
    ("shot", {"scene_id": "scene-ep2-1"}, 1, False, 2),
    ("motion", {"scene_id": "scene-ep2-1"}, 1, False, 2),
    ("panel", {"kind": "panel", "subject": "scene-ep2-1-s1"}, 1, False, 2),
    ("take", {"line_id": "scene-ep2-1-l3", "language": "en"}, 1, False, 2),
    ("panel", {"kind": "reference", "subject": "character-ren"}, 1, False, None),   # every panel
    ("take", {"line_id": "scene-ep9-1-l3"}, 1, False, None),                        # no such scene
    ("scene", {"episode": 2, "number": 1}, 2, False, None),                         # an edit: may move it
    ("shot", {"scene_id": "scene-ep2-1"}, 1, True, None),                           # a deletion
    ("character", {"name": "Ren"}, 1, False, None),
    ("fact", {"episode": 2, "subject": "Ren"}, 1, False, None),                     # facts reach later episodes
    ("summary", {"episode": 2}, 1, False, None),
    ("episode", {"number": 2, "started": True}, 1, False, None),
])
def test_the_episode_a_change_concerns(canon: Canon, kind: str, data: dict, rev: int, deleted: bool,
                                       expected: int | None) -> None:
    from agent.plan_memo import episode_of_change
    from memory.canon import Record

    canon.create("scene", {"episode": 2, "number": 1}, actor="human", record_id="scene-ep2-1")
    canon.create("shot", {"scene_id": "scene-ep2-1"}, actor="human", record_id="scene-ep2-1-s1")
    rec = Record(id="x", kind=kind, rev=rev, data=data, created_at="", actor="human", deleted=deleted)
    assert episode_of_change(canon, rec) == expected


def test_next_task_memo_never_hides_a_proposal(tmp_path: Path, canon: Canon) -> None:
    """The planners that found nothing are skipped until a change concerns their episode; the
    answer is always the one planning afresh gives."""
    from agent.context import DirectorContext, Targets
    from agent.kinds import next_task
    from agent.plan_memo import _MEMOS, forget
    from agent.voices import take_id
    from memory.bible import Bible

    ledger = Ledger(tmp_path / "ledger.jsonl")
    ctx = DirectorContext(canon=canon, bible=Bible(tmp_path / "chroma"), ledger=ledger, llm=None,  # type: ignore[arg-type]
                          targets=Targets(characters=0, locations=0, props=0, episodes=2, scenes=1),
                          project_root=tmp_path)

    def planned():
        got = next_task(canon, ctx)
        quiet = set(_MEMOS[canon].quiet) if canon in _MEMOS else set()
        forget(canon)
        assert next_task(canon, ctx) == got          # the same as planning afresh
        forget(canon)
        next_task(canon, ctx)                        # the memo as it was before the check
        _MEMOS[canon].quiet = quiet
        return got

    for rid, kind, data in (("vision", "vision", {"themes": []}), ("series", "series", {"title": "t"}),
                            ("outline", "outline", {"episodes": [{"number": 1}, {"number": 2}]}),
                            ("episode-1", "episode", {"number": 1}), ("episode-2", "episode", {"number": 2}),
                            ("beats-ep1", "beats", {"episode": 1, "beats": []})):
        canon.upsert(kind, data, actor="human", record_id=rid)
    assert planned() == {"kind": "scene", "target_id": None, "episode": 1, "number": 1}
    canon.create("scene", {"episode": 1, "number": 1, "lines": [{"id": "scene-ep1-1-l1"}]}, actor="human",
                 record_id="scene-ep1-1")
    assert planned() == {"kind": "facts", "target_id": None, "episode": 1}
    canon.upsert("summary", {"episode": 1}, actor="human", record_id="summary-ep1")
    assert planned() is None
    assert (1, "scene") in _MEMOS[canon].quiet
    canon.create("take", {"line_id": "scene-ep1-1-l1"}, actor="human", record_id=take_id("scene-ep1-1-l1", "en"))
    assert planned() is None                         # a new record of episode 1: episode 1 asked again
    canon.upsert("episode", {"number": 2, "started": True}, actor="human", record_id="episode-2")
    assert planned() == {"kind": "beats", "target_id": None, "episode": 2}
    canon.upsert("beats", {"episode": 2, "beats": []}, actor="human", record_id="beats-ep2")
    canon.create("scene", {"episode": 2, "number": 1}, actor="human", record_id="scene-ep2-1")
    assert planned() is None                         # the last episode of the outline: no story so far
    canon.delete("scene-ep1-1", actor="human")       # a deletion concerns any episode
    assert planned() == {"kind": "scene", "target_id": None, "episode": 1, "number": 1}
    ctx.bible.close()


def test_ids_are_the_live_records_of_a_kind_without_their_data(canon: Canon) -> None:
    for i in range(3):
        canon.create("shot", {"scene_id": "scene-ep1-1", "index": i}, actor="human", record_id=f"s-{i}")
    canon.delete("s-1", actor="human")
    canon.create("panel", {"kind": "panel", "subject": "s-0"}, actor="human", record_id="panel-s-0")
    assert canon.ids("shot") == [r.id for r in canon.list("shot")] == ["s-0", "s-2"]
    with pytest.raises(InputError, match="'villain'"):
        canon.ids("villain")
