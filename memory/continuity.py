"""Continuity facts: what holds from one episode on (who is dead, who knows what, where a prop is,
what someone wears), stored as canon, and the deterministic checks of later proposals against them.

A fact is one `fact` record (id `fact-epN-<subject>-<type>`; data: `Fact` fields), an episode's
"story so far" one `summary` record (`summary-epN`); both are indexed in the bible with their
episode, so retrieval for episode N can ask for what came before it. One record per fact means an
edit, a deletion or an undo touches one fact, and the checks of later proposals follow at once.

The checks are pure functions over a list of facts (`check_scene`, `check_shots`, `check_panel`):
no model, no canon access, a few milliseconds. They return `ContinuityWarning`s whose text names
the fact and the episode it comes from; accepting anyway is the director's call.

`draft_facts` turns an accepted episode's scenes into a draft summary and fact set by keywords
(offline; a configured model may do better, the director reviews either way).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from memory.errors import InputError

if TYPE_CHECKING:
    from memory.canon import Canon, Record

FactType = Literal["alive", "present", "dead", "absent", "knows", "relationship", "injury", "outfit",
                   "prop_location", "time_of_day", "weather", "promise"]
FACT_TYPES: tuple[str, ...] = FactType.__args__  # type: ignore[attr-defined]
#: Fact types of which only the newest one per subject holds ("dead" in ep 3, "alive" in ep 9).
EXCLUSIVE_GROUPS = {"alive": "status", "present": "status", "dead": "status", "absent": "status",
                    "outfit": "outfit", "prop_location": "prop_location", "time_of_day": "time_of_day",
                    "weather": "weather"}
WORLD = "world"   # the subject of time-of-day and weather facts
#: prop_location values that mean the prop is gone for good.
GONE_WORDS = frozenset({"destroyed", "lost", "burned", "burnt", "broken", "shattered", "gone", "stolen",
                        "sunk", "melted", "smashed"})
GARMENT_WORDS = frozenset({
    "armor", "armour", "kimono", "yukata", "furisode", "hakama", "haori", "robe", "robes", "cloak", "cape",
    "dress", "gown", "sundress", "suit", "tuxedo", "uniform", "blazer", "hoodie", "sweatshirt", "coat",
    "overcoat", "trenchcoat", "raincoat", "parka", "jacket", "cardigan", "shirt", "sweater", "blouse",
    "tunic", "vest", "apron", "outfit", "jersey", "skirt", "pants", "jeans", "trousers", "shorts", "overalls",
})
#: Words in a scene's title or action that make it a flashback, dream or vision: the dead may appear.
_UNREAL = re.compile(r"\b(flashback|dream|dreams|dreaming|vision|visions|ghost|hallucinat\w*)\b", re.IGNORECASE)
_STOP = frozenset(["a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "of", "to", "in", "on", "at", "by", "for", "with", "from", "and", "or", "but", "not", "no", "that", "this", "these", "those", "it", "its", "he", "she", "they", "them", "his", "her", "their", "him", "i", "you", "we", "me", "my", "your", "our", "who", "whom", "what", "which", "as", "into", "onto", "than", "then", "there", "here", "has", "have", "had", "do", "does", "did", "will", "would", "can", "could", "should", "about", "after", "before", "over", "under", "again", "only", "just", "very", "all", "any", "some"])
SCENE_FIELDS = ("title", "location", "action")


class Fact(BaseModel):
    """One continuity fact. `episode`/`scene`: where it starts to hold (after that scene);
    `until_episode`: the last episode it holds in (None: until a later fact replaces it)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    subject: str = Field(min_length=1, max_length=60)      # a character or prop name; "world" for time/weather
    type: FactType
    value: str = Field(default="", max_length=200)         # knows: the secret; outfit: what they wear; ...
    episode: int = Field(ge=1, le=999)
    scene: int | None = Field(default=None, ge=1, le=999)
    until_episode: int | None = Field(default=None, ge=1, le=999)
    keywords: list[str] = Field(default_factory=list, max_length=8)   # knows: words a line must say
    id: str = ""                                            # the canon record id, once stored

    @field_validator("type", mode="before")
    @classmethod
    def _type_words(cls, value: Any) -> Any:
        """"Prop location", "time-of-day", "Dead" are the same types."""
        return re.sub(r"[\s-]+", "_", value.strip().lower()) if isinstance(value, str) else value

    @model_validator(mode="after")
    def _until_after_start(self) -> Fact:
        if self.until_episode is not None and self.until_episode < self.episode:
            raise ValueError(f"until_episode {self.until_episode} is before episode {self.episode}, where the "
                             f"fact about {self.subject!r} starts; use {self.episode} or later, or leave it empty")
        if self.type in ("knows", "relationship", "injury", "outfit", "prop_location", "time_of_day",
                         "weather", "promise") and not self.value:
            raise ValueError(f"a {self.type} fact about {self.subject!r} needs a value (what it is)")
        return self

    def statement(self) -> str:
        """The fact in words: "Aiko is dead", "Ren knows that the mayor lied"."""
        s, v = self.subject, self.value
        text = {
            "alive": f"{s} is alive", "present": f"{s} is here" + (f" ({v})" if v else ""),
            "dead": f"{s} is dead" + (f" ({v})" if v else ""),
            "absent": f"{s} is away" + (f" ({v})" if v else ""),
            "knows": f"{s} knows that {v}", "relationship": f"{s}: {v}", "injury": f"{s} is hurt: {v}",
            "outfit": f"{s} wears {v}", "prop_location": f"the {s} is {_where(v)}",
            "time_of_day": f"it is {v}", "weather": f"the weather is {v}", "promise": f"{s} promised {v}",
        }[self.type]
        return text

    def source(self) -> str:
        """Where the fact comes from: "episode 3, scene 2"."""
        return f"episode {self.episode}" + (f", scene {self.scene}" if self.scene else "")

    def cite(self) -> str:
        """How a warning names the fact: "fact 'Aiko is dead' from episode 3, scene 2 [fact-ep3-aiko-dead]"."""
        return f"fact '{self.statement()}' from {self.source()}" + (f" [{self.id}]" if self.id else "")

    def record_data(self) -> dict[str, Any]:
        """What the `fact` record stores (the id is the record's, not in the data)."""
        data = self.model_dump(exclude={"id"})
        data["name"] = f"{self.subject} {self.type.replace('_', ' ')}"
        data["statement"] = f"{self.statement()} (from {self.source()}" + (
            f" until episode {self.until_episode})" if self.until_episode else ")")
        return data

    @classmethod
    def from_record(cls, record: Record) -> Fact:
        return cls.model_validate({**record.data, "id": record.id})


def _where(value: str) -> str:
    low = value.strip().lower()
    if low in GONE_WORDS:
        return low
    return value if re.match(r"(with|at|in|on|under|inside|held by|carried by)\b", low) else f"at {value}"


class FactsProposal(BaseModel):
    """An episode's "story so far": its summary and the facts it establishes (the review card)."""

    model_config = ConfigDict(extra="ignore")

    episode: int = Field(ge=1, le=999)
    summary: str = Field(min_length=1, max_length=1200)
    facts: list[Fact] = Field(default_factory=list, max_length=60)

    @model_validator(mode="before")
    @classmethod
    def _facts_in_this_episode(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("facts"), list):
            ep = data.get("episode")
            facts = []
            for i, fact in enumerate(data["facts"], 1):
                if isinstance(fact, dict):
                    if fact.get("episode") in (None, ""):
                        fact = {**fact, "episode": ep}
                    elif fact.get("episode") != ep:
                        raise ValueError(f"fact {i} ({fact.get('subject')!r}) starts in episode {fact.get('episode')}, "
                                         f"but this card is episode {ep}'s; set its episode to {ep}")
                facts.append(fact)
            data = {**data, "facts": facts}
        return data


@dataclass(frozen=True)
class ContinuityWarning:
    """One problem found against a fact; `str()` is the card's warning text."""

    message: str
    fact: Fact
    where: str            # "line 2", "shot 3", "the scene"

    def __str__(self) -> str:
        return self.message


# ----------------------------------------------------------------------------- storage


def fact_record_id(fact: Fact, taken: Iterable[str] = ()) -> str:
    """fact-ep<N>-<subject>-<type>, with -2, -3 ... for a second fact of the same kind."""
    from memory.canon import slug_for_id

    base = f"fact-ep{fact.episode}-{slug_for_id(fact.subject) or 'x'}-{fact.type.replace('_', '-')}"
    taken = set(taken)
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def summary_record_id(episode: int) -> str:
    return f"summary-ep{episode}"


def write_facts(canon: Canon, proposal: FactsProposal | Mapping[str, Any], *, actor: str, note: str = ""
                ) -> list[Record]:
    """Commit an accepted facts card: the summary record, one record per fact (a changed fact is a
    new revision of its record, one no longer on the card is deleted). Returns what changed.

    Run it inside `Canon.commit_proposal` so the whole card is one transaction."""
    card = proposal if isinstance(proposal, FactsProposal) else parse_facts(proposal)
    ep = card.episode
    records = [canon.upsert("summary", {"episode": ep, "name": f"Episode {ep} so far", "summary": card.summary},
                            actor=actor, record_id=summary_record_id(ep), note=note)]
    existing = {r.id: r for r in canon.children("fact", "episode", ep)}
    kept: list[str] = []
    for fact in card.facts:
        rid = fact.id if fact.id.startswith(f"fact-ep{ep}-") and fact.id not in kept else fact_record_id(fact, kept)
        kept.append(rid)
        data = fact.record_data()
        old = existing.get(rid)
        if old is not None and old.data == data:
            continue
        records.append(canon.upsert("fact", data, actor=actor, record_id=rid, note=note))
    for rid in existing:
        if rid not in kept:
            records.append(canon.delete(rid, actor=actor, note=note or "no longer on the facts card"))
    return records


def parse_facts(data: Mapping[str, Any]) -> FactsProposal:
    """Validate a facts card (an edit, a model's reply); InputError names the bad field."""
    try:
        return FactsProposal.model_validate(dict(data))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the card"
        raise InputError(f"facts card: {where}: {first['msg']} (got {str(first.get('input'))[:60]!r})") from exc


def all_facts(canon: Canon) -> list[Fact]:
    """Every live fact, in story order (episode, scene). Read once per canon change (`Canon.memo`):
    every panel's staleness and every card's check asks for them."""
    def read() -> tuple[Fact, ...]:
        facts = [Fact.from_record(r) for r in canon.list("fact")]
        return tuple(sorted(facts, key=lambda f: (f.episode, f.scene or 0)))

    memo = getattr(canon, "memo", None)   # a stand-in canon (a branch view, a test double) may have none
    return list(memo("continuity.all_facts", read) if memo is not None else read())


def in_force(facts: Iterable[Fact], episode: int, scene: int | None = None) -> list[Fact]:
    """The facts that hold in `episode` (at scene `scene`, when given): started before it (a fact
    from scene 3 of this episode holds from scene 4 on), not ended, not replaced by a newer fact of
    its exclusive group (status, outfit, a prop's place, time of day, weather)."""
    started = [f for f in facts
               if (f.episode < episode or (f.episode == episode and scene is not None and f.scene is not None
                                           and f.scene < scene))
               and (f.until_episode is None or f.until_episode >= episode)]
    started.sort(key=lambda f: (f.episode, f.scene or 0))
    latest: dict[tuple[str, str], Fact] = {}
    others: list[Fact] = []
    for fact in started:
        group = EXCLUSIVE_GROUPS.get(fact.type)
        if group is None:
            others.append(fact)
        else:
            latest[(_key(fact.subject), group)] = fact
    return sorted([*others, *latest.values()], key=lambda f: (f.episode, f.scene or 0))


def facts_in_force(canon: Canon, episode: int, scene: int | None = None) -> list[Fact]:
    """The canon facts that hold in `episode` (see `in_force`)."""
    return in_force(all_facts(canon), episode, scene)


def facts_context(canon: Canon, episode: int, *, limit: int = 40) -> list[str]:
    """The facts in force as prompt lines ("Aiko is dead (from episode 3, scene 2)"), newest last,
    plus each earlier episode's summary: what a generation for `episode` must stay consistent with."""
    lines = []
    for ep in range(max(1, episode - 3), episode):   # the recent story so far; older is in the facts
        rec = canon.live(summary_record_id(ep))
        if rec is not None:
            lines.append(f"Episode {ep} so far: {rec.data.get('summary', '')}")
    lines += [f"{f.statement()} (from {f.source()})" for f in facts_in_force(canon, episode)][-limit:]
    return lines


# ----------------------------------------------------------------------------- checks


def _key(name: object) -> str:
    return " ".join(str(name or "").casefold().split())


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.casefold())


def _stem(word: str) -> str:
    word = word.removesuffix("'s")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _mentions(text: str, name: str) -> bool:
    """Whether `text` names `name` as whole words ("the Paper Umbrella", "umbrella" for "Paper Umbrella"
    only when the full name is not found: the last word of a prop's name is how people say it)."""
    low = _key(text)
    full = _key(name)
    if not full:
        return False
    if re.search(rf"(?<!\w){re.escape(full)}(?!\w)", low):
        return True
    head = full.split()[-1]
    return len(full.split()) > 1 and len(head) > 3 and re.search(rf"(?<!\w){re.escape(head)}s?(?!\w)", low) is not None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return " ".join(_text(v) for v in value)
    return ""


def _names(value: Any) -> list[str]:
    """A list of names from what a scene or shot holds (strings, or dicts with a name)."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        return []
    out = []
    for item in value:
        if isinstance(item, Mapping):
            item = item.get("name")
        if isinstance(item, str) and item.strip():
            out.append(item.strip())
    return out


def _lines(scene: Mapping[str, Any]) -> list[tuple[int, str, str]]:
    """(number, speaker, text) of a scene's dialogue, skipping malformed entries."""
    found = []
    for i, line in enumerate(scene.get("lines") or [], 1):
        if isinstance(line, Mapping):
            found.append((i, str(line.get("speaker") or ""), _text(line.get("line"))))
    return found


def _status_warnings(facts: Sequence[Fact], who: Iterable[tuple[str, str, bool]]) -> list[ContinuityWarning]:
    """`who`: (name, where, speaks) — a dead or absent character who appears or speaks."""
    status = {_key(f.subject): f for f in facts if f.type in ("dead", "absent", "alive", "present")}
    found = []
    seen: set[tuple[str, str]] = set()
    for name, where, speaks in who:
        fact = status.get(_key(name))
        if fact is None or fact.type not in ("dead", "absent") or (_key(name), where) in seen:
            continue
        seen.add((_key(name), where))
        verb = "speaks" if speaks else "appears"
        state = "dead" if fact.type == "dead" else "away"
        found.append(ContinuityWarning(
            f"{where}: {name} {verb}, but {name} is {state} ({fact.cite()}); make it a flashback or dream, change the line, or revise the fact",
            fact, where))
    return found


def _prop_warnings(facts: Sequence[Fact], text: str, location: str, where: str,
                   present: Iterable[str]) -> list[ContinuityWarning]:
    """A prop that is destroyed, or at another place or with someone who is not there, is used."""
    found = []
    present_keys = {_key(n) for n in present}
    for fact in facts:
        if fact.type != "prop_location" or not _mentions(text, fact.subject):
            continue
        value = fact.value.strip()
        low = value.lower()
        if low in GONE_WORDS:
            found.append(ContinuityWarning(
                f"{where}: the {fact.subject} is used, but it is {low} ({fact.cite()}); drop it from the scene or revise the fact", fact, where))
            continue
        holder = re.match(r"(?:with|held by|carried by)\s+(.+)$", value, re.IGNORECASE)
        if holder:
            if present_keys and _key(holder.group(1)) not in present_keys:
                found.append(ContinuityWarning(
                    f"{where}: the {fact.subject} is used, but it is with {holder.group(1)}, who is not in the "
                    f"scene ({fact.cite()}); bring them in or revise the fact", fact, where))
            continue
        place = re.sub(r"^(at|in|on|inside|under)\s+(the\s+)?", "", value, flags=re.IGNORECASE)
        if location and place and not (_mentions(location, place) or _mentions(place, location)):
            found.append(ContinuityWarning(
                f"{where}: the {fact.subject} is used at {location}, but it is at {place} "
                f"({fact.cite()}); have someone bring it, or revise the fact", fact, where))
    return found


def _garments(text: str) -> set[str]:
    return {_stem(w) for w in _words(text) if _stem(w) in GARMENT_WORDS or w in GARMENT_WORDS}


def _outfit_warnings(facts: Sequence[Fact], name: str, worn: str, where: str) -> list[ContinuityWarning]:
    """`worn` (look tags, or words about what `name` wears) names a garment the outfit in force does not."""
    fact = next((f for f in facts if f.type == "outfit" and _key(f.subject) == _key(name)), None)
    if fact is None:
        return []
    want, have = _garments(fact.value), _garments(worn)
    if have and want and not (want & have):
        return [ContinuityWarning(
            f"{where}: {name} wears {', '.join(sorted(have))}, but wears {fact.value} "
            f"({fact.cite()}); an outfit change needs a new outfit fact or look variant", fact, where)]
    return []


_WEAR_NEAR = r"(?:wears|wearing|dressed in|in (?:a|an|her|his|their)|puts on|changes into|dons)"


def _secret_keywords(fact: Fact, names: set[str]) -> list[str]:
    words = fact.keywords or [w for w in _words(fact.value) if w not in _STOP and len(w) > 2]
    return list(dict.fromkeys(_stem(w.casefold()) for w in words if _stem(w.casefold()) not in names))


def _knowledge_warnings(facts_all: Sequence[Fact], now: Sequence[Fact], episode: int,
                        lines: Iterable[tuple[int, str, str]], names: set[str], scene_no: int | None
                        ) -> list[ContinuityWarning]:
    """A speaker says what a `knows` fact makes a secret that the speaker does not know yet."""
    secrets: dict[str, list[Fact]] = {}
    for fact in facts_all:
        if fact.type == "knows":
            secrets.setdefault(_key(fact.value), []).append(fact)
    if not secrets:
        return []
    in_force_ids = {id(f) for f in now}
    found = []
    for number, speaker, text in lines:
        said = {_stem(w) for w in _words(text)}
        for knowers in secrets.values():
            known = [f for f in knowers if id(f) in in_force_ids]
            if not known:      # nobody knows it yet here: it is not a secret in this episode
                continue
            if any(_key(f.subject) == _key(speaker) for f in known) or _key(speaker) in ("narrator", ""):
                continue
            keywords = _secret_keywords(known[0], names)
            need = min(len(keywords), 2)
            if not keywords or len([w for w in keywords if w in said]) < need:
                continue
            later = next((f for f in knowers if _key(f.subject) == _key(speaker) and
                          (f.episode, f.scene or 0) >= (episode, scene_no or 0)), None)
            when = f"; {speaker} learns it only in {later.source()}" if later else ""
            fact = known[0]
            who = ", ".join(dict.fromkeys(f.subject for f in known))
            found.append(ContinuityWarning(
                f"line {number}: {speaker} says what only {who} knows ({fact.cite()}){when}; change the "
                f"line, or add a fact that {speaker} learns it first", fact, f"line {number}"))
    return found


def check_scene(facts: Sequence[Fact], episode: int, scene: Mapping[str, Any]) -> list[ContinuityWarning]:
    """Warnings for a scene proposal of `episode` against `facts` (all facts; those in force at this
    scene are picked here): the dead or away appearing or speaking, gone or elsewhere props used, an
    outfit changed without a fact, a secret said by someone who does not know it yet."""
    number = scene.get("number") if isinstance(scene.get("number"), int) else None
    now = in_force(facts, episode, number)
    title, location, action = (_text(scene.get(k)) for k in SCENE_FIELDS)
    lines = _lines(scene)
    characters = _names(scene.get("characters"))
    found: list[ContinuityWarning] = []
    if not _UNREAL.search(f"{title} {action}"):
        who = [(n, "the scene", False) for n in characters]
        who += [(speaker, f"line {i}", True) for i, speaker, _ in lines if speaker]
        speaking = {_key(s) for _, s, _ in lines}
        who = [w for w in who if not (w[1] == "the scene" and _key(w[0]) in speaking)]
        found += _status_warnings(now, who)
    present = [*characters, *(s for _, s, _ in lines)]
    everything = " ".join([action, *(t for _, _, t in lines)])
    found += _prop_warnings(now, everything, location, "the scene", present)
    for name in dict.fromkeys(present):
        for sentence in re.split(r"(?<=[.!?;])\s+", action):
            if _mentions(sentence, name) and re.search(_WEAR_NEAR, sentence, re.IGNORECASE):
                found += _outfit_warnings(now, name, sentence, "the scene")
    names = {_key(n) for n in present} | {_key(f.subject) for f in facts}
    names |= {w for n in names for w in n.split()}
    found += _knowledge_warnings(facts, now, episode, lines, names, number)
    return found


def check_shots(facts: Sequence[Fact], episode: int, plan: Mapping[str, Any],
                scene: Mapping[str, Any] | None = None) -> list[ContinuityWarning]:
    """Warnings for a shot plan of `episode`: a dead or away character in a shot or speaking its
    line, a gone or elsewhere prop in a pose. `scene` (the plan's scene) gives speakers and place."""
    scene = scene or {}
    number = scene.get("number") if isinstance(scene.get("number"), int) else None
    now = in_force(facts, episode, number)
    if _UNREAL.search(f"{_text(scene.get('title'))} {_text(scene.get('action'))}"):
        now = [f for f in now if f.type not in ("dead", "absent")]
    speakers = {i: s for i, s, _ in _lines(scene)}
    found: list[ContinuityWarning] = []
    for i, shot in enumerate(plan.get("shots") or [], 1):
        if not isinstance(shot, Mapping):
            continue
        where = f"shot {i}"
        cast = _names(shot.get("characters"))
        who = [(n, where, False) for n in cast]
        for n in shot.get("lines") or []:
            if isinstance(n, int) and speakers.get(n):
                who.append((speakers[n], where, True))
        found += _status_warnings(now, who)
        poses = " ".join(_text(c.get("pose")) for c in shot.get("characters") or [] if isinstance(c, Mapping))
        location = _text(shot.get("location")) or _text(scene.get("location"))
        found += _prop_warnings(now, poses, location, where, [*cast, *speakers.values()])
    return found


def check_panel(facts: Sequence[Fact], episode: int, request: Any, *, scene: int | None = None
                ) -> list[ContinuityWarning]:
    """Warnings for a panel (a `PanelRequest`, or a dict with `characters`: name + look_tags): a dead
    or away character drawn, and look tags whose outfit is not the one a fact says is worn."""
    now = in_force(facts, episode, scene)
    chars = request.get("characters") if isinstance(request, Mapping) else getattr(request, "characters", ())
    shot = request.get("shot_id") if isinstance(request, Mapping) else getattr(request, "shot_id", "")
    where = f"panel {shot}" if shot else "the panel"
    found: list[ContinuityWarning] = []
    drawn = []
    for ch in chars or ():
        name = ch.get("name") if isinstance(ch, Mapping) else getattr(ch, "name", "")
        tags = ch.get("look_tags") if isinstance(ch, Mapping) else getattr(ch, "look_tags", ())
        if not isinstance(name, str) or not name:
            continue
        drawn.append((name, where, False))
        found += _outfit_warnings(now, name, _text(list(tags or ())), where)
    return [*_status_warnings(now, drawn), *found]


def check_proposal(canon: Canon, kind: str, data: Mapping[str, Any]) -> list[str]:
    """The continuity warnings of a scene or shot-plan card, as the card's warning texts: what a
    kind's `check` hook adds for a later episode (other kinds: none). The episode is the scene's."""
    if kind == "scene":
        episode = data.get("episode")
        scene = data
    elif kind == "shots":
        from memory.errors import RecordNotFoundError

        try:
            scene = canon.get(str(data.get("scene_id"))).data
        except RecordNotFoundError:
            return []
        episode = scene.get("episode")
    else:
        return []
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 2:
        return []    # nothing can hold before episode 1's facts are accepted
    facts = all_facts(canon)
    found = check_scene(facts, episode, scene) if kind == "scene" else check_shots(facts, episode, data, scene)
    return [str(w) for w in found]


# ----------------------------------------------------------------------------- the draft facts card

_DEATH_AFTER = re.compile(
    r"\b(dies|died|is killed|was killed|gets killed|is slain|was slain|perishes|is murdered|was murdered|"
    r"drowns|drowned|is executed|passes away|breathes (?:her|his|their) last|falls dead|lies dead)\b", re.IGNORECASE)
_DEATH_BEFORE = re.compile(r"\b(kills|killed|slays|slew|murders|murdered|executes|death of|corpse of|body of|"
                           r"funeral of|grave of|mourns|mourn)\s+$", re.IGNORECASE)
_INJURY = re.compile(
    r"\b(wounded|injured|hurt|bleeding|bleeds|stabbed|shot|burned|burnt|bruised|sprained|scarred|limping|limps|"
    r"broken (?:arm|leg|wrist|hand|rib|ribs|nose|ankle)|breaks (?:her|his|their) (?:arm|leg|wrist|hand|ankle))\b",
    re.IGNORECASE)
_LEAVES = re.compile(r"\b(leaves (?:town|home|for\b[^.,;!?]*|the city)|departs|disappears|vanishes|goes missing|"
                     r"is kidnapped|was kidnapped|is taken away|runs away|is banished|is arrested)\b", re.IGNORECASE)
_LEARNS = re.compile(r"\b(learns|learned|discovers|discovered|realizes|realises|finds out|overhears|"
                     r"is told|reads)\s+(?:that\s+)?([^.!?;]{4,160})", re.IGNORECASE)
_PROMISE = re.compile(r"\b(?:promises|promised|swears|swore|vows|vowed)\s+([^.!?;]{3,160})", re.IGNORECASE)
_SAY_PROMISE = re.compile(r"\bI (?:promise|swear|vow)\b\s*(?:to\s+|that\s+)?([^.!?;]{3,160})", re.IGNORECASE)
_DRESS = re.compile(r"\b(?:changes into|puts on|now wears|dons|is dressed in|wears)\s+((?:a|an|the|her|his|their)\s+)?"
                    r"([^.,;!?]{3,80})", re.IGNORECASE)
_TAKE = re.compile(r"\b(takes|grabs|picks up|carries|holds|pockets|keeps|snatches|steals)\b", re.IGNORECASE)
_PLACE = re.compile(r"\b(leaves|drops|hides|buries|places|sets|abandons|forgets)\b", re.IGNORECASE)
_GONE = re.compile(r"\b(burns|burned|breaks|broke|shatters|shattered|snaps|is destroyed|was destroyed|"
                   r"crumbles|melts|sinks|is lost|is stolen|was stolen|smashes|smashed)\b", re.IGNORECASE)
TIMES = ("midnight", "night", "dawn", "sunrise", "morning", "noon", "afternoon", "sunset", "dusk", "evening")
WEATHERS = ("thunderstorm", "storm", "rain", "snow", "fog", "mist", "drizzle", "sunny", "clear sky", "wind", "hail")


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?;])\s+|\n+", text) if s.strip()]


def _aliases(names: Sequence[str]) -> dict[str, str]:
    """Capitalised words of multi-word names that name one character only ("Jun" for "Sailor Jun")."""
    count: dict[str, list[str]] = {}
    for name in names:
        parts = name.split()
        if len(parts) > 1:
            for part in parts:
                if len(part) > 2 and part[:1].isupper() and part.casefold() not in _STOP:
                    count.setdefault(part, []).append(name)
    return {part: owners[0] for part, owners in count.items() if len(set(owners)) == 1}


def _name_spans(sentence: str, names: Sequence[str]) -> list[tuple[int, str]]:
    """(position, full name) of every character named in `sentence`, by full name (any case) or
    by a distinctive capitalised part of it."""
    found: dict[int, str] = {}
    for name in names:
        for m in re.finditer(rf"(?<!\w){re.escape(name)}(?!\w)", sentence, re.IGNORECASE):
            found[m.start()] = name
    for part, name in _aliases(names).items():
        for m in re.finditer(rf"(?<!\w){re.escape(part)}(?!\w)", sentence):
            if not any(start <= m.start() < start + len(full) for start, full in found.items()):
                found.setdefault(m.start(), name)
    return sorted(found.items())


def _nearest_before(spans: list[tuple[int, str]], pos: int) -> str | None:
    before = [name for start, name in spans if start < pos]
    return before[-1] if before else None


def _scene_view(raw: Any, fallback_number: int) -> dict[str, Any] | None:
    """A scene dict with the fields the extractor reads, junk and wrong types dropped."""
    if not isinstance(raw, Mapping):
        return None
    number = raw.get("number")
    return {
        "number": number if isinstance(number, int) and not isinstance(number, bool) and number > 0 else fallback_number,
        "title": _text(raw.get("title")), "location": _text(raw.get("location")), "action": _text(raw.get("action")),
        "characters": _names(raw.get("characters")), "lines": _lines(raw),
    }


def draft_facts(episode: int, scenes: Sequence[Any], *, cast: Sequence[str] = (), props: Sequence[str] = ()
                ) -> dict[str, Any]:
    """A draft "story so far" card for an accepted episode, by keywords (offline, deterministic):
    its summary; who is here and where they were last seen; deaths, injuries and departures; who
    learns what; promises; outfit changes; where props went; the time of day and weather it ends in.

    `cast`/`props`: the bible's names (a name is found as whole words, any case). Returns card data
    that `parse_facts` accepts; the director edits it like any proposal.
    """
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 1:
        raise InputError(f"episode {episode!r} is not an episode number; use 1, 2, 3…")
    views = [v for v in (_scene_view(s, i) for i, s in enumerate(scenes, 1)) if v is not None]
    views.sort(key=lambda v: v["number"])
    names = list(dict.fromkeys([*cast, *(n for v in views for n in v["characters"])]))
    names = [n for n in names if _key(n) != "narrator"]
    facts: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()

    def add(subject: str, type_: str, value: str, scene: int) -> None:
        key = (_key(subject), type_, _key(value))
        if key not in seen:
            seen.add(key)
            facts.append({"subject": subject, "type": type_, "value": value[:200].strip(" ,"), "episode": episode,
                          "scene": scene})

    status: dict[str, tuple[str, str, int]] = {}
    last_seen: dict[str, tuple[str, int]] = {}
    for v in views:
        n = v["number"]
        unreal = bool(_UNREAL.search(f"{v['title']} {v['action']}"))
        if not unreal:
            for who in [*v["characters"], *(s for _, s, _ in v["lines"])]:
                match = next((c for c in names if _key(c) == _key(who)), None)
                if match:
                    last_seen[match] = (v["location"], n)
        texts = _sentences(v["action"])
        for full_sentence in texts:
            spans = _name_spans(full_sentence, names)
            if not spans:
                continue
            # what someone learns is reported, not happening: "Hana learns that Jun drowned" kills no one
            learned = _LEARNS.search(full_sentence)
            sentence = full_sentence[:learned.start(2)] if learned else full_sentence
            for m in _DEATH_AFTER.finditer(sentence):
                victim = _nearest_before(spans, m.start())
                if victim:
                    status[victim] = ("dead", m.group(1).lower(), n)
            for start, name in spans:
                if start <= len(sentence) and _DEATH_BEFORE.search(sentence[:start]):
                    status[name] = ("dead", "", n)
            for m in _LEAVES.finditer(sentence):
                who = _nearest_before(spans, m.start())
                if who and status.get(who, ("",))[0] != "dead":
                    status[who] = ("absent", m.group(1).lower(), n)
            for m in _INJURY.finditer(sentence):
                who = _nearest_before(spans, m.start()) or spans[0][1]
                add(who, "injury", m.group(1).lower(), n)
            for m in _LEARNS.finditer(full_sentence):
                who = _nearest_before(spans, m.start())
                if who:
                    add(who, "knows", m.group(2), n)
            for m in _PROMISE.finditer(sentence):
                who = _nearest_before(spans, m.start())
                if who:
                    add(who, "promise", m.group(1), n)
            for m in _DRESS.finditer(sentence):
                who = _nearest_before(spans, m.start())
                if who and _garments(m.group(2)):
                    add(who, "outfit", m.group(2), n)
        for _, speaker, text in v["lines"]:
            match = next((c for c in names if _key(c) == _key(speaker)), None)
            for m in _SAY_PROMISE.finditer(text):
                if match:
                    add(match, "promise", m.group(1), n)
        for prop in props:
            for sentence in [*texts, *(t for _, _, t in v["lines"])]:
                if not _mentions(sentence, prop):
                    continue
                spans = _name_spans(sentence, names)
                if _GONE.search(sentence):
                    word = _GONE.search(sentence).group(1).lower()  # type: ignore[union-attr]
                    add(prop, "prop_location", "lost" if ("lost" in word or "stolen" in word) else "destroyed", n)
                elif (m := _TAKE.search(sentence)) and (who := _nearest_before(spans, m.start())):
                    add(prop, "prop_location", f"with {who}", n)
                elif _PLACE.search(sentence) and v["location"]:
                    add(prop, "prop_location", f"at {v['location']}", n)
    for name, (type_, value, n) in status.items():
        add(name, type_, value, n)
    for name, (place, n) in last_seen.items():
        if name not in status:
            add(name, "present", f"last seen at {place}" if place else "", n)
    if views:
        last = views[-1]
        text = f"{last['title']} {last['location']} {last['action']}".lower()
        time = next((t for t in TIMES if re.search(rf"\b{t}\b", text)), None)
        if time:
            add(WORLD, "time_of_day", time, last["number"])
        weather = next((w for w in WEATHERS if re.search(rf"\b{w}", text)), None)
        if weather:
            add(WORLD, "weather", weather, last["number"])
    parts = []
    for v in views:
        first = (_sentences(v["action"]) or [""])[0]
        head = f"{v['title']}" + (f" ({v['location']})" if v["location"] else "")
        parts.append(f"{head}: {first}".strip(": "))
    ending = (_sentences(views[-1]["action"]) or [""])[-1] if views else ""
    if ending and not parts[-1].endswith(ending):   # the cliffhanger the next episode opens on
        parts.append(f"It ends: {ending}")
    summary = " ".join(parts)[:1200].strip() or f"Episode {episode}."
    card = {"episode": episode, "summary": summary, "facts": facts[:60]}
    return parse_facts(card).model_dump(exclude={"facts": {"__all__": {"id", "keywords"}}})
