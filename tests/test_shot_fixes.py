"""What the app fixes in a model's draft before the card: dialogue that has no words, and medium or
close shots of no one (the empty landscapes of issue 8.12)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.nodes import _shape_fix
from agent.schemas import DialogueLine


@pytest.mark.parametrize("text, ok", [
    ("4", False), ("...", False), ("!?", False), ("  12 ", False), ("3a84d0", False), ("1b2a4a", False),
    ("Hi!", True), ("No.", True), ("はい", True), ("嘘", True), ("4 more days", True), ("Ok", True),
])
def test_a_line_must_have_words(text, ok):
    if ok:
        assert DialogueLine(speaker="Aiko", line=text).line == text
    else:
        with pytest.raises(ValidationError, match="has no words"):
            DialogueLine(speaker="Aiko", line=text)


def _shot(framing, characters=(), lines=()):
    return {"framing": framing, "angle": "eye level", "camera_move": "static",
            "characters": [{"name": c, "expression": "neutral", "pose": ""} for c in characters],
            "location": "Shrine", "lighting": "", "mood": "", "lines": list(lines), "duration_s": 3.0,
            "transition": "cut"}


def test_close_and_medium_shots_of_no_one_are_framed_on_the_scenes_people():
    data = {"scene_id": "scene-ep1-1", "_speakers": ["Ren", "Aiko"], "_n_lines": 2, "_want_shots": 0,
            "shots": [_shot("establishing"), _shot("medium", ["Ren"], [1, 2]), _shot("close-up"),
                      _shot("medium"), _shot("wide")]}
    fixed = _shape_fix("shots", data, ["Aiko", "Ren", "Kenji"], ["Shrine"])
    people = [[c["name"] for c in sh["characters"]] for sh in data["shots"]]
    assert people[0] == [] and people[4] == []            # establishing and wide may show only the place
    assert people[1] == ["Ren", "Aiko"]                  # the speaker of line 2 is put in the shot
    assert len(people[2]) == 1 and people[2][0] in ("Ren", "Aiko")   # a close-up frames one person
    assert len(people[3]) == 2                                    # a medium shot frames two
    assert any("close-up of no one" in f for f in fixed)


def test_a_shot_given_more_lines_than_fit_is_split_into_more_shots():
    """`make --shots 2` on a scene of 9 lines: the plan grows rather than failing validation."""
    from agent.schemas import MAX_LINES_PER_SHOT, validate_proposal

    speakers = ["Ren", "Aiko"] * 4 + ["Ren"]
    data = {"scene_id": "scene-ep1-1", "_speakers": speakers, "_n_lines": 9, "_want_shots": 2,
            "shots": [_shot("wide", [], [1]), _shot("medium", ["Ren"], [2, 3, 4, 5, 6, 7])]}
    fixed = _shape_fix("shots", data, ["Aiko", "Ren"], ["Shrine"])
    assert all(len(sh["lines"]) <= MAX_LINES_PER_SHOT for sh in data["shots"])
    assert sorted(n for sh in data["shots"] for n in sh["lines"]) == list(range(1, 10))   # every line once
    assert len(data["shots"]) == 3 and any("at most 4 lines a shot" in f for f in fixed)
    validate_proposal("shots", data)


def test_the_fallback_shot_plan_fits_every_line():
    from agent.fallbacks import defaults
    from agent.schemas import validate_proposal

    scene = {"location": "Shrine", "characters": ["Ren"],
             "lines": [{"speaker": "Ren", "line": f"Line {i}."} for i in range(1, 10)]}
    plan = defaults("shots", task={"scene_id": "scene-ep1-1"}, cast=["Ren"], places=["Shrine"], scene=scene,
                    shots=2)
    validate_proposal("shots", plan)
    assert sorted(n for sh in plan["shots"] for n in sh["lines"]) == list(range(1, 10))


def test_two_spellings_of_one_character_in_a_shot_become_one():
    data = {"scene_id": "scene-ep1-1", "_speakers": ["Ren"], "_n_lines": 1, "_want_shots": 0,
            "shots": [_shot("medium", ["Ren", "Ren-san", "Aiko"], [1])]}
    fixed = _shape_fix("shots", data, ["Aiko", "Ren"], ["Shrine"])
    assert [c["name"] for c in data["shots"][0]["characters"]] == ["Ren", "Aiko"]
    assert any("listed twice" in f for f in fixed)
