"""`storyreel make`: the whole pipeline without a human at the controls.

Every proposal is accepted automatically and every acceptance is logged with actor `auto`, so the
ledger never claims a person decided it. A failed proposal is redone a few times; then, when the card
offers a safe draft (the model's usable fields plus named defaults: the "dusk" palette, a generic
prop, a logline from the premise), that draft is accepted as an `auto` edit and each default is
logged in the ledger as an `auto` "fallback" with a note, so model junk never stops the episode.
Only a failure without a draft (a painter or voice error) stops the run, naming the card; nothing
accepted so far is lost and `storyreel studio` continues from there.

Takes are checked by ear in the background as they are made (agent.take_checks); before the cut,
`make` waits for the checks still running (bounded) and records each result in its take (actor
`auto`), then names the flagged takes.

The targets (characters, locations, props, episodes, scenes, shots) are written into the
project.toml of a project `make` creates, so the studio and the chat plan the same series.

`--episodes N` makes episodes 1…N in turn: each later one is started (agent.episodes) after the one
before is cut (whose story so far, its summary and continuity facts, was accepted right after its
scenes), and each is rendered to renders/epNN/. `--episode N` continues an existing series with episode N.
`--cold-open` opens each episode from 2 on with a "previously on" (agent.kinds.recap), accepted as `auto`.
A new project's first card is the director's vision (agent.kinds.vision): `--vision FILE` (TOML,
Markdown or text) is accepted as the director's (actor `human`), else the premise, as `auto`.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from agent.context import Targets
from memory.errors import BackendError, InputError
from ui.settings import Settings

if TYPE_CHECKING:
    from agent.llm import ChatModel
    from ui.session import DirectorSession, SessionView

MAX_REDOS = 3
DRAFT_WAIT_S = 1800.0   # how long `make` waits for one card's drawing jobs before it stops, naming it


def make_targets(shots: int, episodes: int = 1) -> Targets:
    """What `make` plans in a project it creates (short episodes; an outline of at least 3)."""
    return Targets(characters=2, locations=1, props=1, episodes=max(3, episodes), scenes=1, shots=shots)


def open_or_create(path: Path, *, shots: int = 4, episodes: int = 1):
    """The project at `path`, or a new one there with make's targets in its project.toml."""
    from memory.project import create_project, open_project, slugify_project_name

    path = Path(path).expanduser()
    if (path / "project.toml").exists():
        return open_project(path)
    if path.exists() and any(path.iterdir()):
        raise InputError(f"{path} exists and is not a Storyreel project; pick an empty or new folder")
    if path.exists():
        path.rmdir()
    if slugify_project_name(path.name) != path.name:
        raise InputError(f"--project {path}: use a folder name like {slugify_project_name(path.name)!r}")
    return create_project(path.parent, path.name, targets=make_targets(shots, episodes).as_settings())


def run_make(settings: Settings, premise: str | None, project_dir: Path, *, shots: int = 4, language: str = "en",
             music: Path | None = None, out: TextIO = sys.stdout, model: ChatModel | None = None,
             jobs: str | None = "settings", episodes: int = 1, episode: int | None = None,
             cold_open: bool = False, vision: Path | None = None, redos: int = MAX_REDOS) -> int:
    """Run the pipeline to finished episodes: 1…`episodes` (each started in turn, with the story so
    far of the one before accepted between them), or only `episode` of an existing series. Each
    episode is rendered to renders/epNN/. `model`: a ChatModel to use instead of the configured
    or embedded one (tests pass a scripted one); it is not closed here. `jobs`: the job runner that
    draws the pictures ("settings": project.toml's [jobs]; "inprocess"; "ray", `--jobs ray`).
    `cold_open`: each episode from 2 on opens on a "previously on" of the one before (`--cold-open`),
    proposed before its cut and accepted as `auto`; one that cannot be made is said and left out.
    `vision`: the director's vision file (`--vision`, agent.kinds.vision.parse_vision_file), the
    first card of a new project, accepted as theirs (actor `human`); without it the premise is the
    vision, accepted as `auto`. `redos`: how many times a failed card is redone before its safe
    draft is accepted (`--redos`; 0 accepts the safe draft at the first failure)."""
    from agent.brain import close_chat_model, open_chat_model
    from ui.session import open_session

    if not 1 <= shots <= 12:
        raise InputError(f"--shots {shots}: choose 1 to 12 shots")
    if not 1 <= episodes <= 12:
        raise InputError(f"--episodes {episodes}: choose 1 to 12 episodes")
    if not 0 <= redos <= 10:
        raise InputError(f"--redos {redos}: choose 0 to 10 redos of a failed card")
    if episode is not None and episode < 1:
        raise InputError(f"--episode {episode}: use the episode number to make (2, 3, …)")
    wanted = [episode] if episode is not None else list(range(1, episodes + 1))
    vision_data = None
    if vision is not None:   # read it first: a bad file stops make before anything is made
        from agent.kinds.vision import parse_vision_file

        vision_data = parse_vision_file(vision, premise)
        premise = premise or vision_data["premise"]
    if episode is not None and not (Path(project_dir).expanduser() / "project.toml").exists():
        raise InputError(f"--episode {episode} continues an existing series, but {project_dir} is not a Storyreel "
                         "project; make it first with `storyreel make \"PREMISE\" --project DIR --auto-accept`")
    project = open_or_create(project_dir, shots=shots, episodes=max(wanted))
    (project.root / "state").mkdir(exist_ok=True)
    targets = replace(Targets.from_settings(project.settings), shots=shots)   # the project's, --shots wins
    if max(wanted) > targets.episodes:   # the outline is planned with enough episodes
        targets = replace(targets, episodes=max(wanted))
    targets = replace(targets, min_episodes=max(wanted))   # and has them: the model cannot write fewer
    own_model = model is None
    if model is None:
        model = open_chat_model(settings.llm_settings(project), log_path=project.root / "state" / "llm-server.log")

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    t0 = time.perf_counter()
    try:
        session = open_session(project, model, targets=targets, actor="auto", take_check=settings.take_check,
                               jobs=jobs)
        with session:
            say(f"storyreel make · {project.root} · model: {model.description}")
            view = session.start()
            if not session.canon.list("series"):
                if not premise:
                    raise InputError(f"{project.root} has no series yet: give the premise")
                view = _vision_first(session, session.send(premise), vision_data, say)
            for number in wanted:
                if number > 1 or len(wanted) > 1:
                    say(f"— Episode {number} —")
                if number > 1:
                    view = session.start_episode(number)
                view = decide_all(session, view, say, redos=redos)
                if cold_open and number > 1:
                    view = _add_cold_open(session, view, number, say, redos=redos)
                _cut(session, project, number, language, music, say, out, t0)
    finally:
        if own_model:
            close_chat_model(model)
    return 0


def _add_cold_open(session: DirectorSession, view: SessionView, episode: int,
                   say: Callable[[str], None], *, redos: int = MAX_REDOS) -> SessionView:
    """Episode `episode`'s "previously on", accepted as `auto`; one that cannot be made is said."""
    from agent.kinds.recap import cold_open_id

    if session.canon.live(cold_open_id(episode)) is not None:   # [series] cold_open = true made it already
        return view
    try:
        view = session.add_cold_open(episode)
    except InputError as exc:
        say(f"  ! no 'previously on' for episode {episode}: {exc}")
        return view
    return decide_all(session, view, say, redos=redos)


def _cut(session: DirectorSession, project: Any, episode: int, language: str, music: Path | None,
         say: Callable[[str], None], out: TextIO, t0: float) -> None:
    """Record the ear checks, then render `episode` into renders/epNN/ and say what was made."""
    from agent.cut import render_cut

    if session.take_checks is not None and not session.take_checks.unavailable:
        say("Waiting for the takes' ear checks…" if session.take_checks.busy else "Recording the ear checks…")
        session.record_take_checks()    # bounded wait; checks still running stay beside their WAVs
        takes = session.canon.list("take")
        heard = [t for t in takes if "heard" in (t.data.get("check") or {})]
        flagged = [t.id for t in heard if t.data["check"].get("flagged")]
        say(f"  {len(heard)} of {len(takes)} takes checked by ear; flagged: {', '.join(flagged) or 'none'}")
    say(f"Cutting the episode (episode {episode})…")

    def bar(fraction: float, message: str) -> None:
        filled = int(fraction * 30)
        out.write(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}% {message[:50]:<50}")
        out.flush()
    result = render_cut(session.canon, project.root, episode=episode, language=language, music=music,
                        progress=bar)
    out.write("\n")
    for warning in result.warnings:   # the bar overwrote them: say them once more, plainly
        say(f"  ! {warning}")
    autos = sum(1 for e in session.ledger.entries() if e["actor"] == "auto")
    say(f"Done in {time.perf_counter() - t0:.1f} s: {result.mp4}")
    say(f"  captions {result.srt.name}, {result.vtt.name}; timeline {result.otio.name}; "
        f"contact sheet {result.contact_sheet.name}; {result.duration_s:.1f} s long")
    say(f"  {autos} automatic decisions are in {project.ledger_path.name} with actor 'auto'")


def _vision_first(session: DirectorSession, view: SessionView, vision: dict[str, Any] | None,
                  say: Callable[[str], None]) -> SessionView:
    """A new project's first card, the vision: the director's `--vision` file, theirs (actor
    `human`); without one `decide_all` accepts the premise as the vision (actor `auto`)."""
    pending = view.pending or {}
    if vision is None or pending.get("kind") != "vision":
        return view
    view = session.decide({"type": "edit", "data": dict(vision), "actor": "human",
                           "proposal_id": pending.get("proposal_id", "")})
    say(f"[  0] vision      your --vision file: {len(vision['themes'])} themes, {len(vision['never'])} never-rules "
        "(actor 'human')")
    return view


def decide_all(session: DirectorSession, view: SessionView, say: Callable[[str], None], *,
               redos: int = MAX_REDOS) -> SessionView:
    """Accept every proposal as `auto` until the agent waits for input. A failed card is redone
    ``redos`` times (MAX_REDOS by default), then its safe draft is accepted (`accept_fallback`); BackendError names a card
    that failed without one."""
    t0 = time.perf_counter()
    step, tries = 0, 0
    while view.awaiting_decision:
        pending = dict(view.pending or {})
        kind, title = pending.get("kind"), pending.get("title", "")
        drafting = (pending.get("data") or {}).get("drafting")
        if drafting and not pending.get("failure"):   # drawn as jobs: wait for them, never accept a draft
            say(f"  … {title}: waiting for {len(drafting.get('jobs', []))} jobs ({drafting.get('label')})")
            view = session.wait_for_drafts(DRAFT_WAIT_S)
            if (view.pending or {}).get("proposal_id") == pending.get("proposal_id") and not \
                    (view.pending or {}).get("failure") and ((view.pending or {}).get("data") or {}).get("drafting"):
                raise BackendError(f"{title}: its jobs did not finish in {DRAFT_WAIT_S:.0f} s; the card is "
                                   "still drafting in the project, open `storyreel studio` to follow it")
            continue
        if pending.get("failure") or not pending.get("data"):
            tries += 1
            if tries > redos and pending.get("draft"):
                step += 1
                view = accept_fallback(session, pending)
                say(f"[{step:3d}] {kind:<11} fallback after {redos} redos: "
                    f"{'; '.join(pending.get('fallbacks') or [])[:160]}")
                tries = 0
                continue
            if tries > redos:
                raise BackendError(f"{title}: {pending.get('failure')} (after {redos} redos)")
            say(f"  ! {title}: {pending.get('failure')} — redo {tries}/{redos}")
            view = session.decide({"type": "redo", "proposal_id": pending.get("proposal_id", "")})
            continue
        tries = 0
        step += 1
        view = session.decide({"type": "accept", "proposal_id": pending.get("proposal_id", "")})
        last = next((m["content"] for m in reversed(view.messages) if m["content"].startswith(
            ("Accepted", "Edited"))), "")
        say(f"[{step:3d}] {kind:<11} {last[:100]}  ({time.perf_counter() - t0:5.1f} s)")
    return view


def accept_fallback(session: DirectorSession, pending: dict[str, Any]) -> SessionView:
    """Accept a failed card's safe draft as an `auto` edit, logging each default it holds."""
    record = pending.get("target_id") or pending.get("kind")
    for note in pending.get("fallbacks") or ["the model's reply could not be used"]:
        session.ledger.append(actor="auto", action="fallback", record_id=pending.get("target_id"),
                              kind=pending.get("kind", ""),
                              inputs={"proposal_id": pending.get("proposal_id"), "failure": pending.get("failure")},
                              note=f"{record}: {note}")
    return session.decide({"type": "edit", "data": dict(pending["draft"]), "actor": "auto",
                           "proposal_id": pending.get("proposal_id", "")})
