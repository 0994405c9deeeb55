"""The project's langgraph checkpoints (state/checkpoints.sqlite), read with a strict serializer.

langgraph's default serializer rebuilds any object a checkpoint names (a msgpack "ext" value is a
module, a name and arguments; the old formats allow pickle), so a crafted checkpoints.sqlite could
run code as soon as a project is opened, and `storyreel studio` opens the last project by itself.
Storyreel's graph state is plain JSON-like data, so the only objects a checkpoint may hold are
langgraph's own bookkeeping types in `ALLOWED_TYPES`. Anything else is refused before langgraph
decodes it, with an error that names the file and the way out (`storyreel doctor --repair` moves the
bad checkpoints aside); nothing in the refused value is imported or called.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.errors import ProjectError

if TYPE_CHECKING:
    from langgraph.checkpoint.sqlite import SqliteSaver

#: (module, name) of every object a Storyreel checkpoint may contain: langgraph's interrupts,
#: commands and sends. The state itself is dicts, lists, text, numbers, booleans and None.
ALLOWED_TYPES: frozenset[tuple[str, str]] = frozenset({
    ("langgraph.types", "Interrupt"),
    ("langgraph.types", "Command"),
    ("langgraph.types", "Send"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
})
#: Serialisation formats a checkpoint row may use ("pickle" and the old "json" are refused).
ALLOWED_FORMATS = ("null", "bytes", "bytearray", "msgpack")

# langgraph.checkpoint.serde.jsonplus ext codes: 0-2 constructors, 3 a classmethod call, 4/5
# pydantic models, 6 numpy arrays, 7 a delta snapshot (a plain container).
_CONSTRUCTOR_CODES = (0, 1, 2, 4, 5)
_DELTA_SNAPSHOT = 7
SQLITE_HEADER = b"SQLite format 3\x00"


class CheckpointError(ProjectError):
    """state/checkpoints.sqlite cannot be used: unreadable, or it holds what Storyreel never writes."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint names an object outside the allow-list; it was refused and nothing ran."""


def _way_out(path: Path) -> str:
    project = path.parent.parent
    return (f"run `storyreel doctor {project} --repair` to move the checkpoints aside into "
            f"state/quarantine/ (canon, the ledger and every asset are kept; the chat starts over, "
            f"asks for the premise again and carries on from canon), or restore {path.name} from a backup")


def _vetting_hook(refused: list[str]) -> Any:
    """An ormsgpack ext hook that rebuilds nothing: it notes in `refused` what must not be loaded
    (ormsgpack turns any error raised in a hook into a bare ValueError, hence the list)."""
    import ormsgpack

    def hook(code: int, data: bytes) -> None:
        if code not in (*_CONSTRUCTOR_CODES, _DELTA_SNAPSHOT):
            refused.append(f"a msgpack extension of type {code}")
            raise ValueError(refused[-1])
        try:
            inner = ormsgpack.unpackb(data, ext_hook=hook, option=ormsgpack.OPT_NON_STR_KEYS)
        except ValueError as exc:
            if not refused:
                refused.append(f"an unreadable msgpack extension ({exc})")
            raise
        if code == _DELTA_SNAPSHOT:
            return
        if not (isinstance(inner, (list, tuple)) and len(inner) >= 3
                and isinstance(inner[0], str) and isinstance(inner[1], str)):
            refused.append("a malformed object reference")
            raise ValueError(refused[-1])
        if (inner[0], inner[1]) not in ALLOWED_TYPES:
            refused.append(f"the object {inner[0]}.{inner[1]}")
            raise ValueError(refused[-1])

    return hook


def vet_payload(type_: str, raw: bytes | None) -> str | None:
    """Why a stored (format, bytes) value must not be loaded, or None when it is safe."""
    import ormsgpack

    if type_ not in ALLOWED_FORMATS:
        return f"the serialisation format {type_!r}"
    if type_ != "msgpack":
        return None
    refused: list[str] = []
    try:
        ormsgpack.unpackb(raw or b"", ext_hook=_vetting_hook(refused), option=ormsgpack.OPT_NON_STR_KEYS)
    except Exception as exc:  # noqa: BLE001 - ormsgpack.MsgpackDecodeError or the hook's ValueError
        return refused[0] if refused else f"unreadable msgpack data ({exc})"
    return None


def strict_serializer(path: Path) -> Any:
    """langgraph's JsonPlusSerializer without pickle, with the allow-list, and a vetting pass
    before every load; `path` is only for the messages."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    class StrictSerializer(JsonPlusSerializer):
        """Refuses, instead of rebuilding, anything outside ALLOWED_TYPES."""

        def loads_typed(self, data: tuple[str, bytes]) -> Any:
            why = vet_payload(data[0], data[1])
            if why is not None:
                raise UnsafeCheckpointError(
                    f"{path} holds a checkpoint with {why}, which Storyreel never writes; it was "
                    f"refused and nothing in it ran. The file may have been tampered with: "
                    f"{_way_out(path)}"
                )
            return super().loads_typed(data)

        def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
            type_, raw = super().dumps_typed(obj)
            why = vet_payload(type_, raw)
            if why is not None:  # a programming error: state must stay plain data
                raise TypeError(
                    f"graph state holds {why}, which the strict checkpoint reader would refuse; "
                    "keep checkpointed state to dicts, lists, text and numbers, or add the type to "
                    "memory.checkpoints.ALLOWED_TYPES if it is safe to rebuild"
                )
            return type_, raw

    return StrictSerializer(
        pickle_fallback=False, allowed_json_modules=None,
        allowed_msgpack_modules=sorted(ALLOWED_TYPES),
    )


def check_checkpoints_file(path: Path) -> None:
    """Refuse a checkpoints file that is not an SQLite database (garbage, zeroed) with a message."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise CheckpointError(f"{path} is not a file; {_way_out(path)}")
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    if size == 0:
        return  # sqlite makes an empty file a fresh database
    with path.open("rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header != SQLITE_HEADER:
        raise CheckpointError(
            f"{path} is not an SQLite database (it starts with {header[:16]!r}); {_way_out(path)}"
        )


def open_checkpointer(path: Path) -> SqliteSaver:
    """The project's SqliteSaver on `path` with the strict serializer. Raises CheckpointError (a
    ProjectError naming the file and the way out) when the file cannot be used."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise CheckpointError(
            f"{path.parent} is a file, but Storyreel keeps its checkpoints in that folder; move the "
            f"file away (e.g. `mv {path.parent} {path.parent}.bak`) and open the project again"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    check_checkpoints_file(path)
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        saver = SqliteSaver(conn, serde=strict_serializer(path))
        saver.setup()
        conn.execute("SELECT count(*) FROM checkpoints").fetchone()
        conn.execute("SELECT count(*) FROM writes").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise CheckpointError(
            f"{path} is not a readable checkpoint database ({exc}); {_way_out(path)}"
        ) from exc
    except BaseException:
        conn.close()
        raise
    return saver


def unsafe_rows(path: Path) -> list[tuple[str, str, str]]:
    """(table, row key, why) for every stored value the strict serializer would refuse."""
    found = []
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        for thread_id, checkpoint_id, type_, blob in conn.execute(
                "SELECT thread_id, checkpoint_id, type, checkpoint FROM checkpoints"):
            why = vet_payload(type_, blob)
            if why:
                found.append(("checkpoints", f"{thread_id}/{checkpoint_id}", why))
        for thread_id, checkpoint_id, task_id, idx, type_, blob in conn.execute(
                "SELECT thread_id, checkpoint_id, task_id, idx, type, value FROM writes"):
            why = vet_payload(type_, blob)
            if why:
                found.append(("writes", f"{thread_id}/{checkpoint_id}/{task_id}/{idx}", why))
    finally:
        conn.close()
    return found
