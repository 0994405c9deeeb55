"""Free chat between proposals: questions answered from the bible, change requests turned into
revision proposals, "add a character", dubbing requests and pronunciation fixes.
"""
from __future__ import annotations

import re
from typing import Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import prompts, voices
from agent.context import DirectorContext
from agent.state import DirectorState, Task
from memory.canon import Record
from memory.errors import StoryreelError

# What questions are answered from: the bible's prose (not shots or translated lines).
BIBLE_KINDS = ("series", "style", "character", "location", "prop", "outline", "episode", "beats", "scene",
               "shot", "voice", "glossary", "line")
EDITABLE_KINDS = ("character", "location", "prop", "style", "series", "outline", "beats", "scene")
QUESTION_START = re.compile(
    r"^\s*(what|who|where|when|why|how|which|does|do|is|are|can|could|tell me|describe|list|show)\b",
    re.IGNORECASE)
ADD_REQUEST = re.compile(r"\b(add|new|another|create)\b.*\b(character|location|place|prop)\b", re.IGNORECASE)
DUB_REQUEST = re.compile(r"\bdub\b.*?\binto\s+([A-Za-z]+)", re.IGNORECASE)
PRONOUNCE_REQUEST = re.compile(r"\b(?:pronounce|say)\s+[\"“]?(.+?)[\"”]?\s+as\s+[\"“]?(.+?)[\"”]?\s*$",
                               re.IGNORECASE)

def _find_target(ctx: DirectorContext, text: str) -> Record | None:
    """The canon record a change request is about: a name mentioned in it, else the best bible hit."""
    lowered = text.casefold()
    best: Record | None = None
    for rec in ctx.canon.list():
        name = str(rec.data.get("name") or rec.data.get("title") or "")
        if rec.kind in EDITABLE_KINDS and name and re.search(rf"\b{re.escape(name.casefold())}\b", lowered):
            if best is None or len(name) > len(str(best.data.get("name") or best.data.get("title"))):
                best = rec
    if best is None and re.search(r"\b(palette|style|tone|colou?rs?|logline|art)\b", lowered):
        best = ctx.canon.live("style")
    return best


def respond(state: DirectorState, runtime: Runtime[DirectorContext]
            ) -> Command[Literal["review", "wait_input", "propose", "plan_next"]]:
    """Answer a question from the bible, or turn a change request into a proposal."""
    ctx = runtime.context
    text = (state.get("reply") or "").strip()
    pending = state.get("pending")
    back = "review" if pending else "wait_input"
    if text.endswith("?") or QUESTION_START.match(text):
        hits = ctx.bible.search(text, kinds=[k for k in BIBLE_KINDS if k not in ("shot", "line")], k=4)
        texts = [h.text for h in hits]
        try:
            answer = ctx.llm.complete(prompts.answer_messages(text, texts), temperature=0.2,
                                      max_tokens=160).strip()
        except StoryreelError as exc:
            answer = f"(I could not ask the model: {exc})"
        if hits:
            answer += "\n\nFrom the bible: " + " · ".join(t[:200] for t in texts[:2])
        return Command(goto=back, update={"reply": None,
                                          "messages": [{"role": "assistant", "content": answer}]})
    dub = DUB_REQUEST.search(text)
    say = PRONOUNCE_REQUEST.search(text)
    if dub or say:
        try:
            if dub:
                code = voices.language_code(dub.group(1))
                langs = voices.dub_languages(ctx.canon)
                rec = ctx.canon.upsert("glossary", {"languages": sorted({*langs, code})}, actor="human",
                                       record_id="dub-languages", note=f"dub into {code}")
                reply = (f"Dubbing episode 1 into {voices.LANGUAGE_NAMES.get(code, code)}: I'll propose the "
                         "translations scene by scene, then takes in each character's voice.")
            else:
                entries, _ = voices.lexicon(ctx.canon)
                entries[say.group(1).strip()] = say.group(2).strip()
                rec = ctx.canon.upsert("glossary", {"entries": entries}, actor="human", record_id="lexicon",
                                       note=f"pronounce {say.group(1)!r} as {say.group(2)!r}")
                reply = f"Noted: “{say.group(1)}” is said “{say.group(2)}” in every take from now on."
        except StoryreelError as exc:
            return Command(goto=back, update={"reply": None, "messages": [{"role": "assistant", "content": str(exc)}]})
        ctx.bible.index(rec)
        ctx.ledger.append(actor="human", action="edit", record_id=rec.id, kind=rec.kind, rev=rec.rev,
                          inputs={"request": text}, note=text[:120])
        stash = list(state.get("stash") or [])
        if pending and state.get("task"):
            stash.append(state["task"])
        return Command(goto="plan_next", update={"reply": None, "stash": stash,
                                                 "messages": [{"role": "assistant", "content": reply}]})
    add = ADD_REQUEST.search(text)
    if add:
        kind = {"place": "location"}.get(add.group(2).lower(), add.group(2).lower())
        task: Task = {"kind": kind, "target_id": None, "request": text}
    else:
        target = _find_target(ctx, text)
        if target is None or (pending and pending.get("data") and
                              str(pending["data"].get("name", "")).casefold()
                              == str(target.data.get("name", "")).casefold() and not pending.get("target_id")):
            if pending:  # a change to the draft on the card: a note for the next take
                return Command(goto="propose", update={
                    "reply": None, "notes": [*(state.get("notes") or []), text],
                    "rejected": [*(state.get("rejected") or []),
                                 prompts.summarise(pending.get("kind", ""), pending.get("data"))]})
            return Command(goto="wait_input", update={"reply": None, "messages": [{
                "role": "assistant", "content": "I couldn't tell which record to change. Name the "
                "character, location or prop (for example: \"make Ren older\")."}]})
        kind = "series" if target.kind in ("style", "series") else target.kind
        task = {"kind": kind, "target_id": target.id, "request": text}
        if kind in ("beats", "scene"):
            task.update(episode=target.data.get("episode", 1), number=target.data.get("number", 1))
    stash = list(state.get("stash") or [])
    if pending and state.get("task"):
        stash.append(state["task"])  # come back to the interrupted proposal afterwards
    return Command(goto="propose", update={"reply": None, "task": task, "stash": stash, "notes": [],
                                           "rejected": [], "pending": None})
