"""Pictures: a character's reference sheet, a location's background, a shot's panel. The draft is N
painted candidates; the director picks one (or uploads their own) and the pick becomes a versioned
asset (`agent.storyboard`). A panel note asking for what the painter cannot add by itself becomes a
shot-plan revision.
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command

from agent import notes as note_parser
from agent import storyboard
from agent.context import DirectorContext
from agent.kinds.base import Kind, _card_error, _to_commit, names
from agent.kinds.cards import esc
from agent.schemas import PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.canon import Record
from memory.errors import InputError, StoryreelError

#: What the card says is drafting, per kind ("drafting panel candidates for shot 4").
DRAFTING = {"reference": "reference sheet candidates", "background": "background candidates",
            "panel": "panel candidates"}


def _subject_label(ctx: DirectorContext, kind: str, subject: str) -> tuple[str, str]:
    """(name for the card, words for the drafting line): "Aiko", or "shot 4" for a panel."""
    rec = ctx.canon.get(subject)
    name = str(rec.data.get("name") or subject)
    if kind == "panel" and rec.data.get("index"):
        return name, f"shot {rec.data['index']}"
    return name, name


def candidate_specs(ctx: DirectorContext, kind: str, subject: str, *, attempt: int, notes: list[str]
                    ) -> tuple[str, list[Any], list[int]]:
    """(what the card says is drafting, one painter `JobSpec` per candidate, their seeds): what a
    card of `attempt` submits, and what a batch ("draft all panels for episode 1") queues for the
    first card, so that card finds its jobs done (same keys). Canon reads only."""
    from tools.jobs.roles import painter_model, panel_spec

    _, label = _subject_label(ctx, kind, subject)
    what = f"{DRAFTING.get(kind, kind + ' candidates')} for {label}"
    model = painter_model(ctx.painter) if ctx.painter is not None else "painter"
    specs, seeds = [], []
    for i in range(max(1, ctx.candidates)):
        seed = storyboard._seed(subject, attempt, i)     # the seeds painting in the step would use
        request = storyboard.panel_request(ctx, kind, subject, notes=notes, seed=seed)
        specs.append(panel_spec(request, ctx.project, model=model, label=f"{what} · #{i + 1}"))
        seeds.append(seed)
    return what, specs, seeds


def submit_candidates(ctx: DirectorContext, task: Task, *, proposal_id: str, attempt: int,
                      notes: list[str]) -> dict[str, Any]:
    """Submit one painter job per candidate to `ctx.job_runner` and return the card's data at once:
    no candidates yet, and a "drafting" entry naming the jobs (the session resumes the graph with a
    ``jobs_done`` decision when they are all done). Cheap: canon reads and one row per job."""
    assert ctx.job_runner is not None and ctx.project is not None
    kind, subject = task["kind"], task["subject"]
    name, _ = _subject_label(ctx, kind, subject)
    what, specs, seeds = candidate_specs(ctx, kind, subject, attempt=attempt, notes=notes)
    jobs = [ctx.job_runner.submit(spec) for spec in specs]
    painter = getattr(ctx.painter, "name", "painter")
    return {"kind": kind, "subject": subject, "subject_name": name, "candidates": [], "painter": painter,
            "animatic": painter == "animatic", "made_from": storyboard.made_from(ctx.canon, kind, subject),
            "drafting": {"label": what, "jobs": jobs, "seeds": seeds, "proposal_id": proposal_id}}


def candidates_from_results(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The card's candidates from the painter jobs' results (files named by the work's data)."""
    out = []
    for r in results:
        files, data = r.get("files") or {}, r.get("data") or {}
        try:
            out.append({"path": files[data["image"]], "seed": data.get("seed"), "model": data.get("model"),
                        "layers": {k: files[v] for k, v in (data.get("layers") or {}).items()},
                        "variants": {k: files[v] for k, v in (data.get("variants") or {}).items()}})
        except KeyError as exc:
            raise InputError(f"a painter job's result names {exc} but brought no such file "
                             f"({sorted(files)}); press Redo to draw again") from None
    return out


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    """Paint N candidates for a reference sheet, a background or a panel; with a job runner, submit
    them as jobs and put the card up at once, drafting."""
    if ctx.job_runner is not None:
        return _submit(kind, state, ctx, task, pending)
    try:
        pending["data"] = storyboard.paint_candidates(
            ctx, task, proposal_id=pending["proposal_id"], attempt=pending["attempt"],
            notes=list(state.get("notes") or []))
        if pending["data"]["animatic"]:
            pending["warnings"] = [("Animatic sketches from the offline renderer; configure a diffusers "
                                    "checkpoint ([painter] in project.toml) for finished anime panels.")]
    except StoryreelError as exc:
        pending["failure"] = str(exc)
        if "palette colour" in pending["failure"]:  # redoing the image cannot fix the style's palette
            pending["failure"] += ("; fix the palette on the style card: say “make the palette navy, crimson, "
                                   "cream” (or /edit palette …), then redo this image")
    data = pending["data"] or {}
    ctx.ledger.append(actor="assistant", action="propose" if not pending["failure"] else "propose-failed",
                      record_id=task.get("subject"), kind=kind.name,
                      inputs={"proposal_id": pending["proposal_id"], "task": task,
                              "notes": state.get("notes") or [],
                              "seeds": [c["seed"] for c in data.get("candidates", [])]},
                      note=pending["failure"] or f"{len(data.get('candidates', []))} candidates")
    name = data.get("subject_name", task.get("subject"))
    text = (f"Proposal: {kind.title} — {name}, {len(data.get('candidates', []))} candidates. Pick one on the card."
            if not pending["failure"] else
            f"I could not draw the {kind.title.lower()} for {task.get('subject')}: {pending['failure']}. "
            "Press Redo to try again, or upload your own image.")
    return Command(goto="review", update={"pending": pending, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _submit(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
            ) -> Command[Literal["review"]]:
    """The drafting card: candidates submitted as jobs; nothing is painted in this step."""
    try:
        pending["data"] = submit_candidates(ctx, task, proposal_id=pending["proposal_id"],
                                            attempt=pending["attempt"], notes=list(state.get("notes") or []))
        if pending["data"]["animatic"]:
            pending["warnings"] = [("Animatic sketches from the offline renderer; configure a diffusers "
                                    "checkpoint ([painter] in project.toml) for finished anime panels.")]
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    data = pending["data"] or {}
    drafting = data.get("drafting") or {}
    ctx.ledger.append(actor="assistant", action="propose" if not pending["failure"] else "propose-failed",
                      record_id=task.get("subject"), kind=kind.name,
                      inputs={"proposal_id": pending["proposal_id"], "task": task,
                              "notes": state.get("notes") or [], "seeds": drafting.get("seeds", []),
                              "jobs": drafting.get("jobs", [])},
                      note=pending["failure"] or f"drafting {len(drafting.get('jobs', []))} candidates as jobs")
    text = (f"Drafting {drafting.get('label')} ({len(drafting.get('jobs', []))} jobs). The card shows their "
            "progress; ask questions or use the other tabs meanwhile."
            if not pending["failure"] else
            f"I could not start drawing the {kind.title.lower()} for {task.get('subject')}: {pending['failure']}. "
            "Press Redo to try again, or upload your own image.")
    return Command(goto="review", update={"pending": pending, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _drafted(kind: Kind, decision: dict[str, Any], pending: Pending) -> Command:
    """The card's jobs are done: the card turns into their candidates (same proposal)."""
    data = dict(pending.get("data") or {})
    drafting = data.pop("drafting", None) or {}
    try:
        data["candidates"] = candidates_from_results(list(decision.get("results") or []))
    except StoryreelError as exc:
        return Command(goto="review", update={"pending": {**pending, "data": data, "failure": str(exc)}})
    data["jobs"] = list(drafting.get("jobs", []))
    text = (f"Proposal: {kind.title} — {data.get('subject_name', data.get('subject'))}, "
            f"{len(data['candidates'])} candidates. Pick one on the card.")
    return Command(goto="review", update={"pending": {**pending, "data": data}, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _decide(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """Upload your own, or accept (Edit is accept here) the candidate picked on the card; a drafting
    card's jobs being done (``jobs_done``) turns it into the candidates."""
    if decision["type"] == "jobs_done":
        return _drafted(kind, decision, pending)
    if decision["type"] == "upload":
        return _to_commit(pending, decision, "upload", upload=decision["path"])
    if (pending.get("data") or {}).get("drafting"):
        return _card_error("The candidates are still being drawn: wait for them, Cancel, or upload your own.")
    if not (pending.get("data") or {}).get("candidates"):
        return _card_error("There is no image to accept: press Redo, or upload your own.")
    return _to_commit(pending, decision, "accept", choice=int(decision.get("choice", 0)))


def _panel_note(state: DirectorState, ctx: DirectorContext, pending: Pending, note: str, decided: str
                ) -> Command | dict[str, Any]:
    """A panel note asking for what the painter cannot add by itself (a cast member who is not in
    the shot, another framing) becomes a shot-plan revision; the panel is redrawn after it."""
    if decided != "reject" or not note or not pending.get("data"):
        return {}
    subject = (pending.get("data") or {}).get("subject") or (state.get("task") or {}).get("subject")
    try:
        shot = ctx.canon.get(str(subject))
    except StoryreelError:
        return {}
    changes = note_parser.panel_note_changes(note, shot.data, names(ctx.canon, "character"))
    if not changes or not shot.data.get("scene_id"):
        return {}
    scene_id = shot.data["scene_id"]
    panel_task = {k: v for k, v in (state.get("task") or {}).items() if k != "resume"}
    what = "; ".join(filter(None, [
        f"add {', '.join(changes['add_characters'])}" if changes.get("add_characters") else "",
        f"framing {shot.data.get('framing')} → {changes['framing']}" if changes.get("framing") else ""]))
    task: Task = {"kind": "shots", "target_id": scene_id, "scene_id": scene_id, "request": note,
                  "shot_edit": {"shot_id": shot.id, **changes}}
    return Command(goto="propose", update={
        "task": task, "stash": [*(state.get("stash") or []), panel_task], "notes": [], "rejected": [],
        "pending": None, "messages": [
            {"role": "user", "content": f"(rejected) {note}"},
            {"role": "assistant", "content": f"The painter draws what the shot plan says, so this needs a "
             f"shot-plan revision for {shot.id} ({what}). Accept it and the panel is drawn again."}]})


def _write(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    return [storyboard.accept_image(ctx, pending["data"] or {}, choice=pending.get("choice"),
                                    upload=pending.get("upload"), actor=actor, note=note)]


def drafting_line(drafting: dict[str, Any]) -> str:
    """"drafting panel candidates for shot 4 · 1/2 · 12 s" from a drafting entry the session filled
    with its jobs' live status (`done`, `total`, `elapsed_s`); the stored entry says only what (and
    its `verb`: "voicing line 3 of scene 1 · 0/1 · 4 s" for a take, "animating …" for clips)."""
    line = f"{drafting.get('verb', 'drafting')} {drafting.get('label', 'candidates')}"
    if "total" in drafting:
        line += f" · {drafting.get('done', 0)}/{drafting['total']} · {drafting.get('elapsed_s', 0):.0f} s"
    return line


def image_card(data: dict[str, Any]) -> str:
    """The candidates with their seeds; the studio shows the images under the card. A drafting card
    says what is being drawn, each job's state, and a failed job's reason."""
    drafting = data.get("drafting")
    if drafting:
        head = (f"**{esc(data.get('subject_name', data.get('subject')))}** — painter `{esc(data.get('painter'))}`"
                f"\n\n⏳ {esc(drafting_line(drafting))}")
        jobs = []
        for job in drafting.get("status") or []:
            detail = (f": {esc(job['error'])}" if job.get("error") else
                      f" · {esc(job['message'])}" if job.get("message") else "")
            jobs.append(f"- #{job.get('n')} {job.get('state', 'queued')}{detail}")
        if drafting.get("failed"):
            hint = "A job failed: **Retry** runs it again; **Redo** draws new candidates."
        elif drafting.get("cancelled"):
            hint = "Cancelled: **Redo** draws again, or **Skip this step**."
        else:
            hint = "The chat and the other tabs stay usable meanwhile; **Cancel** stops these jobs."
        return "\n\n".join(filter(None, [head, "\n".join(jobs), hint]))
    seeds = ", ".join(f"#{i + 1}: seed {c.get('seed')}" for i, c in enumerate(data.get("candidates", [])))
    text = (f"**{esc(data.get('subject_name', data.get('subject')))}** — painter `{esc(data.get('painter'))}`"
            f"\n\nCandidates ({seeds}). Click one below to pick it, then **Accept**; or "
            "**Reject with note**, **Redo**, or upload your own.")
    if data.get("animatic"):
        text += "\n\n*Animatic sketch (offline storyboard renderer), not final art.*"
    return text


def _image_kind(name: str, **hooks: Any) -> Kind:
    return Kind(name=name, title=PROPOSAL_TITLES[name], schema=None, family="storyboard", propose=_propose,
                review=_decide, commit=_write, card=image_card, media="images", edit="none", upload=True,
                failure_help="Press **Redo** to try again, or **upload your own** image.", **hooks)


KINDS = (
    # the storyboard's planner: reference sheets, backgrounds, then each scene's shot plan and panels
    _image_kind("reference", plan=storyboard.next_storyboard_task),
    _image_kind("background"),
    _image_kind("panel", on_reject=_panel_note),
)
