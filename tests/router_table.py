"""The director-utterance table and its fixture project, shared by tests/test_router.py and
bench/router.py: 3 characters, 2 locations, 1 prop, 1 episode of 3 scenes with shots, takes and motion,
written directly into canon (no model)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.storyboard import write_shot_plan
from memory.canon import Canon
from tests.fakes import BEATS, CHARACTERS, LOCATIONS, OUTLINE, PROPS, SERIES

SCENES = [
    {"episode": 1, "number": 1, "title": "Rain Voices", "location": "Hilltop Shrine", "characters": ["Aiko", "Ren"],
     "action": "Rain hammers the shrine steps.",
     "lines": [{"speaker": "Aiko", "line": "Do you hear that?", "emotion": "scared"},
               {"speaker": "Ren", "line": "Only rain.", "emotion": "neutral"}]},
    {"episode": 1, "number": 2, "title": "The Flashback", "location": "Night Station", "characters": ["Ren", "Kaito"],
     "action": "Ren remembers the night the trains stopped.",
     "lines": [{"speaker": "Kaito", "line": "You were there that night.", "emotion": "sad"},
               {"speaker": "Ren", "line": "I don't remember anything.", "emotion": "angry"}]},
    {"episode": 1, "number": 3, "title": "Storm Gate", "location": "Hilltop Shrine", "characters": ["Aiko", "Kaito"],
     "action": "The storm opens above the torii gate.",
     "lines": [{"speaker": "Aiko", "line": "It's my own voice.", "emotion": "surprised"},
               {"speaker": "Kaito", "line": "Then answer it!", "emotion": "shout"}]},
]


def _shot(framing: str, chars: list[str], lines: list[int], location: str, move: str = "static") -> dict[str, Any]:
    return {"framing": framing, "angle": "eye level", "camera_move": move,
            "characters": [{"name": c, "expression": "neutral", "pose": ""} for c in chars],
            "location": location, "lighting": "rain light", "mood": "tense", "lines": lines, "duration_s": 2.5,
            "transition": "cut"}


PLANS = {
    "scene-ep1-1": [_shot("establishing", [], [], "Hilltop Shrine", "push-in"),
                    _shot("close-up", ["Aiko"], [1], "Hilltop Shrine"),
                    _shot("medium", ["Aiko", "Ren"], [2], "Hilltop Shrine", "pan")],
    "scene-ep1-2": [_shot("medium", ["Kaito"], [1], "Night Station"),
                    _shot("close-up", ["Ren"], [2], "Night Station")],
    "scene-ep1-3": [_shot("wide", ["Aiko"], [1], "Hilltop Shrine", "shake"),
                    _shot("medium", ["Kaito"], [2], "Hilltop Shrine")],
}


def build_fixture(canon: Canon) -> None:
    """The fixture project in canon, as accepted records (actor "human")."""
    def put(kind: str, data: dict[str, Any], rid: str) -> None:
        canon.upsert(kind, data, actor="human", record_id=rid, note="fixture")

    put("series", {k: SERIES[k] for k in ("title", "logline")}, "series")
    put("style", {k: SERIES[k] for k in ("art_style", "palette", "tone", "target_episode_seconds")}, "style")
    for c in CHARACTERS:
        put("character", c, f"character-{c['name'].lower()}")
    for loc in LOCATIONS:
        put("location", loc, "location-" + loc["name"].lower().replace(" ", "-"))
    put("prop", PROPS[0], "prop-paper-umbrella")
    put("outline", {"episodes": OUTLINE["episodes"][:1]}, "outline")
    put("episode", dict(OUTLINE["episodes"][0]), "episode-1")
    put("beats", BEATS, "beats-ep1")
    for sc in SCENES:
        rid = f"scene-ep1-{sc['number']}"
        put("scene", {**sc, "lines": [{**ln, "id": f"{rid}-l{i}"} for i, ln in enumerate(sc["lines"], 1)]}, rid)
    for scene_id, shots in PLANS.items():
        write_shot_plan(canon, {"scene_id": scene_id, "shots": shots}, actor="human", note="fixture")
        for i in range(1, 3):
            put("take", {"line_id": f"{scene_id}-l{i}", "language": "en", "path": f"assets/audio/{scene_id}-l{i}.wav"},
                f"take-{scene_id}-l{i}-en")
        put("motion", {"scene_id": scene_id, "shots": []}, f"motion-{scene_id}")


@dataclass(frozen=True)
class Row:
    text: str
    tools: tuple[str, ...]            # expected tools in order ("clarify": a question, no call)
    targets: tuple[str | None, ...]   # expected target of each call
    card: dict[str, Any] | None = None   # the proposal on the card when the message is sent


def r(text: str, tools: str, targets: str | None = None, card: dict[str, Any] | None = None) -> Row:
    names = tuple(tools.split("+"))
    tg = tuple(None if t in ("", "-") else t for t in (targets or "").split("+")) if targets is not None \
        else tuple(None for _ in names)
    return Row(text, names, tg, card)


CHAR_CARD = lambda rid: {"kind": "character", "target_id": rid, "data": {}}
PANEL_CARD = lambda shot: {"kind": "panel", "target_id": None, "data": {"subject": shot}}
CASTING_CARD = lambda char: {"kind": "casting", "target_id": None, "data": {"subject": char}}
TAKE_CARD = lambda line: {"kind": "take", "target_id": None, "data": {"line_id": line}}

ROWS: list[Row] = [
    # questions, and questions phrased as requests
    r("What does Aiko wear?", "ask_bible"),
    r("who is Kaito again", "ask_bible"),
    r("Tell me about the Hilltop Shrine", "ask_bible"),
    r("how old is Ren?", "ask_bible"),
    r("remind me what the umbrella does", "ask_bible"),
    r("Describe Ren's personality for me", "ask_bible"),
    r("what's the logline?", "ask_bible"),
    r("is Kaito afraid of anything?", "ask_bible"),
    r("I'd love to know who owns the paper umbrella", "ask_bible"),
    r("whats the palette again", "ask_bible"),
    r("where does scene 2 take place?", "ask_bible"),
    # status
    r("what's left before I can render?", "status"),
    r("where are we with episode 1?", "status", "episode-1"),
    r("what is still missing", "status"),
    r("anything stale?", "status"),
    r("what comes next?", "status"),
    r("give me a status report", "status"),
    # show
    r("show me Ren", "show", "character-ren"),
    r("show scene 2", "show", "scene-ep1-2"),
    r("let me see the umbrella", "show", "prop-paper-umbrella"),
    r("display shot 3", "show", "scene-ep1-1-s3"),
    # revisions, also phrased as questions, with typos and pronouns
    r("make Aiko older", "revise", "character-aiko"),
    r("Can you make Aiko older?", "revise", "character-aiko"),
    r("could Ren be a bit nicer?", "revise", "character-ren"),
    r("Kaito should be taller", "revise", "character-kaito"),
    r("give Kaito a scar over his eye", "revise", "character-kaito"),
    r("make the palette colder", "revise", "style"),
    r("the night station should feel more crowded", "revise", "location-night-station"),
    r("make the shrine look abandoned", "revise", "location-hilltop-shrine"),
    r("scene 2 is too long, cut the flashback", "revise", "scene-ep1-2"),
    r("make the second scene darker", "revise", "scene-ep1-2"),
    r("change the logline so it mentions the storm", "revise", "series"),
    r("make Aikoo younger", "revise", "character-aiko"),
    r("make Kiato braver", "revise", "character-kaito"),
    r("I think Ren should wear glasses", "revise", "character-ren"),
    r("make her older", "revise", "character-aiko", CHAR_CARD("character-aiko")),
    r("give him a green scarf", "revise", "character-ren", CHAR_CARD("character-ren")),
    r("the umbrella should be blue, not red", "revise", "prop-paper-umbrella"),
    r("make the twist less obvious", "revise", "beats-ep1"),
    r("change the art style to watercolour", "revise", "style"),
    r("the last scene needs more tension", "revise", "scene-ep1-3"),
    r("Would it be possible to make Ren a little less sarcastic?", "revise", "character-ren"),
    # additions
    r("add a character who sells noodles at the station", "add", "character"),
    r("we need a new location, a rooftop garden", "add", "location"),
    r("add a prop: a broken pocket watch", "add", "prop"),
    r("Could we add another scene where Ren and Kaito argue?", "add", "scene"),
    r("introduce a villain", "add", "character"),
    # removals
    r("remove shot 2", "remove", "scene-ep1-1-s2"),
    r("delete the last shot of scene 1", "remove", "scene-ep1-1-s3"),
    r("get rid of the umbrella", "remove", "prop-paper-umbrella"),
    r("drop Ren's line in scene 1", "remove", "scene-ep1-1-l2"),
    r("we don't need the establishing shot", "remove", "scene-ep1-1-s1"),
    # order, split, merge
    r("swap scenes 2 and 3", "reorder", "scenes"),
    r("swap shots 1 and 2 in scene 1", "reorder", "scene-ep1-1"),
    r("put shot 3 before shot 1 in the first scene", "reorder", "scene-ep1-1"),
    r("split scene 2 into two scenes", "split_scene", "scene-ep1-2"),
    r("merge scenes 1 and 2", "merge_scenes", "scene-ep1-1"),
    r("can we combine the first and second scene?", "merge_scenes", "scene-ep1-1"),
    r("move scene 3 before scene 1", "reorder", "scenes"),
    r("put the flashback scene last", "reorder", "scenes"),
    r("scene 1 should come after scene 2", "reorder", "scenes"),
    r("split scene 2 at line 2", "split_scene", "scene-ep1-2"),
    r("scene 1 is too long, break it where Ren answers", "split_scene", "scene-ep1-1"),
    r("merge scene 2 with the next one", "merge_scenes", "scene-ep1-2"),
    r("fold scene 3 into the previous one", "merge_scenes", "scene-ep1-2"),
    r("delete scene 3", "remove", "scene-ep1-3"),
    r("remove Kaito from the story", "remove", "character-kaito"),
    r("get rid of the night station", "remove", "location-night-station"),
    # dialogue
    r("rewrite the dialogue in scene 3", "rewrite_lines", "scene-ep1-3"),
    r("make the lines in the first scene funnier", "rewrite_lines", "scene-ep1-1"),
    r("Ren should say something meaner in scene 2", "rewrite_lines", "scene-ep1-2"),
    r("the dialogue in scene 1 feels stiff", "rewrite_lines", "scene-ep1-1"),
    # shots and panels
    r("make shot 2 a close-up", "reframe_shot", "scene-ep1-1-s2"),
    r("shot 5 should be wider", "reframe_shot", "scene-ep1-2-s2"),
    r("frame scene 2 shot 1 from a low angle", "reframe_shot", "scene-ep1-2-s1"),
    r("push in on the last shot of scene 3", "reframe_shot", "scene-ep1-3-s2"),
    r("make this shot a close-up", "reframe_shot", "scene-ep1-3-s1", PANEL_CARD("scene-ep1-3-s1")),
    r("redo the panel for shot 4", "redo_panel", "scene-ep1-2-s1"),
    r("redo shot 4 closer on her face", "redo_panel", "scene-ep1-2-s1"),
    r("redraw this one with more rain", "redo_panel", "scene-ep1-1-s2", PANEL_CARD("scene-ep1-1-s2")),
    r("the picture for shot 6 is too dark, draw it again", "redo_panel", "scene-ep1-3-s1"),
    # voices
    r("Ren should sound calmer", "recast", "character-ren"),
    r("give Kaito a deeper voice", "recast", "character-kaito"),
    r("I don't like how Aiko sounds", "recast", "character-aiko"),
    r("recast him", "recast", "character-ren", CASTING_CARD("character-ren")),
    r("redo Ren's line in scene 1", "redo_take", "scene-ep1-1-l2"),
    r("record line 1 of scene 2 again, softer", "redo_take", "scene-ep1-2-l1"),
    r("re-record “Only rain.” with more anger", "redo_take", "scene-ep1-1-l2"),
    r("this take is too fast, do it again slower", "redo_take", "scene-ep1-3-l1", TAKE_CARD("scene-ep1-3-l1")),
    # motion
    r("slow the camera down in scene 2", "change_motion", "scene-ep1-2"),
    r("add a vignette to the third scene", "change_motion", "scene-ep1-3"),
    r("less shake in shot 6", "change_motion", "scene-ep1-3-s1"),
    # dubbing and pronunciation
    r("Dub episode 1 into Japanese", "dub", "ja"),
    r("translate it into spanish please", "dub", "es"),
    r("pronounce Kaito as Kai-toe", "pronounce", "Kaito"),
    r("say Ren as Rehn", "pronounce", "Ren"),
    # review, render, undo
    r("bring up Aiko's reference sheet", "review", "character-aiko"),
    r("let's review the panel for shot 3", "review", "scene-ep1-1-s3"),
    r("open the background of the night station", "review", "location-night-station"),
    r("render episode 1", "render", "episode-1"),
    r("let's make the final video", "render", "episode-1"),
    r("undo that", "undo"),
    r("revert Ren to revision 1", "undo", "character-ren"),
    # several intents in one message
    r("make Ren older and give him a scar", "revise", "character-ren"),
    r("make Aiko older, then dub the episode into Japanese", "revise+dub", "character-aiko+ja"),
    r("remove shot 2 and swap scenes 2 and 3", "remove+reorder", "scene-ep1-1-s2+scenes"),
    r("make the palette warmer; also what does Kaito wear?", "revise+ask_bible", "style+"),
    # written after the first measurement, as a check on phrasings the exemplars had not seen
    r("what kind of person is Ren?", "ask_bible"),
    r("who lives at the shrine", "ask_bible"),
    r("how many scenes are done", "status"),
    r("is there anything I still have to approve?", "status"),
    r("Aiko needs to look more tired", "revise", "character-aiko"),
    r("can Kaito be shorter", "revise", "character-kaito"),
    r("please make the station rainier", "revise", "location-night-station"),
    r("change scene 3 so Kaito arrives late", "revise", "scene-ep1-3"),
    r("I want another location: a bamboo forest", "add", "location"),
    r("throw out shot 7", "remove", "scene-ep1-3-s2"),
    r("shots 2 and 3 of scene 1 should switch places", "reorder", "scene-ep1-1"),
    r("Kaito's dialogue in scene 3 is too cheesy", "rewrite_lines", "scene-ep1-3"),
    r("shot 1 should be from above", "reframe_shot", "scene-ep1-1-s1"),
    r("draw shot 3 again, Ren looks off", "redo_panel", "scene-ep1-1-s3"),
    r("Aiko's voice should be softer", "recast", "character-aiko"),
    r("Kaito sounds bored", "recast", "character-kaito"),
    r("redo Kaito's take in scene 3 with more fire", "redo_take", "scene-ep1-3-l2"),
    r("the grade of scene 1 should be warmer", "change_motion", "scene-ep1-1"),
    r("can we get a Korean dub?", "dub", "ko"),
    r("open Ren's voice casting", "review", "character-ren"),
    r("export episode 1", "render", "episode-1"),
    r("revert the palette", "undo", "style"),
    r("make it wider", "reframe_shot", "scene-ep1-1-s2", PANEL_CARD("scene-ep1-1-s2")),
    r("she should be angrier", "revise", "character-aiko", CHAR_CARD("character-aiko")),
    # a second set written blind (routed 14/20 before the exemplars learnt from it)
    r("what's Ren's deal?", "ask_bible"),
    r("where is the umbrella kept", "ask_bible"),
    r("are we ready to render yet?", "status"),
    r("Kaito could use a cooler jacket", "revise", "character-kaito"),
    r("let's make the shrine spookier", "revise", "location-hilltop-shrine"),
    r("tone down the palette", "revise", "style"),
    r("add a new prop, a lucky charm", "add", "prop"),
    r("lose shot 3", "remove", "scene-ep1-1-s3"),
    r("the dialogue of the flashback scene feels flat", "rewrite_lines", "scene-ep1-2"),
    r("shot 2 needs a tighter frame", "reframe_shot", "scene-ep1-1-s2"),
    r("repaint shot 5", "redo_panel", "scene-ep1-2-s2"),
    r("Ren's voice is too deep", "recast", "character-ren"),
    r("say that line again but whispering", "redo_take", "scene-ep1-3-l1", TAKE_CARD("scene-ep1-3-l1")),
    r("make scene 3's camera moves calmer", "change_motion", "scene-ep1-3"),
    r("I'd like a French dub", "dub", "fr"),
    r("pull up the panel of shot 6", "review", "scene-ep1-3-s1"),
    r("render a preview of episode 1", "render", "episode-1"),
    r("roll back Kaito", "undo", "character-kaito"),
    r("put Kaito in this shot", "reframe_shot", "scene-ep1-1-s2", PANEL_CARD("scene-ep1-1-s2")),
    r("make Ren taller and Aiko shorter", "revise+revise", "character-ren+character-aiko"),
    # episodes
    r("let's start episode 2", "start_episode", "episode-2"),
    r("next episode", "start_episode"),
    r("begin ep 3", "start_episode", "episode-3"),
    r("ok, on to the next episode please", "start_episode"),
    r("can we begin the second episode now?", "start_episode", "episode-2"),
    r("start working on episode 4", "start_episode", "episode-4"),
    # batch drafting as jobs (agent/tools/batch.py), with a typo
    r("draft all panels for episode 1", "draft_all", "episode-1"),
    r("drfat all the missing panels of ep 1", "draft_all", "episode-1"),
    r("voice all lines of episode 2", "draft_all", "episode-2"),
    r("please queue every panel of the first episode", "draft_all", "episode-1"),
    r("batch draw the whole storyboard", "draft_all"),
    r("animate all the clips of episode 1", "draft_all", "episode-1"),
    r("queue every motion clip for the first episode", "draft_all", "episode-1"),
    # a "previously on" (cold open), with a typo
    r("add a previously on to episode 2", "cold_open", "episode-2"),
    r("recap for ep 3", "cold_open", "episode-3"),
    r("can episode 2 open with a cold open?", "cold_open", "episode-2"),
    r("give the second episode a previosly on", "cold_open", "episode-2"),
    r("I'd like a quick recap before episode 2 starts", "cold_open", "episode-2"),
    # branches: what-ifs on a branch of canon (memory/branches.py), with typos
    r("what if Ren dies in episode 3?", "open_branch"),
    r("open a branch called ren-dies", "open_branch", "branch-ren-dies"),
    r("wat if Aiko never finds the shrine?", "open_branch"),
    r("switch to the ren-dies branch", "switch_branch", "branch-ren-dies"),
    r("go back to the main line", "switch_branch", "branch-main"),
    r("swich to branch ren-dies", "switch_branch", "branch-ren-dies"),
    r("compare ren-dies with main", "compare_branches"),
    r("adopt the ren-dies branch", "adopt_branch", "branch-ren-dies"),
    r("discard this branch, too dark", "discard_branch"),
    r("reopen the ren-dies branch", "reopen_branch", "branch-ren-dies"),
    # ambiguous: one short question
    r("make the scene darker", "clarify"),
    r("make her older", "clarify"),
    r("redo the shot", "clarify"),
    r("make him a villain", "clarify"),
]


def open_fixture(root: Path) -> Canon:
    root.mkdir(parents=True, exist_ok=True)
    canon = Canon(root / "canon.sqlite")
    build_fixture(canon)
    return canon


def outcome(route: Any) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    """(tools, targets) of a route, as a row states them."""
    if route.question:
        return ("clarify",), (None,)
    return tuple(c.name for c in route.calls), tuple(c.target for c in route.calls)
