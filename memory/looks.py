"""Looks over time: the look tags a character has in a given episode.

A character record keeps its base look in `look_tags` and, optionally, variants that hold from an
episode on (a new outfit after the funeral, cut hair, a bandaged arm):

    "looks": [
        {"from_episode": 4, "until_episode": null, "outfit": "black mourning kimono",
         "hair": "", "injury": "bandaged left arm", "tags": ["tired eyes"]},
        ...
    ]

Every key but `from_episode` is optional. Variants apply in episode order: a variant's `outfit`
replaces the garment tags of the look so far, `hair` the hair tags, `injury` replaces an earlier
injury, `tags` are added; a variant with `until_episode` stops after that episode. Continuity facts
of type `outfit`/`injury` in force (memory.continuity) apply after the variants when they start
later than the variant that set that field, so an accepted "Aiko wears a black kimono from episode 4" reaches the
painter without a look edit. `Look.signature` changes whenever what is drawn changes: panel
staleness compares it.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memory.continuity import GARMENT_WORDS, Fact, _stem, _words, all_facts, in_force
from memory.errors import InputError

if TYPE_CHECKING:
    from memory.canon import Canon

_HAIR_WORDS = frozenset({"hair", "haired", "bob", "ponytail", "twintails", "braid", "braids", "bangs", "bald"})
VARIANT_KEYS = ("from_episode", "until_episode", "outfit", "hair", "injury", "tags")


@dataclass(frozen=True)
class Look:
    """A character's look in one episode: the tags the painter gets, and where they come from."""

    character_id: str
    name: str
    episode: int
    tags: tuple[str, ...]
    outfit: str = ""
    hair: str = ""
    injury: str = ""
    sources: tuple[str, ...] = ()   # "base", "variant from episode 4", "fact-ep5-aiko-outfit"

    @property
    def signature(self) -> str:
        """A short hash of the drawn tags: equal signatures draw the same figure."""
        return hashlib.sha256(json.dumps(self.tags).encode()).hexdigest()[:12]


def _is_garment(tag: str) -> bool:
    return any(w in GARMENT_WORDS or _stem(w) in GARMENT_WORDS for w in _words(tag))


def _is_hair(tag: str) -> bool:
    return any(w in _HAIR_WORDS for w in _words(tag))


def check_looks(looks: Any, where: str = "looks") -> list[dict[str, Any]]:
    """Validate a character's `looks` list (an edit, a model's reply); InputError names the bad entry."""
    if looks in (None, ""):
        return []
    if not isinstance(looks, list):
        raise InputError(f"{where} must be a list of variants like "
                         f"{{'from_episode': 2, 'outfit': 'black kimono'}}, got {type(looks).__name__}")
    out = []
    for i, variant in enumerate(looks):
        if not isinstance(variant, Mapping):
            raise InputError(f"{where}[{i}] is {variant!r}; each variant is a dict with from_episode")
        start, until = variant.get("from_episode"), variant.get("until_episode")
        if isinstance(start, bool) or not isinstance(start, int) or start < 1:
            raise InputError(f"{where}[{i}].from_episode is {start!r}; use the episode number it starts in (1, 2, …)")
        if until is not None and (isinstance(until, bool) or not isinstance(until, int) or until < start):
            raise InputError(f"{where}[{i}].until_episode is {until!r}; use an episode from {start} on, or null")
        tags = variant.get("tags") or []
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise InputError(f"{where}[{i}].tags is {tags!r}; use a list of look tags")
        clean = {"from_episode": start, "until_episode": until, "tags": tags}
        for key in ("outfit", "hair", "injury"):
            value = variant.get(key) or ""
            if not isinstance(value, str):
                raise InputError(f"{where}[{i}].{key} is {value!r}; use text, e.g. 'black kimono'")
            clean[key] = value.strip()
        out.append(clean)
    return out


def apply_looks(data: Mapping[str, Any], episode: int, facts: Sequence[Fact] = (), *,
                character_id: str = "") -> Look:
    """The look of the character `data` (a character record's data) in `episode`; `facts` are
    continuity facts (all of them; those in force in `episode` are used)."""
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 1:
        raise InputError(f"episode {episode!r} is not an episode number; use 1, 2, 3…")
    name = str(data.get("name") or character_id)
    tags = [str(t) for t in data.get("look_tags") or [] if isinstance(t, str)]
    outfit = hair = injury = ""
    sources = ["base"]
    variants = [v for v in check_looks(data.get("looks"), f"{character_id or name}.looks")
                if v["from_episode"] <= episode and (v["until_episode"] is None or v["until_episode"] >= episode)]
    variants.sort(key=lambda v: v["from_episode"])
    outfit_from = injury_from = 0   # the episode of the variant that last set the field
    for v in variants:
        if v["outfit"]:
            tags = [t for t in tags if not _is_garment(t)] + [v["outfit"]]
            outfit, outfit_from = v["outfit"], v["from_episode"]
        if v["hair"]:
            tags = [t for t in tags if not _is_hair(t)] + [v["hair"]]
            hair = v["hair"]
        if v["injury"]:
            tags = [t for t in tags if t != injury] + [v["injury"]]
            injury, injury_from = v["injury"], v["from_episode"]
        tags += [t for t in v["tags"] if t not in tags]
        sources.append(f"variant from episode {v['from_episode']}")
    key = " ".join(name.casefold().split())
    for fact in in_force(facts, episode):   # a fact newer than the variant for its field wins
        if " ".join(fact.subject.casefold().split()) != key:
            continue
        if fact.type == "outfit" and fact.episode > outfit_from:
            tags = [t for t in tags if not _is_garment(t)] + [fact.value]
            outfit = fact.value
        elif fact.type == "injury" and fact.episode > injury_from and fact.value not in tags:
            tags.append(fact.value)
            injury = fact.value
        else:
            continue
        sources.append(fact.id or f"fact from episode {fact.episode}")
    return Look(character_id=character_id, name=name, episode=episode, tags=tuple(dict.fromkeys(tags)),
                outfit=outfit, hair=hair, injury=injury, sources=tuple(sources))


def look_in_force(canon: Canon, character_id: str, episode: int, *, facts: Sequence[Fact] | None = None) -> Look:
    """The character's look in `episode`: base tags, variants in force, then newer outfit/injury
    facts. `facts` defaults to every fact in canon (pass them in when drawing many panels)."""
    record = canon.get(character_id)
    if record.kind != "character":
        raise InputError(f"{character_id!r} is a {record.kind}, not a character; pass a character id")
    return apply_looks(record.data, episode, all_facts(canon) if facts is None else facts,
                       character_id=character_id)


def variant_tags_text(look: Look) -> str:
    """One line for a card or a prompt: "Aiko in episode 4: black mourning kimono, … (variant from episode 4)"."""
    origin = ", ".join(s for s in look.sources if s != "base") or "base look"
    return f"{look.name} in episode {look.episode}: {', '.join(look.tags)} ({origin})"


__all__ = ["Look", "apply_looks", "check_looks", "look_in_force", "variant_tags_text"]
