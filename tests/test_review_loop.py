"""A review loop the director can trust (issue 8): revisions change what was asked and show it,
notes are applied or answered, interrupted cards come back as they were, the app's own fields are
the app's, the palette is checked on the style card, and one set of targets per project.

Real SQLite canon, chroma bible, ledger and checkpointer; the model is scripted at the ChatModel
boundary (tests/fakes.py).
"""
from __future__ import annotations

import json

import pytest

from agent.context import Targets
from agent.fallbacks import DEFAULT_PALETTE
from agent.llm import generate_structured
from agent.schemas import SceneProposal, SeriesProposal, validate_proposal
from memory.errors import InputError, LLMOutputError
from memory.project import DEFAULT_TARGETS, create_project, open_project, update_project_settings
from tests.fakes import BEATS, CHARACTERS, SERIES, ScriptedChatModel, accept_vision, scene
from tools.backends.animatic import AnimaticPainter
from ui.session import DirectorSession, open_session

SMALL = Targets(characters=2, locations=1, props=1, episodes=3, scenes=2)


@pytest.fixture
def project(tmp_path):
    return create_project(tmp_path, "Yuki Onna")


def _session(project, script=None, **kw):
    return DirectorSession(project, ScriptedChatModel(script), targets=kw.pop("targets", SMALL), **kw)


def _to(s: DirectorSession, kind: str):
    view = s.start()
    if view.pending["kind"] == "input":
        view = s.send("A woodcutter marries a snow spirit.")
    while view.pending["kind"] != kind:
        view = s.decide({"type": "accept"})
    return view


# ----------------------------------------------------------------------------- 8.2 revisions


def test_change_request_keeps_untouched_fields_and_shows_the_difference(project):
    with _session(project) as s:
        _to(s, "character")
        s.decide({"type": "accept"})                                   # Aiko (17) is canon
        junk = {"name": "Miso", "role": "lead", "age": "", "personality": "loud and new",
                "look_tags": ["pink hair", "apron"], "voice_notes": "squeaky"}
        s.llm.script["CharacterProposal"] = [junk]
        view = s.send("make Aiko older")
        card = view.pending
        canon = s.canon.get("character-aiko").data
        assert card["target_id"] == "character-aiko"
        assert card["data"]["name"] == "Aiko"                          # the model's rename is not taken
        assert card["data"]["personality"] == canon["personality"]     # nor anything it was not asked
        assert card["data"]["look_tags"] == canon["look_tags"]
        assert card["data"]["age"] == "27"                              # empty age: "older" done here
        assert card["diff"] == {"age": ["17", "27"]}
        assert any("age" in w for w in card["warnings"])
        # Edit starts from canon plus the patch: the card's data is a complete, valid record
        assert validate_proposal("character", card["data"]) == card["data"]
        s.decide({"type": "accept"})
        assert s.canon.get("character-aiko").data == {**canon, "age": "27"}


def test_palette_change_keeps_the_title_and_applies_the_named_colours(project):
    with _session(project) as s:
        _to(s, "character")                                            # series + style accepted
        other = {**SERIES, "title": "Completely Different", "palette": ["#000000", "#ffffff"]}
        s.llm.script["SeriesProposal"] = [other]
        view = s.send("make the palette navy, crimson and cream")
        card = view.pending
        assert card["kind"] == "series" and card["data"]["title"] == "Fox Rain"
        assert card["data"]["palette"] == ["navy", "crimson", "cream"]
        assert set(card["diff"]) == {"palette"}
        assert card["diff"]["palette"][0] == SERIES["palette"]


def test_a_revision_that_changes_nothing_says_so(project):
    with _session(project) as s:
        _to(s, "character")
        s.decide({"type": "accept"})
        s.llm.script["CharacterProposal"] = [dict(CHARACTERS[0])]
        view = s.send("make Aiko kinder")
        assert not view.pending.get("diff")
        assert any("changes nothing" in w for w in view.pending["warnings"])


# ----------------------------------------------------------------------------- 8.3 notes


def test_a_rejection_note_naming_a_value_is_applied_to_the_next_draft(project):
    with _session(project) as s:
        view = _to(s, "series")
        assert view.pending["data"]["title"] == "Fox Rain"
        view = s.decide({"type": "reject", "note": "Title it 'Yuki-Onna'"})
        assert view.pending["data"]["title"] == "Yuki-Onna"           # the model said "Fox Rain" again
        assert any("note applied: title" in w for w in view.pending["warnings"])
        assert "Title it 'Yuki-Onna'" in s.llm.prompts_for("SeriesProposal")[-1]
        s.decide({"type": "accept"})
        assert s.canon.get("series").data["title"] == "Yuki-Onna"


def test_a_note_that_cannot_be_applied_is_answered_on_the_card(project):
    with _session(project) as s:
        _to(s, "series")
        view = s.decide({"type": "reject", "note": "palette: energetic, e-commerce business"})
        assert view.pending["data"]["palette"] == SERIES["palette"]
        warning = next(w for w in view.pending["warnings"] if w.startswith("note not applied"))
        assert "energetic" in warning and "style card" in warning


def test_a_panel_note_asking_for_an_absent_character_becomes_a_shot_plan_revision(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    targets = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)
    with DirectorSession(project, ScriptedChatModel(), targets=targets, painter=AnimaticPainter(),
                         candidates=1) as s:
        view = _to(s, "panel")
        shot_id = view.pending["data"]["subject"]
        assert shot_id == "scene-ep1-1-s1" and s.canon.get(shot_id).data["characters"] == []
        plan_calls = len(s.llm.prompts_for("ShotPlanProposal"))
        view = s.decide({"type": "reject", "note": "put Ren in this shot"})
        card = view.pending
        assert card["kind"] == "shots" and card["target_id"] == "scene-ep1-1"
        assert list(card["diff"]) == ["shots[1].characters"]
        assert [c["name"] for c in card["diff"]["shots[1].characters"][1]] == ["Ren"]
        assert len(s.llm.prompts_for("ShotPlanProposal")) == plan_calls   # no silent re-seed, no model call
        view = s.decide({"type": "accept"})
        assert [c["name"] for c in s.canon.get(shot_id).data["characters"]] == ["Ren"]
        assert s.canon.get(shot_id).data["framing"] == "establishing"   # the rest of the plan as it was
        assert view.pending["kind"] == "panel" and view.pending["data"]["subject"] == shot_id  # redrawn next


def test_a_panel_note_for_the_painter_still_redraws(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    targets = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)
    with DirectorSession(project, ScriptedChatModel(), targets=targets, painter=AnimaticPainter(),
                         candidates=1) as s:
        _to(s, "panel")
        view = s.decide({"type": "reject", "note": "more rain"})
        assert view.pending["kind"] == "panel" and view.pending["attempt"] == 2


# ----------------------------------------------------------------------------- 8.4 stash


def test_an_interrupted_proposal_resumes_as_it_was(project):
    with _session(project) as s:
        _to(s, "character")
        s.decide({"type": "accept"})                                   # Aiko canon, Ren on the card
        card = s.view().pending
        asked = len(s.llm.prompts_for("CharacterProposal"))
        s.llm.script["CharacterProposal"] = [dict(CHARACTERS[0], age="30")]
        view = s.send("make Aiko older")
        assert view.pending["target_id"] == "character-aiko"
        view = s.decide({"type": "accept"})
        assert view.pending["proposal_id"] == card["proposal_id"]      # the same card, not a new draft
        assert view.pending["data"] == card["data"]
        assert len(s.llm.prompts_for("CharacterProposal")) == asked + 1  # only the revision was generated
        assert "Back to the proposal" in view.messages[-1]["content"]
        s.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        assert s.canon.find_by_name("character", "Ren") is not None


def test_a_storyboard_item_opened_mid_review_returns_to_the_card_as_it_was(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    targets = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)
    with DirectorSession(project, ScriptedChatModel(), targets=targets, painter=AnimaticPainter(),
                         candidates=1) as s:
        card = _to(s, "panel").pending
        view = s.decide({"type": "open", "task": {"kind": "panel", "subject": "scene-ep1-1-s2"}})
        assert view.pending["data"]["subject"] == "scene-ep1-1-s2"
        view = s.decide({"type": "accept"})
        assert view.pending["proposal_id"] == card["proposal_id"]
        assert view.pending["data"]["candidates"] == card["data"]["candidates"]


def test_the_waiting_prompt_names_someone_in_this_project(project):
    with _session(project, targets=Targets(characters=1, locations=0, props=0, episodes=1, scenes=1)) as s:
        view = s.start()
        view = s.send("premise")
        while view.awaiting_decision:
            view = s.decide({"type": "accept"})
        assert "make Aiko older" in view.pending["prompt"] and "Ren" not in view.pending["prompt"]


# ----------------------------------------------------------------------------- 8.6 known fields


def test_known_fields_are_filled_before_validation(project):
    wild_scene = {**scene(1), "episode": 40, "number": 297}
    wild_beats = {**BEATS, "episode": 297}
    with _session(project, {"SceneProposal": [wild_scene], "BeatsProposal": [wild_beats]}) as s:
        view = _to(s, "beats")
        assert view.pending["data"]["episode"] == 1 and not view.pending["failure"]
        view = s.decide({"type": "accept"})
        assert view.pending["kind"] == "scene" and not view.pending["failure"]
        assert (view.pending["data"]["episode"], view.pending["data"]["number"]) == (1, 1)
        calls = [c for c in s.llm.calls if c["title"] == "SceneProposal"]
        assert len(calls) == 1                                         # passed at once: no repair round


def test_schema_sent_to_the_model_leaves_known_fields_out():
    seen = {}

    class Spy(ScriptedChatModel):
        def complete(self, messages, *, json_schema=None, **kw):
            seen.update(json_schema or {})
            return json.dumps({**scene(1), "number": 297})

    result = generate_structured(Spy(), [{"role": "user", "content": "x"}], SceneProposal,
                                 known={"episode": 1, "number": 2})
    assert "number" not in seen["properties"] and "number" not in seen["required"]
    assert "title" in seen["properties"]
    assert (result.episode, result.number) == (1, 2)


def test_speakers_are_spelled_as_canon_spells_them(project):
    lower = {**scene(1), "characters": ["aiko", "Ren-san"],
             "lines": [{"speaker": "AIKO", "line": "Hi", "emotion": "neutral"},
                       {"speaker": "Ren-kun", "line": "Yo", "emotion": "neutral"}]}
    with _session(project, {"SceneProposal": [lower]}) as s:
        view = _to(s, "scene")
        assert [ln["speaker"] for ln in view.pending["data"]["lines"]] == ["Aiko", "Ren"]
        assert view.pending["data"]["characters"] == ["Aiko", "Ren"]
        assert not any("auto-fixed" in w for w in view.pending["warnings"])


def test_html_entities_never_reach_canon(project):
    entity = {**CHARACTERS[0], "personality": "kind &amp; brave, says &#34;never&#34;",
              "look_tags": ["red scarf", "amber eyes &#39;glowing&#39;"]}
    with _session(project, {"CharacterProposal": [entity]}) as s:
        view = _to(s, "character")
        assert view.pending["data"]["personality"] == 'kind & brave, says "never"'
        s.decide({"type": "accept"})
        stored = json.dumps(s.canon.get("character-aiko").data)
        assert "&#" not in stored and "&amp;" not in stored


# ----------------------------------------------------------------------------- 8.7 palette


@pytest.mark.parametrize("palette, expected", [
    (["#1b2a4a", "navy", "Crimson"], ["#1b2a4a", "navy", "Crimson"]),
    ("navy, crimson and cream", ["navy", "crimson", "cream"]),
    (["deep ocean blue", "warm amber glow"], ["deep ocean blue", "#f0aa28"]),   # a phrase: its colour word
])
def test_palette_entries_are_colours_the_painter_reads(palette, expected):
    data = validate_proposal("series", {**SERIES, "palette": palette})
    assert data["palette"] == expected
    from tools.backends._draw import parse_color
    assert all(parse_color(c) for c in data["palette"])


@pytest.mark.parametrize("palette", [["Energetic e-commerce business", "#ffffff"], ["#12", "bold"]])
def test_a_palette_that_is_not_colours_is_refused_naming_the_style_card(palette):
    with pytest.raises(ValueError, match="fix the palette on the style card"):
        SeriesProposal.model_validate({**SERIES, "palette": palette})


def test_palette_junk_is_repaired_at_the_style_card(project):
    junk = {**SERIES, "palette": ["Energetic e-commerce business", "Trustworthy corporate"]}
    with _session(project, {"SeriesProposal": [junk]}) as s:
        view = _to(s, "series")
        assert view.pending["data"]["palette"] == SERIES["palette"]    # the repair round fixed it
        calls = [c for c in s.llm.calls if c["title"] == "SeriesProposal"]
        assert len(calls) == 2 and "style card" in calls[1]["messages"][-1]["content"]
        view = s.decide({"type": "edit", "data": {**view.pending["data"], "palette": ["sales", "growth"]}})
        assert "palette" in view.pending["error"] and "style card" in view.pending["error"]
        assert s.canon.list("style") == []


def test_a_failed_card_offers_a_safe_draft_with_named_fallbacks(project):
    junk = {**SERIES, "palette": ["Energetic", "Business"], "title": ""}
    with _session(project, {"SeriesProposal": [junk, junk, junk]}) as s:
        view = _to(s, "series")
        card = view.pending
        assert card["failure"] and card["data"] is None
        assert card["draft"]["palette"] == DEFAULT_PALETTE and card["draft"]["logline"] == SERIES["logline"]
        assert card["draft"]["title"]                                  # from the premise
        assert any("palette" in f and "dusk" in f for f in card["fallbacks"])
        assert "safe defaults for title, palette" in view.messages[-1]["content"]
        s.decide({"type": "edit", "data": card["draft"]})
        assert s.canon.get("style").data["palette"] == DEFAULT_PALETTE


# ----------------------------------------------------------------------------- 8.9 targets


def test_targets_are_stored_in_the_project_and_read_back(tmp_path):
    project = create_project(tmp_path, "Studio One")
    assert open_project(project.root).settings["targets"] == DEFAULT_TARGETS
    assert Targets.from_settings(project.settings) == Targets()
    made = create_project(tmp_path, "Made", targets=Targets(locations=1, scenes=1, episodes=3, shots=4).as_settings())
    assert Targets.from_settings(open_project(made.root).settings) == Targets(locations=1, scenes=1, episodes=3,
                                                                            shots=4)
    edited = update_project_settings(made, "targets", {"locations": 3})
    assert Targets.from_settings(open_project(edited.root).settings).locations == 3
    assert Targets.from_settings({}) == Targets()                     # projects from before [targets]


@pytest.mark.parametrize("table, message", [
    ({"locations": -1}, "locations = -1"),
    ({"scenes": "three"}, "scenes = 'three'"),
    ({"planets": 2}, "unknown keys ['planets']"),
])
def test_bad_targets_name_the_setting(table, message):
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Targets.from_settings({"targets": table})


def test_every_front_end_plans_with_the_projects_targets(tmp_path):
    project = create_project(tmp_path, "Made", targets={"characters": 1, "locations": 1, "props": 0,
                                                         "episodes": 1, "scenes": 1})
    with open_session(open_project(project.root), ScriptedChatModel()) as s:
        view = s.start()
        view = accept_vision(s, s.send("premise"))
        kinds = []
        while view.awaiting_decision and view.pending["kind"] in (
                "series", "character", "location", "prop", "outline", "beats", "scene"):
            kinds.append(view.pending["kind"])
            view = s.decide({"type": "accept"})
        assert kinds == ["series", "character", "location", "outline", "beats", "scene"]


def test_llm_output_error_carries_the_parsed_reply_for_a_fallback():
    model = ScriptedChatModel({"SeriesProposal": [{**SERIES, "palette": ["x"]}] * 3})
    with pytest.raises(LLMOutputError) as info:
        generate_structured(model, [{"role": "user", "content": "x"}], SeriesProposal, retries=2)
    assert info.value.partial["title"] == "Fox Rain"
