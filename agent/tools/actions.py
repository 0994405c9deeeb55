"""Action tools: bring an item to the card now, check an episode is ready to render, undo a change.

`undo` is the director's own logged decision, as `/undo` and the History & undo tab: a revert is a
new revision (nothing is destroyed) written in one transaction with its commit row, the ledger line
derived from it, keyed so that a step that runs again never reverts twice.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from agent.state import Task
from agent.tools import Outcome, Tool, ToolContext, ToolError
from agent.tools.refs import Catalog, display, resolve
from memory.errors import StoryreelError

ITEMS = ("panel", "reference", "background", "shots", "casting", "take", "motion")


class ReviewArgs(BaseModel):
    item: str = Field(min_length=1, max_length=120, description="what to review: a shot, character, "
                      "location, scene or line")
    what: Literal["panel", "reference", "background", "shots", "casting", "take", "motion"] | None = Field(
        default=None, description="which card: a shot's panel, a character's reference sheet or voice casting, "
        "a location's background, a scene's shot plan or motion, a line's take")


class RenderArgs(BaseModel):
    episode: int = Field(default=1, ge=1, le=100)
    preview: bool = False


class UndoArgs(BaseModel):
    record: str | None = Field(default=None, max_length=120, description="the record; omit for the last "
                               "accepted change")
    revision: int | None = Field(default=None, ge=0, description="the revision to go back to (0 deletes)")


def review_task(rec_kind: str, rec_id: str, what: str | None, scene_id: str | None = None) -> Task:
    """The task that puts an item on the card (as a click in the storyboard does)."""
    default = {"shot": "panel", "character": "reference", "location": "background", "scene": "shots",
               "line": "take", "voice": "casting"}
    what = what or default.get(rec_kind)
    allowed = {"panel": ("shot",), "reference": ("character",), "background": ("location",),
               "shots": ("scene",), "motion": ("scene",), "casting": ("character",), "take": ("line",)}
    if what not in allowed or rec_kind not in allowed[what]:
        raise ToolError(f"there is no {what or 'card'} for a {rec_kind}; review a shot's panel, a character's "
                        "reference or casting, a location's background, a scene's shots or motion, or a line's take")
    if what in ("shots", "motion"):
        return {"kind": what, "target_id": None, "scene_id": rec_id}
    if what == "take":
        return {"kind": "take", "target_id": None, "subject": rec_id, "scene_id": scene_id or "", "language": "en"}
    return {"kind": what, "target_id": None, "subject": rec_id}


def review(tc: ToolContext, args: ReviewArgs) -> Outcome:
    from agent.storyboard import VISUAL_KINDS

    cat = Catalog.of(tc.ctx.canon)
    rec = resolve(cat, args.item, ("shot", "character", "location", "scene", "line"), what="item")
    if rec.kind == "shot" and args.what in ("shots", "motion"):
        rec = cat.scene_of(rec) or rec
    task = review_task(rec.kind, rec.id, args.what, str(rec.data.get("scene_id") or "") or None)
    kind = task["kind"]
    if (kind in VISUAL_KINDS or kind == "motion") and tc.ctx.painter is None:
        raise ToolError("the storyboard is off in this session (no painter); open the studio to review pictures")
    if kind in ("casting", "take") and tc.ctx.voices is None:
        raise ToolError("voices are off in this session (no voice backend); open the studio to review takes")
    return Outcome(tasks=[task], say=f"Opening the {kind} card for {display(rec)}.")


def render(tc: ToolContext, args: RenderArgs) -> Outcome:
    from agent.cut import episode_spec

    try:
        episode_spec(tc.ctx.canon, tc.ctx.project_root, episode=args.episode, require_motion=not args.preview)
    except StoryreelError as exc:
        return Outcome(say=f"Episode {args.episode} is not ready to render: {exc}")
    return Outcome(say=(f"Episode {args.episode} is ready to render: every panel, take and motion is accepted. "
                        "Start it with Render in the Episode tab (it runs in the background; the chat stays "
                        "usable)."))


def undo(tc: ToolContext, args: UndoArgs) -> Outcome:
    ctx = tc.ctx
    if args.record:
        rec = resolve(Catalog.of(ctx.canon), args.record,
                      ("character", "location", "prop", "scene", "shot", "series", "style", "outline", "beats",
                       "episode", "voice", "glossary"), what="record")
        record_id = rec.id
    else:
        decided = [e for e in ctx.ledger.entries() if e.get("actor") in ("human", "auto") and e.get("record_id")
                   and e.get("action") in ("accept", "edit", "revert")]
        if not decided:
            raise ToolError("nothing to undo yet: no accepted record")
        record_id = str(decided[-1]["record_id"])
    current = ctx.canon.get(record_id)
    target = current.rev - 1 if args.revision is None else args.revision
    if target < 0 or target >= current.rev:
        raise ToolError(f"cannot revert {record_id} (rev {current.rev}) to rev {target}; choose a revision "
                        f"between 0 and {current.rev - 1} (0 deletes it)")

    def write() -> list:
        if target == 0:
            return [ctx.canon.delete(record_id, actor="human", note="undo: deleted")]
        return [ctx.canon.revert(record_id, target, actor="human", note=f"undo to rev {target}")]

    op = f"undo-{record_id}-r{current.rev}-to{target}"   # the same undo, run again, is not applied twice
    (rec,), _ = ctx.canon.commit_proposal(op, write, kind=current.kind, actor="human", action="revert",
                                          note=f"reverted {record_id} to rev {target}",
                                          inputs={"from_rev": current.rev, "to_rev": target, "request": tc.text})
    ctx.ledger.complete(ctx.canon, op)
    ctx.bible.index(rec)
    return Outcome(say=f"Reverted {record_id} to revision {target}: now rev {rec.rev}"
                       + (" (deleted)." if rec.deleted else ".") + " Undo it the same way if that was not it.",
                   wrote=True)


TOOLS = (
    Tool("review", "Bring a storyboard, voice or motion item to the review card now.",
         ReviewArgs, review, "actions", target=lambda a: a.item,
         refs=(("item", ("shot", "character", "location", "scene", "line")),)),
    Tool("render", "Check that an episode is ready to render and say how to start it.",
         RenderArgs, render, "actions", read_only=True, target=lambda a: f"episode-{a.episode}"),
    Tool("undo", "Revert a record to an earlier revision (default: the last accepted change).",
         UndoArgs, undo, "actions", target=lambda a: a.record),
)
