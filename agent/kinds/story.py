"""The writers' room kinds: series (with its style guide), character, location, prop, outline,
beats and scene. Each is a JSON proposal from the model (`base.generate`), edited field by field;
what differs per kind is below: its planner, retrieval, canon rules, shape fixes and commit.

Beats and scenes are planned for every started episode (agent.episodes). The beats of episode N>1
open on episode N-1's cliffhanger (`previously`: its last beat, else its accepted story so far):
the prompt carries it with the continuity facts in force, the `check` hook sends back a hook that
shares no word with it, and the fallback draft's hook names it. An outline revision keeps which
episodes are started.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from agent import fallbacks, prompts
from agent.context import DirectorContext
from agent.episodes import planning_episodes
from agent.kinds.base import Draft, Kind, names, search_bible
from agent.revisions import canonical
from agent.schemas import PROPOSAL_MODELS, PROPOSAL_TITLES, beats_problems, proposal_model, scene_problems
from agent.state import Pending, Task
from memory.bible import record_text
from memory.canon import Canon, Record


def default_draft(make: Callable[[fallbacks.Context], dict[str, Any]]) -> Callable[[Draft], dict[str, Any]]:
    """A `fallback` hook: `make` (a default draft of agent.fallbacks) with the draft's premise,
    canon's names and the targets."""
    def fallback(d: Draft) -> dict[str, Any]:
        return make(fallbacks.Context(
            premise=" ".join(d.premise.split()), cast=tuple(d.cast), places=tuple(d.places),
            taken=tuple(names(d.ctx.canon, d.kind.name) if d.kind.named else ()), task=dict(d.task),
            scene=dict(d.scene or {}), episodes=d.ctx.targets.episodes, shots=d.ctx.targets.shots))
    return fallback


def _builtin(name: str, **hooks: Any) -> Kind:
    """A writers' room kind: its schema, title and prompt from agent.schemas / agent.prompts."""
    return Kind(name=name, title=PROPOSAL_TITLES[name], schema=PROPOSAL_MODELS[name],
                instruction=prompts.TASKS[name], **hooks)


# ----------------------------------------------------------------------------- planners


def _plan_first(kind: str) -> Callable[[Canon, DirectorContext], Task | None]:
    def plan(canon: Canon, ctx: DirectorContext) -> Task | None:
        return None if canon.list(kind) else {"kind": kind, "target_id": None}
    return plan


def _plan_count(kind: str, target: str) -> Callable[[Canon, DirectorContext], Task | None]:
    def plan(canon: Canon, ctx: DirectorContext) -> Task | None:
        want = getattr(ctx.targets, target)
        return {"kind": kind, "target_id": None} if len(canon.list(kind)) < want else None
    return plan


def _plan_beats(canon: Canon, ctx: DirectorContext) -> Task | None:
    """The beats of each started episode (agent.episodes), once the outline is accepted."""
    for ep in planning_episodes(canon):
        if not canon.live(f"beats-ep{ep}") and (ep == 1 or canon.live("outline")):
            return {"kind": "beats", "target_id": None, "episode": ep}
    return None


def _plan_scene(canon: Canon, ctx: DirectorContext) -> Task | None:
    """Each started episode's scenes, after its beats."""
    for ep in planning_episodes(canon):
        scenes = canon.children("scene", "episode", ep)
        if len(scenes) < ctx.targets.scenes and (ep == 1 or canon.live(f"beats-ep{ep}")):
            return {"kind": "scene", "target_id": None, "episode": ep, "number": len(scenes) + 1}
    return None


# ----------------------------------------------------------------------------- series


def _series_current(d: Draft) -> dict[str, Any] | None:
    """The series and the style guide are one card: a revision starts from both records."""
    if not d.task.get("target_id"):
        return None
    series, style = d.ctx.canon.live("series"), d.ctx.canon.live("style")
    return {**(series.data if series else {}), **(style.data if style else {})}


def _write_series(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    data = dict(pending["data"] or {})
    series = {k: data[k] for k in ("title", "logline")}
    style = {k: data[k] for k in ("art_style", "palette", "tone", "target_episode_seconds")}
    return [ctx.canon.upsert("series", series, actor=actor, record_id="series", note=note),
            ctx.canon.upsert("style", style, actor=actor, record_id="style", note=note)]


# ----------------------------------------------------------------------------- prop, outline, beats


def _prop_prepare(d: Draft) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def prepare(obj: dict[str, Any]) -> dict[str, Any]:
        if obj.get("owner"):
            obj["owner"] = canonical(obj["owner"], d.cast)
        return obj
    return prepare


def _outline_prepare(d: Draft) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def prepare(obj: dict[str, Any]) -> dict[str, Any]:
        for i, ep in enumerate(obj.get("episodes") or [], 1):
            if isinstance(ep, dict):
                ep["number"] = i
        return obj
    return prepare


def _outline_fix(data: dict[str, Any], d: Draft) -> list[str]:
    fixed = []
    for i, ep in enumerate(data["episodes"], 1):
        if ep["number"] != i:
            fixed.append(f"episode {ep['number']} renumbered {i}")
            ep["number"] = i
    return fixed


def _write_outline(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    data = dict(pending["data"] or {})
    records = [ctx.canon.upsert("outline", data, actor=actor, record_id=pending.get("target_id") or "outline",
                                note=note)]
    for ep in data["episodes"]:
        rid = f"episode-{ep['number']}"
        old = ctx.canon.live(rid)
        started = {"started": True} if old is not None and old.data.get("started") else {}  # agent.episodes
        records.append(ctx.canon.upsert("episode", {**dict(ep), **started}, actor=actor, record_id=rid, note=note))
    return records


def _beats_fix(data: dict[str, Any], d: Draft) -> list[str]:
    if not beats_problems(data):
        return []
    beats = data["beats"]
    beats[0]["kind"], beats[-1]["kind"] = "hook", "cliffhanger"
    if not any(b["kind"] == "twist" for b in beats):
        beats[len(beats) // 2 if len(beats) > 2 else -1]["kind"] = "twist"
    return ["beat kinds reordered into hook … twist … cliffhanger"]


def previously(canon: Canon, episode: int) -> tuple[str, str]:
    """(cliffhanger, summary) of the episode before `episode`: its beats' last beat and its accepted
    "story so far" (either may be empty). Episode `episode` opens on the cliffhanger."""
    if episode < 2:
        return "", ""
    beats = canon.live(f"beats-ep{episode - 1}")
    items = (beats.data.get("beats") or []) if beats is not None else []
    cliff = next((str(b.get("summary", "")) for b in reversed(items) if b.get("kind") == "cliffhanger"), "")
    summary_rec = canon.live(f"summary-ep{episode - 1}")
    summary = str(summary_rec.data.get("summary", "")) if summary_rec is not None else ""
    if not cliff and summary:   # the offline draft ends with "It ends: <the last sentence>"
        cliff = summary.rsplit("It ends:", 1)[-1].strip() if "It ends:" in summary else summary.split(". ")[-1]
    return cliff, summary


_STOP_WORDS = frozenset({
    "the", "a", "an", "and", "or", "but", "of", "to", "in", "on", "at", "by", "for", "with", "from", "is", "are",
    "was", "were", "be", "it", "its", "his", "her", "their", "them", "they", "he", "she", "this", "that", "who",
    "what", "when", "then", "than", "into", "onto", "out", "up", "down", "off"})


def content_words(text: str) -> set[str]:
    import re

    words = {w.removesuffix("'s") for w in re.findall(r"[a-z][a-z']+", text.casefold())}
    return {w[:-1] if len(w) > 4 and w.endswith("s") and not w.endswith("ss") else w
            for w in words if w not in _STOP_WORDS and len(w) > 2}


def opens_on(hook: str, cliffhanger: str) -> bool:
    """Whether a hook refers to the cliffhanger: they share a content word (a name, a noun, a verb)."""
    return not cliffhanger or bool(content_words(hook) & content_words(cliffhanger))


def _beats_retrieve(d: Draft) -> tuple[list[str], list[str]]:
    """The bible's hits; for episode 2 on, first the episode before's cliffhanger and story so far
    and the continuity facts in force (with their episodes)."""
    from memory.continuity import facts_context

    ids, texts = search_bible("series", "outline", "character", "location", "summary")(d)
    episode = int(d.task.get("episode", 1))
    if episode < 2:
        return ids, texts
    cliff, _ = previously(d.ctx.canon, episode)
    lead = []
    if cliff:
        lead.append(f"Previously, episode {episode - 1} ended on this cliffhanger (episode {episode}'s hook must "
                    f"open on it): {cliff}")
    lead += facts_context(d.ctx.canon, episode)
    outline_ep = d.ctx.canon.live(f"episode-{episode}")
    if outline_ep is not None:
        lead.append(f"Episode {episode} in the outline: {outline_ep.data.get('title', '')} — "
                    f"{outline_ep.data.get('logline', '')}")
    for rid in (f"beats-ep{episode - 1}", f"summary-ep{episode - 1}"):
        if d.ctx.canon.live(rid) is not None and rid not in ids:
            ids.insert(0, rid)
    return ids, [*lead, *texts]


def _beats_check(data: dict[str, Any], d: Draft) -> list[str]:
    problems = beats_problems(data)
    episode = int(data.get("episode") or d.task.get("episode", 1))
    cliff, _ = previously(d.ctx.canon, episode) if d.ctx is not None else ("", "")
    beats = data.get("beats") or []
    if cliff and beats and not opens_on(str(beats[0].get("summary", "")), cliff):
        problems.append(f"the hook must open on episode {episode - 1}'s cliffhanger (“{cliff}”): name what "
                        "happened there in the hook")
    return problems


def _beats_fix_all(data: dict[str, Any], d: Draft) -> list[str]:
    """The mini-drama shape, and for episode 2 on a hook that opens on the cliffhanger before."""
    fixed = _beats_fix(data, d)
    episode = int(data.get("episode") or 1)
    cliff, _ = previously(d.ctx.canon, episode) if d.ctx is not None else ("", "")
    beats = data.get("beats") or []
    if cliff and beats and not opens_on(str(beats[0].get("summary", "")), cliff):
        beats[0]["summary"] = _opening(episode, cliff, str(beats[0].get("summary", "")))
        fixed.append(f"the hook opens on episode {episode - 1}'s cliffhanger")
    return fixed


def _opening(episode: int, cliff: str, hook: str = "") -> str:
    text = f"Right after episode {episode - 1}'s cliffhanger — {cliff.rstrip('.')}"
    return (f"{text}: {hook}" if hook else f"{text}.")[:200]


def _beats_fallback(d: Draft) -> dict[str, Any]:
    draft = default_draft(fallbacks.beats)(d)
    episode = int(d.task.get("episode", 1))
    cliff, _ = previously(d.ctx.canon, episode)
    if cliff and draft.get("beats"):
        draft["beats"][0]["summary"] = _opening(episode, cliff)
    return draft


def _character_schema(d: Draft) -> type[Any]:
    """A new character is generated without look variants (a revision or an edit may add them)."""
    from agent.schemas import CharacterProposal, NewCharacterProposal

    return CharacterProposal if d.task.get("target_id") else NewCharacterProposal


def _beats_summary(data: dict[str, Any]) -> str:
    return f"beats of episode {data.get('episode')}: " + "; ".join(
        b.get("summary", "")[:40] for b in data.get("beats", []))[:160]


# ----------------------------------------------------------------------------- scene


def _scene_retrieve(d: Draft) -> tuple[list[str], list[str]]:
    """The bible's hits plus the whole cast, every place and the episode's beats, so the scene can
    stay consistent."""
    ids, texts = search_bible("beats", "character", "location", "prop", "scene", "series")(d)
    canon = d.ctx.canon
    extra = [*canon.list("character"), *canon.list("location")]
    beats = canon.live(f"beats-ep{d.task.get('episode', 1)}")
    for rec in [*extra, *([beats] if beats else [])]:
        if rec.id not in ids:
            ids.append(rec.id)
            texts.append(record_text(rec)[:400])
    episode = int(d.task.get("episode", 1))
    if episode > 1:   # what holds from earlier episodes (the dead stay dead), with their episodes
        from memory.continuity import facts_context

        texts = [*facts_context(canon, episode), *texts]
    return ids, texts


def _scene_prepare(d: Draft) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Canon's spelling of speakers, characters and places, before validation."""
    speakers = [*d.cast, "Narrator"]

    def prepare(obj: dict[str, Any]) -> dict[str, Any]:
        if "location" in obj:
            obj["location"] = canonical(obj["location"], d.places)
        if isinstance(obj.get("characters"), list):
            obj["characters"] = [canonical(c, d.cast) for c in obj["characters"]]
        for line in obj.get("lines") or []:
            if isinstance(line, dict) and "speaker" in line:
                line["speaker"] = canonical(line["speaker"], speakers)
        return obj
    return prepare


def closest(name: str, options: list[str]) -> str:
    match = difflib.get_close_matches(name, options, n=1, cutoff=0.0)
    return match[0] if match else options[0]


def scene_fix(data: dict[str, Any], d: Draft) -> list[str]:
    """Make a scene consistent with canon when the model would not; returns what was changed."""
    cast, places = d.cast, d.places
    fixed: list[str] = []
    if not (cast and places):
        return fixed
    if data["location"] not in places:
        fixed.append(f"location {data['location']!r} -> {closest(data['location'], places)!r}")
        data["location"] = closest(data["location"], places)
    speakers = [*cast, "Narrator"]
    for line in data["lines"]:
        if line["speaker"] not in speakers:
            new = closest(line["speaker"], cast)
            fixed.append(f"speaker {line['speaker']!r} -> {new!r}")
            line["speaker"] = new
    data["characters"] = [c if c in cast else closest(c, cast) for c in data["characters"]]
    for line in data["lines"]:
        if line["speaker"] != "Narrator" and line["speaker"] not in data["characters"]:
            data["characters"].append(line["speaker"])
    return fixed


def _write_scene(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    """Stable line ids: takes, translations and captions refer to them."""
    from agent.structure import free_scene_id

    data = dict(pending["data"] or {})
    record_id = pending.get("target_id") or free_scene_id(ctx.canon, int(data["episode"]), int(data["number"]),
                                                          reuse_deleted=True)   # never a live scene's id
    data["lines"] = [{**line, "id": f"{record_id}-l{i}"} for i, line in enumerate(data["lines"], 1)]
    return [ctx.canon.upsert("scene", data, actor=actor, record_id=record_id, note=note)]


KINDS = (
    _builtin("series", plan=_plan_first("series"), retrieve=search_bible("series", "style"),
             fallback=default_draft(fallbacks.series), current=_series_current, commit=_write_series),
    _builtin("character", named=True, plan=_plan_count("character", "characters"),
             retrieve=search_bible("series", "style", "character"), fallback=default_draft(fallbacks.character),
             narrow=_character_schema),
    _builtin("location", named=True, plan=_plan_count("location", "locations"),
             retrieve=search_bible("series", "style", "location"), fallback=default_draft(fallbacks.location)),
    _builtin("prop", named=True, plan=_plan_count("prop", "props"),
             retrieve=search_bible("series", "character", "prop", "location"),
             fallback=default_draft(fallbacks.prop), prepare=_prop_prepare),
    _builtin("outline", plan=_plan_first("outline"), retrieve=search_bible("series", "character", "location"),
             fallback=default_draft(fallbacks.outline),
             narrow=lambda d: proposal_model("outline", episodes=d.ctx.targets.episodes,
                                             min_episodes=d.ctx.targets.min_episodes),
             prepare=_outline_prepare, shape_fix=_outline_fix, record_id=lambda data: "outline",
             commit=_write_outline,
             summarise=lambda data: f"outline of {len(data.get('episodes', []))} episodes"),
    _builtin("beats", plan=_plan_beats, retrieve=_beats_retrieve, fallback=_beats_fallback,
             opens="subject",   # "start episode 2" puts its beats on the card: subject episode-2
             known=lambda task: {"episode": int(task.get("episode", 1))},
             check=_beats_check, shape_fix=_beats_fix_all,
             record_id=lambda data: f"beats-ep{data['episode']}", summarise=_beats_summary),
    _builtin("scene", plan=_plan_scene, retrieve=_scene_retrieve, fallback=default_draft(fallbacks.scene),
             known=lambda task: {"episode": int(task.get("episode", 1)), "number": int(task.get("number", 1))},
             narrow=lambda d: proposal_model("scene", cast=d.cast, places=d.places),
             prepare=_scene_prepare, check=lambda data, d: scene_problems(data, d.cast, d.places),
             shape_fix=scene_fix, commit=_write_scene),
)
