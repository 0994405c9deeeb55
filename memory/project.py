"""The project folder on disk: layout, settings, atomic writes and the single-writer lock.

One folder per series. Everything the studio writes goes through `atomic_write_*` so a crash or a
full disk never leaves a half-written file, and `ProjectLock` keeps two studios from editing the
same series at once.
"""
from __future__ import annotations

import fcntl
import json
import math
import os
import re
import socket
import tempfile
import tomllib
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from types import TracebackType
from typing import Self

from memory.errors import (
    InputError,
    PathOutsideProjectError,
    ProjectError,
    ProjectLockedError,
    ProjectNameError,
)

SCHEMA_VERSION = 1
MAX_NAME_LENGTH = 80
SETTINGS_FILE = "project.toml"
PROJECT_FOLDERS = ("bible", "state", "assets", "renders")

_NAME_RULE = (
    "a project name must be 1-80 characters, must not start with '.', and must not contain "
    "'/', '\\', '..' or NUL; try something like 'Fox Rain'"
)

# Commented hints written under a settings table when its keys are not set, so the director can
# see what can go there without reading docs.
_SECTION_HINTS: dict[str, tuple[str, ...]] = {
    "llm": (
        '# base_url = "http://127.0.0.1:8080/v1"   # any OpenAI-compatible server',
        '# model = "SmolLM2-135M-Instruct"',
    ),
}


class CorruptProjectError(ProjectError):
    """project.toml exists but cannot be parsed; nothing was changed."""


class SchemaVersionError(ProjectError):
    """project.toml was written by a Storyreel with a schema this one does not know."""


def slugify_project_name(name: str) -> str:
    """Turn a display name into the project's folder name ("Fox Rain" -> "fox-rain").

    Names that could escape the parent folder or hide the project are refused rather than
    silently cleaned, so the director knows why their folder is named as it is.
    """
    if not isinstance(name, str):
        raise ProjectNameError(f"project name {name!r} is not text; {_NAME_RULE}")
    problem = None
    if not name.strip():
        problem = "is empty"
    elif len(name) > MAX_NAME_LENGTH:
        problem = f"is {len(name)} characters long"
    elif "\x00" in name:
        problem = "contains NUL"
    elif "/" in name or "\\" in name:
        problem = "contains a path separator"
    elif ".." in name:
        problem = "contains '..'"
    elif name.strip().startswith("."):
        problem = "starts with '.'"
    if problem:
        raise ProjectNameError(f"project name {name!r} {problem}; {_NAME_RULE}")
    normal = unicodedata.normalize("NFKC", name).strip().lower()
    slug = re.sub(r"[^\w]+", "-", normal).strip("-_")
    if not slug:
        raise ProjectNameError(
            f"project name {name!r} has no letters or digits to name a folder with; {_NAME_RULE}"
        )
    return slug


@dataclass(frozen=True)
class Project:
    """An opened project folder. Paths handed to the rest of the app come from here."""

    root: Path
    name: str
    settings: dict = field(default_factory=dict, compare=False)

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_FILE

    @property
    def canon_path(self) -> Path:
        return self.root / "canon.sqlite"

    @property
    def chroma_dir(self) -> Path:
        return self.root / "bible" / "chroma"

    @property
    def checkpoints_path(self) -> Path:
        return self.root / "state" / "checkpoints.sqlite"

    @property
    def ledger_path(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def assets_dir(self) -> Path:
        return self.root / "assets"

    @property
    def renders_dir(self) -> Path:
        return self.root / "renders"

    @property
    def lock_path(self) -> Path:
        return self.root / ".storyreel.lock"

    def resolve(self, rel: str | Path) -> Path:
        """Absolute path of `rel` inside the project; refuses anything that lands outside it.

        State and canon carry relative paths (they must survive moving the folder); this is the one
        place they become real paths, so a crafted '../' or a symlink cannot reach other files.
        """
        if isinstance(rel, str) and "\x00" in rel:
            raise PathOutsideProjectError(f"path {rel!r} contains NUL; use a plain relative path")
        root = self.root.resolve()
        candidate = Path(rel)
        if not candidate.is_absolute():
            candidate = root / candidate
        real = candidate.resolve()
        if real != root and root not in real.parents:
            raise PathOutsideProjectError(
                f"path {str(rel)!r} resolves to {real}, outside the project {root}; "
                "use a path relative to the project folder without '..' or links out of it"
            )
        return real

    def relative(self, path: str | Path) -> str:
        """The posix path of `path` relative to the project root, for storing in canon/state."""
        real = self.resolve(path)
        return real.relative_to(self.root.resolve()).as_posix()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so readers see either the old or the new file, never a mix.

    Temp file in the same folder (so `os.replace` is a rename on one file system), fsync before
    the rename and fsync of the folder after it, so the new name survives a power cut.
    """
    path = Path(path)
    folder = path.parent
    if not folder.is_dir():
        raise ProjectError(f"cannot write {path}: folder {folder} does not exist; create it first")
    try:
        mode = path.stat().st_mode & 0o777
    except FileNotFoundError:
        mode = 0o644
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(folder)


def atomic_write_text(path: Path, text: str, encoding: str = "utf-8") -> None:
    """`atomic_write_bytes` for text (UTF-8 by default)."""
    atomic_write_bytes(path, text.encode(encoding))


def fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable."""
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


# --- project.toml ---------------------------------------------------------------------------


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _toml_key(key: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return key
    return _toml_string(key)


def _toml_string(text: str) -> str:
    # JSON string escapes are a subset of TOML basic-string escapes, except that TOML also forbids
    # a raw DEL character.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_value(value: object, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()  # TOML's own date/time literals, as tomllib reads them back
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(item, f"{where}[{i}]") for i, item in enumerate(value)) + "]"
    raise InputError(
        f"setting {where} = {value!r} is a {type(value).__name__}; project.toml settings must be "
        "text, numbers, true/false or lists of those"
    )


def _dump_table(lines: list[str], header: str | None, table: dict, hints: tuple[str, ...]) -> None:
    scalars = [(k, v) for k, v in table.items() if not isinstance(v, dict)]
    tables = [(k, v) for k, v in table.items() if isinstance(v, dict)]
    if header is not None:
        lines.append("")
        lines.append(f"[{header}]")
    for key, value in scalars:
        if not isinstance(key, str) or not key:
            raise InputError(f"setting name {key!r} in [{header}] must be non-empty text")
        where = f"{header}.{key}" if header else key
        lines.append(f"{_toml_key(key)} = {_toml_value(value, where)}")
    lines.extend(hint for hint in hints if hint.split("=")[0].strip("# ").strip() not in table)
    for key, sub in tables:
        name = _toml_key(key) if header is None else f"{header}.{_toml_key(key)}"
        _dump_table(lines, name, sub, _SECTION_HINTS.get(key, ()) if header is None else ())


def dump_settings(settings: dict) -> str:
    """Serialise a settings dict as TOML (tables, text, numbers, booleans, lists)."""
    lines = ["# Storyreel project settings. Edit with care; the studio rewrites this file."]
    ordered = dict(settings)
    _dump_table(lines, None, ordered, ())
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # a writer bug must never reach the disk
    return text


#: How much the writers' room plans before it waits for the director, written into project.toml's
#: [targets] at creation (editable there) so the studio, the chat and `make` plan the same series.
#: `shots` (shots per scene plan) is absent: the plan decides, unless `make --shots N` set it.
DEFAULT_TARGETS: dict[str, int] = {"characters": 2, "locations": 2, "props": 1, "episodes": 5, "scenes": 3}


def create_project(parent: Path, name: str, *, targets: dict | None = None) -> Project:
    """Create parent/<slug> with project.toml (its [targets]: `targets`, else DEFAULT_TARGETS) and the
    standard folders."""
    slug = slugify_project_name(name)
    parent = Path(parent).expanduser()
    root = parent / slug
    if root.exists():
        if not root.is_dir():
            raise ProjectError(f"{root} exists and is a file; pick another name for the project")
        if any(root.iterdir()):
            raise ProjectError(
                f"folder {root} already exists and is not empty; pick another name, or open it "
                f"with `storyreel studio {root}` if it is a Storyreel project"
            )
    try:
        root.mkdir(parents=True, exist_ok=True)
        for folder in PROJECT_FOLDERS:
            (root / folder).mkdir(exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"cannot create project folder {root}: {exc.strerror}; check the parent "
                           "folder exists and is writable") from exc
    settings = {"schema_version": SCHEMA_VERSION, "name": name.strip(), "created": _now_iso(), "llm": {},
                "targets": dict(DEFAULT_TARGETS if targets is None else targets)}
    atomic_write_text(root / SETTINGS_FILE, dump_settings(settings))
    return Project(root=root.resolve(), name=settings["name"], settings=settings)


def open_project(path: Path) -> Project:
    """Open an existing project folder, checking that its settings can be read by this version."""
    root = Path(path).expanduser()
    settings_path = root / SETTINGS_FILE
    if not root.is_dir():
        raise ProjectError(
            f"{root} is not a Storyreel project: no such folder; create one with `storyreel new NAME`"
        )
    if not settings_path.is_file():
        raise ProjectError(
            f"{root} is not a Storyreel project: no project.toml; create one with `storyreel new NAME`"
        )
    try:
        raw = settings_path.read_bytes()
    except OSError as exc:
        raise ProjectError(f"cannot read {settings_path}: {exc.strerror}; check its permissions") from exc
    try:
        settings = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise CorruptProjectError(
            f"{settings_path} is not valid UTF-8 (byte {exc.start}); nothing was changed. "
            "Fix the file by hand or restore it from a backup"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        where = re.search(r"line (\d+), column (\d+)", str(exc))
        place = f"line {where.group(1)}, column {where.group(2)}" if where else "unknown position"
        raise CorruptProjectError(
            f"{settings_path} is not valid TOML at {place} ({exc}); nothing was changed. "
            "Fix that line by hand or restore the file from a backup"
        ) from exc
    found = settings.get("schema_version")
    if found is None:
        raise CorruptProjectError(
            f"{settings_path} has no schema_version; nothing was changed. Add the line "
            f"`schema_version = {SCHEMA_VERSION}` at its top if this is a Storyreel project"
        )
    if found != SCHEMA_VERSION or isinstance(found, bool):
        raise SchemaVersionError(
            f"{settings_path} has schema_version {found!r}, but this Storyreel supports only "
            f"schema_version {SCHEMA_VERSION}; upgrade Storyreel (pip install -U storyreel) to open it"
        )
    name = settings.get("name")
    if not isinstance(name, str) or not name.strip():
        name = root.name
    return Project(root=root.resolve(), name=name, settings=settings)


def update_project_settings(project: Project, section: str, values: dict) -> Project:
    """Merge `values` into the [section] table of project.toml, written atomically.

    Reads the file again first, so an edit made by hand since the project was opened is kept.
    """
    if not isinstance(section, str) or not re.fullmatch(r"[A-Za-z0-9_-]+", section):
        raise InputError(f"settings section {section!r} must be letters, digits, '_' or '-', e.g. 'llm'")
    if not isinstance(values, dict):
        raise InputError(f"settings for [{section}] must be a dict, got {type(values).__name__}")
    current = open_project(project.root)
    settings = dict(current.settings)
    existing = settings.get(section, {})
    if not isinstance(existing, dict):
        raise InputError(
            f"{section!r} is a top-level setting in {project.settings_path}, not a table; "
            "choose another section name"
        )
    settings[section] = {**existing, **values}
    atomic_write_text(project.settings_path, dump_settings(settings))
    return Project(root=current.root, name=current.name, settings=settings)


def list_projects(parent: Path) -> list[Project]:
    """Every readable project directly inside `parent`, by name; broken ones are skipped."""
    parent = Path(parent).expanduser()
    if not parent.is_dir():
        return []
    found = []
    for child in sorted(parent.iterdir()):
        if child.is_dir() and (child / SETTINGS_FILE).is_file():
            try:
                found.append(open_project(child))
            except ProjectError:
                continue
    return sorted(found, key=lambda p: p.name.casefold())


# --- lock -----------------------------------------------------------------------------------


class ProjectLock:
    """One writer per project, across processes.

    `flock` on .storyreel.lock: the kernel drops it when the holder dies, so a crash never leaves a
    stale lock behind. The file holds the holder's pid and host, only to say who has it.
    """

    def __init__(self, project: Project) -> None:
        self.project = project
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> Self:
        if self._fd is not None:
            return self
        path = self.project.lock_path
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise ProjectError(f"cannot create lock file {path}: {exc.strerror}; check the project "
                               "folder is writable") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._read_holder(fd)
            os.close(fd)
            raise ProjectLockedError(
                f"project {self.project.name!r} ({self.project.root}) is open in another process "
                f"({holder}); close the other studio/chat, or wait for it to finish"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid={os.getpid()}\nhost={socket.gethostname()}\n".encode(), 0)
        os.fsync(fd)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    @staticmethod
    def _read_holder(fd: int) -> str:
        try:
            text = os.pread(fd, 200, 0).decode("utf-8", "replace")
        except OSError:
            text = ""
        info = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
        pid = info.get("pid", "unknown")
        host = info.get("host", "unknown host")
        return f"pid {pid} on {host}"

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __del__(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:
                pass
