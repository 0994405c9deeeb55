"""Action tools: bring an item to the card now, render an episode, undo a change.

`render` starts the cut through the run context's ``renderer`` (the studio's background job) or,
without one, renders at once; either way it first refuses, naming them, the panels, takes and
motion the episode still needs.

`undo` is the director's own logged decision, as `/undo` and the History & undo tab (all three go
through `undo_change`, the one place that decides what an undo reverts): a revert is a new revision
(nothing is destroyed) written in one transaction with its commit row, the ledger line derived from
it, keyed so that a step that runs again never reverts twice; a change that came from a structural
edit undoes all of that edit.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import BaseModel, Field

from agent.state import Task
from agent.tools import Outcome, Tool, ToolContext, ToolError
from agent.tools.refs import Catalog, display, resolve
from memory.canon import Record
from memory.errors import InputError, StoryreelError

if TYPE_CHECKING:
    from agent.context import DirectorContext

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
    from agent.kinds import lookup

    cat = Catalog.of(tc.ctx.canon)
    rec = resolve(cat, args.item, ("shot", "character", "location", "scene", "line"), what="item")
    if rec.kind == "shot" and args.what in ("shots", "motion"):
        rec = cat.scene_of(rec) or rec
    task = review_task(rec.kind, rec.id, args.what, str(rec.data.get("scene_id") or "") or None)
    kind = task["kind"]
    if lookup(kind).media in ("images", "clip") and tc.ctx.painter is None:
        raise ToolError("the storyboard is off in this session (no painter); open the studio to review pictures")
    if lookup(kind).media == "audio" and tc.ctx.voices is None:
        raise ToolError("voices are off in this session (no voice backend); open the studio to review takes")
    return Outcome(tasks=[task], say=f"Opening the {kind} card for {display(rec)}.")


class EpisodeRenderer(Protocol):
    """Starts an episode's render in the background (the studio's job runner); passed in the run
    context as ``renderer``. Without one (terminal chat, `make`, tests) the tool renders at once."""

    def start(self, episode: int, *, preview: bool) -> str:
        """Start the render; return one sentence for the chat (which job, where to watch it)."""
        ...


PREVIEW_SIZE = (270, 480)


def render_now(ctx: DirectorContext, episode: int, *, preview: bool,
               progress: Callable[[float, str], None] | None = None) -> Any:
    """Render in this thread: the finished cut (renders/epNN/) or a low-res preview without motion
    (renders/epNN/preview/, the storyboard's guides kept). Returns tools.render's result."""
    from agent import cut
    from tools.render import render_episode

    if not preview:
        return cut.render_cut(ctx.canon, ctx.project_root, episode=episode, progress=progress,
                              painter=getattr(ctx.painter, "name", None))
    spec = cut.episode_spec(ctx.canon, ctx.project_root, episode=episode, width=PREVIEW_SIZE[0],
                            height=PREVIEW_SIZE[1], require_motion=False, preset="ultrafast", guides=True,
                            captions=cut.render_options(ctx.project_root).captions)
    out = cut.render_dir(ctx.project_root, episode, branch=getattr(ctx.canon, "branch", "main")) / "preview"
    return render_episode(spec, out, ctx.path(Path("state", "render-cache")), progress=progress)


def render(tc: ToolContext, args: RenderArgs) -> Outcome:
    """Start the render of an episode (or a quick preview); refuse, naming them, the panels, takes
    and motion it still needs."""
    from agent.cut import cut_missing

    ctx = tc.ctx
    what = f"a preview of episode {args.episode}" if args.preview else f"episode {args.episode}"
    missing = cut_missing(ctx.canon, ctx.project_root, episode=args.episode,
                          painter=getattr(ctx.painter, "name", None), motion=not args.preview)
    if missing:
        more = f" (and {len(missing) - 8} more)" if len(missing) > 8 else ""
        return Outcome(say=f"I cannot render {what} yet: " + "; ".join(missing[:8]) + more
                       + ". `status` says what comes next.")
    renderer: EpisodeRenderer | None = getattr(ctx, "renderer", None)
    if renderer is not None:
        return Outcome(say=renderer.start(args.episode, preview=args.preview))
    ctx.ledger.append(actor="human", action="render", record_id=f"episode-{args.episode}", kind="episode",
                      inputs={"preview": args.preview, "request": tc.text}, note=f"render {what}")
    steps: list[str] = []
    try:
        result = render_now(ctx, args.episode, preview=args.preview,
                            progress=lambda f, m: steps.append(m) if m.startswith("warning:") else None)
    except StoryreelError as exc:
        return Outcome(say=f"The render of {what} stopped: {exc}")
    files = ", ".join(ctx.rel(p) for p in (result.mp4, getattr(result, "srt", None)) if p)
    warned = "".join(f"\n- {w}" for w in (*dict.fromkeys(getattr(result, "warnings", ()) or ()),))
    return Outcome(say=f"Rendered {what}: {files} ({result.duration_s:.1f} s)."
                       + (f" Out of date in it:{warned}" if warned else ""))


@dataclass(frozen=True)
class Undone:
    """What an undo did: the records it wrote (the one asked about first) and a sentence for the chat."""

    records: list[Record]
    say: str
    structure: str | None = None     # the structure proposal undone as a whole, if it was one

    @property
    def record(self) -> Record:
        return self.records[0]


def undo_change(ctx: DirectorContext, record_id: str | None = None, revision: int | None = None, *,
                actor: str = "human", request: str = "") -> Undone:
    """Undo, as the director's logged decision: the one place that decides what an undo reverts
    (the `undo` tool, `/undo` and the History & undo tab all come here).

    Without a record: the last accepted change. When that change, or the record's current
    revision (going back one), came from a structural edit (reorder, split, merge, removal), all of
    that edit is undone (`agent.structure_commit.undo`), else the record alone goes back to `revision`
    (default: the one before; 0 deletes it). InputError names a bad revision or a refused undo."""
    from agent import structure

    if record_id is None:
        decided = ctx.ledger.last_decided()
        if decided is None:
            raise InputError("nothing to undo yet: no accepted record")
        record_id = str(decided["record_id"])
        last = ctx.canon.commit_of(str((decided.get("inputs") or {}).get("proposal_id") or ""))
        if last is not None and last.kind == structure.KIND:   # a reorder, split, merge or removal: all of it
            return _undo_structure(ctx, last.proposal_id, record_id, actor)
    current = ctx.canon.get(record_id)
    if revision is None or revision == current.rev - 1:
        made_by = next((c for c in reversed(ctx.canon.commits(kind=structure.KIND))
                        if (record_id, current.rev) in c.records), None)
        if made_by is not None:   # its last change was a reorder, split, merge or removal: undo all of it
            return _undo_structure(ctx, made_by.proposal_id, record_id, actor)
    target = current.rev - 1 if revision is None else revision
    if target < 0 or target >= current.rev:
        raise InputError(f"cannot revert {record_id} (rev {current.rev}) to rev {target}; choose a revision "
                         f"between 0 and {current.rev - 1} (0 deletes it)")

    def write() -> list[Record]:
        if target == 0:
            return [ctx.canon.delete(record_id, actor=actor, note="undo: deleted")]
        return [ctx.canon.revert(record_id, target, actor=actor, note=f"undo to rev {target}")]

    # Like an accepted proposal: the revision and its commit row in one transaction, the ledger line
    # derived from it (a crash in between is completed on the next open); keyed by the revision it
    # starts from, so the same undo, run again (a step resumed), is not applied twice.
    op = f"undo-{record_id}-r{current.rev}-to{target}"
    (rec,), _ = ctx.canon.commit_proposal(op, write, kind=current.kind, actor=actor, action="revert",
                                          note=f"reverted {record_id} to rev {target}",
                                          inputs={"from_rev": current.rev, "to_rev": target,
                                                  **({"request": request} if request else {})})
    ctx.ledger.complete(ctx.canon, op)
    ctx.bible.index(rec)
    return Undone([rec], f"Reverted {record_id} to revision {target}: now rev {rec.rev}"
                  + (" (deleted)." if rec.deleted else ".") + " Undo it the same way if that was not it.")


def _undo_structure(ctx: DirectorContext, proposal_id: str, record_id: str | None, actor: str) -> Undone:
    """A structural edit undone as a whole (every record it moved, created or removed, and what was
    made since for a record it removes), one transaction."""
    from agent import structure_commit

    records = structure_commit.undo(ctx.canon, proposal_id, actor=actor)   # StructureError names what blocks it
    ctx.ledger.complete(ctx.canon, f"undo-{proposal_id}")
    for rec in records:
        ctx.bible.index(rec)
    done = ctx.canon.commit_of(proposal_id)
    summary = ((done.inputs or {}).get("summary") or done.note) if done is not None else proposal_id
    undone = {rid for rid, _ in done.records} if done is not None else set()
    extra = [r.id for r in records if r.id not in undone]
    first = sorted(records, key=lambda r: r.id != record_id)   # the record asked about first
    if not first:   # nothing needed writing (every record already as before): about the record asked
        named = record_id or next((rid for rid, _ in done.records), None) if done is not None else record_id
        if named is None:
            raise InputError(f"structural edit {proposal_id} changed no record; there is nothing to undo")
        first = [ctx.canon.get(named)]
    return Undone(first, f"Undone: {summary} ({len(records) - len(extra)} records back as they were)."
                  + (f" Removed with it, as they belonged to what it made: {', '.join(extra)}." if extra else "")
                  + " Undo again to redo it.", structure=proposal_id)


def undo(tc: ToolContext, args: UndoArgs) -> Outcome:
    record_id = None
    if args.record:
        record_id = resolve(Catalog.of(tc.ctx.canon), args.record,
                            ("character", "location", "prop", "scene", "shot", "series", "style", "outline", "beats",
                             "episode", "voice", "glossary"), what="record").id
    try:
        done = undo_change(tc.ctx, record_id, args.revision, actor="human", request=tc.text)
    except InputError as exc:   # a bad revision, a refused undo: the director (or the model) is told
        raise exc if isinstance(exc, ToolError) else ToolError(str(exc)) from exc
    pending, task = tc.pending, tc.state.get("task")
    if pending and task and any(r.kind in ("fact", "summary") for r in done.records):
        from agent.kinds.facts import CHECKED_KINDS, refresh_warnings

        if pending.get("kind") in CHECKED_KINDS:   # the card's continuity warnings follow the facts now
            return Outcome(say=done.say, wrote=True, prepared=refresh_warnings(tc.ctx.canon, tc.ctx, pending),
                           prepared_task={k: v for k, v in task.items() if k != "resume"})  # type: ignore[misc]
    return Outcome(say=done.say, wrote=True)


def undo_structure(tc: ToolContext, proposal_id: str) -> Outcome:
    """Undo a structural edit as a whole (every record it moved, created or removed), one transaction."""
    return Outcome(say=_undo_structure(tc.ctx, proposal_id, None, "human").say, wrote=True)


TOOLS = (
    Tool("review", "Bring a storyboard, voice or motion item to the review card now.",
         ReviewArgs, review, "actions", target=lambda a: a.item,
         refs=(("item", ("shot", "character", "location", "scene", "line")),)),
    Tool("render", "Render an episode (or a quick low-res preview); says what is still missing.",
         RenderArgs, render, "actions", read_only=True, target=lambda a: f"episode-{a.episode}"),
    Tool("undo", "Revert a record to an earlier revision (default: the last accepted change).",
         UndoArgs, undo, "actions", target=lambda a: a.record),
)
