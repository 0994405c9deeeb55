"""The session's branches (no gradio): open, switch, compare, adopt, discard, reopen.

`SessionBranches` is the `BranchDesk` the branch tools (agent/tools/branches.py) call through the
run context, and what the studio's Branches panel calls. On a branch the session's canon is a
`BranchCanon`, its bible a `BranchBible`, its ledger names the branch, and the conversation runs on
the branch's own checkpoint thread (`memory.branches.thread_id`), so every card and decision there
is reviewed as usual and recorded as the branch's. Moving the conversation between threads waits
for the graph step in flight to end (`apply_pending`): a tool asks, the session moves after it.
"""
from __future__ import annotations

import difflib
import html
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from memory.branches import MAIN, BranchBible, BranchCanon, BranchError, Branches, RecordDiff, thread_id
from memory.errors import RecordNotFoundError
from memory.ledger import Ledger

if TYPE_CHECKING:
    from ui.session import DirectorSession


class SessionBranches:
    """The branches of one open session (see the module docstring)."""

    def __init__(self, session: DirectorSession, base_thread: str) -> None:
        self.session = session
        self.base_thread = base_thread
        self.current = MAIN
        self.main_canon = session.canon
        self.main_bible = session.bible
        self.main_ledger = session.ledger
        self.pending: str | None = None

    @property
    def branches(self) -> Branches:
        return Branches(self.main_canon, self.main_ledger)

    def names(self) -> list[dict[str, Any]]:
        """Every branch with its status and question, main first (the studio's picker)."""
        rows = [{"name": MAIN, "status": "main", "question": "", "changed": 0}]
        for b in self.branches.list():
            rows.append({"name": b.name, "status": b.status, "question": b.question,
                         "changed": len(self.branches.changed(b.name))})
        return rows

    # --- the BranchDesk of the chat tools ------------------------------------------------

    def open(self, name: str, question: str) -> str:
        branch = self.branches.open(name, question, actor=self.session.actor)
        self.pending = branch.name
        about = f" ({question})" if question else ""
        return (f"Opened branch “{branch.name}”{about} from main as it is now. The conversation moves onto "
                "it: what you accept there stays on the branch until you adopt it.")

    def switch(self, name: str) -> str:
        if name != MAIN:
            branch = self.branches.get(name)
            if branch.status != "open":
                raise BranchError(f"branch {name!r} is {branch.status}; "
                                  + ("reopen it first" if branch.status == "discarded" else
                                     "it is part of main now") + ", or switch to another branch")
        self.pending = name
        return f"Moving to {'the main line' if name == MAIN else 'branch “' + name + '”'}."

    def compare(self, left: str, right: str, subject: str | None = None, episode: int | None = None) -> str:
        ids = [self._record_id(subject)] if subject else None
        diffs = self.branches.compare(left, right, record_ids=ids, episode=episode)
        scope = f" for {subject}" if subject else (f" in episode {episode}" if episode else "")
        if not diffs:
            return f"{left} and {right} are the same{scope}."
        parts = [f"{len(diffs)} record(s) differ between {left} and {right}{scope}:"]
        for d in diffs:
            parts.append(f"{d.record_id}: " + summary(d))
        return "\n".join(parts)

    def adopt(self, name: str, prefer_branch: bool = False) -> str:
        written = self.branches.adopt(name, actor=self.session.actor, prefer_branch=prefer_branch)
        for rec in written:
            self.main_bible.index(rec)
        if self.current == name:
            self.pending = MAIN
        return (f"Adopted branch “{name}”: {len(written)} record(s) are main's next revisions "
                f"({', '.join(r.id for r in written) or 'nothing differed'}). The conversation is on main.")

    def discard(self, name: str, note: str = "") -> str:
        self.branches.discard(name, actor=self.session.actor, note=note)
        if self.current == name:
            self.pending = MAIN
        return f"Discarded branch “{name}” (nothing is deleted: “reopen the {name} branch” brings it back)."

    def reopen(self, name: str) -> str:
        self.branches.reopen(name, actor=self.session.actor)
        return f"Reopened branch “{name}”; “switch to the {name} branch” to work on it."

    # --- moving the session ---------------------------------------------------------------

    def apply_pending(self) -> bool:
        """Move the session to the branch a tool asked for (after the step that asked); a thread
        that never ran starts now. Returns whether it moved."""
        name, self.pending = self.pending, None
        if name is None or name == self.current:
            return False
        s = self.session
        premise = s.graph.get_state(s.config).values.get("premise") or ""   # the series is the same one
        self.move(name)
        snap = s.graph.get_state(s.config)
        if not snap.values and not snap.next:
            where = "the main line" if name == MAIN else f"branch “{name}”"
            question = self.branches.get(name).question if name != MAIN else ""
            where += f" — {question}" if question else ""
            start: dict[str, Any] = {"messages": [{"role": "assistant", "content": f"You are on {where}."}],
                                     "stash": []}
            if premise:
                start["premise"] = premise
            s._invoke(start)
        return True

    def move(self, name: str) -> None:
        """Point the session's canon, bible, ledger and checkpoint thread at `name` (main or a branch)."""
        s = self.session
        if name == MAIN:
            canon, bible, ledger = self.main_canon, self.main_bible, self.main_ledger
        else:
            canon = BranchCanon(self.main_canon.db_path, name)
            bible = BranchBible(self.main_bible, canon)
            bible.sync()
            ledger = Ledger(self.main_ledger.path, branch=name)
            ledger.complete(canon)   # a branch commit a crash left without its ledger lines gets them now
        old = s.canon
        s.canon, s.bible, s.ledger = canon, bible, ledger
        s.context = replace(s.context, canon=canon, bible=bible, ledger=ledger)
        s.config = {**s.config, "configurable": {**s.config["configurable"],
                                                 "thread_id": thread_id(self.base_thread, name)}}
        self.current = name
        if old is not self.main_canon:
            old.close()

    def close(self) -> None:
        """Close a branch view the session is on (main's stores are the session's to close)."""
        if self.session.canon is not self.main_canon:
            self.session.canon.close()
            self.session.canon = self.main_canon
            self.session.bible = self.main_bible

    def _record_id(self, subject: str) -> str:
        canon = self.session.canon
        try:
            return canon.get(subject).id
        except RecordNotFoundError:
            pass
        for kind in ("character", "location", "prop", "scene", "episode"):
            found = canon.find_by_name(kind, subject)
            if found is not None:
                return found.id
        raise BranchError(f"no record {subject!r} to compare; name a character, place, prop or scene, or "
                          "give its id")


# --- compare views (the studio's Branches panel) ----------------------------------------------------


def summary(diff: RecordDiff) -> str:
    """One line: which fields differ, old → new (short)."""
    if diff.left is None:
        return "only on the right"
    if diff.right is None:
        return "only on the left (or deleted on the right)"
    keys = sorted(k for k in set(diff.left) | set(diff.right) if diff.left.get(k) != diff.right.get(k))
    return "; ".join(f"{k}: {_short(diff.left.get(k))} → {_short(diff.right.get(k))}" for k in keys)


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_html(diff: RecordDiff, left: str, right: str) -> str:
    """A side-by-side text diff of one record (difflib's HTML table)."""
    def lines(data: dict | None) -> list[str]:
        return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True).splitlines() if data else []

    table = difflib.HtmlDiff(wrapcolumn=60).make_table(
        lines(diff.left), lines(diff.right), fromdesc=html.escape(left), todesc=html.escape(right),
        context=True, numlines=2)
    return f"<h4>{html.escape(diff.record_id)} ({html.escape(diff.kind)})</h4>{table}"


MEDIA_KEYS = ("path", "image", "audio", "clip", "preview")


def media_pairs(diffs: list[RecordDiff]) -> list[tuple[str, str | None, str | None]]:
    """(record id, left file, right file) of panels and takes that differ: shown side by side."""
    pairs = []
    for d in diffs:
        if d.kind not in ("panel", "take"):
            continue
        pick = [next((str(x[k]) for k in MEDIA_KEYS if isinstance((x or {}).get(k), str)), None)
                for x in (d.left, d.right)]
        pairs.append((d.record_id, pick[0], pick[1]))
    return pairs


def compare_view(session: DirectorSession, left: str, right: str, *, subject: str | None = None,
                 episode: int | None = None) -> dict[str, Any]:
    """What the Branches panel shows for a comparison: an HTML diff per record, panels and takes
    side by side, and each side's render of the episode when there is one."""
    from agent.cut import last_render

    desk: SessionBranches = session.context.branches
    ids = [desk._record_id(subject)] if subject else None
    diffs = desk.branches.compare(left, right, record_ids=ids, episode=episode)
    renders = {}
    if episode is not None:
        for side in (left, right):
            files = last_render(session.project.root, episode, branch=side) or {}
            renders[side] = files.get("mp4")
    return {"html": "".join(diff_html(d, left, right) for d in diffs) or "<p>No differences.</p>",
            "summary": [f"{d.record_id}: {summary(d)}" for d in diffs],
            "media": media_pairs(diffs), "renders": renders}


# --- the studio's Branches panel (ui/app.py mounts it) -------------------------------------------------


def _file_url(session: DirectorSession, rel: str) -> str:
    from urllib.parse import quote

    return "/gradio_api/file=" + quote(str(session.project.resolve(rel)))


def _media_html(session: DirectorSession, rel: str | None) -> str:
    if not rel:
        return "<i>none</i>"
    url = html.escape(_file_url(session, rel))
    if rel.lower().endswith((".wav", ".mp3", ".m4a", ".ogg", ".flac")):
        return f'<audio controls preload="none" src="{url}"></audio>'
    if rel.lower().endswith((".mp4", ".webm")):
        return f'<video controls preload="none" width="180" src="{url}"></video>'
    return f'<img src="{url}" style="max-width:180px" alt="{html.escape(rel)}">'


def panel_status(session: DirectorSession) -> str:
    """Which line the studio works on, and every branch with its status and question."""
    desk: SessionBranches = session.context.branches
    lines = [f"**Working on:** {'main' if desk.current == MAIN else 'branch ' + desk.current}", ""]
    for row in desk.names()[1:]:
        question = f" — {row['question']}" if row["question"] else ""
        lines.append(f"- `{row['name']}` ({row['status']}, {row['changed']} record(s) changed){question}")
    if len(lines) == 2:
        lines.append("No branches yet: say “what if …?” in the chat to open one.")
    return "\n".join(lines)


def panel_compare_html(session: DirectorSession, left: str, right: str, subject: str | None = None,
                       episode: int | None = None) -> str:
    """The compare view: a text diff per record, panels and takes side by side, both renders."""
    if not left or not right or left == right:
        return "<p>Pick two different lines (main or a branch) to compare.</p>"
    view = compare_view(session, left, right, subject=subject or None, episode=episode)
    parts = [view["html"]]
    if view["media"]:
        rows = "".join(f"<tr><td>{html.escape(rid)}</td><td>{_media_html(session, a)}</td>"
                       f"<td>{_media_html(session, b)}</td></tr>" for rid, a, b in view["media"])
        parts.append(f"<table class='branch-media'><tr><th></th><th>{html.escape(left)}</th>"
                     f"<th>{html.escape(right)}</th></tr>{rows}</table>")
    if view["renders"]:
        cells = "".join(f"<td><b>{html.escape(side)}</b><br>"
                        + (_media_html(session, str(path.relative_to(session.project.root)))
                           if path else "<i>not rendered</i>") + "</td>"
                        for side, path in view["renders"].items())
        parts.append(f"<table class='branch-renders'><tr>{cells}</tr></table>")
    return "".join(parts)


def panel_act(session: DirectorSession, action: str, name: str) -> str:
    """Adopt, discard or reopen `name` from the panel (under the session's lock), then move the
    conversation if that asked for it; returns what happened, for the panel's status line."""
    desk: SessionBranches = session.context.branches
    if not name or name == MAIN:
        raise BranchError(f"pick a branch to {action} (main is the main line)")
    with session._mutex:
        said = {"adopt": lambda: desk.adopt(name), "discard": lambda: desk.discard(name),
                "reopen": lambda: desk.reopen(name)}[action]()
        desk.apply_pending()
    return said
