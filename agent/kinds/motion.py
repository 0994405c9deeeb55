"""Motion for a scene: per shot the camera move and easing, grade, effects, transition and pacing
pad (`agent.cut`), with a low-res preview clip that plays under the card. Rows follow the shot plan.

With an image-to-video model and a job runner that has the "i2v" role, each shot's clip is a job
(the GPU lane): the card is up at once, "animating shots 1–3 of scene 1 · 1/3 · 40 s", with Cancel
and Retry; when the clips are done (``jobs_done``) the card gets them and its preview.
"""
from __future__ import annotations

import hashlib
from typing import Any, Literal

from langgraph.types import Command

from agent import cut
from agent.context import DirectorContext
from agent.kinds.base import Kind, _card_error, decide_fields, finish_media, validate
from agent.kinds.cards import esc, motion_markdown
from agent.schemas import PROPOSAL_MODELS, PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.errors import InputError, StoryreelError

CLIP_FPS = 8


def clip_specs(ctx: DirectorContext, motion: dict[str, Any]) -> list[Any]:
    """One image-to-video `JobSpec` per shot: the clean panel (shipped to the worker), the prompt,
    frames, fps and the shot's seed, as `cut.animate_shots` animates it in the step (same key for
    the same panel, camera move and seed)."""
    from agent.storyboard import image_record_id
    from tools.jobs.roles import clip_spec

    canon = ctx.canon
    art = canon.get("style").data.get("art_style", "") if canon.live("style") else ""
    model = str(getattr(ctx.animator, "name", type(ctx.animator).__name__))
    specs = []
    for m in motion["shots"]:
        shot = canon.get(m["shot_id"])
        panel = canon.get(image_record_id("panel", shot.id))
        who = ", ".join(f"{c.get('name')} {c.get('expression', '')}" for c in shot.data.get("characters", []))
        prompt = ", ".join(filter(None, [who, shot.data.get("mood", ""), shot.data.get("lighting", ""), art,
                                         "subtle motion, hair and cloth sway"]))
        source = panel.data.get("variants", {}).get("clean") or panel.data["path"]
        seed = int(hashlib.sha256(shot.id.encode()).hexdigest()[:6], 16)
        label = f"shot {shot.data.get('index', '?')}"
        spec = clip_spec(ctx.rel(ctx.path(source)), prompt=prompt, num_frames=ctx.clip_frames, fps=CLIP_FPS,
                         seed=seed, model=model, label=f"clip for {label}")
        specs.append(spec)
    return specs


def _label(ctx: DirectorContext, scene_id: str, motion: dict[str, Any]) -> str:
    idx = [str(ctx.canon.get(m["shot_id"]).data.get("index", "?")) for m in motion["shots"]]
    shots = f"shot {idx[0]}" if len(idx) == 1 else f"shots {idx[0]}–{idx[-1]}"
    return f"{shots} of scene {ctx.canon.get(scene_id).data.get('number', '?')}"


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    """Motion from the shot plan and the notes, image-to-video frames when a model is set, a preview."""
    from tools.jobs import has_role

    as_jobs = ctx.animator is not None and has_role(ctx.job_runner, "i2v")
    summary = ""
    try:
        data = cut.propose_motion(ctx.canon, task["scene_id"], list(state.get("notes") or []))
        if as_jobs:     # the clips are animated by the job runner; the preview follows them
            jobs = [ctx.job_runner.submit(spec) for spec in clip_specs(ctx, data)]
            pending["data"] = {**validate(kind, data), "drafting": {
                "verb": "animating", "label": _label(ctx, task["scene_id"], data), "jobs": jobs,
                "proposal_id": pending["proposal_id"]}}
            summary = f"{task['scene_id']}, animating {len(jobs)} shots as jobs; the card shows their progress"
        else:
            cut.animate_shots(ctx, data, pending["proposal_id"])
            data["preview"] = cut.render_preview(ctx, task["scene_id"], data, pending["proposal_id"])
            pending["data"] = validate(kind, data)
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    return finish_media(kind, state, ctx, task, pending, summary or f"{task['scene_id']}, "
                        f"{len((pending['data'] or {}).get('shots', []))} shots with a preview")


def _animated(kind: Kind, decision: dict[str, Any], pending: Pending) -> Command:
    """The clips' jobs are done: each shot gets its frames (landed under assets/jobs/i2v/), then the
    preview is rendered with them (a small ffmpeg cut, as for motion without clips)."""
    from langgraph.runtime import get_runtime  # the review node's run context (a kind's review gets none)

    ctx = get_runtime(DirectorContext).context
    data = {k: v for k, v in (pending.get("data") or {}).items() if k != "drafting"}
    results = list(decision.get("results") or [])
    try:
        if len(results) != len(data.get("shots", [])):
            raise InputError(f"{len(results)} clips came back for {len(data.get('shots', []))} shots; press Redo")
        for m, r in zip(data["shots"], results, strict=True):
            files, out = r.get("files") or {}, r.get("data") or {}
            try:
                m["clip"] = [files[f] for f in out["frames"]]
            except KeyError as exc:
                raise InputError(f"a clip job's result names {exc} but brought no such file; press Redo") from None
            m["clip_fps"] = float(out.get("fps", CLIP_FPS))
        data["preview"] = cut.render_preview(ctx, data["scene_id"], data, pending["proposal_id"])
        data = validate(kind, data)
    except StoryreelError as exc:
        return Command(goto="review", update={"pending": {**pending, "failure": str(exc)}})
    data["jobs"] = [r.get("job_id") for r in results]
    text = f"Proposal: {kind.title} — {data.get('scene_id')}, {len(data['shots'])} animated shots with a preview."
    return Command(goto="review", update={"pending": {**pending, "data": data}, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _decide(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """Accept or edit the motion; a card whose clips are still animating takes neither."""
    if decision["type"] == "jobs_done":
        return _animated(kind, decision, pending)
    if (pending.get("data") or {}).get("drafting"):
        return _card_error("The clips are still being animated: wait for them, or Cancel.")
    return decide_fields(kind, state, decision, pending)


def motion_card(data: dict[str, Any]) -> str:
    """The motion table; while its clips are animated as jobs, what, their progress and a failed one's reason."""
    drafting = data.get("drafting")
    if not drafting:
        return motion_markdown(data)
    from agent.kinds.visual import drafting_line

    jobs = [f"- shot #{job.get('n')} {job.get('state', 'queued')}"
            + (f": {esc(job['error'])}" if job.get("error") else
               f" · {esc(job['message'])}" if job.get("message") else "")
            for job in drafting.get("status") or []]
    hint = ("A clip failed: **Retry** runs it again; **Redo** proposes the motion again." if drafting.get("failed")
            else "Cancelled: **Redo** animates again, or **Skip this step**." if drafting.get("cancelled") else
            "The chat and the other tabs stay usable meanwhile; **Cancel** stops these jobs.")
    return "\n\n".join(filter(None, [f"**{esc(data.get('scene_id'))}** — ⏳ {esc(drafting_line(drafting))}",
                                     "\n".join(jobs), hint]))


KINDS = (
    # the cut's planner: a motion proposal per scene whose panels and takes are accepted
    Kind(name="motion", title=PROPOSAL_TITLES["motion"], schema=PROPOSAL_MODELS["motion"], family="motion",
         plan=cut.next_cut_task, propose=_propose, review=_decide,
         record_id=lambda data: cut.motion_id(data["scene_id"]),
         card=motion_card, media="clip", rows_resizable=False),
)
