"""`storyreel chat`: the writers' room in a terminal, line by line from stdin (scriptable).

Commands: /accept, /edit FIELD VALUE or /edit {json}, /reject NOTE, /redo, /skip, /retry,
/undo [RECORD [REV]], /bible, /help, /quit. Anything else is a chat message (the premise, a
question, a change request). With --jsonl, input lines may be JSON objects and every output line is
one JSON event (message, proposal, decision, error, waiting; README "Scriptable chat").
"""
from __future__ import annotations

import html
import json
import re
from typing import Any, TextIO

from memory.errors import InputError, StoryreelError
from ui.cards import bible_text, card_markdown
from ui.settings import Settings

HELP = """Commands:
  /accept                 accept the proposal on the card (a failed card: its safe draft)
  /edit FIELD VALUE       change one field, then accept (lists: comma-separated)
  /edit {"field": ...}    change several fields (JSON), then accept
  /reject NOTE            reject; the agent revises using your note
  /redo                   a fresh take (on a failure card: try the failed step again)
  /skip                   leave the step on the card (e.g. one that keeps failing) and go on
  /retry                  run a step that stopped half-way again
  /undo [RECORD [REV]]    revert a record (default: the last accepted change)
  /bible                  show the story bible
  /quit                   leave (everything is saved)
Anything else is a message: the premise, a question ({ask}) or a change ({change})."""


def help_text(names: list[str] | None = None) -> str:
    """The command list, with examples naming a character of this project (or none)."""
    if names:
        ask, change = f'"what does {names[0]} wear?"', f'"make {names[0]} older"'
    else:
        ask, change = '"what does the lead wear?"', '"make the lead older"'
    return HELP.replace("{ask}", ask).replace("{change}", change)


def blank_proposal(pending: dict[str, Any] | None) -> dict[str, Any]:
    """A failed card's proposal for `/edit`: the safe draft the agent salvaged, else the empty
    fields of its schema."""
    from agent.schemas import PROPOSAL_MODELS
    from ui.cards import editable
    from ui.edit_form import start_data

    if not editable(pending):
        return {}
    return start_data(PROPOSAL_MODELS[pending["kind"]], pending.get("draft"))


def _strip_md(text: str) -> str:
    """Card Markdown as terminal text: no tags, no emphasis marks, tables as aligned rows."""
    text = html.unescape(re.sub(r"<[^>]+>", "", text))
    out = []
    for line in text.splitlines():
        if re.fullmatch(r"\s*\|[-| :]+\|\s*", line):
            continue  # a table's separator row
        if line.lstrip().startswith("|"):
            line = "  " + " | ".join(c.strip() for c in line.strip().strip("|").split(" | "))
        out.append(line)
    text = "\n".join(out).replace("\\|", "|")
    return text.replace("**", "").replace("### ", "== ").replace("#### ", "-- ")


def apply_edit(data: dict[str, Any], arg: str) -> dict[str, Any]:
    """`/edit age 28`, `/edit look_tags red scarf, black hair`, or `/edit {"age": "28"}`."""
    arg = arg.strip()
    if not data:
        raise InputError("there is no proposal on the card to edit; send a message, or /redo for a new "
                         "proposal when the card shows a failure")
    if not arg:
        raise InputError(f"/edit needs a field and a value, e.g. /edit {next(iter(data))} NEW VALUE; "
                         f"fields: {', '.join(data)}")
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


def parse_undo(session: Any, arg: str) -> tuple[str | None, int | None]:
    """`/undo`, `/undo RECORD`, `/undo RECORD REV`: a revision that is not a number is refused with
    the revisions the record has."""
    parts = arg.split()
    if len(parts) > 2:
        raise InputError(f"/undo takes a record id and a revision number, e.g. /undo character-aiko 1; "
                         f"not {arg.strip()!r}")
    if len(parts) < 2:
        return (parts[0] if parts else None), None
    record_id, rev = parts
    if re.fullmatch(r"\d+", rev):
        return record_id, int(rev)
    try:
        revs = [r.rev for r in session.history(record_id)]
    except StoryreelError:
        revs = []
    have = (f"{record_id} has revisions {', '.join(map(str, revs))}" if revs
            else f"no record {record_id!r} to list revisions of (/bible shows the ids)")
    raise InputError(f"revision {rev!r} is not a number; {have} (0 deletes it), e.g. /undo {record_id} "
                     f"{max(revs[-1] - 1, 0) if revs else 1}")


class _TextOut:
    """`storyreel chat`'s plain-text output (what a person reads)."""

    def __init__(self, stdout: TextIO) -> None:
        self.stdout = stdout

    def line(self, text: str) -> None:
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def message(self, role: str, text: str) -> None:
        who = {"user": "you", "assistant": "director's assistant"}.get(role, role)
        self.line(f"[{who}] {text}")

    def info(self, text: str) -> None:
        self.line(text)

    def error(self, text: str) -> None:
        self.line(f"! {text}")

    def card(self, pending: dict[str, Any] | None) -> None:
        self.line(_strip_md(card_markdown(pending)))

    def decision(self, decision: dict[str, Any], pending: dict[str, Any] | None) -> None:
        pass  # the agent's next message says what the decision did

    def waiting(self, pending: dict[str, Any] | None) -> None:
        self.stdout.write("> ")
        self.stdout.flush()

    def end(self) -> None:
        self.line("")


class _JsonEvents(_TextOut):
    """`storyreel chat --jsonl`: one JSON event per line (README: "Scriptable chat")."""

    def __init__(self, stdout: TextIO) -> None:
        super().__init__(stdout)
        self._shown: tuple[str, str] | None = None

    def emit(self, event: dict[str, Any]) -> None:
        self.line(json.dumps(event, ensure_ascii=False, default=str))

    def message(self, role: str, text: str) -> None:
        self.emit({"event": "message", "role": role, "text": text})

    def info(self, text: str) -> None:
        self.emit({"event": "message", "role": "system", "text": text})

    def error(self, text: str) -> None:
        self.emit({"event": "error", "message": text})

    def card(self, pending: dict[str, Any] | None) -> None:
        if not pending or pending.get("kind") == "input":
            return
        shown = (str(pending.get("proposal_id")), str(pending.get("error") or ""))
        if shown == self._shown:
            return
        if self._shown and shown[0] == self._shown[0]:  # the same card, refused edit: say why
            self._shown = shown
            self.error(str(pending.get("error")))
            return
        self._shown = shown
        self.emit({"event": "proposal", "kind": pending.get("kind"), "target": pending.get("target_id"),
                   "title": pending.get("title"), "data": pending.get("data"),
                   "proposal_id": pending.get("proposal_id"), "warnings": list(pending.get("warnings") or []),
                   "failure": pending.get("failure"), **({"diff": pending["diff"]} if pending.get("diff") else {})})

    def decision(self, decision: dict[str, Any], pending: dict[str, Any] | None) -> None:
        self.emit({"event": "decision", "type": decision.get("type"), "proposal_id": decision.get("proposal_id"),
                   "kind": (pending or {}).get("kind"), "target": (pending or {}).get("target_id"),
                   **({"note": decision["note"]} if decision.get("note") else {})})

    def waiting(self, pending: dict[str, Any] | None) -> None:
        need = "decision" if pending and pending.get("kind") != "input" else "message"
        self.emit({"event": "waiting", "for": need})

    def end(self) -> None:
        pass


_JSON_COMMANDS = {"accept": "/accept", "redo": "/redo", "skip": "/skip", "retry": "/retry", "bible": "/bible",
                  "help": "/help", "quit": "/quit"}


def json_input(line: str, card: str) -> tuple[str, dict[str, Any] | None]:
    """A `--jsonl` input line: a plain line (message or /command) as is, or a JSON object:
    {"text": …} (a message or /command), {"type": "accept" | "redo" | "skip" | "retry" | "quit"},
    {"type": "reject", "note": …}, {"type": "edit", "data": {…}}, {"type": "undo", "record": …, "rev": …}.
    Returns (line, None) or ("", decision) for a decision given as an object."""
    if not line.lstrip().startswith("{"):
        return line, None
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"input line is not valid JSON ({exc.msg} at column {exc.colno}); send a JSON "
                         "object such as {\"text\": \"make Aiko older\"} or a plain line") from exc
    if not isinstance(obj, dict):
        raise InputError("a JSON input line must be an object, e.g. {\"text\": \"...\"} or {\"type\": \"accept\"}")
    if isinstance(obj.get("text"), str):
        return obj["text"], None
    kind = obj.get("type")
    if kind in ("reject", "edit"):
        return "", {k: v for k, v in {**obj, "proposal_id": obj.get("proposal_id") or card}.items()}
    if kind == "undo":
        return " ".join(["/undo", *[str(obj[k]) for k in ("record", "rev") if obj.get(k) is not None]]), None
    if kind in _JSON_COMMANDS:
        return _JSON_COMMANDS[kind], None
    raise InputError(f"unknown input {obj!r}; send {{\"text\": …}} or {{\"type\": \"accept\" | \"reject\" | "
                     "\"edit\" | \"redo\" | \"skip\" | \"retry\" | \"undo\" | \"quit\"}")


def run_chat(settings: Settings, stdin: TextIO, stdout: TextIO, *, jsonl: bool = False) -> int:
    from agent.brain import DEMO_NOTICE, close_chat_model, open_chat_model
    from ui.session import open_session

    project = settings.open_project()
    model = open_chat_model(settings.llm_settings(project), log_path=project.root / "state" / "llm-server.log")
    try:
        session = open_session(project, model, targets=settings.targets, take_check=settings.take_check)
    except BaseException:
        close_chat_model(model)
        raise

    out = _JsonEvents(stdout) if jsonl else _TextOut(stdout)

    shown: set[str] = set()   # message ids already written (the view holds a bounded chat)
    try:
        with session:
            out.info(f"Storyreel · {project.name} · model: {model.description} · router: {session.router_name}")
            if getattr(model, "is_demo", False):
                out.info(DEMO_NOTICE)
            view = session.start()
            while True:
                for i, msg in enumerate(view.messages):
                    key = msg.get("id") or f"#{i}"
                    if key not in shown:
                        shown.add(key)
                        out.message(msg["role"], msg["content"])
                for notice in view.notices:
                    out.error(notice)
                out.card(view.pending)
                out.waiting(view.pending)
                line = stdin.readline()
                if not line:
                    out.end()
                    return 0
                line = line.rstrip("\n")
                if not line.strip():
                    continue
                card = (view.pending or {}).get("proposal_id") or ""  # decisions are for the card shown
                try:
                    decided: dict[str, Any] | None = None
                    if jsonl:
                        line, decided = json_input(line, card)
                    cmd, _, arg = line.strip().partition(" ")
                    if decided is not None:
                        before = view.pending
                        view = session.decide(decided)
                        out.decision(decided, before)
                    elif cmd == "/quit":
                        return 0
                    elif cmd == "/help":
                        out.info(help_text([r.data.get("name", "") for r in session.canon.list("character")]))
                    elif cmd == "/bible":
                        out.info(bible_text(session.records()))
                    elif cmd in ("/accept", "/redo", "/reject", "/edit"):
                        if cmd == "/edit":
                            data = (view.pending or {}).get("data") or blank_proposal(view.pending)
                            decided = {"type": "edit", "data": apply_edit(dict(data), arg), "proposal_id": card}
                        else:
                            decided = {"type": cmd[1:], "proposal_id": card,
                                       **({"note": arg} if cmd == "/reject" else {})}
                        before = view.pending
                        view = session.decide(decided)
                        out.decision(decided, before)
                    elif cmd == "/skip":
                        before = view.pending
                        view = session.skip()
                        out.decision({"type": "skip", "proposal_id": card}, before)
                    elif cmd == "/retry":
                        view = session.retry()
                    elif cmd == "/undo":
                        record_id, rev = parse_undo(session, arg)
                        rec = session.undo(record_id, rev)
                        out.info(f"Reverted {rec.id}: now rev {rec.rev}" + (" (deleted)" if rec.deleted else ""))
                    elif cmd.startswith("/"):
                        out.info(f"unknown command {cmd}; /help lists them")
                    else:
                        view = session.send(line)
                except (StoryreelError, ValueError) as exc:
                    out.error(str(exc))
                    view = session.view()
    finally:
        close_chat_model(model)
