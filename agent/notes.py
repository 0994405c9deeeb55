"""The director's words read deterministically: rejection notes and change requests that name a field
value ("title it 'Yuki-Onna'", "call her Oyuki", "make the palette navy, white", "age 40"), which
fields a change request is about ("make Minokichi older" -> age), and panel notes that ask for
something only the shot plan can give ("put Minokichi in this shot", "closer").

A note parsed here is applied to the next draft whatever the model wrote, and checked: the card says
when it could not be applied, and why. Nothing here calls a model.
"""
from __future__ import annotations

import re
import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

_QUOTES = "'\"“”‘’`«»"

# Words a director uses for a field, beyond its own name with spaces ("look tags", "voice notes").
FIELD_ALIASES: dict[str, str] = {
    "colours": "palette", "colors": "palette", "colour palette": "palette", "color palette": "palette",
    "colour scheme": "palette", "color scheme": "palette",
    "look": "look_tags", "looks": "look_tags", "tags": "look_tags", "outfit": "look_tags",
    "appearance": "look_tags",
    "voice": "voice_notes", "voice note": "voice_notes",
    "style": "art_style", "art": "art_style",
    "episode length": "target_episode_seconds", "length": "target_episode_seconds",
    "duration": "target_episode_seconds",
    "series title": "title", "name of the series": "title", "tagline": "logline",
    "personality traits": "personality", "traits": "personality", "job": "role",
    "description": "description", "desc": "description",
}

# Words in a change request -> the fields it is about (the rest of the record is kept as it is).
REQUEST_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\b(older|younger|age|aged|years? old|teen(age)?|child|kid|adult|elderly)\b", ("age",)),
    (r"\b(palette|colou?rs?|colou?r scheme|hues?)\b", ("palette",)),
    (r"\b(title|retitle|rename the series|call the series)\b", ("title",)),
    (r"\b(logline|premise|tagline|pitch)\b", ("logline",)),
    (r"\b(tone|mood|darker|lighter|funnier|grimmer|sadder|happier)\b", ("tone",)),
    (r"\b(art ?style|style|shading|drawn|look of the show)\b", ("art_style",)),
    (r"\b(episode length|seconds|longer episodes?|shorter episodes?)\b", ("target_episode_seconds",)),
    (r"\b(name|rename|call(ed)?)\b", ("name",)),
    (r"\b(role|lead|rival|mentor|villain|sidekick|protagonist|antagonist)\b", ("role",)),
    ((r"\b(personality|kinder|meaner|braver|shy(er)?|cruel(ler)?|nicer|angrier|calmer|colder|warmer|"
      r"friendlier|smarter|wiser|funny|serious|bold(er)?|timid|arrogant|gentle(r)?)\b"), ("personality",)),
    ((r"\b(look|looks|hair|eyes?|wear(s|ing)?|outfit|dress(ed)?|kimono|clothes|clothing|scarf|hat|"
      r"uniform|tall(er)?|short(er)?|scar|glasses|tags?)\b"), ("look_tags",)),
    (r"\b(voice|sounds?|speaks?|accent|pitch)\b", ("voice_notes",)),
    (r"\b(description|describe|bigger|smaller|older building|ruined|abandoned|crowded|empty)\b",
     ("description",)),
    (r"\b(owner|owns|belongs)\b", ("owner",)),
    (r"\b(beats?|hook|twist|cliffhanger|escalation)\b", ("beats",)),
    (r"\b(lines?|dialogue|says?|action)\b", ("lines", "action")),
    (r"\b(episodes?)\b", ("episodes",)),
)

IDENTITY_FIELDS = ("name", "title")


@dataclass(frozen=True)
class NoteEdit:
    """One field value a note asks for, as text from the note (converted when applied)."""

    field: str
    value: str
    clause: str


def _strip(text: str) -> str:
    text = text.strip().rstrip(".!;,").strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


def simple_fields(model: type[BaseModel]) -> dict[str, str]:
    """The fields a note can set on `model`: name -> "str" | "int" | "float" | "list"."""
    out: dict[str, str] = {}
    for name, info in model.model_fields.items():
        ann = info.annotation
        origin = typing.get_origin(ann)
        if ann is str:
            out[name] = "str"
        elif ann is int:
            out[name] = "int"
        elif ann is float:
            out[name] = "float"
        elif origin in (list, types.GenericAlias) and typing.get_args(ann) == (str,):
            out[name] = "list"
    return out


def _field_for(word: str, fields: dict[str, str]) -> str | None:
    word = re.sub(r"\s+", " ", word.strip().casefold().replace("_", " "))
    word = re.sub(r"^(the|her|his|their|its|my)\s+", "", word)
    for name in fields:
        if word == name.replace("_", " "):
            return name
    alias = FIELD_ALIASES.get(word)
    return alias if alias in fields else None


_PRONOUN = r"(?:her|him|them|this one|the character|this character)"
_AGE_TAIL = r"(?:\s*(?:years?(?:\s+old)?|y/?o))?"
_PATTERNS: tuple[tuple[str, str], ...] = (
    # (pattern with a (?P<v>...) value, the field: "@title", "@name" or a field name)
    ((r"^(?:please\s+)?(?:title|retitle|call|name|rename)\s+(?:it|the series|this|the show)\s+"
      r"(?:as\s+|to\s+)?(?P<v>.+)$"), "@title"),
    (rf"^(?:please\s+)?(?:call|name|rename)\s+{_PRONOUN}\s+(?:to\s+|as\s+)?(?P<v>.+)$", "@name"),
    (r"^(?:her|his|their)\s+name\s+(?:is|should be)\s+(?P<v>.+)$", "@name"),
    (rf"^(?:please\s+)?(?:make|set|change)\s+(?:her|him|them)\s+(?:age\s+(?:to\s+)?)?(?P<v>\d{{1,3}}){_AGE_TAIL}$",
     "age"),
    (rf"^(?:she|he|they)\s+(?:is|are|should be)\s+(?P<v>\d{{1,3}}){_AGE_TAIL}$", "age"),
    (rf"^aged?\s*[:=]?\s*(?P<v>\d{{1,3}}){_AGE_TAIL}$", "age"),
)
_VERB = re.compile(r"^(?:please\s+)?(?:set|change|make|use|update|give (?:it|her|him|them))\s+(?P<rest>.+)$",
                   re.IGNORECASE)
_COLON = re.compile(r"^(?P<f>[^:=]{1,40}?)\s*[:=]\s*(?P<v>.+)$")
_COPULA = re.compile(r"^(?P<f>.+?)\s+(?:should be|must be|needs to be)\s+(?P<v>.+)$", re.IGNORECASE)
# "darker", "more menacing": a direction for the model, not a value to set
_RELATIVE = re.compile(
    r"^(?:much |a bit |a little |slightly |even |way )?(?:(?:more|less)\b.*|darker|lighter|brighter|older|"
    r"younger|bigger|smaller|longer|shorter|warmer|colder|cooler|happier|sadder|scarier|funnier|calmer|"
    r"louder|softer|quieter|stronger|weaker|richer|simpler|grimmer)$", re.IGNORECASE)
_LINK = re.compile(r"^(?:to|into|as|=|:)\s+", re.IGNORECASE)


def _clauses(note: str) -> list[str]:
    parts = re.split(r"[;\n]|\.\s+|\s+(?:and then|then)\s+", note)
    return [p.strip() for p in parts if p and p.strip()]


def _field_prefix(text: str, fields: dict[str, str]) -> tuple[str, str] | None:
    """The longest leading words of `text` that name a field, and the value after them."""
    words = text.split()
    for n in range(min(5, len(words) - 1), 0, -1):
        field = _field_for(" ".join(words[:n]), fields)
        if field:
            return field, _LINK.sub("", " ".join(words[n:]), count=1)
    return None


def _parse_clause(text: str, fields: dict[str, str]) -> tuple[str, str] | None:
    for pattern, target in _PATTERNS:
        m = re.match(pattern, text, re.IGNORECASE)
        if not m:
            continue
        if target == "@title":
            field = "title" if "title" in fields else ("name" if "name" in fields else None)
        elif target == "@name":
            field = "name" if "name" in fields else ("title" if "title" in fields else None)
        else:
            field = target if target in fields else None
        if field:
            return field, m.group("v")
    m = _COLON.match(text)
    if m and _field_for(m.group("f"), fields):
        return _field_for(m.group("f"), fields), m.group("v")  # type: ignore[return-value]
    m = _COPULA.match(text)
    if m and _field_for(m.group("f"), fields):
        return _field_for(m.group("f"), fields), m.group("v")  # type: ignore[return-value]
    m = _VERB.match(text)
    if m:
        return _field_prefix(m.group("rest"), fields)
    return None


def parse_note(note: str, model: type[BaseModel]) -> list[NoteEdit]:
    """The field values `note` names for a proposal of `model` (the last value for a field wins)."""
    fields = simple_fields(model)
    found: dict[str, NoteEdit] = {}
    for clause in _clauses(note):
        hit = _parse_clause(clause, fields)
        if hit is None:
            continue
        field, value = hit[0], _strip(hit[1])
        if value and not _RELATIVE.match(value):
            found[field] = NoteEdit(field, value, clause)
    return list(found.values())


def convert(value: str, kind: str) -> Any:
    """A note's text as the field's type; ValueError says why not."""
    if kind == "list":
        items = [_strip(p) for p in re.split(r",|;|/|\band\b", value) if _strip(p)]
        if not items:
            raise ValueError(f"{value!r} names no items")
        return items
    if kind in ("int", "float"):
        m = re.search(r"-?\d+(?:\.\d+)?", value)
        if not m:
            raise ValueError(f"{value!r} is not a number")
        return int(float(m.group())) if kind == "int" else float(m.group())
    return value


def apply_notes(notes: list[str], data: dict[str, Any], model: type[BaseModel]
                ) -> tuple[dict[str, Any], list[str]]:
    """Apply every field value the notes name to `data`; returns (new data, card messages).

    Each edit is validated on its own (the rest of the draft as it is), so one impossible value
    ("palette: energetic") is reported without losing the others.
    """
    fields = simple_fields(model)
    messages: list[str] = []
    out = dict(data)
    for note in notes:
        for edit in parse_note(note, model):
            try:
                value = convert(edit.value, fields[edit.field])
                trial = {**out, edit.field: value}
                checked = model.model_validate(trial).model_dump()
            except ValidationError as exc:
                why = "; ".join(e["msg"] for e in exc.errors(include_url=False)
                                if e.get("loc", ("",))[0] == edit.field) or exc.errors()[0]["msg"]
                messages.append(f"note not applied: “{edit.clause}” — {edit.field} {edit.value!r}: {why}")
                continue
            except ValueError as exc:
                messages.append(f"note not applied: “{edit.clause}” — {exc}")
                continue
            if out.get(edit.field) != checked[edit.field]:
                messages.append(f"note applied: {edit.field} = {_show(checked[edit.field])}")
            out[edit.field] = checked[edit.field]
    return out, messages


def _show(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, list) else repr(value)


def request_fields(request: str, available: list[str]) -> list[str]:
    """The fields of a record a change request is about, among `available` (in their order)."""
    text = request.casefold()
    hit: set[str] = set()
    for pattern, fields in REQUEST_FIELDS:
        if re.search(pattern, text):
            hit.update(fields)
    for name in available:  # a field named outright ("change the role") counts too
        if re.search(rf"\b{re.escape(name.replace('_', ' '))}\b", text):
            hit.add(name)
    return [f for f in available if f in hit]


def adjust_age(age: str, request: str) -> str | None:
    """"older"/"younger" on a numeric age, when the model left the age as it was."""
    m = re.search(r"\d+", age or "")
    text = request.casefold()
    if not m or not re.search(r"\b(older|younger)\b", text):
        return None
    n = int(m.group())
    new = n + 10 if "older" in text else max(1, n - 5 if n < 20 else n - 10)
    return age[:m.start()] + str(new) + age[m.end():]


# ----------------------------------------------------------------------------- panel notes

FRAMING_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bextreme close[- ]?up\b", "extreme close-up"),
    (r"\bclose[- ]?up\b|\bcloser\b|\btighter\b", "close-up"),
    (r"\bestablishing\b", "establishing"),
    (r"\bwide(r)?\b|\bfull[- ]body\b|\bpull (back|out)\b", "wide"),
    (r"\bmedium\b", "medium"),
)


def panel_note_changes(note: str, shot: dict[str, Any], cast: list[str]) -> dict[str, Any]:
    """What a panel note asks of the shot plan: cast members to add, a framing to change to.

    {} when the note is for the painter alone ("darker", "more rain").
    """
    text = note.casefold()
    present = {str(c.get("name", "")).casefold() for c in shot.get("characters", [])}
    add = [name for name in cast if name.casefold() not in present
           and re.search(rf"\b{re.escape(name.casefold())}\b", text)
           and not re.search(rf"\b(without|remove|no|drop)\s+{re.escape(name.casefold())}\b", text)]
    changes: dict[str, Any] = {}
    if add:
        changes["add_characters"] = add
    for pattern, framing in FRAMING_WORDS:
        if re.search(pattern, text):
            if framing != shot.get("framing"):
                changes["framing"] = framing
            break
    return changes
