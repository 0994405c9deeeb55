"""The `structure` proposal kind: structural edits of the story (agent.structure: remove, reorder,
split, merge) on the review card.

The card comes ready from a tool (agent.tools.revise), planned from canon without a model; Redo
plans it again from canon as it is now; Reject drops it (nothing was changed); there is nothing to
edit; Accept writes every record it lists in the proposal's one canon transaction.
"""
from __future__ import annotations

from typing import Any

from langgraph.types import Command

from agent.kinds.base import Kind
from agent.structure import KIND, plan
from agent.structure_commit import card_markdown, write
from memory.canon import Record
from memory.errors import InputError


def propose_hook(kind: Any, state: Any, ctx: Any, task: dict[str, Any], pending: dict[str, Any]) -> Any:
    """Redo: the same structural edit planned again from canon as it is now."""
    spec = task.get("structure") or {}
    try:
        pending["data"] = plan(str(spec.get("op")), ctx.canon, dict(spec.get("args") or {}))
        pending["warnings"] = list(pending["data"].get("warnings", []))
        pending["retrieved"] = sorted(pending["data"]["base"])
        text = f"Proposal: {pending['data']['summary']}. Review it on the card."
    except InputError as exc:
        pending["data"], pending["failure"] = None, str(exc)
        text = f"I could not plan that change again: {exc}. Skip this step to leave it."
    ctx.ledger.append(actor="assistant", action="propose" if pending["data"] else "propose-failed", record_id=None,
                      kind=KIND, inputs={"proposal_id": pending["proposal_id"], "task": dict(task),
                                         "data": pending["data"]}, note=pending.get("failure") or text)
    return Command(goto="review", update={"pending": pending, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def review_hook(kind: Any, state: Any, decision: dict[str, Any], pending: dict[str, Any]) -> Any:
    """Accept commits the change as planned; there are no fields to edit and nothing to upload."""
    if decision.get("type") != "accept":
        return Command(goto="review", update={"review_error": "A structural change has no fields to edit: Accept "
                                              "it, or Reject it (with a note) and ask for another."})
    if not pending.get("data"):
        return Command(goto="review", update={"review_error": "There is no change to accept: press Redo, or Skip."})
    return Command(goto="commit", update={"pending": {**pending, "decided": "accept",
                                                      "actor": decision.get("actor", "human")}})


def reject_hook(state: Any, ctx: Any, pending: dict[str, Any], note: str, decided: str) -> Any:
    """Reject drops the proposal (canon was never changed); Redo plans it again."""
    if decided != "reject":
        return {}
    return Command(goto="plan_next", update={"pending": None, "task": None, "notes": [], "rejected": [],
                                             "messages": [{"role": "assistant", "content": (
                                                 "Rejected: nothing changed. " + (f"(“{note}”) " if note else "")
                                                 + "Ask for the change you want instead.")}]})


def commit_hook(kind: Any, ctx: Any, pending: dict[str, Any], actor: str, note: str) -> list[Record]:
    """The accepted change's records (run inside the proposal's canon transaction)."""
    return write(ctx.canon, dict(pending.get("data") or {}), actor=actor,
                 note=f"{note}: {(pending.get('data') or {}).get('summary', '')}")


STRUCTURE = Kind(name=KIND, title="Structural change", schema=None, propose=propose_hook, review=review_hook,
                 on_reject=reject_hook, commit=commit_hook, card=card_markdown, edit="none",
                 summarise=lambda data: str(data.get("summary") or KIND)[:120],
                 failure_help="Press **Redo** to plan it again from canon as it is now, or **Skip** to leave it.")


KINDS = (STRUCTURE,)
