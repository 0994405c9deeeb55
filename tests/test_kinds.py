"""The registry of proposal kinds (agent/kinds): one record per kind with every hook, looked up by
the nodes and the studio instead of comparing kind strings; a new kind is one module, driven here
end to end (propose → review → commit) with the scripted model at the ChatModel boundary."""
from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from agent import kinds
from agent.context import Targets
from agent.kinds import KINDS, UnknownKindError, get_kind, lookup, register, unregister
from agent.kinds.base import Kind
from agent.review import check_open_task, open_kinds
from agent.schemas import PROPOSAL_MODELS
from memory.errors import InputError
from memory.project import create_project
from tests.fakes import ScriptedChatModel, accept_vision
from ui.cards import card_markdown, editable
from ui.session import DirectorSession

ROOT = Path(__file__).resolve().parents[1]
NO_DISPATCH = ("agent/nodes.py", "ui/cards.py", "ui/app.py", "agent/chat.py", "agent/review.py")
OLD_TABLES = {"VISUAL_KINDS", "AUDIO_KINDS", "VISUAL_CARDS", "AUDIO_CARDS", "PROPOSAL_MODELS", "PROPOSAL_TITLES"}
HOOKS = ("plan", "propose", "retrieve", "current", "narrow", "known", "prepare", "check", "shape_fix",
         "fallback", "summarise", "review", "on_reject", "commit", "record_id", "card")


def _mentions_kind(node: ast.AST) -> bool:
    """`kind`, `task["kind"]`, `pending.get("kind")`, `k.kind`, `kind_name`…: an expression about a kind."""
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and "kind" in sub.id:
            return True
        if isinstance(sub, ast.Attribute) and "kind" in sub.attr:
            return True
        if isinstance(sub, ast.Constant) and sub.value == "kind":
            return True
    return False


def _strings(node: ast.AST) -> set[str]:
    return {sub.value for sub in ast.walk(node) if isinstance(sub, ast.Constant) and isinstance(sub.value, str)}


def kind_comparisons(source: str) -> list[str]:
    """Every comparison of a kind expression with a registered kind's name (==, !=, in, not in),
    and every use of the old per-family kind tables, as 'line N: text'."""
    found = []
    names = set(KINDS)
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            about_kind = [s for s in sides if _mentions_kind(s)]
            literals = set().union(*(_strings(s) for s in sides if s not in about_kind)) if about_kind else set()
            if literals & names:
                found.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, ast.Name) and node.id in OLD_TABLES:
            found.append(f"line {node.lineno}: {node.id}")
        if isinstance(node, ast.alias) and node.name in OLD_TABLES:
            found.append(f"import {node.name}")
    return found


@pytest.mark.parametrize("source, hits", [
    ('if kind == "panel": pass', 1),
    ('if pending.get("kind") in ("casting", "take"): pass', 1),
    ('x = task["kind"] != "motion"', 1),
    ('ok = "shots" == request.get("kind")', 1),
    ('if request.get("kind") == "input": pass', 0),            # the input prompt is no proposal kind
    ('if w.kind in ("choice", "multi"): pass', 0),            # an edit-form widget kind
    ('ids = [r.id for kind in ("outline", "scene") for r in f(kind)]', 0),   # a loop, not a comparison
    ('from agent.storyboard import VISUAL_KINDS', 1),
    ('visual = k in VISUAL_CARDS', 1),
])
def test_the_comparison_finder_finds_what_it_should(source, hits):
    assert len(kind_comparisons(source)) == hits, kind_comparisons(source)


@pytest.mark.parametrize("path", NO_DISPATCH)
def test_no_kind_string_dispatch_is_left(path):
    misses = kind_comparisons((ROOT / path).read_text(encoding="utf-8"))
    assert not misses, f"{path} compares kind strings; ask the registry (agent.kinds) instead:\n" + "\n".join(misses)


def test_nodes_stay_a_thin_router():
    lines = (ROOT / "agent/nodes.py").read_text(encoding="utf-8").count("\n")
    assert lines < 600, f"agent/nodes.py has {lines} lines; move kind-specific code into agent/kinds/"


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_has_every_hook_or_an_explicit_default(name):
    kind = KINDS[name]
    assert kind.name == name and kind.title
    for hook in HOOKS:
        assert callable(getattr(kind, hook)), f"{name}.{hook} is not callable"
    assert kind.schema is None or issubclass(kind.schema, BaseModel)
    assert kind.media in ("fields", "images", "audio", "clip") and kind.edit in ("fields", "adjust", "none")
    if kind.edit != "none":   # the edit form is built from the schema
        assert kind.schema is not None, f"{name} is editable but has no schema"
    try:   # a card body for the schema's defaults (where every field has one), else for no data
        sample = kind.schema().model_dump() if kind.schema is not None else {}
    except ValueError:
        sample = {}
    assert isinstance(kind.card(sample), str) if sample or kind.schema is None else True
    assert isinstance(kind.summarise({"name": "X"}), str)
    for hook in ("propose", "review", "commit"):   # called with the kind first: (kind, ...)
        params = list(inspect.signature(getattr(kind, hook)).parameters)
        assert params and params[0] == "kind", f"{name}.{hook} does not take the kind first: {params}"


def test_the_registry_covers_every_schema_and_everything_the_card_can_open():
    assert set(PROPOSAL_MODELS) <= set(KINDS)
    assert set(open_kinds()) <= set(KINDS)
    # planners in the production order: writers' room, storyboard, voices, motion
    planners = [k for k, v in KINDS.items() if v.plan is not kinds.base.no_plan]
    assert planners[:8] == ["vision", "series", "character", "location", "prop", "outline", "beats", "scene"]
    assert planners[8:] == ["facts", "reference", "casting", "motion", "cold_open"]


@pytest.mark.parametrize("name", ["", "charakter", "Panel", "step", "input"])
def test_an_unknown_kind_is_a_typed_error_naming_it_and_the_known_ones(name):
    with pytest.raises(UnknownKindError) as err:
        get_kind(name)
    assert isinstance(err.value, InputError)
    assert repr(name) in str(err.value) and "character" in str(err.value) and "motion" in str(err.value)


@pytest.mark.parametrize("name, editable_, help_word", [
    ("character", True, "Edit"), ("panel", False, "upload your own"), ("take", True, "recording"),
    ("casting", True, "engine"), ("motion", True, "Edit"), ("step", False, "Reject with note"),
])
def test_cards_ask_the_kind_what_the_card_offers(name, editable_, help_word):
    request = {"kind": name, "title": name, "failure": "it broke", "attempt": 1}
    assert editable(request) is editable_
    assert help_word in card_markdown(request)
    assert lookup(name).name == name


def test_what_the_card_can_open_and_what_takes_chat_notes_come_from_the_kinds_flags():
    # derived from media/needs_scene/family when a kind does not say: the same set the old tables named
    old_table = {"shots": "scene_id", "reference": "subject", "background": "subject", "panel": "subject",
                 "casting": "subject", "take": "subject", "motion": "scene_id"}
    assert {k: v for k, v in open_kinds().items() if k in old_table} == old_table
    assert set(open_kinds().values()) <= {"subject", "scene_id"}
    assert not {"series", "character", "location", "prop", "scene", "translation", "structure"} & set(open_kinds())
    for flags, opens in [({}, ""), ({"media": "images"}, "subject"), ({"media": "audio"}, "subject"),
                         ({"media": "clip"}, "scene_id"), ({"needs_scene": True}, "scene_id")]:
        assert Kind(name="x", title="X", schema=None, **flags).opens == opens, flags
    assert {k for k, v in KINDS.items() if v.chat_notes} == {
        "series", "character", "location", "prop", "outline", "beats", "scene"} | (
        {"facts"} if "facts" in KINDS and KINDS["facts"].chat_notes else set())
    assert check_open_task({"kind": "motion", "scene_id": "scene-ep1-1"})["scene_id"] == "scene-ep1-1"
    with pytest.raises(InputError, match="cannot open 'character'; open one of .*shots, reference, background"):
        check_open_task({"kind": "character", "subject": "character-aiko"})
    with pytest.raises(InputError, match="needs its record id as 'subject'"):
        check_open_task({"kind": "panel", "scene_id": "scene-ep1-1"})
    # a kind states its own flags; a throwaway kind that opens by subject is openable at once
    register(Kind(name="poster", title="Poster", schema=None, media="images", opens="", chat_notes=True))
    try:
        assert "poster" not in open_kinds() and KINDS["poster"].chat_notes
        register(Kind(name="poster", title="Poster", schema=None, media="images"), replace=True)
        assert open_kinds()["poster"] == "subject" and not KINDS["poster"].chat_notes
    finally:
        unregister("poster")


def test_register_refuses_duplicates_and_unknown_anchors():
    series = KINDS["series"]
    with pytest.raises(ValueError, match="'series' is registered already"):
        register(Kind(name="series", title="again", schema=None))
    with pytest.raises(UnknownKindError, match="'nope'"):
        register(Kind(name="fresh", title="Fresh", schema=None), before="nope")
    assert KINDS["series"] is series and "fresh" not in KINDS


# ----------------------------------------------------------------------------- a throwaway kind


class TaglineProposal(BaseModel):
    text: str = Field(min_length=3, max_length=80)


def _plan_tagline(canon: Any, ctx: Any) -> dict[str, Any] | None:
    return None if canon.live("tagline") else {"kind": "tagline", "target_id": None}


def _tagline_card(data: dict[str, Any]) -> str:
    return f"Poster tagline: **{data.get('text')}**"


@pytest.fixture
def tagline():
    kind = Kind(name="tagline", title="Poster tagline", schema=TaglineProposal, plan=_plan_tagline,
                instruction="Propose a short tagline for the series poster.", record_kind="summary",
                record_id=lambda data: "tagline", card=_tagline_card, check=lambda data, d: (
                    ["the tagline must end with a full stop"] if not data["text"].endswith(".") else []))
    register(kind, before="series")
    yield kind
    unregister("tagline")


def test_a_new_kind_is_one_record_driven_through_propose_review_commit(tmp_path, tagline):
    assert list(KINDS)[:2] == ["vision", "tagline"]   # the director's vision stays first
    llm = ScriptedChatModel({"TaglineProposal": [
        {"text": "Rain remembers"},                # breaks the kind's check: repaired once
        {"text": "Rain remembers."},
        {"text": "The storm forgets."}]})           # the draft after a rejection
    project = create_project(tmp_path, "Fox Rain")
    s = DirectorSession(project, llm, targets=Targets(characters=1, locations=1, props=1, episodes=1, scenes=1))
    try:
        s.start()
        view = accept_vision(s, s.send("A shrine maiden hears rain spirits."))
        assert view.pending["kind"] == "tagline" and view.pending["data"] == {"text": "Rain remembers."}
        assert "Poster tagline: **Rain remembers.**" in card_markdown(view.pending)
        assert "Propose a short tagline" in llm.prompts_for("TaglineProposal")[0]
        assert any("full stop" in p for p in llm.prompts_for("TaglineProposal")[1:])  # the check's repair
        assert s.canon.live("tagline") is None                                        # not canon before accept

        view = s.decide({"type": "edit", "data": {"text": "x"}})                    # the schema guards Edit
        assert "not valid" in (view.pending.get("error") or "") and s.canon.live("tagline") is None

        view = s.decide({"type": "reject", "note": "darker"})
        assert view.pending["kind"] == "tagline" and view.pending["data"] == {"text": "The storm forgets."}
        assert "darker" in llm.prompts_for("TaglineProposal")[-1]
        assert s.canon.live("tagline") is None

        view = s.decide({"type": "accept"})
        rec = s.canon.get("tagline")
        assert rec.kind == "summary" and rec.data == {"text": "The storm forgets."} and rec.actor == "human"
        entries = s.ledger.entries()
        assert [e["action"] for e in entries if e.get("kind") == "tagline"] == ["propose", "reject", "propose"]
        assert [(e["action"], e["actor"]) for e in entries if e.get("record_id") == "tagline"] == [("accept", "human")]
        assert view.pending["kind"] == "series"                                       # the next planner
    finally:
        s.close()
