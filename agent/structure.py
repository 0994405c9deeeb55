"""Structural edits of the story as proposals: remove a record, reorder scenes, split a scene in two,
merge two adjacent scenes. Pure functions over `Canon`; nothing changes until `write` runs inside
the accepted proposal's transaction.

Record ids stay stable. A scene's place in its episode is its `number` field (display numbers are
contiguous, 1, 2, 3…); its id (`scene-ep1-2`) is only a name given when it was created. So a
reorder renumbers scenes and nothing else: shots, panels, takes and motion stay attached by id, and
the cut (`agent.cut.episode_scenes`, ordered by number) follows the new order. A split or merge
moves dialogue lines and shots to another scene: they get that scene's ids (`<scene>-l<i>`,
`<scene>-s<i>`), and every record keyed by the old ids (panels, takes, translations, motion) is
copied under the new id and the old one tombstoned. Removal is a tombstone revision; nothing is
ever really deleted.

`plan(op, canon, args)` returns the proposal's data: a readable list of changes (which records move,
are renumbered, created or tombstoned) and the revisions it was planned from; `check` names what
is wrong with it against canon now. Writing, undoing it and its review card are in
`agent.structure_commit`.
"""
from __future__ import annotations

import re
from typing import Any

from memory.canon import Canon, Record
from memory.errors import InputError, RecordNotFoundError

KIND = "structure"
OPS = ("remove", "reorder", "split", "merge")
MAX_LINES = 8       # agent.schemas.SceneProposal.lines
MAX_SHOTS = 12      # agent.schemas.ShotPlanProposal.shots
MAX_SHOT_LINES = 4  # agent.schemas.MAX_LINES_PER_SHOT


class StructureError(InputError):
    """A structural edit that cannot be made as asked; the message names the records and the fix."""


# ----------------------------------------------------------------------------- reading canon


def scenes_of(canon: Canon, episode: int) -> list[Record]:
    """The live scenes of an episode, in their order (by number)."""
    return sorted((s for s in canon.list("scene") if int(s.data.get("episode", 1)) == episode),
                  key=lambda s: int(s.data.get("number", 0)))


def _shots(canon: Canon, scene_id: str) -> list[Record]:
    return sorted((r for r in canon.list("shot") if r.data.get("scene_id") == scene_id),
                  key=lambda r: int(r.data.get("index", 0)))


def _scene(canon: Canon, ref: Any) -> Record:
    rec = canon.live(str(ref))
    if rec is None or rec.kind != "scene":
        raise StructureError(f"{ref!r} is not a scene in canon; name one by its id (e.g. scene-ep1-2)")
    return rec


def label(rec: Record) -> str:
    if rec.kind == "scene":
        return f"scene {rec.data.get('number')} “{rec.data.get('title', '')}” ({rec.id})"
    if rec.kind == "shot":
        return f"shot {rec.data.get('index')} of {rec.data.get('scene_id')} ({rec.id})"
    name = rec.data.get("name") or rec.data.get("title")
    return f"{rec.kind} {name} ({rec.id})" if name else f"{rec.kind} {rec.id}"


def free_scene_id(canon: Canon, episode: int, number: int, *, reuse_deleted: bool = False) -> str:
    """`scene-ep<episode>-<n>` for the first n ≥ number that no record has (with `reuse_deleted`,
    no live record; else none ever had, deleted ones included): after scenes were reordered,
    merged or removed, scene 3 need not be `scene-ep1-3`, and a new scene never takes over another
    scene's id (nor its shots', takes' or motion's ids)."""
    n = max(1, int(number))
    while True:
        candidate = f"scene-ep{episode}-{n}"
        try:
            rec = canon.get(candidate)
        except RecordNotFoundError:
            return candidate
        if reuse_deleted and rec.deleted:
            return candidate
        n += 1


def _exists(canon: Canon, record_id: str) -> bool:
    try:
        canon.get(record_id)
    except RecordNotFoundError:
        return False
    return True


# ----------------------------------------------------------------------------- building a plan


class _Plan:
    def __init__(self, canon: Canon, op: str, summary: str = "") -> None:
        self.canon = canon
        self.data: dict[str, Any] = {"op": op, "summary": summary, "changes": [], "warnings": [], "base": {}}

    def _base(self, rec: Record) -> None:
        self.data["base"][rec.id] = rec.rev

    def renumber(self, scene: Record, number: int) -> None:
        self._base(scene)
        self.data["changes"].append({
            "action": "renumber", "record": scene.id, "kind": "scene",
            "what": f"scene {scene.data.get('number')} “{scene.data.get('title', '')}” becomes scene {number}",
            "before": {"number": scene.data.get("number")}, "after": {"number": number},
            "data": {**scene.data, "number": number}})

    def revise(self, rec: Record, data: dict[str, Any], what: str) -> None:
        self._base(rec)
        self.data["changes"].append({"action": "revise", "record": rec.id, "kind": rec.kind, "what": what,
                                     "data": data})

    def create(self, record_id: str, kind: str, data: dict[str, Any], what: str, **extra: Any) -> None:
        self.data["changes"].append({"action": "create", "record": record_id, "kind": kind, "what": what,
                                     "data": data, **extra})

    def tombstone(self, rec: Record, what: str = "") -> None:
        if any(c["record"] == rec.id and c["action"] == "tombstone" for c in self.data["changes"]):
            return
        self._base(rec)
        self.data["changes"].append({"action": "tombstone", "record": rec.id, "kind": rec.kind,
                                     "what": what or f"{label(rec)} is removed (a tombstone; undo restores it)"})


def _renumber_rest(p: _Plan, scenes: list[Record], start: int, shift: int, skip: set[str]) -> None:
    """Scenes numbered ≥ start (other than `skip`) move by `shift`."""
    for s in scenes:
        if s.id not in skip and int(s.data.get("number", 0)) >= start:
            p.renumber(s, int(s.data["number"]) + shift)


def _dependents(canon: Canon, scene: Record) -> list[Record]:
    """What hangs off a scene by id: its shots and their panels, its motion, the takes and
    translations of its lines."""
    out: list[Record] = []
    for shot in _shots(canon, scene.id):
        out.append(shot)
        panel = canon.live(f"panel-{shot.id}")
        if panel is not None:
            out.append(panel)
    motion = canon.live(f"motion-{scene.id}")
    if motion is not None:
        out.append(motion)
    line_ids = {str(ln.get("id")) for ln in scene.data.get("lines", [])}
    out += [t for t in canon.list("take") if str(t.data.get("line_id")) in line_ids]
    out += [t for t in canon.list("line") if str(t.data.get("line_id")) in line_ids]
    return out


def _move_line_records(p: _Plan, line_map: dict[str, str], new_scene: str) -> None:
    """Takes and translations of moved lines: copied under the new line id, old ones tombstoned."""
    canon = p.canon
    for take in canon.list("take"):
        old = str(take.data.get("line_id"))
        if old in line_map:
            lang = take.data.get("language", "en")
            p.create(f"take-{line_map[old]}-{lang}", "take", {**take.data, "line_id": line_map[old]},
                     f"take of line {old} ({lang}) moves with it as {line_map[old]}")
            p.tombstone(take, f"take {take.id} is replaced by its copy for {line_map[old]}")
    for tr in canon.list("line"):
        old = str(tr.data.get("line_id"))
        if old in line_map:
            lang = tr.data.get("language", "")
            p.create(f"{line_map[old]}-{lang}", "line", {**tr.data, "line_id": line_map[old], "scene_id": new_scene},
                     f"{lang} translation of line {old} moves with it")
            p.tombstone(tr, f"translation {tr.id} is replaced by its copy for {line_map[old]}")


def _move_shot(p: _Plan, shot: Record, new_scene: str, index: int, lines: list[int],
               line_ids: list[str]) -> str:
    """A shot (and its panel) moved to `new_scene` as shot `index`; returns the new shot id."""
    canon = p.canon
    new_id = f"{new_scene}-s{index}"
    data = {**shot.data, "scene_id": new_scene, "index": index, "lines": lines, "line_ids": line_ids}
    p.create(new_id, "shot", data, f"{label(shot)} becomes shot {index} of {new_scene} ({new_id})")
    p.tombstone(shot, f"{shot.id} is replaced by {new_id}")
    panel = canon.live(f"panel-{shot.id}")
    if panel is not None:
        made = dict(panel.data.get("made_from") or {})
        fresh = made.get("shot") == [shot.id, shot.rev] and len(shot.data.get("lines", [])) == len(lines)
        p.create(f"panel-{new_id}", "panel", {**panel.data, "subject": new_id, "made_from": made},
                 f"its accepted panel stays with it (panel-{new_id})" + ("" if fresh else "; it is drawn again"),
                 fresh_shot=new_id if fresh else None)
        p.tombstone(panel, f"{panel.id} is replaced by panel-{new_id}")
    return new_id


def _motion_entries(canon: Canon, scene_id: str) -> dict[str, dict[str, Any]]:
    motion = canon.live(f"motion-{scene_id}")
    return {str(m.get("shot_id")): m for m in (motion.data.get("shots", []) if motion else [])}


# ----------------------------------------------------------------------------- the operations


def plan(op: str, canon: Canon, args: dict[str, Any]) -> dict[str, Any]:
    """The proposal's data for `op` (remove | reorder | split | merge) with `args` (record ids and
    numbers, see each op); StructureError names what cannot be done and why."""
    planners = {"remove": _plan_remove, "reorder": _plan_reorder, "split": _plan_split, "merge": _plan_merge}
    if op not in planners:
        raise StructureError(f"structural edit {op!r} is unknown; use one of {', '.join(OPS)}")
    data = planners[op](canon, dict(args))
    data["args"] = dict(args)
    problems = check(canon, data)
    if problems:
        raise StructureError("; ".join(problems))
    return data


def _plan_reorder(canon: Canon, args: dict[str, Any]) -> dict[str, Any]:
    """args: episode (default 1), new_order: the current scene numbers in their new order; two
    numbers swap those two scenes."""
    episode = int(args.get("episode") or 1)
    scenes = scenes_of(canon, episode)
    n = len(scenes)
    order = [int(x) for x in args.get("new_order") or []]
    if len(order) == 2 and n != 2:
        a, b = order
        if not (1 <= a <= n and 1 <= b <= n) or a == b:
            raise StructureError(f"episode {episode} has scenes 1 to {n}; cannot swap {a} and {b}")
        swapped = list(range(1, n + 1))
        swapped[a - 1], swapped[b - 1] = b, a
        order = swapped
    if n < 2:
        raise StructureError(f"episode {episode} has {n} scene(s); there is nothing to reorder")
    if sorted(order) != list(range(1, n + 1)):
        raise StructureError(f"new order {args.get('new_order')} must list each of the {n} scenes of episode "
                             f"{episode} once (1 to {n}), or name two scenes to swap")
    if order == list(range(1, n + 1)):
        raise StructureError(f"the scenes of episode {episode} are already in the order {order}")
    by_number = {int(s.data.get("number", 0)): s for s in scenes}
    p = _Plan(canon, "reorder", f"episode {episode}: scenes in the order {', '.join(map(str, order))}")
    for position, old in enumerate(order, 1):
        if old != position:
            p.renumber(by_number[old], position)
    p.data["episode"] = episode
    return p.data


def users_of(canon: Canon, rec: Record) -> list[str]:
    """Records that name a character or location (scenes, shots), as the director would read them."""
    name = str(rec.data.get("name") or "").casefold()
    if not name:
        return []
    users = []
    for scene in canon.list("scene"):
        if rec.kind == "character" and (
                name in {str(c).casefold() for c in scene.data.get("characters", [])}
                or name in {str(ln.get("speaker", "")).casefold() for ln in scene.data.get("lines", [])}):
            users.append(label(scene))
        if rec.kind == "location" and str(scene.data.get("location", "")).casefold() == name:
            users.append(label(scene))
        if rec.kind == "prop" and re.search(rf"\b{re.escape(name)}\b", " ".join(
                [str(scene.data.get("action", ""))] + [str(ln.get("line", "")) for ln in scene.data.get("lines", [])]
        ).casefold()):
            users.append(label(scene))
    for shot in canon.list("shot"):
        if rec.kind == "character" and name in {str(c.get("name", "")).casefold()
                                                for c in shot.data.get("characters", [])}:
            users.append(label(shot))
        if rec.kind == "location" and str(shot.data.get("location", "")).casefold() == name:
            users.append(label(shot))
    return users


def _plan_remove(canon: Canon, args: dict[str, Any]) -> dict[str, Any]:
    """args: record (a scene, character, location or prop id). A character or location that scenes
    or shots still use is refused, naming them; a prop mentioned in a scene is a warning."""
    rec = canon.live(str(args.get("record")))
    if rec is None:
        raise StructureError(f"{args.get('record')!r} is not a live record in canon; name one by its id")
    p = _Plan(canon, "remove", f"remove {label(rec)}")
    if rec.kind == "scene":
        episode = int(rec.data.get("episode", 1))
        p.tombstone(rec)
        for dep in _dependents(canon, rec):
            p.tombstone(dep, f"{label(dep)} goes with it")
        _renumber_rest(p, scenes_of(canon, episode), int(rec.data.get("number", 0)) + 1, -1, {rec.id})
        return p.data
    if rec.kind in ("character", "location", "prop"):
        users = users_of(canon, rec)
        if users and rec.kind != "prop":
            raise StructureError(
                f"{label(rec)} is still used by {', '.join(users)}; change those first (rewrite the scenes or "
                f"their shots without {rec.data.get('name')}), then remove it")
        if users:
            p.data["warnings"].append(f"{rec.data.get('name')} is still mentioned in {', '.join(users)}")
        p.tombstone(rec)
        for dep_id in ({"character": [f"ref-{rec.id}", f"voice-{rec.id}"], "location": [f"bg-{rec.id}"]}
                       .get(rec.kind, [])):
            dep = canon.live(dep_id)
            if dep is not None:
                p.tombstone(dep, f"{label(dep)} goes with it")
        return p.data
    raise StructureError(f"{label(rec)} is a {rec.kind}; remove a scene, character, location or prop this way "
                         "(a shot or a line is removed through its scene's shot plan or dialogue)")


def line_at(scene: Record, at: Any) -> int:
    """The 1-based line number the second part starts at: a number, or words of that line
    (its text or speaker), e.g. "Ren arrives" or "“Only rain.”"."""
    lines = scene.data.get("lines", [])
    if isinstance(at, int) or (isinstance(at, str) and at.strip().isdigit()):
        return int(at)
    words = {w for w in re.findall(r"[a-z']{3,}", str(at or "").casefold())} - {"the", "and", "line", "where",
                                                                                 "when", "after", "before"}
    best, score = 0, 0
    for i, ln in enumerate(lines, 1):
        have = set(re.findall(r"[a-z']{3,}", f"{ln.get('speaker', '')} {ln.get('line', '')}".casefold()))
        if len(words & have) > score:
            best, score = i, len(words & have)
    if not best:
        raise StructureError(f"no line of {label(scene)} matches {at!r}; name the line number (2 to {len(lines)}) "
                             "the second scene starts at")
    return best


def _plan_split(canon: Canon, args: dict[str, Any]) -> dict[str, Any]:
    """args: scene (id), at (the line number, or words of the line, the second part starts with),
    title (optional, of the second part). Lines from `at` on, and the shots from the first one that
    shows them, become a new scene right after this one."""
    scene = _scene(canon, args.get("scene"))
    lines = list(scene.data.get("lines", []))
    k = line_at(scene, args.get("at"))
    if len(lines) < 2:
        raise StructureError(f"{label(scene)} has {len(lines)} line(s); a split needs two or more")
    if not 2 <= k <= len(lines):
        raise StructureError(f"{label(scene)} has lines 1 to {len(lines)}; split at a line from 2 to {len(lines)} "
                             f"(the first line of the second scene), not {k}")
    episode, number = int(scene.data.get("episode", 1)), int(scene.data.get("number", 1))
    new_id = free_scene_id(canon, episode, len(scenes_of(canon, episode)) + 1)
    p = _Plan(canon, "split", f"split {label(scene)} before line {k}: lines {k}–{len(lines)} become scene "
                              f"{number + 1}")
    p.data["new_scene"] = new_id
    first, second = lines[:k - 1], lines[k - 1:]
    line_map = {str(ln.get("id")): f"{new_id}-l{i}" for i, ln in enumerate(second, 1)}
    speakers = [str(ln.get("speaker")) for ln in second]
    cast = [c for c in scene.data.get("characters", []) if c in speakers] or list(scene.data.get("characters", []))
    title = str(args.get("title") or f"{scene.data.get('title', 'Scene')} (part 2)")[:60]
    new_data = {**scene.data, "number": number + 1, "title": title, "characters": cast,
                "lines": [{**ln, "id": line_map[str(ln.get("id"))]} for ln in second]}
    _renumber_rest(p, scenes_of(canon, episode), number + 1, +1, {scene.id})
    p.revise(scene, {**scene.data, "lines": first},
             f"{label(scene)} keeps lines 1–{k - 1}")
    p.create(new_id, "scene", new_data, f"new scene {number + 1} “{title}” ({new_id}) holds lines {k}–{len(lines)}"
             f" ({', '.join(line_map)})")
    shots = _shots(canon, scene.id)
    cut = next((i for i, sh in enumerate(shots) if any(n >= k for n in sh.data.get("lines", []))), len(shots))
    stay, move = shots[:cut], shots[cut:]
    stray = sorted({n for sh in move for n in sh.data.get("lines", []) if n < k})   # earlier lines shown later
    if stray and stay:
        last = stay[-1]
        keep = sorted({*last.data.get("lines", []), *stray})[:MAX_SHOT_LINES]
        p.revise(last, {**last.data, "lines": keep, "line_ids": [str(lines[n - 1].get("id")) for n in keep]},
                 f"{label(last)} also shows line(s) {stray}")
    elif stray:
        p.data["warnings"].append(f"line(s) {stray} are in no shot of {scene.id} any more; revise its shot plan")
    if not stay:
        p.data["warnings"].append(f"{scene.id} keeps no shot; the storyboard proposes a shot plan for it")
    if not move:
        p.data["warnings"].append(f"{new_id} gets no shot yet; the storyboard proposes a shot plan for it")
    motion = _motion_entries(canon, scene.id)
    moved_motion = []
    for j, sh in enumerate(move, 1):
        nums = [n - (k - 1) for n in sh.data.get("lines", []) if n >= k]
        nid = _move_shot(p, sh, new_id, j, nums, [line_map[str(lines[n + k - 2].get("id"))] for n in nums])
        if sh.id in motion:
            moved_motion.append({**motion[sh.id], "shot_id": nid})
    _split_motion(p, scene, new_id, [sh.id for sh in stay], moved_motion)
    _move_line_records(p, line_map, new_id)
    return p.data


def _split_motion(p: _Plan, scene: Record, new_id: str, stay: list[str], moved: list[dict[str, Any]]) -> None:
    motion = p.canon.live(f"motion-{scene.id}")
    if motion is None:
        return
    kept = [m for m in motion.data.get("shots", []) if m.get("shot_id") in stay]
    if kept:
        p.revise(motion, {**motion.data, "shots": kept}, f"{motion.id} keeps the motion of {len(kept)} shot(s)")
    else:
        p.tombstone(motion, f"{motion.id} is removed (none of its shots stay)")
    if moved:
        p.create(f"motion-{new_id}", "motion", {**motion.data, "scene_id": new_id, "shots": moved},
                 f"the moved shots keep their motion (motion-{new_id})")


def _plan_merge(canon: Canon, args: dict[str, Any]) -> dict[str, Any]:
    """args: first, second (scene ids, adjacent in one episode, either order). The later scene's
    lines and shots are appended to the earlier one; the later scene is tombstoned."""
    a, b = _scene(canon, args.get("first")), _scene(canon, args.get("second"))
    if a.id == b.id:
        raise StructureError(f"cannot merge {label(a)} with itself; name two adjacent scenes")
    if int(a.data.get("number", 0)) > int(b.data.get("number", 0)):
        a, b = b, a
    episode = int(a.data.get("episode", 1))
    if int(b.data.get("episode", 1)) != episode or int(b.data.get("number", 0)) != int(a.data.get("number", 0)) + 1:
        raise StructureError(f"{label(a)} and {label(b)} are not next to each other in one episode; merge "
                             "adjacent scenes (reorder them first)")
    la, lb = list(a.data.get("lines", [])), list(b.data.get("lines", []))
    if len(la) + len(lb) > MAX_LINES:
        raise StructureError(f"{label(a)} and {label(b)} have {len(la)} + {len(lb)} lines; a scene holds at most "
                             f"{MAX_LINES}. Shorten one first (“rewrite the lines of scene {b.data.get('number')}”)")
    sa, sb = _shots(canon, a.id), _shots(canon, b.id)
    if len(sa) + len(sb) > MAX_SHOTS:
        raise StructureError(f"{label(a)} and {label(b)} have {len(sa)} + {len(sb)} shots; a scene holds at most "
                             f"{MAX_SHOTS}. Remove some shots first")
    p = _Plan(canon, "merge", f"merge {label(b)} into {label(a)}")
    line_map = {str(ln.get("id")): f"{a.id}-l{len(la) + i}" for i, ln in enumerate(lb, 1)}
    cast = list(dict.fromkeys([*a.data.get("characters", []), *b.data.get("characters", [])]))[:6]
    action = " ".join(filter(None, [str(a.data.get("action", "")), str(b.data.get("action", ""))]))[:400]
    p.revise(a, {**a.data, "characters": cast, "action": action,
                 "lines": la + [{**ln, "id": line_map[str(ln.get("id"))]} for ln in lb]},
             f"{label(a)} gets the {len(lb)} line(s) of {b.id} after its own {len(la)}")
    if str(b.data.get("location", "")).casefold() != str(a.data.get("location", "")).casefold():
        p.data["warnings"].append(f"the merged scene is at {a.data.get('location')}; the shots from {b.id} keep "
                                  f"{b.data.get('location')}")
    p.tombstone(b, f"{label(b)} is removed (merged into {a.id})")
    motion_a, motion_b = _motion_entries(canon, a.id), _motion_entries(canon, b.id)
    moved = []
    for j, sh in enumerate(sb, len(sa) + 1):
        nums = [n + len(la) for n in sh.data.get("lines", [])]
        nid = _move_shot(p, sh, a.id, j, nums, [line_map[str(lb[n - 1].get("id"))] for n in sh.data.get("lines", [])
                                                if 1 <= n <= len(lb)])
        if sh.id in motion_b:
            moved.append({**motion_b[sh.id], "shot_id": nid})
    rec_a, rec_b = canon.live(f"motion-{a.id}"), canon.live(f"motion-{b.id}")
    if rec_a is not None and rec_b is not None:
        p.revise(rec_a, {**rec_a.data, "shots": [*rec_a.data.get("shots", []), *moved]},
                 f"{rec_a.id} gets the motion of the {len(moved)} moved shot(s)")
    elif rec_a is not None:
        p.tombstone(rec_a, f"{rec_a.id} is removed: the merged scene's motion is proposed again")
    if rec_b is not None:
        p.tombstone(rec_b, f"{rec_b.id} goes with {b.id}")
    if bool(motion_a) != bool(motion_b):
        p.data["warnings"].append("only one of the two scenes had accepted motion; the merged scene's motion "
                                  "is proposed again")
    _move_line_records(p, line_map, a.id)
    _renumber_rest(p, scenes_of(canon, episode), int(b.data.get("number", 0)) + 1, -1, {b.id})
    return p.data


# ----------------------------------------------------------------------------- check


def check(canon: Canon, data: dict[str, Any]) -> list[str]:
    """What is wrong with applying `data` to canon now (each problem names its record and the fix);
    empty when it can be committed."""
    problems = []
    if data.get("op") not in OPS:
        problems.append(f"structural edit {data.get('op')!r} is unknown; use one of {', '.join(OPS)}")
    for rid, rev in (data.get("base") or {}).items():
        rec = canon.live(rid)
        if rec is None:
            problems.append(f"{rid} is no longer in canon; redo this proposal")
        elif rec.rev != rev:
            problems.append(f"{rid} changed since this proposal was made (rev {rev} → {rec.rev}); redo it")
    for change in data.get("changes", []):
        if change["action"] == "create" and canon.live(change["record"]) is not None:
            problems.append(f"{change['record']} already exists; redo this proposal")
    after: dict[int, list[int]] = {}
    gone = {c["record"] for c in data.get("changes", []) if c["action"] == "tombstone"}
    numbers = {c["record"]: int(c["data"]["number"]) for c in data.get("changes", [])
               if c["kind"] == "scene" and c["action"] in ("renumber", "revise", "create")}
    for scene in canon.list("scene"):
        if scene.id not in gone:
            after.setdefault(int(scene.data.get("episode", 1)), []).append(
                numbers.pop(scene.id, int(scene.data.get("number", 0))))
    for change in data.get("changes", []):
        if change["kind"] == "scene" and change["action"] == "create":
            after.setdefault(int(change["data"].get("episode", 1)), []).append(int(change["data"]["number"]))
    for episode, nums in sorted(after.items()):
        if sorted(nums) != list(range(1, len(nums) + 1)):
            problems.append(f"episode {episode}'s scenes would be numbered {sorted(nums)}, not 1 to {len(nums)}; "
                            "redo this proposal")
    if data.get("op") == "remove":
        for change in data.get("changes", []):
            if change["action"] == "tombstone" and change["kind"] in ("character", "location"):
                rec = canon.live(change["record"])
                users = users_of(canon, rec) if rec is not None else []
                users = [u for u in users if not any(f"({g})" in u for g in gone)]
                if users:
                    problems.append(f"{change['record']} is still used by {', '.join(users)}")
    return problems
