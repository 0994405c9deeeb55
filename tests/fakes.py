"""Deterministic fakes at the backend Protocol boundary (never shipped as a backend)."""
from __future__ import annotations

import itertools
import json
from typing import Any

SERIES = {"title": "Fox Rain", "logline": "A shrine maiden who can hear rain spirits must stop a storm "
          "that erases memories.", "art_style": "anime cel shading, soft rim light",
          "palette": ["#1b2a4a", "#e05a47", "#f2d6a2"], "tone": "bittersweet", "target_episode_seconds": 60}
CHARACTERS = [
    {"name": "Aiko", "role": "lead", "age": "17", "personality": "stubborn, kind, secretly afraid of thunder",
     "look_tags": ["red scarf", "black bob hair", "amber eyes", "shrine maiden outfit"],
     "voice_notes": "bright, quick"},
    {"name": "Ren", "role": "rival", "age": "18", "personality": "cool, sarcastic, loyal",
     "look_tags": ["silver hair", "grey eyes", "black school uniform"], "voice_notes": "low, slow"},
    {"name": "Kaito", "role": "friend", "age": "16", "personality": "cheerful",
     "look_tags": ["spiky brown hair", "green hoodie"], "voice_notes": "high"},
]
LOCATIONS = [
    {"name": "Hilltop Shrine", "description": "a small shrine above the town, wet stone steps",
     "look_tags": ["torii gate", "rain", "stone lanterns"]},
    {"name": "Night Station", "description": "an empty train platform at night",
     "look_tags": ["train platform", "night", "neon"]},
]
PROPS = [{"name": "Paper Umbrella", "description": "a red paper umbrella that hums in the rain",
          "owner": "Aiko", "look_tags": ["red paper umbrella"]}]
OUTLINE = {"episodes": [{"number": i, "title": f"Episode {i}", "logline": f"Things get worse, part {i}."}
                        for i in range(1, 6)]}
BEATS = {"episode": 1, "beats": [
    {"kind": "hook", "summary": "Aiko hears a voice in the rain."},
    {"kind": "escalation", "summary": "The town forgets Ren's name."},
    {"kind": "twist", "summary": "The voice is Aiko's own, from the future."},
    {"kind": "cliffhanger", "summary": "Ren forgets Aiko."}]}


SHOT_PLAN = {"scene_id": "scene-ep1-1", "shots": [
    {"framing": "establishing", "angle": "high", "camera_move": "push-in", "characters": [],
     "location": "Hilltop Shrine", "lighting": "overcast", "mood": "ominous", "lines": [],
     "duration_s": 2.5, "transition": "cut"},
    {"framing": "close-up", "angle": "eye level", "camera_move": "static",
     "characters": [{"name": "Aiko", "expression": "scared", "pose": "looking up"}],
     "location": "Hilltop Shrine", "lighting": "rain light", "mood": "tense", "lines": [1],
     "duration_s": 3.0, "transition": "crossfade"},
    {"framing": "medium", "angle": "eye level", "camera_move": "pan",
     "characters": [{"name": "Aiko", "expression": "sad", "pose": ""},
                    {"name": "Ren", "expression": "neutral", "pose": "arms crossed"}],
     "location": "Hilltop Shrine", "lighting": "rain light", "mood": "cold", "lines": [2],
     "duration_s": 2.5, "transition": "cut"}]}


def scene(n: int) -> dict[str, Any]:
    return {"episode": 1, "number": n, "title": f"Scene {n}", "location": "Hilltop Shrine",
            "characters": ["Aiko", "Ren"], "action": "Rain hammers the shrine steps.",
            "lines": [{"speaker": "Aiko", "line": "Do you hear that?", "emotion": "scared"},
                      {"speaker": "Ren", "line": "Only rain.", "emotion": "neutral"}]}


VISION = {"premise": "A shrine maiden hears rain spirits.", "themes": ["memory and forgetting"],
          "emotional_core": "longing", "tone_references": ["Mushishi"], "never": ["no gore"]}


def accept_vision(session: Any, view: Any = None, **edit: Any) -> Any:
    """Do what the director does on a new project's first card, the vision: accept it as it is
    (their premise), or with `edit` fields (themes=[…], never=[…]) through Edit. Public session
    API only; returns the next view (the series card)."""
    view = view if view is not None else session.view()
    pending = view.pending or {}
    assert pending.get("kind") == "vision", f"expected the vision card, got {pending.get('kind')!r}"
    if edit:
        return session.decide({"type": "edit", "data": {**pending["data"], **edit},
                               "proposal_id": pending.get("proposal_id", "")})
    return session.decide({"type": "accept", "proposal_id": pending.get("proposal_id", "")})


class ScriptedChatModel:
    """Answers by the requested schema's title; records every call so tests can read the prompts.

    `script` maps a schema title to a list of replies (strings or dicts) used first, in order.
    """

    description = "scripted test model"
    is_demo = False

    def __init__(self, script: dict[str, list[Any]] | None = None, answer: str = "She wears a red scarf.") -> None:
        self.script = {k: list(v) for k, v in (script or {}).items()}
        self.calls: list[dict[str, Any]] = []
        self.answer = answer
        self._chars = itertools.cycle(CHARACTERS)
        self._locs = itertools.cycle(LOCATIONS)
        self._scene = itertools.count(1)

    def complete(self, messages: list[dict[str, str]], *, json_schema: dict | None = None,
                 temperature: float = 0.7, max_tokens: int = 768, seed: int | None = None) -> str:
        title = (json_schema or {}).get("title", "")
        self.calls.append({"messages": messages, "title": title, "seed": seed})
        if self.script.get(title):
            reply = self.script[title].pop(0)
            if isinstance(reply, BaseException):
                raise reply
            return reply if isinstance(reply, str) else json.dumps(reply)
        if not json_schema:
            return self.answer
        defaults = {"SeriesProposal": lambda: SERIES, "CharacterProposal": lambda: next(self._chars),
                    "LocationProposal": lambda: next(self._locs), "PropProposal": lambda: PROPS[0],
                    "OutlineProposal": lambda: OUTLINE, "BeatsProposal": lambda: BEATS,
                    "SceneProposal": lambda: scene(next(self._scene)),
                    "ShotPlanProposal": lambda: SHOT_PLAN, "VisionProposal": lambda: VISION,
                    "DriftVerdict": lambda: {"drifts": False, "reasons": []},
                    "ContinuityReview": lambda: {"problems": []}}
        return json.dumps(defaults[title]())

    def prompts_for(self, title: str) -> list[str]:
        return ["\n".join(m["content"] for m in c["messages"]) for c in self.calls if c["title"] == title]
