"""The shot plan of a scene: framing, angle, camera, characters, lines and timing per shot. A JSON
proposal like the writers' room kinds, read against its scene; a panel note that asks for what only
the plan can give (someone not in the shot, another framing) arrives here as a `shot_edit` task.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Literal

from langgraph.types import Command

from agent import fallbacks, prompts, revisions, storyboard
from agent.context import DirectorContext
from agent.kinds.base import Draft, Kind, propose_text, search_bible, validate
from agent.kinds.story import default_draft
from agent.revisions import canonical
from agent.schemas import MAX_LINES_PER_SHOT, PROPOSAL_MODELS, PROPOSAL_TITLES, proposal_model, shots_problems
from agent.state import DirectorState, Pending, Task
from memory.canon import Record


def _retrieve(d: Draft) -> tuple[list[str], list[str]]:
    """The scene itself first (with its numbered dialogue), then the bible's cast, places, style."""
    ids, texts = search_bible("character", "location", "style")(d)
    scene = d.ctx.canon.get(d.task["scene_id"])
    lines = "; ".join(f"line {i}: {ln.get('speaker')} ({ln.get('emotion')}): {ln.get('line')}"
                      for i, ln in enumerate(scene.data.get("lines", []), 1))
    ids.insert(0, scene.id)
    texts.insert(0, f"Scene {scene.id} '{scene.data.get('title')}' at {scene.data.get('location')} — "
                    f"{scene.data.get('action')} Dialogue: {lines}"[:900])
    return ids, texts


def _current(d: Draft) -> dict[str, Any] | None:
    """A revision starts from the accepted shots of the scene, as a plan."""
    return revisions.current_plan(d.ctx.canon, d.task["scene_id"]) if d.task.get("target_id") else None


def _prepare(d: Draft) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Canon's spelling of the characters and places in every shot, before validation."""
    def prepare(obj: dict[str, Any]) -> dict[str, Any]:
        for shot in obj.get("shots") or []:
            if not isinstance(shot, dict):
                continue
            if "location" in shot:
                shot["location"] = canonical(shot["location"], d.places)
            for ch in shot.get("characters") or []:
                if isinstance(ch, dict) and "name" in ch:
                    ch["name"] = canonical(ch["name"], d.cast)
        return obj
    return prepare


def _shape_fix(data: dict[str, Any], d: Draft) -> list[str]:
    if d.scene is not None:
        data["_n_lines"], data["_want_shots"] = len(d.scene.get("lines", [])), d.ctx.targets.shots
        data["_speakers"] = [str(ln.get("speaker", "")) for ln in d.scene.get("lines", [])]
    return fix_plan(data, d.cast, d.places)


def fix_plan(data: dict[str, Any], cast: list[str], places: list[str]) -> list[str]:
    """Make a shot plan consistent with its scene and canon when the model would not (the count
    asked for, every line covered once, at most MAX_LINES_PER_SHOT a shot, speakers in their shots,
    no medium or close shot of no one); returns what was changed. Reads the scene from `_n_lines`,
    `_want_shots`, `_speakers` in `data` (popped)."""
    fixed: list[str] = []
    speakers = list(data.pop("_speakers", []) or [])
    n_lines = int(data.pop("_n_lines", 0))
    want = int(data.pop("_want_shots", 0) or 0)
    if want and len(data["shots"]) != want:
        fixed.append(f"{len(data['shots'])} shots -> {want} (as asked)")
        framings = ["wide", "medium", "close-up", "extreme close-up", "establishing"]
        while len(data["shots"]) < want:
            extra = {**data["shots"][-1], "lines": [], "characters": list(data["shots"][-1]["characters"])}
            extra["framing"] = framings[len(data["shots"]) % len(framings)]
            data["shots"].append(extra)
        dropped = [n for sh in data["shots"][want:] for n in sh["lines"]]
        data["shots"] = data["shots"][:want]
        data["shots"][-1]["lines"] = sorted({*data["shots"][-1]["lines"], *dropped})
    covered: set[int] = set()
    for shot in data["shots"]:
        for ch in shot["characters"]:
            if cast and ch["name"] not in cast:
                new = difflib.get_close_matches(ch["name"], cast, n=1, cutoff=0.0)[0]
                fixed.append(f"character {ch['name']!r} -> {new!r}")
                ch["name"] = new
        unique = list({ch["name"]: ch for ch in reversed(shot["characters"])}.values())[::-1]
        if len(unique) < len(shot["characters"]):   # two spellings that name the same person
            fixed.append("character listed twice in a shot -> once")
            shot["characters"] = unique
        if places and shot.get("location") and shot["location"] not in places:
            new = difflib.get_close_matches(shot["location"], places, n=1, cutoff=0.0)[0]
            fixed.append(f"location {shot['location']!r} -> {new!r}")
            shot["location"] = new
        shot["lines"] = [n for n in shot["lines"] if 1 <= n <= n_lines and n not in covered]
        covered.update(shot["lines"])
    missing = [n for n in range(1, n_lines + 1) if n not in covered]
    for n in missing:  # give each uncovered line a shot: the shot before it in order, else the last
        target = max((sh for sh in data["shots"] if sh["lines"] and max(sh["lines"]) < n),
                     key=lambda sh: max(sh["lines"]), default=data["shots"][-1])
        target["lines"] = sorted([*target["lines"], n])
    if missing:
        fixed.append(f"dialogue lines {missing} assigned to shots")
    split: list[dict[str, Any]] = []   # a shot with more lines than fit takes the next ones in a copy
    for shot in data["shots"]:
        lines = sorted(shot["lines"])
        for k in range(0, max(1, len(lines)), MAX_LINES_PER_SHOT):
            split.append({**shot, "lines": lines[k:k + MAX_LINES_PER_SHOT],
                          "characters": [dict(ch) for ch in shot["characters"]]})
    if len(split) > len(data["shots"]):
        fixed.append(f"{len(data['shots'])} shots -> {len(split)}: at most {MAX_LINES_PER_SHOT} lines a shot")
        data["shots"] = split
    for i, shot in enumerate(data["shots"], 1):  # a shot with dialogue shows its speaker
        names = {ch["name"] for ch in shot["characters"]}
        for n in shot["lines"]:
            who = speakers[n - 1] if n <= len(speakers) else None
            if who and who in cast and who not in names and len(shot["characters"]) < 3:
                shot["characters"].append({"name": who, "expression": "neutral", "pose": ""})
                names.add(who)
                fixed.append(f"shot {i}: speaker {who} put in the shot")
    # a medium or close shot of no one is an empty landscape: frame the scene's people instead
    people = [w for w in dict.fromkeys(speakers) if w in cast] or cast[:2]
    for i, shot in enumerate(data["shots"], 1):
        if people and not shot["characters"] and shot.get("framing") not in ("establishing", "wide"):
            n = 1 if "close" in str(shot.get("framing")) else 2
            chosen = [people[(i - 1 + k) % len(people)] for k in range(min(n, len(people)))]
            shot["characters"] = [{"name": w, "expression": "neutral", "pose": ""} for w in chosen]
            fixed.append(f"shot {i}: {shot.get('framing')} of no one framed on {', '.join(chosen)}")
    return fixed


def _shot_edit(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending) -> None:
    """A panel note asked for what only the shot plan can give: the plan with that shot changed,
    shown as a difference against the accepted plan (no model call)."""
    current = revisions.current_plan(ctx.canon, task["scene_id"])
    data = validate(kind, revisions.shot_edit_plan(ctx.canon, task["shot_edit"]))
    pending["retrieved"] = [task["scene_id"], task["shot_edit"]["shot_id"]]
    pending["data"] = data
    pending["diff"] = revisions.field_diff(current, data)
    pending["warnings"] = [(f"from your note on the panel of {task['shot_edit']['shot_id']}: "
                            f"“{task.get('request', '')}”. Accept it and the panel is drawn again.")]


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    if task.get("shot_edit") and pending["attempt"] == 1:
        return propose_text(kind, state, ctx, task, pending, draft=_shot_edit)
    return propose_text(kind, state, ctx, task, pending)


def _write(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    return storyboard.write_shot_plan(ctx.canon, dict(pending["data"] or {}), actor=actor, note=note)


KINDS = (
    Kind(name="shots", title=PROPOSAL_TITLES["shots"], schema=PROPOSAL_MODELS["shots"], family="storyboard",
         propose=_propose, instruction=prompts.TASKS["shots"], retrieve=_retrieve, current=_current,
         narrow=lambda d: proposal_model("shots", cast=d.cast, places=d.places),
         known=lambda task: {"scene_id": task["scene_id"]}, prepare=_prepare,
         check=lambda data, d: shots_problems(data, d.scene or {}, d.cast, d.places),
         shape_fix=_shape_fix, fallback=default_draft(fallbacks.shots), commit=_write, needs_scene=True,
         summarise=lambda data: f"{len(data.get('shots', []))} shots for {data.get('scene_id')}"),
)
