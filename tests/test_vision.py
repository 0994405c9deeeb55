"""The director's vision comes first (issue 14 part 1): the first card, written by the director,
stated in every later prompt, and checked against every later proposal."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.context import Targets
from agent.kinds import vision as vision_kind
from agent.kinds.vision import parse_vision_file, rule_breaches, verb_forms
from memory.authorship import authorship_report
from memory.errors import InputError
from memory.project import create_project
from tests.fakes import SERIES, VISION, ScriptedChatModel, accept_vision, scene
from ui.session import DirectorSession

SMALL = Targets(characters=1, locations=1, props=1, episodes=3, scenes=1)
PREMISE = "A shrine maiden hears rain spirits."


@pytest.fixture
def session(tmp_path):
    s = DirectorSession(create_project(tmp_path, "Fox Rain"), ScriptedChatModel(), targets=SMALL)
    yield s
    s.close()


def _item(report, record_id):
    return next(i for i in report.items if i.record_id == record_id)


# ----------------------------------------------------------------------------- the first card


def test_first_card_is_the_vision_and_no_model_call_happens_before_it_is_accepted(session):
    session.start()
    view = session.send(PREMISE)
    assert view.pending["kind"] == "vision"
    assert view.pending["data"] == {"premise": PREMISE, "themes": [], "emotional_core": "",
                                    "tone_references": [], "never": []}
    assert session.llm.calls == [] and session.canon.list("vision") == []
    assert "draft the vision for me" in _card(view) and "Edit" in _card(view)
    view = accept_vision(session, view)
    assert view.pending["kind"] == "series"
    assert [c["title"] for c in session.llm.calls] == ["SeriesProposal"]
    rec = session.canon.get("vision")
    assert rec.data["premise"] == PREMISE and rec.actor == "human"
    report = authorship_report(session.canon, session.ledger.entries())
    assert _item(report, "vision").category == "written"   # their own premise, accepted


def _card(view) -> str:
    from ui.cards import card_markdown

    return card_markdown(view.pending)


def test_director_fills_the_vision_with_edit_and_every_later_prompt_states_it(session):
    session.start()
    view = session.send(PREMISE)
    view = accept_vision(session, view, themes=["memory", "duty"], emotional_core="ache for Aiko",
                         tone_references=["Mushishi"], never=["no gore", "Aiko never lies"])
    assert session.canon.get("vision").data["never"] == ["no gore", "Aiko never lies"]
    assert [e["action"] for e in session.ledger.entries() if e["record_id"] == "vision"] == ["edit"]
    assert _item(authorship_report(session.canon, session.ledger.entries()), "vision").category == "written"
    session.decide({"type": "accept"})            # series
    session.decide({"type": "accept"})            # character
    for title in ("SeriesProposal", "CharacterProposal"):
        prompt = session.llm.prompts_for(title)[-1]
        assert "Director's vision" in prompt and "Themes: memory; duty" in prompt
        assert "Never (rules no proposal may break): no gore; Aiko never lies" in prompt
        assert "ache for Aiko" in prompt and "Mushishi" in prompt


def test_redo_asks_the_model_for_a_suggestion_and_accepting_it_is_accepted_as_proposed(session):
    session.start()
    view = session.send(PREMISE)
    view = session.decide({"type": "redo", "proposal_id": view.pending["proposal_id"]})
    assert view.pending["kind"] == "vision"
    assert view.pending["data"]["themes"] == VISION["themes"] and view.pending["data"]["premise"] == PREMISE
    assert [c["title"] for c in session.llm.calls] == ["VisionProposal"]
    view = session.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
    assert view.pending["kind"] == "series"
    assert _item(authorship_report(session.canon, session.ledger.entries()), "vision").category == "accepted"


def test_chat_asks_for_a_draft_and_junk_falls_back_to_offline_suggestions(tmp_path):
    model = ScriptedChatModel({"VisionProposal": ["not json", "{}", "[]"]})
    s = DirectorSession(create_project(tmp_path, "Fox Rain"), model, targets=SMALL)
    try:
        s.start()
        s.send("A family shrine keeps a secret about the rain.")
        view = s.send("draft the vision for me")
        assert view.pending["kind"] == "vision" and view.pending["data"]["themes"]
        assert "offline suggestions" in " ".join(view.pending["warnings"])
        edited = dict(view.pending["data"], themes=["secrets"])
        s.decide({"type": "edit", "data": edited, "proposal_id": view.pending["proposal_id"]})
        item = _item(authorship_report(s.canon, s.ledger.entries()), "vision")
        assert item.category == "edited"
    finally:
        s.close()


@pytest.mark.parametrize("text, asks", [
    ("draft the vision for me", True), ("can you suggest some themes?", True), ("write it for me", True),
    ("suggestions please", True), ("what is a vision?", False), ("Aiko is seventeen", False), ("", False)])
def test_asks_for_draft(text, asks):
    assert vision_kind.asks_for_draft(text) is asks


# ----------------------------------------------------------------------------- drift checks


@pytest.mark.parametrize("rules, data, expect", [
    (["no gore"], {"action": "Blood pools on the shrine steps."}, "“blood” — your rule “no gore”"),
    (["No gore."], {"action": "Rain on the steps."}, None),
    (["no swearing"], {"lines": [{"speaker": "Ren", "line": "Damn this rain.", "emotion": "angry"}]}, "line 1"),
    (["never say \"I love you\""], {"lines": [{"speaker": "Ren", "line": "I love you, Aiko.", "emotion": "sad"}]},
     "“I love you”"),
    (["no cats"], {"description": "A cat sleeps on the torii."}, "description says “cat”"),
    (["Aiko never lies"], {"lines": [{"speaker": "Aiko", "line": "I lied to you.", "emotion": "sad"}]},
     "line 1 (Aiko): “lied”"),
    (["Aiko never lies"], {"lines": [{"speaker": "Ren", "line": "You lied to me.", "emotion": "angry"}]}, None),
    (["Aiko never lies"], {"action": "Aiko is lying to Ren about the storm."}, "action: “lying”"),
    (["Ren never cries"], {"beats": [{"kind": "hook", "summary": "Ren cries in the rain."}]}, "beat 1"),
    (["Ren never cries"], {"beats": [{"kind": "hook", "summary": "Aiko cries; Ren watches."}]}, None),
    (["no romance"], {"logline": "Two rivals kiss under the torii."}, "“kiss”"),
    ([], {"action": "Blood everywhere."}, None),
])
def test_never_rules_are_checked_deterministically(rules, data, expect):
    found = rule_breaches(rules, data)
    if expect is None:
        assert found == []
    else:
        assert len(found) == 1 and expect in found[0], found


@pytest.mark.parametrize("verb, forms", [("lies", {"lie", "lied", "lying"}), ("cries", {"cry", "cried"}),
                                          ("smiles", {"smile", "smiled", "smiling"}), ("kills", {"killed"}),
                                          ("watches", {"watch", "watched"})])
def test_verb_forms(verb, forms):
    assert forms <= set(verb_forms(verb))


def _to_scene(s: DirectorSession, **vision) -> dict:
    s.start()
    view = accept_vision(s, s.send(PREMISE), **vision)
    while view.pending["kind"] != "scene":
        view = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
    return view.pending


def test_a_scene_that_breaks_a_never_rule_says_so_and_accepting_it_is_logged(tmp_path):
    bloody = scene(1)
    bloody["action"] = "Blood runs down the shrine steps."
    model = ScriptedChatModel({"SceneProposal": [bloody]})
    cast = Targets(characters=2, locations=1, props=1, episodes=3, scenes=1)   # Aiko and Ren speak
    s = DirectorSession(create_project(tmp_path, "Fox Rain"), model, targets=cast)
    try:
        pending = _to_scene(s, never=["no gore"])
        assert pending["warnings"] == ["drifts from your vision: action says “blood” — your rule “no gore”"]
        from ui.cards import card_markdown

        assert "⚠ drifts from your vision: action says “blood”" in card_markdown(pending)
        s.decide({"type": "accept", "proposal_id": pending["proposal_id"]})
        logged = [e for e in s.ledger.entries() if e["action"] == "accept-warnings"]
        assert len(logged) == 1 and "drift from the vision" in logged[0]["note"] and "no gore" in logged[0]["note"]
    finally:
        s.close()


def test_the_capable_model_reads_drift_and_junk_never_crashes(tmp_path):
    verdicts = [{"drifts": True, "reasons": ["the series turns into a comedy"]}, "junk", RuntimeError("down"),
                *[{"drifts": False}] * 10]
    model = ScriptedChatModel({"DriftVerdict": verdicts})
    s = DirectorSession(create_project(tmp_path, "Fox Rain"), model, targets=SMALL)
    try:
        s.start()
        view = accept_vision(s, s.send(PREMISE), themes=["grief"])
        assert view.pending["kind"] == "series"
        assert view.pending["warnings"] == [("drifts from your vision: the series turns into a comedy "
                                            "(the model's reading)")]
        drift_prompt = next(c for c in model.calls if c["title"] == "DriftVerdict")
        assert "Themes: grief" in json.dumps(drift_prompt["messages"])
        view = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
        assert view.pending["kind"] == "character" and view.pending["warnings"] == []   # "junk": no warning
        view = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
        assert view.pending["kind"] == "location" and view.pending["warnings"] == []   # an error: none
    finally:
        s.close()


def test_no_model_drift_check_with_the_demo_model_or_a_premise_only_vision(tmp_path):
    s = DirectorSession(create_project(tmp_path, "Fox Rain"), ScriptedChatModel(), targets=SMALL)
    try:
        s.start()
        accept_vision(s, s.send(PREMISE))
        assert "DriftVerdict" not in [c["title"] for c in s.llm.calls]
    finally:
        s.close()
    demo = ScriptedChatModel()
    demo.is_demo = True
    s = DirectorSession(create_project(tmp_path, "Fox Rain 2"), demo, targets=SMALL)
    try:
        s.start()
        accept_vision(s, s.send(PREMISE), themes=["grief"], never=["no gore"])
        assert "DriftVerdict" not in [c["title"] for c in demo.calls]
    finally:
        s.close()


# ----------------------------------------------------------------------------- --vision FILE


@pytest.mark.parametrize("name, text, expect", [
    ("v.toml", ('premise = "Rain spirits"\nthemes = ["memory", "duty"]\nemotional_core = "ache"\n'
               'tone_references = ["Mushishi"]\nnever = ["no gore"]\n'),
     {"premise": "Rain spirits", "themes": ["memory", "duty"], "emotional_core": "ache",
      "tone_references": ["Mushishi"], "never": ["no gore"]}),
    ("v.toml", '[vision]\npremise = "Rain"\nthemes = "memory; duty"\n',
     {"premise": "Rain", "themes": ["memory", "duty"]}),
    ("v.md", ("# Fox Rain\n\n## Premise\nA shrine maiden\nhears rain spirits.\n\n## Themes\n- memory\n- duty\n\n"
             "## Emotional core\nLonging.\n\n## Tone references\nMushishi, Natsume\n\n## Never\n- no gore\n"
             "- Aiko never lies\n"),
     {"premise": "A shrine maiden hears rain spirits.", "themes": ["memory", "duty"], "emotional_core": "Longing.",
      "tone_references": ["Mushishi", "Natsume"], "never": ["no gore", "Aiko never lies"]}),
    ("v.txt", "Premise: Rain spirits\nThemes: memory, duty\nNever: no gore\n",
     {"premise": "Rain spirits", "themes": ["memory", "duty"], "never": ["no gore"]}),
    ("v.txt", "Just a premise about rain spirits.\n", {"premise": "Just a premise about rain spirits."}),
    ("v.md", "## Themes\n* memory\n", {"premise": "from the command line", "themes": ["memory"]}),
])
def test_vision_file_parses(tmp_path, name, text, expect):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    got = parse_vision_file(path, premise="from the command line")
    assert {k: v for k, v in got.items() if v not in ("", [])} == expect


@pytest.mark.parametrize("name, content, says", [
    ("v.toml", b'premise = "unterminated\n', "not valid TOML"),
    ("v.toml", b'colour = "red"\n', "'colour'"),
    ("v.toml", b'premise = "ok"\nthemes = {a = 1}\n', "'themes' is a table"),
    ("v.toml", b'premise = ""\n', "names no premise"),
    ("v.md", b"\x89PNG\r\n\x1a\n\x00\x00", "binary"),
    ("v.txt", b"\xff\xfe\xfa premise", "not UTF-8"),
    ("v.txt", b"a" * 70_000, "too long"),
    ("v.txt", b"   \n\n", "names no premise"),
    ("missing.toml", None, "cannot read it"),
])
def test_bad_vision_files_are_refused_naming_the_file_and_the_value(tmp_path, name, content, says):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        parse_vision_file(path)
    assert says in str(err.value) and str(path) in str(err.value)


def test_bible_lists_the_vision_first(session):
    session.start()
    accept_vision(session, session.send(PREMISE), themes=["memory"])
    records = session.records()
    assert next(iter(records)) == "vision" and records["vision"][0].data["themes"] == ["memory"]
    assert SERIES["title"]   # the fakes' series is next


def test_the_edit_form_asks_the_directors_questions_and_reads_one_item_per_line():
    from ui.edit_form import assemble, form_layout, start_data

    layout = form_layout(vision_kind.VisionProposal)
    labels = {w.name: w.label for w in layout}
    assert "end of episode 1" in labels["emotional_core"] and "must not happen" in labels["never"]
    data = start_data(vision_kind.VisionProposal, {"premise": PREMISE})
    edited = assemble(layout, data, [PREMISE, "memory\n\nduty", "ache", "Mushishi", "no gore\nAiko never lies"])
    assert vision_kind.VisionProposal.model_validate(edited).model_dump() == {
        "premise": PREMISE, "themes": ["memory", "duty"], "emotional_core": "ache", "tone_references": ["Mushishi"],
        "never": ["no gore", "Aiko never lies"]}


# ----------------------------------------------------------------------------- storyreel make


def test_make_accepts_the_vision_file_as_the_directors_and_the_rest_as_auto(tmp_path):
    from ui.headless import _vision_first, make_targets

    path = tmp_path / "vision.md"
    path.write_text("## Themes\n- memory\n\n## Never\n- no gore\n", encoding="utf-8")
    vision = parse_vision_file(path, PREMISE)
    project = create_project(tmp_path, "Made", targets=make_targets(1).as_settings())
    said: list[str] = []
    with DirectorSession(project, ScriptedChatModel(), targets=SMALL, actor="auto") as s:
        s.start()
        view = _vision_first(s, s.send(PREMISE), vision, said.append)
        assert view.pending["kind"] == "series" and "your --vision file" in said[0]
        s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})   # as decide_all does
        rec = s.canon.get("vision")
        assert rec.data["never"] == ["no gore"] and rec.actor == "human"
        report = authorship_report(s.canon, s.ledger.entries())
        assert _item(report, "vision").category == "written" and _item(report, "series").category == "auto"
    project = create_project(tmp_path, "Premise Only", targets=make_targets(1).as_settings())
    with DirectorSession(project, ScriptedChatModel(), targets=SMALL, actor="auto") as s:
        s.start()
        view = _vision_first(s, s.send(PREMISE), None, said.append)
        assert view.pending["kind"] == "vision"   # decide_all accepts it with the rest
        decide_all_one = s.decide({"type": "accept", "proposal_id": view.pending["proposal_id"]})
        assert decide_all_one.pending["kind"] == "series"
        assert s.canon.get("vision").data["premise"] == PREMISE
        assert _item(authorship_report(s.canon, s.ledger.entries()), "vision").category == "auto"


def test_make_refuses_a_bad_vision_file_before_it_makes_anything(tmp_path):
    import os
    import subprocess
    import sys

    bad = tmp_path / "vision.toml"
    bad.write_text('premise = "Rain"\nthemse = ["typo"]\n', encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-m", "ui.cli", "make", "--vision", str(bad), "--project",
                          str(tmp_path / "p"), "--auto-accept"], cwd=root, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "OPENAI_BASE_URL": ""}, check=False)
    assert out.returncode == 2 and "'themse' is no vision field" in out.stderr and str(bad) in out.stderr
    assert not (tmp_path / "p").exists()
