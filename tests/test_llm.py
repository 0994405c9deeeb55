"""agent.llm against a scriptable OpenAI-compatible server on 127.0.0.1 (real HTTP, real openai client)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pydantic import BaseModel

from agent.llm import (
    ChatModel,
    LLMSettings,
    OpenAIChatModel,
    chat_model_from_settings,
    generate_structured,
    settings_from_env,
)
from memory.errors import BackendError, InputError, LLMOutputError, LLMUnavailableError


class Character(BaseModel):
    name: str
    role: str
    look_tags: list[str]


VALID = json.dumps({"name": "Aki", "role": "courier", "look_tags": ["red scarf", "short hair"]})
ASK = [{"role": "user", "content": "Invent one character as JSON."}]


class FakeLLMServer:
    """A scriptable OpenAI-compatible endpoint: queue replies, inspect what the client sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.replies: list[str | tuple[int, dict[str, Any]]] = []
        self.reject_json_schema = False
        self.delay_s = 0.0
        self.models = ["fake-model-7b", "other-model"]
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    data = [{"id": m, "object": "model", "created": 0, "owned_by": "me"} for m in fake.models]
                    self._send(200, {"object": "list", "data": data})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                request = json.loads(self.rfile.read(length))
                fake.requests.append(request)
                if fake.delay_s:
                    time.sleep(fake.delay_s)
                form = (request.get("response_format") or {}).get("type")
                if fake.reject_json_schema and form == "json_schema":
                    self._send(500, {"error": {"message": "response_format json_schema not supported"}})
                    return
                reply = fake.replies.pop(0) if fake.replies else VALID
                if isinstance(reply, tuple):
                    self._send(*reply)
                    return
                self._send(200, _completion(reply))

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def forms(self) -> list[str | None]:
        return [(r.get("response_format") or {}).get("type") for r in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _completion(content: str | None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "fake-model-7b",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    fake = FakeLLMServer()
    yield fake
    fake.close()


def _client(server: FakeLLMServer, **kwargs: Any) -> OpenAIChatModel:
    kwargs.setdefault("model", "fake-model-7b")
    kwargs.setdefault("timeout", 5.0)
    return OpenAIChatModel(base_url=server.url, **kwargs)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


# ---------------------------------------------------------------------------------------------- complete


def test_complete_sends_the_request_and_returns_the_reply(server: FakeLLMServer) -> None:
    server.replies = ["Hello, director."]
    model = _client(server)
    assert isinstance(model, ChatModel)
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": None},
        {"role": "user", "content": "again"},
    ]
    reply = model.complete(messages, temperature=0.2, max_tokens=50, seed=7)  # type: ignore[arg-type]
    assert reply == "Hello, director."
    sent = server.requests[0]
    assert sent["model"] == "fake-model-7b"
    assert sent["messages"][1] == {"role": "assistant", "content": ""}
    assert (sent["temperature"], sent["max_tokens"], sent["seed"]) == (0.2, 50, 7)
    assert "response_format" not in sent
    assert messages[1]["content"] is None  # the caller's list is not modified


def test_auto_mode_falls_back_to_json_object_and_remembers(server: FakeLLMServer) -> None:
    server.reject_json_schema = True
    model = _client(server)
    first = generate_structured(model, ASK, Character)
    second = generate_structured(model, ASK, Character)
    assert first == second == Character.model_validate_json(VALID)
    assert server.forms() == ["json_schema", "json_object", "json_object"]
    assert server.requests[1]["response_format"]["schema"] == Character.model_json_schema()
    assert model.json_form == "json_object"


def test_auto_mode_keeps_json_schema_where_the_server_accepts_it(server: FakeLLMServer) -> None:
    model = _client(server)
    generate_structured(model, ASK, Character)
    generate_structured(model, ASK, Character)
    assert server.forms() == ["json_schema", "json_schema"]
    fmt = server.requests[0]["response_format"]["json_schema"]
    assert fmt == {"name": "Character", "schema": Character.model_json_schema(), "strict": False}


def test_fixed_json_object_mode_never_tries_json_schema(server: FakeLLMServer) -> None:
    server.reject_json_schema = True
    model = _client(server, json_mode="json_object")
    generate_structured(model, ASK, Character)
    assert server.forms() == ["json_object"]


def test_fixed_json_schema_mode_reports_a_rejection_without_falling_back(server: FakeLLMServer) -> None:
    server.reject_json_schema = True
    model = _client(server, json_mode="json_schema")
    with pytest.raises(BackendError, match="HTTP 500.*json_schema not supported"):
        model.complete(ASK, json_schema=Character.model_json_schema())
    assert server.forms() == ["json_schema"]


def test_empty_reply_is_an_output_error(server: FakeLLMServer) -> None:
    server.replies = [(200, _completion(None))]
    with pytest.raises(LLMOutputError, match="empty reply"):
        _client(server).complete(ASK)


# ------------------------------------------------------------------------------------- structured output


def test_invalid_json_then_valid_is_repaired(server: FakeLLMServer) -> None:
    server.replies = ["I think the character is Aki.", VALID]
    result = generate_structured(_client(server), ASK, Character)
    assert result.name == "Aki"
    assert len(server.requests) == 2
    retry_messages = server.requests[1]["messages"]
    assert retry_messages[:1] == ASK
    assert retry_messages[1] == {"role": "assistant", "content": "I think the character is Aki."}
    assert retry_messages[2]["role"] == "user"
    assert "not valid JSON" in retry_messages[2]["content"]
    assert "Character" in retry_messages[2]["content"]


def test_schema_violation_repair_names_the_field(server: FakeLLMServer) -> None:
    server.replies = [json.dumps({"name": "Aki", "look_tags": "red scarf"}), VALID]
    generate_structured(_client(server), ASK, Character)
    repair = server.requests[1]["messages"][-1]["content"]
    assert "role: Field required" in repair
    assert "look_tags: Input should be a valid list" in repair


def test_json_wrapped_in_prose_is_located_without_a_retry(server: FakeLLMServer) -> None:
    server.replies = ["Sure! Here it is:\n```json\n" + VALID + "\n```\nEnjoy {the show}."]
    assert generate_structured(_client(server), ASK, Character).role == "courier"
    assert len(server.requests) == 1


def test_always_invalid_raises_after_one_plus_retries_calls(server: FakeLLMServer) -> None:
    bad = "no json here, just words " * 30
    server.replies = [bad] * 10
    with pytest.raises(LLMOutputError) as caught:
        generate_structured(_client(server), ASK, Character, retries=2)
    assert len(server.requests) == 3
    message = str(caught.value)
    assert "Character" in message and "not valid JSON" in message
    assert "no json here, just words" in message
    assert bad not in message  # only an excerpt of the reply is shown...
    assert caught.value.raw == bad  # type: ignore[attr-defined]  # ...the full reply is kept


def test_zero_retries_means_exactly_one_call(server: FakeLLMServer) -> None:
    server.replies = ["{}"] * 3
    with pytest.raises(LLMOutputError, match="name: Field required"):
        generate_structured(_client(server), ASK, Character, retries=0)
    assert len(server.requests) == 1


def test_check_problems_trigger_a_repair(server: FakeLLMServer) -> None:
    server.replies = [json.dumps({"name": "Bo", "role": "cat", "look_tags": []}), VALID]

    def check(c: Character) -> list[str]:
        return [] if c.look_tags else ["look_tags must name at least one visual trait"]

    result = generate_structured(_client(server), ASK, Character, check=check)
    assert result.name == "Aki"
    assert "look_tags must name at least one visual trait" in server.requests[1]["messages"][-1]["content"]


class _DeadModel:
    """A ChatModel whose server is down; counts how often it was asked."""

    description = "dead test model"
    is_demo = False

    def __init__(self) -> None:
        self.calls = 0

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        self.calls += 1
        raise LLMUnavailableError("LLM server at http://nowhere cannot be reached")


def test_unavailable_server_is_not_retried() -> None:
    model = _DeadModel()
    with pytest.raises(LLMUnavailableError):
        generate_structured(model, ASK, Character, retries=5)  # type: ignore[arg-type]
    assert model.calls == 1


# ------------------------------------------------------------------------------------------ error mapping


def test_connection_refused_names_the_url() -> None:
    url = _closed_port_url()
    model = OpenAIChatModel(base_url=url, model="m", timeout=5.0)
    with pytest.raises(LLMUnavailableError, match="cannot be reached") as caught:
        generate_structured(model, ASK, Character)
    assert url in str(caught.value) and "OPENAI_BASE_URL" in str(caught.value)


def test_slow_server_times_out_naming_the_timeout(server: FakeLLMServer) -> None:
    server.delay_s = 1.5
    model = _client(server, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(LLMUnavailableError, match=r"within 0\.5 s") as caught:
        model.complete(ASK)
    assert time.monotonic() - started < 1.4
    assert "STORYREEL_LLM_TIMEOUT" in str(caught.value)


def test_401_names_the_api_key_variable(server: FakeLLMServer) -> None:
    server.replies = [(401, {"error": {"message": "Incorrect API key provided", "type": "auth_error"}})]
    with pytest.raises(BackendError) as caught:
        _client(server).complete(ASK)
    assert not isinstance(caught.value, LLMUnavailableError)
    assert "OPENAI_API_KEY" in str(caught.value) and "Incorrect API key" in str(caught.value)


def test_other_status_names_status_and_server_message(server: FakeLLMServer) -> None:
    server.replies = [(404, {"error": {"message": "model 'nope' not found"}})]
    with pytest.raises(BackendError, match=r"HTTP 404.*model 'nope' not found"):
        _client(server).complete(ASK)


def test_unnamed_model_is_taken_from_the_servers_model_list(server: FakeLLMServer) -> None:
    model = _client(server, model=None)
    assert "first model" in model.description
    model.complete(ASK)
    assert server.requests[0]["model"] == "fake-model-7b"
    assert model.description.startswith("fake-model-7b")


def test_unnamed_model_on_a_dead_server_is_unavailable() -> None:
    model = OpenAIChatModel(base_url=_closed_port_url(), model=None, timeout=5.0)
    with pytest.raises(LLMUnavailableError, match="cannot be reached"):
        model.complete(ASK)


def test_bad_constructor_values_are_input_errors(server: FakeLLMServer) -> None:
    with pytest.raises(InputError, match="json_mode 'xml'"):
        _client(server, json_mode="xml")
    with pytest.raises(InputError, match="timeout"):
        OpenAIChatModel(base_url=server.url, model="m", timeout=0)


# ----------------------------------------------------------------------------------------------- settings

_ENV = ("OPENAI_BASE_URL", "OPENAI_API_KEY", "STORYREEL_LLM_MODEL", "STORYREEL_LLM_TIMEOUT", "MY_LLM_KEY")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_settings_default_to_the_embedded_model(clean_env: pytest.MonkeyPatch) -> None:
    assert settings_from_env() == LLMSettings(base_url=None, api_key=None, model=None)


def test_settings_come_from_the_project_table(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("MY_LLM_KEY", "sk-project")
    table = {
        "base_url": "http://localhost:11434/v1/",
        "api_key_env": "MY_LLM_KEY",
        "model": "qwen2.5:7b",
        "json_mode": "json_object",
        "timeout": 120,
    }
    assert settings_from_env(table) == LLMSettings(
        base_url="http://localhost:11434/v1",
        api_key="sk-project",
        model="qwen2.5:7b",
        json_mode="json_object",
        timeout=120.0,
    )


def test_environment_wins_over_the_project_table(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_BASE_URL", "http://gpu-box:8000/v1")
    clean_env.setenv("OPENAI_API_KEY", "sk-env")
    clean_env.setenv("MY_LLM_KEY", "sk-project")
    clean_env.setenv("STORYREEL_LLM_MODEL", "env-model")
    clean_env.setenv("STORYREEL_LLM_TIMEOUT", "7.5")
    table = {"base_url": "http://localhost:11434/v1", "api_key_env": "MY_LLM_KEY", "model": "m", "timeout": 3}
    settings = settings_from_env(table)
    assert settings == LLMSettings(
        base_url="http://gpu-box:8000/v1", api_key="sk-env", model="env-model", timeout=7.5
    )


def test_openai_host_without_a_model_gets_the_small_default(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("OPENAI_BASE_URL", "https://api.openai.com/v1")
    assert settings_from_env().model == "gpt-4o-mini"
    clean_env.setenv("OPENAI_BASE_URL", "http://localhost:8080/v1")
    assert settings_from_env().model is None  # asked from the server's /models on first use


@pytest.mark.parametrize(
    ("env", "table", "message"),
    [
        ({"STORYREEL_LLM_TIMEOUT": "soon"}, {}, "STORYREEL_LLM_TIMEOUT must be a number"),
        ({}, {"timeout": -1}, "must be a positive number"),
        ({}, {"json_mode": "yaml"}, "json_mode 'yaml'"),
        ({}, {"base_url": 42}, "base_url must be a string"),
        ({}, {"temperature": 0.3}, "unknown keys"),
    ],
)
def test_bad_settings_name_the_value(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], table: dict[str, Any], message: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(InputError, match=message):
        settings_from_env(table)


def test_chat_model_from_settings(server: FakeLLMServer) -> None:
    settings = LLMSettings(base_url=server.url, api_key="k", model="fake-model-7b", json_mode="json_object")
    model = chat_model_from_settings(settings)
    assert model.json_form == "json_object" and not model.is_demo
    assert model.complete(ASK) == VALID
    with pytest.raises(InputError, match="OPENAI_BASE_URL"):
        chat_model_from_settings(LLMSettings(base_url=None, api_key=None, model=None))
