"""Proposals whose drafts are media or translations: images (reference sheets, backgrounds, panels),
voices (castings, takes) and dubbed lines. Called from `agent.nodes.propose`; each returns the
Command that puts the draft on the review card.
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command
from pydantic import ValidationError

from agent import storyboard, voices
from agent.context import DirectorContext
from agent.llm import generate_structured, unescape_entities
from agent.schemas import PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.errors import LLMOutputError, StoryreelError


def propose_visual(state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
                    ) -> Command[Literal["review"]]:
    """Paint N candidates for a reference sheet, a background or a panel."""
    kind = task["kind"]
    try:
        pending["data"] = storyboard.paint_candidates(
            ctx, task, proposal_id=pending["proposal_id"], attempt=pending["attempt"],
            notes=list(state.get("notes") or []))
        if pending["data"]["animatic"]:
            pending["warnings"] = ["Animatic sketches from the offline renderer; configure a diffusers "
                                   "checkpoint ([painter] in project.toml) for finished anime panels."]
    except StoryreelError as exc:
        pending["failure"] = str(exc)
        if "palette colour" in pending["failure"]:  # redoing the image cannot fix the style's palette
            pending["failure"] += ("; fix the palette on the style card: say “make the palette navy, crimson, "
                                   "cream” (or /edit palette …), then redo this image")
    data = pending["data"] or {}
    ctx.ledger.append(actor="assistant", action="propose" if not pending["failure"] else "propose-failed",
                      record_id=task.get("subject"), kind=kind,
                      inputs={"proposal_id": pending["proposal_id"], "task": task,
                              "notes": state.get("notes") or [],
                              "seeds": [c["seed"] for c in data.get("candidates", [])]},
                      note=pending["failure"] or f"{len(data.get('candidates', []))} candidates")
    title = PROPOSAL_TITLES.get(kind, kind)
    name = data.get("subject_name", task.get("subject"))
    text = (f"Proposal: {title} — {name}, {len(data.get('candidates', []))} candidates. Pick one on the card."
            if not pending["failure"] else
            f"I could not draw the {title.lower()} for {task.get('subject')}: {pending['failure']}. "
            "Press Redo to try again, or upload your own image.")
    return Command(goto="review", update={"pending": pending, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def finish_proposal(state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending,
                     summary: str) -> Command[Literal["review"]]:
    kind = task["kind"]
    data = pending["data"] or {}
    ctx.ledger.append(actor="assistant", action="propose" if not pending["failure"] else "propose-failed",
                      record_id=task.get("subject") or task.get("scene_id"), kind=kind,
                      inputs={"proposal_id": pending["proposal_id"], "task": task,
                              "notes": state.get("notes") or [], "data": data},
                      note=pending["failure"] or summary)
    title = PROPOSAL_TITLES.get(kind, kind)
    text = (f"Proposal: {title} — {summary}. Review it on the card." if not pending["failure"] else
            f"I could not make the {title.lower()}: {pending['failure']}. Press Redo to try again"
            + (", or upload your own recording." if kind == "take" else "."))
    return Command(goto="review", update={"pending": pending, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def propose_audio(state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
                   ) -> Command[Literal["review"]]:
    """A casting with an audition, or a take of one line, synthesised with the character's voice."""
    try:
        if task["kind"] == "casting":
            pending["data"] = voices.propose_casting(ctx, task, proposal_id=pending["proposal_id"],
                                                     notes=list(state.get("notes") or []),
                                                     overrides=task.get("overrides"))
            if pending["data"]["engine"] == "espeak":
                pending["warnings"] = ["espeak-ng is a robotic last-resort voice."]
            pending["warnings"] = [*(pending.get("warnings") or []),
                                   *voices.casting_clashes(ctx.canon, pending["data"])]
            summary = (f"{pending['data']['subject_name']}: {pending['data']['engine']}, rate "
                       f"{pending['data']['rate']}, pitch {pending['data']['pitch_semitones']:+} st")
        else:
            pending["data"] = voices.propose_take(ctx, task, proposal_id=pending["proposal_id"],
                                                  attempt=pending["attempt"], overrides=task.get("overrides"))
            summary = f"{pending['data']['speaker']}: “{pending['data']['text'][:60]}” ({task.get('language')})"
            if pending["data"]["engine"] == "espeak":
                hint = "espeak-ng is a robotic last-resort voice."
                if task.get("language") == "ja":
                    from tools.backends.voice_kokoro import INSTALL_HINT

                    hint += f" For a natural offline Japanese voice add Kokoro: {INSTALL_HINT}"
                pending["warnings"] = [hint]
    except StoryreelError as exc:
        pending["failure"] = str(exc)
        summary = ""
    return finish_proposal(state, ctx, task, pending, summary)


def propose_translation(state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
                         ) -> Command[Literal["review"]]:
    """The scene's lines in the dub language, keeping the glossary, flagged when much longer."""
    scene = ctx.canon.get(task["scene_id"])
    language = task["language"]
    source = [str(ln.get("line", "")) for ln in scene.data.get("lines", [])]
    model = voices.translation_model(len(source))
    messages = voices.translation_messages(ctx.canon, scene, language)
    notes = list(state.get("notes") or [])
    if notes:
        messages[-1]["content"] += "\nThe director's notes: " + " | ".join(notes[-3:])

    def check(p: Any) -> list[str]:
        return voices.glossary_problems(source, p.lines, language, ctx.canon)
    try:
        try:
            lines = generate_structured(ctx.llm, messages, model, retries=ctx.repair_retries, check=check,
                                        seed=pending["seed"]).lines
        except LLMOutputError as exc:
            parsed = parse_lenient(model, exc)
            if parsed is None:
                raise
            lines = parsed["lines"]
        pending["data"] = {"scene_id": scene.id, "language": language, "source": source, "lines": lines}
        pending["warnings"] = (voices.glossary_problems(source, lines, language, ctx.canon)
                               + voices.length_warnings(source, lines, language))
        pending["retrieved"] = [scene.id, "glossary"]
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    return finish_proposal(state, ctx, task, pending, f"{scene.id} in {language}")


unescape = unescape_entities   # (the one implementation lives with the structured-output parser)


def parse_lenient(model: Any, exc: LLMOutputError) -> dict[str, Any] | None:
    """The failed reply's object when it is schema-valid (it only broke a canon rule), else None."""
    partial = getattr(exc, "partial", None)
    if not isinstance(partial, dict):
        return None
    try:
        return model.model_validate(partial).model_dump()
    except (ValidationError, ValueError):
        return None
