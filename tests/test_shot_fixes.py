"""What the app fixes in a model's draft before the card: dialogue that has no words, and medium or
close shots of no one (the empty landscapes of issue 8.12)."""
from __future__ import annotations

import pytest
from pydantic import ValidationError

from agent.nodes import _shape_fix
from agent.schemas import DialogueLine


@pytest.mark.parametrize("text, ok", [
    ("4", False), ("...", False), ("!?", False), ("  12 ", False),
    ("Hi!", True), ("No.", True), ("はい", True), ("4 more days", True),
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
