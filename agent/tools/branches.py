"""Branch tools: "what if Ren dies in episode 3?" as a named branch of canon (memory/branches.py).

`open_branch` opens one from main as it is now and moves the conversation onto it; work there is
proposed and reviewed as usual, on the branch's own checkpoint thread, and never touches main.
`switch_branch` moves between branches (and back to `main`), `compare_branches` answers with what
differs, `adopt_branch` makes a branch's revisions main's next ones (logged), `discard_branch`
sets one aside (nothing is deleted) and `reopen_branch` brings a discarded one back. Each is the
director's own logged instruction, through the session's `BranchDesk` (`ctx.branches`).
"""
from __future__ import annotations

import re as _re
from typing import Protocol

from pydantic import BaseModel, Field

from agent.tools import Outcome, Tool, ToolContext, ToolError
from memory.errors import InputError


class BranchDesk(Protocol):
    """What the session offers the branch tools. Moving the conversation takes effect after the
    current step (`switch` only asks for it)."""

    current: str

    def open(self, name: str, question: str) -> str: ...   # the branch's name; switches to it
    def switch(self, name: str) -> str: ...
    def compare(self, left: str, right: str, subject: str | None, episode: int | None) -> str: ...
    def adopt(self, name: str, prefer_branch: bool) -> str: ...
    def discard(self, name: str, note: str) -> str: ...
    def reopen(self, name: str) -> str: ...


class OpenBranchArgs(BaseModel):
    name: str | None = Field(default=None, max_length=80, description="a short name for the branch "
                             "(e.g. 'ren-dies'); omit to make one from the question")
    question: str = Field(default="", max_length=500, description="the what-if the branch explores")


class BranchArgs(BaseModel):
    name: str | None = Field(default=None, max_length=80, description="the branch ('main' for the main line); "
                             "omit for the branch the conversation is on")


class CompareArgs(BaseModel):
    left: str = Field(default="main", max_length=80, description="one line: 'main' or a branch name")
    right: str | None = Field(default=None, max_length=80, description="the other branch; omit for the one "
                              "the conversation is on")
    subject: str | None = Field(default=None, max_length=200, description="a record to compare (a name or id)")
    episode: int | None = Field(default=None, ge=1, le=999, description="compare only this episode's records")


class AdoptArgs(BranchArgs):
    prefer_branch: bool = Field(default=False, description="keep the branch's version of records main "
                                "changed since the branch began")


class DiscardArgs(BranchArgs):
    note: str = Field(default="", max_length=500, description="why it is set aside")


def _desk(tc: ToolContext) -> BranchDesk:
    desk = tc.ctx.branches
    if desk is None:
        raise ToolError("branches need an open studio or chat session; open the project with "
                        "`storyreel studio` or `storyreel chat`")
    return desk


def _named(tc: ToolContext, name: str | None, what: str) -> str:
    desk = _desk(tc)
    chosen = (name or "").strip() or desk.current
    if chosen == "main" and what != "switch":
        raise ToolError(f"name the branch to {what} (the conversation is on main); say e.g. "
                        f"'{what} branch ren-dies'")
    return _slug(chosen)


def _slug(name: str) -> str:
    from memory.branches import MAIN, branch_name

    return MAIN if name.strip().lower() == MAIN else branch_name(name)


def _run(step) -> str:  # type: ignore[no-untyped-def]
    try:
        return step()
    except InputError as exc:
        raise ToolError(str(exc)) from exc


def open_branch(tc: ToolContext, args: OpenBranchArgs) -> Outcome:
    from memory.branches import branch_name

    desk = _desk(tc)
    question = args.question.strip() or tc.text.strip()
    name = branch_name(args.name) if args.name else branch_name(_gist(question))
    said = _run(lambda: desk.open(name, question))
    return Outcome(say=said, wrote=True)


def _gist(question: str) -> str:
    """The words of a what-if worth naming a branch after ("what if Ren dies in episode 3?" ->
    "ren dies in episode 3")."""
    text = _re.sub(r"^\s*(let'?s\s+)?(try|explore|branch( off)?|open a branch|imagine)?\s*[:,-]?\s*", "",
                  question, flags=_re.IGNORECASE)
    text = _re.sub(r"^\s*(what|wat|waht)\s+(if|happens if)\s+", "", text, flags=_re.IGNORECASE)
    words = text.split()[:6]
    return " ".join(words) or "branch"


def switch_branch(tc: ToolContext, args: BranchArgs) -> Outcome:
    name = _named(tc, args.name or "main", "switch")
    return Outcome(say=_run(lambda: _desk(tc).switch(name)), wrote=True)


def compare_branches(tc: ToolContext, args: CompareArgs) -> Outcome:
    desk = _desk(tc)
    right = _slug(args.right) if args.right else desk.current
    left = _slug(args.left)
    if left == right:
        raise ToolError(f"both sides are {left!r}; name a branch to compare with, e.g. 'compare main "
                        "with ren-dies'")
    return Outcome(say=_run(lambda: desk.compare(left, right, args.subject, args.episode)))


def adopt_branch(tc: ToolContext, args: AdoptArgs) -> Outcome:
    name = _named(tc, args.name, "adopt")
    return Outcome(say=_run(lambda: _desk(tc).adopt(name, args.prefer_branch)), wrote=True)


def discard_branch(tc: ToolContext, args: DiscardArgs) -> Outcome:
    name = _named(tc, args.name, "discard")
    return Outcome(say=_run(lambda: _desk(tc).discard(name, args.note or tc.text)), wrote=True)


def reopen_branch(tc: ToolContext, args: BranchArgs) -> Outcome:
    name = _named(tc, args.name, "reopen")
    return Outcome(say=_run(lambda: _desk(tc).reopen(name)), wrote=True)


def _name_of(args: BranchArgs) -> str | None:
    return f"branch-{args.name}" if getattr(args, "name", None) else None


TOOLS = (
    Tool("open_branch", "Open a named branch of the story from main as it is now, to explore a what-if "
         "without touching the main line; the conversation moves onto it.", OpenBranchArgs, open_branch,
         "branches", target=_name_of),
    Tool("switch_branch", "Move the conversation to another branch, or back to 'main'.", BranchArgs,
         switch_branch, "branches", target=_name_of),
    Tool("compare_branches", "Say what differs between two branches (or a branch and main), for a record "
         "or an episode.", CompareArgs, compare_branches, "branches", read_only=True),
    Tool("adopt_branch", "Make a branch the main line: its changes become main's next revisions (logged).",
         AdoptArgs, adopt_branch, "branches", target=_name_of),
    Tool("discard_branch", "Set a branch aside (nothing is deleted; it can be reopened).", DiscardArgs,
         discard_branch, "branches", target=_name_of),
    Tool("reopen_branch", "Bring a discarded branch back.", BranchArgs, reopen_branch, "branches",
         target=_name_of),
)


# --- the offline router's arguments (agent/router.py) -------------------------------------------

_VERBS = ("discard|discrad|drop|adopt|adpot|reopen|re-open|switch|swich|swap|compare|comapre|open|keep|abandon|"
          "forget|scrap|restore|merge|make|use|change|move|go|return|back|bring|start|create|diff|the|this|that|"
          "a|an|new|other|my|our|current|to|on|onto|whole|same")
_NAMED = _re.compile(r"\bbranch(?:es)?\s+(?:called\s+|named\s+)?[\"'“]?([a-z0-9][\w-]*)|"
                     rf"[\"'“]?\b(?!(?:{_VERBS})\b)([a-z0-9][\w-]*)[\"'”]?\s+branch\b|"
                     r"\b(main)\b(?:\s+line)?|\b([a-z0-9]+(?:-[a-z0-9]+)+)\b", _re.IGNORECASE)
_NOT_NAMES = {"the", "a", "this", "that", "new", "other", "my", "our", "current", "branch", "to", "a-b", "what",
              "which", "each", "both", "these", "those", "two", "called", "named", "off", "main-line"}


def branch_names(clause: str) -> list[str]:
    """Branch names a message says, in order ("compare ren-dies with main" -> ["ren-dies", "main"])."""
    found: list[str] = []
    for match in _NAMED.finditer(clause):
        word = next(g for g in match.groups() if g).lower()
        if word not in _NOT_NAMES and not word.isdigit() and word not in found:
            found.append(word)
    return found


def router_arguments(tool: str, clause: str) -> dict:
    """The arguments of a branch tool from the director's words (the offline router's part)."""
    names = branch_names(clause)
    if tool == "open_branch":
        said = _re.search(r"\b(?:called|named)\s+[\"'“]?([\w-]+)", clause, _re.IGNORECASE)
        return {"name": said.group(1) if said else None, "question": clause}
    if tool == "compare_branches":
        others = [n for n in names if n != "main"]
        if len(names) >= 2:
            return {"left": names[0], "right": names[1]}
        return {"left": "main", "right": others[0] if others else None}
    if tool == "switch_branch":
        return {"name": names[0] if names else "main"}
    others = [n for n in names if n != "main"]
    return {"name": others[0] if others else None}
