"""Names as canon keeps them, and the enums a grammar-constrained server is given.

A model once named a character `"` (a lone double quote); auto-accepted, it went into the scene
schema's enum, llama.cpp could not parse the grammar it made of it and the embedded server died
(exit -11). Names are cleaned where they are decided, and an enum never lists such junk."""
from __future__ import annotations

import json

import pytest

from agent.schemas import (
    CharacterProposal,
    LocationProposal,
    PropProposal,
    grammar_safe,
    proper_name,
    proposal_model,
)


@pytest.mark.parametrize("raw, name", [
    ("Ren", "Ren"),
    ('"Ren"', "Ren"),
    ("'Aiko'", "Aiko"),
    ("  Mara   the  Fox ", "Mara the Fox"),
    ('Mara "Fox" Ito', "Mara 'Fox' Ito"),
    ("O'Neil", "O'Neil"),
    ("back\\slash", "back slash"),
    ("tab\there", "tab here"),
    ("美咲", "美咲"),
    ("R2", "R2"),
    ("Luna*Eira**', the Luminaria _The", "Luna Eira, the Luminaria The"),   # the demo model's markdown
    ("**Ren**", "Ren"),
    ("_Aiko_", "Aiko"),
    ("# Hero", "Hero"),
    ("Mary-Jane", "Mary-Jane"),
    ("the Lost's Sorrow", "the Lost's Sorrow"),
    ("Dr. Ko,", "Dr. Ko"),
    ("[Kai]", "Kai"),
])
def test_proper_name_cleans(raw, name):
    assert proper_name(raw) == name


@pytest.mark.parametrize("raw", ['"', '""', "'", " ", "\\", "--", "...", "\x00"])
def test_a_name_without_letters_is_refused_naming_it(raw):
    with pytest.raises(ValueError, match="has no letters"):
        proper_name(raw)


@pytest.mark.parametrize("model, extra", [
    (CharacterProposal, {"role": "r", "personality": "p", "look_tags": ["a", "b"]}),
    (LocationProposal, {"description": "d", "look_tags": ["a"]}),
    (PropProposal, {"description": "d"}),
])
def test_every_named_proposal_cleans_and_checks_its_name(model, extra):
    assert model.model_validate({"name": '"Hilltop"', **extra}).name == "Hilltop"
    with pytest.raises(ValueError, match="has no letters"):
        model.model_validate({"name": '"', **extra})


def test_enums_leave_junk_names_out():
    assert grammar_safe(["Naruto-Mara", '"', "a\\b", "Ren", "Ren", "", "x\ny"]) == ["Naruto-Mara", "Ren"]
    schema = json.dumps(proposal_model("scene", cast=["Naruto-Mara", '"'], places=["Shrine", "\\"])
                        .model_json_schema())
    assert '"Naruto-Mara"' in schema and '"\\""' not in schema and '"\\\\"' not in schema
    plan = json.dumps(proposal_model("shots", cast=['"', "Ren"], places=["Shrine"]).model_json_schema())
    assert '"Ren"' in plan and '"\\""' not in plan
    # nothing usable left: the plain schema, not an empty enum
    assert proposal_model("scene", cast=['"'], places=["Shrine"]).__name__ == "SceneProposal"
    assert "enum" not in json.dumps(proposal_model("scene", cast=['"'], places=["Shrine"]).model_json_schema())


@pytest.mark.parametrize("count, episodes, min_episodes, ok", [
    (1, 3, 1, True),
    (1, 3, 2, False),    # `make --episodes 2`: an outline of one episode cannot be made
    (2, 3, 2, True),
    (3, 3, 5, True),     # more wanted than planned: the plan's number
    (4, 3, 1, False),    # more than planned
])
def test_an_outline_has_at_least_the_episodes_make_needs(count, episodes, min_episodes, ok):
    from pydantic import ValidationError

    data = {"episodes": [{"number": i, "title": f"Part {i}", "logline": "Things happen."}
                         for i in range(1, count + 1)]}
    model = proposal_model("outline", episodes=episodes, min_episodes=min_episodes)
    if ok:
        assert len(model.model_validate(data).episodes) == count
    else:
        with pytest.raises(ValidationError):
            model.model_validate(data)
