"""The agent's chat model: one small Protocol, one OpenAI-compatible client, structured output.

Every proposal the agent makes (beats, scenes, shots, characters) comes out of a language model
as JSON. Model output is untrusted input, so `generate_structured` validates every reply with
pydantic and asks the model to repair its own mistakes a bounded number of times before giving
up with an error the director can act on.

The same `OpenAIChatModel` talks to OpenAI, Ollama, vLLM, LM Studio or the embedded llama.cpp
server (`agent.llm_server`); only the base URL, model name and JSON mode differ.
"""

from __future__ import annotations

import html
import json
import os
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable
from urllib.parse import urlparse

from pydantic import BaseModel, ValidationError

from memory.errors import BackendError, InputError, LLMOutputError, LLMUnavailableError

T = TypeVar("T", bound=BaseModel)

JsonMode = Literal["auto", "json_schema", "json_object"]
JSON_MODES: tuple[str, ...] = ("auto", "json_schema", "json_object")

#: Model used when the base URL is OpenAI's own API and no model is named.
OPENAI_DEFAULT_MODEL = "gpt-4o-mini"
#: HTTP statuses with which servers reject a response_format form they do not support.
_FORMAT_REJECTED_STATUSES = (400, 422, 500)
_EXCERPT_CHARS = 300
_MAX_LISTED_ERRORS = 8


@runtime_checkable
class ChatModel(Protocol):
    """What the agent needs from a language model: one chat completion, optionally JSON-shaped."""

    description: str
    """Which model answers, shown in the UI so the director knows whether it is the toy demo."""
    is_demo: bool
    """True for the embedded demo model (toy quality); the UI says so."""

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict | None = None,
        temperature: float = 0.7,
        max_tokens: int = 768,
        seed: int | None = None,
    ) -> str:
        """Return the assistant's reply text; with `json_schema`, constrained to that schema where the
        endpoint can do so."""
        ...


# --------------------------------------------------------------------------------------------------
# Structured output
# --------------------------------------------------------------------------------------------------


def generate_structured(
    model: ChatModel,
    messages: list[dict[str, str]],
    output: type[T],
    *,
    retries: int = 2,
    check: Callable[[T], list[str]] | None = None,
    temperature: float = 0.7,
    seed: int | None = None,
    max_tokens: int = 768,
    known: Mapping[str, Any] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> T:
    """Ask `model` for one `output` instance, validating the reply and repairing it up to `retries` times.

    `check` adds domain rules that a JSON schema cannot express (e.g. "every shot names a known
    character"); its problems are sent back to the model exactly like schema errors.
    `known` holds fields the app sets itself (a scene's episode and number, a plan's scene id): they
    are left out of the schema the model is asked for and filled in before validation, so the model
    can never get them wrong. `prepare` normalises the parsed reply before validation (e.g. a
    speaker's canonical spelling). Every reply is HTML-unescaped (`&#34;` -> `"`) before validation.
    `LLMUnavailableError` and other backend errors pass through at once: retrying a dead server
    only makes the director wait longer. The final `LLMOutputError` carries the last reply as `raw`
    and its parsed, prepared object (or None) as `partial`, for a caller's fallback.
    """
    if retries < 0:
        raise InputError(f"retries must be 0 or more, got {retries}")
    known = dict(known or {})
    schema = schema_without(output.model_json_schema(), known)
    conversation: list[dict[str, str]] = list(messages)
    raw = ""
    partial: dict[str, Any] | None = None
    problems: list[str] = []
    for _attempt in range(1 + retries):
        try:
            raw = model.complete(
                conversation, json_schema=schema, temperature=temperature, max_tokens=max_tokens, seed=seed
            )
        except LLMUnavailableError:
            raise
        except LLMOutputError as exc:  # an empty reply: worth another try, like an invalid one
            raw = getattr(exc, "raw", "") or ""
            problems = ["the reply was empty; answer with one JSON object"]
        else:
            instance, problems, partial = _parse_reply(raw, output, known, prepare)
            if instance is not None and not problems and check is not None:
                problems = [str(p) for p in check(instance)]
            if instance is not None and not problems:
                return instance
        conversation = conversation + [
            {"role": "assistant", "content": raw},
            {"role": "user", "content": _repair_message(output, problems)},
        ]
    excerpt = raw[:_EXCERPT_CHARS] + ("…" if len(raw) > _EXCERPT_CHARS else "")
    err = LLMOutputError(
        f"The model's reply could not be read as {output.__name__} after {1 + retries} attempts; "
        f"last error: {problems[0] if problems else 'unknown'}"
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
        + f". Reply began: {excerpt!r}. Try again, or point project.toml [llm] at a stronger model."
    )
    err.raw = raw  # type: ignore[attr-defined]
    err.partial = partial  # type: ignore[attr-defined]
    raise err


def schema_without(schema: dict[str, Any], known: Mapping[str, Any]) -> dict[str, Any]:
    """`schema` minus the top-level properties the app fills itself."""
    if not known:
        return schema
    schema = dict(schema)
    schema["properties"] = {k: v for k, v in schema.get("properties", {}).items() if k not in known}
    if "required" in schema:
        schema["required"] = [k for k in schema["required"] if k not in known]
    return schema


def unescape_entities(value: Any) -> Any:
    """Small models sometimes write HTML entities (`&#34;`, `&amp;`); canon wants the characters."""
    if isinstance(value, str):
        return html.unescape(value) if "&" in value else value
    if isinstance(value, list):
        return [unescape_entities(v) for v in value]
    if isinstance(value, dict):
        return {k: unescape_entities(v) for k, v in value.items()}
    return value


def _parse_reply(
    raw: str,
    output: type[T],
    known: Mapping[str, Any] | None = None,
    prepare: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> tuple[T | None, list[str], dict[str, Any] | None]:
    """Validate `raw` as `output` (unescaped, known fields filled, prepared); on failure return the
    problems, phrased for the model to fix, and the parsed object when the reply held one."""
    try:
        candidate: Any = json.loads(raw)
    except ValueError:
        candidate = None
    if not isinstance(candidate, dict):
        candidate = _first_json_object(raw)
    if candidate is None:
        try:
            output.model_validate_json(raw)
        except ValidationError as exc:
            return None, _validation_problems(exc), None
        return None, ["the reply is not one JSON object"], None
    candidate = unescape_entities(candidate)
    candidate.update(known or {})
    if prepare is not None:
        candidate = prepare(candidate)
    try:
        return output.model_validate(candidate), [], candidate
    except ValidationError as exc:
        return None, _validation_problems(exc), candidate


def _first_json_object(text: str) -> dict[str, Any] | None:
    """The first top-level JSON object inside `text` (e.g. wrapped in prose or a code fence), or None."""
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            value, _end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _validation_problems(exc: ValidationError) -> list[str]:
    """Short, exact problem lines ("look_tags: Input should be a valid list") from a pydantic error."""
    problems = []
    for error in exc.errors(include_url=False):
        loc = ".".join(str(part) for part in error.get("loc", ())) or "(whole reply)"
        if error.get("type") == "json_invalid":
            problems.append(f"the reply is not valid JSON: {error.get('ctx', {}).get('error', error['msg'])}")
        else:
            problems.append(f"{loc}: {error['msg']}")
    if len(problems) > _MAX_LISTED_ERRORS:
        problems = problems[:_MAX_LISTED_ERRORS] + [f"... {len(problems) - _MAX_LISTED_ERRORS} more"]
    return problems


def _repair_message(output: type[BaseModel], problems: list[str]) -> str:
    listed = "\n".join(f"- {p}" for p in problems)
    return (
        f"Your reply could not be used as {output.__name__}:\n{listed}\n"
        "Reply again with only one JSON object that follows the schema and fixes these problems."
    )


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible client
# --------------------------------------------------------------------------------------------------


def default_model_for(base_url: str) -> str | None:
    """The model to use when none is named: OpenAI's small model on api.openai.com, else None (ask the
    server's /models list)."""
    host = (urlparse(base_url).hostname or "").lower()
    return OPENAI_DEFAULT_MODEL if host == "api.openai.com" else None


class OpenAIChatModel:
    """`ChatModel` on the official `openai` client, for any OpenAI-compatible chat endpoint.

    Servers disagree on structured output: OpenAI wants `{"type": "json_schema", ...}` while
    llama-cpp-python's server rejects that with HTTP 500 and wants `{"type": "json_object",
    "schema": ...}`. With `json_mode="auto"` the first structured call finds out which form works and
    the instance remembers it.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str | None,
        api_key: str | None = None,
        timeout: float = 60.0,
        json_mode: JsonMode = "auto",
        description: str | None = None,
        is_demo: bool = False,
    ) -> None:
        import openai  # the client pulls in httpx and friends; keep `import agent.llm` light

        if json_mode not in JSON_MODES:
            raise InputError(f"LLM json_mode {json_mode!r} is unknown; use one of {', '.join(JSON_MODES)}")
        if timeout <= 0:
            raise InputError(f"LLM timeout must be a positive number of seconds, got {timeout!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.json_mode: JsonMode = json_mode
        self.is_demo = is_demo
        self._model = model or default_model_for(self.base_url)
        self._description = description
        self._lock = threading.Lock()
        # "auto" settles on a concrete form after the first structured call.
        self._json_form: str | None = None if json_mode == "auto" else json_mode
        self._openai = openai
        self._client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "not-needed", timeout=self.timeout, max_retries=0
        )

    @property
    def description(self) -> str:
        if self._description:
            return self._description
        name = self._model or "the first model it serves"
        return f"{name} via OpenAI-compatible API at {self.base_url}"

    @property
    def json_form(self) -> str | None:
        """The response_format form in use ("json_schema" / "json_object"), None until "auto" settles."""
        return self._json_form

    @property
    def model(self) -> str:
        """The model name sent with every request; asks the server's /models on first use if unset."""
        with self._lock:
            if self._model is None:
                self._model = self._first_served_model()
            return self._model

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict | None = None,
        temperature: float = 0.7,
        max_tokens: int = 768,
        seed: int | None = None,
    ) -> str:
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [_sendable(m) for m in messages],
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        if seed is not None:
            request["seed"] = seed
        if json_schema is None:
            completion = self._create(request)
        else:
            completion = self._create_structured(request, json_schema)
        choices = getattr(completion, "choices", None) or []
        content = choices[0].message.content if choices else None
        if not content or not content.strip():
            finish = choices[0].finish_reason if choices else "no choices"
            raise LLMOutputError(
                f"{self.description} returned an empty reply (finish_reason={finish!r}); "
                "try again, raise max_tokens, or use a stronger model"
            )
        return content

    def chat_with_tools(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], *,
                        tool_choice: str = "auto", temperature: float = 0.2, max_tokens: int = 512) -> dict[str, Any]:
        """One turn of native tool calling, or JSON actions where the endpoint has none
        (`agent.llm_tools.chat_with_tools`)."""
        from agent.llm_tools import chat_with_tools

        return chat_with_tools(self, messages, tools, tool_choice=tool_choice, temperature=temperature,
                               max_tokens=max_tokens)

    @property
    def tool_form(self) -> str | None:
        """How tools are chosen: "tools" (native calls), "json_action" (fallback), None until known."""
        return getattr(self, "_tool_form", None)

    def _create_structured(self, request: dict[str, Any], schema: dict) -> Any:
        form = self._json_form
        if form is not None:
            return self._create({**request, "response_format": _response_format(form, schema)})
        try:
            first_try = {**request, "response_format": _response_format("json_schema", schema)}
            completion = self._create_raw(first_try)
        except self._openai.APIStatusError as exc:
            if exc.status_code not in _FORMAT_REJECTED_STATUSES:
                raise self._mapped(exc) from exc
            completion = self._create({**request, "response_format": _response_format("json_object", schema)})
            self._json_form = "json_object"
            return completion
        except self._openai.OpenAIError as exc:
            raise self._mapped(exc) from exc
        self._json_form = "json_schema"
        return completion

    def _create(self, request: dict[str, Any]) -> Any:
        try:
            return self._create_raw(request)
        except self._openai.OpenAIError as exc:
            raise self._mapped(exc) from exc

    def _create_raw(self, request: dict[str, Any]) -> Any:
        return self._client.chat.completions.create(**request)

    def _first_served_model(self) -> str:
        try:
            models = list(self._client.models.list())
            first = getattr(models[0], "id", None) if models else None
        except (AttributeError, TypeError, ValueError, KeyError) as exc:
            # an HTML page (a web server, a login portal) instead of an OpenAI model list
            raise BackendError(
                f"the LLM server at {self.base_url} did not answer /models with an OpenAI model list "
                f"({type(exc).__name__}); check the URL points at an OpenAI-compatible API (it usually "
                "ends in /v1), or name the model with STORYREEL_LLM_MODEL or project.toml [llm] model"
            ) from exc
        except self._openai.OpenAIError as exc:
            mapped = self._mapped(exc)
            if isinstance(mapped, LLMUnavailableError):
                raise mapped from exc
            raise BackendError(
                f"Could not list the models of the LLM server at {self.base_url} ({mapped}); "
                "name one with STORYREEL_LLM_MODEL or project.toml [llm] model"
            ) from exc
        if not models:
            raise BackendError(
                f"LLM server at {self.base_url} serves no models; load one there, or name one with "
                "STORYREEL_LLM_MODEL or project.toml [llm] model"
            )
        if not isinstance(first, str) or not first:
            raise BackendError(
                f"the LLM server at {self.base_url} did not answer /models with an OpenAI model list "
                f"(first entry: {str(models[0])[:80]!r}); check the URL points at an OpenAI-compatible API "
                "(it usually ends in /v1), or name the model with STORYREEL_LLM_MODEL or project.toml [llm] model"
            )
        return first

    def _mapped(self, exc: Exception) -> BackendError:
        """Translate an openai exception into Storyreel's vocabulary, naming the URL and the fix."""
        openai = self._openai
        if isinstance(exc, openai.APITimeoutError):
            return LLMUnavailableError(
                f"LLM server at {self.base_url} did not answer within {self.timeout:g} s; check that it is "
                "running and not overloaded, or raise STORYREEL_LLM_TIMEOUT / project.toml [llm] timeout"
            )
        if isinstance(exc, openai.APIConnectionError):
            reason = exc.__cause__ or exc.message
            return LLMUnavailableError(
                f"LLM server at {self.base_url} cannot be reached ({reason}); start it, "
                "or set OPENAI_BASE_URL / project.toml [llm] base_url"
            )
        if isinstance(exc, openai.AuthenticationError):
            return BackendError(
                f"LLM server at {self.base_url} rejected the API key (HTTP {exc.status_code}: "
                f"{_server_message(exc)}); set OPENAI_API_KEY, or the variable named by "
                "project.toml [llm] api_key_env"
            )
        if isinstance(exc, openai.APIStatusError):
            return BackendError(
                f"LLM server at {self.base_url} answered HTTP {exc.status_code} for model "
                f"{self._model!r}: {_server_message(exc)}"
            )
        return BackendError(f"LLM call to {self.base_url} failed: {exc}")


def _response_format(form: str, schema: dict) -> dict[str, Any]:
    if form == "json_schema":
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", str(schema.get("title") or "output"))[:64]
        return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}
    return {"type": "json_object", "schema": schema}


def _sendable(message: Mapping[str, Any]) -> dict[str, Any]:
    """Copy of `message` safe to send: llama.cpp answers HTTP 500 to `content: None`."""
    sendable = dict(message)
    if sendable.get("content") is None:
        sendable["content"] = ""
    return sendable


def _server_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error", body)
        message = error.get("message") if isinstance(error, dict) else error
        message = message or body.get("detail") or body.get("message")
    text = str(message or getattr(exc, "message", "") or exc)
    return text[:500]


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LLMSettings:
    """Where the agent's brain lives. `base_url=None` means the embedded demo model."""

    base_url: str | None
    api_key: str | None
    model: str | None
    json_mode: str = "auto"
    timeout: float = 60.0


def settings_from_env(project_llm: dict | None = None) -> LLMSettings:
    """LLM settings from the environment over project.toml's `[llm]` table.

    Environment: OPENAI_BASE_URL, OPENAI_API_KEY, STORYREEL_LLM_MODEL, STORYREEL_LLM_TIMEOUT.
    Project: base_url, api_key_env (the NAME of the variable holding the key), model, json_mode, timeout.
    """
    table = dict(project_llm or {})
    unknown = set(table) - {"base_url", "api_key_env", "model", "json_mode", "timeout"}
    if unknown:
        raise InputError(
            f"project.toml [llm] has unknown keys {sorted(unknown)}; "
            "use base_url, api_key_env, model, json_mode, timeout"
        )

    base_url = _env("OPENAI_BASE_URL") or _text(table.get("base_url"), "base_url")
    api_key = _env("OPENAI_API_KEY")
    key_var = _text(table.get("api_key_env"), "api_key_env")
    if api_key is None and key_var:
        api_key = _env(key_var)
    model = _env("STORYREEL_LLM_MODEL") or _text(table.get("model"), "model")
    if base_url and not model:
        model = default_model_for(base_url)

    json_mode = _text(table.get("json_mode"), "json_mode") or "auto"
    if json_mode not in JSON_MODES:
        raise InputError(
            f"project.toml [llm] json_mode {json_mode!r} is unknown; use one of {', '.join(JSON_MODES)}"
        )

    env_timeout = _env("STORYREEL_LLM_TIMEOUT")
    if env_timeout is not None:
        timeout = _seconds(env_timeout, "STORYREEL_LLM_TIMEOUT")
    elif table.get("timeout") is not None:
        timeout = _seconds(table["timeout"], "project.toml [llm] timeout")
    else:
        timeout = 60.0
    return LLMSettings(
        base_url=base_url.rstrip("/") if base_url else None,
        api_key=api_key,
        model=model,
        json_mode=json_mode,
        timeout=timeout,
    )


def chat_model_from_settings(settings: LLMSettings, *, description: str | None = None) -> OpenAIChatModel:
    """The client for a configured (non-embedded) endpoint; the embedded one needs `agent.llm_server`."""
    if settings.base_url is None:
        raise InputError(
            "No LLM base_url is configured; start the embedded model with agent.llm_server, "
            "or set OPENAI_BASE_URL / project.toml [llm] base_url"
        )
    return OpenAIChatModel(
        base_url=settings.base_url,
        model=settings.model,
        api_key=settings.api_key,
        timeout=settings.timeout,
        json_mode=settings.json_mode,  # type: ignore[arg-type]  # validated by settings_from_env
        description=description,
    )


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _text(value: Any, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InputError(f"project.toml [llm] {key} must be a string, got {value!r}")
    return value.strip() or None


def _seconds(value: Any, where: str) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a number of seconds, got {value!r}") from None
    if not seconds > 0:
        raise InputError(f"{where} must be a positive number of seconds, got {value!r}")
    return seconds
