"""Episodes as the unit of work: which episodes are started, and which one the planners plan now.

An episode is *started* when its `episode-N` canon record (written by the outline) says
`started: true` (or its beats or scenes are in canon already); episode 1 always is. The director starts one (the `start_episode` tool, the
studio's button through `DirectorSession.start_episode`, `make --episodes`); the flag is canon, so
it survives restarts, and an outline revision keeps it (agent.kinds.story).

The kinds' planners (agent.kinds) plan one started episode at a time, earliest first: writers'
room → story so far → storyboard → voices → motion of episode N, then episode N+1.
`agent.kinds.next_task` sets the episode in focus (`planning`) and the episode-scoped planners
read `planning_episodes`; called outside it (a test, a tool), they plan every started episode in
order. The director can still open any started episode's item out of order.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from memory.errors import InputError

if TYPE_CHECKING:
    from memory.canon import Canon, Record
    from memory.ledger import Ledger

_FOCUS: ContextVar[int | None] = ContextVar("storyreel_planning_episode", default=None)


def episode_record_id(episode: int) -> str:
    return f"episode-{episode}"


def outline_count(canon: Canon) -> int:
    """How many episodes the accepted outline has (0 before it is accepted)."""
    outline = canon.live("outline")
    return len(outline.data.get("episodes") or []) if outline is not None else 0


def started_episodes(canon: Canon) -> list[int]:
    """Every started episode, in order: episode 1 always, then each marked started, or already
    written (its beats or scenes in canon: an import, a project from before episodes were started).
    Read once per canon change (`Canon.memo`): every plan and every studio view asks."""
    memo = getattr(canon, "memo", None)   # a stand-in canon may have none
    return list(memo("episodes.started", lambda: tuple(_started(canon))) if memo is not None else _started(canon))


def _started(canon: Canon) -> list[int]:
    started = {1}
    for rec in canon.list("episode"):
        number = rec.data.get("number")
        if not isinstance(number, int) or isinstance(number, bool) or number < 1:
            continue
        if rec.data.get("started") or canon.live(f"beats-ep{number}") is not None \
                or canon.children("scene", "episode", number):
            started.add(number)
    return sorted(started)


def is_started(canon: Canon, episode: int) -> bool:
    return episode in started_episodes(canon)


def next_unstarted(canon: Canon) -> int:
    """The episode after the last started one ("next episode")."""
    return max(started_episodes(canon)) + 1


def check_episode(canon: Canon, episode: Any) -> int:
    """`episode` as a number the outline has; InputError names the outline's episode count."""
    if isinstance(episode, bool) or not isinstance(episode, int) or episode < 1:
        raise InputError(f"episode {episode!r} is not an episode number; use 1, 2, 3…")
    count = outline_count(canon)
    if count == 0:
        raise InputError(f"cannot start episode {episode}: there is no accepted outline yet; accept the season "
                         "outline first")
    if episode > count:
        raise InputError(f"cannot start episode {episode}: the outline has {count} episode"
                         f"{'s' if count != 1 else ''}; pick 1 to {count}, or revise the outline to add more")
    return episode


def start_episode(canon: Canon, ledger: Ledger, episode: int, *, actor: str = "human", request: str = ""
                  ) -> Record:
    """Mark `episode` started (a logged decision, one canon transaction; starting it again changes
    nothing). Returns its `episode-N` record."""
    episode = check_episode(canon, episode)
    rid = episode_record_id(episode)
    rec = canon.live(rid)
    if rec is None:
        raise InputError(f"cannot start episode {episode}: the outline has no record {rid}; revise the outline")
    if rec.data.get("started") or episode == 1:
        return rec
    op = f"start-ep{episode}-r{rec.rev}"

    def write() -> list[Record]:
        return [canon.upsert("episode", {**rec.data, "started": True}, actor=actor, record_id=rid,
                             note=f"episode {episode} started")]

    (done,), _ = canon.commit_proposal(op, write, kind="episode", actor=actor, action="start",
                                       note=f"started episode {episode}",
                                       inputs={"episode": episode, "request": request})
    ledger.complete(canon, op)
    return done


def planning_episodes(canon: Canon) -> list[int]:
    """The episodes a planner plans now: the one in focus (`planning`), else every started one."""
    focus = _FOCUS.get()
    return [focus] if focus is not None else started_episodes(canon)


@contextmanager
def planning(episode: int) -> Iterator[int]:
    """Plan only `episode` inside the block (agent.kinds.next_task, one started episode at a time)."""
    token = _FOCUS.set(episode)
    try:
        yield episode
    finally:
        _FOCUS.reset(token)


def scene_episode(canon: Canon, scene_id: str | None) -> int | None:
    """The episode of a scene id (None when there is no such scene)."""
    rec = canon.live(str(scene_id)) if scene_id else None
    ep = rec.data.get("episode") if rec is not None else None
    return ep if isinstance(ep, int) and not isinstance(ep, bool) else None


def shot_episode(canon: Canon, shot_id: str | None) -> int | None:
    rec = canon.live(str(shot_id)) if shot_id else None
    return scene_episode(canon, rec.data.get("scene_id")) if rec is not None else None
