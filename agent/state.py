"""Graph state: small, JSON-like, checkpointed. References and text, never images or clients."""
from __future__ import annotations

from typing import Annotated, Any, NotRequired, TypedDict

from memory.transcript import bounded_messages


class ChatMessage(TypedDict):
    role: str          # "user" | "assistant" | "system"
    content: str
    id: NotRequired[str]   # given by `bounded_messages`; the transcript stores each message once by it


class Task(TypedDict, total=False):
    """What the agent is proposing now."""

    kind: str                 # series | character | location | prop | outline | beats | scene
                              # | shots | reference | background | panel
    subject: str              # the record an image is of (character, location or shot id)
    scene_id: str             # the scene a shot plan is for
    target_id: str | None     # a record being revised (a change request), else a new record
    request: str              # the director's change request, for revisions
    shot_edit: dict[str, Any]  # a shot-plan revision asked from a panel note: shot_id, add_characters, framing
    resume: dict[str, Any]    # a stashed task: the proposal that was on the card (pending, notes,
                              # rejected), put back as it was instead of generated again
    episode: int
    number: int               # scene number
    suggest: bool             # the vision: the director asked for the model's suggestion


class Pending(TypedDict, total=False):
    """The proposal on the review card."""

    proposal_id: str
    kind: str
    target_id: str | None
    data: dict[str, Any] | None      # None when generation failed
    failure: str | None              # a clear error with a retry button on the card
    warnings: list[str]
    retrieved: list[str]             # bible record ids the generation read
    attempt: int
    seed: int
    decided: str                     # "accept" | "edit", set by the review gate
    actor: str                       # "human" | "auto"
    choice: int                      # the accepted image candidate
    upload: str | None               # the director's own image, relative to the project
    diff: dict[str, list[Any]]       # a revision: field -> [canon value, proposed value]
    draft: dict[str, Any] | None     # a failed proposal: a valid starting draft (model fields + defaults)
    fallbacks: list[str]             # which fields of `draft` are defaults, and why
    proposed: dict[str, Any] | None  # an edit: the proposal as it was on the card (None: written from scratch)
    continuity: list[str]            # continuity warnings on the card (agent.kinds.facts); accepting logs them
    author: str                      # "director": the card holds the director's own text (the vision)


class DirectorState(TypedDict, total=False):
    premise: str
    messages: Annotated[list[ChatMessage], bounded_messages]   # a bounded tail; all of it: memory.transcript
    task: Task | None
    pending: Pending | None
    stash: list[Task]                # tasks interrupted by a change request, resumed afterwards
    notes: list[str]                 # rejection notes for the current task, newest last
    rejected: list[str]              # short summaries of rejected drafts for the current task
    review_error: str | None         # an invalid edit, shown on the card
    route: str | None                # where `respond` sends the graph next
    reply: str | None                # the director's last chat message, for `respond`
