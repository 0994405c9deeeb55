"""The director's vision: the first card of a new project, written by the director.

The seeds' director: "the core ideas, themes and emotional direction should be defined first by
you". So the agent does not draft it: the card opens on the premise the director typed, with empty
themes, emotional core ("what should the audience feel at the end of episode 1?"), tone references
and never-rules, for the director to fill in with **Edit**. Only when asked (**Redo**, a rejection
note, or "draft the vision for me" in the chat) does the model suggest them (the offline table
below when it cannot). Its planner is registered first (agent.kinds), so nothing else is proposed
before the vision is accepted; it is canon record `vision`, at the top of the bible.

Accepting the director's own text (or editing it) is logged as theirs: the commit's
`inputs["author"]` is "director", which the authorship report counts as written by the director;
a suggested vision accepted as is counts as proposed and accepted, edited as edited. `storyreel make`
accepts the premise as the vision with actor `auto`, or the director's `--vision FILE`
(`parse_vision_file`).

Every later proposal carries the vision in its prompt (agent.prompts `vision_block`) and is checked
against it (`DRIFT`, a card check): never-rules deterministically where they can be (a banned word
from `RULE_WORDS`, a quoted phrase, "no <thing>", "<Character> never <verb>" on that character's
lines and actions), and, with a capable configured model and a vision beyond the premise, the
model's reading (`DriftVerdict`; junk or an error gives no warning). The card says "drifts from your
vision: …"; accepting anyway is logged (`accept-warnings`).
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.context import DirectorContext
from agent.kinds.base import (
    CardCheck,
    Kind,
    add_card_check,
    capable_model,
    decide_fields,
    nothing_retrieved,
    propose_text,
    validate,
)
from agent.kinds.cards import esc
from agent.state import DirectorState, Pending, Task
from memory.canon import Canon
from memory.errors import InputError, StoryreelError

RECORD_ID = "vision"
MAX_ITEMS = 12


def _clean_items(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = re.split(r"[\n;]", value)
    if not isinstance(value, list):
        raise ValueError(f"expected a list of short texts, got {type(value).__name__}")  # noqa: TRY004 - pydantic reads ValueError
    out = [" ".join(str(v).split()).strip(" -*•") for v in value if not isinstance(v, (dict, list))]
    return [v[:200] for v in out if v][:MAX_ITEMS]


class VisionProposal(BaseModel):
    """The director's vision of the series."""

    model_config = ConfigDict(extra="ignore")

    premise: str = Field(min_length=1, max_length=2000)
    themes: list[str] = Field(default_factory=list)
    emotional_core: str = Field(default="", max_length=600)
    tone_references: list[str] = Field(default_factory=list)
    never: list[str] = Field(default_factory=list)

    @field_validator("premise", "emotional_core", mode="before")
    @classmethod
    def _one_text(cls, value: Any) -> Any:
        return " ".join(value.split()) if isinstance(value, str) else value

    @field_validator("themes", "tone_references", "never", mode="before")
    @classmethod
    def _items(cls, value: Any) -> list[str]:
        return _clean_items(value)


class DriftVerdict(BaseModel):
    """The model's reading of one proposal against the vision."""

    drifts: bool
    reasons: list[str] = Field(default_factory=list)


def vision_of(canon: Canon | None) -> dict[str, Any] | None:
    """The accepted vision's data, or None."""
    rec = canon.live(RECORD_ID) if canon is not None else None
    return dict(rec.data) if rec is not None else None


# ----------------------------------------------------------------------------- planning and drafting


def _plan(canon: Canon, ctx: DirectorContext) -> Task | None:
    """A new project (no vision, no series yet) starts on the vision; a project made before the
    vision existed is not asked again (its director can still say "add a vision")."""
    if canon.live(RECORD_ID) is not None or canon.list("series"):
        return None
    return {"kind": "vision", "target_id": None}


SUGGEST_HELP = ("Fill in the themes, the emotional core, tone references and never-rules with **Edit**; "
                "or press **Redo** (or say “draft the vision for me”) for suggestions to start from.")

#: Offline suggestions: a premise word -> a theme (the first few found, in premise order).
THEME_WORDS = {
    "memory": "memory and forgetting", "memories": "memory and forgetting", "forget": "memory and forgetting",
    "storm": "what we owe the people we protect", "rain": "grief that returns like weather",
    "spirit": "the living and the dead", "spirits": "the living and the dead", "ghost": "the living and the dead",
    "family": "family duty against one's own wishes", "mother": "family duty against one's own wishes",
    "father": "family duty against one's own wishes", "sister": "siblings", "brother": "siblings",
    "love": "first love", "rival": "rivalry turning into respect", "friend": "friendship under strain",
    "revenge": "the cost of revenge", "secret": "secrets and trust", "lie": "secrets and trust",
    "school": "growing up", "city": "loneliness in a crowd", "war": "what war takes",
    "shrine": "tradition against change", "magic": "power and its price", "power": "power and its price",
}
DEFAULT_THEMES = ["courage", "belonging"]


def offline_suggestion(premise: str) -> dict[str, Any]:
    """A starting vision from the premise's words (no model): the director edits it."""
    themes: list[str] = []
    for word in re.findall(r"[a-z]+", premise.casefold()):
        theme = THEME_WORDS.get(word) or THEME_WORDS.get(word.rstrip("s"))
        if theme and theme not in themes:
            themes.append(theme)
    return {"premise": premise, "themes": (themes or DEFAULT_THEMES)[:3],
            "emotional_core": "hope that costs something: the audience should ache for the lead and need "
                              "episode 2",
            "tone_references": ["quiet, bittersweet slice-of-life anime", "a cliffhanger every episode"],
            "never": []}


SUGGEST_INSTRUCTION = (
    "Suggest the director's vision for this series, to be edited by the director: the premise as "
    "given, 2-4 themes, the emotional core (what the audience should feel at the end of episode 1), "
    "2-3 tone references (works or moods), and never-rules only if the premise implies them."
)


def _suggestion_problems(reply: VisionProposal) -> list[str]:
    return [] if reply.themes and reply.emotional_core else ["give 2-4 themes and the emotional core"]


def _suggest(ctx: DirectorContext, premise: str, notes: list[str], seed: int) -> tuple[dict[str, Any], list[str]]:
    from agent import prompts
    from agent.llm import generate_structured

    parts = [f"Premise: {premise}", SUGGEST_INSTRUCTION]
    if notes:
        parts.append("The director's notes (follow them): " + " | ".join(notes[-3:]))
    messages = [{"role": "system", "content": prompts.SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]
    try:
        reply = generate_structured(ctx.llm, messages, VisionProposal, retries=ctx.repair_retries, seed=seed,
                                    known={"premise": premise}, check=_suggestion_problems)
        return reply.model_dump(), ["suggested by the model: make it yours with Edit (themes, feeling, rules)"]
    except (StoryreelError, ValidationError) as exc:
        return offline_suggestion(premise), [(f"the model could not suggest a vision ({str(exc)[:120]}); these "
                                             "are offline suggestions from the premise's words: edit them")]


def _draft(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending) -> None:
    current = vision_of(ctx.canon)
    premise = str((current or {}).get("premise") or state.get("premise") or "").strip()
    pending["retrieved"] = []
    if not premise:
        raise InputError("there is no premise yet: tell me the premise of your series in the chat first")
    if task.get("suggest"):   # asked for: the model's (or offline) suggestion
        data, pending["warnings"] = _suggest(ctx, premise, list(state.get("notes") or []),
                                             int(pending.get("seed") or 0))
        pending["data"] = validate(kind, {**data, "premise": premise})
        return
    pending["data"] = validate(kind, current or {"premise": premise})
    pending["author"] = "director"   # the director's own text


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    return propose_text(kind, state, ctx, task, pending, draft=_draft)


def _review(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """Accept or edit; on the director's own card an edit has no proposal behind it."""
    command = decide_fields(kind, state, decision, pending)
    update = getattr(command, "update", None)
    if pending.get("author") == "director" and isinstance(update, dict) and "pending" in update:
        update["pending"] = {**update["pending"], "author": "director",
                             **({"proposed": None} if decision.get("type") == "edit" else {})}
    return command


def _on_reject(state: DirectorState, ctx: DirectorContext, pending: Pending, note: str, decided: str
               ) -> dict[str, Any]:
    """Redo (or a rejection note) asks for a suggestion: the model's, or the offline one."""
    return {"task": {**(state.get("task") or {"kind": "vision", "target_id": None}), "suggest": True}}


_ASKS_FOR_DRAFT = re.compile(
    r"\b(draft|write|suggest|propose|fill( in| out)?|come up with|help( me)? with)\b.*\b(vision|themes?|it|this)\b"
    r"|\b(you|for me)\b.*\b(draft|write|suggest)\b|\bsuggestions?\b", re.IGNORECASE)


def asks_for_draft(text: str) -> bool:
    """Whether a chat message on the vision card asks the agent to draft it."""
    return bool(_ASKS_FOR_DRAFT.search(text or ""))


def _on_chat(state: DirectorState, text: str) -> Command | None:
    if not asks_for_draft(text):
        return None
    task = {**(state.get("task") or {"kind": "vision", "target_id": None}), "suggest": True}
    return Command(goto="propose", update={"task": task, "messages": [{"role": "user", "content": text}]})


def vision_card(data: dict[str, Any]) -> str:
    def items(key: str) -> str:
        return ", ".join(f"`{esc(v)}`" for v in data.get(key) or []) or "—"

    rules = "".join(f"\n    - {esc(r)}" for r in data.get("never") or []) or " —"
    body = (f"- **Premise:** {esc(data.get('premise', ''))}\n- **Themes:** {items('themes')}\n"
            f"- **Emotional core** (what the audience should feel at the end of episode 1): "
            f"{esc(data.get('emotional_core') or '—')}\n- **Tone references:** {items('tone_references')}\n"
            f"- **Never:**{rules}")
    if not (data.get("themes") or data.get("emotional_core") or data.get("tone_references") or data.get("never")):
        body += f"\n\n*This is your vision, and every proposal after it follows it. {SUGGEST_HELP}*"
    return body


def _summary(data: dict[str, Any]) -> str:
    themes = ", ".join(data.get("themes") or []) or "no themes yet"
    return f"vision: {str(data.get('premise', ''))[:60]} ({themes})"[:160]


# ----------------------------------------------------------------------------- --vision FILE


FIELD_NAMES = {"premise": "premise", "logline": "premise", "themes": "themes", "theme": "themes",
               "emotional core": "emotional_core", "emotional_core": "emotional_core", "feeling": "emotional_core",
               "core": "emotional_core", "tone": "tone_references", "tone references": "tone_references",
               "tone_references": "tone_references", "references": "tone_references", "never": "never",
               "never rules": "never", "never_rules": "never", "rules": "never"}
MAX_FILE_BYTES = 64_000


def parse_vision_file(path: Path, premise: str | None = None) -> dict[str, Any]:
    """A vision from the director's file: TOML (`premise`, `themes`, `emotional_core`,
    `tone_references`, `never`, optionally under `[vision]`), or Markdown / plain text with those
    names as headings or `Name: value` lines (list items under them); plain text without any is the
    premise. `premise`: the command line's, used when the file has none. InputError names the file
    and what is wrong with it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"--vision {path}: cannot read it ({exc.strerror or exc}); give a TOML, Markdown or text "
                         "file") from None
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"--vision {path}: {len(raw)} bytes is too long for a vision; keep it under "
                         f"{MAX_FILE_BYTES // 1000} kB")
    if b"\x00" in raw:
        raise InputError(f"--vision {path}: this is a binary file, not text; give a TOML, Markdown or text file")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"--vision {path}: not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    data = _parse_toml(path, text) if path.suffix.casefold() == ".toml" else _parse_text(text)
    if not data.get("premise") and premise:
        data["premise"] = premise
    if not str(data.get("premise") or "").strip():
        raise InputError(f"--vision {path}: it names no premise; add `premise = \"...\"` (TOML), a '# Premise' "
                         "section, or give the premise on the command line")
    try:
        return VisionProposal.model_validate(data).model_dump()
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InputError(f"--vision {path}: {problems}") from None


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"--vision {path}: not valid TOML ({exc}); fix it or use a Markdown file") from None
    if isinstance(doc.get("vision"), dict):
        doc = doc["vision"]
    out: dict[str, Any] = {}
    unknown = []
    for key, value in doc.items():
        field = FIELD_NAMES.get(str(key).casefold().replace("-", "_").replace("_", " ")) \
            or FIELD_NAMES.get(str(key).casefold())
        if field is None:
            unknown.append(str(key))
            continue
        if isinstance(value, dict):
            raise InputError(f"--vision {path}: {key!r} is a table; give it as text or a list of texts")
        if field in ("premise", "emotional_core") and isinstance(value, list):
            value = " ".join(map(str, value))
        out[field] = value if isinstance(value, (str, list)) else str(value)
    unknown = [k for k in unknown if k.casefold() not in ("title", "name", "series")]   # a heading, not a field
    if unknown:
        raise InputError(f"--vision {path}: {', '.join(map(repr, unknown[:5]))} is no vision field; use premise, "
                         "themes, emotional_core, tone_references, never")
    return out


_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(.+?)\s*#*\s*$")
_LABELLED = re.compile(r"^\s*\**([A-Za-z][A-Za-z _-]{1,30}?)\**\s*:\s*(.*)$")
_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+(.*)$")


def _parse_text(text: str) -> dict[str, Any]:
    sections: dict[str, list[str]] = {}
    current: str | None = None
    loose: list[str] = []
    for line in text.splitlines():
        head = _HEADING.match(line)
        label = _LABELLED.match(line) if not head else None
        name = (head[1] if head else label[1] if label else "").strip().casefold().replace("-", " ").replace("_", " ")
        if (head or label) and name in FIELD_NAMES:
            current = FIELD_NAMES[name]
            sections.setdefault(current, [])
            if label and label[2].strip():
                sections[current].append(label[2].strip())
            continue
        if head:   # a heading that is no vision field (the title): its text is not the premise
            current = None
            continue
        if not line.strip():
            continue
        (sections[current] if current else loose).append(line.strip())
    out: dict[str, Any] = {}
    for field, lines in sections.items():
        if field in ("premise", "emotional_core"):
            out[field] = " ".join(lines)
        else:
            items = []
            for ln in lines:
                item = _ITEM.match(ln)
                items += [item[1]] if item else [p for p in re.split(r"\s*[,;]\s*", ln) if p]
            out[field] = items
    if "premise" not in out and loose:
        out["premise"] = " ".join(loose)
    return out


# ----------------------------------------------------------------------------- drift checks

#: Words that break a common never-rule ("no gore" -> gore, blood…). A rule's other words are
#: matched literally ("no cats" -> cat, cats), quoted phrases exactly.
RULE_WORDS: dict[str, tuple[str, ...]] = {
    "gore": ("gore", "gory", "blood", "bloody", "bleeding", "entrails", "guts", "dismember", "dismembered",
             "decapitated", "severed", "mutilated", "corpse"),
    "violence": ("kill", "kills", "killed", "murder", "murders", "murdered", "stab", "stabs", "stabbed", "punch",
                 "punches", "shoot", "shoots", "shot dead", "beat up", "strangle", "fight", "fights"),
    "death": ("die", "dies", "died", "dead", "death", "killed", "corpse", "funeral"),
    "swearing": ("damn", "hell", "shit", "fuck", "fucking", "bastard", "bitch", "crap"),
    "romance": ("kiss", "kisses", "kissed", "romance", "romantic", "crush", "date", "in love", "confession"),
    "smoking": ("cigarette", "cigarettes", "smoke", "smokes", "smoking", "cigar"),
    "alcohol": ("beer", "sake", "wine", "whisky", "whiskey", "drunk", "alcohol", "vodka"),
    "weapons": ("gun", "guns", "pistol", "rifle", "knife", "sword", "blade"),
}
RULE_ALIASES = {"blood": "gore", "gory": "gore", "violent": "violence", "fighting": "violence",
                "deaths": "death", "dying": "death", "killing": "violence", "swear": "swearing",
                "swears": "swearing", "profanity": "swearing", "cursing": "swearing", "curse words": "swearing",
                "bad language": "swearing", "romantic": "romance", "love story": "romance", "kissing": "romance",
                "smoke": "smoking", "cigarettes": "smoking", "drinking": "alcohol", "drugs and alcohol": "alcohol",
                "booze": "alcohol", "guns": "weapons", "gun": "weapons", "weapon": "weapons",
                "one dies": "death", "one ever dies": "death", "body dies": "death"}
IRREGULAR = {"lie": ("lie", "lies", "lied", "lying", "liar"), "die": ("die", "dies", "died", "dying"),
             "run": ("run", "runs", "ran", "running"), "fight": ("fight", "fights", "fought", "fighting"),
             "steal": ("steal", "steals", "stole", "stolen", "stealing"), "tell": ("tell", "tells", "told"),
             "leave": ("leave", "leaves", "left", "leaving"), "speak": ("speak", "speaks", "spoke", "speaking"),
             "sing": ("sing", "sings", "sang", "singing"), "lose": ("lose", "loses", "lost", "losing"),
             "break": ("break", "breaks", "broke", "broken"), "give": ("give", "gives", "gave", "giving"),
             "cry": ("cry", "cries", "cried", "crying", "tears"), "kill": ("kill", "kills", "killed", "killing")}
_NEVER_RULE = re.compile(r"^\s*(?P<who>[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)?)\s+(?:must\s+)?(?:never|does not|doesn't|"
                         r"cannot|can't|won't)\s+(?:ever\s+)?(?P<verb>[a-z][a-z'-]+)(?P<rest>.*)$")
_NO_RULE = re.compile(r"^\s*(?:no|never any|nothing with|without)\s+(?P<what>.+?)\s*\.?$", re.IGNORECASE)
_SKIP_KEYS = ("id", "path", "seed", "image", "file", "clip", "preview", "candidates", "voice", "engine")


def verb_forms(verb: str) -> tuple[str, ...]:
    """'lies' -> lie, lies, lied, lying, liar; 'smiles' -> smile, smiles, smiled, smiling…"""
    verb = verb.casefold().strip("'")
    base = verb
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ches", "ch"), ("shes", "sh"), ("es", "e"), ("s", "")):
        if verb.endswith(suffix) and len(verb) > len(suffix) + 1:
            base = verb[: -len(suffix)] + repl
            break
    for key in (base, base + "e", base.rstrip("e")):
        if key in IRREGULAR:
            return IRREGULAR[key]
    stem = base.removesuffix("e")
    forms = {base, base + "s", base + "es", stem + "ed", stem + "ing", base + "d"}
    if base.endswith("y"):
        forms |= {base[:-1] + "ies", base[:-1] + "ied"}
    return tuple(sorted(forms))


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(phrase)}(?![\w])", text, re.IGNORECASE) is not None


def _pieces(data: Any, where: str = "") -> list[tuple[str, str, str | None]]:
    """(where, text, speaker) for every text of a proposal: dialogue lines with their speaker."""
    out: list[tuple[str, str, str | None]] = []
    if isinstance(data, dict):
        if isinstance(data.get("line"), str) and data.get("speaker"):
            out.append((where or "line", data["line"], str(data["speaker"])))
            return out
        for key, value in data.items():
            if any(str(key).casefold().endswith(s) for s in _SKIP_KEYS):
                continue
            out += _pieces(value, str(key) if not where else f"{where} {key}")
    elif isinstance(data, list):
        for i, value in enumerate(data, 1):
            label = {"lines": "line", "beats": "beat", "shots": "shot", "episodes": "episode"}.get(
                where.rsplit(" ", 1)[-1], where)
            out += _pieces(value, f"{label} {i}" if label else str(i))
    elif isinstance(data, str) and data.strip():
        out.append((where or "text", data, None))
    return out


def _rule_phrases(rule: str) -> list[str]:
    """The words that break a "no …" rule: its table entry, quoted phrases, else the thing itself."""
    quoted = re.findall(r"[\"“”'‘’]([^\"“”'‘’]{2,80})[\"“”'‘’]", rule)
    if quoted:
        return quoted
    found = _NO_RULE.match(rule)
    if not found:
        return []
    what = found["what"].casefold().strip(" .!")
    key = what if what in RULE_WORDS else RULE_ALIASES.get(what)
    if key is None:
        key = next((k for k in RULE_WORDS if what.startswith(k) or what.endswith(k)), None)
    if key is not None:
        return list(RULE_WORDS[key])
    plural = what[:-1] if what.endswith("s") and len(what) > 3 else what + "s"
    return [what, plural]


def rule_breaches(rules: list[str], data: dict[str, Any]) -> list[str]:
    """Where `data` (a proposal) breaks a never-rule, as card warnings; deterministic."""
    pieces = _pieces(data)
    found: list[str] = []
    for rule in rules:
        person = _NEVER_RULE.match(rule)
        if person and not re.search(r"[\"“”]", rule):
            who, forms = person["who"], verb_forms(person["verb"])
            for where, text, speaker in pieces:
                said = speaker is not None and speaker.casefold() == who.casefold()
                sentences = [text] if said else [s for s in re.split(r"(?<=[.!?;])\s+", text) if _has(s, who)]
                hit = next((f for s in sentences for f in forms if _has(s, f)), None)
                if hit:
                    found.append(f"{where}{f' ({speaker})' if speaker else ''}: “{hit}” — your rule “{rule}”")
                    break
            continue
        for phrase in _rule_phrases(rule):
            hit = next((where for where, text, _ in pieces if _has(text, phrase)), None)
            if hit:
                found.append(f"{hit} says “{phrase}” — your rule “{rule}”")
                break
    return found


DRIFT_INSTRUCTION = (
    "Does this proposal drift from the director's vision (its themes, emotional core, tone, or a never-rule)? "
    "Answer drifts true only for a clear conflict, with one short reason per conflict."
)


def _model_drift(ctx: DirectorContext, vision: dict[str, Any], kind: str, data: dict[str, Any]) -> list[str]:
    """The capable model's reading; nothing on junk or an error (never a crash)."""
    from agent import prompts
    from agent.llm import generate_structured

    messages = [{"role": "system", "content": "You check proposals for a vertical anime mini drama against the "
                 "director's vision. Answer with JSON only."},
                {"role": "user", "content": f"{prompts.vision_block(vision)}\n\nProposal ({kind}):\n"
                 + json.dumps(data, ensure_ascii=False)[:4000] + f"\n\n{DRIFT_INSTRUCTION}"}]
    try:
        verdict = generate_structured(ctx.llm, messages, DriftVerdict, retries=0, max_tokens=300, temperature=0.0)
    except Exception:  # noqa: BLE001 - a drift reading is advice: junk or a broken backend gives none
        return []
    if not verdict.drifts:
        return []
    reasons = [" ".join(str(r).split())[:200] for r in verdict.reasons if str(r).strip()][:3]
    return [f"{r} (the model's reading)" for r in reasons] or ["the model reads it as off your vision"]


def drift_warnings(canon: Canon, ctx: DirectorContext | None, pending: Pending) -> list[str]:
    """The card's drift from the accepted vision: never-rules, then (capable model, a vision beyond
    the premise) the model's reading."""
    vision = vision_of(canon)
    data = pending.get("data") or {}
    if vision is None or not data or data.get("drafting"):
        return []
    found = rule_breaches(list(vision.get("never") or []), data)
    rich = any(vision.get(k) for k in ("themes", "emotional_core", "tone_references", "never"))
    if ctx is not None and rich and capable_model(getattr(ctx, "llm", None)):
        found += _model_drift(ctx, vision, str(pending.get("kind") or ""), data)
    return found


#: The kinds checked against the vision: the writers' room and the storyboard's text proposals.
DRIFT_KINDS = ("series", "character", "location", "prop", "outline", "beats", "scene", "facts", "shots")
DRIFT = CardCheck(name="drift", prefix="drifts from your vision: ", what="drift from the vision",
                  applies=lambda kind: kind in DRIFT_KINDS, find=drift_warnings)
add_card_check(DRIFT)


KINDS = (
    Kind(name="vision", title="Your vision", schema=VisionProposal, plan=_plan, propose=_propose,
         retrieve=nothing_retrieved, review=_review, on_reject=_on_reject, on_chat=_on_chat,
         record_id=lambda data: RECORD_ID, card=vision_card, summarise=_summary, chat_notes=False,
         failure_help="Tell me the premise in the chat, or **Edit** to write the vision yourself."),
)

__all__ = ["DRIFT", "KINDS", "VisionProposal", "asks_for_draft", "drift_warnings", "offline_suggestion",
           "parse_vision_file", "rule_breaches", "verb_forms", "vision_of"]
