"""Structural edits (agent.structure): remove, reorder, split and merge as proposals over a real
sqlite canon. Each op is planned (canon untouched), checked, committed in one transaction (the
cut follows the new order, shots/panels/takes/motion stay attached), and undone (canon as before)."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from agent import structure, structure_commit
from agent.cut import episode_scenes
from agent.storyboard import image_status, shots_of
from agent.tools import ToolContext, ToolError, call
from agent.voices import take_status
from memory.canon import Canon
from memory.ledger import Ledger
from tests.router_table import build_fixture


def _canon(tmp_path) -> Canon:
    canon = Canon(tmp_path / "canon.sqlite")
    build_fixture(canon)
    from agent.storyboard import made_from

    for shot in canon.list("shot"):   # an accepted, current panel per shot
        canon.upsert("panel", {"kind": "panel", "subject": shot.id, "path": f"assets/panels/{shot.id}/v1.png",
                               "made_from": made_from(canon, "panel", shot.id), "source": "upload"},
                     actor="human", record_id=f"panel-{shot.id}")
    canon.upsert("line", {"line_id": "scene-ep1-2-l2", "scene_id": "scene-ep1-2", "language": "ja",
                          "text": "何も覚えていない。"}, actor="human", record_id="scene-ep1-2-l2-ja")
    from agent.voices import take_made_from

    for take in canon.list("take"):     # takes made from the line as it is
        scene = canon.get(take.data["line_id"].rsplit("-l", 1)[0])
        speaker = next(ln["speaker"] for ln in scene.data["lines"] if ln["id"] == take.data["line_id"])
        canon.revise(take.id, {**take.data, "speaker": speaker,
                               "made_from": take_made_from(canon, take.data["line_id"], "en", speaker)}, actor="human")
    for scene in canon.list("scene"):   # motion rows per shot
        canon.revise(f"motion-{scene.id}", {"scene_id": scene.id, "shots": [
            {"shot_id": s.id, "camera_move": "static", "grade": "none"} for s in shots_of(canon, scene.id)]},
            actor="human")
    return canon


def _state(canon: Canon) -> dict[str, Any]:
    """Everything a structural edit may touch: live records and their data."""
    return {r.id: r.data for r in canon.list()}


def _order(canon: Canon) -> list[str]:
    return [s.id for s in episode_scenes(canon, 1)]


def _lines(canon: Canon, scene_id: str) -> list[str]:
    return [ln["line"] for ln in canon.get(scene_id).data["lines"]]


def _attached(canon: Canon) -> None:
    """Every live scene's shots, panels, takes and motion point at live records that point back."""
    for scene in canon.list("scene"):
        ids = [ln["id"] for ln in scene.data["lines"]]
        assert all(i.startswith(scene.id + "-l") for i in ids), ids
        shots = shots_of(canon, scene.id)
        assert [s.data["index"] for s in shots] == list(range(1, len(shots) + 1))
        for shot in shots:
            assert shot.id == f"{scene.id}-s{shot.data['index']}"
            assert set(shot.data["line_ids"]) <= set(ids)
            panel = canon.live(f"panel-{shot.id}")
            assert panel is not None and panel.data["subject"] == shot.id
        for line_id in ids:
            take = canon.live(f"take-{line_id}-en")
            assert take is not None and take.data["line_id"] == line_id
        motion = canon.live(f"motion-{scene.id}")
        if motion is not None:
            assert {m["shot_id"] for m in motion.data["shots"]} <= {s.id for s in shots}
    for take in canon.list("take"):
        assert canon.live(take.data["line_id"].rsplit("-l", 1)[0]) is not None, take.id
    for shot in canon.list("shot"):
        assert canon.live(shot.data["scene_id"]) is not None, shot.id


# (op, args, expected scene order after, {scene id: its lines' text after}, records tombstoned)
CASES = [
    ("reorder", {"episode": 1, "new_order": [2, 3]},
     ["scene-ep1-1", "scene-ep1-3", "scene-ep1-2"], {}, []),
    ("reorder", {"episode": 1, "new_order": [3, 1, 2]},
     ["scene-ep1-3", "scene-ep1-1", "scene-ep1-2"], {}, []),
    ("remove", {"record": "scene-ep1-2"},
     ["scene-ep1-1", "scene-ep1-3"], {}, ["scene-ep1-2", "scene-ep1-2-s1", "panel-scene-ep1-2-s2",
                                        "take-scene-ep1-2-l1-en", "motion-scene-ep1-2", "scene-ep1-2-l2-ja"]),
    ("remove", {"record": "prop-paper-umbrella"},
     ["scene-ep1-1", "scene-ep1-2", "scene-ep1-3"], {}, ["prop-paper-umbrella"]),
    ("split", {"scene": "scene-ep1-2", "at": 2, "title": "Denial"},
     ["scene-ep1-1", "scene-ep1-2", "scene-ep1-4", "scene-ep1-3"],
     {"scene-ep1-2": ["You were there that night."], "scene-ep1-4": ["I don't remember anything."]},
     ["scene-ep1-2-s2", "take-scene-ep1-2-l2-en", "scene-ep1-2-l2-ja"]),
    ("split", {"scene": "scene-ep1-1", "at": "only rain"},
     ["scene-ep1-1", "scene-ep1-4", "scene-ep1-2", "scene-ep1-3"],
     {"scene-ep1-1": ["Do you hear that?"], "scene-ep1-4": ["Only rain."]}, ["scene-ep1-1-s3"]),
    ("merge", {"first": "scene-ep1-2", "second": "scene-ep1-1"},
     ["scene-ep1-1", "scene-ep1-3"],
     {"scene-ep1-1": ["Do you hear that?", "Only rain.", "You were there that night.",
                      "I don't remember anything."]},
     ["scene-ep1-2", "scene-ep1-2-s1", "motion-scene-ep1-2", "take-scene-ep1-2-l2-en"]),
]


@pytest.mark.parametrize(("op", "args", "order", "lines", "gone"), CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_plan_check_commit_undo(tmp_path, op, args, order, lines, gone):
    canon = _canon(tmp_path)
    before, revisions = _state(canon), canon.revision_count()
    data = structure.plan(op, canon, args)
    assert canon.revision_count() == revisions and _state(canon) == before   # planning changes nothing
    assert structure.check(canon, data) == []
    card = structure_commit.card_markdown(data)
    assert data["summary"] in card and all(c["what"] in card for c in data["changes"])

    structure_commit.commit(canon, data, proposal_id="p1")
    assert _order(canon) == order
    assert [s.data["number"] for s in episode_scenes(canon, 1)] == list(range(1, len(order) + 1))
    for scene_id, texts in lines.items():
        assert _lines(canon, scene_id) == texts
    for rid in gone:
        assert canon.live(rid) is None and canon.get(rid).deleted
    _attached(canon)
    assert structure_commit.commit(canon, data, proposal_id="p1")  # a resumed commit writes nothing twice
    assert _order(canon) == order

    structure_commit.undo(canon, "p1")
    assert _state(canon) == before
    assert structure_commit.last_commit(canon) is None


def test_moved_takes_and_panels_stay_accepted(tmp_path):
    canon = _canon(tmp_path)
    structure_commit.commit(canon, structure.plan("split", canon, {"scene": "scene-ep1-2", "at": 2}), proposal_id="p")
    take = canon.get("take-scene-ep1-4-l1-en")
    assert take.data["path"] == "assets/audio/scene-ep1-2-l2.wav"
    panel = canon.get("panel-scene-ep1-4-s1")
    assert panel.data["path"] == "assets/panels/scene-ep1-2-s2/v1.png"
    assert image_status(canon, panel)[0] == "accepted", image_status(canon, panel)
    assert take_status(canon, take) == ("accepted", [])
    assert canon.get("scene-ep1-4-s1").data["lines"] == [1]
    assert canon.get("motion-scene-ep1-4").data["shots"][0]["shot_id"] == "scene-ep1-4-s1"
    assert canon.get("scene-ep1-4-l1-ja").data["text"] == "何も覚えていない。"


@pytest.mark.parametrize(("op", "args", "words"), [
    ("remove", {"record": "character-aiko"}, ["character-aiko", "scene-ep1-1", "scene-ep1-3", "scene-ep1-1-s2"]),
    ("remove", {"record": "location-night-station"}, ["scene-ep1-2", "scene-ep1-2-s1"]),
    ("remove", {"record": "outline"}, ["outline"]),
    ("remove", {"record": "character-nobody"}, ["character-nobody"]),
    ("reorder", {"new_order": [1, 2, 3]}, ["already"]),
    ("reorder", {"new_order": [1, 1, 2]}, ["1 to 3"]),
    ("reorder", {"new_order": [2, 9]}, ["cannot swap 2 and 9"]),
    ("split", {"scene": "scene-ep1-1", "at": 1}, ["2 to 2", "not 1"]),
    ("split", {"scene": "scene-ep1-1", "at": "thunderbolt"}, ["thunderbolt"]),
    ("merge", {"first": "scene-ep1-1", "second": "scene-ep1-3"}, ["not next to each other"]),
    ("merge", {"first": "scene-ep1-1", "second": "scene-ep1-1"}, ["itself"]),
    ("fold", {}, ["fold", "remove, reorder, split, merge"]),
])
def test_refusals_name_the_records(tmp_path, op, args, words):
    canon = _canon(tmp_path)
    revisions = canon.revision_count()
    with pytest.raises(structure.StructureError) as err:
        structure.plan(op, canon, args)
    for word in words:
        assert word in str(err.value)
    assert canon.revision_count() == revisions


def test_merge_refuses_too_many_lines(tmp_path):
    canon = _canon(tmp_path)
    sc = canon.get("scene-ep1-1")
    canon.revise(sc.id, {**sc.data, "lines": [{**sc.data["lines"][0], "id": f"{sc.id}-l{i}"} for i in range(1, 8)]},
                 actor="human")
    with pytest.raises(structure.StructureError, match="7 \\+ 2 lines; a scene holds at most 8"):
        structure.plan("merge", canon, {"first": "scene-ep1-1", "second": "scene-ep1-2"})


def test_stale_plan_is_refused_and_nothing_is_written(tmp_path):
    canon = _canon(tmp_path)
    data = structure.plan("reorder", canon, {"new_order": [1, 3, 2]})
    sc = canon.get("scene-ep1-3")
    canon.revise(sc.id, {**sc.data, "title": "Storm Gate II"}, actor="human")
    assert any("scene-ep1-3 changed since" in p for p in structure.check(canon, data))
    before = canon.revision_count()
    with pytest.raises(structure.StructureError, match="scene-ep1-3 changed since"):
        structure_commit.commit(canon, data, proposal_id="late")
    assert canon.revision_count() == before and canon.commit_of("late") is None


def test_undo_is_refused_after_a_later_change(tmp_path):
    canon = _canon(tmp_path)
    structure_commit.commit(canon, structure.plan("reorder", canon, {"new_order": [2, 3]}), proposal_id="p")
    sc = canon.get("scene-ep1-3")
    canon.revise(sc.id, {**sc.data, "title": "Later"}, actor="human")
    with pytest.raises(structure.StructureError, match="scene-ep1-3 .*changed after it"):
        structure_commit.undo(canon, "p")


def test_a_new_scene_never_takes_an_old_id(tmp_path):
    canon = _canon(tmp_path)
    structure_commit.commit(canon, structure.plan("remove", canon, {"record": "scene-ep1-2"}), proposal_id="p")
    # two scenes left, numbered 1 and 2: the next scene is number 3, and scene-ep1-3 is taken
    assert structure.free_scene_id(canon, 1, 3) == "scene-ep1-4"
    assert structure.free_scene_id(canon, 1, 3, reuse_deleted=True) == "scene-ep1-4"
    # scene-ep1-2 is tombstoned (its shots and takes too): a split never reuses it; a new scene may
    assert structure.free_scene_id(canon, 1, 2) == "scene-ep1-4"
    assert structure.free_scene_id(canon, 1, 2, reuse_deleted=True) == "scene-ep1-2"
    assert structure.free_scene_id(canon, 2, 1) == "scene-ep2-1"


# ----------------------------------------------------------------------------- through the tools


def _tc(canon: Canon, ledger: Ledger, text: str = "") -> ToolContext:
    ctx = SimpleNamespace(canon=canon, ledger=ledger)
    return ToolContext(ctx=ctx, state={"pending": None}, text=text)  # type: ignore[arg-type]


@pytest.mark.parametrize(("tool", "raw", "summary"), [
    ("reorder", {"what": "scenes", "new_order": [2, 3]}, "scenes in the order 1, 3, 2"),
    ("remove", {"record": "scene-ep1-2"}, "remove scene 2"),
    ("remove", {"record": "prop-paper-umbrella"}, "remove prop Paper Umbrella"),
    ("split_scene", {"scene": "scene-ep1-2", "instruction": "at line 2"}, "split scene 2"),
    ("split_scene", {"scene": "scene-ep1-2-l2"}, "before line 2"),
    ("merge_scenes", {"first": "scene-ep1-1"}, "merge scene 2"),
])
def test_tools_propose_and_canon_waits_for_accept(tmp_path, tool, raw, summary):
    canon = _canon(tmp_path)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    before, revisions = _state(canon), canon.revision_count()
    out = call(tool, raw).run(_tc(canon, ledger, "the director's words"))
    pending = out.prepared
    assert pending is not None and pending["kind"] == "structure" and out.prepared_task["kind"] == "structure"
    assert summary in pending["data"]["summary"]
    assert canon.revision_count() == revisions and _state(canon) == before
    assert [e["action"] for e in ledger.entries()] == ["propose"]   # nothing decided, nothing written

    structure_commit.commit(canon, pending["data"], proposal_id=pending["proposal_id"])
    ledger.complete(canon, pending["proposal_id"])
    assert {e["action"] for e in ledger.entries()} == {"propose", "accept"}
    assert _state(canon) != before
    structure_commit.undo(canon, pending["proposal_id"])
    assert _state(canon) == before


@pytest.mark.parametrize(("tool", "raw", "words"), [
    ("remove", {"record": "Aiko"}, ["still used by", "scene 1"]),
    ("split_scene", {"scene": "scene-ep1-2"}, ["Where should", "line 2"]),
    ("merge_scenes", {"first": "scene-ep1-3"}, ["last scene"]),
])
def test_tools_refuse_with_names(tmp_path, tool, raw, words):
    canon = _canon(tmp_path)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    with pytest.raises(ToolError) as err:
        call(tool, raw).run(_tc(canon, ledger))
    for word in words:
        assert word in str(err.value)
    assert ledger.entries() == []


def test_the_structure_kind_is_registered_with_the_built_in_kinds():
    """A structure card restored after a restart (no tool call yet in that process) must still be
    decided: the registry knows the kind from its first import, not only after a tool ran."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", "from agent.kinds import KINDS; print('structure' in KINDS)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True", "register agent.kinds.structure in agent/kinds/__init__.py _builtins()"


# ----------------------------------------------------------------------------- labels, orphans, one undo


class _Bible:
    def __init__(self) -> None:
        self.indexed: list[str] = []

    def index(self, rec: Any) -> None:
        self.indexed.append(rec.id)


@pytest.mark.parametrize(("op", "args", "shot", "long", "short"), [
    (None, {}, "scene-ep1-2-s1", "scene 2 · shot 1", "sc2 s1"),
    ("reorder", {"new_order": [3, 1, 2]}, "scene-ep1-3-s2", "scene 1 · shot 2", "sc1 s2"),
    ("reorder", {"new_order": [3, 1, 2]}, "scene-ep1-1-s3", "scene 2 · shot 3", "sc2 s3"),
    ("split", {"scene": "scene-ep1-1", "at": 2}, "scene-ep1-4-s1", "scene 2 · shot 1", "sc2 s1"),
    ("split", {"scene": "scene-ep1-1", "at": 2}, "scene-ep1-2-s2", "scene 3 · shot 2", "sc3 s2"),
    ("merge", {"first": "scene-ep1-1", "second": "scene-ep1-2"}, "scene-ep1-1-s5", "scene 1 · shot 5", "sc1 s5"),
    ("merge", {"first": "scene-ep1-1", "second": "scene-ep1-2"}, "scene-ep1-3-s1", "scene 2 · shot 1", "sc2 s1"),
])
def test_shot_labels_read_the_scene_number_not_the_id(tmp_path, op, args, shot, long, short):
    from agent.kinds.cards import scene_number, shot_label

    canon = _canon(tmp_path)
    if op:
        structure_commit.commit(canon, structure.plan(op, canon, args), proposal_id="p")
    assert canon.live(shot) is not None
    assert shot_label(shot, canon=canon) == long and shot_label(shot, short=True, canon=canon) == short
    scene = canon.get(shot).data["scene_id"]
    assert scene_number(scene, canon) == canon.get(scene).data["number"]


def test_undoing_a_split_removes_what_was_made_since_for_the_new_scene(tmp_path):
    """A split whose new scene got no shot; its shot plan, panel and motion accepted afterwards.
    The undo tombstones them with the split (nothing hangs off a dead scene), and undoing the undo
    brings them all back."""
    from agent.storyboard import write_shot_plan
    from agent.tools.actions import undo_change
    from tests.router_table import PLANS

    canon = _canon(tmp_path)
    canon.delete("scene-ep1-2-s2", actor="human")   # line 2 is in no shot: every shot stays in scene 2
    canon.delete("panel-scene-ep1-2-s2", actor="human")
    motion = canon.get("motion-scene-ep1-2")
    canon.revise(motion.id, {**motion.data, "shots": motion.data["shots"][:1]}, actor="human")
    ledger = Ledger(tmp_path / "ledger.jsonl")
    data = structure.plan("split", canon, {"scene": "scene-ep1-2", "at": 2})
    assert any("scene-ep1-4 gets no shot yet" in w for w in data["warnings"])
    structure_commit.commit(canon, data, proposal_id="p1")
    ledger.complete(canon, "p1")
    # made later, for the new scene: a shot plan, the shot's panel, the scene's motion
    write_shot_plan(canon, {"scene_id": "scene-ep1-4", "shots": [PLANS["scene-ep1-2"][1]]}, actor="human", note="")
    canon.upsert("panel", {"kind": "panel", "subject": "scene-ep1-4-s1", "path": "assets/panels/x.png"},
                 actor="human", record_id="panel-scene-ep1-4-s1")
    canon.upsert("motion", {"scene_id": "scene-ep1-4", "shots": [{"shot_id": "scene-ep1-4-s1"}]}, actor="human",
                 record_id="motion-scene-ep1-4")
    later = ["scene-ep1-4-s1", "panel-scene-ep1-4-s1", "motion-scene-ep1-4"]

    ctx = SimpleNamespace(canon=canon, ledger=ledger, bible=_Bible())
    done = undo_change(ctx, "scene-ep1-4")   # its current revision came from the split: all of it
    assert done.structure == "p1" and done.record.id == "scene-ep1-4" and done.record.deleted
    assert "Removed with it, as they belonged to what it made: " in done.say
    for rid in later:
        assert canon.live(rid) is None and canon.get(rid).deleted, rid
        assert rid in done.say and rid in ctx.bible.indexed
    assert _order(canon) == ["scene-ep1-1", "scene-ep1-2", "scene-ep1-3"]
    assert len(_lines(canon, "scene-ep1-2")) == 2
    _attached(canon)
    assert not [s.id for s in canon.list("shot") if canon.live(s.data["scene_id"]) is None]
    # one transaction, one commit: its ledger lines name every record, the later ones too
    undone = canon.commit_of("undo-p1")
    assert undone is not None and set(later) <= {rid for rid, _ in undone.records}
    assert set(later) <= {e["record_id"] for e in ledger.entries() if e["action"] == "revert"}

    redo = undo_change(ctx)   # the last decided change is that undo: undone as a whole again
    assert redo.structure == "undo-p1"
    for rid in ["scene-ep1-4", *later]:
        assert canon.live(rid) is not None, rid


def test_an_old_loose_end_is_not_swept_up_by_an_unrelated_undo(tmp_path):
    canon = _canon(tmp_path)
    canon.upsert("take", {"line_id": "scene-ep1-9-l1", "language": "en", "path": "assets/audio/old.wav"},
                 actor="human", record_id="take-scene-ep1-9-l1-en")   # hangs off nothing, from before
    structure_commit.commit(canon, structure.plan("split", canon, {"scene": "scene-ep1-2", "at": 2}), proposal_id="p")
    structure_commit.undo(canon, "p")
    assert canon.live("take-scene-ep1-9-l1-en") is not None


@pytest.fixture
def session(tmp_path):
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from ui.session import DirectorSession

    project = create_project(tmp_path, "Fox Rain")
    canon = Canon(project.root / "canon.sqlite")
    try:
        build_fixture(canon)
    finally:
        canon.close()
    s = DirectorSession(project, ScriptedChatModel())
    yield s
    s.close()


@pytest.mark.parametrize("how", ["last", "record", "record-rev"])
def test_session_undo_of_a_structural_change_undoes_all_of_it(session, how):
    """`/undo` and the History tab (DirectorSession.undo) decide as the chat's `undo` tool does."""
    canon = session.canon
    before = _state(canon)
    data = structure.plan("reorder", canon, {"new_order": [3, 1, 2]})
    structure_commit.commit(canon, data, proposal_id="p-reorder")
    session.ledger.complete(canon, "p-reorder")
    assert _order(canon) == ["scene-ep1-3", "scene-ep1-1", "scene-ep1-2"]
    args = {"last": (), "record": ("scene-ep1-1",),
            "record-rev": ("scene-ep1-1", canon.get("scene-ep1-1").rev - 1)}[how]
    rec = session.undo(*args)
    assert _state(canon) == before                        # every scene back in its place, not only one
    assert rec.kind == "scene" and (how == "last" or rec.id == "scene-ep1-1")
    assert canon.commit_of("undo-p-reorder") is not None
    assert session.ledger.entries()[-1]["action"] == "revert"


def test_session_undo_of_a_plain_revision_and_a_refused_one(session):
    canon = session.canon
    aiko = canon.get("character-aiko")
    canon.revise(aiko.id, {**aiko.data, "age": "40"}, actor="human")
    structure_commit.commit(canon, structure.plan("reorder", canon, {"new_order": [2, 1]}), proposal_id="p")
    session.ledger.complete(canon, "p")
    rec = session.undo("character-aiko")                   # not a structural change: that record alone
    assert rec.id == "character-aiko" and rec.data["age"] == aiko.data["age"]
    assert _order(canon) == ["scene-ep1-2", "scene-ep1-1", "scene-ep1-3"]
    # an older revision of a reordered scene: a plain revert of that record, named as asked
    with pytest.raises(Exception, match="choose a revision between 0 and 1"):
        session.undo("scene-ep1-2", 5)
    sc = canon.get("scene-ep1-1")
    canon.revise(sc.id, {**sc.data, "title": "Later"}, actor="human")
    last = canon.get("scene-ep1-2")
    with pytest.raises(Exception, match="scene-ep1-1 .*changed after it; undo those first"):
        session.undo("scene-ep1-2")                        # the reorder, but scene 1 moved on since
    assert canon.get("scene-ep1-2").rev == last.rev        # nothing written


@pytest.mark.parametrize("raw", [{}, {"record": "scene 1"}, {"record": "scene-ep1-2"}])
def test_the_undo_tool_decides_as_the_session_does(tmp_path, raw):
    canon = _canon(tmp_path)
    ledger = Ledger(tmp_path / "ledger.jsonl")
    before = _state(canon)
    structure_commit.commit(canon, structure.plan("reorder", canon, {"new_order": [2, 1]}), proposal_id="p")
    ledger.complete(canon, "p")
    ctx = SimpleNamespace(canon=canon, ledger=ledger, bible=_Bible())
    out = call("undo", raw).run(ToolContext(ctx=ctx, state={"pending": None}, text="undo that"))  # type: ignore[arg-type]
    assert out.wrote and out.say.startswith("Undone: episode 1: scenes in the order 2, 1, 3")
    assert _state(canon) == before
    with pytest.raises(ToolError, match="cannot revert scene-ep1-1 .* to rev 9"):
        call("undo", {"record": "scene-ep1-1", "revision": 9}).run(
            ToolContext(ctx=ctx, state={"pending": None}, text=""))  # type: ignore[arg-type]
