"""Planning that costs the same in episode 30 as in episode 1.

`agent.kinds.next_task` asks every started episode, earliest first, whether any kind's planner has
a proposal; in a long series nearly all of them are done, and asking them again after every
decision (each checks its scenes, shots, panels, their staleness, takes, motion) made one step cost
in proportion to the series. This memo remembers, per canon, which (episode, kind) planners found
nothing, and forgets an entry only when canon changed in a way that can concern it:

- a new record of one episode (revision 1 of a scene, shot, panel of a shot, take, motion, …)
  forgets that episode only;
- anything else (a character, a location, style, facts, summaries, the outline, an episode's
  start, a reference sheet or a background, any revision of an existing record, a deletion, a
  revert, a change made by another process that cannot be placed) forgets everything.

The changes are read from canon's revision rows after the last mark seen (`Canon.changes_since`: a
rowid range, so its cost follows what changed, not the series). Only the built-in planners that
read canon and the run context alone are memoised (`MEMOISED`); a plugin's planner, or one that
reads files or settings (the cold open), always runs. Inside a write transaction nothing is kept.
"""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from memory.canon import Canon, Record

#: The built-in planners whose answer depends on canon and the run context only.
MEMOISED = frozenset({"vision", "series", "character", "location", "prop", "outline", "beats", "scene", "facts",
                      "reference", "casting", "motion"})
#: Record kinds whose new records belong to one episode (found from their data).
EPISODE_SCOPED = frozenset({"scene", "shot", "panel", "take", "motion", "line"})


@dataclass
class _Memo:
    context: Any                     # a weak reference to the run context the answers were found with
    plans: dict[str, Any]            # kind name -> the planner that answered
    mark: int                        # canon's change mark the answers hold at
    quiet: set[tuple[int, str]] = field(default_factory=set)   # (episode, kind) that found nothing


_MEMOS: weakref.WeakKeyDictionary[Any, _Memo] = weakref.WeakKeyDictionary()


def _episode_of_scene(canon: Canon, scene_id: object) -> int | None:
    rec = canon.live(str(scene_id)) if scene_id else None
    ep = rec.data.get("episode") if rec is not None else None
    return ep if isinstance(ep, int) and not isinstance(ep, bool) else None


def _scene_of_line(line_id: object) -> str | None:
    text = str(line_id or "")
    return text.rsplit("-l", 1)[0] if "-l" in text else None


def episode_of_change(canon: Canon, rec: Record) -> int | None:
    """The one episode a new record concerns, or None when it may concern any."""
    if rec.rev != 1 or rec.deleted or rec.kind not in EPISODE_SCOPED:
        return None
    data = rec.data
    if rec.kind == "scene":
        ep = data.get("episode")
        return ep if isinstance(ep, int) and not isinstance(ep, bool) else None
    if rec.kind in ("shot", "motion"):
        return _episode_of_scene(canon, data.get("scene_id"))
    if rec.kind == "panel":
        if data.get("kind", "panel") != "panel":
            return None                       # a reference sheet or a background: every panel
        shot = canon.live(str(data.get("subject") or ""))
        return _episode_of_scene(canon, shot.data.get("scene_id")) if shot is not None else None
    if rec.kind in ("take", "line"):
        return _episode_of_scene(canon, data.get("scene_id") or _scene_of_line(data.get("line_id")))
    return None


def memo_for(canon: Canon, ctx: Any, plans: dict[str, Any]) -> _Memo | None:
    """The memo of `canon` brought up to date with what changed since it was last used (None:
    nothing may be kept now, e.g. inside a write transaction, or a canon without change marks)."""
    mark_of = getattr(canon, "change_mark", None)
    if mark_of is None:
        return None
    try:
        mark = mark_of()
    except Exception:  # noqa: BLE001 - a closed or foreign canon: plan without the memo
        return None
    if mark is None:
        return None
    planners = {name: plan for name, plan in plans.items() if name in MEMOISED}
    memo = _MEMOS.get(canon)
    if memo is None or memo.context() is not ctx or mark < memo.mark or planners.keys() != memo.plans.keys() \
            or any(plan is not memo.plans[name] for name, plan in planners.items()):
        try:
            ref = weakref.ref(ctx)
        except TypeError:   # a context that cannot be referenced weakly: plan without the memo
            return None
        memo = _Memo(context=ref, plans=planners, mark=mark)
        _MEMOS[canon] = memo
        return memo
    if mark == memo.mark:
        return memo
    changes = canon.changes_since(memo.mark)
    memo.mark = mark
    if changes is None:
        memo.quiet.clear()
        return memo
    touched: set[int] = set()
    for rec in changes:
        ep = episode_of_change(canon, rec)
        if ep is None:
            memo.quiet.clear()
            return memo
        touched.add(ep)
    memo.quiet = {(ep, kind) for ep, kind in memo.quiet if ep not in touched}
    return memo


def forget(canon: Canon) -> None:
    """Drop `canon`'s memo (tests; a canon replaced under the same object)."""
    _MEMOS.pop(canon, None)
