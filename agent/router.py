"""Which tool a director's message calls, with which arguments: two routers, one result.

- `OfflineRouter` (the embedded demo model cannot pick tools): the message's similarity to exemplar
  utterances per tool (agent/tools/exemplars.toml, embedded once per process with the bible's MiniLM
  model), nudged by cue words, plus entity linking against canon (agent.tools.refs). Several
  intents in one message ("make Ren older and dub it into Japanese") become several calls, in order;
  a target that cannot be told ("the scene" while three exist, "her" with no one on the card) is
  a clarifying question, never a guess.
- `ToolCallingRouter` (a capable configured model): native tool calling through the OpenAI client
  (`tools=[…]`), or a JSON "action" reply where the endpoint has no tool calling; arguments are
  validated by the tools' own pydantic models and their record references resolved; a bad call goes
  back to the model once, then to the director as a clear message. A prose reply (no call) falls
  back to the offline router, so the director's words are still acted on, not just answered.

`router_for(llm)` picks one; `Route.router` names it (the studio shows it next to the model badge).
"""
from __future__ import annotations

import json
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent.tools import TOOLS, ToolCall, ToolError, call
from agent.tools import refs as R
from agent.tools.refs import Catalog, Mention, card_record, display
from memory.canon import Record
from memory.errors import BackendError, StoryreelError

if TYPE_CHECKING:
    import numpy as np

    from agent.context import DirectorContext
    from agent.state import DirectorState

EXEMPLARS = Path(__file__).parent / "tools" / "exemplars.toml"
OFFLINE_NAME = "offline router (MiniLM exemplars + canon links)"
MAX_TOOL_ROUNDS = 2        # the model's calls, then once more with the errors; then the director is told


@dataclass
class Route:
    """The calls a message asks for, in order; or one clarifying question; or a clear failure."""

    calls: list[ToolCall] = field(default_factory=list)
    question: str | None = None
    failure: str | None = None
    router: str = ""
    note: str = ""               # how the route was reached (e.g. "the model answered in prose")


# ----------------------------------------------------------------------------- exemplars


@dataclass(frozen=True)
class _Index:
    tools: list[str]
    labels: list[int]                        # row -> index into tools
    vectors: np.ndarray                      # (rows, 384) unit vectors
    cues: dict[str, list[tuple[re.Pattern[str], float]]]
    requires: dict[str, re.Pattern[str]]
    rows: list[Any]                          # tool index -> its rows in `vectors`


_INDEX: dict[tuple[str, float], _Index] = {}
_INDEX_LOCK = threading.Lock()


def load_exemplars(path: Path = EXEMPLARS) -> dict[str, dict[str, Any]]:
    """The exemplar table; BackendError naming the file and the tool when it is malformed."""
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise BackendError(f"cannot read the router's exemplars {path}: {exc}") from exc
    for name, entry in table.items():
        if name not in TOOLS:
            raise BackendError(f"{path}: [{name}] is not a tool; tools are {', '.join(sorted(TOOLS))}")
        if not entry.get("examples"):
            raise BackendError(f"{path}: [{name}] has no examples; add at least one utterance")
    return table


def _index(embedder: Any, path: Path) -> _Index:
    """Exemplar embeddings, computed once per process per exemplar file version."""
    key = (str(path), path.stat().st_mtime)
    with _INDEX_LOCK:
        if key in _INDEX:
            return _INDEX[key]
        table = load_exemplars(path)
        tools = list(table)
        texts, labels = [], []
        for i, name in enumerate(tools):
            for ex in table[name]["examples"]:
                texts.append(str(ex))
                labels.append(i)
        cues = {name: [(re.compile(p, re.IGNORECASE), float(w)) for p, w in (table[name].get("cues") or {}).items()]
                for name in tools}
        requires = {name: re.compile(table[name]["requires"], re.IGNORECASE) for name in tools
                    if table[name].get("requires")}
        import numpy as np

        rows = [np.flatnonzero(np.array(labels) == i) for i in range(len(tools))]
        index = _Index(tools, labels, embedder.embed(texts), cues, requires, rows)
        _INDEX[key] = index
        return index


# ----------------------------------------------------------------------------- the offline router

# What each tool acts on: the record kinds its target may be (first preferred); () = no target.
TARGETS: dict[str, tuple[str, ...]] = {
    "ask_bible": (), "status": (), "render": (), "dub": (), "pronounce": (), "add": (), "reorder": (),
    "merge_scenes": (), "undo": (), "start_episode": (), "cold_open": (), "draft_all": (),
    "open_branch": (), "switch_branch": (), "compare_branches": (), "adopt_branch": (), "discard_branch": (),
    "reopen_branch": (),
    "show": ("character", "location", "prop", "shot", "line", "scene", "episode", "style", "series", "outline",
             "beats"),
    "revise": ("character", "location", "prop", "shot", "line", "scene", "episode", "style", "series", "outline",
               "beats"),
    "remove": ("shot", "line", "character", "location", "prop", "scene"),
    "split_scene": ("scene",), "rewrite_lines": ("line", "scene", "shot"),
    "reframe_shot": ("shot",), "redo_panel": ("shot",), "recast": ("character",), "redo_take": ("line",),
    "change_motion": ("shot", "scene"), "review": ("shot", "line", "character", "location", "scene"),
}
_VERBS = (r"make|give|change|redo|dub|add|remove|delete|cut|swap|pronounce|render|recast|rewrite|show|undo|"
          r"revert|move|reorder|translate|split|merge|put|drop|use|draw|redraw|record|rename|let|have|set|"
          r"introduce|create|tell|review|open|bring|then")
_SPLIT = re.compile(rf"\s*(?:;|\.\s+|\bthen\b|,?\s+and then\s+|,?\s+and also\s+|,?\s+also\s+|,\s+and\s+(?=(?:{_VERBS})\b)|"
                    rf"\s+and\s+(?=(?:please\s+)?(?:{_VERBS})\b))\s*", re.IGNORECASE)
_LANG = re.compile(r"\b(japanese|english|chinese|mandarin|korean|spanish|french|german|italian|portuguese)\b", re.IGNORECASE)
_PRONOUNCE = re.compile(r"\b(?:pronounce|say)\s+[\"“']?(.+?)[\"”']?\s+as\s+[\"“']?(.+?)[\"”']?\s*[.!]?\s*$"
                        r"|[\"“']?([\w-]+)[\"”']?\s+is\s+pronounced\s+[\"“']?([\w-]+)", re.IGNORECASE)
_ADD_KINDS = ((r"\b(location|place|setting|spot)\b", "location"), (r"\b(prop|item|object)\b", "prop"),
              (r"\bshot\b", "shot"), (r"\bscene\b", "scene"),
              (r"\b(character|villain|person|friend|rival|girl|boy|man|woman|cat|dog)\b", "character"))
_REVIEW_WHAT = ((r"\b(reference|sheet)\b", "reference"), (r"\bbackground\b", "background"),
                (r"\b(casting|voice|audition)\b", "casting"), (r"\b(motion|animation)\b", "motion"),
                (r"\b(shot plan|storyboard|shots)\b", "shots"), (r"\b(take|recording)\b", "take"),
                (r"\b(panel|picture|image)\b", "panel"))
_THE_SCENE = re.compile(r"\b(the|this|that) (scene|shot|line|take|panel)\b", re.IGNORECASE)


def split_clauses(text: str) -> list[str]:
    """"make Ren older and give him a scar; then dub it into Japanese" -> three clauses."""
    parts = [re.sub(r"^(?:and|also|then|so)\s+", "", p.strip(" ,.;"), flags=re.IGNORECASE)
             for p in _SPLIT.split(text) if p and p.strip(" ,.;")]
    return [p for p in parts if p] or [text.strip()]


def _split_by_names(clauses: list[str], cat: Catalog) -> list[str]:
    """"make Ren taller and Aiko shorter" -> "make Ren taller", "make Aiko shorter": an "and" before
    another character's name starts a request of its own, with the first one's verb."""
    out: list[str] = []
    for clause in clauses:
        verb = re.match(rf"^\s*((?:please\s+)?(?:{_VERBS}))\s+", clause, re.IGNORECASE)
        parts = [clause]
        if verb:
            for m in R.link(clause, cat):
                if m.record.kind != "character" or m.start == 0:
                    continue
                before = clause[:m.start]
                joint = re.search(r"\s+and\s+$", before)
                if joint and any(x.record.kind == "character" and x.end <= joint.start() for x in R.link(before, cat)):
                    parts = [clause[:joint.start()], f"{verb.group(1)} {clause[m.start:]}"]
                    break
        out += parts
    return out


class OfflineRouter:
    """Exemplar similarity + cue words + canon links; no language model."""

    name = OFFLINE_NAME

    def __init__(self, *, embedder: Any = None, exemplars: Path = EXEMPLARS) -> None:
        self._embedder = embedder
        self._path = exemplars

    def _embed_index(self) -> tuple[Any, _Index]:
        if self._embedder is None:
            from memory.bible import load_embedder

            self._embedder = load_embedder()
        return self._embedder, _index(self._embedder, self._path)

    def warm(self) -> None:
        """Load the model and embed the exemplars now (the first message does it otherwise)."""
        self._embed_index()

    def scores(self, text: str, mentions: list[Mention], focus: Record | None, *, someone: bool = False
               ) -> list[tuple[str, float]]:
        """Every tool with its score for `text`, best first (`someone`: a pronoun names a character
        the words do not settle; the tools for a character still fit, and will ask who)."""
        import numpy as np

        embedder, index = self._embed_index()
        sims = index.vectors @ embedder.embed([text])[0]
        out = []
        kinds = {m.record.kind for m in mentions} | ({focus.kind} if focus is not None else set()) \
            | ({"character"} if someone else set())
        for i, name in enumerate(index.tools):
            mine = np.sort(sims[index.rows[i]])[::-1]
            score = 0.65 * float(mine[0]) + 0.35 * float(mine[: min(3, len(mine))].mean())
            score += min(0.3, sum(w for pattern, w in index.cues[name] if pattern.search(text)))
            if name in index.requires and not index.requires[name].search(text):
                score -= 0.2           # this tool's own words are missing
            wanted = TARGETS.get(name, ())
            if wanted and not kinds & set(wanted) and not (name in ("redo_take",) and "character" in kinds):
                score -= 0.12          # it needs a target the message does not name
            out.append((name, score))
        return sorted(out, key=lambda item: -item[1])

    def route(self, text: str, ctx: DirectorContext, state: DirectorState) -> Route:
        cat = Catalog.of(ctx.canon)
        focus = card_record(cat, state.get("pending"))
        calls: list[ToolCall] = []
        context: list[Mention] = []
        for clause in _split_by_names(split_clauses(text), cat):
            mentions = R.link(clause, cat, focus)
            # "make Ren older and give him a scar": "him" is the character of the clause before
            earlier = [Mention(m.record, -1, -1, m.how) for m in context[-1:]]
            extra, unresolved = R.pronoun_targets(clause, cat, [*earlier, *mentions], focus)
            mentions = sorted([*mentions, *[m for m in extra if not any(x.start == m.start for x in mentions)]],
                              key=lambda m: m.start)
            ranked = self.scores(clause, mentions, focus, someone=unresolved)
            tool = ranked[0][0]
            try:
                args = self._arguments(tool, clause, mentions, cat, focus, unresolved)
            except _Ask as ask:
                return Route(question=str(ask), router=self.name)
            try:
                made = call(tool, args)
            except ToolError as exc:
                return Route(question=f"I'm not sure what to do with “{clause}”: {exc}", router=self.name)
            if calls and calls[-1].name == made.name and calls[-1].target == made.target and \
                    made.name in ("revise", "rewrite_lines", "recast", "redo_take", "change_motion", "redo_panel"):
                calls[-1] = _merged(calls[-1], made)   # "make Ren older and give him a scar": one proposal
            else:
                calls.append(made)
            context += [m for m in mentions if m.record.kind == "character"]
        return Route(calls=calls, router=self.name)

    # -------------------------------------------------------------- arguments

    def _arguments(self, tool: str, clause: str, mentions: list[Mention], cat: Catalog, focus: Record | None,
                   unresolved: bool) -> dict[str, Any]:
        lowered = clause.casefold()
        if tool == "ask_bible":
            return {"question": clause}
        if tool.endswith("_branch") or tool == "compare_branches":
            from agent.tools.branches import router_arguments

            return router_arguments(tool, clause)
        if tool == "draft_all":
            from agent.tools.batch import router_arguments as batch_arguments

            return batch_arguments(clause)
        if tool == "status":
            ep = next((m.record for m in mentions if m.record.kind == "episode"), None)
            return {"episode": ep.data.get("number") if ep else None}
        if tool in ("start_episode", "cold_open"):   # "next episode": None, the one after the last started
            said = re.search(rf"\b(?:episode|ep)\.?\s*#?{R._NUM}\b", lowered) or re.search(
                rf"\b{R._ORD}\s+episode\b", lowered)
            ep = next((m.record for m in mentions if m.record.kind == "episode"), None)
            number = R.number(said.group(1)) if said else None
            if number is None and ep is not None:
                number = int(ep.data.get("number", 0)) or None
            return {"episode": number}
        if tool == "render":
            ep = next((m.record for m in mentions if m.record.kind == "episode"), None)
            return {"episode": int(ep.data.get("number", 1)) if ep else 1, "preview": "preview" in lowered}
        if tool == "dub":
            lang = _LANG.search(clause)
            if not lang:
                raise _Ask("Into which language? (for example: dub episode 1 into Japanese)")
            from agent.voices import LANGUAGES

            return {"language": LANGUAGES.get(lang.group(1).lower(), lang.group(1).lower())}
        if tool == "pronounce":
            m = _PRONOUNCE.search(clause)
            if not m:
                raise _Ask("How should it be said? Write it as: pronounce WORD as SOUNDS-LIKE")
            word, sound = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
            return {"word": word.strip(), "as": sound.strip()}
        if tool == "add":
            kind = next((k for p, k in _ADD_KINDS if re.search(p, lowered)), "character")
            scene = next((m.record.id for m in mentions if m.record.kind in ("scene", "shot")), None)
            return {"kind": kind, "brief": clause, "scene": scene}
        if tool == "reorder":
            what = "scenes" if re.search(r"\bscenes?\b", lowered) and not re.search(r"\bshots?\b", lowered) \
                else "shots"
            if what == "scenes" or (not re.search(r"\bshots?\b", lowered)
                                    and any(m.record.kind == "scene" for m in mentions)):
                from agent.tools.revise import scene_order

                ep = next((int(m.record.data.get("number", 1)) for m in mentions if m.record.kind == "episode"), 1)
                eps = [s for s in cat.scenes if int(s.data.get("episode", 1)) == ep]
                named = list({m.record.id: m.record for m in mentions if m.record.kind == "scene"}.values())
                bare = re.sub(rf"\b(?:episode|ep)\s*{R._NUM}\b", " ", lowered)
                numbers = [n for n in (R.number(x) for x in re.findall(rf"\b{R._NUM}\b", bare)) if n]
                order = scene_order(clause, named, numbers, len(eps))
                if order is None:
                    raise _Ask("In which order? For example: “swap scenes 2 and 3” or “move scene 3 before scene 1”.")
                return {"what": "scenes", "new_order": order, "episode": ep}
            scene_ids = [m.record.id for m in mentions if m.record.kind == "scene"]
            shot_scene = [str(m.record.data.get("scene_id")) for m in mentions if m.record.kind == "shot"]
            focus_scene = cat.scene_of(focus)
            scene = (scene_ids or shot_scene or [focus_scene.id if focus_scene else None])[0]
            if scene is None:
                raise _Ask(_which("scene", cat.scenes))
            n = len(cat.shots.get(scene, []))
            moved = re.search(rf"\bshot\s*{R._NUM}\s+(?:to\s+go\s+|to\s+come\s+|comes?\s+|goes?\s+)?(before|after)"
                              rf"\s+shot\s*{R._NUM}", lowered)
            if moved:
                a, b = R.number(moved.group(1)), R.number(moved.group(3))
                order = [i for i in range(1, n + 1) if i != a]
                if a and b and b in order and 1 <= a <= n:
                    order.insert(order.index(b) + (moved.group(2) == "after"), a)
                    return {"what": "shots", "new_order": order, "scene": scene}
            bare = re.sub(rf"\b(?:scene|episode|ep)\s*{R._NUM}\b", " ", lowered)
            numbers = [n for n in (R.number(x) for x in re.findall(rf"\b{R._NUM}\b", bare)) if n]
            if re.search(r"\bfirst two\b", lowered):
                numbers = [1, 2]
            if len(numbers) < 2:
                raise _Ask(f"In which order? For example: “swap shots 1 and 2” or “shots 2, 1, 3 in {scene}”.")
            return {"what": "shots", "new_order": numbers[:12], "scene": scene}
        if tool == "merge_scenes":
            scenes = list({m.record.id: m.record for m in mentions if m.record.kind == "scene"}.values())
            near = re.search(r"\b(previous|prior|before it|next|following|after it)\b", lowered)
            if len(scenes) == 1 and near and near.group(1) in ("next", "following", "after it"):
                return {"first": scenes[0].id}   # the tool takes the scene after it
            if len(scenes) == 1 and near:
                n = int(scenes[0].data.get("number", 0))
                scenes = [s for s in cat.scenes if s.data.get("episode") == scenes[0].data.get("episode")
                          and int(s.data.get("number", 0)) == n - 1] + scenes
            if len(scenes) < 2:
                numbers = [n for n in (R.number(x) for x in re.findall(rf"\b({R._NUM[1:-1]}|{R._ORD[1:-1]})\b",
                                                                          lowered)) if n]
                by_number = {int(s.data.get("number", 0)): s for s in cat.scenes}
                scenes = [by_number[n] for n in numbers if n in by_number]
            if len(scenes) < 2:
                raise _Ask("Which two scenes? " + _which("scene", cat.scenes))
            return {"first": scenes[0].id, "second": scenes[1].id}
        if tool == "undo":
            rec = _pick(mentions, ("character", "location", "prop", "scene", "shot", "style", "series", "outline",
                                   "beats", "episode"))
            rev = re.search(r"\b(?:rev(?:ision)?|version)\s*(\d+)", lowered)
            return {"record": rec.id if rec else None, "revision": int(rev.group(1)) if rev else None}
        target = self._target(tool, clause, mentions, cat, focus, unresolved)
        if tool in ("show",):
            return {"record": target.id}
        if tool == "revise":
            return {"record": target.id, "instruction": clause}
        if tool == "remove":
            if re.search(r"\bline\b", lowered):
                line = self._line(mentions, cat, focus)
                if line is not None:
                    return {"record": line.id}
            return {"record": target.id}
        if tool == "split_scene":
            return {"scene": target.id, "instruction": clause}
        if tool == "rewrite_lines":
            return {"scene": target.id, "instruction": clause}
        if tool == "reframe_shot":
            return {"shot": target.id, "instruction": clause}
        if tool == "redo_panel":
            return {"shot": target.id, "note": clause}
        if tool == "recast":
            return {"character": target.id, "instruction": clause}
        if tool == "redo_take":
            return {"line": target.id, "note": clause}
        if tool == "change_motion":
            return {"target": target.id, "instruction": clause}
        if tool == "review":
            what = next((w for p, w in _REVIEW_WHAT if re.search(p, lowered)), None)
            if target.kind == "character" and what not in ("reference", "casting"):
                what = "reference"
            return {"item": target.id, "what": what}
        raise _Ask(f"I could not tell what to do with “{clause}”")

    def _target(self, tool: str, clause: str, mentions: list[Mention], cat: Catalog, focus: Record | None,
                unresolved: bool) -> Record:
        wanted = TARGETS[tool]
        if tool == "redo_take":
            line = self._line(mentions, cat, focus)
            if line is not None:
                return line
            chars = [m.record for m in mentions if m.record.kind == "character"]
            if chars:
                lines = [ln for sc in cat.scenes for ln in cat.lines(sc)
                         if str(ln.data.get("speaker", "")).casefold() == str(chars[0].data.get("name")).casefold()]
                raise _Ask(f"Which line of {chars[0].data.get('name')}? "
                           + "; ".join(f"{ln.id}: “{ln.data.get('line')}”" for ln in lines[:6]))
        if tool == "rewrite_lines":
            rec = _pick(mentions, ("scene", "shot", "line"))
            scene = cat.scene_of(rec) if rec is not None else None
            if scene is not None:
                return scene
        rec = _pick(mentions, wanted)
        if rec is not None:
            if tool in ("rewrite_lines", "split_scene") and rec.kind != "scene":
                rec = cat.scene_of(rec) or rec
            if tool == "change_motion" and rec.kind == "shot" and not re.search(r"\bshot\b", clause, re.IGNORECASE):
                rec = cat.scene_of(rec) or rec
            return rec
        if unresolved:
            raise _Ask(_which("character", cat.characters, who=True))
        if focus is not None:
            candidate = focus if focus.kind in wanted else None
            if candidate is None and "scene" in wanted:
                candidate = cat.scene_of(focus)
            if candidate is None and "character" in wanted:
                chars = R.card_characters(cat, focus)
                candidate = chars[0] if len(chars) == 1 else None
            if candidate is not None:
                return candidate
        said = _THE_SCENE.search(clause) or re.search(r"\b(scene|shot|line|take|panel)\b", clause, re.IGNORECASE)
        word = {"take": "line", "panel": "shot"}.get(said.group(said.lastindex or 0).lower(), "") if said else ""
        word = word or (said.group(said.lastindex or 0).lower() if said else "")
        need = word if word in wanted else wanted[0]
        pool = {"scene": cat.scenes, "shot": cat.all_shots(), "character": cat.characters,
                "line": [ln for sc in cat.scenes for ln in cat.lines(sc)]}.get(need, [])
        if len(pool) == 1:
            return pool[0]
        if need == "shot" and _THE_SCENE.search(clause) is None and not pool:
            raise _Ask("There are no shots yet: the storyboard comes after the scenes are accepted.")
        raise _Ask(_which(need, pool, who=need == "character"))

    @staticmethod
    def _line(mentions: list[Mention], cat: Catalog, focus: Record | None) -> Record | None:
        lines = [m.record for m in mentions if m.record.kind == "line"]
        if lines:
            return lines[0]
        chars = [m.record for m in mentions if m.record.kind == "character"]
        scenes = [cat.scene_of(m.record) for m in mentions if m.record.kind in ("scene", "shot")]
        scenes = [s for s in scenes if s is not None] or ([cat.scene_of(focus)] if cat.scene_of(focus) else [])
        if focus is not None and focus.kind == "line" and not chars:
            return focus
        if chars:
            name = str(chars[0].data.get("name", "")).casefold()
            pool = [ln for sc in (scenes or cat.scenes) for ln in cat.lines(sc)
                    if str(ln.data.get("speaker", "")).casefold() == name]
            if len(pool) == 1 or (pool and scenes):
                return pool[0]
        return None


class _Ask(Exception):
    """A clarifying question instead of a guess."""


def _pick(mentions: list[Mention], kinds: tuple[str, ...]) -> Record | None:
    """The first mention of a wanted kind; names before field words ("Aiko's look" is about Aiko)."""
    good = [m for m in mentions if m.record.kind in kinds]
    if not good:
        return None
    good.sort(key=lambda m: (m.how == "field", m.how == "focus", m.start))
    return good[0].record


def _which(kind: str, pool: list[Record], *, who: bool = False) -> str:
    if not pool:
        return f"Which {kind}? There is none yet."
    names = [str(r.data.get("name")) if r.kind == "character" else display(r) for r in pool[:6]]
    listed = ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else names[0]
    return f"Who do you mean: {listed}?" if who else f"Which {kind} do you mean: {listed}?"


def _merged(first: ToolCall, second: ToolCall) -> ToolCall:
    data = first.args.model_dump(by_alias=True)
    extra = second.args.model_dump(by_alias=True)
    for key in ("instruction", "note"):
        if key in data and extra.get(key):
            data[key] = f"{data[key]} and {extra[key]}"[:500]
    return call(first.name, data)


# ----------------------------------------------------------------------------- the tool-calling router


def _system_prompt(cat: Catalog, focus: Record | None) -> str:
    names = lambda recs: ", ".join(f"{r.data.get('name')} ({r.id})" for r in recs) or "none"
    scenes = "; ".join(f"scene {s.data.get('number')} “{s.data.get('title')}” ({s.id}, "
                       f"{len(cat.shots.get(s.id, []))} shots)" for s in cat.scenes) or "none"
    return ("You are the director's assistant on an anime mini drama. Act on the director's message by "
            "calling the tools; call several in order when the message asks for several things; never "
            "invent record ids. Nothing changes until the director accepts a proposal.\n"
            f"Characters: {names(cat.characters)}. Locations: {names(cat.locations)}. Props: {names(cat.props)}.\n"
            f"Scenes: {scenes}. Shots are '<scene id>-s<n>'; lines '<scene id>-l<n>'.\n"
            f"On the review card now: {display(focus) if focus is not None else 'nothing'}.")


class ToolCallingRouter:
    """A capable model picks the tools (native tool calls, else a JSON action reply)."""

    def __init__(self, llm: Any, *, fallback: OfflineRouter | None = None) -> None:
        self.llm = llm
        self.fallback = fallback or offline_router()

    @property
    def name(self) -> str:
        form = getattr(self.llm, "tool_form", None)
        return "model tool calling" + (" (JSON actions: the endpoint has no tool calls)" if form == "json_action"
                                       else "")

    def route(self, text: str, ctx: DirectorContext, state: DirectorState) -> Route:
        cat = Catalog.of(ctx.canon)
        focus = card_record(cat, state.get("pending"))
        messages: list[dict[str, Any]] = [{"role": "system", "content": _system_prompt(cat, focus)},
                                          {"role": "user", "content": text}]
        schemas = [tool.schema() for tool in TOOLS.values()]
        problems: list[str] = []
        for _ in range(MAX_TOOL_ROUNDS):
            try:
                reply = self.llm.chat_with_tools(messages, schemas)
            except StoryreelError as exc:
                return Route(failure=f"The model could not choose an action: {exc}", router=self.name)
            raw_calls = reply.get("tool_calls") or []
            if not raw_calls:
                route = self.fallback.route(text, ctx, state)
                route.router, route.note = self.name, "the model answered in prose; the offline router read it"
                return route
            calls, problems, answers = [], [], []
            for raw in raw_calls:
                try:
                    args = raw.get("arguments")
                    parsed = json.loads(args) if isinstance(args, str) and args.strip() else (args or {})
                    if not isinstance(parsed, dict):
                        raise ToolError(f"arguments for {raw.get('name')!r} must be a JSON object, not {args!r}")
                    made = call(str(raw.get("name")), parsed)
                    calls.append(ToolCall(made.name, made.tool.resolve_refs(made.args, cat)))
                    answers.append("ok")
                except json.JSONDecodeError as exc:
                    problems.append(f"{raw.get('name')}: arguments are not JSON ({exc.msg})")
                    answers.append(problems[-1])
                except ToolError as exc:
                    problems.append(str(exc))
                    answers.append(str(exc))
            if not problems:
                return Route(calls=calls, router=self.name)
            messages.append({"role": "assistant", "content": reply.get("content") or "",
                             "tool_calls": [{"id": c.get("id") or f"call_{i}", "type": "function",
                                             "function": {"name": str(c.get("name")),
                                                          "arguments": c.get("arguments")
                                                          if isinstance(c.get("arguments"), str)
                                                          else json.dumps(c.get("arguments") or {})}}
                                            for i, c in enumerate(raw_calls)]})
            for i, (c, answer) in enumerate(zip(raw_calls, answers)):
                messages.append({"role": "tool", "tool_call_id": c.get("id") or f"call_{i}",
                                 "content": answer if answer == "ok" else f"error: {answer}; call again, fixed"})
        return Route(failure="I could not act on that: " + "; ".join(problems)
                     + ". Say it another way, or name the record (for example “scene 2”, “shot 4”, “Aiko”).",
                     router=self.name)


# ----------------------------------------------------------------------------- choosing


_OFFLINE: OfflineRouter | None = None


def offline_router() -> OfflineRouter:
    """The process-wide offline router (its exemplar embeddings are computed once)."""
    global _OFFLINE
    if _OFFLINE is None:
        _OFFLINE = OfflineRouter()
    return _OFFLINE


def uses_tool_calls(llm: Any) -> bool:
    """A configured model that can be asked for tool calls (the embedded demo model cannot choose well)."""
    return callable(getattr(llm, "chat_with_tools", None)) and not getattr(llm, "is_demo", False)


def router_for(llm: Any) -> OfflineRouter | ToolCallingRouter:
    return ToolCallingRouter(llm) if uses_tool_calls(llm) else offline_router()


def router_name(llm: Any) -> str:
    """Which router reads the director's messages with this model (shown next to the model badge)."""
    return router_for(llm).name if uses_tool_calls(llm) else OFFLINE_NAME
