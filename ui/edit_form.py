"""The review card's edit form as data: which widget each field gets, and the edited values back.

No gradio here, so the parsing is tested without a browser. The widgets follow the proposal
schemas (agent/schemas.py `PROPOSAL_MODELS`): a `Literal` becomes a dropdown of its values, a list
of objects (shots, dialogue lines, beats, episodes, motion rows) becomes one row of widgets per item
with add / remove buttons, and nothing is ever shown as raw JSON.
"""
from __future__ import annotations

import copy
import re
import typing
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from memory.errors import InputError

# Camera angles offered for a shot (the schema keeps `angle` free text: a custom value is allowed).
ANGLES = ("eye level", "high", "low", "bird's-eye", "worm's-eye", "dutch", "over the shoulder")
# Fields the director reads but does not edit (ids the app sets) and ones carried over unseen.
READ_ONLY = {"scene_id", "shot_id", "source", "language"}
HIDDEN = {"id", "preview", "clip", "clip_fps", "candidates"}
ROW_NAMES = {"shots": "shot", "lines": "line", "beats": "beat", "episodes": "episode"}


@dataclass(frozen=True)
class Widget:
    """One input: `kind` is text, lines (one item per line), multi, number, int, choice, check,
    ints ("1, 2") or people ("Aiko: scared, looking up; Ren")."""

    name: str
    kind: str
    label: str
    choices: tuple[str, ...] = ()
    custom: bool = False          # a dropdown that also takes a value outside its choices
    read_only: bool = False


@dataclass(frozen=True)
class Table:
    """A list of objects, edited one row per item."""

    name: str
    label: str
    row_name: str
    columns: tuple[Widget, ...]
    row_model: type[BaseModel] = field(repr=False, default=BaseModel)


#: Fields whose bare name does not say what to write (the director's vision, agent.kinds.vision).
HINTS = {"emotional_core": "emotional core: what should the audience feel at the end of episode 1?",
         "tone_references": "tone references (works, moods)",
         "never": "never: what must not happen (\"no gore\", \"Aiko never lies\")"}


def _label(name: str) -> str:
    return HINTS.get(name, name.replace("_", " "))


def _literal_values(ann: Any) -> tuple[str, ...] | None:
    if typing.get_origin(ann) is typing.Literal:
        return tuple(str(a) for a in typing.get_args(ann))
    return None


def _list_item(ann: Any) -> Any:
    if typing.get_origin(ann) is list:
        args = typing.get_args(ann)
        return args[0] if args else Any
    return None


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _widget(name: str, ann: Any, vocab: dict[str, list[str]], *, in_row: bool) -> Widget | None:
    label = _label(name)
    if name in HIDDEN:
        return None
    if name in READ_ONLY:
        return Widget(name, "text", label, read_only=True)
    values = _literal_values(ann)
    if values:
        return Widget(name, "choice", label, values)
    if ann is bool:
        return Widget(name, "check", label)
    if ann is int:
        return Widget(name, "int", label)
    if ann is float:
        return Widget(name, "number", label)
    item = _list_item(ann)
    if item is int:
        return Widget(name, "ints", f"{label} (numbers, comma-separated)")
    if item is not None and _is_model(item):
        if in_row:  # characters in a shot: one line of "Name: expression, pose"; more with ";"
            return Widget(name, "people", f"{label} (Name: expression, pose; …)")
        return None  # a table, built by the caller
    if item is not None:
        if name == "characters" and vocab.get("cast"):
            return Widget(name, "multi", label, tuple(vocab["cast"]), custom=True)
        return Widget(name, "lines", f"{label} (one per line)")
    if name == "speaker" and vocab.get("cast"):
        return Widget(name, "choice", label, (*vocab["cast"], "Narrator"), custom=True)
    if name == "location" and vocab.get("places"):
        return Widget(name, "choice", label, tuple(vocab["places"]), custom=True)
    if name == "emotion":
        from agent.schemas import EMOTIONS

        return Widget(name, "choice", label, EMOTIONS, custom=True)
    if name == "angle":
        return Widget(name, "choice", label, ANGLES, custom=True)
    return Widget(name, "text", label)


def form_layout(model: type[BaseModel], vocab: dict[str, list[str]] | None = None) -> list[Widget | Table]:
    """The widgets of a proposal schema, in the schema's field order."""
    vocab = vocab or {}
    layout: list[Widget | Table] = []
    for name, info in model.model_fields.items():
        item = _list_item(info.annotation)
        if item is not None and _is_model(item) and name not in HIDDEN:
            cols = tuple(w for n, f in item.model_fields.items()
                         if (w := _widget(n, f.annotation, vocab, in_row=True)) is not None)
            layout.append(Table(name, _label(name), ROW_NAMES.get(name, "row"), cols, item))
            continue
        w = _widget(name, info.annotation, vocab, in_row=False)
        if w is not None:
            layout.append(w)
    return layout


def skeleton(model: type[BaseModel], *, rows: bool = True) -> dict[str, Any]:
    """An empty proposal of the schema's shape (defaults, else empty values; one empty row per
    table, none in a row's own lists), for writing a proposal yourself when the model failed."""
    out: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if not info.is_required():
            out[name] = copy.deepcopy(info.get_default(call_default_factory=True))
            if rows and out[name] == [] and (item := _list_item(info.annotation)) is not None \
                    and _is_model(item):
                out[name] = [skeleton(item, rows=False)]
            continue
        ann = info.annotation
        values = _literal_values(ann)
        item = _list_item(ann)
        if values:
            out[name] = values[0]
        elif ann in (int, float):
            low = next((getattr(m, a) for m in info.metadata for a in ("ge", "gt") if hasattr(m, a)), 0)
            out[name] = ann(low)
        elif item is not None:
            out[name] = ([skeleton(item, rows=False)] if rows else []) if _is_model(item) else []
        elif _is_model(ann):
            out[name] = skeleton(ann, rows=False)
        else:
            out[name] = ""
    return out


def row_skeleton(table: Table) -> dict[str, Any]:
    return skeleton(table.row_model, rows=False)


def start_data(model: type[BaseModel], data: dict[str, Any] | None) -> dict[str, Any]:
    """What the form opens with: the proposal (or partial draft) over the schema's empty shape."""
    base = skeleton(model)
    for key, value in (data or {}).items():
        base[key] = copy.deepcopy(value)
    return base


# ----------------------------------------------------------------------------- widget values

def people_text(people: list[dict[str, Any]]) -> str:
    """[{"name": "Aiko", "expression": "scared", "pose": "looking up"}] -> "Aiko: scared, looking up"."""
    parts = []
    for p in people or []:
        rest = ", ".join(x for x in (str(p.get("expression") or ""), str(p.get("pose") or "")) if x)
        parts.append(f"{p.get('name', '')}: {rest}" if rest else str(p.get("name", "")))
    return "; ".join(parts)


def parse_people(text: str, where: str = "characters") -> list[dict[str, Any]]:
    """The inverse of `people_text`: ';' between people, 'Name: expression, pose' for each."""
    people = []
    for chunk in re.split(r"[;\n]", str(text or "")):
        chunk = chunk.strip()
        if not chunk:
            continue
        name, _, rest = chunk.partition(":")
        name = name.strip()
        if not name:
            raise InputError(f"{where}: {chunk!r} has no name; write it as 'Name: expression, pose'")
        expression, _, pose = rest.partition(",")
        people.append({"name": name, "expression": expression.strip() or "neutral", "pose": pose.strip()})
    return people


def parse_ints(text: Any, where: str) -> list[int]:
    """'1, 2' or '1 2' -> [1, 2]; a word that is not a whole number is refused, naming it."""
    if isinstance(text, list):
        text = ", ".join(map(str, text))
    out = []
    for token in re.split(r"[,\s]+", str(text or "").strip()):
        if not token:
            continue
        try:
            out.append(int(token))
        except ValueError as exc:
            raise InputError(f"{where}: {token!r} is not a line number; write numbers like 1, 2") from exc
    return out


def widget_value(w: Widget, value: Any) -> Any:
    """A stored value as its widget shows it."""
    if w.kind == "lines":
        return "\n".join(map(str, value or []))
    if w.kind == "ints":
        return ", ".join(map(str, value or []))
    if w.kind == "people":
        return people_text(value or [])
    if w.kind == "multi":
        return list(value or [])
    if w.kind == "check":
        return bool(value)
    if w.kind in ("number", "int"):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if isinstance(value, list):  # a read-only list (a translation's source lines)
        return "\n".join(map(str, value))
    return "" if value is None else str(value)


def from_widget(w: Widget, value: Any, old: Any, where: str) -> Any:
    """A widget's value as the proposal stores it; InputError names the field when it cannot be."""
    if w.read_only:
        return old
    if w.kind == "lines":
        return [v.strip() for v in str(value or "").splitlines() if v.strip()]
    if w.kind == "ints":
        return parse_ints(value, where)
    if w.kind == "people":
        return parse_people(value, where)
    if w.kind == "multi":
        return [str(v) for v in (value or [])]
    if w.kind == "check":
        return bool(value)
    if w.kind in ("number", "int"):
        if value in (None, ""):
            return old
        try:
            number = float(value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{where}: {value!r} is not a number") from exc
        return int(number) if w.kind == "int" and number.is_integer() else number
    return "" if value is None else str(value)


def slots(layout: list[Widget | Table], data: dict[str, Any]) -> list[tuple[tuple[Any, ...], Widget]]:
    """Every widget the form shows, in order, with where its value goes: (key,) or (key, row, col)."""
    out: list[tuple[tuple[Any, ...], Widget]] = []
    for item in layout:
        if isinstance(item, Table):
            for r, _ in enumerate(data.get(item.name) or []):
                out += [((item.name, r, c.name), c) for c in item.columns]
        else:
            out.append(((item.name,), item))
    return out


def assemble(layout: list[Widget | Table], data: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    """The edited proposal: `data` (fields the form hides are kept) with each widget's value."""
    edited = copy.deepcopy(data)
    for (path, w), value in zip(slots(layout, data), values):
        if len(path) == 1:
            edited[path[0]] = from_widget(w, value, data.get(path[0]), _label(path[0]))
        else:
            key, r, col = path
            row = edited[key][r]
            where = f"{ROW_NAMES.get(key, 'row')} {r + 1} {_label(col)}"
            row[col] = from_widget(w, value, data[key][r].get(col), where)
    return edited


def lenient_assemble(layout: list[Widget | Table], data: dict[str, Any], values: list[Any]) -> dict[str, Any]:
    """Like `assemble`, keeping a value that does not parse yet (adding or removing a row must not
    lose what was typed elsewhere)."""
    edited = copy.deepcopy(data)
    for (path, w), value in zip(slots(layout, data), values):
        target = edited if len(path) == 1 else edited[path[0]][path[1]]
        key = path[-1]
        try:
            target[key] = from_widget(w, value, target.get(key), key)
        except InputError:
            pass
    return edited


def add_row(layout: list[Widget | Table], data: dict[str, Any], table: str) -> dict[str, Any]:
    tab = next(t for t in layout if isinstance(t, Table) and t.name == table)
    rows = list(data.get(table) or [])
    new = row_skeleton(tab)
    if rows:  # a new shot or line starts like the one before it, minus what is particular to it
        for col in tab.columns:
            if col.kind in ("choice", "check") and col.name not in ("speaker",):
                new[col.name] = copy.deepcopy(rows[-1].get(col.name, new.get(col.name)))
    return {**data, table: [*rows, new]}


def remove_row(data: dict[str, Any], table: str, index: int) -> dict[str, Any]:
    rows = list(data.get(table) or [])
    if 0 <= index < len(rows):
        rows.pop(index)
    return {**data, table: rows}
