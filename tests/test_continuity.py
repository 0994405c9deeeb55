"""Continuity facts (memory/continuity.py) and looks over time (memory/looks.py): real canon in a tmp
folder, the deterministic checks and the offline draft extractor, table-driven over unseen tales."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from memory.canon import Canon
from memory.continuity import (
    Fact,
    all_facts,
    check_panel,
    check_scene,
    check_shots,
    draft_facts,
    facts_context,
    facts_in_force,
    in_force,
    parse_facts,
    write_facts,
)
from memory.errors import InputError
from memory.looks import apply_looks, check_looks, look_in_force


@pytest.fixture
def canon(tmp_path: Path):
    store = Canon(tmp_path / "canon.sqlite")
    yield store
    store.close()


def fact(subject: str, type_: str, value: str = "", episode: int = 1, scene: int | None = None,
         until: int | None = None, **kw) -> Fact:
    return Fact(subject=subject, type=type_, value=value, episode=episode, scene=scene, until_episode=until, **kw)


# ----------------------------------------------------------------------------- the model


@pytest.mark.parametrize("data, match", [
    ({"subject": "Aiko", "type": "zombie", "episode": 1}, "type"),
    ({"subject": "", "type": "dead", "episode": 1}, "subject"),
    ({"subject": "Aiko", "type": "dead", "episode": 0}, "episode"),
    ({"subject": "Aiko", "type": "dead", "episode": 3, "until_episode": 2}, "until_episode 2 is before episode 3"),
    ({"subject": "Aiko", "type": "knows", "episode": 1}, "needs a value"),
])
def test_fact_refuses_bad_fields_naming_them(data: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Fact.model_validate(data)


def test_fact_reads_loose_type_words_and_ignores_junk() -> None:
    f = Fact.model_validate({"subject": " Umbrella ", "type": "Prop location", "value": "destroyed",
                             "episode": 2, "junk": [1, 2]})
    assert (f.subject, f.type, f.statement(), f.source()) == (
        "Umbrella", "prop_location", "the Umbrella is destroyed", "episode 2")


def test_card_facts_take_the_card_episode_and_refuse_another() -> None:
    card = parse_facts({"episode": 3, "summary": "x", "facts": [{"subject": "Ren", "type": "dead"}]})
    assert card.facts[0].episode == 3
    with pytest.raises(InputError, match="facts.*episode 2.*set its episode to 3"):
        parse_facts({"episode": 3, "summary": "x", "facts": [{"subject": "Ren", "type": "dead", "episode": 2}]})
    with pytest.raises(InputError, match="summary"):
        parse_facts({"episode": 3, "summary": "", "facts": []})


# ----------------------------------------------------------------------------- storage


def test_write_facts_one_record_per_fact_edit_removes_and_undo(canon: Canon) -> None:
    card = {"episode": 1, "summary": "Kaito falls at the station.", "facts": [
        {"subject": "Kaito", "type": "dead", "scene": 2},
        {"subject": "Aiko", "type": "knows", "value": "Ren is the fox spirit", "scene": 1}]}
    written = write_facts(canon, card, actor="human")
    assert [r.id for r in written] == ["summary-ep1", "fact-ep1-kaito-dead", "fact-ep1-aiko-knows"]
    assert canon.get("fact-ep1-kaito-dead").data["statement"] == "Kaito is dead (from episode 1, scene 2)"
    assert [f.id for f in facts_in_force(canon, 2)] == ["fact-ep1-aiko-knows", "fact-ep1-kaito-dead"]
    # the same card again changes nothing but the summary's revision
    assert [r.id for r in write_facts(canon, card, actor="human")] == ["summary-ep1"]
    # an edit without Kaito's death deletes that fact; the checks follow at once
    edited = {**card, "facts": card["facts"][1:]}
    changed = write_facts(canon, edited, actor="human")
    assert [(r.id, r.deleted) for r in changed][1:] == [("fact-ep1-kaito-dead", True)]
    scene = {"number": 1, "characters": ["Kaito"], "lines": [{"speaker": "Kaito", "line": "I'm back."}]}
    assert check_scene(all_facts(canon), 2, scene) == []
    canon.revert("fact-ep1-kaito-dead", 1, actor="human")   # undo brings the fact and the warning back
    assert "Kaito is dead" in str(check_scene(all_facts(canon), 2, scene)[0])


def test_same_subject_and_type_twice_gets_distinct_ids(canon: Canon) -> None:
    card = {"episode": 2, "summary": "s", "facts": [
        {"subject": "Aiko", "type": "promise", "value": "to return"},
        {"subject": "Aiko", "type": "promise", "value": "to keep the bell"}]}
    ids = [r.id for r in write_facts(canon, card, actor="auto")[1:]]
    assert ids == ["fact-ep2-aiko-promise", "fact-ep2-aiko-promise-2"]


def test_in_force_windows_and_replacement() -> None:
    facts = [fact("Aiko", "dead", episode=3, scene=2), fact("Aiko", "alive", "revived", episode=9),
             fact("Ren", "injury", "broken arm", episode=2, until=4), fact("world", "time_of_day", "night", 5)]
    def types(ep: int, scene: int | None = None) -> list[tuple[str, str]]:
        return [(f.subject, f.type) for f in in_force(facts, ep, scene)]
    assert types(3) == [("Ren", "injury")]                       # scene 2's death is not in force at the start
    assert ("Aiko", "dead") in types(3, scene=3)                    # ... but from scene 3 on
    assert ("Aiko", "dead") not in types(3, scene=2)
    assert ("Aiko", "dead") in types(8) and ("Ren", "injury") not in types(5)   # until episode 4
    assert ("Aiko", "alive") in types(10) and ("Aiko", "dead") not in types(10)  # a newer status replaces


def test_facts_context_gives_recent_summaries_and_facts(canon: Canon) -> None:
    write_facts(canon, {"episode": 1, "summary": "The storm begins.",
                        "facts": [{"subject": "Kaito", "type": "dead", "scene": 2}]}, actor="human")
    write_facts(canon, {"episode": 2, "summary": "Aiko mourns.", "facts": []}, actor="human")
    assert facts_context(canon, 3) == ["Episode 1 so far: The storm begins.", "Episode 2 so far: Aiko mourns.",
                                       "Kaito is dead (from episode 1, scene 2)"]
    assert facts_context(canon, 1) == []


# ----------------------------------------------------------------------------- checks

FACTS = [
    fact("Kaito", "dead", episode=1, scene=2, id="fact-ep1-kaito-dead"),
    fact("Ren", "absent", "leaves for Tokyo", episode=2),
    fact("Aiko", "knows", "Ren is the fox spirit", episode=1, scene=1),
    fact("Aiko", "outfit", "black mourning kimono", episode=2),
    fact("Paper Umbrella", "prop_location", "destroyed", episode=2),
    fact("Bell", "prop_location", "at Hilltop Shrine", episode=1),
    fact("Key", "prop_location", "with Mio", episode=1),
    fact("Mio", "knows", "Ren is the fox spirit", episode=6),
]

SCENE_CASES = [
    # (name, scene, expected fragments per warning; [] = no warning)
    ("dead speaks", {"number": 1, "characters": ["Aiko", "Kaito"],
                     "lines": [{"speaker": "Kaito", "line": "Did you miss me?"}]},
     [["line 1", "Kaito speaks", "Kaito is dead", "episode 1, scene 2", "fact-ep1-kaito-dead"]]),
    ("dead appears silently", {"number": 1, "characters": ["Kaito"], "action": "Kaito stands in the rain.",
                               "lines": [{"speaker": "Narrator", "line": "Rain again."}]},
     [["the scene", "Kaito appears", "episode 1"]]),
    ("flashback may show the dead", {"number": 1, "title": "Flashback: summer", "characters": ["Kaito"],
                                     "lines": [{"speaker": "Kaito", "line": "Race you!"}]}, []),
    ("absent speaks", {"number": 2, "characters": ["Ren"], "lines": [{"speaker": "Ren", "line": "Hello."}]},
     [["Ren speaks", "Ren is away", "episode 2"]]),
    ("destroyed prop used", {"number": 1, "location": "Night Station", "characters": ["Aiko"],
                             "action": "Aiko opens the umbrella against the rain.",
                             "lines": [{"speaker": "Aiko", "line": "Still dry."}]},
     [["the Paper Umbrella is used", "destroyed", "episode 2"]]),
    ("prop elsewhere", {"number": 1, "location": "Night Station", "characters": ["Aiko"],
                        "action": "Aiko rings the Bell.", "lines": [{"speaker": "Aiko", "line": "Listen."}]},
     [["Bell is used at Night Station", "Hilltop Shrine", "episode 1"]]),
    ("prop at its place", {"number": 1, "location": "Hilltop Shrine", "characters": ["Aiko"],
                           "action": "Aiko rings the bell.", "lines": [{"speaker": "Aiko", "line": "Listen."}]}, []),
    ("prop with someone absent", {"number": 1, "location": "Hilltop Shrine", "characters": ["Aiko"],
                                  "action": "Aiko turns the key.", "lines": [{"speaker": "Aiko", "line": "Open."}]},
     [["Key is used", "with Mio, who is not in the scene"]]),
    ("outfit changes", {"number": 1, "characters": ["Aiko"], "action": "Aiko, wearing a green hoodie, waits.",
                        "lines": [{"speaker": "Aiko", "line": "Late again."}]},
     [["Aiko wears hoodie", "black mourning kimono", "episode 2"]]),
    ("outfit as in force", {"number": 1, "characters": ["Aiko"], "action": "Aiko, in her black kimono, waits.",
                            "lines": [{"speaker": "Aiko", "line": "Late again."}]}, []),
    ("secret said by who does not know", {"number": 1, "characters": ["Aiko", "Mio"],
                                          "lines": [{"speaker": "Mio", "line": "You're the fox spirit, Ren!"}]},
     [["line 1", "Mio says what only Aiko knows", "episode 1, scene 1", "learns it only in episode 6"]]),
    ("secret said by who knows", {"number": 1, "characters": ["Aiko"],
                                  "lines": [{"speaker": "Aiko", "line": "The fox spirit was Ren all along."}]}, []),
    ("half the secret is not the secret", {"number": 1, "characters": ["Mio"],
                                           "lines": [{"speaker": "Mio", "line": "A fox ran past."}]}, []),
    ("junk fields and types", {"number": "x", "characters": "Kaito", "action": None, "lines": [
        "junk", {"speaker": None, "line": 4}, {"speaker": "Kaito", "line": ["Boo"]}], "extra": {"a": 1}},
     [["Kaito speaks", "Kaito is dead"]]),
]


@pytest.mark.parametrize("name, scene, expected", SCENE_CASES, ids=[c[0] for c in SCENE_CASES])
def test_check_scene(name: str, scene: dict, expected: list[list[str]]) -> None:
    warnings = check_scene(FACTS, 3, scene)
    assert len(warnings) == len(expected), [str(w) for w in warnings]
    for warning, fragments in zip(warnings, expected):
        for fragment in fragments:
            assert fragment in str(warning)
        assert warning.fact.source() in str(warning)


def test_check_scene_before_the_facts_is_clean() -> None:
    scene = {"number": 1, "characters": ["Kaito", "Ren"], "action": "Kaito opens the umbrella.",
             "lines": [{"speaker": "Kaito", "line": "Run!"}, {"speaker": "Ren", "line": "Go."}]}
    assert check_scene(FACTS, 1, scene) == []          # episode 1, scene 1: nothing holds yet


def test_check_shots_names_the_shot() -> None:
    scene = {"number": 2, "location": "Night Station", "lines": [
        {"speaker": "Aiko", "line": "Who's there?"}, {"speaker": "Kaito", "line": "Me."}]}
    plan = {"scene_id": "scene-ep3-2", "shots": [
        {"characters": [{"name": "Aiko", "pose": "holding the Paper Umbrella"}], "lines": [1]},
        {"characters": [], "lines": [2], "off_screen": True},
        {"characters": [{"name": "Ren"}], "lines": []},
        "junk"]}
    texts = [str(w) for w in check_shots(FACTS, 3, plan, scene)]
    assert len(texts) == 3, texts
    assert texts[0].startswith("shot 1: the Paper Umbrella is used")
    assert texts[1].startswith("shot 2: Kaito speaks") and "episode 1, scene 2" in texts[1]
    assert texts[2].startswith("shot 3: Ren appears") and "episode 2" in texts[2]


def test_check_panel_dead_and_outfit() -> None:
    from tools.backends.protocols import CharacterInShot, PanelRequest

    request = PanelRequest(shot_id="shot-ep3-1-1", characters=(
        CharacterInShot(id="character-aiko", name="Aiko", look_tags=("red scarf", "green hoodie")),
        CharacterInShot(id="character-kaito", name="Kaito")))
    texts = [str(w) for w in check_panel(FACTS, 3, request)]
    assert texts[0].startswith("panel shot-ep3-1-1: Kaito appears")
    assert "Aiko wears hoodie" in texts[1] and "black mourning kimono" in texts[1]
    dressed = {"characters": [{"name": "Aiko", "look_tags": ["red scarf", "black mourning kimono"]}]}
    assert check_panel(FACTS, 3, dressed) == []
    assert check_panel(FACTS, 1, request) == []       # the outfit fact starts in episode 2


# ----------------------------------------------------------------------------- the draft card

TALES = [
    # (premise, cast, props, scenes, expected (subject, type, value-fragment) facts, absent facts)
    ("a lighthouse keeper's daughter and a drowned sailor",
     ["Hana", "Sailor Jun", "Old Tomo"], ["Brass Lantern"],
     [{"number": 1, "title": "The Beam", "location": "Lighthouse", "characters": ["Hana", "Old Tomo"],
       "action": "At dusk Hana climbs the stairs. Old Tomo dies in his chair. Hana takes the brass lantern.",
       "lines": [{"speaker": "Hana", "line": "I promise to keep the light burning."}], "junk": True},
      {"number": 2, "title": "Fog", "location": "Harbour", "characters": ["Hana", "Sailor Jun"],
       "action": "Sailor Jun is wounded on the rocks. Hana learns that Jun drowned ten years ago. Thick fog at night.",
       "lines": [{"speaker": "Sailor Jun", "line": "You should not see me."}]}],
     [("Old Tomo", "dead", ""), ("Brass Lantern", "prop_location", "with Hana"),
      ("Hana", "promise", "keep the light burning"), ("Sailor Jun", "injury", "wounded"),
      ("Hana", "knows", "Jun drowned ten years ago"), ("world", "time_of_day", "night"),
      ("world", "weather", "fog"), ("Hana", "present", "Harbour")],
     [("Hana", "dead"), ("Sailor Jun", "dead")]),
    ("a courier in a neon city loses her package",
     ["Vex", "Mara"], ["Chrome Case"],
     [{"episode": 4, "number": 3, "title": "Rooftops", "location": "Tower 9", "characters": ["Vex", "Mara"],
       "action": "Vex changes into a grey trench coat. The chrome case shatters on the street. Mara leaves for the coast.",
       "lines": [{"speaker": "Mara", "line": "Don't follow me."}]},
      "not a scene", None],
     [("Vex", "outfit", "grey trench coat"), ("Chrome Case", "prop_location", "destroyed"),
      ("Mara", "absent", "leaves for the coast"), ("Vex", "present", "Tower 9")],
     [("Mara", "present"), ("world", "time_of_day")]),
    ("twin foxes guard a mountain pass",
     ["Kiri", "Sora"], [],
     [{"number": 1, "title": "Dream of the pass", "location": "Pass", "characters": ["Sora"],
       "action": "In a dream Sora runs. The morning is clear.", "lines": []},
      {"number": 2, "title": "Snow", "location": "Pass", "characters": ["Kiri"],
       "action": "Snow falls in the morning. A hunter kills Kiri.", "lines": [{"speaker": "Kiri", "line": "Run"}]}],
     [("Kiri", "dead", ""), ("world", "time_of_day", "morning"), ("world", "weather", "snow")],
     [("Sora", "present"), ("Kiri", "present")]),   # a dream is not being there; the dead are not "present"
]


@pytest.mark.parametrize("premise, cast, props, scenes, expected, not_expected", TALES, ids=[t[0] for t in TALES])
def test_draft_facts_from_unseen_tales(premise: str, cast: list[str], props: list[str], scenes: list,
                                       expected: list[tuple[str, str, str]], not_expected: list[tuple[str, str]]
                                       ) -> None:
    card = draft_facts(5, scenes, cast=cast, props=props)
    parse_facts(card)                                  # a valid card, as the director will see it
    got = [(f["subject"], f["type"], f["value"]) for f in card["facts"]]
    for subject, type_, fragment in expected:
        assert any(s == subject and t == type_ and fragment.lower() in v.lower() for s, t, v in got), (
            subject, type_, fragment, got)
    for subject, type_ in not_expected:
        assert not any(s == subject and t == type_ for s, t, _ in got), (subject, type_, got)
    assert all(f["episode"] == 5 for f in card["facts"])
    assert card["summary"] and len(card["summary"]) <= 1200


def test_draft_facts_is_deterministic_and_checks_the_episode() -> None:
    scenes = TALES[0][3]
    assert draft_facts(2, scenes, cast=TALES[0][1]) == draft_facts(2, scenes, cast=TALES[0][1])
    assert draft_facts(2, [])["facts"] == []
    with pytest.raises(InputError, match="episode 0"):
        draft_facts(0, scenes)


def test_draft_then_check_next_episode(canon: Canon) -> None:
    """Episode 1's drafted facts, accepted, catch the dead man's line in episode 2."""
    card = draft_facts(1, TALES[0][3], cast=TALES[0][1], props=TALES[0][2])
    write_facts(canon, card, actor="auto")
    scene = {"number": 1, "characters": ["Hana", "Old Tomo"], "lines": [{"speaker": "Old Tomo", "line": "Hana?"}]}
    warnings = check_scene(all_facts(canon), 2, scene)
    assert [w.fact.id for w in warnings] == ["fact-ep1-old-tomo-dead"]
    assert "episode 1, scene 1" in str(warnings[0])


# ----------------------------------------------------------------------------- looks over time

AIKO = {"name": "Aiko", "look_tags": ["red scarf", "black bob hair", "amber eyes", "shrine maiden outfit"],
        "looks": [{"from_episode": 2, "outfit": "black mourning kimono"},
                  {"from_episode": 4, "until_episode": 5, "injury": "bandaged left arm", "hair": "short cropped hair"},
                  {"from_episode": 7, "outfit": "white travel robe", "tags": ["straw hat"]}]}


@pytest.mark.parametrize("episode, has, lacks", [
    (1, ["shrine maiden outfit", "black bob hair"], ["black mourning kimono"]),
    (2, ["black mourning kimono", "red scarf", "black bob hair"], ["shrine maiden outfit"]),
    (4, ["black mourning kimono", "bandaged left arm", "short cropped hair"], ["black bob hair"]),
    (6, ["black mourning kimono", "black bob hair"], ["bandaged left arm", "short cropped hair"]),
    (7, ["white travel robe", "straw hat", "red scarf"], ["black mourning kimono", "shrine maiden outfit"]),
])
def test_apply_looks_by_episode(episode: int, has: list[str], lacks: list[str]) -> None:
    look = apply_looks(AIKO, episode, character_id="character-aiko")
    for tag in has:
        assert tag in look.tags, look.tags
    for tag in lacks:
        assert tag not in look.tags, look.tags


def test_look_signature_changes_with_what_is_drawn() -> None:
    sigs = [apply_looks(AIKO, ep).signature for ep in (1, 2, 3, 4)]
    assert sigs[0] != sigs[1] and sigs[1] == sigs[2] and sigs[2] != sigs[3]


def test_look_in_force_from_canon_with_facts(canon: Canon) -> None:
    canon.create("character", AIKO, actor="human", record_id="character-aiko")
    canon.create("location", {"name": "Shrine"}, actor="human", record_id="location-shrine")
    write_facts(canon, {"episode": 2, "summary": "s", "facts": [
        {"subject": "Aiko", "type": "outfit", "value": "grey school uniform"},
        {"subject": "Aiko", "type": "injury", "value": "scar over eye"}]}, actor="human")
    look3 = look_in_force(canon, "character-aiko", 3)
    # the ep-2 fact and the ep-2 variant start together: the variant (the look record) wins the outfit
    assert "black mourning kimono" in look3.tags and "grey school uniform" not in look3.tags
    assert "scar over eye" in look3.tags and "fact-ep2-aiko-injury" in look3.sources
    assert "scar over eye" not in look_in_force(canon, "character-aiko", 2).tags   # from episode 3 on
    write_facts(canon, {"episode": 3, "summary": "s", "facts": [
        {"subject": "Aiko", "type": "outfit", "value": "grey school uniform"}]}, actor="human")
    look4 = look_in_force(canon, "character-aiko", 4)
    assert "grey school uniform" in look4.tags and "black mourning kimono" not in look4.tags
    assert "fact-ep3-aiko-outfit" in look4.sources
    with pytest.raises(InputError, match="location, not a character"):
        look_in_force(canon, "location-shrine", 1)


@pytest.mark.parametrize("looks, match", [
    ("black kimono", "must be a list"),
    ([{"outfit": "x"}], r"looks\[0\]\.from_episode is None"),
    ([{"from_episode": 3, "until_episode": 2}], "until_episode is 2"),
    ([{"from_episode": 1, "outfit": 5}], "outfit is 5"),
    (["junk"], "each variant is a dict"),
])
def test_check_looks_names_the_bad_entry(looks: object, match: str) -> None:
    with pytest.raises(InputError, match=match):
        check_looks(looks)


# ----------------------------------------------------------------------------- retrieval


def test_facts_are_indexed_with_their_episode_and_retrieved_before_it(tmp_path: Path, canon: Canon) -> None:
    from memory.bible import Bible, load_embedder

    load_embedder()
    bible = Bible(tmp_path / "bible" / "chroma")
    try:
        for ep, who in ((1, "Kaito"), (3, "Ren")):
            for rec in write_facts(canon, {"episode": ep, "summary": f"{who} falls.",
                                           "facts": [{"subject": who, "type": "dead", "scene": 1}]}, actor="auto"):
                bible.index(rec)
        bible.index(canon.create("character", {"name": "Aiko", "role": "lead"}, actor="human"))
        hits = bible.search("who is dead", kinds=["fact", "summary"], k=10, before_episode=3)
        assert {h.record_id for h in hits} == {"fact-ep1-kaito-dead", "summary-ep1"}
        assert "episode 1" in next(h.text for h in hits if h.record_id == "fact-ep1-kaito-dead")
        everything = bible.search("who is dead", k=10, before_episode=4)
        assert "character-aiko" not in {h.record_id for h in everything}   # no episode: left out
        assert "fact-ep3-ren-dead" in {h.record_id for h in everything}
        with pytest.raises(InputError, match="before_episode"):
            bible.search("x", before_episode="3")  # type: ignore[arg-type]
    finally:
        bible.close()


def test_check_proposal_for_scene_and_shot_cards(canon: Canon) -> None:
    from memory.continuity import check_proposal

    write_facts(canon, {"episode": 1, "summary": "s", "facts": [{"subject": "Kaito", "type": "dead", "scene": 2}]},
                actor="human")
    scene = {"episode": 2, "number": 1, "characters": ["Kaito"], "lines": [{"speaker": "Kaito", "line": "Hi."}]}
    assert check_proposal(canon, "scene", scene)[0].startswith("line 1: Kaito speaks, but Kaito is dead")
    assert check_proposal(canon, "scene", {**scene, "episode": 1}) == []     # before the fact
    canon.create("scene", scene, actor="human", record_id="scene-ep2-1")
    plan = {"scene_id": "scene-ep2-1", "shots": [{"characters": [{"name": "Kaito"}], "lines": [1]}]}
    assert check_proposal(canon, "shots", plan)[0].startswith("shot 1: Kaito appears")
    assert check_proposal(canon, "shots", {**plan, "scene_id": "scene-nope"}) == []
    assert check_proposal(canon, "character", {"name": "Kaito"}) == []


# ----------------------------------------------------------------------------- the model's check (a capable model)

REN_DEAD = {"episode": 1, "summary": "Ren is swept away.", "facts": [
    {"subject": "Ren", "type": "dead", "value": "swept away by the storm", "episode": 1, "scene": 1},
    {"subject": "Aiko", "type": "knows", "value": "the bell is cursed", "episode": 1, "scene": 1}]}
EP2_SCENE = {"episode": 2, "number": 1, "title": "After the storm", "location": "Hilltop Shrine",
             "characters": ["Aiko"], "action": "Aiko waits by the bell.",
             "lines": [{"speaker": "Aiko", "line": "He would have rung it.", "emotion": "sad"}]}
CITE_REN = "(fact 'Ren is dead (swept away by the storm)' from episode 1, scene 1 [fact-ep1-ren-dead])"


def _problem(fact_id: str, problem: str = "Aiko talks to Ren as if he were alive") -> dict:
    return {"fact_id": fact_id, "problem": problem}


@pytest.mark.parametrize("replies, expected", [
    ([{"problems": [_problem("fact-ep1-ren-dead")]}], [f"model: Aiko talks to Ren as if he were alive {CITE_REN}"]),
    ([{"problems": [_problem("[fact-ep1-ren-dead]", "Ren's death is ignored.")]}],     # bracketed id, full stop
     [f"model: Ren's death is ignored {CITE_REN}"]),
    ([{"problems": [_problem("fact-ep1-ren-dead")] * 2}], [f"model: Aiko talks to Ren as if he were alive {CITE_REN}"]),
    ([{"problems": [_problem("fact-ep9-nobody-dead"), _problem("Ren is dead")]}], []),  # no such fact: dropped
    ([{"problems": []}], []),
    (["not json at all", "still not json"], []),                                        # junk: nothing, logged
    ([{"problems": [{"fact": "fact-ep1-ren-dead"}]}, {"problems": "none"}], []),        # wrong shape twice
    ([RuntimeError("server fell over")], []),                                           # a model error
])
def test_model_continuity_check_keeps_only_warnings_naming_a_fact_in_force(canon: Canon, replies: list,
                                                                          expected: list[str], caplog) -> None:
    from types import SimpleNamespace

    from agent.kinds.facts import card_warnings, model_warnings
    from tests.fakes import ScriptedChatModel

    write_facts(canon, REN_DEAD, actor="human")
    model = ScriptedChatModel({"ContinuityReview": list(replies)})
    ctx = SimpleNamespace(llm=model, repair_retries=2)
    with caplog.at_level("WARNING", logger="agent.kinds.facts"):
        assert model_warnings(canon, ctx, "scene", EP2_SCENE) == expected
    if not expected and not isinstance(replies[0], dict):
        assert "continuity check of a scene of episode 2 failed" in caplog.text
    prompt = model.prompts_for("ContinuityReview")[0]
    assert "[fact-ep1-ren-dead] Ren is dead" in prompt and "He would have rung it." in prompt
    # the card: the deterministic warnings first, then the model's, told apart by "model: "
    from memory.continuity import check_proposal

    model.script["ContinuityReview"] = list(replies)
    assert card_warnings(canon, ctx, "scene", {"data": EP2_SCENE}) == [*check_proposal(canon, "scene", EP2_SCENE),
                                                                       *expected]


def test_model_continuity_check_stays_out_of_the_way(canon: Canon) -> None:
    """No call for the embedded demo model, for episode 1, without facts in force, or for other kinds."""
    from types import SimpleNamespace

    from agent.kinds.facts import model_warnings
    from tests.fakes import ScriptedChatModel

    demo = ScriptedChatModel({"ContinuityReview": [{"problems": [_problem("fact-ep1-ren-dead")]}]})
    demo.is_demo = True
    capable = ScriptedChatModel({"ContinuityReview": [{"problems": [_problem("fact-ep1-ren-dead")]}]})
    assert model_warnings(canon, SimpleNamespace(llm=capable, repair_retries=2), "scene", EP2_SCENE) == []  # no facts
    write_facts(canon, REN_DEAD, actor="human")
    assert model_warnings(canon, SimpleNamespace(llm=demo, repair_retries=2), "scene", EP2_SCENE) == []
    assert model_warnings(canon, None, "scene", EP2_SCENE) == []
    ctx = SimpleNamespace(llm=capable, repair_retries=2)
    assert model_warnings(canon, ctx, "scene", {**EP2_SCENE, "episode": 1}) == []
    assert model_warnings(canon, ctx, "character", {"name": "Ren", "episode": 2}) == []
    assert model_warnings(canon, ctx, "shots", {"scene_id": "scene-nope", "shots": []}) == []
    assert demo.calls == [] and capable.calls == []
    # a shot plan is checked with its scene
    canon.upsert("scene", EP2_SCENE, actor="human", record_id="scene-ep2-1")
    plan = {"scene_id": "scene-ep2-1", "shots": [{"characters": [{"name": "Ren"}], "lines": [1]}]}
    assert model_warnings(canon, ctx, "shots", plan) == [f"model: Aiko talks to Ren as if he were alive {CITE_REN}"]
    assert '"Ren"' in capable.prompts_for("ContinuityReview")[0]


def test_model_continuity_check_of_a_panel_reads_the_painters_request(canon: Canon) -> None:
    """A panel is shown to the model as the painter's request in words: who (with their look),
    where, the line; the reply keeps only facts in force, like the other cards."""
    from types import SimpleNamespace

    from agent.kinds.facts import ask_model, panel_shown
    from tests.fakes import ScriptedChatModel
    from tools.backends.protocols import CharacterInShot, PanelRequest

    write_facts(canon, REN_DEAD, actor="human")
    request = PanelRequest(shot_id="shot-ep2-1-1", location_name="Hilltop Shrine",
                           characters=(CharacterInShot(id="character-ren", name="Ren", look_tags=("grey coat",),
                                                       expression="happy"),),
                           line_text="I'm back.")
    shown = panel_shown(request)
    assert shown["characters"][0] == {"name": "Ren", "look": ["grey coat"], "expression": "happy", "pose": ""}
    model = ScriptedChatModel({"ContinuityReview": [{"problems": [_problem("fact-ep1-ren-dead", "Ren is drawn "
                                                                           "alive and smiling"),
                                                                  _problem("fact-nope")]}]})
    ctx = SimpleNamespace(llm=model, repair_retries=2)
    assert ask_model(canon, ctx, "panel (the picture's description)", 2, 1, shown) == [
        f"model: Ren is drawn alive and smiling {CITE_REN}"]
    prompt = model.prompts_for("ContinuityReview")[0]
    assert "The panel (the picture's description)" in prompt and "grey coat" in prompt and "I'm back." in prompt
    assert ask_model(canon, ctx, "panel", 1, 1, shown) == []    # episode 1: no facts in force, no call
    assert len(model.calls) == 1


def test_model_continuity_check_over_an_openai_compatible_server(canon: Canon) -> None:
    """The real client against the scripted OpenAI-compatible server (tests.fake_openai)."""
    from types import SimpleNamespace

    from agent.kinds.facts import model_warnings
    from agent.llm import OpenAIChatModel
    from tests.fake_openai import FakeOpenAIServer

    write_facts(canon, REN_DEAD, actor="human")
    with FakeOpenAIServer() as server:
        server.model.script["ContinuityReview"] = [{"problems": [_problem("fact-ep1-ren-dead"),
                                                                 _problem("fact-made-up")]}]
        llm = OpenAIChatModel(base_url=server.url, model="fake-model", timeout=10)
        assert model_warnings(canon, SimpleNamespace(llm=llm, repair_retries=2), "scene", EP2_SCENE) == [
            f"model: Aiko talks to Ren as if he were alive {CITE_REN}"]
        schema = server.requests[-1]["response_format"]
        assert "ContinuityReview" in json.dumps(schema)
