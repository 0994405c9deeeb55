"""Every character a shot names is on screen (issue 8.12): the speaker of a shot's line is drawn even
when the plan lists no one, dressed by the look tags (a kimono is not a shirt and tie), with a body
type from the bible (a child is smaller, a stout man wider)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from agent.context import DirectorContext
from agent.storyboard import body_tags, panel_request
from memory.canon import Canon
from tools.backends._draw import parse_color
from tools.backends.animatic import AnimaticPainter, character_look, plan_figures
from tools.backends.animatic_figure import body_for, garment_for
from tools.backends.protocols import CharacterInShot, PanelRequest

# --------------------------------------------------------------------------- look tags -> clothes


@pytest.mark.parametrize("tags, garment, style", [
    (("white kimono", "red obi"), "kimono", ""),
    (("blue yukata",), "kimono", ""),
    (("hakama", "long black hair"), "kimono", ""),
    (("brown robe", "hood"), "robe", ""),
    (("dark cloak",), "robe", ""),
    (("red dress",), "dress", ""),
    (("ball gown",), "dress", ""),
    (("navy sailor uniform", "pleated skirt"), "uniform", "sailor"),
    (("black gakuran",), "uniform", "gakuran"),
    (("school uniform", "navy blazer"), "uniform", "blazer"),
    (("grey suit", "glasses"), "suit", ""),
    (("green hoodie", "jeans"), "hoodie", ""),
    (("beige trench coat",), "coat", ""),
    (("denim jacket",), "jacket", ""),
    (("silver armor", "tall"), "armor", ""),
    (("samurai armour", "kimono"), "armor", ""),        # armour over a kimono: the armour shows
    (("white shirt", "black pants"), "shirt", ""),
    ((), "shirt", ""),
    (("short black hair",), "shirt", ""),
])
def test_look_tags_name_the_garment(tags, garment, style):
    assert garment_for(tags) == (garment, style)
    assert character_look(CharacterInShot(id="x", name="X", look_tags=tags)).garment == garment


@pytest.mark.parametrize("tags, field, colour", [
    (("white kimono",), "outfit", "white"),
    (("long black hair", "white kimono", "red obi"), "sash", "red"),
    (("red scarf",), "accent", "red"),
    (("navy school uniform",), "outfit", "navy"),
    (("brown robe", "gold sash"), "sash", "gold"),
    (("green hoodie",), "outfit", "green"),
    (("black suit",), "outfit", "black"),
])
def test_colours_come_from_the_tag_that_names_them(tags, field, colour):
    look = character_look(CharacterInShot(id="x", name="X", look_tags=tags))
    assert getattr(look, field) == parse_color(colour)


@pytest.mark.parametrize("tags, no_tie", [
    (("white kimono",), True), (("brown robe",), True), (("red dress",), True), (("silver armor",), True),
    (("green hoodie",), True), (("grey suit",), False),
])
def test_a_kimono_is_not_a_shirt_and_tie(tags, no_tie):
    looks = [character_look(CharacterInShot(id=f"c{i}", name="C", look_tags=tags)) for i in range(40)]
    if no_tie:
        assert all(look.accessory != "tie" for look in looks)
    else:
        assert all(look.accessory == "tie" for look in looks)      # a suit always has its tie


def test_armour_without_a_colour_is_steel_and_the_elderly_go_grey():
    assert character_look(CharacterInShot(id="k", name="K", look_tags=("plate armor",))).outfit == (150, 156, 168)
    sage = character_look(CharacterInShot(id="s", name="S", look_tags=("elderly", "brown robe")))
    assert sage.elderly and sage.hair == (200, 200, 206)
    dyed = character_look(CharacterInShot(id="s", name="S", look_tags=("elderly", "black hair")))
    assert dyed.hair == parse_color("black")


# --------------------------------------------------------------------------- body types


@pytest.mark.parametrize("tags, height, build", [
    (("child", "yellow raincoat"), 0.74, 0.95),
    (("tall", "silver armor"), 1.1, None),
    (("stout", "grey suit"), None, 1.3),
    (("slender",), None, 0.86),
    (("short black hair",), None, None),       # "short" about the hair is not about the body
    (("elderly",), 0.95, None),
])
def test_body_words_set_height_and_build(tags, height, build):
    h, b, _ = body_for("someone", tags)
    if height is not None:
        assert h == pytest.approx(height)
    else:
        assert 0.95 <= h <= 1.05
    if build is not None:
        assert b == pytest.approx(build)
    else:
        assert 0.93 <= b <= 1.08


def test_body_type_varies_per_character_and_is_stable():
    bodies = {body_for(f"c{i}", ()) for i in range(8)}
    assert len(bodies) == 8 and body_for("c1", ()) == body_for("c1", ())


def test_a_child_stands_smaller_on_the_same_floor_and_a_stout_figure_is_wider():
    adult = CharacterInShot(id="mother", name="Mother", look_tags=("tall",))
    child = CharacterInShot(id="kid", name="Kid", look_tags=("child",))
    stout = CharacterInShot(id="boss", name="Boss", look_tags=("stout",))
    request = PanelRequest(shot_id="w", characters=(adult, child, stout), framing="wide", width=540, height=960)
    a, c, s = plan_figures(request)
    assert c.unit < 0.75 * a.unit
    assert c.head_top + 6.0 * c.unit == pytest.approx(a.head_top + 6.0 * a.unit, abs=1.0)   # same floor
    assert (s.box[2] - s.box[0]) > (c.box[2] - c.box[0])


@pytest.mark.parametrize("data, expected", [
    ({"age": "8", "role": "village child"}, ("child",)),
    ({"age": "16", "role": "shrine maiden"}, ("teenager",)),
    ({"age": "70", "role": "old fisherman"}, ("elderly", "old")),
    ({"age": "35", "role": "burly blacksmith"}, ("burly",)),
    ({"age": "30", "role": "short-tempered guard"}, ()),
    ({"age": "elderly", "role": "monk", "look_tags": ["elderly", "grey robe"]}, ()),
    ({}, ()),
])
def test_body_tags_from_age_and_role(data, expected):
    assert body_tags(data) == expected


# --------------------------------------------------------------------------- the speaker is drawn


@pytest.fixture
def canon_with_a_silent_plan(tmp_path):
    canon = Canon(tmp_path / "canon.sqlite")
    canon.upsert("character", {"name": "Minokichi", "age": "18", "role": "young woodcutter",
                               "look_tags": ["short brown hair", "blue yukata"]}, actor="human",
                 record_id="character-minokichi")
    canon.upsert("location", {"name": "Ferryman's hut", "description": "a hut by the river in snow",
                              "look_tags": ["snow", "night"]}, actor="human", record_id="location-hut")
    canon.upsert("scene", {"episode": 1, "number": 1, "title": "Snow", "location": "Ferryman's hut",
                           "characters": ["Minokichi"], "action": "The storm.",
                           "lines": [{"id": "scene-ep1-1-l1", "speaker": "Minokichi", "line": "Who is there?",
                                      "emotion": "scared"}]}, actor="human", record_id="scene-ep1-1")
    canon.upsert("shot", {"scene_id": "scene-ep1-1", "index": 1, "framing": "medium", "camera_move": "static",
                          "characters": [], "location": "Ferryman's hut", "line_ids": ["scene-ep1-1-l1"]},
                 actor="human", record_id="scene-ep1-1-s1")
    yield canon, tmp_path
    canon.close()


def _ctx(canon: Canon, root: Path) -> DirectorContext:
    return DirectorContext(canon=canon, bible=None, ledger=None, llm=None, project_root=root,  # type: ignore[arg-type]
                           painter=AnimaticPainter())


def test_a_shot_with_a_line_and_no_listed_characters_shows_its_speaker(canon_with_a_silent_plan):
    canon, root = canon_with_a_silent_plan
    request = panel_request(_ctx(canon, root), "panel", "scene-ep1-1-s1", notes=[], seed=1)
    assert [(c.id, c.speaking, c.expression) for c in request.characters] == [
        ("character-minokichi", True, "scared")]
    request = replace(request, width=270, height=480)
    result = AnimaticPainter().paint(request, root / "out")
    with Image.open(result.variants["clean"]) as clean, Image.open(result.layers["backdrop"]) as backdrop:
        drawn = np.abs(np.asarray(clean.convert("RGB"), int) - np.asarray(backdrop.convert("RGB"), int)).max(axis=2)
    assert (drawn > 30).mean() > 0.08, "a figure is drawn over the backdrop"
    with Image.open(result.layers["char:character-minokichi"]) as layer:
        assert layer.getchannel("A").getbbox() is not None


def test_the_director_can_keep_the_voice_off_screen(canon_with_a_silent_plan):
    canon, root = canon_with_a_silent_plan
    shot = canon.get("scene-ep1-1-s1")
    canon.upsert("shot", {**shot.data, "off_screen": True}, actor="human", record_id=shot.id)
    request = panel_request(_ctx(canon, root), "panel", shot.id, notes=[], seed=1)
    assert request.characters == ()


def test_a_listed_speaker_is_not_drawn_twice(canon_with_a_silent_plan):
    canon, root = canon_with_a_silent_plan
    shot = canon.get("scene-ep1-1-s1")
    canon.upsert("shot", {**shot.data, "characters": [{"name": "Minokichi", "expression": "sad"}]},
                 actor="human", record_id=shot.id)
    request = panel_request(_ctx(canon, root), "panel", shot.id, notes=[], seed=1)
    assert [(c.id, c.speaking, c.expression) for c in request.characters] == [
        ("character-minokichi", True, "sad")]
