"""Containment: an exception inside one graph step becomes a failure card, never a locked project.

Without this, an error in a step (a drafts folder deleted under an open card, a kind the registry
does not know) is raised again every time the run is resumed, so the project could never be opened
past it. `contained` wraps each node: the step's exception is turned into a review card that names
the error, where **Redo** retries (the failed step, or a fresh proposal) and **Skip** leaves the
step. Interrupts (the review gate) and other control flow pass through untouched.
"""
from __future__ import annotations

import contextlib
import functools
import uuid
from collections.abc import Callable
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.types import Command

#: What each step was doing, for the failure card ("Saving the accepted proposal failed: ...").
STEP_LABELS = {
    "plan_next": "Planning the next proposal",
    "propose": "Making the proposal",
    "review": "Reading your decision",
    "commit": "Saving the accepted proposal",
    "respond": "Answering your message",
    "wait_input": "Reading your message",
}
#: Steps that Redo on their failure card runs again as they were (others: a fresh proposal).
RETRY_STEPS = ("plan_next", "wait_input", "respond")
MAX_ERROR_CHARS = 400


def describe(exc: BaseException) -> str:
    """`FileNotFoundError: [Errno 2] No such file...`: the type says what broke, the text where."""
    text = " ".join(str(exc).split()) or "(no message)"
    if len(text) > MAX_ERROR_CHARS:
        text = text[:MAX_ERROR_CHARS] + "…"
    from memory.errors import StoryreelError

    return text if isinstance(exc, StoryreelError) else f"{type(exc).__name__}: {text}"


def failure_update(step: str, state: dict[str, Any], exc: BaseException) -> dict[str, Any]:
    """The state update that puts a failure card for `step` on the review gate."""
    task = state.get("task") or {}
    prev = dict(state.get("pending") or {})
    first, then = (task, prev) if step == "propose" else (prev, task)   # the card being made, else shown
    kind = first.get("kind") or then.get("kind") or "step"
    way_out = ("Press Accept to try saving again, Redo for a fresh proposal, or Skip to leave this step"
               if step == "commit" else "Press Redo to try again, or Skip to leave this step")
    failure = f"{STEP_LABELS.get(step, step)} failed: {describe(exc)}. {way_out}."
    if step == "propose" or not prev:
        pending: dict[str, Any] = {
            "proposal_id": uuid.uuid4().hex[:12], "kind": kind, "target_id": task.get("target_id"),
            "data": None, "warnings": [], "retrieved": [],
            "attempt": int(prev.get("attempt", 0)) + 1 if prev.get("kind") == kind else 1,
            "seed": int(prev.get("seed", 0)) + 1}
    else:   # keep the proposal on the card: Accept retries the save, Redo makes a fresh one
        pending = {k: v for k, v in prev.items() if k not in ("decided", "choice", "upload")}
    pending.update(failure=failure, failed_step=step, had_card=bool(prev))
    return {"pending": pending, "review_error": None,
            "messages": [{"role": "assistant", "content": f"✖ {failure}"}]}


def contained(step: str, node: Callable[..., Any]) -> Callable[..., Any]:
    """`node` with its exceptions turned into a failure card (see module docstring).

    `functools.wraps` keeps the node's signature and return annotation, which langgraph reads to
    inject the runtime and to know the node's destinations.
    """
    @functools.wraps(node)
    def run(state: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return node(state, *args, **kwargs)
        except GraphBubbleUp:   # interrupt() and parent commands are control flow, not failures
            raise
        except Exception as exc:  # noqa: BLE001 - this is the containment boundary
            update = failure_update(step, state, exc)
            runtime = kwargs.get("runtime") or next((a for a in args if hasattr(a, "context")), None)
            ledger = getattr(getattr(runtime, "context", None), "ledger", None)
            if ledger is not None:
                with contextlib.suppress(Exception):   # the card matters more than the log line
                    ledger.append(actor="assistant", action="step-failed", kind=update["pending"].get("kind"),
                                  inputs={"step": step, "task": state.get("task"),
                                          "proposal_id": update["pending"].get("proposal_id")},
                                  note=update["pending"]["failure"])
            return Command(goto="review", update=update)
    return run


def leave_step(state: dict[str, Any], decision: dict[str, Any], ctx: Any) -> Command:
    """Skip: drop the task on the card and go on with an interrupted one, or wait for a message."""
    pending = state.get("pending") or {}
    task = state.get("task") or {}
    kind = pending.get("kind") or task.get("kind") or "step"
    with contextlib.suppress(Exception):   # leaving a broken step must not depend on the ledger
        ctx.ledger.append(actor=decision.get("actor", "human"), action="skip", record_id=pending.get("target_id"),
                          kind=kind, inputs={"proposal_id": pending.get("proposal_id"), "task": task},
                          note=f"skipped {kind}")
    stash = list(state.get("stash") or [])
    goto = "plan_next" if stash else "wait_input"
    text = (f"Skipped the {kind} step. " + ("Back to what we were doing before." if stash else
            "Send a message to go on; I will come back to it when you ask, or on the next plan."))
    return Command(goto=goto, update={"pending": None, "task": None, "notes": [], "rejected": [],
                                      "review_error": None,
                                      "messages": [{"role": "assistant", "content": text}]})


def retry_failed_step(state: dict[str, Any]) -> Command | None:
    """Redo on a failure card of a step that is re-run as it was (planning, answering)."""
    pending = state.get("pending") or {}
    step = pending.get("failed_step")
    if step not in RETRY_STEPS:
        return None
    if step in ("plan_next", "wait_input"):
        return Command(goto=step, update={"pending": None, "review_error": None})
    # respond: answer the same message again; a card that was open before it stays open
    before = {k: v for k, v in pending.items() if k not in ("failure", "failed_step", "had_card")}
    return Command(goto="respond", update={"pending": before if pending.get("had_card") else None,
                                           "review_error": None})
