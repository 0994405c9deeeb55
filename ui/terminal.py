"""`storyreel chat`: the writers' room in a terminal, line by line from stdin (scriptable).

Commands: /accept, /edit FIELD VALUE or /edit {json}, /reject NOTE, /redo, /undo [RECORD [REV]],
/bible, /help, /quit. Anything else is a chat message (the premise, a question, a change request).
"""
from __future__ import annotations

import html
import json
import re
from typing import Any, TextIO

from memory.errors import InputError, StoryreelError
from ui.cards import bible_markdown, card_markdown
from ui.settings import Settings

HELP = """Commands:
  /accept                 accept the proposal on the card
  /edit FIELD VALUE       change one field, then accept (lists: comma-separated)
  /edit {"field": ...}    change several fields (JSON), then accept
  /reject NOTE            reject; the agent revises using your note
  /redo                   a fresh take
  /undo [RECORD [REV]]    revert a record (default: the last accepted change)
  /bible                  show the story bible
  /quit                   leave (everything is saved)
Anything else is a message: the premise, a question ("what does Aiko wear?") or a change."""


def _strip_md(text: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    return text.replace("**", "").replace("### ", "== ").replace("#### ", "-- ")


def apply_edit(data: dict[str, Any], arg: str) -> dict[str, Any]:
    """`/edit age 28`, `/edit look_tags red scarf, black hair`, or `/edit {"age": "28"}`."""
    arg = arg.strip()
    if arg.startswith("{"):
        try:
            changes = json.loads(arg)
        except json.JSONDecodeError as exc:
            raise InputError(f"/edit JSON is not valid ({exc.msg} at column {exc.colno})") from exc
        if not isinstance(changes, dict):
            raise InputError("/edit JSON must be an object of field: value")
        return {**data, **changes}
    field, _, value = arg.partition(" ")
    if field not in data:
        raise InputError(f"unknown field {field!r}; fields: {', '.join(data)}")
    old = data[field]
    new: Any = value.strip()
    if isinstance(old, list) and (not old or isinstance(old[0], str)):
        new = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(old, list):
        try:
            new = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InputError(f"{field} is a list of objects: give it as JSON ({exc.msg})") from exc
    elif isinstance(old, int):
        try:
            new = int(value)
        except ValueError as exc:
            raise InputError(f"{field} must be a whole number, not {value!r}") from exc
    return {**data, field: new}


def run_chat(settings: Settings, stdin: TextIO, stdout: TextIO) -> int:
    from agent.brain import DEMO_NOTICE, close_chat_model, open_chat_model
    from ui.session import open_session

    project = settings.open_project()
    model = open_chat_model(settings.llm_settings(project), log_path=project.root / "state" / "llm-server.log")
    try:
        session = open_session(project, model, targets=settings.targets)
    except BaseException:
        close_chat_model(model)
        raise

    def say(text: str) -> None:
        stdout.write(text + "\n")
        stdout.flush()

    seen = 0
    try:
        with session:
            say(f"Storyreel · {project.name} · model: {model.description}")
            if getattr(model, "is_demo", False):
                say(DEMO_NOTICE)
            view = session.start()
            while True:
                for msg in view.messages[seen:]:
                    who = {"user": "you", "assistant": "director's assistant"}.get(msg["role"], msg["role"])
                    say(f"[{who}] {msg['content']}")
                seen = len(view.messages)
                say(_strip_md(card_markdown(view.pending)))
                stdout.write("> ")
                stdout.flush()
                line = stdin.readline()
                if not line:
                    say("")
                    return 0
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                cmd, _, arg = line.strip().partition(" ")
                try:
                    if cmd == "/quit":
                        return 0
                    elif cmd == "/help":
                        say(HELP)
                    elif cmd == "/bible":
                        say(_strip_md(bible_markdown(session.records())))
                    elif cmd == "/accept":
                        view = session.decide({"type": "accept"})
                    elif cmd == "/redo":
                        view = session.decide({"type": "redo"})
                    elif cmd == "/reject":
                        view = session.decide({"type": "reject", "note": arg})
                    elif cmd == "/edit":
                        data = (view.pending or {}).get("data") or {}
                        view = session.decide({"type": "edit", "data": apply_edit(dict(data), arg)})
                    elif cmd == "/undo":
                        parts = arg.split()
                        rec = session.undo(parts[0] if parts else None,
                                           int(parts[1]) if len(parts) > 1 else None)
                        say(f"Reverted {rec.id}: now rev {rec.rev}" + (" (deleted)" if rec.deleted else ""))
                    elif cmd.startswith("/"):
                        say(f"unknown command {cmd}; /help lists them")
                    else:
                        view = session.send(line)
                except (StoryreelError, ValueError) as exc:
                    say(f"! {exc}")
                    view = session.view()
    finally:
        close_chat_model(model)
