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
