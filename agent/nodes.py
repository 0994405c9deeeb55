"""The director's steps. Costly work (retrieval, the LLM, painting, voicing) happens only in
`propose` (with `agent.media_proposals`) and `respond` (`agent.chat`); `review` and `wait_input`
only read state, ask, and route.

Graph: plan_next -> propose -> review -> (commit -> plan_next | propose | respond | review)
       plan_next -> wait_input -> (plan_next | respond | propose)
       respond -> (review | wait_input | propose | plan_next)
"""
from __future__ import annotations

import difflib
import uuid
from typing import Any, Literal

from langgraph.runtime import Runtime
from langgraph.types import Command
from pydantic import ValidationError

from agent import cut, guard, prompts, revisions, storyboard, voices
from agent import media_proposals as media
from agent import notes as note_parser
from agent.context import DirectorContext
from agent.fallbacks import salvage
from agent.llm import generate_structured
from agent.review import ReviewRequest, ask
from agent.schemas import (
    MAX_LINES_PER_SHOT,
    PROPOSAL_MODELS,
    PROPOSAL_TITLES,
    beats_problems,
    proposal_model,
    scene_problems,
    shots_problems,
    validate_proposal,
)
from agent.state import DirectorState, Pending, Task
from memory.bible import record_text
from memory.canon import Canon, Record
from memory.errors import LLMOutputError, StoryreelError
from memory.faults import crash_point

MAX_ATTEMPTS = 12   # proposals for one task (rejections + redos) before the agent asks for direction


# ----------------------------------------------------------------------------- planning


def next_task(canon: Canon, ctx: DirectorContext) -> Task | None:
    """The next proposal the writers' room makes, from what canon already holds."""
    t = ctx.targets
    if not canon.list("series"):
        return {"kind": "series", "target_id": None}
    for kind, want in (("character", t.characters), ("location", t.locations), ("prop", t.props)):
        if len(canon.list(kind)) < want:
            return {"kind": kind, "target_id": None}
    if not canon.list("outline"):
        return {"kind": "outline", "target_id": None}
    if not canon.live("beats-ep1"):
        return {"kind": "beats", "target_id": None, "episode": 1}
    scenes = [r for r in canon.list("scene") if r.data.get("episode") == 1]
    if len(scenes) < t.scenes:
        return {"kind": "scene", "target_id": None, "episode": 1, "number": len(scenes) + 1}
    return None


def plan_next(state: DirectorState, runtime: Runtime[DirectorContext]
              ) -> Command[Literal["propose", "wait_input", "review"]]:
    stash = list(state.get("stash") or [])
    task = stash.pop() if stash else None
    if task is not None and task.get("resume"):  # an interrupted card comes back as it was
        resume = dict(task["resume"])
        task = {k: v for k, v in task.items() if k != "resume"}  # type: ignore[assignment]
        pending = resume["pending"]
        title = PROPOSAL_TITLES.get(pending.get("kind", ""), pending.get("kind", ""))
        return Command(goto="review", update={
            "stash": stash, "task": task, "pending": pending, "notes": resume.get("notes", []),
            "rejected": resume.get("rejected", []), "review_error": None,
            "messages": [{"role": "assistant", "content": f"Back to the proposal you were reviewing: {title} — "
                          f"{prompts.summarise(pending.get('kind', ''), pending.get('data'))}."}]})
    if task is None and state.get("premise"):
        task = next_task(runtime.context.canon, runtime.context)
        if task is None:
            task = storyboard.next_storyboard_task(runtime.context.canon, runtime.context)
        if task is None:
            task = voices.next_voice_task(runtime.context.canon, runtime.context)
        if task is None:
            task = cut.next_cut_task(runtime.context.canon, runtime.context)
    base = {"stash": stash, "notes": [], "rejected": [], "pending": None, "review_error": None}
    if task is None:
        return Command(goto="wait_input", update={**base, "task": None})
    return Command(goto="propose", update={**base, "task": task})


def _open_task(state: DirectorState, task: dict[str, Any]) -> dict[str, Any]:
    """Review a storyboard item now (a click in the storyboard); the current task resumes after."""
    stash = list(state.get("stash") or [])
    entry = revisions.stash_entry(state)
    if entry is not None:
        stash.append(entry)
    return {"task": {"target_id": None, **task}, "stash": stash, "notes": [], "rejected": [], "pending": None}


def wait_input(state: DirectorState, runtime: Runtime[DirectorContext]
               ) -> Command[Literal["plan_next", "respond", "wait_input", "propose"]]:
    """Wait for a message: the premise first, then questions and change requests."""
    premise = state.get("premise")
    cast = _names(runtime.context.canon, "character") if premise else []
    example = f"make {cast[0]} older" if cast else "add a character who lives by the sea"
    prompt = ("Tell me the premise of your series: who, where, and what goes wrong."
              if not premise else
              "The writers' room is up to date. Ask about the bible, request a change "
              f"(\"{example}\"), or add a character, location or prop.")
    decision = ask(ReviewRequest(kind="input", prompt=prompt))
    if decision["type"] == "open":
        return Command(goto="propose", update=_open_task(state, decision["task"]))
    if decision["type"] != "chat":
        return Command(goto="wait_input")
    text = decision["text"].strip()
    user = {"role": "user", "content": text}
    if not premise:
        return Command(goto="plan_next", update={"premise": text, "messages": [user]})
    return Command(goto="respond", update={"reply": text, "messages": [user]})


# ----------------------------------------------------------------------------- proposing



def _names(canon: Canon, kind: str) -> list[str]:
    return [str(r.data.get("name")) for r in canon.list(kind) if r.data.get("name")]


def _retrieve(ctx: DirectorContext, task: Task, premise: str) -> tuple[list[str], list[str]]:
    """Bible records relevant to this task: ids for the record, texts for the prompt."""
    kind = task["kind"]
    kinds_for = {
        "series": ["series", "style"],
        "character": ["series", "style", "character"],
        "location": ["series", "style", "location"],
        "prop": ["series", "character", "prop", "location"],
        "outline": ["series", "character", "location"],
        "beats": ["series", "outline", "character", "location"],
        "scene": ["beats", "character", "location", "prop", "scene", "series"],
        "shots": ["character", "location", "style"],
    }
    query = " ".join(filter(None, [task.get("request", ""), premise, kind]))
    hits = ctx.bible.search(query, kinds=kinds_for.get(kind), k=ctx.retrieval_k)
    ids = [h.record_id for h in hits]
    texts = [h.text for h in hits]
    if kind == "scene":  # the whole cast and every place, so the scene can stay consistent
        for rec in [*ctx.canon.list("character"), *ctx.canon.list("location")]:
            if rec.id not in ids:
                ids.append(rec.id)
                texts.append(record_text(rec))
        beats = ctx.canon.live(f"beats-ep{task.get('episode', 1)}")
        if beats and beats.id not in ids:
            ids.append(beats.id)
            texts.append(record_text(beats))
    if kind == "shots":
        scene = ctx.canon.get(task["scene_id"])
        lines = "; ".join(f"line {i}: {ln.get('speaker')} ({ln.get('emotion')}): {ln.get('line')}"
                          for i, ln in enumerate(scene.data.get("lines", []), 1))
        ids.insert(0, scene.id)
        texts.insert(0, f"Scene {scene.id} '{scene.data.get('title')}' at {scene.data.get('location')} — "
                        f"{scene.data.get('action')} Dialogue: {lines}")
        return ids, [t[:900] if i == 0 else t[:400] for i, t in enumerate(texts)]
    return ids, [t[:400] for t in texts]


def _current_data(canon: Canon, task: Task) -> dict[str, Any] | None:
    target = task.get("target_id")
    if not target:
        return None
    if task["kind"] == "series":
        series, style = canon.live("series"), canon.live("style")
        return {**(series.data if series else {}), **(style.data if style else {})}
    rec = canon.live(target)
    return dict(rec.data) if rec else None


def _shape_fix(kind: str, data: dict[str, Any], cast: list[str], places: list[str]) -> list[str]:
    """Make a draft consistent with canon when the model would not; returns what was changed."""
    fixed: list[str] = []
    if kind == "scene" and cast and places:
        def closest(name: str, options: list[str]) -> str:
            match = difflib.get_close_matches(name, options, n=1, cutoff=0.0)
            return match[0] if match else options[0]
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
    if kind == "shots":
        speakers = list(data.pop("_speakers", []) or [])
        n_lines = int(data.pop("_n_lines", 0))
        want = int(data.pop("_want_shots", 0) or 0)
        if want and len(data["shots"]) != want:
            fixed.append(f"{len(data['shots'])} shots -> {want} (as asked)")
            framings = ["wide", "medium", "close-up", "extreme close-up", "establishing"]
            while len(data["shots"]) < want:
                extra = {**data["shots"][-1], "lines": [], "characters": list(data["shots"][-1]["characters"])}
                extra["framing"] = framings[len(data["shots"]) % len(framings)]
                data["shots"].append(extra)
            dropped = [n for sh in data["shots"][want:] for n in sh["lines"]]
            data["shots"] = data["shots"][:want]
            data["shots"][-1]["lines"] = sorted({*data["shots"][-1]["lines"], *dropped})
        covered: set[int] = set()
        for shot in data["shots"]:
            for ch in shot["characters"]:
                if cast and ch["name"] not in cast:
                    new = difflib.get_close_matches(ch["name"], cast, n=1, cutoff=0.0)[0]
                    fixed.append(f"character {ch['name']!r} -> {new!r}")
                    ch["name"] = new
            unique = list({ch["name"]: ch for ch in reversed(shot["characters"])}.values())[::-1]
            if len(unique) < len(shot["characters"]):   # two spellings that name the same person
                fixed.append("character listed twice in a shot -> once")
                shot["characters"] = unique
            if places and shot.get("location") and shot["location"] not in places:
                new = difflib.get_close_matches(shot["location"], places, n=1, cutoff=0.0)[0]
                fixed.append(f"location {shot['location']!r} -> {new!r}")
                shot["location"] = new
            shot["lines"] = [n for n in shot["lines"] if 1 <= n <= n_lines and n not in covered]
            covered.update(shot["lines"])
        missing = [n for n in range(1, n_lines + 1) if n not in covered]
        for n in missing:  # give each uncovered line a shot: the shot before it in order, else the last
            target = max((sh for sh in data["shots"] if sh["lines"] and max(sh["lines"]) < n),
                         key=lambda sh: max(sh["lines"]), default=data["shots"][-1])
            target["lines"] = sorted([*target["lines"], n])
        if missing:
            fixed.append(f"dialogue lines {missing} assigned to shots")
        split: list[dict[str, Any]] = []   # a shot with more lines than fit takes the next ones in a copy
        for shot in data["shots"]:
            lines = sorted(shot["lines"])
            for k in range(0, max(1, len(lines)), MAX_LINES_PER_SHOT):
                split.append({**shot, "lines": lines[k:k + MAX_LINES_PER_SHOT],
                              "characters": [dict(ch) for ch in shot["characters"]]})
        if len(split) > len(data["shots"]):
            fixed.append(f"{len(data['shots'])} shots -> {len(split)}: at most {MAX_LINES_PER_SHOT} lines a shot")
            data["shots"] = split
        for i, shot in enumerate(data["shots"], 1):  # a shot with dialogue shows its speaker
            names = {ch["name"] for ch in shot["characters"]}
            for n in shot["lines"]:
                who = speakers[n - 1] if n <= len(speakers) else None
                if who and who in cast and who not in names and len(shot["characters"]) < 3:
                    shot["characters"].append({"name": who, "expression": "neutral", "pose": ""})
                    names.add(who)
                    fixed.append(f"shot {i}: speaker {who} put in the shot")
        # a medium or close shot of no one is an empty landscape: frame the scene's people instead
        people = [w for w in dict.fromkeys(speakers) if w in cast] or cast[:2]
        for i, shot in enumerate(data["shots"], 1):
            if people and not shot["characters"] and shot.get("framing") not in ("establishing", "wide"):
                n = 1 if "close" in str(shot.get("framing")) else 2
                chosen = [people[(i - 1 + k) % len(people)] for k in range(min(n, len(people)))]
                shot["characters"] = [{"name": w, "expression": "neutral", "pose": ""} for w in chosen]
                fixed.append(f"shot {i}: {shot.get('framing')} of no one framed on {', '.join(chosen)}")
    if kind == "outline":
        for i, ep in enumerate(data["episodes"], 1):
            if ep["number"] != i:
                fixed.append(f"episode {ep['number']} renumbered {i}")
                ep["number"] = i
    if kind == "beats" and beats_problems(data):
        beats = data["beats"]
        beats[0]["kind"], beats[-1]["kind"] = "hook", "cliffhanger"
        if not any(b["kind"] == "twist" for b in beats):
            beats[len(beats) // 2 if len(beats) > 2 else -1]["kind"] = "twist"
        fixed.append("beat kinds reordered into hook … twist … cliffhanger")
    return fixed


def propose(state: DirectorState, runtime: Runtime[DirectorContext]) -> Command[Literal["review"]]:
    """Retrieve from the bible, ask the LLM for one validated proposal, put it on the card."""
    ctx = runtime.context
    task: Task = state["task"] or {"kind": "series"}
    kind = task["kind"]
    prev = state.get("pending") or {}
    attempt = int(prev.get("attempt", 0)) + 1 if prev.get("kind") == kind else 1
    seed = int(prev.get("seed", 0)) + 1 if prev else 0
    pending: Pending = {"proposal_id": uuid.uuid4().hex[:12], "kind": kind,
                        "target_id": task.get("target_id"), "data": None, "failure": None,
                        "warnings": [], "retrieved": [], "attempt": attempt, "seed": seed}
    cast, places = _names(ctx.canon, "character"), _names(ctx.canon, "location")
    if kind in storyboard.VISUAL_KINDS:
        return media.propose_visual(state, ctx, task, pending)
    if kind in voices.AUDIO_KINDS:
        return media.propose_audio(state, ctx, task, pending)
    if kind == "translation":
        return media.propose_translation(state, ctx, task, pending)
    if kind == "motion":
        try:
            data = cut.propose_motion(ctx.canon, task["scene_id"], list(state.get("notes") or []))
            cut.animate_shots(ctx, data, pending["proposal_id"])
            data["preview"] = cut.render_preview(ctx, task["scene_id"], data, pending["proposal_id"])
            pending["data"] = validate_proposal("motion", data)
        except StoryreelError as exc:
            pending["failure"] = str(exc)
        return media.finish_proposal(state, ctx, task, pending, f"{task['scene_id']}, "
                                f"{len((pending['data'] or {}).get('shots', []))} shots with a preview")
    try:
        if kind == "shots" and task.get("shot_edit") and attempt == 1:
            _shot_edit(ctx, task, pending)
        else:
            _generate(state, ctx, task, pending, cast, places)
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    except ValidationError as exc:  # a draft the shape fixes could not make valid
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        pending["failure"] = f"the {PROPOSAL_TITLES.get(kind, kind).lower()} draft is not valid: {problems}"
    ctx.ledger.append(actor="assistant", action="propose" if not pending["failure"] else "propose-failed",
                      record_id=task.get("target_id"), kind=kind,
                      inputs={"proposal_id": pending["proposal_id"], "task": task,
                              "retrieved": pending["retrieved"], "notes": state.get("notes") or [],
                              "data": pending["data"]},
                      note=pending["failure"] or prompts.summarise(kind, pending["data"]))
    title = PROPOSAL_TITLES.get(kind, kind)
    text = (f"Proposal: {title} — {prompts.summarise(kind, pending['data'])}. Review it on the card."
            if not pending["failure"] else f"I could not make a {title.lower()} proposal: "
            f"{pending['failure']}. Press Redo to try again, or edit the fields yourself"
            + (" (the form starts from what the model got right, with safe defaults for "
               f"{', '.join(f.split(':')[0] for f in pending.get('fallbacks') or []) or 'nothing'})."
               if pending.get("draft") else "."))
    return Command(goto="review", update={"pending": pending, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _generate(state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending,
              cast: list[str], places: list[str]) -> None:
    """Ask the model for one proposal, repaired in bounds; put it (or a failure with a safe draft) in
    `pending`. Known fields are the app's; a revision keeps every field its request does not touch."""
    kind = task["kind"]
    ids, texts = _retrieve(ctx, task, state.get("premise", ""))
    pending["retrieved"] = ids
    if kind == "shots" and task.get("target_id"):
        current = revisions.current_plan(ctx.canon, task["scene_id"])
    else:
        current = _current_data(ctx.canon, task)
    if current is not None:
        try:
            current = validate_proposal(kind, current)  # canon as a proposal (no line ids, no extras)
        except ValidationError:
            pass
    existing = {"character": cast, "location": places, "prop": _names(ctx.canon, "prop")}
    notes = list(state.get("notes") or [])
    messages = prompts.proposal_messages(
        kind=kind, premise=state.get("premise", ""), bible=texts, task=task,
        notes=notes, rejected=list(state.get("rejected") or []),
        current=current, existing_names=existing.get(kind, []) if current is None else [],
        episodes=ctx.targets.episodes)
    model = proposal_model(kind, cast=cast, places=places, episodes=ctx.targets.episodes)
    check = None
    scene_data = ctx.canon.get(task["scene_id"]).data if kind == "shots" else {}
    if kind == "shots":
        def check(p: Any) -> list[str]:
            return shots_problems(p.model_dump(), scene_data, cast, places)
    elif kind == "scene":
        def check(p: Any) -> list[str]:
            return scene_problems(p.model_dump(), cast, places)
    elif kind == "beats":
        def check(p: Any) -> list[str]:
            return beats_problems(p.model_dump())
    known = revisions.known_fields(kind, task)

    def finish(data: dict[str, Any]) -> tuple[dict[str, Any], list[str], dict[str, list[Any]] | None]:
        data = media.unescape({**data, **known})
        if kind == "shots":
            data["_n_lines"], data["_want_shots"] = len(scene_data.get("lines", [])), ctx.targets.shots
            data["_speakers"] = [str(ln.get("speaker", "")) for ln in scene_data.get("lines", [])]
        warnings = [f"auto-fixed: {f}" for f in _shape_fix(kind, data, cast, places)]
        data = validate_proposal(kind, data)
        applied = notes
        if current is not None and task.get("request"):
            data, merged = revisions.merge_revision(kind, current, data, task["request"])
            warnings += merged
            applied = [task["request"], *notes]   # "make the palette navy, cream" is a value too
        data, noted = note_parser.apply_notes(applied, data, PROPOSAL_MODELS[kind])
        warnings += noted
        data = validate_proposal(kind, data)
        if current is None:
            return data, warnings, None
        diff = revisions.field_diff(current, data)
        if not diff:
            warnings.append("this draft changes nothing in canon yet: Reject with a note that names the value "
                            "(for example “age: 40”), or Edit it yourself")
        return data, warnings, diff

    try:
        data = generate_structured(ctx.llm, messages, model, retries=ctx.repair_retries, check=check,
                                   seed=pending["seed"], known=known,
                                   prepare=revisions.canonical_names(kind, cast, places)).model_dump()
    except LLMOutputError as exc:
        # Valid JSON that only broke a canon rule is fixable; anything else is a failure card that
        # still offers a safe draft (the model's usable fields, named defaults for the rest).
        data = media.parse_lenient(PROPOSAL_MODELS[kind], exc)
        if data is None:
            try:
                draft, fallbacks = salvage(
                    kind, getattr(exc, "partial", None), premise=state.get("premise", ""), cast=cast,
                    places=places, taken=existing.get(kind, []), task=dict(task), scene=scene_data,
                    episodes=ctx.targets.episodes, shots=ctx.targets.shots, known=known)
                pending["draft"], draft_warnings, _ = finish(draft)
                pending["fallbacks"] = fallbacks + [w for w in draft_warnings if w.startswith("note")]
            except (StoryreelError, ValidationError, KeyError):
                pending["draft"] = None
            raise
    pending["data"], pending["warnings"], diff = finish(data)
    if diff is not None:
        pending["diff"] = diff


def _shot_edit(ctx: DirectorContext, task: Task, pending: Pending) -> None:
    """A panel note asked for what only the shot plan can give: the plan with that shot changed,
    shown as a difference against the accepted plan (no model call)."""
    current = revisions.current_plan(ctx.canon, task["scene_id"])
    data = validate_proposal("shots", revisions.shot_edit_plan(ctx.canon, task["shot_edit"]))
    pending["retrieved"] = [task["scene_id"], task["shot_edit"]["shot_id"]]
    pending["data"] = data
    pending["diff"] = revisions.field_diff(current, data)
    pending["warnings"] = [(f"from your note on the panel of {task['shot_edit']['shot_id']}: "
                            f"“{task.get('request', '')}”. Accept it and the panel is drawn again.")]


# ----------------------------------------------------------------------------- reviewing


def review_request(state: DirectorState) -> ReviewRequest:
    pending = state.get("pending") or {}
    kind = pending.get("kind", "")
    title = PROPOSAL_TITLES.get(kind, kind)
    if pending.get("target_id"):
        title = f"{title} (revision of {pending['target_id']})"
    return ReviewRequest(kind=kind, proposal_id=pending.get("proposal_id", ""), title=title,
                         data=pending.get("data"), target_id=pending.get("target_id"),
                         failure=pending.get("failure"), warnings=list(pending.get("warnings") or []),
                         error=state.get("review_error"), attempt=int(pending.get("attempt", 1)),
                         **({"diff": pending["diff"]} if pending.get("diff") else {}),
                         **({"draft": pending["draft"], "fallbacks": list(pending.get("fallbacks") or [])}
                            if pending.get("draft") else {}))


def review(state: DirectorState, runtime: Runtime[DirectorContext]
           ) -> Command[Literal["commit", "propose", "respond", "review", "wait_input", "plan_next"]]:
    """The review gate: accept, edit, reject with a note, redo, skip, or chat."""
    decision = ask(review_request(state))
    pending = state.get("pending") or {}
    kind, kind_t = pending.get("kind", ""), decision["type"]
    if kind_t == "skip":  # leave this step (a failure card, or any card): agent.guard
        return guard.leave_step(state, dict(decision), runtime.context)
    if kind_t == "redo" and (retry := guard.retry_failed_step(state)) is not None:
        return retry
    if kind_t == "open":
        return Command(goto="propose", update=_open_task(state, decision["task"]))
    if kind_t == "edit" and kind in voices.AUDIO_KINDS:
        try:
            adjust = validate_proposal(kind, decision.get("data") or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return Command(goto="review", update={"review_error": f"The adjustment is not valid: {problems}"})
        if kind == "take":
            adjust["text"] = adjust.pop("spoken_text", "")
        task = {**(state.get("task") or {}), "overrides": adjust}
        return Command(goto="propose", update={"task": task})
    if kind_t == "upload" and kind == "take":
        return Command(goto="commit", update={"pending": {**pending, "upload": decision["path"],
                                                          "decided": "upload",
                                                          "actor": decision.get("actor", "human")}})
    if kind_t in ("accept",) and kind in voices.AUDIO_KINDS:
        if not (pending.get("data") or {}).get("candidates"):
            return Command(goto="review", update={
                "review_error": "There is no take to accept: press Redo, or upload a recording."})
        return Command(goto="commit", update={"pending": {**pending, "decided": "accept",
                                                          "actor": decision.get("actor", "human")}})
    if kind_t == "upload" and kind in storyboard.VISUAL_KINDS:
        return Command(goto="commit", update={"pending": {**pending, "upload": decision["path"],
                                                          "decided": "upload",
                                                          "actor": decision.get("actor", "human")}})
    if kind_t == "chat":
        text = decision["text"].strip()
        return Command(goto="respond", update={"reply": text,
                                               "messages": [{"role": "user", "content": text}]})
    if kind_t in ("accept", "edit") and kind in storyboard.VISUAL_KINDS:
        if not (pending.get("data") or {}).get("candidates"):
            return Command(goto="review", update={
                "review_error": "There is no image to accept: press Redo, or upload your own."})
        return Command(goto="commit", update={"pending": {**pending, "choice": int(decision.get("choice", 0)),
                                                          "decided": "accept",
                                                          "actor": decision.get("actor", "human")}})
    if kind_t == "upload":
        return Command(goto="review", update={
            "review_error": "Uploads replace images and takes; edit the fields of this proposal instead."})
    if kind_t in ("accept", "edit"):
        data = decision.get("data") if kind_t == "edit" else pending.get("data")
        if data is None:
            return Command(goto="review", update={
                "review_error": "There is no proposal to accept: press Redo, or Edit to write it yourself."})
        try:
            data = validate_proposal(kind, data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            return Command(goto="review", update={"review_error": f"The edit is not valid: {problems}"})
        return Command(goto="commit", update={"pending": {**pending, "data": data,
                                                          "decided": kind_t,
                                                          "actor": decision.get("actor", "human")}})
    ctx = runtime.context
    attempt = int(pending.get("attempt", 1))
    note = decision.get("note", "").strip()
    ctx.ledger.append(actor=decision.get("actor", "human"), action=kind_t, record_id=pending.get("target_id"),
                      kind=kind, inputs={"proposal_id": pending.get("proposal_id"), "note": note},
                      note=note)
    if attempt >= MAX_ATTEMPTS:
        return Command(goto="wait_input", update={
            "pending": None, "task": None, "messages": [{"role": "assistant", "content": (
                f"That was draft {attempt} of this {kind}; I'll stop here so we don't loop. Tell me "
                "what you want in a message, or write it yourself with Edit on a new proposal.")}]})
    if kind_t == "reject" and kind == "panel" and note and pending.get("data"):
        revision = _panel_note_revision(state, ctx, pending, note)
        if revision is not None:
            return revision
    update: dict[str, Any] = {}
    if kind == "casting" and pending.get("data"):
        task = dict(state.get("task") or {})
        prof = {k: pending["data"][k] for k in voices.PROFILE_FIELDS if k in pending["data"]}
        task["rejected_profiles"] = [*task.get("rejected_profiles", []), prof]
        task.pop("overrides", None)
        update["task"] = task
    if kind_t == "reject":
        update["rejected"] = [*(state.get("rejected") or []), prompts.summarise(kind, pending.get("data"))]
        if note:
            update["notes"] = [*(state.get("notes") or []), note]
            update["messages"] = [{"role": "user", "content": f"(rejected) {note}"}]
    return Command(goto="propose", update=update)


def _panel_note_revision(state: DirectorState, ctx: DirectorContext, pending: Pending, note: str
                         ) -> Command | None:
    """A panel note asking for what the painter cannot add by itself (a cast member who is not in
    the shot, another framing) becomes a shot-plan revision; the panel is redrawn after it."""
    subject = (pending.get("data") or {}).get("subject") or (state.get("task") or {}).get("subject")
    try:
        shot = ctx.canon.get(str(subject))
    except StoryreelError:
        return None
    changes = note_parser.panel_note_changes(note, shot.data, _names(ctx.canon, "character"))
    if not changes or not shot.data.get("scene_id"):
        return None
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


# ----------------------------------------------------------------------------- committing


def _record_id_for(kind: str, data: dict[str, Any]) -> str | None:
    if kind == "beats":
        return f"beats-ep{data['episode']}"
    if kind == "scene":
        return f"scene-ep{data['episode']}-{data['number']}"
    if kind in ("outline", "series", "style"):
        return kind
    if kind == "motion":
        return cut.motion_id(data["scene_id"])
    return None


def write_proposal(ctx: DirectorContext, kind: str, data: dict[str, Any], target_id: str | None,
                   *, actor: str, note: str) -> list[Record]:
    """Turn an accepted proposal into canon records (new, or a new revision of the target)."""
    canon = ctx.canon
    if kind == "series":
        series = {k: data[k] for k in ("title", "logline")}
        style = {k: data[k] for k in ("art_style", "palette", "tone", "target_episode_seconds")}
        return [canon.upsert("series", series, actor=actor, record_id="series", note=note),
                canon.upsert("style", style, actor=actor, record_id="style", note=note)]
    record_id = target_id or _record_id_for(kind, data)
    if kind == "scene":  # stable line ids: takes and captions refer to them in later slices
        data["lines"] = [{**line, "id": f"{record_id}-l{i}"} for i, line in enumerate(data["lines"], 1)]
    records = [canon.upsert(kind, data, actor=actor, record_id=record_id, note=note)]
    if kind == "outline":
        for ep in data["episodes"]:
            records.append(canon.upsert("episode", dict(ep), actor=actor, record_id=f"episode-{ep['number']}",
                                        note=note))
    return records


def commit(state: DirectorState, runtime: Runtime[DirectorContext]) -> Command[Literal["plan_next"]]:
    """Write the accepted proposal to canon, the ledger and the bible index, then plan the next one.

    Canon first, in one transaction keyed by the proposal id (`Canon.commit_proposal`): this node
    re-runs from its first line after a crash, and a second run returns the stored records instead
    of writing them again. The ledger lines are derived from canon's commit row (`Ledger.complete`
    appends whichever a crash left out), and the bible index is a cache rebuilt from canon.
    """
    ctx = runtime.context
    pending = state.get("pending") or {}
    kind, pid = pending["kind"], pending["proposal_id"]
    actor = pending.get("actor", "human")
    action = pending.get("decided", "accept")
    note = f"proposal {pid}"

    def write() -> list[Record]:
        # Runs inside the canon transaction: every canon write below belongs to this proposal.
        if kind in storyboard.VISUAL_KINDS:
            return [storyboard.accept_image(ctx, pending["data"], choice=pending.get("choice"),
                                            upload=pending.get("upload"), actor=actor, note=note)]
        if kind == "shots":
            return storyboard.write_shot_plan(ctx.canon, dict(pending["data"]), actor=actor, note=note)
        if kind in voices.AUDIO_KINDS:
            return voices.accept_audio(ctx, kind, dict(pending["data"]), upload=pending.get("upload"),
                                       actor=actor, note=note)
        if kind == "translation":
            return voices.write_translation(ctx.canon, dict(pending["data"]), actor=actor, note=note)
        return write_proposal(ctx, kind, dict(pending["data"]), pending.get("target_id"),
                              actor=actor, note=note)

    records, _ = ctx.canon.commit_proposal(
        pid, write, kind=kind, actor=actor, action=action, note=note,
        inputs={"retrieved": pending.get("retrieved", []), "notes": state.get("notes") or [],
                "premise": state.get("premise")})
    crash_point("after-canon-write")
    ctx.ledger.complete(ctx.canon, pid)
    crash_point("after-ledger-write")
    for rec in records:
        ctx.bible.index(ctx.canon.get(rec.id))  # the record as it is now (a later undo included)
        crash_point("mid-bible-index")
    names = ", ".join(f"{r.id} (rev {r.rev})" for r in records) or "nothing to change"
    verb = {"edit": "Edited and accepted", "upload": "Your upload is accepted as"}.get(action, "Accepted")
    who = " automatically (--auto-accept)" if actor == "auto" else ""
    return Command(goto="plan_next", update={
        "pending": None, "task": None, "review_error": None,
        "messages": [{"role": "assistant", "content": f"{verb}{who}: {names}. It is canon now."}]})


