"""What the studio's web server may hand out: the open project's assets, renders and reports, nothing else.

gradio serves `/gradio_api/file=<absolute path>` for anything under its `allowed_paths` (minus its
`blocked_paths`), and reads both lists on every request. The studio can switch projects while it
runs, so both are live views of the open project instead of lists fixed at launch:

- allowed: `<project>/assets`, `<project>/renders` and `<project>/reports` (the authorship report the
  Credits tab writes) of the project open now (none without one);
- blocked: the project's own records (canon.sqlite, state/, ledger.jsonl, project.toml, bible/, the
  lock) and every other project in the projects folder, even when a path is spelled to reach them.

Files that a browser would run (HTML, SVG, XML, scripts) are sent as downloads, never inline, by a
small ASGI middleware (`DownloadActiveContent`), since gradio shows allowed files inline.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

SERVED_FOLDERS = ("assets", "renders", "reports")   # reports: the Credits tab's downloads
PRIVATE_ENTRIES = ("canon.sqlite", "canon.sqlite-wal", "canon.sqlite-shm", "state", "ledger.jsonl",
                   "project.toml", "bible", ".storyreel.lock")
ACTIVE_SUFFIXES = (".html", ".htm", ".xhtml", ".svg", ".svgz", ".xml", ".js", ".mjs")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
AUTH_USER = "storyreel"


class _LivePaths(list):  # type: ignore[type-arg]
    """A list whose contents are computed when gradio reads it (iterates, adds, or tests it)."""

    def __init__(self, compute: Callable[[], list[str]]) -> None:
        super().__init__()
        self._compute = compute

    def _now(self) -> list[str]:
        try:
            return list(self._compute())
        except Exception:  # noqa: BLE001 - a failing read serves nothing rather than everything
            return []

    def __iter__(self) -> Any:
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._now())

    def __bool__(self) -> bool:   # gradio's `allowed_paths or []` must keep this live list
        return True

    def __add__(self, other: Any) -> list[str]:  # type: ignore[override]
        return self._now() + list(other)

    def __contains__(self, item: object) -> bool:
        return item in self._now()

    def __getitem__(self, index: Any) -> Any:
        return self._now()[index]

    def __repr__(self) -> str:
        return repr(self._now())


def served_paths(root: Path | None) -> list[str]:
    """The folders of the project at `root` the studio may serve."""
    if root is None:
        return []
    root = Path(root).resolve()
    return [str(root / name) for name in SERVED_FOLDERS]


def blocked_paths(root: Path | None, projects_dir: Path) -> list[str]:
    """The open project's private files, and every other project beside it."""
    blocked: list[str] = []
    here = Path(root).resolve() if root is not None else None
    if here is not None:
        blocked += [str(here / name) for name in PRIVATE_ENTRIES]
    for parent in {Path(projects_dir).expanduser().resolve(), *([here.parent] if here is not None else [])}:
        try:
            children = list(parent.iterdir()) if parent.is_dir() else []
        except OSError:
            children = []
        for child in children:
            try:
                real = child.resolve()
            except OSError:
                continue
            if real != here and (child / "project.toml").exists():
                blocked.append(str(real))
    return blocked


def live_allowed(root_now: Callable[[], Path | None]) -> list[str]:
    return _LivePaths(lambda: served_paths(root_now()))


def live_blocked(root_now: Callable[[], Path | None], projects_dir: Path) -> list[str]:
    return _LivePaths(lambda: blocked_paths(root_now(), projects_dir))


def needs_token(host: str) -> bool:
    """Anything but loopback is reachable by others: the studio then asks for a token."""
    return host.strip("[]") not in LOOPBACK_HOSTS


def new_token() -> str:
    return secrets.token_urlsafe(18)


class DownloadActiveContent:
    """ASGI middleware: a file from `/file=` that a browser would run is sent as an attachment."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or "/file=" not in scope.get("path", "") and \
                "/file/" not in scope.get("path", ""):
            await self.app(scope, receive, send)
            return
        path = unquote(scope.get("path", "")).split("?", 1)[0].lower()
        if not path.endswith(ACTIVE_SUFFIXES):
            await self.app(scope, receive, send)
            return

        async def send_as_download(message: dict[str, Any]) -> None:
            if message.get("type") == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() not in (b"content-type", b"content-disposition")]
                headers += [(b"content-type", b"application/octet-stream"),
                            (b"content-disposition", b"attachment"),
                            (b"x-content-type-options", b"nosniff")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_as_download)
