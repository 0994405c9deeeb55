"""The one place that calls `interrupt()`: review requests out, typed decisions in.

A node that calls `interrupt()` re-runs from its first line when resumed, so review nodes only read
state and route; generation happens in the node before them.
"""
from __future__ import annotations

from typing import Any, Literal, TypedDict

from langgraph.types import interrupt

from memory.errors import InputError

DecisionType = Literal["accept", "edit", "reject", "redo", "chat", "upload", "open", "skip", "jobs_done"]
DECISION_TYPES = ("accept", "edit", "reject", "redo", "chat", "upload", "open", "skip", "jobs_done")
#: Fields of proposal data that hold project paths; an edit may not point them anywhere else.
PATH_FIELDS = ("path", "clip", "preview", "audition", "layers", "variants", "upload")
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
    proposal_id: str          # the card the decision was made on; the session refuses it for any other card
    results: list[dict[str, Any]]  # jobs_done: each job's {"job_id", "files": {name: path}, "data"}, in
                                   # the card's order (sent by the session when a drafting card's jobs are done)


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
    diff: dict[str, list[Any]]  # a revision: field -> [canon value, proposed value], changed fields only
                                # (list items as "shots[2].characters", 1-based)
    draft: dict[str, Any] | None  # a failed card: a valid starting draft for Edit (the model's usable
                                  # fields, safe defaults for the rest; see `fallbacks`)
    fallbacks: list[str]      # which fields of `draft` are defaults, and what the model had written


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
    if decision["type"] == "upload":
        check_project_path(decision["path"], "the upload path")
    if decision["type"] == "edit":
        _check_paths_in(decision["data"], "the edit")
    if decision["type"] == "open":
        check_open_task(decision.get("task"))
    if decision["type"] == "jobs_done":
        check_job_results(decision.get("results"))
    if "proposal_id" in decision and not isinstance(decision["proposal_id"], str):
        raise InputError(f"proposal_id must be the card's id (a string), not {decision['proposal_id']!r}")
    if "choice" in decision and not isinstance(decision["choice"], int):
        raise InputError(f"choice must be a candidate number, not {decision['choice']!r}")
    if decision["type"] == "reject" and len(decision.get("note", "")) > MAX_MESSAGE_CHARS:
        raise InputError(f"the rejection note is {len(decision['note']):,} characters; "
                         f"keep it under {MAX_MESSAGE_CHARS:,}")
    return decision


def check_job_results(results: Any) -> list[dict[str, Any]]:
    """The results a jobs_done decision carries: per job, its files as project-relative paths."""
    if not isinstance(results, list) or not all(
            isinstance(r, dict) and isinstance(r.get("files"), dict) and isinstance(r.get("data", {}), dict)
            for r in results):
        raise InputError(f"a jobs_done decision needs 'results': one {{'files': {{name: path}}, 'data': {{…}}}} "
                         f"per job, not {results!r:.200}; the session sends it when a card's jobs are done")
    for r in results:
        for name, path in r["files"].items():
            check_project_path(path, f"the job result file {name!r}")
    return results


def check_project_path(path: Any, what: str = "the path") -> str:
    """A lexical check of a project-relative path from a decision or an edit (no project needed).

    The real resolve (symlinks) happens where the path is used, through `Project.resolve`.
    """
    if not isinstance(path, str) or not path.strip():
        raise InputError(f"{what} {path!r} is not a project-relative path such as assets/uploads/x.png")
    problem = None
    if "\x00" in path:
        problem = "contains NUL"
    elif path.startswith(("/", "\\", "~")) or (len(path) > 1 and path[1] == ":"):
        problem = "is absolute"
    elif ".." in path.replace("\\", "/").split("/"):
        problem = "contains '..'"
    if problem:
        raise InputError(f"{what} {path!r} {problem}; it must be a path inside the project, relative to its "
                         "folder (e.g. assets/uploads/x.png): nothing outside the project is read")
    return path


def _check_paths_in(value: Any, where: str, key: str | None = None) -> None:
    """Every path-holding field (PATH_FIELDS) anywhere in proposal data must stay in the project."""
    if isinstance(value, dict):
        for k, v in value.items():
            inner = k if k in PATH_FIELDS else key if key in ("layers", "variants") else None
            _check_paths_in(v, f"{where}.{k}", inner)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_paths_in(v, f"{where}[{i}]", key)
    elif isinstance(value, str) and key is not None and value:
        check_project_path(value, where)


def open_kinds() -> dict[str, str]:
    """What an `open` decision may put on the card (the kinds whose `opens` flag is set, in
    agent.kinds), each with the task field naming its subject."""
    from agent.kinds import KINDS

    return {name: kind.opens for name, kind in KINDS.items() if kind.opens}


def check_open_task(task: Any) -> dict[str, Any]:
    """An item to put on the card: a known kind and the id of its subject."""
    from agent.kinds import lookup

    if not isinstance(task, dict):
        raise InputError("an open decision needs a 'task' such as {'kind': 'panel', 'subject': SHOT_ID}")
    kind = task.get("kind")
    field = lookup(kind if isinstance(kind, str) else None).opens
    if not field:
        raise InputError(f"cannot open {kind!r}; open one of {', '.join(open_kinds())}")
    subject = task.get(field)
    if not isinstance(subject, str) or not subject.strip() or len(subject) > 200 or "\x00" in subject:
        raise InputError(f"opening a {kind} needs its record id as {field!r} (e.g. scene-ep1-1-s1), "
                         f"not {subject!r}")
    return task


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
