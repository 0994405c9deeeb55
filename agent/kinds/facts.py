"""The story so far, and continuity on the cards.

`facts`: an episode's summary and its continuity facts (memory.continuity), proposed once all of
the episode's scenes are accepted and a later episode is started (so a one-episode project is as
before): the next episode's beats open on it, and every later proposal is checked against it.
Drafted offline by `continuity.draft_facts`, or by the model when a capable one is configured (its
reply validated by `FactsProposal`; junk falls back to the offline draft). Accept, edit or reject
it like any proposal; it commits through `continuity.write_facts` inside `Canon.commit_proposal`
(one transaction: a summary record and one record per fact).

Continuity on the cards (`continuity_checked`): every scene, shot-plan and panel proposal of
episode 2 on carries the warnings of `continuity.check_proposal` / `check_panel`, each naming the
fact and the episode it comes from; accepting anyway is logged in the ledger (`accept-warnings`,
the note lists them). An undo of a fact re-runs the checks on the card (agent.tools.actions).
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from agent.context import DirectorContext
from agent.episodes import planning_episodes, started_episodes
from agent.kinds.base import Kind, Proposer, Reviewer, names, propose_text
from agent.kinds.cards import esc
from agent.state import DirectorState, Pending, Task
from memory import continuity
from memory.canon import Canon, Record
from memory.errors import StoryreelError

#: The proposal kinds whose cards carry continuity warnings.
CHECKED_KINDS = ("scene", "shots", "panel")
CONTINUITY_PREFIX = "continuity: "


# ----------------------------------------------------------------------------- planning


def episode_scenes(canon: Canon, episode: int) -> list[Record]:
    return sorted(canon.children("scene", "episode", episode), key=lambda r: r.data.get("number", 0))


def _plan(canon: Canon, ctx: DirectorContext) -> Task | None:
    """Episode N's story so far once its scenes are accepted and a later episode is started."""
    started = started_episodes(canon)
    for ep in planning_episodes(canon):
        if not any(later > ep for later in started) or canon.live(continuity.summary_record_id(ep)):
            continue
        if len(episode_scenes(canon, ep)) >= ctx.targets.scenes:
            return {"kind": "facts", "target_id": None, "episode": ep}
    return None


# ----------------------------------------------------------------------------- drafting


def offline_draft(canon: Canon, episode: int) -> dict[str, Any]:
    """`continuity.draft_facts` over the accepted scenes, with the bible's cast and props."""
    scenes = [r.data for r in episode_scenes(canon, episode)]
    return continuity.draft_facts(episode, scenes, cast=names(canon, "character"), props=names(canon, "prop"))


def _capable(llm: Any) -> bool:
    return llm is not None and not getattr(llm, "is_demo", True)


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
    if _capable(ctx.llm):
        try:
            draft = _model_draft(ctx, episode, draft, int(pending.get("seed") or 0))
        except Exception as exc:  # noqa: BLE001 - junk or a broken reply: the offline draft, and the card says why
            pending["warnings"].append(f"the model's facts could not be used ({type(exc).__name__}: "
                                       f"{str(exc)[:160]}); this is the offline draft from the scenes' words")
    else:
        pending["warnings"].append("drafted offline from the scenes' words: check every fact, edit or add what "
                                   "it missed")
    pending["data"] = draft


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


def card_warnings(canon: Canon, ctx: DirectorContext | None, kind: str, pending: Pending) -> list[str]:
    """The continuity warnings of the card `pending` (scene, shot plan or panel of episode 2 on)."""
    data = pending.get("data") or {}
    if kind in ("scene", "shots"):
        return continuity.check_proposal(canon, kind, data)
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
    found = continuity.check_panel(continuity.all_facts(canon), episode, request,
                                   scene=number if isinstance(number, int) else None)
    return [str(w) for w in found]


def refresh_warnings(canon: Canon, ctx: DirectorContext | None, pending: Pending) -> Pending:
    """`pending` with its continuity warnings checked again against canon as it is now."""
    kind = str(pending.get("kind") or "")
    if kind not in CHECKED_KINDS or not pending.get("data"):
        return pending
    found = card_warnings(canon, ctx, kind, pending)
    others = [w for w in pending.get("warnings") or [] if not str(w).startswith(CONTINUITY_PREFIX)]
    return {**pending, "warnings": [*others, *(CONTINUITY_PREFIX + w for w in found)],  # type: ignore[typeddict-item]
            "continuity": found}


def continuity_checked(propose: Proposer) -> Proposer:
    """A kind's `propose` hook whose card also carries the continuity warnings."""
    def checked(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
                ) -> Command:
        command = propose(kind, state, ctx, task, pending)
        if pending.get("data") and not pending.get("failure"):
            try:
                pending.update(refresh_warnings(ctx.canon, ctx, pending))   # the Command holds this dict
            except StoryreelError:
                pass
        return command
    return checked


def accept_logged(review: Reviewer) -> Reviewer:
    """A kind's `review` hook that logs accepting a card with continuity warnings (which ones)."""
    def logged(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
        command = review(kind, state, decision, pending)
        warned = list(pending.get("continuity") or [])
        if warned and getattr(command, "goto", None) == "commit":
            ledger = _ledger_of(state, decision)
            if ledger is not None:
                ledger.append(actor=decision.get("actor", "human"), action="accept-warnings",
                              record_id=pending.get("target_id"), kind=kind.name,
                              inputs={"proposal_id": pending.get("proposal_id"), "warnings": warned},
                              note=f"accepted with {len(warned)} continuity warning"
                                   f"{'s' if len(warned) != 1 else ''}: " + " | ".join(warned))
        return command
    return logged


def _ledger_of(state: DirectorState, decision: dict[str, Any]) -> Any:
    """The run's ledger (review hooks get no context argument: read it from the running graph)."""
    try:
        from langgraph.runtime import get_runtime

        return get_runtime().context.ledger
    except Exception:  # noqa: BLE001 - outside a graph run (a unit test of the hook): nothing to log to
        return None


def with_continuity(kind: Kind) -> Kind:
    """`kind` with continuity warnings on its cards and logged acceptance of them."""
    from dataclasses import replace

    return replace(kind, propose=continuity_checked(kind.propose), review=accept_logged(kind.review))


KINDS = (
    Kind(name="facts", title="Story so far", schema=continuity.FactsProposal, plan=_plan, propose=_propose,
         commit=_write, card=facts_card, summarise=_summary, record_kind="fact", opens="subject",
         record_id=lambda data: continuity.summary_record_id(int(data.get("episode") or 1)),
         failure_help="Press **Redo** to draft it again, or **Edit** to write the facts yourself."),
)

__all__: list[str] = ["CHECKED_KINDS", "KINDS", "card_warnings", "continuity_checked", "facts_card",
                      "offline_draft", "refresh_warnings", "with_continuity"]
