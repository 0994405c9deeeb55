"""The director's notes read deterministically: field values, the fields a change request is about,
and panel notes that need the shot plan (agent/notes.py). Table-driven."""
from __future__ import annotations

import pytest

from agent import notes
from agent.schemas import CharacterProposal, LocationProposal, PropProposal, SceneProposal, SeriesProposal

SERIES = {"title": "Fox Rain", "logline": "A maiden hears rain spirits.", "art_style": "anime cel shading",
          "palette": ["#1b2a4a", "#e05a47"], "tone": "bittersweet", "target_episode_seconds": 60}
CHARACTER = {"name": "Minokichi", "role": "lead", "age": "18", "personality": "kind, honest",
             "look_tags": ["short black hair", "woodcutter clothes"], "voice_notes": "warm"}


@pytest.mark.parametrize("note, model, expected", [
    ("Title it 'Yuki-Onna'", SeriesProposal, [("title", "Yuki-Onna")]),
    ("title it “Yuki-Onna”.", SeriesProposal, [("title", "Yuki-Onna")]),
    ("Title: Snow Woman", SeriesProposal, [("title", "Snow Woman")]),
    ("call it The Snow Bride", SeriesProposal, [("title", "The Snow Bride")]),
    ("make the palette navy, white and pale blue", SeriesProposal, [("palette", "navy, white and pale blue")]),
    ("palette: #ffffff, #000000", SeriesProposal, [("palette", "#ffffff, #000000")]),
    ("change the colours to black, red", SeriesProposal, [("palette", "black, red")]),
    ("the tone should be eerie and quiet", SeriesProposal, [("tone", "eerie and quiet")]),
    ("set the episode length to 45", SeriesProposal, [("target_episode_seconds", "45")]),
    ("call her Oyuki", CharacterProposal, [("name", "Oyuki")]),
    ("rename him to Kenji", CharacterProposal, [("name", "Kenji")]),
    ("name: Amber", CharacterProposal, [("name", "Amber")]),
    ("her name is O-Yuki", CharacterProposal, [("name", "O-Yuki")]),
    ("age 40", CharacterProposal, [("age", "40")]),
    ("make him 40 years old", CharacterProposal, [("age", "40")]),
    ("she is 30", CharacterProposal, [("age", "30")]),
    ("age: 25", CharacterProposal, [("age", "25")]),
    ("make the look tags white kimono, long black hair", CharacterProposal,
     [("look_tags", "white kimono, long black hair")]),
    ("role: villain; age 300", CharacterProposal, [("role", "villain"), ("age", "300")]),
    ("call her Oyuki. Make her 25", CharacterProposal, [("name", "Oyuki"), ("age", "25")]),
    ("title it Snowfall", CharacterProposal, [("name", "Snowfall")]),       # no title: the name
    ("call it Frozen Lake", LocationProposal, [("name", "Frozen Lake")]),
    ("owner: Minokichi", PropProposal, [("owner", "Minokichi")]),
    ("title it The Storm", SceneProposal, [("title", "The Storm")]),
    # not field values: directions for the model, left to it
    ("make her a retired detective", CharacterProposal, []),
    ("make her older", CharacterProposal, []),
    ("make the tone darker", SeriesProposal, []),
    ("more rain please", SeriesProposal, []),
    ("the title is too long", SeriesProposal, []),
    ("I don't like it", CharacterProposal, []),
    ("", CharacterProposal, []),
])
def test_parse_note(note, model, expected):
    assert [(e.field, e.value) for e in notes.parse_note(note, model)] == expected


@pytest.mark.parametrize("note_list, start, expect_fields, expect_message", [
    (["Title it 'Yuki-Onna'"], SERIES, {"title": "Yuki-Onna"}, "note applied: title = 'Yuki-Onna'"),
    (["make the palette navy, white"], SERIES, {"palette": ["navy", "white"]}, "note applied: palette"),
    (["palette: energetic, business"], SERIES, {"palette": SERIES["palette"]}, "not a hex code or colour name"),
    (["age 40"], CHARACTER, {"age": "40"}, "note applied: age = '40'"),
    (["call her " + "X" * 50], CHARACTER, {"name": "Minokichi"}, "note not applied"),
    (["set the episode length to lots"], SERIES, {"target_episode_seconds": 60}, "not a number"),
    (["set the episode length to 900"], SERIES, {"target_episode_seconds": 60}, "note not applied"),
])
def test_apply_notes(note_list, start, expect_fields, expect_message):
    model = SeriesProposal if "title" in start else CharacterProposal
    data, messages = notes.apply_notes(note_list, dict(start), model)
    for field, value in expect_fields.items():
        assert data[field] == value
    assert any(expect_message in m for m in messages), messages
    untouched = {k: v for k, v in start.items() if k not in expect_fields}
    assert {k: data[k] for k in untouched} == untouched


def test_one_bad_note_does_not_lose_the_others():
    data, messages = notes.apply_notes(["Title it Snow; palette: energetic, business"], dict(SERIES), SeriesProposal)
    assert data["title"] == "Snow" and data["palette"] == SERIES["palette"]
    assert [m.split(":")[0] for m in messages] == ["note applied", "note not applied"]


@pytest.mark.parametrize("request_text, model, expected", [
    ("make Minokichi older", CharacterProposal, ["age"]),
    ("Minokichi should be younger", CharacterProposal, ["age"]),
    ("change the palette to cold blues", SeriesProposal, ["palette"]),
    ("change the palette to cold blues", CharacterProposal, []),   # a character has no palette
    ("retitle the series", SeriesProposal, ["title"]),
    ("give Oyuki a white kimono", CharacterProposal, ["look_tags"]),
    ("make Oyuki kinder", CharacterProposal, ["personality"]),
    ("rename Minokichi", CharacterProposal, ["name"]),
    ("make Minokichi's voice deeper", CharacterProposal, ["voice_notes"]),
    ("make the role a rival", CharacterProposal, ["role"]),
    ("hmm, something else", CharacterProposal, []),
])
def test_request_fields(request_text, model, expected):
    assert notes.request_fields(request_text, list(model.model_fields)) == expected


@pytest.mark.parametrize("age, request_text, expected", [
    ("18", "make him older", "28"),
    ("40 years", "make her younger", "30 years"),
    ("12", "make her younger", "7"),
    ("", "make him older", None),
    ("18", "make him taller", None),
])
def test_adjust_age(age, request_text, expected):
    assert notes.adjust_age(age, request_text) == expected


SHOT = {"framing": "wide", "characters": [{"name": "Oyuki"}]}


@pytest.mark.parametrize("note, expected", [
    ("put Minokichi in this shot", {"add_characters": ["Minokichi"]}),
    ("Minokichi is missing, closer please", {"add_characters": ["Minokichi"], "framing": "close-up"}),
    ("make it a close-up", {"framing": "close-up"}),
    ("extreme close-up on her eyes", {"framing": "extreme close-up"}),
    ("wider", {}),                      # already wide
    ("Oyuki should look colder", {}),   # already in the shot: a note for the painter
    ("darker, more snow", {}),
    ("without Minokichi", {}),
])
def test_panel_note_changes(note, expected):
    assert notes.panel_note_changes(note, SHOT, ["Oyuki", "Minokichi"]) == expected
