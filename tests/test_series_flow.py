"""A series, not one episode: episode 1 → its story so far (facts) → episode 2, whose beats open on
episode 1's cliffhanger; continuity warnings on later cards; looks over time; `make --episodes`.

Real canon, bible, ledger and checkpointer; the LLM is scripted (tests.fakes), the painter the
offline animatic one where pictures are needed.
"""
from __future__ import annotations

import copy
import io
from pathlib import Path

import pytest

from agent import episodes
from agent.context import Targets
from agent.kinds import facts as facts_kind
from agent.kinds.story import opens_on
from memory.canon import Canon
from memory.errors import InputError
from memory.ledger import Ledger
from memory.project import create_project
from tests.fakes import BEATS, CHARACTERS, OUTLINE, ScriptedChatModel
from tools.backends.animatic import AnimaticPainter
from ui.session import DirectorSession

TARGETS = Targets(characters=2, locations=1, props=0, episodes=3, scenes=1)
WRITERS_ROOM = ("vision", "series", "character", "location", "prop", "outline", "beats", "scene")
CLIFF = BEATS["beats"][-1]["summary"]            # "Ren forgets Aiko."
OFF_HOOK = {"episode": 2, "beats": [             # a hook that ignores the cliffhanger: repaired
    {"kind": "hook", "summary": "A storm rolls over the harbour."},
    {"kind": "escalation", "summary": "The lanterns go dark one by one."},
    {"kind": "twist", "summary": "The storm is listening."},
    {"kind": "cliffhanger", "summary": "The shrine bell rings by itself."}]}
ON_HOOK = copy.deepcopy(OFF_HOOK)
ON_HOOK["beats"][0]["summary"] = "Aiko begs Ren to remember her name."


def accept_while(s: DirectorSession, kinds: tuple[str, ...]):
    view = s.view()
    while view.awaiting_decision and view.pending["kind"] in kinds:
        view = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
    return view


def episode_one(tmp_path: Path, model: ScriptedChatModel, **kw) -> DirectorSession:
    project = create_project(tmp_path, "Fox Rain")
    s = DirectorSession(project, model, targets=TARGETS, **kw)
    s.start()
    s.send("A shrine maiden hears rain spirits.")
    accept_while(s, WRITERS_ROOM)
    return s


def accept_facts_with(s: DirectorSession, *extra: dict, start: int | None = 2) -> dict:
    """Accept the story so far of episode 1 (on the card right after its scenes) with `extra`
    facts, then start episode `start`."""
    card = s.view().pending
    assert card["kind"] == "facts" and card["data"]["episode"] == 1, card
    data = {**card["data"], "facts": [*card["data"]["facts"], *extra]}
    s.decide({"type": "edit", "data": data, "proposal_id": card["proposal_id"]})
    if start is not None:
        s.start_episode(start)
    return data


RENS_DEATH = {"subject": "Ren", "type": "dead", "value": "swept away by the storm", "episode": 1, "scene": 1}


# ----------------------------------------------------------------------------- starting episodes


def test_the_story_so_far_follows_the_scenes_and_starting_checks_the_outline(tmp_path):
    with episode_one(tmp_path, ScriptedChatModel()) as s:
        view = s.view()
        assert view.pending["kind"] == "facts" and view.pending["data"]["episode"] == 1   # right after the scenes
        assert episodes.started_episodes(s.canon) == [1]
        card = s.start_episode(2).pending                     # the story so far on the card stays, not twice
        assert card["proposal_id"] == view.pending["proposal_id"]
        assert [e["kind"] for e in s.ledger.entries() if e["action"] == "propose"].count("facts") == 1
        with pytest.raises(InputError, match="the outline has 5 episodes; pick 1 to 5"):
            s.start_episode(6)
        with pytest.raises(InputError, match="not an episode number"):
            episodes.check_episode(s.canon, 0)
        s.start_episode(3)
        assert episodes.started_episodes(s.canon) == [1, 2, 3]
        assert s.canon.get("episode-3").data["started"] is True
        started = [e for e in s.ledger.entries() if e["record_id"] == "episode-3" and e["action"] == "start"]
        assert len(started) == 1
        s.start_episode(3)                                    # again: nothing changes, nothing is logged
        assert len([e for e in s.ledger.entries() if e["action"] == "start"]) == 2   # episodes 2 and 3
        s.canon.upsert("beats", {**BEATS, "episode": 4}, actor="human", record_id="beats-ep4", note="imported")
        assert episodes.started_episodes(s.canon) == [1, 2, 3, 4]    # written already: started


def test_a_one_episode_outline_gets_no_story_so_far(tmp_path):
    from agent.kinds import next_task

    one = {"episodes": [OUTLINE["episodes"][0]]}
    with episode_one(tmp_path, ScriptedChatModel({"OutlineProposal": [one]})) as s:
        assert episodes.outline_count(s.canon) == 1
        assert s.view().pending["kind"] == "input"
        assert next_task(s.canon, s.context) is None


def test_starting_in_the_chat_gives_the_story_so_far_then_the_beats(tmp_path):
    with episode_one(tmp_path, ScriptedChatModel({"BeatsProposal": [BEATS, ON_HOOK]})) as s:
        card = s.view().pending
        view = s.send("let's start episode 2")
        assert view.pending["kind"] == "facts" and view.pending["data"]["episode"] == 1
        assert view.pending["proposal_id"] == card["proposal_id"]      # the card on screen comes back as it was
        assert any("Episode 2" in m["content"] and "is started" in m["content"]
                   and "story so far of episode 1" in m["content"] for m in view.messages)
        view = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
        assert view.pending["kind"] == "beats" and view.pending["data"]["episode"] == 2
        view = s.send("begin episode 9")
        assert any("the outline has 5 episodes" in m["content"] for m in view.messages)
        assert view.pending["kind"] == "beats"                  # the card on screen stays


def test_started_survives_an_outline_revision(tmp_path):
    with episode_one(tmp_path, ScriptedChatModel()) as s:
        episodes.start_episode(s.canon, s.ledger, 2)
        from agent.kinds import get_kind
        from agent.kinds.story import KINDS  # noqa: F401 - the outline kind's commit is the one to run

        outline = get_kind("outline")
        pending = {"proposal_id": "p-outline-2", "data": s.canon.get("outline").data, "target_id": "outline"}
        s.canon.commit_proposal("p-outline-2", lambda: outline.commit(outline, s.context, pending, "human", "n"),
                                kind="outline", actor="human", action="accept")
        assert s.canon.get("episode-2").data.get("started") is True
        assert episodes.started_episodes(s.canon) == [1, 2]


# ----------------------------------------------------------------------------- the story so far, episode 2


def test_facts_then_episode_two_beats_open_on_the_cliffhanger(tmp_path):
    model = ScriptedChatModel({"BeatsProposal": [BEATS, OFF_HOOK, ON_HOOK]})
    with episode_one(tmp_path, model) as s:
        data = accept_facts_with(s, RENS_DEATH)
        assert s.canon.get("summary-ep1").data["summary"] == data["summary"]
        fact = s.canon.get("fact-ep1-ren-dead")
        assert fact.data["statement"].startswith("Ren is dead")
        assert any(h.record_id == "fact-ep1-ren-dead" for h in s.bible.search("Ren is dead", k=10))
        view = s.view()
        assert view.pending["kind"] == "beats" and view.pending["data"]["episode"] == 2
        hook = view.pending["data"]["beats"][0]["summary"]
        assert hook == ON_HOOK["beats"][0]["summary"] and opens_on(hook, CLIFF)
        prompts = model.prompts_for("BeatsProposal")
        ep2 = [p for p in prompts if "episode 2" in p]
        assert ep2 and CLIFF in ep2[0] and "Ren is dead" in ep2[0] and "opens right where episode 1 ended" in ep2[0]
        repair = "\n".join(m["content"] for c in model.calls[-2:] for m in c["messages"])
        assert "must open on episode 1's cliffhanger" in repair


@pytest.mark.parametrize("hook, cliff, refers", [
    ("Aiko begs Ren to remember her.", "Ren forgets Aiko.", True),
    ("Rain again at the shrine.", "Ren forgets Aiko.", False),
    ("The forgotten umbrellas pile up.", "Ren forgets the umbrella.", True),    # umbrella(s)
    ("Anything at all.", "", True),                                            # episode 1: no cliffhanger
    ("The of and the.", "the of and", False),                                  # stop words only
])
def test_a_hook_opens_on_the_cliffhanger_by_shared_words(hook, cliff, refers):
    assert opens_on(hook, cliff) is refers


def test_the_fallback_beats_and_the_last_repair_name_the_cliffhanger(tmp_path):
    junk = {"episode": 2, "beats": [{"kind": "hook", "summary": "x"}]}   # never valid: the fallback draft
    model = ScriptedChatModel({"BeatsProposal": [BEATS, *[junk] * 12]})
    with episode_one(tmp_path, model) as s:
        accept_facts_with(s)
        card = s.view().pending
        assert card["kind"] == "beats" and card["failure"]
        assert CLIFF.rstrip(".") in card["draft"]["beats"][0]["summary"]
    model = ScriptedChatModel({"BeatsProposal": [BEATS, *[OFF_HOOK] * 6]})   # valid, never on the hook
    with episode_one(tmp_path / "b", model) as s:
        accept_facts_with(s)
        card = s.view().pending
        hook = card["data"]["beats"][0]["summary"]
        assert CLIFF.rstrip(".") in hook and any("opens on episode 1's cliffhanger" in w for w in card["warnings"])


def test_facts_from_a_capable_model_or_junk_falls_back_to_the_offline_draft(tmp_path):
    good = {"summary": "Ren is swept away at the shrine.", "facts": [RENS_DEATH]}
    with episode_one(tmp_path, ScriptedChatModel({"FactsProposal": [good]})) as s:
        card = s.view().pending
        assert card["data"]["summary"] == good["summary"]
        assert card["data"]["facts"][0]["subject"] == "Ren" and card["data"]["facts"][0]["type"] == "dead"
    with episode_one(tmp_path / "junk", ScriptedChatModel({"FactsProposal": ["{\"summary\": 3}"] * 6})) as s:
        card = s.view().pending
        assert card["kind"] == "facts" and not card.get("failure")
        assert card["data"] == facts_kind.offline_draft(s.canon, 1)
        assert any("could not be used" in w for w in card["warnings"])
        assert "| subject | fact | value | from | until |" in facts_kind.facts_card(card["data"])


# ----------------------------------------------------------------------------- continuity warnings


def test_a_dead_characters_line_warns_naming_the_fact_and_accepting_it_is_logged(tmp_path):
    review = {"problems": [{"fact_id": "fact-ep1-ren-dead", "problem": "Ren greets Aiko after his death"},
                           {"fact_id": "fact-ep7-nobody", "problem": "made up"}]}     # no such fact: dropped
    model = ScriptedChatModel({"BeatsProposal": [BEATS, ON_HOOK], "ContinuityReview": [review]})
    with episode_one(tmp_path, model) as s:
        accept_facts_with(s, RENS_DEATH)
        view = s.decide({"type": "accept", "proposal_id": s.view().pending["proposal_id"]})   # beats ep 2
        card = view.pending
        assert card["kind"] == "scene" and card["data"]["episode"] == 2
        warned = [w for w in card["warnings"] if w.startswith("continuity: ")]
        assert any("Ren speaks" in w and "fact 'Ren is dead" in w and "from episode 1" in w
                   and "fact-ep1-ren-dead" in w for w in warned), card["warnings"]
        by_model = [w for w in warned if w.startswith("continuity: model: ")]   # the capable model's own check
        assert len(by_model) == 1 and "Ren greets Aiko after his death (fact 'Ren is dead" in by_model[0] \
            and "from episode 1, scene 1 [fact-ep1-ren-dead]" in by_model[0]
        s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        logged = [e for e in s.ledger.entries() if e["action"] == "accept-warnings"]
        assert len(logged) == 1 and "Ren is dead" in logged[0]["note"] and logged[0]["kind"] == "scene"
        assert "model: Ren greets Aiko" in logged[0]["note"]


def test_undo_of_a_fact_reruns_the_checks_on_the_card_on_screen_and_back(tmp_path):
    model = ScriptedChatModel({"BeatsProposal": [BEATS, ON_HOOK]})
    with episode_one(tmp_path, model) as s:
        accept_facts_with(s, RENS_DEATH)
        view = s.decide({"type": "accept", "proposal_id": s.view().pending["proposal_id"]})
        assert view.pending["kind"] == "scene"
        assert any(w.startswith("continuity: ") for w in view.pending["warnings"])
        card = view.pending
        s.undo("fact-ep1-ren-dead", 0)                      # the History tab's revert: the fact is gone
        view = s.view()                                     # the same card, checked again: no warning
        assert view.pending["proposal_id"] == card["proposal_id"] and view.pending["data"] == card["data"]
        assert not [w for w in view.pending["warnings"] if w.startswith("continuity: ")], view.pending["warnings"]
        s.undo("fact-ep1-ren-dead", 1)                      # and back: the warning is back on the same card
        view = s.view()
        assert view.pending["proposal_id"] == card["proposal_id"]
        assert [w for w in view.pending["warnings"] if "Ren is dead" in w] == \
            [w for w in card["warnings"] if "Ren is dead" in w] != []
        s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        logged = [e for e in s.ledger.entries() if e["action"] == "accept-warnings"]
        assert len(logged) == 1 and "Ren is dead" in logged[0]["note"]
        pending = {"kind": "scene", "data": card["data"], "warnings": ["continuity: stale"]}
        s.undo("fact-ep1-ren-dead", 0)
        assert facts_kind.refresh_warnings(s.canon, None, pending)["warnings"] == []


def test_undo_in_chat_refreshes_the_warnings_of_the_card_on_screen(tmp_path):
    """`undo` (the last accepted change: the facts card) with a checked card on screen."""
    from agent.tools import ToolContext
    from agent.tools.actions import UndoArgs, undo

    model = ScriptedChatModel({"BeatsProposal": [BEATS, ON_HOOK]})
    with episode_one(tmp_path, model) as s:
        accept_facts_with(s, RENS_DEATH)
        scene = {"episode": 2, "number": 1, "title": "After", "location": "Hilltop Shrine", "characters": ["Ren"],
                 "action": "Ren waits.", "lines": [{"speaker": "Ren", "line": "I am back.", "emotion": "sad"}]}
        pending = facts_kind.refresh_warnings(s.canon, s.context, {"kind": "scene", "data": scene, "warnings": []})
        assert pending["continuity"]
        state = {"pending": pending, "task": {"kind": "scene", "episode": 2, "number": 1}}
        # the last accepted change is the facts card's last record: Ren's death
        out = undo(ToolContext(ctx=s.context, state=state, text="undo"), UndoArgs())
        assert s.canon.live("fact-ep1-ren-dead") is None
        assert out.prepared is not None and out.prepared_task == state["task"]
        assert out.prepared["continuity"] == [] and out.prepared["data"] == scene


# ----------------------------------------------------------------------------- looks over time


def test_a_look_variant_from_episode_two_changes_its_panels_and_only_they_go_stale(tmp_path):
    from agent import storyboard

    model = ScriptedChatModel({"BeatsProposal": [BEATS, ON_HOOK]})
    with episode_one(tmp_path, model, painter=AnimaticPainter(), candidates=1) as s:
        accept_facts_with(s, RENS_DEATH, start=None)
        view = accept_while(s, ("reference", "background", "shots", "panel"))
        assert view.pending["kind"] == "input"
        s.start_episode(2)
        view = accept_while(s, WRITERS_ROOM + ("facts", "reference", "background", "shots", "panel"))
        assert view.pending["kind"] == "input"
        warned = {e["kind"] for e in s.ledger.entries() if e["action"] == "accept-warnings"}
        assert warned == {"scene", "shots", "panel"}      # Ren, dead since episode 1, speaks and is drawn
        ep1 = [sh.id for sh in storyboard.shots_of(s.canon, "scene-ep1-1")]
        ep2 = [sh.id for sh in storyboard.shots_of(s.canon, "scene-ep2-1")]
        aiko = s.canon.find_by_name("character", "Aiko")
        shot = next(i for i in ep2 if any(c["name"] == "Aiko" for c in s.canon.get(i).data["characters"]))
        before = storyboard.panel_request(s.context, "panel", shot, notes=[], seed=1)
        assert "shrine maiden outfit" in next(c for c in before.characters if c.name == "Aiko").look_tags
        # the director edits Aiko: a black mourning kimono from episode 2 on
        looks = [{"from_episode": 2, "outfit": "black mourning kimono", "tags": ["tired eyes"]}]
        s.canon.upsert("character", {**aiko.data, "looks": looks}, actor="human", record_id=aiko.id, note="edit")
        after = storyboard.panel_request(s.context, "panel", shot, notes=[], seed=1)
        tags = next(c for c in after.characters if c.name == "Aiko").look_tags
        assert "black mourning kimono" in tags and "tired eyes" in tags and "shrine maiden outfit" not in tags
        first = storyboard.panel_request(s.context, "panel", ep1[1], notes=[], seed=1)
        assert "shrine maiden outfit" in next(c for c in first.characters if c.name == "Aiko").look_tags
        status = {sid: storyboard.image_status(s.canon, s.canon.get(f"panel-{sid}"))[0] for sid in ep1 + ep2}
        aiko_in = {sid for sid in ep1 + ep2 if "Aiko" in [c.name for c in
                   storyboard.panel_request(s.context, "panel", sid, notes=[], seed=1).characters]}
        assert all(status[sid] == "accepted" for sid in ep1)
        assert storyboard.image_status(s.canon, s.canon.get(f"ref-{aiko.id}"))[0] == "accepted"   # base look
        assert {sid for sid in ep2 if status[sid] == "stale"} == {sid for sid in ep2 if sid in aiko_in}
        assert status[shot] == "stale"


def test_character_looks_are_validated_on_the_card():
    from pydantic import ValidationError

    from agent.schemas import CharacterProposal

    base = dict(CHARACTERS[0])
    assert "looks" not in CharacterProposal.model_validate(base).model_dump()
    ok = CharacterProposal.model_validate({**base, "looks": [{"from_episode": 2, "hair": "short hair",
                                                              "tags": "bandage, pale"}]}).model_dump()
    assert ok["looks"][0]["tags"] == ["bandage", "pale"] and ok["looks"][0]["until_episode"] is None
    with pytest.raises(ValidationError, match="until_episode 1 is before from_episode 2"):
        CharacterProposal.model_validate({**base, "looks": [{"from_episode": 2, "until_episode": 1,
                                                             "outfit": "black kimono"}]})
    empty_row = {"from_episode": 1, "until_episode": None, "outfit": "", "hair": "", "injury": "", "tags": []}
    assert "looks" not in CharacterProposal.model_validate({**base, "looks": [empty_row]}).model_dump()


def test_an_old_panel_that_recorded_the_characters_revision_is_not_stale(tmp_path):
    from agent import storyboard

    with episode_one(tmp_path, ScriptedChatModel(), painter=AnimaticPainter(), candidates=1) as s:
        accept_while(s, ("facts", "reference", "background", "shots", "panel"))
        panel = s.canon.get("panel-scene-ep1-1-s2")
        made = copy.deepcopy(panel.data["made_from"])
        for cid, entry in made["characters"].items():
            made["characters"][cid] = {"rev": s.canon.get(cid).rev, "ref": entry["ref"]}
        s.canon.upsert("panel", {**panel.data, "made_from": made}, actor="human", record_id=panel.id, note="old")
        assert storyboard.image_status(s.canon, s.canon.get(panel.id))[0] == "accepted"
        cid = next(iter(made["characters"]))
        sheet = s.canon.get(f"ref-{cid}")
        old_sheet = {**sheet.data["made_from"], "character": [cid, s.canon.get(cid).rev]}
        s.canon.upsert("panel", {**sheet.data, "made_from": old_sheet}, actor="human", record_id=sheet.id, note="old")
        assert storyboard.image_status(s.canon, s.canon.get(sheet.id))[0] == "accepted"
        made = {**made, "characters": {k: {**v, "ref": s.canon.get(f"ref-{k}").rev} if k == cid else v
                                       for k, v in made["characters"].items()}}
        panel = s.canon.get(panel.id)
        s.canon.upsert("panel", {**panel.data, "made_from": made}, actor="human", record_id=panel.id, note="old")
        assert storyboard.image_status(s.canon, s.canon.get(panel.id))[0] == "accepted"
        rec = s.canon.get(cid)
        s.canon.upsert("character", {**rec.data, "age": "90"}, actor="human", record_id=cid, note="older")
        assert storyboard.image_status(s.canon, s.canon.get(panel.id))[0] == "stale"
        assert storyboard.image_status(s.canon, s.canon.get(sheet.id))[0] == "stale"


# ----------------------------------------------------------------------------- planning order


def test_episode_two_waits_for_episode_one_but_can_be_picked_out_of_order(tmp_path):
    from agent.kinds import next_task

    with episode_one(tmp_path, ScriptedChatModel(), painter=AnimaticPainter(), candidates=1) as s:
        assert s.view().pending["kind"] == "facts"              # episode 1's story so far, then its storyboard
        assert next_task(s.canon, s.context) == {"kind": "facts", "target_id": None, "episode": 1}
        episodes.start_episode(s.canon, s.ledger, 2)
        view = accept_while(s, ("facts", "reference", "background"))
        assert view.pending["kind"] == "shots" and view.pending["data"]["scene_id"] == "scene-ep1-1"
        assert next_task(s.canon, s.context)["scene_id"] == "scene-ep1-1"    # episode 1 first
        assert next_task(s.canon, s.context, episode=2) == {"kind": "beats", "target_id": None, "episode": 2}
        s.canon.upsert("beats", {**BEATS, "episode": 2}, actor="human", record_id="beats-ep2", note="")
        assert next_task(s.canon, s.context, episode=2)["kind"] == "scene"
        assert next_task(s.canon, s.context, episode=2)["episode"] == 2


# ----------------------------------------------------------------------------- make --episodes


def test_make_two_episodes_with_the_scripted_model(tmp_path):
    from ui.headless import run_make
    from ui.settings import Settings

    out = io.StringIO()
    project = tmp_path / "fox-rain"
    rc = run_make(Settings(projects_dir=tmp_path), "A shrine maiden hears rain spirits.", project, shots=1,
                  model=ScriptedChatModel(), out=out, episodes=2)
    assert rc == 0, out.getvalue()[-3000:]
    for ep in ("ep01", "ep02"):
        assert (project / "renders" / ep / "episode.mp4").stat().st_size > 0
    canon = Canon(project / "canon.sqlite")
    assert canon.live("summary-ep1") is not None and canon.live("beats-ep2") is not None
    assert [r.data["episode"] for r in canon.list("scene")] == [1, 2]
    entries = Ledger(project / "ledger.jsonl").entries()
    decisions = [e for e in entries if e["action"] in ("accept", "edit", "upload", "reject", "redo", "revert",
                                                      "start", "accept-warnings")]
    assert decisions and {e["actor"] for e in decisions} == {"auto"}
    assert any(e["action"] == "start" and e["record_id"] == "episode-2" for e in entries)
    assert "Cutting the episode (episode 2)" in out.getvalue()
    # continue the series with episode 3
    out = io.StringIO()
    rc = run_make(Settings(projects_dir=tmp_path), None, project, shots=1, model=ScriptedChatModel(), out=out,
                  episode=3)
    assert rc == 0, out.getvalue()[-3000:]
    assert (project / "renders" / "ep03" / "episode.mp4").stat().st_size > 0
    assert Canon(project / "canon.sqlite").live("summary-ep2") is not None


def test_make_episode_needs_an_existing_series(tmp_path):
    from ui.headless import run_make
    from ui.settings import Settings

    with pytest.raises(InputError, match="continues an existing series"):
        run_make(Settings(projects_dir=tmp_path), None, tmp_path / "none", model=ScriptedChatModel(), episode=2,
                 out=io.StringIO())


# `storyreel make --episodes 2` on the embedded model: tests/test_make.py::test_make_end_to_end_on_embedded_defaults
