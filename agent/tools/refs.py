"""Entity linking against canon: which records a director's words name.

Names and their typos ("Aikoo", "Kiato": same first letter, about the same length), honorifics and possessives ("Aiko-san", "Ren's"), the
distinctive words of a place or prop ("the shrine", "the umbrella"), numbers and ordinals ("scene 2",
"the second scene", "shot 4", "scene 2 shot 1", "the last shot", "episode 1", "line 2"), a scene by
its place ("the station scene"), the style and series words ("palette", "logline"), and pronouns
("her", "him", "this shot") resolved to the record on the card or named earlier in the message.

Used by the offline router to choose a target and by every tool to resolve a reference given as an
id or a name, so both routers read references the same way. Nothing here calls a model.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import Any

from memory.canon import Canon, Record

NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                "nine": 9, "ten": 10, "eleven": 11, "twelve": 12}
ORDINALS = {"first": 1, "1st": 1, "opening": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
            "4th": 4, "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "seventh": 7, "7th": 7, "eighth": 8,
            "8th": 8, "ninth": 9, "9th": 9, "tenth": 10, "10th": 10}
LAST_WORDS = ("last", "final", "closing", "ending")
_NUM = r"(\d{1,3}|" + "|".join(NUMBER_WORDS) + r")"
_ORD = r"(" + "|".join([*ORDINALS, *LAST_WORDS]) + r")"
_HONORIFIC = r"(?:[-\s](?:san|kun|chan|sama|sensei|senpai))?"
_STOP = {"the", "a", "an", "of", "old", "new", "little", "big", "hill", "top", "night", "paper", "and", "in",
         "on", "at", "to", "for"}
_FIELD_RECORDS: tuple[tuple[str, str], ...] = (
    (r"\b(palette|colou?rs?|colou?r scheme|art ?style|shading|look of the show|visual style)\b", "style"),
    (r"\b(logline|series title|title of the series|the show'?s title|premise|tagline)\b", "series"),
    (r"\b(outline|season plan|season arc)\b", "outline"),
    (r"\b(beats?|hook|cliffhanger|twist|escalation)\b", "beats-ep1"),
)
MALE = r"\b(he|him|his|himself)\b"
FEMALE = r"\b(she|her|hers|herself)\b"
PLURAL = r"\b(they|them|their)\b"
THIS = r"\b(this|that|it|this one|the current one)\b"


def number(word: str) -> int | None:
    word = word.casefold()
    if word.isdigit():
        return int(word)
    if word in NUMBER_WORDS:
        return NUMBER_WORDS[word]
    return ORDINALS.get(word)


@dataclass(frozen=True)
class Mention:
    """A record the words name, where, and how it was found."""

    record: Record
    start: int
    end: int
    how: str          # name | fuzzy | word | number | ordinal | field | pronoun | focus


@dataclass
class Catalog:
    """Canon as the linker reads it, built once per message (a few small queries)."""

    canon: Canon
    characters: list[Record] = field(default_factory=list)
    locations: list[Record] = field(default_factory=list)
    props: list[Record] = field(default_factory=list)
    scenes: list[Record] = field(default_factory=list)            # episode, then number
    shots: dict[str, list[Record]] = field(default_factory=dict)  # scene id -> shots by index
    episodes: list[Record] = field(default_factory=list)

    @classmethod
    def of(cls, canon: Canon) -> Catalog:
        cat = cls(canon=canon, characters=canon.list("character"), locations=canon.list("location"),
                  props=canon.list("prop"), episodes=canon.list("episode"))
        cat.scenes = sorted(canon.list("scene"), key=lambda r: (int(r.data.get("episode", 1)),
                                                                int(r.data.get("number", 0))))
        by_scene: dict[str, list[Record]] = {}
        for shot in canon.list("shot"):
            by_scene.setdefault(str(shot.data.get("scene_id")), []).append(shot)
        cat.shots = {k: sorted(v, key=lambda r: int(r.data.get("index", 0))) for k, v in by_scene.items()}
        return cat

    def all_shots(self) -> list[Record]:
        return [s for sc in self.scenes for s in self.shots.get(sc.id, [])]

    def named(self) -> list[Record]:
        return [*self.characters, *self.locations, *self.props]

    def get(self, record_id: str | None) -> Record | None:
        return self.canon.live(record_id) if record_id else None

    def scene_of(self, rec: Record | None) -> Record | None:
        if rec is None:
            return None
        if rec.kind == "scene":
            return rec
        if rec.kind == "shot":
            return self.get(str(rec.data.get("scene_id")))
        if rec.kind == "line":
            return self.get(str(rec.data.get("scene_id")))
        return None

    def lines(self, scene: Record) -> list[Record]:
        """A scene's dialogue lines as pseudo-records (kind "line"; not stored separately in canon)."""
        return [_line_record(scene, ln, i) for i, ln in enumerate(scene.data.get("lines", []), 1)]

    def line(self, line_id: str) -> Record | None:
        for scene in self.scenes:
            for ln in self.lines(scene):
                if ln.id == line_id:
                    return ln
        return None


def _line_record(scene: Record, line: dict[str, Any], i: int) -> Record:
    return Record(id=str(line.get("id") or f"{scene.id}-l{i}"), kind="line", rev=scene.rev,
                  data={**line, "scene_id": scene.id, "number": i}, created_at=scene.created_at,
                  actor=scene.actor)


def display(rec: Record | None) -> str:
    """A record as the director would name it."""
    if rec is None:
        return "nothing"
    if rec.kind == "scene":
        return f"scene {rec.data.get('number')} (“{rec.data.get('title', '')}”, {rec.id})"
    if rec.kind == "shot":
        return f"shot {rec.data.get('index')} of {rec.data.get('scene_id')} ({rec.id})"
    if rec.kind == "line":
        return f"{rec.data.get('speaker')}'s line “{rec.data.get('line')}” ({rec.id})"
    name = rec.data.get("name") or rec.data.get("title")
    return f"{name} ({rec.id})" if name else rec.id


# ----------------------------------------------------------------------------- linking


def _name_forms(rec: Record) -> list[str]:
    name = str(rec.data.get("name") or "").strip()
    forms = [name] if name else []
    forms += [str(a) for a in rec.data.get("aliases", []) or [] if a]
    return forms


def _words(rec: Record) -> list[str]:
    """Distinctive words of a place or prop name ("Hilltop Shrine" -> shrine, hilltop)."""
    name = str(rec.data.get("name") or "")
    return [w for w in re.findall(r"[a-z]{4,}", name.casefold()) if w not in _STOP]


def _tokens(text: str) -> list[tuple[str, int, int]]:
    return [(m.group(0), m.start(), m.end()) for m in re.finditer(r"[A-Za-z][A-Za-z'’-]*", text)]


def link(text: str, cat: Catalog, focus: Record | None = None) -> list[Mention]:
    """Every record `text` names, in the order they appear (pronouns resolved last)."""
    lowered = text.casefold()
    found: list[Mention] = []
    taken: list[tuple[int, int]] = []

    def add(rec: Record | None, start: int, end: int, how: str) -> None:
        if rec is None or any(s < end and start < e for s, e in taken):
            return
        taken.append((start, end))
        found.append(Mention(rec, start, end, how))

    # scenes and shots by number: "scene 2 shot 1", "shot 1 of scene 2", "scene 2's first shot"
    def scene_no(n: int | None, last: bool = False) -> Record | None:
        eps = [s for s in cat.scenes if int(s.data.get("episode", 1)) == _episode_in(lowered)]
        eps = eps or cat.scenes
        if last:
            return eps[-1] if eps else None
        return next((s for s in eps if int(s.data.get("number", 0)) == n), None)

    def shot_no(scene: Record | None, n: int | None, last: bool = False) -> Record | None:
        shots = cat.shots.get(scene.id, []) if scene is not None else cat.all_shots()
        if not shots:
            return None
        if last:
            return shots[-1]
        return shots[n - 1] if n and 1 <= n <= len(shots) else None

    # lines: "line 2 (of scene 1)", "Aiko's line in scene 1" is resolved by the tools from both mentions
    for m in re.finditer(rf"\bline\s*{_NUM}\b(?:\s+(?:of|in)\s+scene\s*{_NUM})?", lowered):
        sc = scene_no(number(m.group(2))) if m.group(2) else cat.scene_of(focus)
        if sc is not None:
            lines = cat.lines(sc)
            n = number(m.group(1)) or 0
            add(lines[n - 1] if 1 <= n <= len(lines) else None, m.start(), m.end(), "number")
    for m in re.finditer(rf"\bscene\s*{_NUM}(?:'s)?\s*,?\s*(?:shot\s*{_NUM}|{_ORD}\s+shot)", lowered):
        sc = scene_no(number(m.group(1)))
        last = (m.group(3) or "") in LAST_WORDS
        add(shot_no(sc, number(m.group(2) or m.group(3) or ""), last) if sc else None, m.start(), m.end(), "number")
    for m in re.finditer(rf"\b(?:shot\s*{_NUM}|(?:the\s+)?{_ORD}\s+shot)\s+(?:of|in|from)\s+(?:the\s+)?"
                         rf"(?:scene\s*{_NUM}|{_ORD}\s+scene)", lowered):
        sc = scene_no(number(m.group(3) or m.group(4) or ""), (m.group(4) or "") in LAST_WORDS)
        last = (m.group(2) or "") in LAST_WORDS
        add(shot_no(sc, number(m.group(1) or m.group(2) or ""), last) if sc else None, m.start(), m.end(), "number")
    focus_scene = cat.scene_of(focus)
    for m in re.finditer(rf"\bshot\s*(?:#|no\.?\s*)?{_NUM}\b", lowered):
        n = number(m.group(1))
        # "shot 4": within the scene on the card, else counted through the episode
        rec = shot_no(focus_scene, n) if focus_scene is not None and n and n <= len(
            cat.shots.get(focus_scene.id, [])) else shot_no(None, n)
        add(rec, m.start(), m.end(), "number")
    for m in re.finditer(rf"\b{_ORD}\s+shot\b", lowered):
        last = m.group(1) in LAST_WORDS
        add(shot_no(focus_scene, number(m.group(1)), last) if focus_scene is not None
            else shot_no(None, number(m.group(1)), last), m.start(), m.end(), "ordinal")
    for m in re.finditer(rf"\bscene\s*(?:#|no\.?\s*)?{_NUM}\b", lowered):
        add(scene_no(number(m.group(1))), m.start(), m.end(), "number")
    for m in re.finditer(rf"\b{_ORD}\s+scene\b", lowered):
        add(scene_no(number(m.group(1)), m.group(1) in LAST_WORDS), m.start(), m.end(), "ordinal")
    for m in re.finditer(rf"\bep(?:isode)?\s*\.?\s*{_NUM}\b", lowered):
        add(cat.get(f"episode-{number(m.group(1))}"), m.start(), m.end(), "number")
    # quoted dialogue: “Only rain.”
    for m in re.finditer(r"[\"“']([^\"”']{3,80})[\"”']", text):
        quote = m.group(1).casefold().strip(" .!?")
        for sc in cat.scenes:
            for ln in cat.lines(sc):
                if quote and quote in str(ln.data.get("line", "")).casefold():
                    add(ln, m.start(), m.end(), "name")
    # a scene by its place or title: "the station scene", "the scene at the shrine"
    for m in re.finditer(r"\b(?:the\s+)?([a-z]+)\s+scene\b|\bscene\s+(?:at|in)\s+the\s+([a-z]+)", lowered):
        word = m.group(1) or m.group(2)
        hits = [s for s in cat.scenes if word and len(word) > 3 and (
            word in str(s.data.get("location", "")).casefold() or word in str(s.data.get("title", "")).casefold())]
        if len(hits) == 1:
            add(hits[0], m.start(), m.end(), "word")
    # names (exact, with honorifics and possessives), then distinctive words, then typos
    for rec in cat.named():
        for form in _name_forms(rec):
            for m in re.finditer(rf"\b{re.escape(form.casefold())}{_HONORIFIC}(?:'s|’s)?\b", lowered):
                add(rec, m.start(), m.end(), "name")
    for rec in [*cat.locations, *cat.props]:
        for word in _words(rec):
            for m in re.finditer(rf"\b{re.escape(word)}s?\b", lowered):
                add(rec, m.start(), m.end(), "word")
    names = {f.casefold(): rec for rec in cat.characters for f in _name_forms(rec)}
    words = {w: rec for rec in [*cat.locations, *cat.props] for w in _words(rec)}
    for word, start, end in _tokens(text):
        bare = re.sub(r"(['’]s|-\w+)$", "", word.casefold())
        if len(bare) < 4 or bare in _COMMON:
            continue
        # a typo keeps the first letter and about the length ("Aikoo", "Kiato"; not "rent" for Ren)
        close = [c for c in difflib.get_close_matches(bare, list(names), n=3, cutoff=0.75)
                 if c[0] == bare[0] and abs(len(c) - len(bare)) <= 1 and len(c) >= 4]
        if close:
            add(names[close[0]], start, end, "fuzzy")
            continue
        close = [c for c in difflib.get_close_matches(bare, list(words), n=3, cutoff=0.84)
                 if c[0] == bare[0] and abs(len(c) - len(bare)) <= 1]
        if close:
            add(words[close[0]], start, end, "fuzzy")
    # a shot by its framing: "the establishing shot", "the close-up" (when one shot fits)
    for m in re.finditer(r"\b(establishing|wide|medium|close[- ]?up|extreme close[- ]?up)(?:\s+shot)?\b", lowered):
        framing = re.sub(r"close[- ]?up", "close-up", m.group(1))
        pool = cat.shots.get(focus_scene.id, []) if focus_scene is not None else cat.all_shots()
        hits = [s for s in pool if s.data.get("framing") == framing]
        if len(hits) == 1 and (m.group(0).endswith("shot") or framing == "establishing"):
            add(hits[0], m.start(), m.end(), "word")
    for pattern, record_id in _FIELD_RECORDS:
        for m in re.finditer(pattern, lowered):
            add(cat.get(record_id), m.start(), m.end(), "field")
    found.sort(key=lambda mention: mention.start)
    return found


# Frequent words that look like short names to a fuzzy match.
_COMMON = {"make", "more", "from", "with", "this", "that", "what", "when", "where", "have", "some", "scene",
           "shot", "shots", "line", "lines", "take", "redo", "rain", "rainy", "again", "older", "voice", "render",
           "there", "their", "them", "they", "about", "after", "before", "into", "give", "she's", "he's",
           "remove", "delete", "change", "reorder", "scenes", "panel", "could", "would", "should", "kind",
           "each", "every", "over", "less", "much", "like", "need", "want", "sound", "sounds", "slower",
           "faster", "also", "then", "here", "just", "show", "status", "motion", "camera", "closer",
           "face", "pronounce", "translate", "episode", "undo", "back", "last", "cast", "recast", "aware",
           "rename", "retake", "redraw", "wider", "tighter", "calmer", "angrier", "shorter", "longer",
           "tell", "does", "wear", "wears", "look", "looks", "said", "says", "brave", "braver", "being"}


def _episode_in(lowered: str) -> int:
    m = re.search(rf"\bep(?:isode)?\s*\.?\s*{_NUM}\b", lowered)
    return (number(m.group(1)) or 1) if m else 1


def card_record(cat: Catalog, pending: dict[str, Any] | None) -> Record | None:
    """The record the card on screen is about: a revision's target, a picture's or take's subject,
    a shot plan's or motion's scene."""
    if not pending or pending.get("kind") in (None, "input"):
        return None
    data = pending.get("data") or {}
    for ref in (pending.get("target_id"), data.get("subject"), data.get("shot_id"), data.get("scene_id"),
                data.get("line_id")):
        if isinstance(ref, str):
            rec = cat.get(ref) or cat.line(ref)
            if rec is not None:
                return rec
    name = data.get("name") if isinstance(data, dict) else None
    if isinstance(name, str):
        for rec in cat.named():
            if str(rec.data.get("name", "")).casefold() == name.casefold():
                return rec
    return None


def card_characters(cat: Catalog, focus: Record | None) -> list[Record]:
    """The characters the card is about: a character, the cast of a shot, a line's speaker."""
    if focus is None:
        return []
    if focus.kind == "character":
        return [focus]
    names: list[str] = []
    if focus.kind == "shot":
        names = [str(c.get("name")) for c in focus.data.get("characters", []) if isinstance(c, dict)]
    elif focus.kind == "line":
        names = [str(focus.data.get("speaker"))]
    elif focus.kind == "voice":
        names = [str(focus.data.get("character") or focus.data.get("name") or "")]
    by_name = {str(r.data.get("name", "")).casefold(): r for r in cat.characters}
    return [by_name[n.casefold()] for n in names if n.casefold() in by_name]


def pronoun_targets(text: str, cat: Catalog, mentions: list[Mention], focus: Record | None
                    ) -> tuple[list[Mention], bool]:
    """Mentions for "her"/"him"/"them"/"this shot": the character named before in the message, else
    the card's; the flag says a pronoun could not be resolved to one record (ask, do not guess)."""
    lowered = text.casefold()
    extra: list[Mention] = []
    unresolved = False
    for pattern in (FEMALE, MALE):
        for m in re.finditer(pattern, lowered):
            before = [x.record for x in mentions if x.start < m.start() and x.record.kind == "character"]
            if before:
                extra.append(Mention(before[-1], m.start(), m.end(), "pronoun"))
                continue
            on_card = card_characters(cat, focus)
            if len(on_card) == 1:
                extra.append(Mention(on_card[0], m.start(), m.end(), "pronoun"))
            elif not any(x.record.kind == "character" for x in mentions):
                unresolved = True
    if focus is not None and re.search(r"\bthis (shot|panel|scene|take|line|one|card)\b|\b(it|this)\b", lowered):
        m = re.search(r"\bthis (shot|panel|scene|take|line|one|card)\b|\b(it|this)\b", lowered)
        assert m is not None
        extra.append(Mention(focus, m.start(), m.end(), "focus"))
    return extra, unresolved


def resolve(cat: Catalog, ref: str | None, kinds: tuple[str, ...], *, what: str) -> Record:
    """A record given as an id or a name/description ("Aiko", "scene 2", "shot 4"), of one of `kinds`.

    ToolError (naming the reference and the records that would do) when none or several match.
    """
    from agent.tools import ToolError

    ref = (ref or "").strip()
    if not ref:
        raise ToolError(f"{what} is missing; name one of: {choices(cat, kinds)}")
    rec = cat.get(ref) or (cat.line(ref) if "line" in kinds else None)
    if rec is not None and rec.kind in kinds:
        return rec
    hits = [m.record for m in link(ref, cat) if m.record.kind in kinds]
    unique = list({r.id: r for r in hits}.values())
    if len(unique) == 1:
        return unique[0]
    if len(unique) > 1:
        raise ToolError(f"{what} {ref!r} could be {', '.join(display(r) for r in unique)}; say which")
    raise ToolError(f"no {' or '.join(kinds)} {ref!r} in the bible; name one of: {choices(cat, kinds)}")


def choices(cat: Catalog, kinds: tuple[str, ...], limit: int = 8) -> str:
    recs: list[Record] = []
    for kind in kinds:
        if kind == "character":
            recs += cat.characters
        elif kind == "location":
            recs += cat.locations
        elif kind == "prop":
            recs += cat.props
        elif kind == "scene":
            recs += cat.scenes
        elif kind == "shot":
            recs += cat.all_shots()
        elif kind == "episode":
            recs += cat.episodes
        elif kind == "line":
            recs += [ln for sc in cat.scenes for ln in cat.lines(sc)]
        else:
            recs += cat.canon.list(kind)
    names = [display(r) for r in recs[:limit]]
    return ", ".join(names) + (" …" if len(recs) > limit else "") if names else "(none yet)"
