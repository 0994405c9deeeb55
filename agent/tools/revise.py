"""Proposal tools for the story: revise a record, add one, remove, reorder, split or merge, rewrite a
scene's lines. Each returns a task for the review gate (the graph generates the draft), or, for edits
of a shot plan that need no model (remove a shot, reorder shots), the finished proposal with its
difference against canon. What the graph has no proposal for yet is answered as such, never faked.
"""
from __future__ import annotations

import re
import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.state import Pending, Task
from agent.tools import Outcome, Tool, ToolContext, ToolError
from agent.tools.refs import Catalog, display, resolve
from memory.canon import Record

SCENEISH = ("scene", "shot", "line")
REVISABLE = ("character", "location", "prop", "scene", "shot", "series", "style", "outline", "beats", "episode",
             "line", "voice")


class ReviseArgs(BaseModel):
    record: str = Field(min_length=1, max_length=120, description="what to change: a record id or name "
                        "('Aiko', 'scene 2', 'shot 4', 'style')")
    instruction: str = Field(min_length=1, max_length=500, description="the change, in the director's words")


class AddArgs(BaseModel):
    kind: Literal["character", "location", "prop", "scene", "shot"]
    brief: str = Field(default="", max_length=500, description="what the new record should be")
    scene: str | None = Field(default=None, max_length=120, description="for a shot: the scene it goes in")


class RemoveArgs(BaseModel):
    record: str = Field(min_length=1, max_length=120, description="the record to remove (id or name)")


class ReorderArgs(BaseModel):
    what: Literal["scenes", "shots"]
    new_order: list[int] = Field(min_length=2, max_length=12, description="1-based positions in their new "
                                 "order (two numbers swap them)")
    scene: str | None = Field(default=None, max_length=120, description="for shots: the scene")


class SplitSceneArgs(BaseModel):
    scene: str = Field(min_length=1, max_length=120)
    instruction: str = Field(default="", max_length=500)


class MergeScenesArgs(BaseModel):
    first: str = Field(min_length=1, max_length=120)
    second: str = Field(min_length=1, max_length=120)


class RewriteLinesArgs(BaseModel):
    scene: str = Field(min_length=1, max_length=120, description="the scene (or a line or shot in it)")
    instruction: str = Field(min_length=1, max_length=500)


# ----------------------------------------------------------------------------- tasks


def revision_task(rec: Record, instruction: str) -> Task:
    """The existing revision task for a record: the graph drafts it, the card shows old → new."""
    if rec.kind in ("series", "style"):
        return {"kind": "series", "target_id": rec.id, "request": instruction}
    if rec.kind == "scene":
        return {"kind": "scene", "target_id": rec.id, "request": instruction,
                "episode": int(rec.data.get("episode", 1)), "number": int(rec.data.get("number", 1))}
    if rec.kind == "beats":
        return {"kind": "beats", "target_id": rec.id, "request": instruction,
                "episode": int(rec.data.get("episode", 1))}
    if rec.kind == "episode":
        return {"kind": "outline", "target_id": "outline",
                "request": f"episode {rec.data.get('number')}: {instruction}"}
    if rec.kind == "shot":
        scene_id = str(rec.data.get("scene_id"))
        return {"kind": "shots", "target_id": scene_id, "scene_id": scene_id,
                "request": f"shot {rec.data.get('index')}: {instruction}"}
    if rec.kind in ("character", "location", "prop", "outline"):
        return {"kind": rec.kind, "target_id": rec.id, "request": instruction}
    raise ToolError(f"{display(rec)} is a {rec.kind}; it is changed through its own card, not a revision")


def lines_task(scene: Record, instruction: str) -> Task:
    request = instruction if re.search(r"\b(lines?|dialogue|says?|said)\b", instruction, re.IGNORECASE) \
        else f"the dialogue lines: {instruction}"
    return revision_task(scene, request)


def prepared_plan(tc: ToolContext, scene: Record, plan: dict[str, Any], request: str, why: str) -> Outcome:
    """A shot-plan revision computed without a model, as a proposal for the card (old → new)."""
    from agent import revisions
    from agent.schemas import validate_proposal

    current = revisions.current_plan(tc.ctx.canon, scene.id)
    data = validate_proposal("shots", plan)
    task: Task = {"kind": "shots", "target_id": scene.id, "scene_id": scene.id, "request": request}
    pending: Pending = {"proposal_id": uuid.uuid4().hex[:12], "kind": "shots", "target_id": scene.id,
                        "data": data, "failure": None, "retrieved": [scene.id], "attempt": 1, "seed": 0,
                        "warnings": [f"{why} (from “{request}”); accept it and the changed panels are drawn again"],
                        "diff": revisions.field_diff(current, data)}
    tc.ctx.ledger.append(actor="assistant", action="propose", record_id=scene.id, kind="shots",
                         inputs={"proposal_id": pending["proposal_id"], "task": task, "data": data,
                                 "retrieved": [scene.id], "notes": []}, note=why)
    return Outcome(say=f"Proposal: a shot-plan revision of {display(scene)} — {why}. Review it on the card.",
                   prepared=pending, prepared_task=task)


def scene_for(cat: Catalog, ref: str | None, tc: ToolContext, *, what: str = "scene") -> Record:
    """The scene named, else the one on the card, else the only one; a question otherwise."""
    from agent.tools.refs import card_record

    if ref:
        rec = resolve(cat, ref, ("scene", "shot", "line"), what=what)
        scene = cat.scene_of(rec)
        if scene is not None:
            return scene
    scene = cat.scene_of(card_record(cat, tc.pending))
    if scene is not None:
        return scene
    if len(cat.scenes) == 1:
        return cat.scenes[0]
    raise ToolError(f"Which scene? {', '.join(display(s) for s in cat.scenes) or 'there are no scenes yet'}")


# ----------------------------------------------------------------------------- the tools


def revise(tc: ToolContext, args: ReviseArgs) -> Outcome:
    cat = Catalog.of(tc.ctx.canon)
    rec = resolve(cat, args.record, REVISABLE, what="record")
    if rec.kind == "voice":
        from agent.tools.production import RecastArgs, recast
        from agent.voices import voice_id

        char = next((c for c in cat.characters if voice_id(c.id) == rec.id), None)
        if char is None:
            raise ToolError(f"{rec.id} is not the voice of a character in the bible; name the character")
        return recast(tc, RecastArgs(character=char.id, instruction=args.instruction))
    if rec.kind == "line":
        scene = cat.scene_of(rec)
        assert scene is not None
        return Outcome(tasks=[lines_task(scene, f"line {rec.data.get('number')} ({rec.data.get('speaker')}: "
                                                f"“{rec.data.get('line')}”): {args.instruction}")])
    if rec.kind == "shot":
        from agent.tools.production import shot_changes

        changes = shot_changes(args.instruction, rec.data, [str(c.data.get("name")) for c in cat.characters])
        if changes:
            from agent.tools.production import edited_plan

            scene = cat.scene_of(rec)
            assert scene is not None
            return prepared_plan(tc, scene, edited_plan(tc, rec, changes), args.instruction,
                                 f"shot {rec.data.get('index')}: " + describe_changes(rec.data, changes))
    return Outcome(tasks=[revision_task(rec, args.instruction)])


def describe_changes(before: dict[str, Any], changes: dict[str, Any]) -> str:
    parts = []
    for key, value in changes.items():
        if key == "add_characters":
            parts.append(f"add {', '.join(value)}")
        else:
            parts.append(f"{key.replace('_', ' ')} {before.get(key)} → {value}")
    return "; ".join(parts)


def add(tc: ToolContext, args: AddArgs) -> Outcome:
    cat = Catalog.of(tc.ctx.canon)
    brief = args.brief or tc.text
    if args.kind in ("character", "location", "prop"):
        return Outcome(tasks=[{"kind": args.kind, "target_id": None, "request": brief}])
    if args.kind == "scene":
        episode = 1
        m = re.search(r"\bep(?:isode)?\s*(\d+)", brief, re.IGNORECASE)
        if m:
            episode = int(m.group(1))
        n = 1 + max((int(s.data.get("number", 0)) for s in cat.scenes if int(s.data.get("episode", 1)) == episode),
                    default=0)
        return Outcome(tasks=[{"kind": "scene", "target_id": None, "episode": episode, "number": n,
                               "request": brief}])
    scene = scene_for(cat, args.scene, tc)
    return Outcome(tasks=[{"kind": "shots", "target_id": scene.id, "scene_id": scene.id,
                           "request": f"add a shot: {brief}"}])


def remove(tc: ToolContext, args: RemoveArgs) -> Outcome:
    from agent import revisions

    cat = Catalog.of(tc.ctx.canon)
    rec = resolve(cat, args.record, REVISABLE, what="record")
    if rec.kind == "line":
        scene = cat.scene_of(rec)
        assert scene is not None
        return Outcome(tasks=[lines_task(scene, f"remove line {rec.data.get('number')} "
                                                f"({rec.data.get('speaker')}: “{rec.data.get('line')}”)")])
    if rec.kind == "shot":
        scene = cat.scene_of(rec)
        assert scene is not None
        plan = revisions.current_plan(tc.ctx.canon, scene.id)
        shots = plan["shots"]
        if len(shots) < 2:
            raise ToolError(f"{display(rec)} is the only shot of {display(scene)}; a scene needs one shot. "
                            "Revise it instead, or rewrite the scene")
        i = int(rec.data.get("index", 1)) - 1
        gone = shots.pop(i)
        if gone.get("lines"):  # its dialogue stays covered: the neighbouring shot takes it
            keeper = shots[i - 1] if i > 0 else shots[0]
            keeper["lines"] = sorted({*keeper.get("lines", []), *gone["lines"]})[:4]
        return prepared_plan(tc, scene, plan, tc.text or f"remove {rec.id}",
                             f"shot {i + 1} removed" + (f", its lines {gone['lines']} go to the neighbouring shot"
                                                        if gone.get("lines") else ""))
    return Outcome(say=(f"Removing {display(rec)} is not a proposal the writers' room can make yet (its "
                        f"{rec.kind} is referred to by other records). To delete it, revert it to revision 0: "
                        f"`/undo {rec.id} 0` in the terminal, or History & undo in the studio (a logged "
                        "decision you can revert)."))


def reorder(tc: ToolContext, args: ReorderArgs) -> Outcome:
    from agent import revisions

    cat = Catalog.of(tc.ctx.canon)
    if args.what == "scenes":
        return Outcome(say=("Reordering scenes is not possible yet: a scene's number is part of its id, and "
                            "its shots, takes and motion refer to it. Revise the scenes' content instead "
                            "(for example “rewrite scene 2 as the flashback”), each as its own proposal."))
    scene = scene_for(cat, args.scene, tc)
    plan = revisions.current_plan(tc.ctx.canon, scene.id)
    n = len(plan["shots"])
    order = list(args.new_order)
    if len(order) == 2 and n != 2:  # two shots named: swap them
        a, b = order
        order = list(range(1, n + 1))
        if not (1 <= a <= n and 1 <= b <= n) or a == b:
            raise ToolError(f"{display(scene)} has shots 1 to {n}; cannot swap {a} and {b}")
        order[a - 1], order[b - 1] = b, a
    if sorted(order) != list(range(1, n + 1)):
        raise ToolError(f"new order {args.new_order} must list each of the {n} shots of {display(scene)} once "
                        f"(1 to {n}), or name two shots to swap")
    plan["shots"] = [plan["shots"][i - 1] for i in order]
    return prepared_plan(tc, scene, plan, tc.text or f"reorder shots {order}",
                         f"shots in the order {', '.join(map(str, order))}")


def split_scene(tc: ToolContext, args: SplitSceneArgs) -> Outcome:
    scene = scene_for(Catalog.of(tc.ctx.canon), args.scene, tc)
    return Outcome(say=(f"Splitting {display(scene)} is not possible yet: the writers' room has no proposal "
                        "that turns one scene into two. You can add a scene (“add a scene where …”) and "
                        "rewrite this one's lines to end earlier, each as its own proposal."))


def merge_scenes(tc: ToolContext, args: MergeScenesArgs) -> Outcome:
    cat = Catalog.of(tc.ctx.canon)
    first = scene_for(cat, args.first, tc)
    second = scene_for(cat, args.second, tc)
    return Outcome(say=(f"Merging {display(first)} and {display(second)} is not possible yet: there is no "
                        "proposal that deletes a scene. You can rewrite one scene's lines to hold both "
                        f"(“rewrite the lines of scene {first.data.get('number')} to include …”)."))


def rewrite_lines(tc: ToolContext, args: RewriteLinesArgs) -> Outcome:
    cat = Catalog.of(tc.ctx.canon)
    scene = scene_for(cat, args.scene, tc)
    return Outcome(tasks=[lines_task(scene, args.instruction)])


TOOLS = (
    Tool("revise", "Propose a change to a record (character, place, prop, style, outline, beats, scene, shot).",
         ReviseArgs, revise, "revise", target=lambda a: a.record,
         refs=(("record", REVISABLE),)),
    Tool("add", "Propose a new character, location, prop, scene or shot from a brief.",
         AddArgs, add, "revise", target=lambda a: a.kind),
    Tool("remove", "Propose removing a shot or a line (other records: says how to delete them).",
         RemoveArgs, remove, "revise", target=lambda a: a.record,
         refs=(("record", REVISABLE),)),
    Tool("reorder", "Propose a new order for a scene's shots (scenes cannot be reordered yet).",
         ReorderArgs, reorder, "revise", target=lambda a: a.scene or a.what,
         refs=(("scene", SCENEISH),)),
    Tool("split_scene", "Split a scene in two (not possible yet; says what to do instead).",
         SplitSceneArgs, split_scene, "revise", target=lambda a: a.scene,
         refs=(("scene", SCENEISH),)),
    Tool("merge_scenes", "Merge two scenes (not possible yet; says what to do instead).",
         MergeScenesArgs, merge_scenes, "revise", target=lambda a: a.first,
         refs=(("first", SCENEISH), ("second", SCENEISH))),
    Tool("rewrite_lines", "Propose new dialogue for a scene, following an instruction.",
         RewriteLinesArgs, rewrite_lines, "revise", target=lambda a: a.scene,
         refs=(("scene", SCENEISH),)),
)
