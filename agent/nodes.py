"""The director's steps. Costly work (retrieval, the LLM, painting, voicing) happens only in
`propose` and `respond` (`agent.chat`); `review` and `wait_input` only read state, ask, and route.
What differs per proposal kind (planning, generation, checks, review hooks, commit) is the kind's,
looked up in the registry (`agent.kinds`): these steps only route.

Graph: plan_next -> propose -> review -> (commit -> plan_next | propose | respond | review)
       plan_next -> wait_input -> (plan_next | respond | propose)
       respond -> (review | wait_input | propose | plan_next)
"""
from __future__ import annotations

import uuid
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command

from agent import guard, prompts, revisions
from agent.context import DirectorContext
from agent.kinds import get_kind, lookup
from agent.kinds import next_task as planned_task
from agent.kinds.base import Draft, log_accepted_warnings, names, refresh_checks
from agent.review import ReviewRequest, ask
from agent.state import DirectorState, Pending, Task
from memory.canon import Record
from memory.faults import crash_point

MAX_ATTEMPTS = 12   # proposals for one task (rejections + redos) before the agent asks for direction


# ----------------------------------------------------------------------------- planning


def plan_next(state: DirectorState, runtime: Runtime[DirectorContext]
              ) -> Command[Literal["propose", "wait_input", "review"]]:
    stash = list(state.get("stash") or [])
    task = stash.pop() if stash else None
    if task is not None and task.get("resume"):  # an interrupted card comes back as it was
        resume = dict(task["resume"])
        task = {k: v for k, v in task.items() if k != "resume"}  # type: ignore[assignment]
        pending = resume["pending"]
        title = lookup(pending.get("kind", "")).title
        return Command(goto="review", update={
            "stash": stash, "task": task, "pending": pending, "notes": resume.get("notes", []),
            "rejected": resume.get("rejected", []), "review_error": None,
            "messages": [{"role": "assistant", "content": f"Back to the proposal you were reviewing: {title} — "
                          f"{prompts.summarise(pending.get('kind', ''), pending.get('data'))}."}]})
    if task is None and state.get("premise"):
        task = planned_task(runtime.context.canon, runtime.context)   # the kinds' planners, in order
    base = {"stash": stash, "notes": [], "rejected": [], "pending": None, "review_error": None}
    if task is None:
        return Command(goto="wait_input", update={**base, "task": None})
    return Command(goto="propose", update={**base, "task": task})


def _open_task(state: DirectorState, task: dict[str, Any]) -> dict[str, Any]:
    """Review a storyboard item now (a click in the storyboard); the current task resumes after."""
    stash = list(state.get("stash") or [])
    entry = revisions.stash_entry(state)
    if entry is not None:
        stash.append(entry)
    return {"task": {"target_id": None, **task}, "stash": stash, "notes": [], "rejected": [], "pending": None}


def wait_input(state: DirectorState, runtime: Runtime[DirectorContext]
               ) -> Command[Literal["plan_next", "respond", "wait_input", "propose"]]:
    """Wait for a message: the premise first, then questions and change requests."""
    premise = state.get("premise")
    cast = names(runtime.context.canon, "character") if premise else []
    example = f"make {cast[0]} older" if cast else "add a character who lives by the sea"
    prompt = ("Tell me the premise of your series: who, where, and what goes wrong. Your vision comes "
              "first: the next card is yours to fill in (themes, the feeling, never-rules)."
              if not premise else
              "The writers' room is up to date. Ask about the bible, request a change "
              f"(\"{example}\"), or add a character, location or prop.")
    decision = ask(ReviewRequest(kind="input", prompt=prompt))
    if decision["type"] == "open":
        return Command(goto="propose", update=_open_task(state, decision["task"]))
    if decision["type"] != "chat":
        return Command(goto="wait_input")
    text = decision["text"].strip()
    user = {"role": "user", "content": text}
    if not premise:
        return Command(goto="plan_next", update={"premise": text, "messages": [user]})
    return Command(goto="respond", update={"reply": text, "messages": [user]})


# ----------------------------------------------------------------------------- proposing


def _shape_fix(kind: str, data: dict[str, Any], cast: list[str], places: list[str]) -> list[str]:
    """The kind's shape fixes on `data` (tests call it with a draft's cast and places)."""
    found = get_kind(kind)
    return found.shape_fix(data, Draft(found, None, {}, cast=cast, places=places))  # type: ignore[arg-type]


def propose(state: DirectorState, runtime: Runtime[DirectorContext]) -> Command[Literal["review"]]:
    """Draft the task's proposal with its kind (retrieval and the model, or painting, voicing,
    translating, animating) and put it on the card."""
    ctx = runtime.context
    task: Task = state["task"] or {"kind": "series"}
    kind = get_kind(task["kind"])
    prev = state.get("pending") or {}
    attempt = int(prev.get("attempt", 0)) + 1 if prev.get("kind") == kind.name else 1
    seed = int(prev.get("seed", 0)) + 1 if prev else 0
    pending: Pending = {"proposal_id": uuid.uuid4().hex[:12], "kind": kind.name,
                        "target_id": task.get("target_id"), "data": None, "failure": None,
                        "warnings": [], "retrieved": [], "attempt": attempt, "seed": seed}
    command = kind.propose(kind, state, ctx, task, pending)
    if pending.get("data") and not pending.get("failure"):   # the card's checks (CardCheck): continuity, vision
        pending.update(refresh_checks(ctx.canon, ctx, pending))   # the Command holds this dict
    return command


# ----------------------------------------------------------------------------- reviewing


def review_request(state: DirectorState) -> ReviewRequest:
    pending = state.get("pending") or {}
    kind = pending.get("kind", "")
    title = lookup(kind).title
    if pending.get("target_id"):
        title = f"{title} (revision of {pending['target_id']})"
    return ReviewRequest(kind=kind, proposal_id=pending.get("proposal_id", ""), title=title,
                         data=pending.get("data"), target_id=pending.get("target_id"),
                         failure=pending.get("failure"), warnings=list(pending.get("warnings") or []),
                         error=state.get("review_error"), attempt=int(pending.get("attempt", 1)),
                         **({"diff": pending["diff"]} if pending.get("diff") else {}),
                         **({"draft": pending["draft"], "fallbacks": list(pending.get("fallbacks") or [])}
                            if pending.get("draft") else {}))


def review(state: DirectorState, runtime: Runtime[DirectorContext]
           ) -> Command[Literal["commit", "propose", "respond", "review", "wait_input", "plan_next"]]:
    """The review gate: accept, edit, reject with a note, redo, skip, or chat. What accept, edit
    and upload mean, and what a rejection does beyond remembering its note, is the kind's."""
    decision = ask(review_request(state))
    pending = state.get("pending") or {}
    kind, decided = lookup(pending.get("kind", "")), decision["type"]
    if decided == "skip":  # leave this step (a failure card, or any card): agent.guard
        return guard.leave_step(state, dict(decision), runtime.context)
    if decided == "redo" and (retry := guard.retry_failed_step(state)) is not None:
        return retry
    if decided == "open":
        return Command(goto="propose", update=_open_task(state, decision["task"]))
    if decided == "chat":
        text = decision["text"].strip()
        if (own := kind.on_chat(state, text)) is not None:   # e.g. "draft the vision for me"
            return own
        return Command(goto="respond", update={"reply": text,
                                               "messages": [{"role": "user", "content": text}]})
    if decided == "jobs_done":   # a drafting card's jobs are done (sent by the session): the kind's
        if not (pending.get("data") or {}).get("drafting"):
            return Command(goto="review")   # not drafting (any more): the card stays as it is
        return kind.review(kind, state, dict(decision), pending)
    if decided in ("accept", "edit", "upload"):
        command = kind.review(kind, state, dict(decision), pending)
        if getattr(command, "goto", None) == "commit":   # accepted with the card's warnings: say which
            log_accepted_warnings(runtime.context.ledger, kind.name, pending, dict(decision))
        return command
    ctx = runtime.context
    attempt = int(pending.get("attempt", 1))
    note = decision.get("note", "").strip()
    ctx.ledger.append(actor=decision.get("actor", "human"), action=decided, record_id=pending.get("target_id"),
                      kind=kind.name, inputs={"proposal_id": pending.get("proposal_id"), "note": note},
                      note=note)
    if attempt >= MAX_ATTEMPTS:
        return Command(goto="wait_input", update={
            "pending": None, "task": None, "messages": [{"role": "assistant", "content": (
                f"That was draft {attempt} of this {kind.name}; I'll stop here so we don't loop. Tell me "
                "what you want in a message, or write it yourself with Edit on a new proposal.")}]})
    extra = kind.on_reject(state, ctx, pending, note, decided)
    if isinstance(extra, Command):
        return extra
    update: dict[str, Any] = dict(extra)
    if decided == "reject":
        update["rejected"] = [*(state.get("rejected") or []), prompts.summarise(kind.name, pending.get("data"))]
        if note:
            update["notes"] = [*(state.get("notes") or []), note]
            update["messages"] = [{"role": "user", "content": f"(rejected) {note}"}]
    return Command(goto="propose", update=update)


# ----------------------------------------------------------------------------- committing


def commit(state: DirectorState, runtime: Runtime[DirectorContext]) -> Command[Literal["plan_next"]]:
    """Write the accepted proposal to canon, the ledger and the bible index, then plan the next one.

    Canon first, in one transaction keyed by the proposal id (`Canon.commit_proposal`): this node
    re-runs from its first line after a crash, and a second run returns the stored records instead
    of writing them again. The ledger lines are derived from canon's commit row (`Ledger.complete`
    appends whichever a crash left out), and the bible index is a cache rebuilt from canon.
    """
    ctx = runtime.context
    pending = state.get("pending") or {}
    kind, pid = get_kind(pending["kind"]), pending["proposal_id"]
    actor = pending.get("actor", "human")
    action = pending.get("decided", "accept")
    note = f"proposal {pid}"

    def write() -> list[Record]:
        # Runs inside the canon transaction: every canon write below belongs to this proposal.
        return kind.commit(kind, ctx, pending, actor, note)

    records, _ = ctx.canon.commit_proposal(
        pid, write, kind=kind.name, actor=actor, action=action, note=note,
        inputs={"retrieved": pending.get("retrieved", []), "notes": state.get("notes") or [],
                "premise": state.get("premise"),
                # for the authorship report: what an edit changed, and which model proposed it
                **({"proposed": pending.get("proposed")} if action == "edit" else {}),
                **({"author": "director"} if pending.get("author") == "director" else {}),
                **({"model": str(model)} if (model := getattr(ctx.llm, "model", None)) else {})})
    crash_point("after-canon-write")
    ctx.ledger.complete(ctx.canon, pid)
    crash_point("after-ledger-write")
    for rec in records:
        ctx.bible.index(ctx.canon.get(rec.id))  # the record as it is now (a later undo included)
        crash_point("mid-bible-index")
    names = ", ".join(f"{r.id} (rev {r.rev})" for r in records) or "nothing to change"
    verb = {"edit": "Edited and accepted", "upload": "Your upload is accepted as"}.get(action, "Accepted")
    who = " automatically (--auto-accept)" if actor == "auto" else ""
    return Command(goto="plan_next", update={
        "pending": None, "task": None, "review_error": None,
        "messages": [{"role": "assistant", "content": f"{verb}{who}: {names}. It is canon now."}]})


