"""The story so far, and continuity on the cards.

`facts`: an episode's summary and its continuity facts (memory.continuity), proposed as soon as all
of the episode's scenes are accepted, before its storyboard, when an episode follows it in the
outline (so a one-episode outline is as before): the next episode's beats open on it, and every
later proposal is checked against it.
Drafted offline by `continuity.draft_facts`, or by the model when a capable one is configured (its
reply validated by `FactsProposal`; junk falls back to the offline draft). Accept, edit or reject
it like any proposal; it commits through `continuity.write_facts` inside `Canon.commit_proposal`
(one transaction: a summary record and one record per fact).

Continuity on the cards (`CONTINUITY`, a `CardCheck`): every scene, shot-plan and panel proposal of
episode 2 on carries the warnings of `continuity.check_proposal` / `check_panel`, each naming the
fact and the episode it comes from, and, with a capable model configured, the model's own check of
scene and shot-plan cards (`model_warnings`: "model: …", kept only when it names a fact in force); accepting anyway is logged in the ledger (`accept-warnings`,
the note lists them). An undo of a fact re-runs the checks on the card (agent.tools.actions).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Literal

from langgraph.types import Command
from pydantic import BaseModel, ConfigDict, Field

from agent.context import DirectorContext
from agent.episodes import outline_count, planning_episodes, started_episodes
from agent.kinds.base import (
    CardCheck,
    Kind,
    add_card_check,
    capable_model,
    model_or_offline,
    names,
    propose_text,
    refresh_checks,
)
from agent.kinds.cards import esc
from agent.state import DirectorState, Pending, Task
from memory import continuity
from memory.canon import Canon, Record
from memory.errors import StoryreelError

#: The proposal kinds whose cards carry continuity warnings.
CHECKED_KINDS = ("scene", "shots", "panel")
CONTINUITY_PREFIX = "continuity: "
#: How the model's own continuity warnings start (after CONTINUITY_PREFIX), apart from the checks'.
MODEL_PREFIX = "model: "

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- planning


def episode_scenes(canon: Canon, episode: int) -> list[Record]:
    return sorted(canon.children("scene", "episode", episode), key=lambda r: r.data.get("number", 0))


def _plan(canon: Canon, ctx: DirectorContext) -> Task | None:
    """Episode N's story so far as soon as its scenes are accepted (right after the scene planner,
    before its storyboard), when an episode follows it: the outline has more episodes than N, or a
    later one is started. A one-episode outline never gets one."""
    focus = planning_episodes(canon)
    count = outline_count(canon)
    later: list[int] | None = None   # the started episodes, read only when the outline does not decide
    for ep in focus:
        if canon.live(continuity.summary_record_id(ep)) is not None:
            continue
        if ep >= count:
            later = started_episodes(canon) if later is None else later
            if not any(n > ep for n in later):
                continue
        if len(canon.children("scene", "episode", ep)) >= ctx.targets.scenes:
            return {"kind": "facts", "target_id": None, "episode": ep}
    return None


# ----------------------------------------------------------------------------- drafting


def offline_draft(canon: Canon, episode: int) -> dict[str, Any]:
    """`continuity.draft_facts` over the accepted scenes, with the bible's cast and props."""
    scenes = [r.data for r in episode_scenes(canon, episode)]
    return continuity.draft_facts(episode, scenes, cast=names(canon, "character"), props=names(canon, "prop"))


FACTS_INSTRUCTION = (
    "Summarise episode {episode} for the next episode's writers (what happened, how it ends), and list "
    "its continuity facts: subject (a character or prop name, or 'world'), type (alive, present, dead, "
    "absent, knows, relationship, injury, outfit, prop_location, time_of_day, weather, promise), value, "
    "scene. Only what the scenes say."
)


def _model_draft(ctx: DirectorContext, episode: int, draft: dict[str, Any], seed: int) -> dict[str, Any]:
    """The model's facts card, validated (`FactsProposal`); StoryreelError when its reply is junk."""
    import json

    from agent.llm import generate_structured

    scenes = [{k: r.data.get(k) for k in ("number", "title", "location", "characters", "action", "lines")}
              for r in episode_scenes(ctx.canon, episode)]
    messages = [{"role": "system", "content": "You keep the continuity record of a serialized anime mini "
                 "drama. Answer with JSON only."},
                {"role": "user", "content": FACTS_INSTRUCTION.format(episode=episode) + "\n\nScenes:\n"
                 + json.dumps(scenes, ensure_ascii=False)[:6000] + "\n\nAn offline draft to improve on:\n"
                 + json.dumps(draft, ensure_ascii=False)[:2000]}]
    reply = generate_structured(ctx.llm, messages, continuity.FactsProposal, retries=ctx.repair_retries,
                                seed=seed, known={"episode": episode}, max_tokens=1200)
    return continuity.parse_facts(reply.model_dump()).model_dump(
        exclude={"facts": {"__all__": {"id", "keywords"}}})


def _draft(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending) -> None:
    episode = int(task.get("episode") or 1)
    draft = offline_draft(ctx.canon, episode)
    pending["retrieved"] = [r.id for r in episode_scenes(ctx.canon, episode)]
    pending["warnings"] = []
    pending["data"] = model_or_offline(
        ctx, pending, draft, lambda: _model_draft(ctx, episode, draft, int(pending.get("seed") or 0)),
        what="facts", fallback="this is the offline draft from the scenes' words",
        offline_note="drafted offline from the scenes' words: check every fact, edit or add what it missed")


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    return propose_text(kind, state, ctx, task, pending, draft=_draft)


def _write(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    return continuity.write_facts(ctx.canon, dict(pending["data"] or {}), actor=actor, note=note)


def facts_card(data: dict[str, Any]) -> str:
    """The summary, then the facts as a table."""
    rows = ["| subject | fact | value | from | until |", "|---|---|---|---|---|"]
    for f in data.get("facts") or []:
        where = f"ep {f.get('episode')}" + (f", scene {f['scene']}" if f.get("scene") else "")
        until = f"ep {f['until_episode']}" if f.get("until_episode") else "—"
        rows.append(f"| {esc(f.get('subject', ''))} | {esc(str(f.get('type', '')).replace('_', ' '))} | "
                    f"{esc(f.get('value', '')).replace('|', '/')} | {where} | {until} |")
    table = "\n".join(rows) if data.get("facts") else "*No facts found: add them with Edit.*"
    return (f"**Episode {esc(data.get('episode'))} so far:** {esc(data.get('summary', ''))}\n\n"
            f"**Continuity facts** (checked against every later episode):\n\n{table}")


def _summary(data: dict[str, Any]) -> str:
    return f"episode {data.get('episode')} so far, {len(data.get('facts') or [])} continuity facts"


# ----------------------------------------------------------------------------- continuity on the cards


class ContinuityProblem(BaseModel):
    """One contradiction the model found: the fact (by its id) and what contradicts it."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    fact_id: str = Field(min_length=1, max_length=200)
    problem: str = Field(min_length=1, max_length=300)


class ContinuityReview(BaseModel):
    """The model's continuity check of a scene or shot plan against the facts in force."""

    model_config = ConfigDict(extra="ignore")

    problems: list[ContinuityProblem] = Field(default_factory=list, max_length=20)


CONTINUITY_INSTRUCTION = (
    "Check this {what} of episode {episode} against the continuity facts in force. List only real "
    "contradictions (a dead or away character acting, a prop used where it is not, knowledge someone "
    "does not have yet, an outfit or injury ignored, a broken promise), each with the id in brackets of "
    "the fact it contradicts and one short sentence saying what contradicts it. A flashback or dream may "
    "show the past. No contradiction: an empty list."
)


def _checked_scene(canon: Canon, kind: str, data: dict[str, Any]) -> dict[str, Any] | None:
    """The scene a scene or shot-plan card is about (its own data, or the plan's scene)."""
    if kind == "scene":
        return data
    rec = canon.live(str(data.get("scene_id"))) if kind == "shots" and data.get("scene_id") else None
    return rec.data if rec is not None else None


def model_warnings(canon: Canon, ctx: DirectorContext | None, kind: str, data: dict[str, Any]) -> list[str]:
    """The configured model's continuity check of a scene or shot-plan card of episode 2 on
    (`ask_model`)."""
    if ctx is None or not capable_model(ctx.llm) or kind not in ("scene", "shots"):
        return []
    scene = _checked_scene(canon, kind, data)
    episode = (scene or {}).get("episode")
    if scene is None or isinstance(episode, bool) or not isinstance(episode, int) or episode < 2:
        return []
    number = scene.get("number") if isinstance(scene.get("number"), int) else None
    shown = {k: scene.get(k) for k in ("number", "title", "location", "characters", "action", "lines")}
    if kind == "shots":
        shown["shots"] = [{k: s.get(k) for k in ("characters", "location", "lines")}
                          for s in data.get("shots") or [] if isinstance(s, dict)]
    what = "scene" if kind == "scene" else "shot plan (with its scene)"
    return ask_model(canon, ctx, what, episode, number, shown)


def panel_shown(request: Any) -> dict[str, Any]:
    """What the model is shown of a panel: the painter's request in words (who, how they look and
    what they do, where, the line), no image."""
    return {"location": request.location_name, "location_look": list(request.location_tags),
            "characters": [{"name": c.name, "look": list(c.look_tags), "expression": c.expression,
                            "pose": c.pose} for c in request.characters],
            "framing": request.framing, "mood": request.mood, "line": request.line_text}


def ask_model(canon: Canon, ctx: DirectorContext, what: str, episode: int, number: int | None,
              shown: dict[str, Any]) -> list[str]:
    """The configured model's continuity check of one card of episode 2 on: the contradictions it
    names with the id of a fact in force, as "model: … (fact '…' from episode N)". Only with a
    capable model (never the embedded demo one, checked by the callers) and facts in force; a reply
    naming no such fact is dropped, and any model error means no model warnings (logged), never a
    broken card."""
    facts = {f.id: f for f in continuity.in_force(continuity.all_facts(canon), episode, number) if f.id}
    if not facts:
        return []   # nothing to contradict: no model call
    from agent.llm import generate_structured

    listed = "\n".join(f"[{fid}] {f.statement()} (from {f.source()})" for fid, f in facts.items())
    messages = [{"role": "system", "content": "You keep the continuity of a serialized anime mini drama. "
                 "Answer with JSON only."},
                {"role": "user", "content": CONTINUITY_INSTRUCTION.format(what=what, episode=episode)
                 + "\n\nFacts in force:\n" + listed[:4000] + f"\n\nThe {what}:\n"
                 + json.dumps(shown, ensure_ascii=False)[:6000]}]
    try:
        review = generate_structured(ctx.llm, messages, ContinuityReview, retries=min(1, ctx.repair_retries),
                                     temperature=0.2, max_tokens=600)
    except Exception as exc:  # noqa: BLE001 - the model's check is an extra: the card keeps the checks' warnings
        log.warning("the model's continuity check of a %s of episode %s failed (%s: %s); showing only "
                    "the deterministic warnings", what, episode, type(exc).__name__, str(exc)[:200])
        return []
    found: list[str] = []
    for item in review.problems:
        fact = facts.get(item.fact_id.strip().strip("[]"))
        if fact is None:
            continue   # junk: a fact that is not in force, or none at all
        text = f"{MODEL_PREFIX}{item.problem.rstrip('.')} ({fact.cite()})"
        if text not in found:
            found.append(text)
    return found


def card_warnings(canon: Canon, ctx: DirectorContext | None, kind: str, pending: Pending) -> list[str]:
    """The continuity warnings of the card `pending` (scene, shot plan or panel of episode 2 on):
    the deterministic checks', then the configured model's (`model_warnings`, `ask_model`)."""
    data = pending.get("data") or {}
    if kind in ("scene", "shots"):
        return [*continuity.check_proposal(canon, kind, data), *model_warnings(canon, ctx, kind, data)]
    if kind != "panel" or ctx is None or not data.get("subject"):
        return []
    from agent import storyboard
    from agent.episodes import shot_episode

    shot_id = str(data["subject"])
    episode = shot_episode(canon, shot_id)
    if episode is None or episode < 2:
        return []
    shot = canon.live(shot_id)
    scene = canon.live(str(shot.data.get("scene_id"))) if shot is not None else None
    number = scene.data.get("number") if scene is not None else None
    try:
        request = storyboard.panel_request(ctx, "panel", shot_id, notes=[], seed=0)
    except StoryreelError:
        return []
    scene_number = number if isinstance(number, int) else None
    found = [str(w) for w in continuity.check_panel(continuity.all_facts(canon), episode, request,
                                                    scene=scene_number)]
    if capable_model(ctx.llm):
        found += ask_model(canon, ctx, "panel (the picture's description)", episode, scene_number,
                           panel_shown(request))
    return found


def refresh_warnings(canon: Canon, ctx: DirectorContext | None, pending: Pending) -> Pending:
    """`pending` with its continuity warnings checked again against canon as it is now."""
    return refresh_checks(canon, ctx, pending, only="continuity", strict=True)


def _find_continuity(canon: Canon, ctx: DirectorContext | None, pending: Pending) -> list[str]:
    return card_warnings(canon, ctx, str(pending.get("kind") or ""), pending)


#: Continuity warnings on scene, shot-plan and panel cards (agent.kinds.base.CardCheck: agent.nodes
#: runs it after drafting and logs accepting anyway as `accept-warnings`).
CONTINUITY = CardCheck(name="continuity", prefix=CONTINUITY_PREFIX, what="continuity warning",
                       applies=lambda kind: kind in CHECKED_KINDS, find=_find_continuity)
add_card_check(CONTINUITY)


KINDS = (
    Kind(name="facts", title="Story so far", schema=continuity.FactsProposal, plan=_plan, propose=_propose,
         commit=_write, card=facts_card, summarise=_summary, record_kind="fact", opens="subject",
         record_id=lambda data: continuity.summary_record_id(int(data.get("episode") or 1)),
         failure_help="Press **Redo** to draft it again, or **Edit** to write the facts yourself."),
)

__all__: list[str] = ["CHECKED_KINDS", "CONTINUITY", "KINDS", "ContinuityReview", "card_warnings", "facts_card",
                      "model_warnings", "offline_draft", "refresh_warnings"]
