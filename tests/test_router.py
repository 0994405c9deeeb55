"""The offline router over a fixture project: a table of director utterances (paraphrases, requests
phrased as questions and questions phrased as requests, typos, pronouns, numbers and descriptions,
several intents, ambiguity) must reach the right tool and target for at least 90 % of the rows; and
the chat acts on what the tools return without changing canon before the director decides."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.context import Targets
from agent.router import OfflineRouter, load_exemplars, split_clauses
from agent.tools import TOOLS, ToolError, call
from agent.tools.refs import Catalog, link, resolve
from memory.canon import Canon
from memory.errors import BackendError
from memory.project import create_project
from tests.fakes import ScriptedChatModel
from tests.router_table import ROWS, build_fixture, open_fixture, outcome
from ui.session import DirectorSession

FIXTURE_TARGETS = Targets(characters=3, locations=2, props=1, episodes=1, scenes=3)


@pytest.fixture(scope="module")
def fixture_canon(tmp_path_factory):
    canon = open_fixture(tmp_path_factory.mktemp("router") / "p")
    yield canon
    canon.close()


@pytest.fixture(scope="module")
def router():
    r = OfflineRouter()
    r.warm()
    return r


def test_the_table_is_big_and_covers_every_tool():
    assert len(ROWS) >= 80
    named = {t for row in ROWS for t in row.tools}
    assert set(TOOLS) <= named and "clarify" in named


def test_offline_router_accuracy_on_the_table(fixture_canon, router):
    ctx = SimpleNamespace(canon=fixture_canon)
    misses = []
    for row in ROWS:
        got = outcome(router.route(row.text, ctx, {"pending": row.card}))
        if got != (row.tools, row.targets):
            misses.append(f"{row.text!r}: expected {row.tools} {row.targets}, got {got[0]} {got[1]}")
    accuracy = 1 - len(misses) / len(ROWS)
    print(f"\nrouter accuracy {accuracy:.3f} on {len(ROWS)} utterances; misses:\n" + "\n".join(misses))
    assert accuracy >= 0.9, "\n".join(misses)


@pytest.mark.parametrize(("words", "expected"), [
    ("scene 2", "scene-ep1-2"), ("the second scene", "scene-ep1-2"), ("scene two", "scene-ep1-2"),
    ("the last scene", "scene-ep1-3"), ("shot 4", "scene-ep1-2-s1"), ("scene 2 shot 2", "scene-ep1-2-s2"),
    ("the last shot of scene 1", "scene-ep1-1-s3"), ("shot 1 of the third scene", "scene-ep1-3-s1"),
    ("the establishing shot", "scene-ep1-1-s1"), ("episode 1", "episode-1"), ("Aiko-san", "character-aiko"),
    ("Ren's", "character-ren"), ("Kaitoo", "character-kaito"), ("the station", "location-night-station"),
    ("the umbrella", "prop-paper-umbrella"), ("line 2 of scene 3", "scene-ep1-3-l2"),
    ("“Only rain.”", "scene-ep1-1-l2"), ("the palette", "style"), ("the cliffhanger", "beats-ep1"),
    ("the station scene", "scene-ep1-2"),
])
def test_entity_linking(fixture_canon, words, expected):
    found = link(words, Catalog.of(fixture_canon))
    assert [m.record.id for m in found][:1] == [expected]


def test_shot_numbers_count_within_the_scene_on_the_card(fixture_canon):
    cat = Catalog.of(fixture_canon)
    focus = fixture_canon.get("scene-ep1-2-s1")
    assert link("shot 2", cat, focus)[0].record.id == "scene-ep1-2-s2"
    assert link("shot 2", cat)[0].record.id == "scene-ep1-1-s2"         # else counted through the episode


@pytest.mark.parametrize(("text", "clauses"), [
    ("make Ren older and give him a scar", ["make Ren older", "give him a scar"]),
    ("make Ren older and wiser", ["make Ren older and wiser"]),
    ("make Aiko older, then dub it into Japanese", ["make Aiko older", "dub it into Japanese"]),
    ("swap scenes 2 and 3", ["swap scenes 2 and 3"]),
    ("make the palette warmer; also what does Kaito wear?", ["make the palette warmer", "what does Kaito wear?"]),
])
def test_clauses(text, clauses):
    assert split_clauses(text) == clauses


def test_resolve_names_the_choices_when_nothing_matches(fixture_canon):
    cat = Catalog.of(fixture_canon)
    assert resolve(cat, "aiko", ("character",), what="character").id == "character-aiko"
    with pytest.raises(ToolError, match=r"'Hiroshi'.*Aiko \(character-aiko\)"):
        resolve(cat, "Hiroshi", ("character",), what="character")
    with pytest.raises(ToolError, match="shot 99"):
        call("reframe_shot", {"shot": "shot 99"}).tool.resolve_refs(call("reframe_shot", {"shot": "shot 99"}).args, cat)


def test_a_malformed_exemplar_file_names_the_file_and_the_tool(tmp_path):
    bad = tmp_path / "ex.toml"
    bad.write_text("[teleport]\nexamples = ['beam me up']\n")
    with pytest.raises(BackendError, match=r"ex.toml.*\[teleport\] is not a tool"):
        load_exemplars(bad)
    assert set(load_exemplars()) == set(TOOLS)


def test_every_tool_has_a_description_and_a_schema():
    for tool in TOOLS.values():
        schema = tool.schema()["function"]
        assert schema["description"] and "\n" not in schema["description"]
        assert schema["parameters"]["type"] == "object"


# ----------------------------------------------------------------------------- the chat, end to end


@pytest.fixture
def session(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    with Canon(project.canon_path) as c:
        build_fixture(c)
    s = DirectorSession(project, ScriptedChatModel(), targets=FIXTURE_TARGETS)
    s.start()
    assert s.send("A premise.").pending["kind"] == "input"       # the writers' room has nothing to add
    yield s
    s.close()


def decisions(s):
    return [e for e in s.ledger.entries() if e.get("actor") in ("human", "auto")]


def test_several_requests_queue_in_order_and_change_nothing_until_accepted(session):
    s = session
    revs, decided = s.canon.revision_count(), decisions(s)
    s.llm.script = {"CharacterProposal": [{**s.canon.get("character-aiko").data, "age": "30"},
                                          {**s.canon.get("character-ren").data, "personality": "kind, loyal"}]}
    view = s.send("make Aiko older, then remove shot 2, and make Ren kinder")
    assert view.pending["target_id"] == "character-aiko"
    assert s.canon.revision_count() == revs and decisions(s) == decided
    view = s.decide({"type": "accept"})
    assert view.pending["kind"] == "shots" and view.pending["target_id"] == "scene-ep1-1"
    assert [sh["framing"] for sh in view.pending["data"]["shots"]] == ["establishing", "medium"]
    assert view.pending["data"]["shots"][0]["lines"] == [1]            # shot 2's line moved to its neighbour
    assert s.canon.get("scene-ep1-1-s3").data["framing"] == "medium"   # canon unchanged until decided
    view = s.decide({"type": "reject", "note": "keep it"})              # a rejection changes nothing
    assert s.canon.live("scene-ep1-1-s3") is not None
    view = s.decide({"type": "skip"})
    assert view.pending["target_id"] == "character-ren"
    view = s.decide({"type": "accept"})
    assert s.canon.get("character-ren").data["personality"] == "kind, loyal"
    assert view.pending["kind"] == "input"


def test_a_shot_reorder_and_reframe_are_exact_proposals(session):
    s = session
    revs = s.canon.revision_count()
    view = s.send("swap shots 1 and 3 in scene 1")
    assert [sh["framing"] for sh in view.pending["data"]["shots"]] == ["medium", "close-up", "establishing"]
    assert view.pending["diff"] and s.canon.revision_count() == revs
    s.decide({"type": "accept"})
    assert s.canon.get("scene-ep1-1-s1").data["framing"] == "medium"
    view = s.send("shot 5 from a low angle, pushing in")
    assert view.pending["target_id"] == "scene-ep1-2"
    shot = view.pending["data"]["shots"][1]
    assert (shot["angle"], shot["camera_move"]) == ("low", "push-in")


def test_ambiguity_asks_one_question_and_keeps_everything(session):
    s = session
    revs = s.canon.revision_count()
    view = s.send("make the scene darker")
    answer = view.messages[-1]["content"]
    assert answer.startswith("Which scene") and "scene-ep1-3" in answer and answer.count("?") == 1
    assert view.pending["kind"] == "input" and s.canon.revision_count() == revs


def _order(s) -> list[str]:
    from agent.cut import episode_scenes

    return [sc.id for sc in episode_scenes(s.canon, 1)]


def _canon_actions(s) -> list[tuple[str, str]]:
    return [(e["action"], e.get("record_id")) for e in s.ledger.entries() if e["action"] in ("accept", "edit", "revert")]


@pytest.mark.parametrize(("text", "summary", "order", "decision"), [
    ("swap scenes 2 and 3", "scenes in the order 1, 3, 2", ["scene-ep1-1", "scene-ep1-3", "scene-ep1-2"], "accept"),
    ("move scene 3 before scene 1", "scenes in the order 3, 1, 2", ["scene-ep1-3", "scene-ep1-1", "scene-ep1-2"],
     "accept"),
    ("split scene 2 at line 2", "split scene 2", ["scene-ep1-1", "scene-ep1-2", "scene-ep1-4", "scene-ep1-3"],
     "accept"),
    ("merge scenes 1 and 2", "merge scene 2", ["scene-ep1-1", "scene-ep1-3"], "accept"),
    ("delete scene 3", "remove scene 3", ["scene-ep1-1", "scene-ep1-2"], "accept"),
    ("swap scenes 1 and 2", "scenes in the order 2, 1, 3", ["scene-ep1-1", "scene-ep1-2", "scene-ep1-3"], "reject"),
])
def test_structural_edits_are_proposals_then_canon_then_undone(session, text, summary, order, decision):
    s = session
    before, revs, decided = _order(s), s.canon.revision_count(), _canon_actions(s)
    view = s.send(text)
    assert view.pending["kind"] == "structure" and summary in view.pending["data"]["summary"]
    assert s.canon.revision_count() == revs and _order(s) == before and _canon_actions(s) == decided
    view = s.decide({"type": "edit", "data": {}})           # nothing to edit: refused, nothing written
    assert view.pending["kind"] == "structure" and s.canon.revision_count() == revs
    view = s.decide({"type": decision, **({"note": "no"} if decision == "reject" else {})})
    assert _order(s) == order
    if decision == "reject":
        assert s.canon.revision_count() == revs and _canon_actions(s) == decided
        assert view.pending["kind"] == "input"
        return
    assert s.canon.revision_count() > revs and len(_canon_actions(s)) > len(decided)
    view = s.send("undo that")
    said = "\n".join(m["content"] for m in view.messages[-3:])
    assert "Undone:" in said, said
    assert _order(s) == before


def test_a_scene_proposed_after_a_merge_never_overwrites_a_live_one(session):
    s = session
    s.send("merge scenes 1 and 2")
    view = s.decide({"type": "accept"})
    assert view.pending["kind"] == "scene" and view.pending["data"]["number"] == 3   # the targets ask for 3
    s.decide({"type": "accept"})
    storm = s.canon.get("scene-ep1-3")
    assert (storm.data["title"], storm.data["number"], storm.rev) == ("Storm Gate", 2, 2)
    assert _order(s) == ["scene-ep1-1", "scene-ep1-3", "scene-ep1-4"]
    assert s.canon.get("scene-ep1-4").data["lines"][0]["id"] == "scene-ep1-4-l1"


@pytest.mark.parametrize(("text", "words"), [
    ("split scene 2 into two scenes", "Where should scene 2"),
    ("delete Kaito", "is still used by scene 2"),
])
def test_structural_edits_that_need_more_are_said_never_faked(session, text, words):
    revs = session.canon.revision_count()
    view = session.send(text)
    assert words in view.messages[-1]["content"]
    assert view.pending["kind"] == "input" and session.canon.revision_count() == revs


def test_read_only_tools_answer_at_once(session):
    s = session
    revs = s.canon.revision_count()
    view = s.send("what's left before I can render?")
    text = view.messages[-1]["content"]
    assert "Episode 1:" in text and "3/3 scenes" in text and "panels: 0 accepted, 0 stale, 7 missing" in text
    assert "not ready to render" in text
    view = s.send("show me scene 2")
    assert "The Flashback" in view.messages[-1]["content"] and "scene-ep1-2" in view.messages[-1]["content"]
    s.bible.rebuild(s.canon)
    view = s.send("What does Aiko wear?")
    assert "Records used: " in view.messages[-1]["content"] and "character-aiko" in view.messages[-1]["content"]
    assert s.canon.revision_count() == revs


def test_undo_in_chat_is_a_logged_revert(session):
    s = session
    s.llm.script = {"CharacterProposal": [{**s.canon.get("character-aiko").data, "age": "30"}]}
    s.send("make Aiko older")
    s.decide({"type": "accept"})
    view = s.send("undo that")
    assert "Reverted character-aiko to revision 1" in view.messages[-1]["content"]
    assert s.canon.get("character-aiko").data["age"] == "17"
    assert decisions(s)[-1]["action"] == "revert"


def test_the_session_names_its_router(session):
    assert "offline router" in session.view().router


@pytest.fixture
def painted(tmp_path):
    from tools.backends.animatic import AnimaticPainter

    project = create_project(tmp_path, "Fox Rain")
    with Canon(project.canon_path) as c:
        build_fixture(c)
    s = DirectorSession(project, ScriptedChatModel(), targets=FIXTURE_TARGETS, painter=AnimaticPainter(),
                        candidates=2)
    s.start()
    assert s.send("A premise.").pending["kind"] == "reference"   # the storyboard's first card
    yield s
    s.close()


def test_a_panel_brought_to_the_card_and_redrawn_from_the_chat(painted):
    s = painted
    reference = s.view().pending
    view = s.send("let's review the panel for shot 2")
    first = view.pending
    assert first["kind"] == "panel" and first["data"]["subject"] == "scene-ep1-1-s2"
    view = s.send("redraw this one with more rain")                 # a new draft of the same card
    again = view.pending
    assert again["kind"] == "panel" and again["data"]["subject"] == "scene-ep1-1-s2"
    assert again["proposal_id"] != first["proposal_id"] and again["attempt"] == 2
    assert {c["seed"] for c in again["data"]["candidates"]}.isdisjoint({c["seed"] for c in first["data"]["candidates"]})
    s.decide({"type": "accept"})
    assert s.view().pending["proposal_id"] == reference["proposal_id"]   # back to the card that was on screen


def test_a_reframe_from_a_panel_card_redraws_the_panel_after_the_plan(painted):
    s = painted
    s.send("let's review the panel for shot 2")
    revs = s.canon.revision_count()
    view = s.send("make this shot wider")
    assert view.pending["kind"] == "shots" and view.pending["data"]["shots"][1]["framing"] == "medium"
    assert s.canon.revision_count() == revs
    view = s.decide({"type": "accept"})
    assert s.canon.get("scene-ep1-1-s2").data["framing"] == "medium"
    assert view.pending["kind"] == "panel" and view.pending["data"]["subject"] == "scene-ep1-1-s2"
    assert view.pending["attempt"] == 1                              # drawn again from the new plan


@pytest.mark.parametrize(("words", "shot", "changes"), [
    ("closer", {"framing": "medium"}, {"framing": "close-up"}),
    ("closer on her face", {"framing": "close-up"}, {"framing": "extreme close-up"}),
    ("wider", {"framing": "close-up"}, {"framing": "medium"}),
    ("make it a close-up", {"framing": "wide"}, {"framing": "close-up"}),
    ("from a low angle", {"angle": "eye level"}, {"angle": "low"}),
    ("from above, pushing in", {"camera_move": "static"}, {"angle": "high", "camera_move": "push-in"}),
    ("put Ren in this shot", {"characters": [{"name": "Aiko"}]}, {"add_characters": ["Ren"]}),
    ("more rain", {"framing": "medium"}, {}),                      # for the painter alone
    ("a close-up", {"framing": "close-up"}, {}),                   # already so
])
def test_shot_words(words, shot, changes):
    from agent.tools.production import shot_changes

    assert shot_changes(words, shot, ["Aiko", "Ren", "Kaito"]) == changes
