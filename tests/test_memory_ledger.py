"""Decision ledger: durable whole lines, torn lines tolerated, no interleaving across processes."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from memory.canon import Canon
from memory.errors import InputError, ProjectError
from memory.ledger import Ledger, inputs_hash

REPO = Path(__file__).resolve().parents[1]


def test_append_writes_one_json_line_with_all_keys(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    entry = ledger.append(
        actor="human", action="accept", record_id="character-aiko", kind="character", rev=2,
        inputs={"prompt": "brave", "seed": 7}, note="looks right",
    )
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0]) == entry
    assert set(entry) == {"id", "time", "actor", "action", "record_id", "kind", "rev", "inputs_hash", "note",
                          "branch"}
    assert entry["time"].endswith("+00:00")
    expected = hashlib.sha256(b'{"prompt":"brave","seed":7}').hexdigest()
    assert entry["inputs_hash"] == f"sha256:{expected}"


def test_inputs_hash_is_canonical() -> None:
    assert inputs_hash({"b": 1, "a": [1, 2]}) == inputs_hash({"a": [1, 2], "b": 1})
    assert inputs_hash({"a": 1}) != inputs_hash({"a": 2})
    assert inputs_hash({"p": Path("x/y")}) == inputs_hash({"p": "x/y"})
    assert inputs_hash(None).startswith("sha256:")


def test_entries_filter_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append(actor="assistant", action="propose", record_id="shot-1", kind="shot")
    ledger.append(actor="human", action="reject", record_id="shot-1", note="too dark")
    ledger.append(actor="auto", action="index", record_id="character-aiko")
    again = Ledger(path)
    assert [e["action"] for e in again.entries()] == ["propose", "reject", "index"]
    assert [e["note"] for e in again.entries("shot-1")] == ["", "too dark"]
    assert Ledger(tmp_path / "empty.jsonl").entries() == []


def test_rejects_bad_actor_action_and_missing_folder(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with pytest.raises(InputError, match="'director'.*human, assistant, auto"):
        ledger.append(actor="director", action="accept")
    with pytest.raises(InputError, match="action"):
        ledger.append(actor="human", action=" ")
    with pytest.raises(InputError, match="rev"):
        ledger.append(actor="human", action="accept", rev="2")  # type: ignore[arg-type]
    assert not (tmp_path / "ledger.jsonl").exists()
    with pytest.raises(ProjectError, match="does not exist"):
        Ledger(tmp_path / "missing" / "ledger.jsonl")


def test_truncated_last_line_skipped_and_next_append_starts_fresh(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    ledger = Ledger(path)
    ledger.append(actor="human", action="accept", record_id="a")
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"id": "torn", "time": "2026-')  # a writer died mid-line
    assert [e["record_id"] for e in ledger.entries()] == ["a"]
    ledger.append(actor="human", action="accept", record_id="b")
    assert [e["record_id"] for e in ledger.entries()] == ["a", "b"]
    assert path.read_bytes().endswith(b"\n")


def test_threads_append_whole_lines(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "ledger.jsonl")

    def work(n: int) -> None:
        for i in range(10):
            ledger.append(actor="auto", action="thread", record_id=f"t{n}-{i}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    lines = (tmp_path / "ledger.jsonl").read_text().splitlines()
    assert len(lines) == 40
    assert {json.loads(line)["record_id"] for line in lines} == {f"t{n}-{i}" for n in range(4) for i in range(10)}


_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from memory.ledger import Ledger
    ledger = Ledger(Path(sys.argv[1]))
    tag = sys.argv[2]
    for i in range(int(sys.argv[3])):
        ledger.append(actor="auto", action="bulk", record_id=f"{tag}-{i}", note=tag * 2000)
    """
)


def test_two_processes_append_only_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "ledger.jsonl"
    count = 60
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), tag, str(count)], cwd=REPO)
        for tag in ("a", "b")
    ]
    for writer in writers:
        assert writer.wait(timeout=60) == 0
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    parsed = [json.loads(line) for line in lines[:-1]]  # every line must be whole JSON
    assert len(parsed) == 2 * count
    for tag in ("a", "b"):
        mine = [e["record_id"] for e in parsed if e["note"] == tag * 2000]
        assert mine == [f"{tag}-{i}" for i in range(count)]


# --- ledger lines derived from canon's commits ------------------------------------------------


def _commit(canon: Canon, pid: str, names: list[str], action: str = "accept") -> list:
    records, _ = canon.commit_proposal(
        pid, lambda: [canon.create("character", {"name": n}, actor="human", note=f"proposal {pid}")
                      for n in names],
        kind="character", actor="human", action=action, note=f"proposal {pid}",
        inputs={"retrieved": ["series"], "notes": [], "premise": "rain"})
    return records


def test_complete_appends_the_lines_of_a_commit_once(tmp_path: Path) -> None:
    with Canon(tmp_path / "canon.sqlite") as canon:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        aiko, ren = _commit(canon, "p1", ["Aiko", "Ren"], action="edit")
        assert ledger.complete(canon, "p1") == 2
        lines = ledger.entries()
        assert [(e["record_id"], e["rev"], e["action"], e["actor"], e["note"]) for e in lines] == [
            (aiko.id, 1, "edit", "human", "proposal p1"), (ren.id, 1, "edit", "human", "proposal p1")]
        expected = inputs_hash({"proposal_id": "p1", "retrieved": ["series"], "notes": [], "premise": "rain",
                                "data": {"name": "Aiko"}})
        assert lines[0]["inputs_hash"] == expected
        assert ledger.complete(canon, "p1") == 0 and ledger.complete(canon) == 0
        assert len(ledger.entries()) == 2 and canon.commit_of("p1").ledgered


def test_complete_after_a_crash_mid_ledger_appends_only_what_is_missing(tmp_path: Path) -> None:
    with Canon(tmp_path / "canon.sqlite") as canon:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        aiko, ren = _commit(canon, "p1", ["Aiko", "Ren"])
        _commit(canon, "p2", ["Kaito"])
        # the process died after the first of p1's lines: p1 and p2 are not marked ledgered
        ledger.append(actor="human", action="accept", record_id=aiko.id, kind="character", rev=1,
                      note="proposal p1")
        assert ledger.complete(canon) == 2
        keys = [(e["record_id"], e["rev"]) for e in ledger.entries()]
        assert keys == [(aiko.id, 1), (ren.id, 1), ("character-kaito", 1)]
        assert canon.commits(unledgered_only=True) == []


def test_complete_with_no_commits_appends_nothing(tmp_path: Path) -> None:
    with Canon(tmp_path / "canon.sqlite") as canon:
        ledger = Ledger(tmp_path / "ledger.jsonl")
        assert ledger.complete(canon) == 0 and ledger.complete(canon, "nope") == 0
