"""Batch drafting: "draft all panels for episode 1", "voice all lines of episode 2", "animate all
clips of episode 1".

`draft_all` queues a job for every missing or stale panel (or take) of an episode on the session's
job runner, with the very specs the episode's cards will submit for their first draft (same seeds,
same content keys), so when the planner comes to each card, in order, its jobs are done already and
the card opens at once. Queuing the same batch twice adds nothing (a key that is queued, running or
done returns its job). Nothing reaches canon: each result still waits for its card.

Clips are the motion work of each scene whose panels are accepted and whose motion is missing or
stale: with image-to-video, a clip job per shot (gpu lane); the preview job (cpu lane) once the
scene's takes are accepted and, with image-to-video, its clips are done (the preview plays them).

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


def motion_state(canon: Any, scene_id: str) -> str:
    """"missing", "stale" or "accepted" for a scene's motion: stale when its rows are not the
    scene's shots any more, or a panel or take of the scene was accepted after it."""
    from agent import cut, voices
    from agent.storyboard import image_record_id, shots_of

    motion = canon.live(cut.motion_id(scene_id))
    if motion is None:
        return "missing"
    shots = shots_of(canon, scene_id)
    if [m.get("shot_id") for m in motion.data.get("shots", [])] != [s.id for s in shots]:
        return "stale"
    lines = canon.get(scene_id).data.get("lines", [])
    inputs = [canon.live(image_record_id("panel", s.id)) for s in shots] + [
        canon.live(voices.take_id(str(ln.get("id")), voices.PRIMARY_LANGUAGE)) for ln in lines]
    return "stale" if any(r is not None and r.created_at > motion.created_at for r in inputs) else "accepted"


def clip_items(ctx: Any, episode: int) -> list[tuple[str, list[Any]]]:
    """(scene id, its motion card's jobs) for each scene of `episode` whose shots all have accepted
    panels and whose motion is missing or stale, in story order, with the very specs the card
    submits (`agent.kinds.motion.clip_specs`, `preview_job`; the motion as first proposed): the
    clip jobs when image-to-video is on, and the preview job when the scene's takes are accepted
    and its clips (if any) are done: the preview plays them, so it cannot be keyed before."""
    from agent import cut, voices
    from agent.kinds.motion import clip_specs, preview_job, with_clips
    from agent.storyboard import image_record_id, shots_of
    from tools.jobs import find_job, has_role

    runner, canon = ctx.job_runner, ctx.canon
    clips = ctx.animator is not None and has_role(runner, "i2v")
    items = []
    for scene in cut.episode_scenes(canon, episode):
        shots = shots_of(canon, scene.id)
        if not shots or not all(canon.live(image_record_id("panel", s.id)) for s in shots) \
                or motion_state(canon, scene.id) == "accepted":
            continue
        motion = cut.propose_motion(canon, scene.id, [])
        specs = clip_specs(ctx, motion) if clips else []
        voiced = all(canon.live(voices.take_id(str(ln.get("id")), voices.PRIMARY_LANGUAGE))
                     for ln in scene.data.get("lines", []))
        found = [find_job(runner, spec.key) for spec in specs]
        if voiced and all(st is not None and st.state == "done" for st in found):
            if specs:
                done = [runner.result(st.job_id) for st in found if st is not None]
                motion = with_clips(motion, [{"job_id": r.job_id, "files": dict(r.files), "data": dict(r.data)}
                                             for r in done])
            specs = [*specs, preview_job(ctx, scene.id, motion)]
        if specs:
            items.append((scene.id, specs))
    return items


def _items(ctx: Any, what: str, episode: int) -> list[tuple[str, list[Any]]]:
    from tools.jobs import has_role

    runner = ctx.job_runner
    if what == "clips" and ctx.animator is not None and not has_role(runner, "i2v"):
        raise ToolError("image-to-video clips are made on their scene's motion card in this session (the job "
                        "runner has no \"i2v\" role); batch drafting covers panels, takes and previews")
    role, needs = {"panels": ("painter", "painter"), "takes": ("tts", "voices"),
                   "clips": ("preview", "painter")}[what]
    if runner is None or not has_role(runner, role):
        raise ToolError(f"batch drafting needs the job runner (the studio or `storyreel make`); in this session "
                        f"{what} are made one card at a time")
    if getattr(ctx, needs) is None:
        raise ToolError(f"{what} are off in this session (no {needs} backend)")
    try:
        return {"panels": panel_items, "takes": take_items, "clips": clip_items}[what](ctx, episode)
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
    if not n and what == "clips":
        return Outcome(say=f"No scene of episode {ep} needs its motion drafted: each has its motion accepted, or "
                           "waits for its panels; nothing to queue.")
    if not n:
        return Outcome(say=f"Every {what[:-1]} of episode {ep} is drafted or accepted already; nothing to queue.")
    again = f"; {done['known']} already queued or drawn" if done["known"] else ""
    items = f"the motion of {n} scene{'s' if n != 1 else ''}" if what == "clips" else f"{n} {what}"
    later = (" A scene's preview is queued once its takes are accepted and its clips are done."
             if what == "clips" else "")
    return Outcome(say=(f"Queued {done['queued']} jobs for {items} of episode {ep}{again}. They arrive as "
                        f"cards in order; the Storyboard tab shows each one's job.{later}"))


TOOLS = (
    Tool("draft_all", "Draft every missing or stale panel, take or scene motion (clips and previews) of an "
         "episode in the background, as jobs; their cards come in order.", DraftAllArgs, draft_all, "production",
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
