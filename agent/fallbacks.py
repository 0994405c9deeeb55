"""Safe values for a proposal the model could not get right after its bounded repairs.

`salvage` keeps every field of the model's last reply that validates and replaces the rest with a
plain, named default (the "dusk" palette, "a generic prop", a logline from the premise), saying
which. The studio offers the result as the failed card's starting draft (Edit); headless `make`
accepts it as actor `auto` with those notes in the ledger, so a run never dead-ends on model junk.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field as default_factory_field
from typing import Any

from pydantic import BaseModel, ValidationError

from agent.schemas import MAX_LINES_PER_SHOT, PROPOSAL_MODELS

#: The named default palette (a dusk sky: navy, vermilion, sand, moss).
DEFAULT_PALETTE_NAME = "dusk"
DEFAULT_PALETTE = ["#1b2a4a", "#e05a47", "#f2d6a2", "#6b8f71"]
_CHARACTER_NAMES = ("Aoi", "Haru", "Mei", "Sora", "Kenji", "Yuna", "Riku", "Hana")
_LOCATION_NAMES = ("Old Street", "River Bank", "Village Square", "Mountain Path", "Quiet Room")
_PROP_NAMES = ("Old Lantern", "Paper Charm", "Silver Key", "Worn Letter")


def _first_free(names: tuple[str, ...], taken: list[str], stem: str) -> str:
    used = {t.casefold() for t in taken}
    for name in names:
        if name.casefold() not in used:
            return name
    return f"{stem} {len(taken) + 1}"


def _title_from(premise: str) -> str:
    words = re.findall(r"[A-Za-z][A-Za-z'-]*", premise)
    skip = {"a", "an", "the", "who", "must", "and", "of", "to", "in", "on", "with", "that", "his", "her"}
    picked = [w for w in words if w.casefold() not in skip][:3]
    return " ".join(w.capitalize() for w in picked)[:60] or "Untitled Series"


@dataclass(frozen=True)
class Context:
    """What a default draft may use: the premise, canon's names, the task and the targets."""

    premise: str = ""
    cast: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    taken: tuple[str, ...] = ()           # names of this kind canon already has
    task: dict[str, Any] = default_factory_field(default_factory=dict)
    scene: dict[str, Any] = default_factory_field(default_factory=dict)   # the scene a shot plan is for
    episodes: int = 3
    shots: int | None = None


def series(c: Context) -> dict[str, Any]:
    return {"title": _title_from(c.premise), "logline": (c.premise or "A short vertical anime drama.")[:300],
            "art_style": "anime cel shading, soft rim light", "palette": list(DEFAULT_PALETTE),
            "tone": "bittersweet", "target_episode_seconds": 60}


def character(c: Context) -> dict[str, Any]:
    return {"name": _first_free(_CHARACTER_NAMES, list(c.taken), "Character"), "role": "supporting", "age": "",
            "personality": "curious, determined", "look_tags": ["black hair", "dark eyes", "plain clothes"],
            "voice_notes": ""}


def location(c: Context) -> dict[str, Any]:
    return {"name": _first_free(_LOCATION_NAMES, list(c.taken), "Location"),
            "description": "a quiet place in the story", "look_tags": ["evening light", "empty street"]}


def prop(c: Context) -> dict[str, Any]:
    return {"name": _first_free(_PROP_NAMES, list(c.taken), "Prop"),
            "description": "a generic prop that matters to the story", "owner": "", "look_tags": []}


def outline(c: Context) -> dict[str, Any]:
    return {"episodes": [{"number": i, "title": f"Episode {i}",
                          "logline": f"Part {i}: {c.premise[:200] or 'the story goes on'}"}
                         for i in range(1, max(1, c.episodes) + 1)]}


def beats(c: Context) -> dict[str, Any]:
    who = c.cast[0] if c.cast else "The lead"
    return {"episode": c.task.get("episode", 1), "beats": [
        {"kind": "hook", "summary": f"{who} notices something impossible."},
        {"kind": "escalation", "summary": "The trouble grows and cannot be ignored."},
        {"kind": "twist", "summary": "The truth is not what it seemed."},
        {"kind": "cliffhanger", "summary": f"{who} is left facing the unknown."}]}


def scene(c: Context) -> dict[str, Any]:
    cast, places, task = list(c.cast), list(c.places), c.task
    speakers = cast[:2] or ["Narrator"]
    lines = [{"speaker": s, "line": text, "emotion": "neutral"}
             for s, text in zip(speakers * 2, ("Did you see that?", "I did. We have to go.", "Now?",
                                               "Now."))]
    return {"episode": task.get("episode", 1), "number": task.get("number", 1),
            "title": f"Scene {task.get('number', 1)}", "location": places[0] if places else "Somewhere",
            "characters": [s for s in speakers if s != "Narrator"] or cast[:1] or ["Narrator"],
            "action": "The characters meet and the trouble begins.", "lines": lines[:max(2, len(speakers))]}


def shots(c: Context) -> dict[str, Any]:
    cast, scene = list(c.cast), dict(c.scene)
    lines = scene.get("lines", [])
    want = max(c.shots or max(1, min(6, len(lines) or 3)), -(-len(lines) // MAX_LINES_PER_SHOT))
    plan = []
    framings = ["wide", "medium", "close-up", "medium", "close-up", "wide"]
    for i in range(want):
        covered = [n for n in range(1, len(lines) + 1) if (n - 1) * want // max(1, len(lines)) == i]
        speakers = [lines[n - 1].get("speaker") for n in covered]
        names = [s for s in dict.fromkeys(speakers) if s and s in cast][:3]
        if not names and scene.get("characters"):
            names = [n for n in scene["characters"] if n in cast][:1]
        plan.append({"framing": framings[i % len(framings)], "angle": "eye level", "camera_move": "static",
                     "characters": [{"name": n, "expression": "neutral", "pose": ""} for n in names],
                     "location": scene.get("location", ""), "lighting": "", "mood": "", "lines": covered,
                     "duration_s": 3.0, "transition": "cut"})
    return {"scene_id": c.task.get("scene_id", ""), "shots": plan}


#: The default draft of each writers' room kind and of the shot plan (their `fallback` hooks).
DEFAULTS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "series": series, "character": character, "location": location, "prop": prop, "outline": outline,
    "beats": beats, "scene": scene, "shots": shots}


def defaults(kind: str, *, premise: str = "", cast: list[str] | None = None, places: list[str] | None = None,
             taken: list[str] | None = None, task: dict[str, Any] | None = None,
             scene: dict[str, Any] | None = None, episodes: int = 3, shots: int | None = None) -> dict[str, Any]:
    """A complete, valid proposal of `kind` made of plain defaults (and canon names); KeyError for a
    kind that has none."""
    return DEFAULTS[kind](Context(premise=" ".join(premise.split()), cast=tuple(cast or ()),
                                  places=tuple(places or ()), taken=tuple(taken or ()), task=dict(task or {}),
                                  scene=dict(scene or {}), episodes=episodes, shots=shots))


def salvage(kind: str, partial: dict[str, Any] | None, model: type[BaseModel] | None = None,
            *, base: dict[str, Any] | None = None, **context: Any) -> tuple[dict[str, Any], list[str]]:
    """(data, notes): the model's last reply field by field, each field that does not validate
    replaced by its default. `model` is the (canon-narrowed) schema; the plain one by default.
    `base` is the kind's default draft (its registry `fallback` hook); `defaults(kind)` otherwise."""
    model = model or PROPOSAL_MODELS[kind]
    known = context.pop("known", {}) or {}
    good = model.model_validate({**(base if base is not None else defaults(kind, **context)), **known}).model_dump()
    context["known"] = known
    partial = dict(partial or {}) if isinstance(partial, dict) else {}
    notes: list[str] = []
    for field in good:
        if field not in partial:
            if model.model_fields[field].is_required() and field not in context.get("known", {}):
                notes.append(f"{field}: missing → {_label(kind, field, good[field])}")
            continue
        value = partial[field]
        try:
            good = model.model_validate({**good, field: value}).model_dump()
            continue
        except ValidationError:
            pass
        if isinstance(value, list):  # keep the items that are fine on their own
            kept = []
            for item in value:
                try:
                    model.model_validate({**good, field: [*kept, item]})
                    kept.append(item)
                except ValidationError:
                    continue
            if kept:
                try:
                    good = model.model_validate({**good, field: kept}).model_dump()
                    notes.append(f"{field}: kept {len(kept)} of {len(value)} items")
                    continue
                except ValidationError:
                    pass
        notes.append(f"{field}: {_short(value)} → {_label(kind, field, good[field])}")
    return good, notes


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "…"


def _label(kind: str, field: str, value: Any) -> str:
    if kind == "series" and field == "palette" and value == DEFAULT_PALETTE:
        return f"the default palette {DEFAULT_PALETTE_NAME!r} ({', '.join(DEFAULT_PALETTE)})"
    return f"default {_short(value)}"
