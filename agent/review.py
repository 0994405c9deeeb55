"""The one place that calls `interrupt()`: review requests out, typed decisions in.

A node that calls `interrupt()` re-runs from its first line when resumed, so review nodes only read
state and route; generation happens in the node before them.
"""
from __future__ import annotations

from typing import Any, Literal, TypedDict

from langgraph.types import interrupt

from memory.errors import InputError

DecisionType = Literal["accept", "edit", "reject", "redo", "chat", "upload", "open"]
DECISION_TYPES = ("accept", "edit", "reject", "redo", "chat", "upload", "open")
ACTORS = ("human", "auto")
MAX_MESSAGE_CHARS = 20_000


class Decision(TypedDict, total=False):
    type: DecisionType
    data: dict[str, Any]      # edit: the full edited proposal
    note: str                 # reject: what to change
    text: str                 # chat: the director's message
    actor: str                # "human" (default) or "auto" (headless --auto-accept)
    choice: int               # accept: which image candidate (0-based)
    path: str                 # upload: the imported file, relative to the project
    task: dict[str, Any]      # open: a storyboard item to review now, e.g. {"kind": "panel", "subject": shot}


class ReviewRequest(TypedDict, total=False):
    kind: str                 # "input" when the agent waits for a message, else the proposal kind
    proposal_id: str
    title: str
    data: dict[str, Any] | None
    target_id: str | None
    failure: str | None
    warnings: list[str]
    error: str | None         # an invalid edit to fix
    attempt: int
    prompt: str               # what the agent asks for, for "input"


def check_decision(raw: Any) -> Decision:
    """Validate a decision from the UI, CLI or a resumed checkpoint; InputError names the problem."""
    if not isinstance(raw, dict) or raw.get("type") not in DECISION_TYPES:
        raise InputError(f"unknown decision {raw!r}; use one of {', '.join(DECISION_TYPES)}")
    decision: Decision = dict(raw)  # type: ignore[assignment]
    actor = decision.setdefault("actor", "human")
    if actor not in ACTORS:
        raise InputError(f"unknown actor {actor!r}; decisions are made by {ACTORS}")
    if decision["type"] == "edit" and not isinstance(decision.get("data"), dict):
        raise InputError("an edit decision needs the edited proposal as 'data'")
    if decision["type"] == "chat":
        check_message(decision.get("text", ""))
    if decision["type"] == "upload" and not isinstance(decision.get("path"), str):
        raise InputError("an upload decision needs the imported file's project-relative 'path'")
    if decision["type"] == "open" and not isinstance(decision.get("task"), dict):
        raise InputError("an open decision needs a 'task' such as {'kind': 'panel', 'subject': SHOT_ID}")
    if "choice" in decision and not isinstance(decision["choice"], int):
        raise InputError(f"choice must be a candidate number, not {decision['choice']!r}")
    if decision["type"] == "reject" and len(decision.get("note", "")) > MAX_MESSAGE_CHARS:
        raise InputError(f"the rejection note is {len(decision['note']):,} characters; "
                         f"keep it under {MAX_MESSAGE_CHARS:,}")
    return decision


def check_message(text: Any) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InputError("the message is empty; type a premise, a question or a change")
    if len(text) > MAX_MESSAGE_CHARS:
        raise InputError(
            f"the message is {len(text):,} characters; the limit is {MAX_MESSAGE_CHARS:,}. "
            "Nothing was sent: summarise it, or paste the key part")
    return text


def ask(request: ReviewRequest) -> Decision:
    """Pause the graph until the director decides; the resume value is validated."""
    return check_decision(interrupt(request))
