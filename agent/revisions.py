"""Revisions the director can trust: a change request changes what was asked and shows it, the app's
own fields are the app's, and an interrupted proposal comes back as it was.

- `canonical`: a name as canon spells it ('aiko', 'Aiko-san' -> 'Aiko'); the kinds' `known` and
  `prepare` hooks (agent.kinds) fill what the app knows before the model's reply is validated.
- `merge_revision`: canon plus the fields the request is about, taken from the model's draft;
  `field_diff` is what the card shows (old -> new per field).
- `shot_edit_plan`: a panel note that asks for content the painter cannot draw (a character who is
  not in the shot, another framing) becomes a shot-plan revision.
- `stash_entry`: a task put aside with the proposal that was on its card.
"""
from __future__ import annotations

import re
from typing import Any

from agent import notes as note_parser
from agent.schemas import PROPOSAL_MODELS, Shot
from agent.state import DirectorState, Task
from memory.canon import Canon

_HONORIFIC = re.compile(r"[-\s](san|kun|chan|sama|sensei|senpai|dono)$", re.IGNORECASE)


def canonical(name: Any, options: list[str]) -> Any:
    """`name` spelled as canon spells it, when it is the same name ('aiko', 'Aiko-san' -> 'Aiko')."""
    if not isinstance(name, str) or not options:
        return name
    bare = _HONORIFIC.sub("", name.strip()).casefold()
    for option in options:
        if option.casefold() == bare:
            return option
    return name


# ----------------------------------------------------------------------------- revisions


def field_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, list[Any]]:
    """Changed fields as {field: [old, new]}; lists of records compared item by item
    ("shots[2].characters", 1-based), so the card shows what moved, not two walls of JSON."""
    diff: dict[str, list[Any]] = {}
    for key, value in new.items():
        before = old.get(key)
        if before == value:
            continue
        if (isinstance(value, list) and isinstance(before, list) and len(value) == len(before)
                and all(isinstance(v, dict) for v in [*value, *before])):
            for i, (a, b) in enumerate(zip(before, value), 1):
                for sub in dict.fromkeys([*a, *b]):
                    if a.get(sub) != b.get(sub):
                        diff[f"{key}[{i}].{sub}"] = [a.get(sub), b.get(sub)]
            continue
        diff[key] = [before, value]
    return diff


def merge_revision(kind: str, current: dict[str, Any], draft: dict[str, Any], request: str,
                   *, schema: Any = None) -> tuple[dict[str, Any], list[str]]:
    """Canon with only the fields `request` is about taken from the model's `draft`.

    A request that names no field takes the draft's changes except the record's name or title
    (the demo model renames things it was only asked to age). An asked field the model emptied
    keeps canon's value; "older"/"younger" on an age the model left alone is done here.
    """
    fields = [f for f in (schema or PROPOSAL_MODELS[kind]).model_fields if f in draft]
    asked = note_parser.request_fields(request, fields)
    merged = {f: current.get(f, draft[f]) for f in fields}
    warnings: list[str] = []
    take = asked or [f for f in fields if f not in note_parser.IDENTITY_FIELDS]
    for field in take:
        value = draft[field]
        if value in ("", [], None) and current.get(field) not in ("", [], None):
            warnings.append(f"the model left {field} empty; kept {current.get(field)!r}")
            continue
        merged[field] = value
    if "age" in asked and str(merged.get("age", "")) == str(current.get("age", "")):
        older = note_parser.adjust_age(str(current.get("age", "")), request)
        if older is not None:
            merged["age"] = older
            warnings.append(f"age {current.get('age')!r} → {older!r} from “{request}”; edit it if you meant "
                            "another age")
    if asked:
        kept = [f for f in fields if f not in asked and draft.get(f) != current.get(f)]
        if kept:
            warnings.append(f"kept as in canon (not part of the request): {', '.join(kept)}")
    return merged, warnings


# ----------------------------------------------------------------------------- shot plans


def current_plan(canon: Canon, scene_id: str) -> dict[str, Any]:
    """A scene's accepted shots as shot-plan proposal data (dialogue as 1-based line numbers)."""
    from agent.storyboard import shots_of

    scene = canon.get(scene_id)
    line_ids = [ln.get("id") or f"{scene.id}-l{i}" for i, ln in enumerate(scene.data.get("lines", []), 1)]
    shots = []
    for rec in shots_of(canon, scene_id):
        shot = {k: rec.data[k] for k in Shot.model_fields if k in rec.data and k != "lines"}
        shot["lines"] = [line_ids.index(i) + 1 for i in rec.data.get("line_ids", []) if i in line_ids]
        shots.append(shot)
    return {"scene_id": scene_id, "shots": shots}


def shot_edit_plan(canon: Canon, edit: dict[str, Any]) -> dict[str, Any]:
    """The scene's plan with one shot changed as a panel note asked (characters added, framing)."""
    shot_rec = canon.get(edit["shot_id"])
    plan = current_plan(canon, shot_rec.data["scene_id"])
    index = int(shot_rec.data.get("index", 1)) - 1
    shot = dict(plan["shots"][index])
    chars = [dict(c) for c in shot.get("characters", [])]
    for name in edit.get("add_characters", []):
        if len(chars) >= 3:  # a shot holds three characters at most: the newcomer replaces the last
            chars.pop()
        chars.append({"name": name, "expression": "neutral", "pose": ""})
    shot["characters"] = chars
    if edit.get("framing"):
        shot["framing"] = edit["framing"]
    plan["shots"] = [*plan["shots"][:index], shot, *plan["shots"][index + 1:]]
    return plan


# ----------------------------------------------------------------------------- stash


def stash_entry(state: DirectorState, *, keep_card: bool = True) -> Task | None:
    """The current task, to resume after an interruption; with the proposal on its card (data,
    proposal id, notes) when `keep_card`, so it comes back as it was rather than regenerated."""
    task = state.get("task")
    pending = state.get("pending")
    if not (pending and task):
        return None
    entry: Task = {k: v for k, v in task.items() if k != "resume"}  # type: ignore[assignment]
    if keep_card and pending.get("kind") == task.get("kind"):
        entry["resume"] = {"pending": dict(pending), "notes": list(state.get("notes") or []),
                           "rejected": list(state.get("rejected") or [])}
    return entry
