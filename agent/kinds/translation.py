"""A scene's dialogue dubbed into another language, line by line: the model translates keeping the
project's glossary, lines much longer than the source are flagged, the director edits any line.
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from agent import voices
from agent.context import DirectorContext
from agent.kinds.base import Kind, finish_media, parse_lenient
from agent.kinds.cards import esc
from agent.llm import generate_structured
from agent.schemas import PROPOSAL_MODELS, PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.canon import Record
from memory.errors import LLMOutputError, StoryreelError


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
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
    return finish_media(kind, state, ctx, task, pending, f"{scene.id} in {language}")


def _write(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    return voices.write_translation(ctx.canon, dict(pending["data"] or {}), actor=actor, note=note)


def translation_card(d: dict[str, Any]) -> str:
    rows = "\n".join(f"{i}. {esc(src)}\n    → **{esc(dst)}**"
                     for i, (src, dst) in enumerate(zip(d.get("source", []), d.get("lines", [])), 1))
    return f"Scene `{esc(d.get('scene_id'))}` into **{esc(d.get('language'))}**\n\n{rows}"


KINDS = (
    Kind(name="translation", title=PROPOSAL_TITLES["translation"], schema=PROPOSAL_MODELS["translation"],
         family="voices", propose=_propose, commit=_write, card=translation_card),
)
