"""`storyreel` from the outside: subprocesses, stdin scripts, exit codes and messages."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from memory.project import create_project, open_project
from tests.fake_openai import FakeOpenAIServer
from tests.fakes import ScriptedChatModel, accept_vision
from ui.session import DirectorSession

ROOT = Path(__file__).resolve().parents[1]


def storyreel(*args: str, stdin: str = "", env: dict | None = None, timeout: int = 120):
    return subprocess.run([sys.executable, "-m", "ui.cli", *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(env or {})})


def test_help_imports_nothing_heavy():
    code = ("import sys, ui.cli; heavy = [m for m in ('gradio', 'langgraph', 'chromadb', 'torch', "
            "'openai', 'onnxruntime') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr
    assert "studio" in storyreel("--help").stdout


@pytest.mark.parametrize("name", ["../evil", "a/b", "..", "/etc/passwd", ""])
def test_new_refuses_names_that_are_paths(tmp_path, name):
    out = storyreel("--projects-dir", str(tmp_path), "new", name)
    assert out.returncode == 2 and "storyreel:" in out.stderr and "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "evil").exists()


def test_new_creates_the_project_folder(tmp_path):
    out = storyreel("--projects-dir", str(tmp_path), "new", "Fox Rain")
    assert out.returncode == 0, out.stderr
    assert open_project(tmp_path / "fox-rain").name == "Fox Rain"


def test_corrupt_project_toml_is_reported_and_left_alone(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    bad = 'schema_version = 1\nname = "Fox Rain\n'
    (project.root / "project.toml").write_text(bad)
    out = storyreel("--projects-dir", str(tmp_path), "chat", "fox-rain", "--llm-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 2 and "project.toml" in out.stderr and "line" in out.stderr
    assert (project.root / "project.toml").read_text() == bad


def test_unknown_schema_version_is_reported(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    (project.root / "project.toml").write_text('schema_version = 99\nname = "Fox Rain"\n')
    out = storyreel("--projects-dir", str(tmp_path), "chat", "fox-rain", "--llm-url", "http://127.0.0.1:9/v1")
    assert out.returncode == 2 and "99" in out.stderr and "schema" in out.stderr


def test_scripted_terminal_chat_through_every_command(tmp_path):
    create_project(tmp_path, "Fox Rain")
    script = "\n".join([
        "A shrine maiden hears rain spirits.",
        "/accept",                                   # your vision (the premise as you typed it)
        "/accept",                                   # series + style
        "/reject make her older",                    # Aiko rejected; take 2 (the note reaches the prompt)
        "/redo",                                     # take 3 (the scripted model offers Kaito)
        "/edit age 31",                              # Kaito edited and accepted
        "What does Aiko wear?",
        "/edit {\"name\": \"Ren\", \"age\": \"19\"}",
        "/undo character-ren 0",                     # revert Ren's rev 1 = delete
        "/bible",
        "/bogus",
        "/quit",
    ]) + "\n"
    with FakeOpenAIServer() as llm:
        out = storyreel("--projects-dir", str(tmp_path), "chat", "fox-rain", "--llm-url", llm.url, stdin=script)
        prompts = [m["content"] for r in llm.requests for m in r["messages"]]
    assert out.returncode == 0, out.stderr
    assert "make her older" in "\n".join(prompts)
    assert "unknown command /bogus" in out.stdout and "red scarf" in out.stdout
    with DirectorSession(open_project(tmp_path / "fox-rain"), ScriptedChatModel()) as s:
        names = {r.data["name"]: r for r in s.canon.list("character")}
        assert set(names) == {"Kaito"} and names["Kaito"].data["age"] == "31"
        assert s.canon.get("character-ren").deleted
        actions = [e["action"] for e in s.ledger.entries() if e["actor"] == "human"]
        assert actions == ["accept", "accept", "accept", "reject", "redo", "edit", "edit", "revert"]


def test_chat_refuses_a_project_open_elsewhere(tmp_path):
    project = create_project(tmp_path, "Fox Rain")
    with DirectorSession(project, ScriptedChatModel()):
        out = storyreel("--projects-dir", str(tmp_path), "chat", "fox-rain", "--llm-url", "http://127.0.0.1:9/v1",
                        stdin="/quit\n")
    assert out.returncode == 2 and str(os.getpid()) in out.stderr


def test_unreachable_llm_shows_a_failure_card_and_keeps_the_premise(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]   # closed when the block ends: nothing listens there
    create_project(tmp_path, "Fox Rain")
    out = storyreel("--projects-dir", str(tmp_path), "chat", "fox-rain",
                    "--llm-url", f"http://127.0.0.1:{dead}/v1", "--llm-model", "m",
                    stdin="A premise.\n/accept\n/quit\n")   # the vision card, then the series
    assert out.returncode == 0, out.stderr
    assert f"127.0.0.1:{dead}" in out.stdout and "Redo" in out.stdout
    with DirectorSession(open_project(tmp_path / "fox-rain"), ScriptedChatModel()) as s:
        view = s.start()
        assert view.pending["kind"] == "series" and view.pending["failure"]
        assert view.messages[0]["content"] == "A premise."
        assert s.decide({"type": "redo"}).pending["data"]["title"] == "Fox Rain"


def test_timing_out_llm_names_the_timeout(tmp_path):
    class Slow(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            time.sleep(5)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        create_project(tmp_path, "Fox Rain")
        out = storyreel("--projects-dir", str(tmp_path), "chat", "fox-rain",
                        "--llm-url", f"http://127.0.0.1:{httpd.server_address[1]}/v1", "--llm-model", "m",
                        stdin="A premise.\n/accept\n/quit\n", env={"STORYREEL_LLM_TIMEOUT": "1"})
    finally:
        httpd.shutdown()
    assert out.returncode == 0, out.stderr
    assert "timed out" in out.stdout.lower() or "timeout" in out.stdout.lower()


def test_skip_and_retry_in_the_terminal_leave_a_card_that_keeps_failing(tmp_path):
    """The model endpoint is a web page: every proposal fails; /retry fails again, /skip leaves it."""
    from tests.test_bad_inputs import _HtmlServer

    project = create_project(tmp_path, "Fox Rain")
    with DirectorSession(project, ScriptedChatModel()) as s:
        s.start()
        accept_vision(s, s.send("A shrine maiden hears rain spirits."))
        s.decide({"type": "accept"})                      # the character card is next
    with _HtmlServer() as url:
        out = storyreel("--projects-dir", str(tmp_path), "chat", "fox-rain", "--llm-url", url,
                        stdin="/redo\n/retry\n/skip\n/skip\n/quit\n")
    assert out.returncode == 0 and "Traceback" not in out.stdout + out.stderr
    assert out.stdout.count("did not answer /models") >= 2
    assert "Skipped the character step" in out.stdout
    assert "nothing to skip: the agent is waiting for a message" in out.stdout
    with DirectorSession(open_project(tmp_path / "fox-rain"), ScriptedChatModel()) as s:
        assert s.view().pending["kind"] == "input"
        assert [e["action"] for e in s.ledger.entries() if e["actor"] == "human"][-1] == "skip"


def test_studio_help_says_another_host_needs_the_printed_token():
    text = " ".join(storyreel("studio", "--help").stdout.split())
    assert "any other address asks for a login" in text and "token printed at start" in text
