"""The review card's text (ui/cards.py), the edit form's widgets and parsing (ui/edit_form.py), and
the terminal's plain-text rendering (ui/terminal.py). No browser, no graph."""
from __future__ import annotations

import pytest

from agent.schemas import CAMERA_MOVES, EMOTIONS, FRAMINGS, PROPOSAL_MODELS, TRANSITIONS, validate_proposal
from memory.canon import Record
from memory.errors import InputError
from tests.fakes import SHOT_PLAN, scene
from ui import edit_form as ef
from ui.cards import bible_text, card_markdown, diff_markdown, editable, shot_label
from ui.terminal import _strip_md, help_text

MOTION = {"scene_id": "scene-ep1-2", "preview": "assets/drafts/motion/scene-ep1-2/abc/episode.mp4", "shots": [
    {"shot_id": "scene-ep1-2-s1", "camera_move": "push-in", "ease": "in_out", "grade": "night", "vignette": True,
     "flicker": False, "flash": False, "transition": "crossfade", "pad_s": 0.3, "clip": [], "clip_fps": 8.0},
    {"shot_id": "scene-ep1-2-s2", "camera_move": "shake", "ease": "linear", "grade": "none", "vignette": False,
     "flicker": True, "flash": True, "transition": "cut", "pad_s": 0.0, "clip": [], "clip_fps": 8.0}]}


@pytest.mark.parametrize("shot_id, long, short", [
    ("scene-ep1-2-s3", "scene 2 · shot 3", "sc2 s3"),
    ("scene-ep10-12-s1", "scene 12 · shot 1", "sc12 s1"),
    ("intro", "intro", "intro"),
])
def test_shot_labels_name_scene_and_shot(shot_id, long, short):
    assert shot_label(shot_id) == long and shot_label(shot_id, short=True) == short


def test_motion_card_has_readable_rows_and_no_none_or_path():
    text = card_markdown({"kind": "motion", "title": "Motion", "proposal_id": "p1", "data": MOTION, "attempt": 1})
    assert "None" not in text and "assets/drafts" not in text and "lines" not in text
    rows = [ln for ln in text.splitlines() if ln[:3] in ("1. ", "2. ")]
    assert rows == [("1. **shot 1** — camera *push-in* (in-out) · grade night · effects: vignette · "
                     "← crossfade · pad 0.3 s"),
                    ("2. **shot 2** — camera *shake* (linear) · grade none · effects: flicker, flash · "
                     "← cut · pad 0.0 s")]
    assert "preview plays below" in text


def test_shot_plan_card_shows_lines_and_people_not_python_values():
    text = card_markdown({"kind": "shots", "title": "Shot plan", "data": SHOT_PLAN, "attempt": 1})
    assert "None" not in text and "[]" not in text and "[1]" not in text
    assert "no lines" in text and "line 1" in text and "Aiko (scared)" in text


@pytest.mark.parametrize("kind, data, can_edit, says", [
    ("character", None, True, "Edit** to write it yourself"),
    ("scene", {"title": "half"}, True, "Edit** to write it yourself"),
    ("panel", None, False, "upload your own** image"),
    ("take", None, True, "upload your own** recording"),
    ("casting", None, True, "Edit** to choose the engine"),
    ("translation", None, True, "Edit** to write it yourself"),
])
def test_failure_cards_offer_only_what_works(kind, data, can_edit, says):
    request = {"kind": kind, "title": kind, "failure": "the model replied junk", "data": data, "attempt": 2}
    assert editable(request) is can_edit
    text = card_markdown(request)
    assert says in text and ("Edit" in text) is can_edit


def test_card_title_says_draft_not_take_take():
    text = card_markdown({"kind": "take", "title": "Line take", "data": None, "attempt": 1, "failure": "x"})
    assert "take take" not in text.lower() and "draft 1" in text


@pytest.mark.parametrize("diff, old, new", [
    ({"age": ["17", "27"]}, "17", "27"),
    ({"age": {"old": "17", "new": "27"}}, "17", "27"),
    ({"look_tags": [["red scarf"], ["red scarf", "grey streak"]]}, "red scarf", "red scarf, grey streak"),
])
def test_a_revision_card_shows_old_and_new(diff, old, new):
    text = card_markdown({"kind": "character", "title": "Character (revision of character-aiko)",
                          "data": {"name": "Aiko"}, "diff": diff, "attempt": 1})
    row = next(ln for ln in text.splitlines() if ln.startswith("| **"))
    assert f"| {old} | → {new} |" in row
    assert diff_markdown({}) == ""


def test_bible_text_is_plain():
    recs = {"character": [Record(id="character-mina", kind="character", rev=2, actor="human", deleted=False,
                                 created_at="2026-01-01T00:00:00", note="",
                                 data={"name": "Mina", "age": "17", "look_tags": ["red scarf", "bob hair"]})],
            "prop": []}
    text = bible_text(recs)
    assert "#" not in text and "**" not in text and "<" not in text
    assert "Characters\n==========" in text and "Mina  [character-mina, rev 2, human]" in text
    assert "  Look (image tags): red scarf; bob hair" in text and "(none yet)" in text


def test_terminal_help_names_a_real_character_or_nobody():
    assert '"what does Mina wear?"' in help_text(["Mina"]) and "Ren" not in help_text(["Mina"])
    neutral = help_text([])
    assert "Ren" not in neutral and "Aiko" not in neutral and "the lead" in neutral
    assert '/edit {"field": ...}' in neutral


def test_terminal_card_text_has_no_markdown_table_syntax():
    text = _strip_md(card_markdown({"kind": "motion", "title": "Motion", "data": MOTION, "attempt": 1}))
    assert "**" not in text and "<" not in text
    assert "1. shot 1 — camera *push-in* (in-out)" in text


# ----------------------------------------------------------------------------- the edit form

def test_shot_plan_form_uses_the_schema_vocabularies():
    layout = ef.form_layout(PROPOSAL_MODELS["shots"], {"cast": ["Aiko", "Ren"], "places": ["Hilltop Shrine"]})
    table = next(t for t in layout if isinstance(t, ef.Table))
    cols = {c.name: c for c in table.columns}
    assert cols["framing"].kind == "choice" and cols["framing"].choices == FRAMINGS
    assert cols["camera_move"].choices == CAMERA_MOVES and cols["transition"].choices == TRANSITIONS
    assert cols["angle"].kind == "choice" and cols["angle"].custom and "eye level" in cols["angle"].choices
    assert cols["location"].choices == ("Hilltop Shrine",)
    assert cols["lines"].kind == "ints" and cols["characters"].kind == "people"
    assert next(w for w in layout if not isinstance(w, ef.Table)).read_only   # scene_id


def test_scene_form_has_speaker_and_emotion_dropdowns():
    layout = ef.form_layout(PROPOSAL_MODELS["scene"], {"cast": ["Aiko", "Ren"], "places": ["Hilltop Shrine"]})
    lines = next(t for t in layout if isinstance(t, ef.Table) and t.name == "lines")
    cols = {c.name: c for c in lines.columns}
    assert cols["speaker"].choices == ("Aiko", "Ren", "Narrator") and cols["emotion"].choices == EMOTIONS
    chars = next(w for w in layout if not isinstance(w, ef.Table) and w.name == "characters")
    assert chars.kind == "multi"


def _values(layout, data):
    return [ef.widget_value(w, data[p[0]] if len(p) == 1 else data[p[0]][p[1]].get(p[2]))
            for p, w in ef.slots(layout, data)]


@pytest.mark.parametrize("kind, data", [
    ("shots", SHOT_PLAN),
    ("scene", scene(2)),
    ("motion", MOTION),
])
def test_the_form_round_trips_a_proposal_unchanged(kind, data):
    layout = ef.form_layout(PROPOSAL_MODELS[kind], {"cast": ["Aiko", "Ren"], "places": ["Hilltop Shrine"]})
    start = ef.start_data(PROPOSAL_MODELS[kind], data)
    assert validate_proposal(kind, ef.assemble(layout, start, _values(layout, start))) == validate_proposal(kind, data)


def test_editing_a_shot_row_changes_only_that_cell():
    layout = ef.form_layout(PROPOSAL_MODELS["shots"])
    start = ef.start_data(PROPOSAL_MODELS["shots"], SHOT_PLAN)
    values = _values(layout, start)
    paths = [p for p, _ in ef.slots(layout, start)]
    values[paths.index(("shots", 1, "framing"))] = "wide"
    values[paths.index(("shots", 2, "characters"))] = "Ren: angry, fists up; Aiko"
    values[paths.index(("shots", 2, "lines"))] = "2 , 1"
    out = ef.assemble(layout, start, values)
    assert out["shots"][1]["framing"] == "wide"
    assert validate_proposal("shots", out)["shots"][0] == validate_proposal("shots", SHOT_PLAN)["shots"][0]
    assert out["shots"][2]["characters"] == [{"name": "Ren", "expression": "angry", "pose": "fists up"},
                                             {"name": "Aiko", "expression": "neutral", "pose": ""}]
    assert out["shots"][2]["lines"] == [2, 1]


@pytest.mark.parametrize("text, people", [
    ("", []),
    ("Aiko", [{"name": "Aiko", "expression": "neutral", "pose": ""}]),
    ("Aiko: scared, looking up, hands raised",
     [{"name": "Aiko", "expression": "scared", "pose": "looking up, hands raised"}]),
    ("Aiko: sad; Ren: , arms crossed", [{"name": "Aiko", "expression": "sad", "pose": ""},
                                        {"name": "Ren", "expression": "neutral", "pose": "arms crossed"}]),
])
def test_people_text_parses(text, people):
    assert ef.parse_people(text) == people
    assert ef.parse_people(ef.people_text(people)) == people


@pytest.mark.parametrize("text, numbers", [("", []), ("1", [1]), ("1, 2", [1, 2]), ("3 4", [3, 4]), (" 2 ,", [2])])
def test_line_numbers_parse(text, numbers):
    assert ef.parse_ints(text, "shot 1 lines") == numbers


@pytest.mark.parametrize("text", ["one", "1.5", "1, x"])
def test_bad_line_numbers_are_refused_naming_the_field(text):
    with pytest.raises(InputError, match="shot 2 lines"):
        ef.parse_ints(text, "shot 2 lines")
    with pytest.raises(InputError):
        ef.parse_people(": scared")


def test_add_and_remove_rows():
    layout = ef.form_layout(PROPOSAL_MODELS["shots"])
    start = ef.start_data(PROPOSAL_MODELS["shots"], SHOT_PLAN)
    more = ef.add_row(layout, start, "shots")
    assert len(more["shots"]) == 4 and more["shots"][3]["lines"] == [] and more["shots"][3]["characters"] == []
    assert more["shots"][3]["transition"] == SHOT_PLAN["shots"][2]["transition"]
    fewer = ef.remove_row(more, "shots", 0)
    assert [s["framing"] for s in fewer["shots"]] == ["close-up", "medium", more["shots"][3]["framing"]]
    validate_proposal("shots", fewer)


@pytest.mark.parametrize("kind", sorted(PROPOSAL_MODELS))
def test_a_failed_card_opens_a_schema_shaped_form(kind):
    start = ef.start_data(PROPOSAL_MODELS[kind], None)
    assert set(start) == set(PROPOSAL_MODELS[kind].model_fields)
    layout = ef.form_layout(PROPOSAL_MODELS[kind])
    for table in (t for t in layout if isinstance(t, ef.Table)):
        assert len(start[table.name]) == 1              # one empty row to fill in
    assert ef.assemble(layout, start, _values(layout, start)).keys() == start.keys()


def test_lenient_assembly_keeps_what_parses():
    layout = ef.form_layout(PROPOSAL_MODELS["shots"])
    start = ef.start_data(PROPOSAL_MODELS["shots"], SHOT_PLAN)
    values = _values(layout, start)
    paths = [p for p, _ in ef.slots(layout, start)]
    values[paths.index(("shots", 0, "lines"))] = "oops"
    values[paths.index(("shots", 0, "mood"))] = "calm"
    out = ef.lenient_assemble(layout, start, values)
    assert out["shots"][0]["lines"] == [] and out["shots"][0]["mood"] == "calm"


LONG_FACTS = ("Character Aiko — role: lead; age: 17; look: red scarf, black bob hair, amber eyes, shrine maiden "
              "outfit; personality: stubborn, kind, secretly afraid of thunder; voice: bright, quick; "
              "relationships: Ren is her rival and, since the storm, her only friend in the town")


@pytest.mark.parametrize("text, limit", [
    (LONG_FACTS, 240), (LONG_FACTS, 120), (LONG_FACTS, 20), ("Style — palette: #1b2a4a, #e05a47", 240),
])
def test_the_bible_excerpt_under_an_answer_keeps_whole_facts(text, limit):
    from agent.chat import bible_excerpt

    out = bible_excerpt(text, limit)
    facts = text.partition(" — ")[2].split("; ")
    shown = out.partition(" — ")[2].removesuffix("; …").split("; ")
    assert out.startswith(text.partition(" — ")[0]) and shown == facts[:len(shown)] and shown
    assert out == text or (out.endswith("; …") and len(shown) < len(facts))
    assert len(out) <= max(limit + 3, len(text.partition("; ")[0]) + 3)


def test_terminal_shows_a_revision_difference_as_plain_rows():
    text = _strip_md(card_markdown({"kind": "character", "title": "Character (revision of character-aiko)",
                                    "data": {"name": "Aiko", "age": "27"}, "diff": {"age": ["17", "27"]},
                                    "attempt": 1}))
    assert "|---" not in text and "**" not in text
    assert "  Age | 17 | → 27" in text


def test_terminal_edit_of_a_failed_card_starts_from_the_schema():
    from ui.terminal import apply_edit, blank_proposal

    data = blank_proposal({"kind": "character", "failure": "junk", "data": None})
    edited = apply_edit(data, '{"name": "Mina", "role": "fox", "personality": "sly", "look_tags": ["a", "b"]}')
    assert validate_proposal("character", edited)["name"] == "Mina"
    assert blank_proposal({"kind": "panel", "failure": "x", "data": None}) == {}


def test_a_failed_card_with_a_salvaged_draft_opens_the_form_from_it():
    from agent.schemas import LookVariant
    from ui.terminal import blank_proposal

    draft = {"name": "Mina", "role": "fox", "age": "", "personality": "sly", "look_tags": ["a", "b"],
             "voice_notes": ""}
    request = {"kind": "character", "failure": "junk", "data": None, "draft": draft,
               "fallbacks": ["role: default 'fox' (the model wrote nothing)"], "attempt": 1}
    assert "**Accept** takes a safe draft (role: default 'fox'" in card_markdown(request)
    # the form adds an empty look-variant row (dropped again when it stays empty)
    assert blank_proposal(request) == {**draft, "looks": [ef.skeleton(LookVariant, rows=False)]}
    assert ef.start_data(PROPOSAL_MODELS["character"], request["draft"]) == blank_proposal(request)
    assert validate_proposal("character", blank_proposal(request)) == draft
