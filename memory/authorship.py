"""Who made what: the authorship report, computed from canon revisions and the ledger.

Nothing here is stored: every figure comes from what canon and the ledger already hold, so the
report can never disagree with them. Each item (a record, a dialogue line, a shot, a panel, a take)
gets one category, from the decision that produced its current content:

* ``written``  — written by the director: a revision the director made with no proposal behind it
  (a direct instruction, a form filled in after a failed proposal, the vision the director wrote:
  a commit whose ``inputs["author"]`` is ``"director"``);
* ``accepted`` — proposed and accepted as is (picking one of the proposed image candidates counts);
* ``edited``   — proposed and edited: which fields changed, and a character-level edit ratio
  (``1 - difflib.SequenceMatcher(None, proposed, accepted).ratio()`` over ``flat_text``);
* ``auto``     — accepted automatically (actor ``auto``: ``storyreel make``, fallbacks);
* ``uploaded`` — the director's own image or recording.

What was proposed is read from the commit row of the accepted proposal (``Canon.commit_proposal``'s
``inputs["proposed"]``, the proposal as it was on the card). A commit without it (a project from
before it was kept) still counts as edited, with its fields and ratio unknown (None). A revert
takes the authorship of the revision it brought back, and a revision that changes only bookkeeping
(``BOOKKEEPING``: an ear check, a renumbering) keeps the authorship of the one before. Rejections are the ledger's ``reject`` lines
with their notes; models are what the records name (a panel's painter model, a take's voice) or the
commit's ``inputs["model"]``.
"""
from __future__ import annotations

import difflib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from memory.canon import Canon, Commit, Record
from memory.errors import InputError, RecordNotFoundError

CATEGORIES = ("written", "accepted", "edited", "auto", "uploaded")
CATEGORY_LABELS = {"written": "written by the director", "accepted": "proposed and accepted as is",
                   "edited": "proposed and edited", "auto": "accepted automatically",
                   "uploaded": "uploaded by the director"}
AREAS = ("story", "dialogue", "visuals", "voices", "edit")
#: record kind -> area; kinds not named here (a new bible kind) count as story. Dialogue lines are
#: items of their scene, not records: a scene's story item leaves its lines out.
AREA_OF_KIND = {"glossary": "dialogue", "line": "dialogue", "shot": "visuals", "panel": "visuals",
                "voice": "voices", "take": "voices", "motion": "edit"}
#: proposal kinds (ledger `kind` of a rejection) that are not record kinds
AREA_OF_PROPOSAL = {"shots": "visuals", "reference": "visuals", "background": "visuals",
                    "casting": "voices", "translation": "dialogue"}
_SERIES_FIELDS = ("title", "logline")
_STYLE_FIELDS = ("art_style", "palette", "tone", "target_episode_seconds")
_PROFILE_FIELDS = ("engine", "voice", "blend", "rate", "pitch_semitones", "energy", "noise", "instructions")
_UNKNOWN = object()                       # a commit that did not keep what was proposed
#: data keys that record where a thing sits or what was checked about it, not what it says: a
#: revision that changes only these (an ear check, a renumbering) keeps the authorship it had
BOOKKEEPING = ("id", "check", "made_from", "index", "number", "line_ids")


@dataclass(frozen=True)
class Item:
    """One authored thing and how its current content came to be."""

    area: str
    kind: str                      # the record kind, or "line" for a dialogue line of a scene
    item_id: str                   # record id, or the line id
    record_id: str                 # the canon record that holds it
    label: str
    category: str                  # one of CATEGORIES
    actor: str
    action: str                    # accept, edit, upload, revert→…, direct
    rev: int                       # the revision whose decision counts
    decided_at: str
    episode: int | None = None     # None: series-wide (bible, casting, reference sheets)
    proposal_id: str | None = None
    changed_fields: dict[str, float] = field(default_factory=dict)   # field -> its own edit ratio
    edit_ratio: float | None = None    # edited: 0 (same) .. 1 (all new); None when unknown
    model: str | None = None
    image: str | None = None       # a panel's picture, relative to the project
    text: str = ""                 # a short excerpt (a line, a title)


@dataclass(frozen=True)
class Rejection:
    """A proposal the director turned down, and the note that steered the next one."""

    area: str
    kind: str
    target: str | None
    note: str
    actor: str
    decided_at: str


@dataclass(frozen=True)
class AreaSummary:
    area: str
    total: int
    counts: dict[str, int]         # category -> items
    shares: dict[str, float]       # category -> counts / total (0 when the area is empty)
    models: dict[str, int]         # model -> items ("not recorded" when nothing names one)
    rejections: int
    mean_edit_ratio: float | None  # over the edited items with a known ratio


@dataclass(frozen=True)
class AuthorshipReport:
    title: str
    episode: int | None            # None: the whole series
    items: tuple[Item, ...]
    areas: tuple[AreaSummary, ...]
    rejections: tuple[Rejection, ...]
    overall: AreaSummary
    shot_lines: dict[str, tuple[str, ...]] = field(default_factory=dict)   # shot id -> its line ids

    @property
    def name(self) -> str:
        """The report's file stem: authorship-ep01, or authorship-series."""
        return f"authorship-ep{self.episode:02d}" if self.episode is not None else "authorship-series"

    def area(self, area: str) -> AreaSummary:
        return next(a for a in self.areas if a.area == area)

    def items_of(self, record_id: str) -> list[Item]:
        return [i for i in self.items if i.record_id == record_id]

    def shot_authorship(self, shot_id: str) -> dict[str, Any]:
        """What the cut's timeline keeps per shot: the shot plan's, its panel's, its lines' and
        their takes' authorship (category, actor, model, edit ratio)."""
        def brief(item: Item) -> dict[str, Any]:
            return {"id": item.item_id, "category": item.category, "label": CATEGORY_LABELS[item.category],
                    "actor": item.actor, "model": item.model, "edit_ratio": item.edit_ratio,
                    "changed_fields": sorted(item.changed_fields)}

        by_id = {i.item_id: i for i in self.items}
        shot = by_id.get(shot_id)
        out: dict[str, Any] = {"shot": brief(shot) if shot else None,
                               "panel": brief(by_id[f"panel-{shot_id}"]) if f"panel-{shot_id}" in by_id else None,
                               "lines": [], "takes": []}
        for line_id in self.shot_lines.get(shot_id, ()):
            if line_id in by_id:
                out["lines"].append(brief(by_id[line_id]))
            out["takes"].extend(brief(i) for i in self.items
                                if i.kind == "take" and i.item_id.startswith(f"take-{line_id}-"))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "episode": self.episode, "name": self.name,
                "categories": dict(CATEGORY_LABELS),
                "overall": asdict(self.overall), "areas": [asdict(a) for a in self.areas],
                "items": [asdict(i) for i in self.items],
                "rejections": [asdict(r) for r in self.rejections]}


# ----------------------------------------------------------------------------- figures


def flat_text(value: Any) -> str:
    """The text an edit ratio compares: strings as they are, lists one item a line, dicts as
    ``key: value`` lines in key order, numbers and booleans as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return "\n".join(flat_text(v) for v in value)
    if isinstance(value, dict):
        return "\n".join(f"{k}: {flat_text(value[k])}" for k in sorted(value))
    return json.dumps(value)


def edit_ratio(proposed: Any, accepted: Any) -> float:
    """``1 - SequenceMatcher ratio`` of the two texts, rounded to 4 places: 0 unchanged, 1 all new."""
    a, b = flat_text(proposed), flat_text(accepted)
    if a == b:
        return 0.0
    return round(1.0 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio(), 4)


def compare(proposed: dict[str, Any], accepted: dict[str, Any], skip: tuple[str, ...] = ("id",)
            ) -> tuple[dict[str, float], float]:
    """(changed field -> its ratio, the ratio over all the proposal's fields) for one item. Only the
    proposal's fields count: canon's writers add their own (ids, shot indexes)."""
    keys = [k for k in proposed if k not in skip]
    changed = {k: edit_ratio(proposed.get(k), accepted.get(k)) for k in keys
               if _norm(proposed.get(k)) != _norm(accepted.get(k))}
    return changed, edit_ratio({k: proposed.get(k) for k in keys}, {k: accepted.get(k) for k in keys})


def _norm(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


# ----------------------------------------------------------------------------- the report


@dataclass(frozen=True)
class _Decision:
    category: str
    actor: str
    action: str
    rev: int
    decided_at: str
    proposal_id: str | None
    proposed: Any                  # the proposal's data, None (nothing proposed), or _UNKNOWN
    model: str | None


def authorship_report(canon: Canon, ledger: Iterable[dict] | Any, *, episode: int | None = None
                      ) -> AuthorshipReport:
    """The authorship of the series (``episode=None``) or of one episode (its own records plus the
    series-wide bible, casting and reference sheets it is made from). ``ledger``: a ``Ledger`` or
    its entries."""
    if episode is not None and (isinstance(episode, bool) or not isinstance(episode, int) or episode < 1):
        raise InputError(f"episode {episode!r} is not an episode number; use 1, 2, 3…")
    from memory.branches import line_commits, line_entries

    # the decisions of canon's line only: main's, or on a branch (memory/branches.py BranchCanon) main's
    # up to the branch's base of each record it changed, then the branch's own
    every_entry = list(ledger.entries() if hasattr(ledger, "entries") else ledger)
    entries = line_entries(canon, every_entry)
    commits = line_commits(canon)
    by_rev: dict[tuple[str, int], Commit] = {}
    for c in commits:
        for key in c.records:
            by_rev[key] = c
    actions = {(e.get("record_id"), e.get("rev")): e for e in entries if e.get("rev") is not None}
    ctx = _Context(canon, by_rev, actions)
    ctx.every_entry = every_entry   # an adopted revision is looked up on its branch (memory/branches.py)

    records = canon.list()
    scenes = {r.id: r for r in records if r.kind == "scene"}
    shots = {r.id: r for r in records if r.kind == "shot"}
    line_episode = {str(ln.get("id")): s.data.get("episode") for s in scenes.values()
                    for ln in s.data.get("lines", []) if isinstance(ln, dict)}
    if episode is not None and not any(s.data.get("episode") == episode for s in scenes.values()) \
            and canon.live(f"episode-{episode}") is None:
        raise InputError(f"episode {episode} has nothing in canon yet; report on the series (no --episode) "
                         "or on an episode that has an outline entry or scenes")

    items: list[Item] = []
    shot_line_ids: dict[str, tuple[str, ...]] = {}
    for rec in records:
        ep = _episode_of(rec, scenes, shots, line_episode)
        if episode is not None and ep is not None and ep != episode:
            continue
        if rec.kind == "shot":
            shot_line_ids[rec.id] = tuple(str(i) for i in rec.data.get("line_ids", []))
        items.append(ctx.item(rec, ep))
        if rec.kind == "scene":
            items.extend(ctx.line_items(rec, ep))

    order = {a: i for i, a in enumerate(AREAS)}
    items.sort(key=lambda i: order.get(i.area, len(AREAS)))
    in_scope = {i.item_id for i in items} | {i.record_id for i in items}
    rejections = tuple(
        Rejection(area=_area(str(e.get("kind") or "")), kind=str(e.get("kind") or ""), target=e.get("record_id"),
                  note=str(e.get("note") or ""), actor=str(e.get("actor") or ""), decided_at=str(e.get("time") or ""))
        for e in entries if e.get("action") == "reject"
        and (episode is None or not e.get("record_id") or e.get("record_id") in in_scope))
    areas = tuple(_summary(a, [i for i in items if i.area == a], [r for r in rejections if r.area == a])
                  for a in AREAS)
    series = canon.live("series")
    title = str(series.data.get("title") or "") if series else ""
    report = AuthorshipReport(title=title, episode=episode, items=tuple(items), areas=areas,
                              rejections=rejections, overall=_summary("all", items, list(rejections)),
                              shot_lines=shot_line_ids)
    return report


def _summary(area: str, items: list[Item], rejections: list[Rejection]) -> AreaSummary:
    counts = {c: sum(1 for i in items if i.category == c) for c in CATEGORIES}
    total = len(items)
    ratios = [i.edit_ratio for i in items if i.category == "edited" and i.edit_ratio is not None]
    return AreaSummary(
        area=area, total=total, counts=counts,
        shares={c: round(n / total, 4) if total else 0.0 for c, n in counts.items()},
        models=dict(sorted(Counter(i.model or "not recorded" for i in items).items())),
        rejections=len(rejections),
        mean_edit_ratio=round(sum(ratios) / len(ratios), 4) if ratios else None)


def _area(kind: str) -> str:
    return AREA_OF_KIND.get(kind) or AREA_OF_PROPOSAL.get(kind) or "story"


def _episode_of(rec: Record, scenes: dict[str, Record], shots: dict[str, Record],
                line_episode: dict[str, Any]) -> int | None:
    d = rec.data
    if rec.kind == "episode":
        return d["number"] if isinstance(d.get("number"), int) else None
    if isinstance(d.get("episode"), int) and not isinstance(d.get("episode"), bool):   # beats, scenes, facts
        return d["episode"]
    scene_id = d.get("scene_id")
    if rec.kind in ("shot", "motion", "line") and scene_id in scenes:
        return scenes[scene_id].data.get("episode")
    if rec.kind == "panel" and d.get("kind") == "panel" and d.get("subject") in shots:
        return _episode_of(shots[d["subject"]], scenes, shots, line_episode)
    if rec.kind == "take":
        return line_episode.get(str(d.get("line_id")))
    return None


class _Context:
    def __init__(self, canon: Canon, by_rev: dict[tuple[str, int], Commit],
                 actions: dict[tuple[Any, Any], dict]) -> None:
        self.canon, self.by_rev, self.actions = canon, by_rev, actions

    # -- one decision

    def decision(self, record_id: str, rev: int, seen: frozenset[int] = frozenset()) -> _Decision:
        rec = self.canon.get(record_id, rev)
        commit = self.by_rev.get((record_id, rev))
        entry = self.actions.get((record_id, rev)) or {}
        actor = commit.actor if commit else rec.actor
        action = commit.action if commit else str(entry.get("action") or "direct")
        when = commit.created_at if commit else rec.created_at
        if action == "adopt" and commit is not None:   # a branch's revision made main's: its authorship
            from memory.branches import adopted_decision

            adopted = adopted_decision(self, commit, rec)
            if adopted is not None:
                return adopted
        if action == "revert" or re.match(r"(revert|undo) to rev \d+", rec.note):
            to = commit.inputs.get("to_rev") if commit else None
            if not isinstance(to, int):       # the revert names its rev in its note, or has its data
                found = re.match(r"(?:revert|undo) to rev (\d+)", rec.note)
                to = int(found.group(1)) if found else next(
                    (r.rev for r in reversed(self.canon.history(record_id)[: rev - 1])
                     if not r.deleted and r.data == rec.data), None)
            if isinstance(to, int) and 1 <= to < rev and to not in seen:
                back = self.decision(record_id, to, seen | {rev})
                return _Decision(back.category, back.actor, f"revert to rev {to}: {back.action}", back.rev,
                                 back.decided_at, back.proposal_id, back.proposed, back.model)
        model = _record_model(self.canon, rec) or (commit.inputs.get("model") if commit else None)
        if commit is None:
            if actor == "auto":
                return _Decision("auto", actor, action, rev, when, None, None, model)
            if _uploaded(rec):
                return _Decision("uploaded", actor, action, rev, when, None, None, "upload")
            if actor == "human" and rev > 1:
                # the director's own change of an earlier revision: edited if that one was proposed
                before = self.decision(record_id, rev - 1, seen | {rev})
                if before.category in ("accepted", "edited", "auto"):
                    return _Decision("edited", actor, action, rev, when, None,
                                     self.canon.get(record_id, rev - 1).data, model or before.model)
            if actor == "human":
                return _Decision("written", actor, action, rev, when, None, None, model)
            return _Decision("accepted", actor, action, rev, when, None, _UNKNOWN, model)
        pid = commit.proposal_id
        proposed = commit.inputs.get("proposed", _UNKNOWN)
        if actor == "auto":
            return _Decision("auto", actor, action, rev, when, pid, proposed, model)
        if action == "upload" or _uploaded(rec):
            return _Decision("uploaded", actor, action, rev, when, pid, proposed, "upload")
        if commit.inputs.get("author") == "director":   # the card held the director's own text (the vision)
            return _Decision("written", actor, action, rev, when, pid, None, model)
        if action == "edit":
            if proposed is None:
                return _Decision("written", actor, action, rev, when, pid, None, model)
            return _Decision("edited", actor, action, rev, when, pid, proposed, model)
        return _Decision("accepted", actor, action, rev, when, pid, proposed, model)

    # -- items

    def origin(self, rec: Record, skip: tuple[str, ...] = ()) -> int:
        """The earliest revision from which the record says what it says now (bookkeeping aside)."""
        history = self.canon.history(rec.id)[: rec.rev]

        def content(r: Record) -> dict[str, Any]:
            return {k: v for k, v in r.data.items() if k not in BOOKKEEPING and k not in skip}

        rev, now = rec.rev, content(rec)
        while rev > 1 and not history[rev - 2].deleted and content(history[rev - 2]) == now:
            rev -= 1
        return rev

    def item(self, rec: Record, episode: int | None) -> Item:
        d = self.decision(rec.id, self.origin(rec, ("lines",) if rec.kind == "scene" else ()))
        changed: dict[str, float] = {}
        ratio: float | None = None
        category = d.category
        if category == "edited":
            then = self.canon.get(rec.id, d.rev)
            part = _proposed_part(self.canon, then, d.proposed) if d.proposed is not _UNKNOWN else None
            if isinstance(part, dict):
                # a scene's lines are dialogue items of their own
                changed, ratio = compare(part, then.data,
                                         ("id", "lines") if rec.kind == "scene" else ("id",))
                if not changed:
                    category = "accepted"       # opened the form and saved it unchanged
        image = rec.data.get("path") if rec.kind == "panel" else None
        return Item(area=_area(rec.kind), kind=rec.kind, item_id=rec.id, record_id=rec.id, label=_label(rec),
                    category=category, actor=d.actor, action=d.action, rev=d.rev, decided_at=d.decided_at,
                    episode=episode, proposal_id=d.proposal_id, changed_fields=changed,
                    edit_ratio=ratio if category == "edited" else None, model=d.model,
                    image=str(image) if image else None, text=_excerpt(rec))

    def line_items(self, scene: Record, episode: int | None) -> list[Item]:
        """Each dialogue line of a scene, from the scene revision where its current text appeared."""
        history = self.canon.history(scene.id)[: scene.rev]
        out = []
        for pos, line in enumerate(scene.data.get("lines", [])):
            if not isinstance(line, dict):
                continue
            line_id = str(line.get("id") or f"{scene.id}-l{pos + 1}")
            content = {k: v for k, v in line.items() if k != "id"}
            rev = scene.rev
            while rev > 1 and _line_in(history[rev - 2], line_id, pos) == content:
                rev -= 1
            d = self.decision(scene.id, rev)
            category, changed, ratio = d.category, {}, None
            if category == "edited" and d.proposed is not _UNKNOWN:
                proposed = _proposed_part(self.canon, self.canon.get(scene.id, d.rev), d.proposed)
                lines = proposed.get("lines") if isinstance(proposed, dict) else None
                then = _line_in(self.canon.get(scene.id, d.rev), line_id, pos)
                if isinstance(lines, list):
                    if pos >= len(lines) or not isinstance(lines[pos], dict):
                        category = "written"        # a line the director added to the proposal
                    else:
                        changed, ratio = compare({k: v for k, v in lines[pos].items() if k != "id"}, then or {})
                        category = "edited" if changed else "accepted"
            out.append(Item(area="dialogue", kind="line", item_id=line_id, record_id=scene.id,
                            label=f"{line.get('speaker', '?')}: {str(line.get('line', ''))[:60]}",
                            category=category, actor=d.actor, action=d.action, rev=d.rev,
                            decided_at=d.decided_at, episode=episode, proposal_id=d.proposal_id,
                            changed_fields=changed, edit_ratio=ratio if category == "edited" else None,
                            model=d.model, text=str(line.get("line", ""))))
        return out


def _line_in(scene: Record, line_id: str, pos: int) -> dict[str, Any] | None:
    for i, ln in enumerate(scene.data.get("lines", [])):
        if isinstance(ln, dict) and (ln.get("id") == line_id or (ln.get("id") is None and i == pos)):
            return {k: v for k, v in ln.items() if k != "id"}
    return None


def _proposed_part(canon: Canon, rec: Record, proposed: Any) -> Any:
    """The part of a proposal that became this record (a proposal can make several records)."""
    if not isinstance(proposed, dict):
        return proposed
    if rec.kind == "series":
        return {k: proposed[k] for k in _SERIES_FIELDS if k in proposed}
    if rec.kind == "style" and "art_style" in proposed and "title" in proposed:
        return {k: proposed[k] for k in _STYLE_FIELDS if k in proposed}
    if rec.kind == "episode" and isinstance(proposed.get("episodes"), list):
        return next((e for e in proposed["episodes"] if isinstance(e, dict)
                     and e.get("number") == rec.data.get("number")), None)
    if rec.kind == "shot" and isinstance(proposed.get("shots"), list):
        i = int(rec.data.get("index") or 0) - 1
        return proposed["shots"][i] if 0 <= i < len(proposed["shots"]) else None
    if rec.kind == "line" and isinstance(proposed.get("lines"), list):   # a translation
        try:
            scene = canon.get(str(rec.data.get("scene_id")))
        except RecordNotFoundError:
            return None
        ids = [ln.get("id") for ln in scene.data.get("lines", []) if isinstance(ln, dict)]
        pos = ids.index(rec.data.get("line_id")) if rec.data.get("line_id") in ids else -1
        return {"text": proposed["lines"][pos]} if 0 <= pos < len(proposed["lines"]) else None
    if rec.kind == "voice":
        return {k: proposed[k] for k in _PROFILE_FIELDS if k in proposed}
    return proposed


def _uploaded(rec: Record) -> bool:
    return rec.kind in ("panel", "take") and (rec.data.get("source") == "upload" or rec.data.get("model") == "upload")


def _record_model(canon: Canon, rec: Record) -> str | None:
    """The model a record names: a panel's painter model, a casting's or a take's voice."""
    d = rec.data
    if rec.kind == "panel":
        return str(d["model"]) if d.get("model") else None
    if rec.kind == "voice":
        return _voice_name(d)
    if rec.kind == "take":
        voice = (d.get("made_from") or {}).get("voice")
        if isinstance(voice, list) and len(voice) == 2:
            try:
                return _voice_name(canon.get(str(voice[0]), int(voice[1])).data)
            except (RecordNotFoundError, ValueError, TypeError):
                return None
    return None


def _voice_name(d: dict[str, Any]) -> str | None:
    if not d.get("engine"):
        return None
    blend = d.get("blend")
    voice = f"{d.get('voice')}+{blend}" if isinstance(blend, str) and blend else d.get("voice")
    return f"{d['engine']}:{voice}" if voice else str(d["engine"])


def _label(rec: Record) -> str:
    d = rec.data
    if rec.kind == "shot":
        return f"{rec.id} ({d.get('framing', '')})".strip()
    if rec.kind == "panel":
        return f"{d.get('kind', 'panel')} of {d.get('subject', rec.id)}"
    if rec.kind == "take":
        return f"take of {d.get('line_id', rec.id)} ({d.get('language', '')})"
    if rec.kind == "scene":
        return f"scene {d.get('episode', '?')}.{d.get('number', '?')} {d.get('title', '')}".strip()
    name = d.get("name") or d.get("title")
    return f"{rec.kind} {name}" if isinstance(name, str) and name else rec.id


def _excerpt(rec: Record) -> str:
    d = rec.data
    for key in ("logline", "line", "text", "summary", "action", "description", "personality", "mood"):
        if isinstance(d.get(key), str) and d[key].strip():
            return d[key].strip()[:160]
    return ""
