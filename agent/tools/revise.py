"""Proposal tools for the story: revise a record, add one, remove, reorder, split or merge, rewrite a
scene's lines. Each returns a task for the review gate (the graph generates the draft), or, for edits
that need no model, the finished proposal: a shot-plan revision with its difference against canon
(remove a shot, reorder shots), or a structural edit (`agent.structure`: remove a scene, character,
place or prop, reorder, split or merge scenes) listing every record it moves, renumbers, creates or
tombstones. Nothing changes canon until the director accepts.
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
    new_order: list[int] = Field(min_length=2, max_length=12, description="the current numbers in their new "
                                 "order (two numbers swap them)")
    scene: str | None = Field(default=None, max_length=120, description="for shots: the scene")
    episode: int | None = Field(default=None, ge=1, le=100, description="for scenes: the episode (default 1)")


class SplitSceneArgs(BaseModel):
    scene: str = Field(min_length=1, max_length=120, description="the scene to split")
    at: int | str | None = Field(default=None, description="the line the second scene starts with: its number "
                                 "(2 or more) or words of it")
    title: str | None = Field(default=None, max_length=60, description="the second scene's title")
    instruction: str = Field(default="", max_length=500)


class MergeScenesArgs(BaseModel):
    first: str = Field(min_length=1, max_length=120, description="a scene")
    second: str | None = Field(default=None, max_length=120, description="the scene next to it (default: the "
                               "one after the first)")


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


# ----------------------------------------------------------------------------- words → scene order


def scene_order(words: str, named: list[Record], numbers: list[int], n: int) -> list[int] | None:
    """The new order of an episode's n scenes that the director's words ask for, as current numbers
    (two numbers: swap them), or None when the words do not say. `named`: the scenes the words name,
    in order ("scene 3", "the flashback"); `numbers`: the bare numbers in the words."""
    lowered = words.casefold()
    nums = [int(s.data.get("number", 0)) for s in named] or numbers
    rest = [i for i in range(1, n + 1)]
    if len(nums) >= 2 and (m := re.search(r"\b(before|after|ahead of|behind)\b", lowered)):
        moved, anchor = nums[0], nums[1]
        if moved == anchor or not (1 <= moved <= n and 1 <= anchor <= n):
            return None
        rest.remove(moved)
        rest.insert(rest.index(anchor) + (m.group(1) in ("after", "behind")), moved)
        return rest
    if len(nums) == 1 and 1 <= nums[0] <= n:
        first = re.search(r"\b(first|start|beginning|opening|open with|to the top)\b", lowered)
        last = re.search(r"\b(last|end|ending|close with|final)\b", lowered)
        if bool(first) != bool(last):
            rest.remove(nums[0])
            return [nums[0], *rest] if first else [*rest, nums[0]]
        return None
    return nums[:12] if len(nums) >= 2 else None


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
    if rec.kind in ("scene", "character", "location", "prop"):
        return structure_proposal(tc, "remove", {"record": rec.id}, tc.text or f"remove {rec.id}")
    return Outcome(say=(f"Removing {display(rec)} is not a proposal the writers' room makes (it is part of the "
                        "series' plan); revise it instead, or revert it in History & undo (a logged decision)."))


def reorder(tc: ToolContext, args: ReorderArgs) -> Outcome:
    from agent import revisions

    cat = Catalog.of(tc.ctx.canon)
    if args.what == "scenes":
        episode = args.episode
        if episode is None:
            named = cat.get(args.scene) if args.scene else None
            episode = int(named.data.get("episode", 1)) if named is not None and named.kind == "scene" else 1
        return structure_proposal(tc, "reorder", {"episode": episode, "new_order": list(args.new_order)},
                                  tc.text or f"reorder scenes {args.new_order}")
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
    cat = Catalog.of(tc.ctx.canon)
    scene = scene_for(cat, args.scene, tc)
    at: int | str | None = args.at
    named = cat.line(args.scene) if args.scene else None
    if at is None and named is not None:   # "split scene 2 at Ren's line" named the line itself
        at = int(named.data.get("number", 0))
    words = args.instruction or tc.text
    if at is None and (m := re.search(r"\b(after\s+)?line\s*(\d+)\b", words, re.IGNORECASE)):
        at = int(m.group(2)) + (1 if m.group(1) else 0)
    if at is None and (m := re.search(r"\b(where|when|at|before|from|after)\s+(?!line\b)(.{3,})", words, re.IGNORECASE)):
        from agent import structure

        try:   # "split scene 2 where Ren answers", "… after Aiko's question"
            at = structure.line_at(scene, m.group(2)) + (1 if m.group(1).lower() == "after" else 0)
        except structure.StructureError:
            at = None
    if at is None:
        n = len(scene.data.get("lines", []))
        raise ToolError(f"Where should {display(scene)} split? Name the line the second scene starts with "
                        f"(2 to {n}), e.g. “split scene {scene.data.get('number')} at line {max(2, (n + 2) // 2)}”")
    return structure_proposal(tc, "split", {"scene": scene.id, "at": at, "title": args.title},
                              tc.text or f"split {scene.id} at {at}")


def merge_scenes(tc: ToolContext, args: MergeScenesArgs) -> Outcome:
    cat = Catalog.of(tc.ctx.canon)
    first = scene_for(cat, args.first, tc)
    if args.second:
        second = scene_for(cat, args.second, tc)
    else:   # "merge scene 2 with the next one"
        n, episode = int(first.data.get("number", 0)), int(first.data.get("episode", 1))
        second = next((s for s in cat.scenes if int(s.data.get("episode", 1)) == episode
                       and int(s.data.get("number", 0)) == n + 1), None)
        if second is None:
            raise ToolError(f"{display(first)} is the last scene of episode {episode}; name the scene to merge it with")
    return structure_proposal(tc, "merge", {"first": first.id, "second": second.id},
                              tc.text or f"merge {first.id} and {second.id}")


def structure_proposal(tc: ToolContext, op: str, args: dict[str, Any], request: str) -> Outcome:
    """A structural edit (agent.structure) as a ready proposal for the card: nothing changes canon
    until the director accepts it; `undo` reverts all of it."""
    from agent import structure
    try:
        data = structure.plan(op, tc.ctx.canon, args)
    except structure.StructureError as exc:
        raise ToolError(str(exc)) from exc
    retrieved = sorted(data["base"])
    task: Task = {"kind": structure.KIND, "target_id": None, "request": request}
    task["structure"] = {"op": op, "args": args}  # type: ignore[typeddict-unknown-key]
    pending: Pending = {"proposal_id": uuid.uuid4().hex[:12], "kind": structure.KIND, "target_id": None,
                        "data": data, "failure": None, "retrieved": retrieved, "attempt": 1, "seed": 0,
                        "warnings": list(data.get("warnings", []))}
    tc.ctx.ledger.append(actor="assistant", action="propose", record_id=None, kind=structure.KIND,
                         inputs={"proposal_id": pending["proposal_id"], "task": task, "data": data,
                                 "retrieved": retrieved, "notes": []}, note=data["summary"])
    return Outcome(say=f"Proposal: {data['summary']}. Review it on the card; nothing changes until you accept, "
                       "and undo puts it all back.", prepared=pending, prepared_task=task)


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
    Tool("remove", "Propose removing a scene, character, location, prop, shot or line (undo restores it).",
         RemoveArgs, remove, "revise", target=lambda a: a.record,
         refs=(("record", REVISABLE),)),
    Tool("reorder", "Propose a new order for an episode's scenes or a scene's shots.",
         ReorderArgs, reorder, "revise", target=lambda a: a.scene or a.what,
         refs=(("scene", SCENEISH),)),
    Tool("split_scene", "Propose splitting a scene in two at a line (its shots, takes and motion follow).",
         SplitSceneArgs, split_scene, "revise", target=lambda a: a.scene,
         refs=(("scene", SCENEISH),)),
    Tool("merge_scenes", "Propose merging two adjacent scenes into one.",
         MergeScenesArgs, merge_scenes, "revise", target=lambda a: a.first,
         refs=(("first", SCENEISH), ("second", SCENEISH))),
    Tool("rewrite_lines", "Propose new dialogue for a scene, following an instruction.",
         RewriteLinesArgs, rewrite_lines, "revise", target=lambda a: a.scene,
         refs=(("scene", SCENEISH),)),
)
