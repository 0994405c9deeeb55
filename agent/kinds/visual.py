"""Pictures: a character's reference sheet, a location's background, a shot's panel. The draft is N
painted candidates; the director picks one (or uploads their own) and the pick becomes a versioned
asset (`agent.storyboard`). A panel note asking for what the painter cannot add by itself becomes a
shot-plan revision.
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from agent import notes as note_parser
from agent import storyboard
from agent.context import DirectorContext
from agent.kinds.base import Kind, _card_error, _to_commit, names
from agent.kinds.cards import esc
from agent.schemas import PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.canon import Record
from memory.errors import StoryreelError


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    """Paint N candidates for a reference sheet, a background or a panel."""
    try:
        pending["data"] = storyboard.paint_candidates(
            ctx, task, proposal_id=pending["proposal_id"], attempt=pending["attempt"],
            notes=list(state.get("notes") or []))
        if pending["data"]["animatic"]:
            pending["warnings"] = [("Animatic sketches from the offline renderer; configure a diffusers "
                                    "checkpoint ([painter] in project.toml) for finished anime panels.")]
    except StoryreelError as exc:
        pending["failure"] = str(exc)
        if "palette colour" in pending["failure"]:  # redoing the image cannot fix the style's palette
            pending["failure"] += ("; fix the palette on the style card: say “make the palette navy, crimson, "
                                   "cream” (or /edit palette …), then redo this image")
    data = pending["data"] or {}
    ctx.ledger.append(actor="assistant", action="propose" if not pending["failure"] else "propose-failed",
                      record_id=task.get("subject"), kind=kind.name,
                      inputs={"proposal_id": pending["proposal_id"], "task": task,
                              "notes": state.get("notes") or [],
                              "seeds": [c["seed"] for c in data.get("candidates", [])]},
                      note=pending["failure"] or f"{len(data.get('candidates', []))} candidates")
    name = data.get("subject_name", task.get("subject"))
    text = (f"Proposal: {kind.title} — {name}, {len(data.get('candidates', []))} candidates. Pick one on the card."
            if not pending["failure"] else
            f"I could not draw the {kind.title.lower()} for {task.get('subject')}: {pending['failure']}. "
            "Press Redo to try again, or upload your own image.")
    return Command(goto="review", update={"pending": pending, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _decide(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """Upload your own, or accept (Edit is accept here) the candidate picked on the card."""
    if decision["type"] == "upload":
        return _to_commit(pending, decision, "upload", upload=decision["path"])
    if not (pending.get("data") or {}).get("candidates"):
        return _card_error("There is no image to accept: press Redo, or upload your own.")
    return _to_commit(pending, decision, "accept", choice=int(decision.get("choice", 0)))


def _panel_note(state: DirectorState, ctx: DirectorContext, pending: Pending, note: str, decided: str
                ) -> Command | dict[str, Any]:
    """A panel note asking for what the painter cannot add by itself (a cast member who is not in
    the shot, another framing) becomes a shot-plan revision; the panel is redrawn after it."""
    if decided != "reject" or not note or not pending.get("data"):
        return {}
    subject = (pending.get("data") or {}).get("subject") or (state.get("task") or {}).get("subject")
    try:
        shot = ctx.canon.get(str(subject))
    except StoryreelError:
        return {}
    changes = note_parser.panel_note_changes(note, shot.data, names(ctx.canon, "character"))
    if not changes or not shot.data.get("scene_id"):
        return {}
    scene_id = shot.data["scene_id"]
    panel_task = {k: v for k, v in (state.get("task") or {}).items() if k != "resume"}
    what = "; ".join(filter(None, [
        f"add {', '.join(changes['add_characters'])}" if changes.get("add_characters") else "",
        f"framing {shot.data.get('framing')} → {changes['framing']}" if changes.get("framing") else ""]))
    task: Task = {"kind": "shots", "target_id": scene_id, "scene_id": scene_id, "request": note,
                  "shot_edit": {"shot_id": shot.id, **changes}}
    return Command(goto="propose", update={
        "task": task, "stash": [*(state.get("stash") or []), panel_task], "notes": [], "rejected": [],
        "pending": None, "messages": [
            {"role": "user", "content": f"(rejected) {note}"},
            {"role": "assistant", "content": f"The painter draws what the shot plan says, so this needs a "
             f"shot-plan revision for {shot.id} ({what}). Accept it and the panel is drawn again."}]})


def _write(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    return [storyboard.accept_image(ctx, pending["data"] or {}, choice=pending.get("choice"),
                                    upload=pending.get("upload"), actor=actor, note=note)]


def image_card(data: dict[str, Any]) -> str:
    """The candidates with their seeds; the studio shows the images under the card."""
    seeds = ", ".join(f"#{i + 1}: seed {c.get('seed')}" for i, c in enumerate(data.get("candidates", [])))
    text = (f"**{esc(data.get('subject_name', data.get('subject')))}** — painter `{esc(data.get('painter'))}`"
            f"\n\nCandidates ({seeds}). Click one below to pick it, then **Accept**; or "
            "**Reject with note**, **Redo**, or upload your own.")
    if data.get("animatic"):
        text += "\n\n*Animatic sketch (offline storyboard renderer), not final art.*"
    return text


def _image_kind(name: str, **hooks: Any) -> Kind:
    return Kind(name=name, title=PROPOSAL_TITLES[name], schema=None, family="storyboard", propose=_propose,
                review=_decide, commit=_write, card=image_card, media="images", edit="none", upload=True,
                failure_help="Press **Redo** to try again, or **upload your own** image.", **hooks)


KINDS = (
    # the storyboard's planner: reference sheets, backgrounds, then each scene's shot plan and panels
    _image_kind("reference", plan=storyboard.next_storyboard_task),
    _image_kind("background"),
    _image_kind("panel", on_reject=_panel_note),
)
