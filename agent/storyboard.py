"""The storyboard slice: reference sheets, backgrounds, shot plans and panels as proposals.

Images are drafted into `assets/drafts/...` and only copied to a versioned, never-overwritten path
under `assets/panels/...` when the director accepts one (or uploads their own). Every accepted
image records what it was made from, so `image_status` can say when it has gone stale.
"""
from __future__ import annotations

import difflib
import hashlib
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from agent.context import DirectorContext
from agent.state import Task
from memory.canon import Canon, Record
from memory.continuity import Fact, all_facts
from memory.errors import InputError, RecordNotFoundError
from memory.looks import apply_looks
from tools.backends.protocols import CharacterInShot, PanelRequest

PAINT_KIND = {"reference": "character_sheet", "background": "background", "panel": "panel"}
ID_PREFIX = {"reference": "ref", "background": "bg", "panel": "panel"}



def image_record_id(kind: str, subject: str) -> str:
    return f"{ID_PREFIX[kind]}-{subject}"


def shots_of(canon: Canon, scene_id: str) -> list[Record]:
    return sorted(canon.children("shot", "scene_id", scene_id), key=lambda r: r.data.get("index", 0))


def ordered_scenes(canon: Canon, episodes: list[int] | None = None) -> list[Record]:
    """Scenes in story order; only those of `episodes` when given (indexed lookups)."""
    if episodes is None:
        scenes = canon.list("scene")
    else:
        scenes = [sc for ep in episodes for sc in canon.children("scene", "episode", ep)]
    return sorted(scenes, key=lambda r: (r.data.get("episode", 0), r.data.get("number", 0)))


def next_storyboard_task(canon: Canon, ctx: DirectorContext) -> Task | None:
    """Reference sheets, then backgrounds, then each scene's shot plan and its panels, in order
    (the scenes of the episode being planned: agent.episodes)."""
    from agent.episodes import planning_episodes

    if ctx.painter is None:
        return None
    for char in canon.list("character"):
        if not canon.live(image_record_id("reference", char.id)):
            return {"kind": "reference", "target_id": None, "subject": char.id}
    for loc in canon.list("location"):
        if not canon.live(image_record_id("background", loc.id)):
            return {"kind": "background", "target_id": None, "subject": loc.id}
    episodes = planning_episodes(canon)
    for scene in ordered_scenes(canon, episodes):
        shots = shots_of(canon, scene.id)
        if not shots:
            return {"kind": "shots", "target_id": None, "scene_id": scene.id}
        for shot in shots:
            if not canon.live(image_record_id("panel", shot.id)):
                return {"kind": "panel", "target_id": None, "subject": shot.id}
    return _next_redraw(canon, getattr(ctx.painter, "name", None), episodes)


def _next_redraw(canon: Canon, painter: str | None, episodes: list[int] | None = None) -> Task | None:
    """The first accepted picture that is stale (its character, place, shot, style or painter changed,
    e.g. after a revert): the agent proposes redrawing it, sheets first, then backgrounds, then panels."""
    subjects = [("reference", [c.id for c in canon.list("character")]),
                ("background", [loc.id for loc in canon.list("location")]),
                ("panel", [sh.id for sc in ordered_scenes(canon, episodes) for sh in shots_of(canon, sc.id)])]
    for kind, ids in subjects:
        for subject in ids:
            image = canon.live(image_record_id(kind, subject))
            if image is not None and image_status(canon, image, painter)[0] == "stale":
                return {"kind": kind, "target_id": None, "subject": subject}
    return None


# ----------------------------------------------------------------------------- what a panel is made of


def _kept(canon: Canon, table: str, key: Any, compute: Any) -> Any:
    """`compute()`, kept in `table` until canon changes (`Canon.memo`): checking every picture's
    staleness asks for the same revisions, names and looks over and over."""
    memo = getattr(canon, "memo", None)
    if memo is None:
        return compute()
    kept = memo(f"storyboard.{table}", dict)
    if key not in kept:
        kept[key] = compute()
    return kept[key]


def _rev(canon: Canon, record_id: str | None) -> int | None:
    def read() -> int | None:
        rec = canon.live(record_id) if record_id else None
        return rec.rev if rec else None
    return _kept(canon, "rev", record_id, read)


def _by_name(canon: Canon, kind: str, name: str) -> Record | None:
    return _kept(canon, "by_name", (kind, name), lambda: _find_by_name(canon, kind, name))


def _find_by_name(canon: Canon, kind: str, name: str) -> Record | None:
    rec = canon.find_by_name(kind, name)
    if rec is not None and not rec.deleted:
        return rec
    names = {str(r.data.get("name")): r for r in canon.list(kind)}
    match = difflib.get_close_matches(name, list(names), n=1, cutoff=0.6)
    return names[match[0]] if match else None


def shot_speaker(canon: Canon, shot: dict[str, Any]) -> tuple[dict[str, Any] | None, Record | None]:
    """The shot's first line and the character who speaks it, when that character is on screen.

    A shot with dialogue shows its speaker unless the plan says the voice is off screen
    (`off_screen`), even when the plan does not list them among its characters.
    """
    line_ids = shot.get("line_ids", [])
    scene = canon.live(shot.get("scene_id", ""))
    lines = {ln.get("id"): ln for ln in (scene.data.get("lines", []) if scene else [])}
    first = lines.get(line_ids[0]) if line_ids else None
    speaker = first.get("speaker") if first else None
    who = _by_name(canon, "character", str(speaker)) if speaker and not shot.get("off_screen") else None
    return first, who


def made_from(canon: Canon, kind: str, subject: str) -> dict[str, Any]:
    """The revisions an image depends on; a later change to any of them makes the image stale."""
    deps: dict[str, Any] = {"style": _rev(canon, "style")}
    if kind == "reference":   # the sheet is drawn in the character's base look (episode 1's)
        rec = canon.get(subject)
        deps["character"] = [subject, look_signature(rec, 1, all_facts(canon)) if rec.kind == "character"
                             else rec.rev]
    elif kind == "background":
        deps["location"] = [subject, _rev(canon, subject)]
    else:
        shot = canon.get(subject)
        deps["shot"] = [subject, shot.rev]
        episode = shot_episode(canon, shot.data)

        def look(rec: Record) -> str:   # the look drawn in `episode` (the facts are read once per canon change)
            return _kept(canon, "look", (rec.id, rec.rev, episode),
                         lambda: look_signature(rec, episode, all_facts(canon)))

        chars = {}
        for ch in shot.data.get("characters", []):
            rec = _by_name(canon, "character", ch.get("name", ""))
            if rec is not None:   # the look drawn in the shot's episode, not the record's revision
                chars[rec.id] = {"look": look(rec), "ref": _rev(canon, image_record_id("reference", rec.id))}
        _, speaker = shot_speaker(canon, shot.data)  # drawn even when the plan does not list them
        if speaker is not None and speaker.id not in chars:
            chars[speaker.id] = {"look": look(speaker), "ref": _rev(canon, image_record_id("reference", speaker.id))}
        deps["characters"] = chars
        loc = _by_name(canon, "location", shot.data.get("location", "")) if shot.data.get("location") else None
        if loc is not None:
            deps["location"] = [loc.id, loc.rev]
            deps["background"] = _rev(canon, image_record_id("background", loc.id))
    return deps


def image_status(canon: Canon, image: Record, painter: str | None = None) -> tuple[str, list[str]]:
    """("accepted" | "stale", reasons): stale when anything it was made from has a newer revision
    (for a panel's characters: when the look drawn in its episode changed), or (given the project's
    current `painter` name) when it was generated by another painter."""
    kind, subject = image.data.get("kind", "panel"), image.data.get("subject", "")
    try:
        now = made_from(canon, kind, subject)
    except RecordNotFoundError:
        return "stale", [f"{subject} no longer exists"]
    then = _upgraded(canon, image.data.get("made_from") or {}, now)
    reasons = []
    for key in sorted(set(now) | set(then)):
        if now.get(key) != then.get(key):
            reasons.append(f"{key} changed since it was drawn ({then.get(key)} → {now.get(key)})")
    model = str(image.data.get("model") or "")
    if painter and image.data.get("source") == "generated" and not model.startswith(
            {"animatic": "animatic", "diffusers": "diffusers"}.get(painter, painter)):
        reasons.append(f"drawn by {model}; the project now paints with {painter}")
    return ("stale" if reasons else "accepted"), reasons


def _upgraded(canon: Canon, then: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    """A panel drawn before looks were tracked recorded each character's revision: it is as now
    when the character has not changed since."""
    sheet = then.get("character")
    if isinstance(sheet, list) and len(sheet) == 2 and isinstance(sheet[1], int) \
            and isinstance((now.get("character") or [None, None])[1], str):   # a sheet: the revision it was drawn at
        rec = canon.live(str(sheet[0]))
        then = {**then, "character": now["character"] if rec is not None and rec.rev == sheet[1] else sheet}
    chars = then.get("characters")
    if not isinstance(chars, dict) or not any(isinstance(v, dict) and "look" not in v for v in chars.values()):
        return then
    upgraded = {}
    for cid, entry in chars.items():
        rec = canon.live(cid)
        same = isinstance(entry, dict) and "look" not in entry and rec is not None and rec.rev == entry.get("rev")
        current = (now.get("characters") or {}).get(cid)
        upgraded[cid] = {**current, "ref": entry.get("ref")} if same and current else entry
    return {**then, "characters": upgraded}


def shot_episode(canon: Canon, shot: dict[str, Any]) -> int:
    """The episode of a shot (its scene's; 1 when unknown)."""
    scene = canon.live(str(shot.get("scene_id") or ""))
    ep = scene.data.get("episode") if scene is not None else None
    return ep if isinstance(ep, int) and not isinstance(ep, bool) and ep > 0 else 1


def look_tags(rec: Record, episode: int, facts: list[Fact] | None = None) -> tuple[str, ...]:
    """What the painter draws of a character in `episode`: the look in force (base tags, variants,
    outfit/injury facts: memory.looks) plus build and age."""
    look = apply_looks(rec.data, episode, facts or [], character_id=rec.id)
    return tuple(look.tags) + body_tags(rec.data)


def look_signature(rec: Record, episode: int, facts: list[Fact] | None = None) -> str:
    """A short hash of `look_tags`: equal signatures draw the same figure."""
    return hashlib.sha256("\x1f".join(look_tags(rec, episode, facts)).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------- painting


def _style(canon: Canon) -> tuple[tuple[str, ...], tuple[str, ...]]:
    style = canon.live("style")
    if not style:
        return (), ()
    art = tuple(t.strip() for t in str(style.data.get("art_style", "")).split(",") if t.strip())
    return art, tuple(style.data.get("palette", []))


def _abs(ctx: DirectorContext, rel: str | None) -> Path | None:
    return ctx.path(rel) if rel else None


def _image_path(ctx: DirectorContext, kind: str, subject: str) -> Path | None:
    """An accepted image; for a background, its clean backdrop layer when the painter gave one
    (the composed background carries the location's name label)."""
    rec = ctx.canon.live(image_record_id(kind, subject))
    if rec is None:
        return None
    return _abs(ctx, rec.data.get("layers", {}).get("backdrop") or rec.data.get("path"))


_BODY_WORDS = ("child", "kid", "boy", "girl", "teen", "teenager", "young", "old", "elderly", "aged", "ancient",
               "tall", "short", "small", "tiny", "giant", "stout", "burly", "plump", "heavyset", "broad",
               "slender", "slim", "thin", "petite", "lanky", "muscular", "frail", "hunched")


def body_tags(data: dict[str, Any]) -> tuple[str, ...]:
    """Build and age as look tags, from a character's age and role words, so that a
    painter can tell a child from an old man ("child", "elderly", "tall", "stout"…); only words the
    look tags do not already say."""
    import re

    look = set(re.findall(r"[a-z]+", " ".join(str(t) for t in data.get("look_tags", [])).lower()))
    age = str(data.get("age", "")).lower()
    tags: list[str] = []
    number = re.search(r"\d+", age)
    if number:
        years = int(number.group())
        tags.append("child" if years < 13 else "teenager" if years < 18 else "elderly" if years >= 60 else "")
    words = re.findall(r"[a-z]+(?:-[a-z]+)?", f"{age} {data.get('role', '')}".lower())  # "short-tempered" stays whole
    tags += [w for w in words if w in _BODY_WORDS]
    seen: set[str] = set()
    return tuple(t for t in tags if t and t not in look and not (t in seen or seen.add(t)))


def _character(ctx: DirectorContext, rec: Record, episode: int = 1, facts: list[Fact] | None = None,
               **kw: Any) -> CharacterInShot:
    """A character as drawn in `episode`: the look in force then (memory.looks)."""
    lora = (ctx.loras or {}).get(rec.id)
    return CharacterInShot(id=rec.id, name=str(rec.data.get("name", rec.id)),
                           look_tags=look_tags(rec, episode, facts),
                           reference_image=_image_path(ctx, "reference", rec.id), lora=lora, **kw)


def panel_request(ctx: DirectorContext, kind: str, subject: str, *, notes: list[str], seed: int,
                  episode: int | None = None) -> PanelRequest:
    """Everything the painter needs, from canon: look tags (the look in force in the shot's episode;
    for a reference sheet in `episode`, default 1), style guide, the shot's directive."""
    canon = ctx.canon
    facts = all_facts(canon)
    art, palette = _style(canon)
    note = " ".join(notes[-3:])
    base = PanelRequest(shot_id=subject, style_tags=art, palette=palette, note=note, seed=seed,
                        kind=PAINT_KIND[kind])
    if kind == "reference":
        return replace(base, characters=(_character(ctx, canon.get(subject), episode or 1, facts),),
                       framing="medium")
    if kind == "background":
        loc = canon.get(subject)
        return replace(base, location_name=str(loc.data.get("name", "")),
                       location_tags=tuple(loc.data.get("look_tags", [])), framing="establishing")
    shot = canon.get(subject)
    data = shot.data
    ep = shot_episode(canon, data)
    first, who = shot_speaker(canon, data)
    speaker = first.get("speaker") if first else None
    chars = []
    for ch in data.get("characters", []):
        rec = _by_name(canon, "character", ch.get("name", ""))
        if rec is not None and all(c.id != rec.id for c in chars):   # two spellings of one person: once
            chars.append(_character(ctx, rec, ep, facts, expression=ch.get("expression", "neutral"),
                                    pose=ch.get("pose", ""), speaking=rec.data.get("name") == speaker))
    if who is not None and all(c.id != who.id for c in chars):
        chars.append(_character(ctx, who, ep, facts, expression=str(first.get("emotion") or "neutral"),
                                speaking=True))
    loc = _by_name(canon, "location", data.get("location", "")) if data.get("location") else None
    return replace(
        base, characters=tuple(chars), framing=data.get("framing", "medium"), angle=data.get("angle", ""),
        camera_move=data.get("camera_move", "static"), lighting=data.get("lighting", ""),
        mood=data.get("mood", ""), line_text=f"{speaker}: {first.get('line')}" if first else "",
        location_name=str(loc.data.get("name", "")) if loc else "",
        location_tags=tuple(loc.data.get("look_tags", [])) if loc else (),
        background_image=_image_path(ctx, "background", loc.id) if loc else None)


def _seed(subject: str, attempt: int, i: int) -> int:
    h = int(hashlib.sha256(subject.encode()).hexdigest()[:6], 16)
    return (h + attempt * 1009 + i * 7919) % 2_147_483_647


def paint_candidates(ctx: DirectorContext, task: Task, *, proposal_id: str, attempt: int,
                     notes: list[str]) -> dict[str, Any]:
    """Draw N candidates into the drafts folder; returns the card's data (relative paths, seeds)."""
    assert ctx.painter is not None
    kind, subject = task["kind"], task["subject"]
    out = ctx.path(Path("assets", "drafts", kind, subject, proposal_id))
    candidates = []
    for i in range(max(1, ctx.candidates)):
        seed = _seed(subject, attempt, i)
        request = panel_request(ctx, kind, subject, notes=notes, seed=seed, episode=task.get("episode"))
        result = ctx.painter.paint(request, out)
        rel = ctx.rel
        candidates.append({"path": rel(result.image), "seed": result.seed, "model": result.model,
                           "layers": {k: rel(v) for k, v in result.layers.items()},
                           "variants": {k: rel(v) for k, v in result.variants.items()}})
    subject_rec = ctx.canon.get(subject)
    name = subject_rec.data.get("name") or subject
    return {"kind": kind, "subject": subject, "subject_name": str(name), "candidates": candidates,
            "painter": ctx.painter.name, "animatic": ctx.painter.name == "animatic",
            "made_from": made_from(ctx.canon, kind, subject)}


def accept_image(ctx: DirectorContext, data: dict[str, Any], *, choice: int | None, upload: str | None,
                 actor: str, note: str) -> Record:
    """Copy the chosen candidate (or the upload) to a new versioned path and record it in canon."""
    kind, subject = data["kind"], data["subject"]
    record_id = image_record_id(kind, subject)
    if upload:
        chosen: dict[str, Any] = {"path": upload, "seed": None, "model": "upload", "layers": {}, "variants": {}}
    else:
        cands = data["candidates"]
        chosen = cands[min(max(choice or 0, 0), len(cands) - 1)]
    src = ctx.path(chosen["path"])
    if not src.is_file():
        raise InputError(f"the image {chosen['path']} is gone (its drafts folder was deleted?); "
                         "press Redo for fresh candidates, or upload your own")
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:10]
    prev = ctx.canon.live(record_id)
    version = (prev.rev + 1) if prev else 1
    dest_dir = ctx.path(Path("assets", "panels", subject))
    dest_dir.mkdir(parents=True, exist_ok=True)

    def keep(path: str, suffix: str) -> str:
        dest = dest_dir / f"v{version}-{digest}{suffix}.png"
        if not dest.exists():  # content-addressed and versioned: an accepted image is never overwritten
            tmp = dest.with_suffix(".tmp")
            shutil.copyfile(ctx.path(path), tmp)
            tmp.replace(dest)
        return ctx.rel(dest)

    record = {"kind": kind, "subject": subject, "path": keep(chosen["path"], ""),
              "seed": chosen.get("seed"), "model": chosen.get("model"),
              "layers": {k: keep(v, "." + k.replace(":", "_")) for k, v in chosen.get("layers", {}).items()},
              "variants": {k: keep(v, "." + k.replace(":", "_")) for k, v in chosen.get("variants", {}).items()},
              # what the candidate was drawn from (an upload answers to canon as it is now)
              "made_from": made_from(ctx.canon, kind, subject) if upload else data.get("made_from"),
              "source": "upload" if upload else "generated"}
    return ctx.canon.upsert("panel", record, actor=actor, record_id=record_id, note=note)


def write_shot_plan(canon: Canon, plan: dict[str, Any], *, actor: str, note: str) -> list[Record]:
    """One `shot` record per planned shot (revised in place on a re-plan; extra old shots deleted)."""
    scene = canon.get(plan["scene_id"])
    line_ids = [ln.get("id") or f"{scene.id}-l{i}" for i, ln in enumerate(scene.data.get("lines", []), 1)]
    existing = shots_of(canon, scene.id)
    records = []
    for i, shot in enumerate(plan["shots"], 1):
        data = {**shot, "scene_id": scene.id, "index": i,
                "line_ids": [line_ids[n - 1] for n in shot.get("lines", []) if 1 <= n <= len(line_ids)]}
        records.append(canon.upsert("shot", data, actor=actor, record_id=f"{scene.id}-s{i}", note=note))
    for old in existing[len(plan["shots"]):]:
        records.append(canon.delete(old.id, actor=actor, note=note))
    return records
