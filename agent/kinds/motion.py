"""Motion for a scene: per shot the camera move and easing, grade, effects, transition and pacing
pad (`agent.cut`), with a low-res preview clip that plays under the card. Rows follow the shot plan.

With a job runner the heavy parts are jobs and the card is up at once, drafting, with Cancel and
Retry: with an image-to-video model and the runner's "i2v" role, each shot's clip (the gpu lane,
"animating shots 1–3 of scene 1 · 1/3 · 40 s"); with its "preview" role, the preview (the cpu lane,
"rendering the motion preview of scene 1 · 0/1 · 8 s"), after the clips when there are any. Each
stage's jobs being done (``jobs_done``) moves the card on; the last one makes it the motion card.
A runner without a role (or none) makes that part in the step, as before.

`clip_specs` and `preview_job` build the very specs the card submits; the batch ("animate all clips
of episode 1", `agent.tools.batch`) queues the same ones, so the card finds them done.
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from agent import cut
from agent.context import DirectorContext
from agent.kinds.base import Kind, _card_error, decide_fields, finish_media, validate
from agent.kinds.cards import esc, motion_markdown
from agent.schemas import PROPOSAL_MODELS, PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.errors import InputError, StoryreelError

CLIP_FPS = cut.CLIP_FPS


def clip_specs(ctx: DirectorContext, motion: dict[str, Any]) -> list[Any]:
    """One image-to-video `JobSpec` per shot: the clean panel (shipped to the worker), the prompt,
    frames, fps and the shot's seed, exactly as `cut.animate_shots` animates it in the step (one
    `cut.clip_request` for both; same key for the same panel, prompt and seed)."""
    from tools.jobs.roles import clip_spec

    model = str(getattr(ctx.animator, "name", type(ctx.animator).__name__))
    specs = []
    for m in motion["shots"]:
        source, prompt, seed = cut.clip_request(ctx.canon, m["shot_id"])
        label = f"shot {ctx.canon.get(m['shot_id']).data.get('index', '?')}"
        specs.append(clip_spec(ctx.rel(ctx.path(source)), prompt=prompt, num_frames=ctx.clip_frames, fps=CLIP_FPS,
                               seed=seed, model=model, label=f"clip for {label}"))
    return specs


def with_clips(motion: dict[str, Any], results: list[dict[str, Any]]) -> dict[str, Any]:
    """`motion` with each shot's clip frames from its i2v job's result (files under
    assets/jobs/i2v/), in shot order; InputError when a result does not fit."""
    motion = {**motion, "shots": [dict(m) for m in motion.get("shots", [])]}
    if len(results) != len(motion["shots"]):
        raise InputError(f"{len(results)} clips came back for {len(motion['shots'])} shots; press Redo")
    for m, r in zip(motion["shots"], results, strict=True):
        files, out = r.get("files") or {}, r.get("data") or {}
        try:
            m["clip"] = [files[f] for f in out["frames"]]
        except KeyError as exc:
            raise InputError(f"a clip job's result names {exc} but brought no such file; press Redo") from None
        m["clip_fps"] = float(out.get("fps", CLIP_FPS))
    return motion


def scene_words(ctx: DirectorContext, scene_id: str) -> str:
    return f"scene {ctx.canon.get(scene_id).data.get('number', '?')}"


def preview_job(ctx: DirectorContext, scene_id: str, motion: dict[str, Any]) -> Any:
    """The cpu-lane `JobSpec` rendering the scene's preview with `motion` (and its clips, if any):
    `cut.preview_spec` turned into a job (`tools.jobs.roles.preview_job`)."""
    from tools.jobs.roles import preview_job as job_of

    return job_of(cut.preview_spec(ctx, scene_id, motion), ctx.project,
                  label=f"motion preview of {scene_words(ctx, scene_id)}")


def _label(ctx: DirectorContext, scene_id: str, motion: dict[str, Any]) -> str:
    idx = [str(ctx.canon.get(m["shot_id"]).data.get("index", "?")) for m in motion["shots"]]
    shots = f"shot {idx[0]}" if len(idx) == 1 else f"shots {idx[0]}–{idx[-1]}"
    return f"{shots} of {scene_words(ctx, scene_id)}"


def _rendering(kind: Kind, ctx: DirectorContext, data: dict[str, Any], proposal_id: str,
               clip_jobs: list[str]) -> dict[str, Any]:
    """The card's data while its preview renders as a job (submitted here; a done key comes back done)."""
    job = ctx.job_runner.submit(preview_job(ctx, data["scene_id"], data))
    return {**validate(kind, data), "drafting": {
        "verb": "rendering", "label": f"the motion preview of {scene_words(ctx, data['scene_id'])}",
        "stage": "preview", "jobs": [job], "clip_jobs": clip_jobs, "proposal_id": proposal_id}}


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    """Motion from the shot plan and the notes, image-to-video frames when a model is set, a preview:
    the clips and the preview as jobs when the runner has their roles, else made in the step."""
    from tools.jobs import has_role

    clips_as_jobs = ctx.animator is not None and has_role(ctx.job_runner, "i2v")
    preview_as_job = has_role(ctx.job_runner, "preview")
    summary = ""
    try:
        data = cut.propose_motion(ctx.canon, task["scene_id"], list(state.get("notes") or []))
        if clips_as_jobs:     # the clips are animated by the job runner; the preview follows them
            jobs = [ctx.job_runner.submit(spec) for spec in clip_specs(ctx, data)]
            pending["data"] = {**validate(kind, data), "drafting": {
                "verb": "animating", "label": _label(ctx, task["scene_id"], data), "stage": "clips", "jobs": jobs,
                "proposal_id": pending["proposal_id"]}}
            summary = f"{task['scene_id']}, animating {len(jobs)} shots as jobs; the card shows their progress"
        else:
            cut.animate_shots(ctx, data, pending["proposal_id"])
            if preview_as_job:
                pending["data"] = _rendering(kind, ctx, data, pending["proposal_id"], [])
                summary = f"{task['scene_id']}, rendering its preview as a job; the card shows its progress"
            else:
                data["preview"] = cut.render_preview(ctx, task["scene_id"], data, pending["proposal_id"])
                pending["data"] = validate(kind, data)
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    return finish_media(kind, state, ctx, task, pending, summary or f"{task['scene_id']}, "
                        f"{len((pending['data'] or {}).get('shots', []))} shots with a preview")


def _animated(kind: Kind, decision: dict[str, Any], pending: Pending) -> Command:
    """The clips' jobs are done: each shot gets its frames (landed under assets/jobs/i2v/), then the
    preview: as a job when the runner has the "preview" role (the card goes on drafting, same
    proposal), else rendered here (a small ffmpeg cut, as for motion without clips)."""
    from langgraph.runtime import get_runtime  # the review node's run context (a kind's review gets none)

    from tools.jobs import has_role

    ctx = get_runtime(DirectorContext).context
    data = {k: v for k, v in (pending.get("data") or {}).items() if k != "drafting"}
    results = list(decision.get("results") or [])
    clip_jobs = [r.get("job_id") for r in results]
    try:
        data = with_clips(data, results)
        if has_role(ctx.job_runner, "preview"):
            data = _rendering(kind, ctx, data, pending["proposal_id"], clip_jobs)
            text = (f"{kind.title} — {data.get('scene_id')}: {len(data['shots'])} shots animated; rendering "
                    "the preview as a job.")
            return Command(goto="review", update={"pending": {**pending, "data": data}, "review_error": None,
                                                  "messages": [{"role": "assistant", "content": text}]})
        data["preview"] = cut.render_preview(ctx, data["scene_id"], data, pending["proposal_id"])
        data = validate(kind, data)
    except StoryreelError as exc:
        return Command(goto="review", update={"pending": {**pending, "failure": str(exc)}})
    data["jobs"] = clip_jobs
    text = f"Proposal: {kind.title} — {data.get('scene_id')}, {len(data['shots'])} animated shots with a preview."
    return Command(goto="review", update={"pending": {**pending, "data": data}, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _previewed(kind: Kind, decision: dict[str, Any], pending: Pending) -> Command:
    """The preview job is done: the card becomes the motion card, its preview the job's MP4 (written by
    the runner under assets/jobs/preview/<key>/)."""
    drafting = (pending.get("data") or {}).get("drafting") or {}
    data = {k: v for k, v in (pending.get("data") or {}).items() if k != "drafting"}
    results = list(decision.get("results") or [])
    try:
        if len(results) != 1:
            raise InputError(f"{len(results)} previews came back for one scene; press Redo")
        files, out = results[0].get("files") or {}, results[0].get("data") or {}
        try:
            data["preview"] = files[out.get("preview", "preview.mp4")]
        except KeyError as exc:
            raise InputError(f"the preview job's result names {exc} but brought no such file; press Redo") from None
        data = validate(kind, data)
    except StoryreelError as exc:
        return Command(goto="review", update={"pending": {**pending, "failure": str(exc)}})
    data["jobs"] = [*(drafting.get("clip_jobs") or []), results[0].get("job_id")]
    clips = " animated" if any(m.get("clip") for m in data.get("shots", [])) else ""
    text = f"Proposal: {kind.title} — {data.get('scene_id')}, {len(data['shots'])}{clips} shots with a preview."
    return Command(goto="review", update={"pending": {**pending, "data": data}, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _decide(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """Accept or edit the motion; a card whose clips are still animating takes neither."""
    drafting = (pending.get("data") or {}).get("drafting")
    if decision["type"] == "jobs_done":
        if (drafting or {}).get("stage") == "preview":
            return _previewed(kind, decision, pending)
        return _animated(kind, decision, pending)
    if drafting:
        return _card_error("The preview is still being rendered: wait for it, or Cancel."
                           if drafting.get("stage") == "preview" else
                           "The clips are still being animated: wait for them, or Cancel.")
    return decide_fields(kind, state, decision, pending)


def motion_card(data: dict[str, Any]) -> str:
    """The motion table; while its clips are animated (or its preview rendered) as jobs, what, their
    progress and a failed one's reason."""
    drafting = data.get("drafting")
    if not drafting:
        return motion_markdown(data)
    from agent.kinds.visual import drafting_line

    preview = drafting.get("stage") == "preview"
    jobs = [f"- {'preview' if preview else 'shot #' + str(job.get('n'))} {job.get('state', 'queued')}"
            + (f": {esc(job['error'])}" if job.get("error") else
               f" · {esc(job['message'])}" if job.get("message") else "")
            for job in drafting.get("status") or []]
    failed = "The preview failed: **Retry** renders it again" if preview else "A clip failed: **Retry** runs it again"
    hint = (f"{failed}; **Redo** proposes the motion again." if drafting.get("failed")
            else "Cancelled: **Redo** proposes the motion again, or **Skip this step**." if drafting.get("cancelled") else
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
