"""Which ChatModel a session talks to: the configured endpoint, or the embedded demo model.

The embedded llama.cpp server starts in the background so that the studio opens at once; the first
generation waits for it.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from agent.llm import LLMSettings, OpenAIChatModel, chat_model_from_settings
from memory.errors import BackendError

DEMO_NOTICE = (
    "Demo-level writing: the embedded SmolLM2-135M model runs offline on your CPU. For real quality "
    "point Storyreel at any OpenAI-compatible server: set OPENAI_BASE_URL (and OPENAI_API_KEY, "
    "STORYREEL_LLM_MODEL), or [llm] base_url/model in project.toml — OpenAI, Ollama, vLLM, or a "
    "bigger llama.cpp model."
)


class LazyEmbeddedModel:
    """The shipped SmolLM2 GGUF behind llama.cpp's OpenAI-compatible server, started lazily."""

    is_demo = True

    def __init__(self, log_path: Path | None = None, *, start_now: bool = True) -> None:
        from agent.llm_server import EmbeddedLLMServer

        self._server = EmbeddedLLMServer(log_path=log_path)
        self._model: OpenAIChatModel | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self.description = "SmolLM2-135M-Instruct (embedded demo model, llama.cpp; starting…)"
        if start_now:
            self.start_background()

    def start_background(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._start, name="llama-server", daemon=True)
            self._thread.start()

    def _start(self) -> None:
        try:
            from agent.llm_server import embedded_chat_model

            self._server.start()
            self._model = embedded_chat_model(self._server)
            self.description = self._model.description
        except BaseException as exc:  # reported on the first generation, with the server's log
            self._error = exc
        finally:
            self._ready.set()

    def wait_ready(self, timeout: float = 120.0) -> OpenAIChatModel:
        self.start_background()
        if not self._ready.wait(timeout):
            raise BackendError(f"the embedded model did not start within {timeout:.0f} s; "
                               "see the llama-server log in the project's state/ folder")
        if self._error is not None:
            if isinstance(self._error, BackendError):
                raise self._error
            raise BackendError(f"the embedded model failed to start: {self._error}") from self._error
        assert self._model is not None
        return self._model

    def complete(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        return self.wait_ready().complete(messages, **kwargs)

    def close(self) -> None:
        self._server.stop()


def open_chat_model(settings: LLMSettings, *, log_path: Path | None = None) -> Any:
    """The configured endpoint when there is one, else the embedded demo model (started now)."""
    if settings.base_url:
        return chat_model_from_settings(settings)
    return LazyEmbeddedModel(log_path=log_path)


def close_chat_model(model: Any) -> None:
    close = getattr(model, "close", None)
    if callable(close):
        close()
