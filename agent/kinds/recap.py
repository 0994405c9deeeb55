"""The "previously on" cold open of an episode: 3–6 s cut from accepted shots of the episode before.

`cold_open`: for episode N (2 or later), 2–4 picks — a shot of episode N-1, and the stretch of it
(`in_s`–`out_s`, seconds on that shot's own clock in the cut) — plus a title ("Previously on …",
the series title), 3–6 s in all. Proposed only when asked for: in the chat ("add a previously on to
episode 2": agent.tools.episodes' `cold_open`), the studio's button (`DirectorSession.add_cold_open`),
`storyreel make --cold-open`, or unasked for every episode from 2 on once its shot plans are
accepted when project.toml says `[series] cold_open = true` (default false).

Drafted offline (`offline_picks`: the shot with the episode's last line, the cliffhanger, last; the
others from the last scene first, with dialogue and close-ups first), or chosen by a capable model
from the same list (its reply checked like an edit; junk falls back to the offline draft, and the
card says so). Every pick is checked against canon (`check_picks`): the shot must be an accepted
shot of episode N-1 and the times inside it; an error names the bad value. The cut
(`agent.cut.episode_spec`) puts the accepted cold open before the episode: each pick is a piece of
the same render unit the episode before uses (`ShotSpec.is_piece`), the title a caption over the
first one; the SRT/VTT and the timeline (clips with `cold_open: true`) follow. Undoing or rejecting
it leaves it out of the next render.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from langgraph.types import Command
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from agent.context import DirectorContext, as_project
from agent.kinds.base import Kind, decide_fields, model_or_offline, problems_text, propose_text
from agent.kinds.cards import esc
from agent.state import DirectorState, Pending, Task
from memory.canon import Canon, Record
from memory.errors import InputError, StoryreelError

MIN_TOTAL_S, MAX_TOTAL_S = 3.0, 6.0
MIN_PICKS, MAX_PICKS = 2, 4
TARGET_S = 4.5            # what the offline draft aims for
TITLE_S = 1.8             # how long the title caption stays over the first pick
CLOSE = ("close-up", "extreme close-up", "close", "medium close-up")


def cold_open_id(episode: int) -> str:
    return f"cold-open-ep{episode}"


# ----------------------------------------------------------------------------- the proposal


class ColdOpenPick(BaseModel):
    shot: str = Field(min_length=1, max_length=200, description="the id of an accepted shot of the episode before")
    in_s: float = Field(ge=0, le=120, description="where the pick starts, seconds into that shot")
    out_s: float = Field(ge=0, le=120, description="where it ends, seconds into that shot")
    panel: str = Field(default="", max_length=400, description="the shot's panel (filled by the app)")
    line: str = Field(default="", max_length=400, description="what is said in it (filled by the app)")

    @model_validator(mode="after")
    def _ordered(self) -> ColdOpenPick:
        if self.out_s <= self.in_s:
            raise ValueError(f"pick {self.shot}: out {self.out_s} s is not after in {self.in_s} s; "
                             "give an out time later than the in time")
        return self


class ColdOpenProposal(BaseModel):
    """A "previously on" of 3–6 s: 2–4 picks of the episode before, in playing order, and a title."""

    episode: int = Field(description="the episode it opens (2 or later)")
    title: str = Field(min_length=1, max_length=120)
    picks: list[ColdOpenPick] = Field(min_length=MIN_PICKS, max_length=MAX_PICKS)

    @field_validator("episode")
    @classmethod
    def _not_first(cls, value: int) -> int:
        try:
            return check_episode_number(value)
        except InputError as exc:   # pydantic reports a ValueError as the field's error
            raise ValueError(str(exc)) from None

    @model_validator(mode="after")
    def _length(self) -> ColdOpenProposal:
        total = total_s(self.picks)
        if not MIN_TOTAL_S - 1e-6 <= total <= MAX_TOTAL_S + 1e-6:
            raise ValueError(f"the picks last {total:.2f} s in all; a previously on lasts {MIN_TOTAL_S:g}–"
                             f"{MAX_TOTAL_S:g} s: {'lengthen' if total < MIN_TOTAL_S else 'shorten'} the picks")
        return self


def total_s(picks: list[Any]) -> float:
    return round(sum(_get(p, "out_s") - _get(p, "in_s") for p in picks), 3)


def _get(pick: Any, key: str) -> float:
    return float(pick[key] if isinstance(pick, dict) else getattr(pick, key))


def check_episode_number(episode: Any) -> int:
    """`episode` as an episode that can open on a previously on; InputError names it."""
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 1:
        raise InputError(f"episode {episode!r} is not an episode number; use 2, 3, …")
    if episode < 2:
        raise InputError(f"episode {episode} has no episode before it, so it cannot open on a 'previously on'; "
                         "pick episode 2 or later")
    return episode


# ----------------------------------------------------------------------------- the episode before


def source_shots(canon: Canon, project_root: Any, episode: int, *, language: str = "en", guides: bool = False,
                 captions: str = "subtitle") -> dict[str, Any]:
    """The accepted shots of `episode` as the cut renders them (shot id → `ShotSpec`, in story
    order): what a previously on of episode+1 picks from. InputError says what is missing."""
    from agent.cut import episode_spec

    try:
        spec = episode_spec(canon, as_project(project_root), episode=episode, language=language,
                            require_motion=False, guides=guides, captions=captions, cold_open=False)
    except InputError as exc:
        raise InputError(f"episode {episode} is not ready for a 'previously on' of episode {episode + 1}: {exc}") \
            from None
    return {s.shot_id: s for s in spec.shots}


def check_picks(canon: Canon, project_root: Any, data: dict[str, Any],
                table: dict[str, Any] | None = None) -> dict[str, Any]:
    """`data` (a cold open) checked against canon, with each pick's panel and words filled in:
    every shot an accepted shot of the episode before, every time inside it. InputError names the
    bad value and the shots there are."""
    episode = check_episode_number(data.get("episode"))
    table = source_shots(canon, project_root, episode - 1) if table is None else table
    project = as_project(project_root)
    picks = []
    for k, pick in enumerate(data.get("picks") or [], 1):
        shot = table.get(str(pick.get("shot")))
        if shot is None:
            raise InputError(f"pick {k}: {pick.get('shot')!r} is not an accepted shot of episode {episode - 1}; "
                             f"pick one of {', '.join(table) or 'none (it has no accepted shots yet)'}")
        if float(pick.get("out_s", 0)) > shot.duration + 1e-6:
            raise InputError(f"pick {k} ({shot.shot_id}): out {pick.get('out_s')} s is past the end of the shot "
                             f"({shot.duration:.2f} s in the cut of episode {episode - 1}); end it by "
                             f"{math.floor(shot.duration * 100) / 100:.2f} s")
        words = " / ".join(c.text for c in shot.captions
                           if c.end > float(pick.get("in_s", 0)) and c.start < float(pick.get("out_s", 0)))
        picks.append({**pick, "panel": project.relative(shot.panel), "line": words[:400]})
    return {**data, "picks": picks}


def _scene_number(canon: Canon, shot_id: str) -> tuple[int, str]:
    shot = canon.live(shot_id)
    scene = canon.live(str(shot.data.get("scene_id"))) if shot is not None else None
    framing = str(shot.data.get("framing", "")) if shot is not None else ""
    return (int(scene.data.get("number", 0)) if scene is not None else 0), framing


def _window(shot: Any, length: float, last_line: bool) -> tuple[float, float]:
    """A stretch of `length` s of `shot`: around its (last, for the cliffhanger) line, else its middle."""
    length = min(length, shot.duration)
    if shot.captions:
        cue = shot.captions[-1] if last_line else shot.captions[0]
        start = max(0.0, min(cue.start - 0.1, shot.duration - length))
    else:
        start = max(0.0, (shot.duration - length) / 2)
    a = math.ceil(start * 100) / 100
    b = math.floor(min(shot.duration, a + length) * 100) / 100
    return a, b


def offline_picks(canon: Canon, table: dict[str, Any]) -> list[dict[str, Any]]:
    """The offline draft: the shot with the episode's last line (its cliffhanger) last, before it the
    best others (last scene first, then dialogue, then close-ups; later first on a tie), in story
    order, TARGET_S in all; a one-shot episode gives two stretches of that shot."""
    shots = list(table.values())
    if not shots:
        raise InputError("the episode before has no accepted shots to pick from")
    total = sum(s.duration for s in shots)
    if total < MIN_TOTAL_S:
        raise InputError(f"the accepted shots of the episode before last {total:.2f} s in all; a previously on "
                         f"needs at least {MIN_TOTAL_S:g} s of them")
    spoken = [s for s in shots if s.captions]
    cliff = spoken[-1] if spoken else shots[-1]
    order = {s.shot_id: i for i, s in enumerate(shots)}
    last_scene = max(_scene_number(canon, s.shot_id)[0] for s in shots)

    def score(s: Any) -> tuple[int, int]:
        number, framing = _scene_number(canon, s.shot_id)
        return (2 * (number == last_scene) + 2 * bool(s.captions) + (framing.lower() in CLOSE), order[s.shot_id])

    others = sorted((s for s in shots if s.shot_id != cliff.shot_id), key=score, reverse=True)
    if not others:   # one shot: its first and its last stretch
        half = min(cliff.duration / 2, TARGET_S / 2)
        first = (0.0, math.floor(half * 100) / 100)
        last = _window(cliff, half, True)
        if last[0] < first[1]:
            last = (first[1], math.floor(min(cliff.duration, first[1] + half) * 100) / 100)
        return [{"shot": cliff.shot_id, "in_s": first[0], "out_s": first[1]},
                {"shot": cliff.shot_id, "in_s": last[0], "out_s": last[1]}]
    for n in range(MIN_PICKS, MAX_PICKS + 1):
        chosen = sorted([*others[:n - 1]], key=lambda s: order[s.shot_id]) + [cliff]
        if sum(s.duration for s in chosen) >= MIN_TOTAL_S or n - 1 >= len(others):
            break
    lengths: dict[int, float] = {}
    left = TARGET_S
    for i in sorted(range(len(chosen)), key=lambda i: chosen[i].duration):   # short shots whole, the rest share
        lengths[i] = min(chosen[i].duration, left / (len(chosen) - len(lengths)))
        left -= lengths[i]
    picks = []
    for i, shot in enumerate(chosen):
        a, b = _window(shot, lengths[i], shot is cliff)
        picks.append({"shot": shot.shot_id, "in_s": a, "out_s": b})
    if total_s(picks) < MIN_TOTAL_S - 1e-6:
        raise InputError(f"the shots picked from the episode before last {total_s(picks):.2f} s; a previously "
                         f"on needs at least {MIN_TOTAL_S:g} s")
    return picks


def title_of(canon: Canon) -> str:
    series = canon.live("series")
    name = str(series.data.get("title") or "").strip() if series is not None else ""
    return f"Previously on {name}…" if name else "Previously…"


def draft_cold_open(canon: Canon, project_root: Any, episode: int) -> dict[str, Any]:
    """The offline draft of episode `episode`'s cold open, checked (InputError when it cannot be made)."""
    check_episode_number(episode)
    table = source_shots(canon, project_root, episode - 1)
    data = {"episode": episode, "title": title_of(canon), "picks": offline_picks(canon, table)}
    return check_picks(canon, project_root, ColdOpenProposal.model_validate(data).model_dump(), table)


# ----------------------------------------------------------------------------- planning and drafting


_SETTINGS: dict[str, tuple[int, bool]] = {}


def enabled(ctx: DirectorContext) -> bool:
    """project.toml `[series] cold_open = true`: propose one for every episode from 2 on (read
    again when the file changes, so an edit made while the studio runs counts)."""
    import tomllib

    path = as_project(ctx.project or ctx.project_root).root / "project.toml"
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return False
    cached = _SETTINGS.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8")).get("series")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        table = None
    on = isinstance(table, dict) and table.get("cold_open") is True
    _SETTINGS[str(path)] = (stamp, on)
    return on


def _plan(canon: Canon, ctx: DirectorContext) -> Task | None:
    """With `[series] cold_open = true`: episode N's cold open (N ≥ 2) once all its shot plans are
    accepted, when it has none yet and the episode before can give one."""
    if not enabled(ctx):
        return None
    from agent.cut import episode_scenes
    from agent.episodes import episode_record_id, planning_episodes
    from agent.storyboard import shots_of

    for ep in planning_episodes(canon):
        if ep < 2 or canon.live(cold_open_id(ep)) is not None or _declined(ctx, ep):
            continue
        scenes = episode_scenes(canon, ep)
        if len(scenes) < ctx.targets.scenes or not all(shots_of(canon, sc.id) for sc in scenes):
            continue
        try:
            source_shots(canon, ctx.project, ep - 1)
        except StoryreelError:
            continue
        return {"kind": "cold_open", "target_id": None, "episode": ep, "subject": episode_record_id(ep)}
    return None


@dataclass
class _Declines:
    newest: str | None = None                                  # the newest ledger entry read
    shown: int | None = None                                   # the episode of the last cold open card
    episodes: set[int] = field(default_factory=set)            # skipped or rejected on their card


_DECLINES: dict[str, _Declines] = {}
_SUMMARY = re.compile(r"^previously on for episode (\d+),")   # `_summary`, the note of a "propose" line


def _declined(ctx: DirectorContext, episode: int) -> bool:
    """Accepted once and undone, or skipped or rejected on its card: not proposed unasked again
    (ask for it in the chat). The ledger is read from its tail down to the line read last time; a
    skip or reject is the card's whose proposal was logged last before it."""
    from memory.errors import RecordNotFoundError

    try:
        ctx.canon.history(cold_open_id(episode))
        return True
    except RecordNotFoundError:
        pass
    seen = _DECLINES.setdefault(str(getattr(ctx.ledger, "path", id(ctx.ledger))), _Declines())
    new: list[dict[str, Any]] = []
    for entry in ctx.ledger.iter_reversed():
        if entry.get("id") == seen.newest:
            break
        new.append(entry)
    for e in reversed(new):
        if e.get("kind") != "cold_open":
            continue
        if e.get("action") in ("propose", "propose-failed"):
            found = _SUMMARY.match(str(e.get("note") or ""))
            seen.shown = int(found.group(1)) if found else None
        elif e.get("action") in ("skip", "reject") and seen.shown is not None:
            seen.episodes.add(seen.shown)
    if new:
        seen.newest = new[0].get("id")
    return episode in seen.episodes


INSTRUCTION = (
    "Choose a 'previously on' of {lo:g}-{hi:g} s for episode {episode}: {n_lo}-{n_hi} picks from the accepted "
    "shots of episode {before} below, in playing order, ending on its cliffhanger; prefer shots with dialogue and "
    "close-ups. Each pick: shot (one of the ids below), in_s and out_s (seconds within that shot). Title: {title!r}."
)


def _model_draft(ctx: DirectorContext, episode: int, table: dict[str, Any], seed: int) -> dict[str, Any]:
    """The model's picks from the same list, checked like an edit; StoryreelError or
    ValidationError when its reply is junk."""
    import json

    from agent.llm import generate_structured

    listing = [{"shot_id": s.shot_id, "duration_s": s.duration, "framing": _scene_number(ctx.canon, s.shot_id)[1],
                "scene": _scene_number(ctx.canon, s.shot_id)[0], "lines": [c.text for c in s.captions]}
               for s in table.values()]
    title = title_of(ctx.canon)
    messages = [{"role": "system", "content": "You edit the recap of a serialized anime mini drama. Answer with "
                 "JSON only."},
                {"role": "user", "content": INSTRUCTION.format(
                    lo=MIN_TOTAL_S, hi=MAX_TOTAL_S, episode=episode, n_lo=MIN_PICKS, n_hi=MAX_PICKS,
                    before=episode - 1, title=title) + "\n\nShots:\n" + json.dumps(listing, ensure_ascii=False)[:6000]}]
    reply = generate_structured(ctx.llm, messages, ColdOpenProposal, retries=ctx.repair_retries, seed=seed,
                                known={"episode": episode, "title": title}, max_tokens=600)
    return check_picks(ctx.canon, ctx.project, reply.model_dump(), table)


def _draft(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending) -> None:
    episode = check_episode_number(int(task.get("episode") or 0))
    if ctx.canon.live(cold_open_id(episode)) is not None:   # a new cold open revises the accepted one
        pending["target_id"] = cold_open_id(episode)
    table = source_shots(ctx.canon, ctx.project, episode - 1)
    pending["retrieved"] = list(dict.fromkeys(table))
    pending["warnings"] = []
    pending["data"] = model_or_offline(
        ctx, pending, draft_cold_open(ctx.canon, ctx.project, episode),
        lambda: _model_draft(ctx, episode, table, int(pending.get("seed") or 0)),
        what="picks", fallback="these are the offline picks (the cliffhanger last)",
        offline_note="picked offline: the cliffhanger's shot last, dialogue and close-ups of the last scene first; "
                     "Edit to change the picks or their times")


def _propose(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
             ) -> Command[Literal["review"]]:
    return propose_text(kind, state, ctx, task, pending, draft=_draft)


def _review(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """Accept or edit, with every pick checked against canon (an error names the bad value)."""
    command = decide_fields(kind, state, decision, pending)
    if getattr(command, "goto", None) != "commit":
        return command
    update = dict(command.update or {})   # type: ignore[arg-type]
    data = (update.get("pending") or {}).get("data") or {}
    try:
        from langgraph.runtime import get_runtime

        ctx = get_runtime().context
    except Exception:  # noqa: BLE001 - outside a graph run (a unit test of the hook): schema checks only
        return command
    try:
        checked = check_picks(ctx.canon, ctx.project, data)
    except InputError as exc:
        return Command(goto="review", update={"review_error": f"The edit is not valid: {exc}"})
    except ValidationError as exc:
        return Command(goto="review", update={"review_error": f"The edit is not valid: {problems_text(exc)}"})
    update["pending"] = {**update["pending"], "data": checked}
    return Command(goto="commit", update=update)


def _rejected(state: DirectorState, ctx: DirectorContext, pending: Pending, note: str, decided: str
              ) -> Command | dict[str, Any]:
    """Reject drops the proposal (the drafts would pick the same shots again); Redo drafts again."""
    if decided != "reject":
        return {}
    episode = (pending.get("data") or {}).get("episode") or (state.get("task") or {}).get("episode")
    return Command(goto="plan_next", update={"pending": None, "task": None, "notes": [], "rejected": [],
                                             "messages": [{"role": "assistant", "content": (
                                                 f"No 'previously on' for episode {episode}"
                                                 + (f" (“{note}”)" if note else "") + ": canon is as it was. "
                                                 f"Ask again any time (“add a previously on to episode {episode}”), "
                                                 "or Edit the picks on a new card.")}]})


def cold_open_card(data: dict[str, Any]) -> str:
    """The title, then the picks with their times (the studio adds their panels as thumbnails)."""
    picks = data.get("picks") or []
    rows = ["| # | shot | in → out | seconds | what is said |", "|---|---|---|---|---|"]
    for k, p in enumerate(picks, 1):
        a, b = float(p.get("in_s", 0)), float(p.get("out_s", 0))
        rows.append(f"| {k} | `{esc(p.get('shot', ''))}` | {a:.2f} → {b:.2f} s | {b - a:.2f} | "
                    f"{esc(p.get('line') or '—').replace('|', '/')} |")
    return (f"**Episode {esc(data.get('episode'))} opens on:** “{esc(data.get('title', ''))}” — "
            f"{total_s(picks):.2f} s from episode {int(data.get('episode') or 2) - 1} "
            f"(a previously on lasts {MIN_TOTAL_S:g}–{MAX_TOTAL_S:g} s)\n\n" + "\n".join(rows))


def _summary(data: dict[str, Any]) -> str:
    picks = data.get("picks") or []
    return f"previously on for episode {data.get('episode')}, {len(picks)} picks, {total_s(picks):.1f} s"


# ----------------------------------------------------------------------------- the cut


def cold_open_shots(canon: Canon, project_root: Any, episode: int, *, language: str = "en", guides: bool = False,
                    captions: str = "subtitle") -> list[Any]:
    """The accepted cold open of `episode` as pieces of the episode before's render units (none
    when it has none): each pick its shot's `ShotSpec` cut to `in_s`–`out_s`, subtitles burned (no
    speech bubble), the title a caption over the first. InputError names a pick canon no longer has."""
    from tools.render import CaptionCue

    rec: Record | None = canon.live(cold_open_id(episode)) if episode >= 2 else None
    if rec is None:
        return []
    table = source_shots(canon, project_root, episode - 1, language=language, guides=guides, captions=captions)
    try:
        data = check_picks(canon, project_root, ColdOpenProposal.model_validate(rec.data).model_dump(), table)
    except (InputError, ValidationError) as exc:
        raise InputError(f"the previously on of episode {episode} ({rec.id}) no longer fits episode {episode - 1}: "
                         f"{exc if isinstance(exc, InputError) else problems_text(exc)}; edit it again, or undo it")\
            from None
    pieces = []
    for k, pick in enumerate(data["picks"], 1):
        src = table[pick["shot"]]
        a, b = float(pick["in_s"]), float(pick["out_s"])
        cues = tuple(src.captions)
        if k == 1:
            cues = (CaptionCue(text=data["title"], start=a, end=a + min(TITLE_S, b - a)), *cues)
        pieces.append(replace(src, shot_id=f"cold-open-{k}-{src.shot_id}", duration=round(b - a, 3), offset_s=a,
                              source_duration=src.duration, cold_open=True, transition_in="cut",
                              layers={n: p for n, p in src.layers.items() if n != "bubble"},
                              captions=cues, burn_captions=True))
    return pieces


KINDS = (
    Kind(name="cold_open", title="Previously on (cold open)", schema=ColdOpenProposal, plan=_plan,
         propose=_propose, review=_review, on_reject=_rejected, card=cold_open_card, summarise=_summary, family="motion",
         record_id=lambda data: cold_open_id(int(data.get("episode") or 2)), opens="subject",
         rows_resizable=True, chat_notes=False,
         failure_help="Press **Redo** to pick again, **Edit** to choose the shots and times yourself, or "
                      "**Reject** to go without one."),
)

__all__ = [
    "KINDS",
    "ColdOpenProposal",
    "check_episode_number",
    "check_picks",
    "cold_open_card",
    "cold_open_id",
    "cold_open_shots",
    "draft_cold_open",
    "offline_picks",
    "source_shots",
    "title_of",
]
