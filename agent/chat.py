"""Free direction between proposals: the director's message becomes tool calls (agent.tools), chosen
by a router (agent.router: the offline router for the embedded demo model, native tool calling for a
configured one), and `respond` routes the graph by what the tools did:

- read-only tools answer at once; the card on screen stays;
- proposal tools give tasks (and ready proposals) for the one review gate, in order: the first is
  proposed now, the others and the card that was on screen wait in the stash and come back after;
- a request that cannot be told (two records could be meant) is one short clarifying question;
- a change to a new draft on the card ("make her older" on a character not yet in canon) is a note
  for its next draft, as before.

Nothing here writes canon except the director's direct, logged instructions (dub, pronounce, undo).
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import prompts, revisions
from agent.context import DirectorContext
from agent.kinds import lookup
from agent.router import Route, router_for
from agent.state import DirectorState, Pending, Task
from agent.tools import Outcome, ToolContext
from agent.tools.ask import bible_excerpt  # noqa: F401 - re-exported (ui.cards and tests use it here)
from memory.errors import StoryreelError

# What questions are answered from: the bible's prose (not shots or translated lines).
BIBLE_KINDS = ("series", "style", "character", "location", "prop", "outline", "episode", "beats", "scene",
               "shot", "voice", "glossary", "line")


def _say(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def _draft_note(state: DirectorState, route: Route) -> bool:
    """The message is about the new draft on the card (not yet canon): a note for its next draft."""
    pending = state.get("pending") or {}
    if (not pending or pending.get("target_id") or not lookup(pending.get("kind")).chat_notes
            or not pending.get("data")):
        return False
    if route.question:
        return True
    if len(route.calls) != 1 or route.calls[0].name != "revise":
        return False
    name = str((pending.get("data") or {}).get("name", "")).casefold()
    target = str(route.calls[0].target or "")
    return bool(name) and (target.casefold() == name or target.endswith("-" + name.replace(" ", "-")))


def respond(state: DirectorState, runtime: Runtime[DirectorContext]
            ) -> Command[Literal["review", "wait_input", "propose", "plan_next"]]:
    """Act on the director's message through the tools the router chose."""
    ctx = runtime.context
    text = (state.get("reply") or "").strip()
    pending = state.get("pending")
    back = "review" if pending else "wait_input"
    try:
        route = router_for(ctx.llm).route(text, ctx, state)
    except StoryreelError as exc:
        return Command(goto=back, update={"reply": None, "messages": [_say(f"I could not read that: {exc}")]})
    if _draft_note(state, route):
        assert pending is not None
        return Command(goto="propose", update={
            "reply": None, "notes": [*(state.get("notes") or []), text],
            "rejected": [*(state.get("rejected") or []), prompts.summarise(pending.get("kind", ""), pending.get("data"))]})
    if route.question or route.failure:
        return Command(goto=back, update={"reply": None, "messages": [_say(route.question or route.failure or "")]})
    tc = ToolContext(ctx=ctx, state=state, text=text)
    said: list[str] = []
    items: list[tuple[Task, list[str], Pending | None]] = []   # (task, notes, ready proposal)
    wrote, keep_card = False, True
    for made in route.calls:
        try:
            out: Outcome = made.run(tc)
        except StoryreelError as exc:
            said.append(str(exc))
            continue
        if out.say:
            said.append(out.say)
        if out.prepared is not None and out.prepared_task is not None:
            items.append((out.prepared_task, [], out.prepared))
        items += [(task, out.notes if i == 0 else [], None) for i, task in enumerate(out.tasks)]
        wrote = wrote or out.wrote
        keep_card = keep_card and out.keep_card
    messages = [_say("\n\n".join(said))] if said else []
    if not items:
        if wrote:  # a direct instruction: the card waits as it was (a take is voiced again)
            stash = list(state.get("stash") or [])
            entry = revisions.stash_entry(state, keep_card=keep_card)
            if entry is not None:
                stash.append(entry)
            return Command(goto="plan_next", update={"reply": None, "stash": stash, "messages": messages})
        if not messages:
            messages = [_say("I did not find anything to do in that message. Ask about the bible, or ask for a "
                             "change (for example “make Aiko older”); `status` tells what is left.")]
        return Command(goto=back, update={"reply": None, "messages": messages})
    task, notes, ready = items[0]
    replaces = ready is None and _same_card(task, state)
    # The card on screen waits (as it was) until every requested proposal is decided, in order; a
    # new draft of the card itself ("redraw this one with more rain") replaces it instead.
    stash = list(state.get("stash") or [])
    entry = None if replaces else revisions.stash_entry(state, keep_card=not _replans_card(ctx, items, state))
    if entry is not None and not any(_same_subject(entry, queued) for queued, _, _ in items):
        stash.append(entry)
    for queued, _, queued_ready in reversed(items[1:]):
        stash.append(_waiting(queued, queued_ready))
    update: dict[str, Any] = {"reply": None, "task": task, "stash": stash, "notes": notes, "rejected": [],
                              "messages": messages}
    if ready is not None:
        return Command(goto="review", update={**update, "pending": ready, "review_error": None})
    if replaces:  # the next draft of the same card: its attempt and seed move on, its notes add up
        assert pending is not None
        return Command(goto="propose", update={
            **update, "task": {**(state.get("task") or {}), **task},
            "notes": [*(state.get("notes") or []), *notes],
            "rejected": [*(state.get("rejected") or []), prompts.summarise(pending.get("kind", ""), pending.get("data"))]})
    return Command(goto="propose", update={**update, "pending": None})


def _same_subject(a: Task, b: Task) -> bool:
    keys = [k for k in ("subject", "scene_id", "target_id") if a.get(k) or b.get(k)]
    return a.get("kind") == b.get("kind") and bool(keys) and all(a.get(k) == b.get(k) for k in keys)


def _replans_card(ctx: DirectorContext, items: list[tuple[Task, list[str], Pending | None]],
                  state: DirectorState) -> bool:
    """A shot-plan change for the scene of the panel on the card: the panel is drawn again after it
    (its old candidates show the old plan), so the card is not kept as it was."""
    pending = state.get("pending") or {}
    if lookup(pending.get("kind")).media != "images":   # a picture on the card (of a shot, or not)
        return False
    shot = ctx.canon.live(str((pending.get("data") or {}).get("subject") or (state.get("task") or {}).get("subject")))
    scene = shot.data.get("scene_id") if shot is not None and shot.kind == "shot" else None
    # a kind drafted from its scene (`needs_scene`: the shot plan) for the picture's scene
    return scene is not None and any(lookup(task.get("kind")).needs_scene and task.get("scene_id") == scene
                                     for task, _, _ in items)


def _same_card(task: Task, state: DirectorState) -> bool:
    """`task` asks for a new draft of the proposal on the card (same kind, same subject)."""
    current, pending = state.get("task") or {}, state.get("pending") or {}
    if not pending or pending.get("kind") != task.get("kind") or task.get("target_id"):
        return False
    keys = [k for k in ("subject", "scene_id") if task.get(k)]
    return bool(keys) and all(task.get(k) == current.get(k) for k in keys)


def _waiting(task: Task, ready: Pending | None) -> Task:
    """A queued task; a ready proposal comes back on the card as it is (not generated again)."""
    if ready is None:
        return task
    return {**task, "resume": {"pending": dict(ready), "notes": [], "rejected": []}}  # type: ignore[typeddict-item]
