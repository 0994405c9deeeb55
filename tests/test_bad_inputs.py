"""Messages, not tracebacks (issue 9, point 7): every bad input of the probe, kept as a table.

Each `BadInput` spoils a real project (or passes a bad argument), runs the real `storyreel` command
(a subprocess) or the session in process, and `check_bad_input` asserts what the director sees: a
clear message, no "Traceback", the expected exit status, and the project's files untouched (sha256
of every file before and after; the lock file is the only exception, it is the lock). `run_bad_input`
is the same check as a bool, for `bench/faults.py`.
"""
from __future__ import annotations

import atexit
import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEAD_LLM = "http://127.0.0.1:9/v1"     # nothing listens on port 9: never reached unless a proposal is made
NOT_HASHED = (".storyreel.lock",)
#: The bible's vector index is a cache of canon (rebuilt from it on open); chroma rewrites its own
#: sqlite when a client opens it, so it is left out of the "untouched" hashes.
NOT_HASHED_UNDER = ("bible/chroma/",)


@dataclass(frozen=True)
class BadInput:
    name: str
    args: tuple[str, ...] = ()        # storyreel arguments; {project}, {projects}, {port} are filled in
    stdin: str = ""
    message: str = ""                 # a regex the output (stdout + stderr) must match
    rc: int | None = 2                # expected exit status; None for in-process cases
    seed: str = "accepted"            # "accepted": a card on the table; "fresh": just created
    spoil: Callable[[Path], None] | None = None          # what happens to the project first
    untouched: tuple[str, ...] | None = None             # files that must keep their bytes (None: all)
    llm: str = "dead"                 # "dead" (never called) or "html" (answers every request with a web page)
    run: Callable[[Path], str] | None = None             # in-process: returns what the director was told

    def __repr__(self) -> str:
        return self.name


# ----------------------------------------------------------------------------- spoilers


def _llm_as_text(root: Path) -> None:
    text = (root / "project.toml").read_text()
    kept = [ln for ln in text.splitlines() if not ln.startswith("[llm]") and not ln.startswith("# base_url")
            and not ln.startswith("# model")]
    (root / "project.toml").write_text('llm = "http://127.0.0.1:8080/v1"\n' + "\n".join(kept) + "\n")


def _zero_canon_pages(root: Path) -> None:
    db = root / "canon.sqlite"
    data = bytearray(db.read_bytes())
    page = int.from_bytes(data[16:18], "big") or 4096
    data[page:] = bytes(len(data) - page)          # every page after the header page: zeros
    db.write_bytes(bytes(data))


def _garbage_checkpoints(root: Path) -> None:
    for extra in ("-wal", "-shm"):
        Path(f"{root / 'state' / 'checkpoints.sqlite'}{extra}").unlink(missing_ok=True)
    (root / "state" / "checkpoints.sqlite").write_bytes(b"this is not a database\n" * 300)


def _state_is_a_file(root: Path) -> None:
    shutil.rmtree(root / "state")
    (root / "state").write_text("not a folder\n")


def _upload_with_a_long_name(root: Path) -> str:
    """The reference card, then the director's own PNG whose file name is 250 characters."""
    from PIL import Image

    from agent.context import Targets
    from memory.project import open_project
    from tests.fakes import ScriptedChatModel
    from tools.backends.animatic import AnimaticPainter
    from ui.session import DirectorSession

    src = root.parent / ("a" * 246 + ".png")
    Image.new("RGB", (90, 160), (10, 120, 200)).save(src)
    targets = Targets(characters=1, locations=1, props=0, episodes=1, scenes=1)
    with DirectorSession(open_project(root), ScriptedChatModel(), targets=targets, painter=AnimaticPainter(),
                         candidates=1) as s:
        view = s.start()
        if view.pending["kind"] == "input":
            view = s.send("A shrine maiden hears rain spirits.")
        while view.pending["kind"] != "reference":
            view = s.decide({"type": "accept"})
        view = s.upload(src)
        ref = s.canon.live("ref-character-aiko")
        return f"accepted {ref.id} from {ref.data['source']}" if ref else f"not accepted: {view.pending}"


def _decide(decision: dict[str, Any]) -> Callable[[Path], str]:
    """An in-process decision on the pending card; returns the message it was refused with."""
    def run(root: Path) -> str:
        from memory.errors import StoryreelError
        from memory.project import open_project
        from tests.fakes import ScriptedChatModel
        from ui.session import DirectorSession

        with DirectorSession(open_project(root), ScriptedChatModel()) as s:
            s.start()
            try:
                view = s.decide(decision)
            except StoryreelError as exc:
                return f"refused: {exc}"
            return f"applied: {view.pending}"
    return run


BAD_INPUTS: tuple[BadInput, ...] = (
    BadInput("chat with an empty project name", args=("chat", ""), message=r"no project given"),
    BadInput("chat with a 300-character name", args=("chat", "a" * 300),
             message=r"is not a usable folder name \(File name too long\); use the project's short name"),
    BadInput("new with a 300-character name", args=("new", "Ж" * 300), message=r"300 characters"),
    BadInput("[llm] given as a string", args=("chat", "{project}"), spoil=_llm_as_text,
             message=r"project\.toml: llm = 'http://127\.0\.0\.1:8080/v1' must be a table"),
    BadInput("canon with zeroed pages", args=("chat", "{project}"), spoil=_zero_canon_pages,
             message=r"canon\.sqlite"),
    BadInput("garbage checkpoints (chat)", args=("chat", "{project}"), spoil=_garbage_checkpoints,
             message=r"checkpoints\.sqlite"),
    BadInput("garbage checkpoints (studio)", args=("studio", "{project}", "--port", "{port}"),
             spoil=_garbage_checkpoints, message=r"checkpoints\.sqlite"),
    BadInput("state/ is a file", args=("chat", "{project}"), spoil=_state_is_a_file,
             message=r"state is a file"),
    BadInput("an HTML page from the LLM's /models", args=("chat", "{project}"), stdin="/redo\n/quit\n", rc=0,
             llm="html", message=r"did not answer /models with an OpenAI model list",
             untouched=("canon.sqlite", "project.toml")),
    BadInput("/undo with a revision that is not a number", args=("chat", "{project}"), rc=0,
             stdin="/undo series abc\n/quit\n", untouched=("canon.sqlite", "project.toml", "ledger.jsonl"),
             message=r"revision 'abc' is not a number; series has revisions 1 \(0 deletes it\)"),
    BadInput("/edit with no card", args=("chat", "{project}"), rc=0, seed="fresh", stdin="/edit x 1\n/quit\n",
             untouched=("canon.sqlite", "project.toml", "ledger.jsonl"),
             message=r"there is no proposal on the card to edit"),
    BadInput("an upload with a 250-character file name", rc=None, seed="fresh", run=_upload_with_a_long_name,
             untouched=("project.toml",), message=r"accepted ref-character-aiko from upload"),
    BadInput("an upload decision naming /etc/passwd", rc=None, run=_decide({"type": "upload", "path": "/etc/passwd"}),
             message=r"refused: the upload path '/etc/passwd' is absolute; it must be a path inside the project"),
    BadInput("a motion edit whose clip is outside the project", rc=None, run=_decide(
        {"type": "edit", "data": {"scene_id": "scene-ep1-1", "shots": [
            {"shot_id": "scene-ep1-1-s1", "clip": ["/outside/secret.png"]}]}}),
        message=r"refused: the edit\.shots\[0\]\.clip\[0\] '/outside/secret\.png' is absolute"),
    BadInput("an open decision with an unknown kind", rc=None,
             run=_decide({"type": "open", "task": {"kind": "villain", "subject": "x"}}),
             message=r"refused: cannot open 'villain'; open one of .*reference, background, panel"),
    BadInput("/undo of a record that does not exist", args=("chat", "{project}"), rc=0,
             stdin="/undo character-nobody\n/quit\n", message=r"! .*character-nobody",
             untouched=("canon.sqlite", "project.toml", "ledger.jsonl")),
)


# ----------------------------------------------------------------------------- seeds and checks

_SEEDS: dict[str, Path] = {}


def _seed(kind: str) -> Path:
    """A project folder to copy: "fresh" (created and opened once: waiting for the premise) or
    "accepted" (series accepted, a character card pending), built once per process with the
    scripted model."""
    if kind not in _SEEDS:
        from memory.project import create_project

        base = Path(tempfile.mkdtemp(prefix=f"storyreel-seed-{kind}-"))
        atexit.register(shutil.rmtree, base, True)
        project = create_project(base, "Fox Rain")
        from agent.context import Targets
        from tests.fakes import ScriptedChatModel, accept_vision
        from ui.session import DirectorSession

        with DirectorSession(project, ScriptedChatModel(), targets=Targets(characters=1)) as s:
            s.start()
            if kind == "accepted":
                accept_vision(s, s.send("A shrine maiden hears rain spirits."))
                assert s.decide({"type": "accept"}).pending["kind"] == "character"
        _SEEDS[kind] = project.root
    return _SEEDS[kind]


def _hashes(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not path.is_symlink() and path.name not in NOT_HASHED \
                and not rel.startswith(NOT_HASHED_UNDER):
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _HtmlServer:
    """An 'LLM endpoint' that is really a web page (a login portal, the wrong port)."""

    def __enter__(self) -> str:
        class Page(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def _page(self) -> None:
                body = b"<!doctype html><html><body><h1>Welcome to nginx!</h1></body></html>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _page

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Page)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def check_bad_input(case: BadInput, tmp_path: Path) -> list[str]:
    """What is wrong with how Storyreel handled `case` (empty: clean)."""
    projects = Path(tmp_path) / "projects"
    projects.mkdir(parents=True, exist_ok=True)
    root = projects / "fox-rain"
    shutil.copytree(_seed(case.seed), root, symlinks=True)
    if case.spoil is not None:
        case.spoil(root)
    before = _hashes(root)
    problems: list[str] = []
    if case.run is not None:
        try:
            output, rc = case.run(root), None
        except Exception as exc:  # noqa: BLE001 - an exception is exactly what this suite looks for
            import traceback

            output, rc = "Traceback (in process)\n" + "".join(traceback.format_exception(exc)), None
    else:
        with (_HtmlServer() if case.llm == "html" else _Nothing(DEAD_LLM)) as llm:
            fill = {"project": str(root), "projects": str(projects), "port": str(_free_port())}
            args = [a.format(**fill) for a in case.args]
            env = {k: v for k, v in os.environ.items() if k != "STORYREEL_DEBUG"}
            env.update(GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
            llm_args = ["--llm-url", llm] if args and args[0] in ("chat", "studio") else []
            try:
                proc = subprocess.run([sys.executable, "-m", "ui.cli", "--projects-dir", str(projects), *args,
                                       *llm_args], cwd=ROOT, input=case.stdin, capture_output=True, text=True,
                                      timeout=180, env=env, check=False)
            except subprocess.TimeoutExpired as exc:
                return [f"{case.name}: no answer within 180 s ({exc.stdout!r})"]
            output, rc = proc.stdout + proc.stderr, proc.returncode
    if "Traceback" in output:
        problems.append(f"{case.name}: a traceback was shown:\n{output[-3000:]}")
    if case.message and not re.search(case.message, output):
        problems.append(f"{case.name}: no message matching {case.message!r} in:\n{output[-3000:]}")
    if case.rc is not None and rc != case.rc:
        problems.append(f"{case.name}: exit status {rc}, expected {case.rc}")
    after = _hashes(root)
    watched = case.untouched if case.untouched is not None else sorted(set(before) | set(after))
    changed = [f for f in watched if before.get(f) != after.get(f)]
    if changed:
        problems.append(f"{case.name}: project files changed: {changed}")
    if case.args[:1] == ("new",) and sorted(p.name for p in projects.iterdir()) != ["fox-rain"]:
        problems.append(f"{case.name}: a folder was created: {sorted(p.name for p in projects.iterdir())}")
    return problems


class _Nothing:
    def __init__(self, value: str) -> None:
        self.value = value

    def __enter__(self) -> str:
        return self.value

    def __exit__(self, *exc: object) -> None:
        pass


def run_bad_input(case: BadInput, tmp_path: Path) -> bool:
    """True when `case` is handled cleanly: a clear message, no traceback, the project untouched."""
    return not check_bad_input(case, tmp_path)


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c.name for c in BAD_INPUTS])
def test_bad_input_gets_a_message_not_a_traceback(case, tmp_path):
    assert check_bad_input(case, tmp_path) == []


def test_the_table_covers_every_bad_input_of_the_probe():
    names = " ".join(c.name for c in BAD_INPUTS)
    for probe in ("empty project name", "300-character", "[llm] given as a string", "zeroed pages",
                  "garbage checkpoints (chat)", "garbage checkpoints (studio)", "state/ is a file",
                  "250-character file name", "HTML page", "/undo", "/edit with no card"):
        assert probe in names


def test_an_unexpected_error_is_one_line_and_the_traceback_only_on_request(monkeypatch, capsys):
    from ui import cli

    def boom(settings: Any) -> int:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(cli, "cmd_new", boom)
    monkeypatch.delenv("STORYREEL_DEBUG", raising=False)
    assert cli.main(["new", "Fox Rain"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unexpected RuntimeError: disk on fire" in err
    assert "STORYREEL_DEBUG=1" in err and "Traceback" not in err
    monkeypatch.setenv("STORYREEL_DEBUG", "1")
    assert cli.main(["new", "Fox Rain"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "disk on fire" in err
