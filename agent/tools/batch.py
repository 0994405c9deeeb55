"""Batch drafting: "draft all panels for episode 1", "voice all lines of episode 2".

`draft_all` queues a job for every missing or stale panel (or take) of an episode on the session's
job runner, with the very specs the episode's cards will submit for their first draft (same seeds,
same content keys), so when the planner comes to each card, in order, its jobs are done already and
the card opens at once. Queuing the same batch twice adds nothing (a key that is queued, running or
done returns its job). Nothing reaches canon: each result still waits for its card.

`item_jobs` says, per panel or take of an episode, the state of the job a batch (or its card)
queued for it: what the Storyboard tab shows (queued, running, ready for review, failed: reason).
"""
from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.tools import Outcome, Tool, ToolContext, ToolError
from memory.errors import StoryreelError

WHAT = Literal["panels", "takes", "clips"]
#: What the storyboard shows for a job state.
JOB_WORDS = {"queued": "queued", "running": "running", "done": "ready for review", "failed": "failed",
             "cancelled": "cancelled"}


class DraftAllArgs(BaseModel):
    what: WHAT = Field(default="panels", description="panels (the storyboard's pictures), takes (every line's "
                       "voice) or clips (image-to-video)")
    episode: int | None = Field(default=None, ge=1, le=999, description="the episode; omit for the latest "
                                "started one")


def _episode(ctx: Any, episode: int | None) -> int:
    from agent.episodes import started_episodes

    started = started_episodes(ctx.canon)
    if episode is None:
        return started[-1]
    if episode not in started:
        raise ToolError(f"episode {episode} is not started (started: {', '.join(map(str, started))}); "
                        f"say “start episode {episode}” first")
    return episode


def panel_items(ctx: Any, episode: int) -> list[tuple[str, list[Any]]]:
    """(shot id, its first card's painter specs) for each shot of `episode` whose panel is missing
    or stale, in story order."""
    from agent.kinds.visual import candidate_specs
    from agent.storyboard import image_record_id, image_status, ordered_scenes, shots_of

    items = []
    painter = getattr(ctx.painter, "name", None)
    for scene in ordered_scenes(ctx.canon, [episode]):
        for shot in shots_of(ctx.canon, scene.id):
            panel = ctx.canon.live(image_record_id("panel", shot.id))
            if panel is not None and image_status(ctx.canon, panel, painter)[0] != "stale":
                continue
            _, specs, _ = candidate_specs(ctx, "panel", shot.id, attempt=1, notes=[])
            items.append((shot.id, specs))
    return items


def take_items(ctx: Any, episode: int) -> list[tuple[str, list[Any]]]:
    """(line id, its first take card's TTS spec) for each line of `episode` (primary language)
    whose take is missing or stale, in story order."""
    from agent import voices
    from tools.jobs.roles import speech_spec

    items = []
    for scene, line in voices.episode_lines(ctx.canon, episode):
        take = ctx.canon.live(voices.take_id(line["id"], voices.PRIMARY_LANGUAGE))
        if take is not None and voices.take_status(ctx.canon, take)[0] != "stale":
            continue
        task = {"kind": "take", "subject": line["id"], "scene_id": scene.id, "language": voices.PRIMARY_LANGUAGE}
        request, plan = voices.take_speech(ctx, task, attempt=1)
        items.append((line["id"], [speech_spec(request, label=f"take of {voices.take_label(plan)}")]))
    return items


def _items(ctx: Any, what: str, episode: int) -> list[tuple[str, list[Any]]]:
    from tools.jobs import has_role

    runner = ctx.job_runner
    if what == "clips":
        raise ToolError("clips are made with their scene's motion card (image-to-video needs [motion] backend = "
                        "\"animatediff\"); batch drafting covers panels and takes")
    role, needs = ("painter", "painter") if what == "panels" else ("tts", "voices")
    if runner is None or not has_role(runner, role):
        raise ToolError(f"batch drafting needs the job runner (the studio or `storyreel make`); in this session "
                        f"{what} are made one card at a time")
    if getattr(ctx, needs) is None:
        raise ToolError(f"{what} are off in this session (no {needs} backend)")
    try:
        return panel_items(ctx, episode) if what == "panels" else take_items(ctx, episode)
    except StoryreelError as exc:
        raise ToolError(f"could not prepare the {what} of episode {episode}: {exc}") from exc


def queue_batch(ctx: Any, what: str, episode: int | None = None) -> dict[str, Any]:
    """Queue every missing or stale item's jobs; {"episode", "items", "queued", "known"}: how many
    items, jobs newly queued, and jobs that were queued, running or done already (their keys)."""
    from tools.jobs import find_job

    episode = _episode(ctx, episode)
    items = _items(ctx, what, episode)
    queued = known = 0
    for _, specs in items:
        for spec in specs:
            before = find_job(ctx.job_runner, spec.key)
            if before is not None and before.state in ("queued", "running", "done"):
                known += 1
                continue
            ctx.job_runner.submit(spec)            # a failed or cancelled one is queued again here
            queued += 1
    return {"episode": episode, "items": len(items), "queued": queued, "known": known}


def item_jobs(ctx: Any, what: str, episode: int) -> dict[str, dict[str, Any]]:
    """Per item (shot id / line id) of `episode` that still needs a draft: the state of its first
    card's jobs ({"state", "words", "error"}), for those a batch or a card queued; {} without a
    runner. Reads only (keys looked up, nothing submitted)."""
    from tools.jobs import find_job

    try:
        items = _items(ctx, what, episode)
    except ToolError:
        return {}
    out: dict[str, dict[str, Any]] = {}
    for item, specs in items:
        found = [find_job(ctx.job_runner, spec.key) for spec in specs]
        if not any(found):
            continue
        states = [st.state if st is not None else "queued" for st in found]
        failed = [st for st in found if st is not None and st.state == "failed"]
        if failed:
            state = "failed"
        elif "running" in states:
            state = "running"
        elif all(x == "done" for x in states):
            state = "done"
        elif "cancelled" in states:
            state = "cancelled"
        else:
            state = "queued"
        error = failed[0].error if failed else None
        out[item] = {"state": state, "error": error,
                     "words": JOB_WORDS[state] + (f": {error}" if error else "")}
    return out


def draft_all(tc: ToolContext, args: DraftAllArgs) -> Outcome:
    done = queue_batch(tc.ctx, args.what, args.episode)
    n, what, ep = done["items"], args.what, done["episode"]
    if not n:
        return Outcome(say=f"Every {what[:-1]} of episode {ep} is drafted or accepted already; nothing to queue.")
    again = f"; {done['known']} already queued or drawn" if done["known"] else ""
    return Outcome(say=(f"Queued {done['queued']} jobs for {n} {what} of episode {ep}{again}. They arrive as "
                        "cards in order; the Storyboard tab shows each one's job."))


TOOLS = (
    Tool("draft_all", "Draft every missing or stale panel (or take) of an episode in the background, as jobs; "
         "their cards come in order.", DraftAllArgs, draft_all, "production",
         target=lambda a: f"episode-{a.episode}" if a.episode else None),
)


def router_arguments(clause: str) -> dict[str, Any]:
    """The offline router's arguments for `draft_all`: what (panels / takes / clips, from words such
    as "voice", "lines", "clips", "animate") and the episode number said."""
    import re

    from agent.tools import refs as R

    lowered = clause.casefold()
    what = ("takes" if re.search(r"\b(voice\w*|takes?|lines?|record\w*|dialogue)\b", lowered) else
            "clips" if re.search(r"\b(clips?|animat\w*|motion|i2v)\b", lowered) else "panels")
    said = re.search(rf"\b(?:episode|ep)\.?\s*#?{R._NUM}\b", lowered) or re.search(
        rf"\b{R._ORD}\s+episode\b", lowered)
    return {"what": what, "episode": R.number(said.group(1)) if said else None}
