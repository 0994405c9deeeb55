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
from memory.errors import InputError, RecordNotFoundError
from tools.backends.protocols import CharacterInShot, PanelRequest

PAINT_KIND = {"reference": "character_sheet", "background": "background", "panel": "panel"}
ID_PREFIX = {"reference": "ref", "background": "bg", "panel": "panel"}



def image_record_id(kind: str, subject: str) -> str:
    return f"{ID_PREFIX[kind]}-{subject}"


def shots_of(canon: Canon, scene_id: str) -> list[Record]:
    return sorted(canon.children("shot", "scene_id", scene_id), key=lambda r: r.data.get("index", 0))


def ordered_scenes(canon: Canon) -> list[Record]:
    return sorted(canon.list("scene"), key=lambda r: (r.data.get("episode", 0), r.data.get("number", 0)))


def next_storyboard_task(canon: Canon, ctx: DirectorContext) -> Task | None:
    """Reference sheets, then backgrounds, then each scene's shot plan and its panels, in order."""
    if ctx.painter is None:
        return None
    for char in canon.list("character"):
        if not canon.live(image_record_id("reference", char.id)):
            return {"kind": "reference", "target_id": None, "subject": char.id}
    for loc in canon.list("location"):
        if not canon.live(image_record_id("background", loc.id)):
            return {"kind": "background", "target_id": None, "subject": loc.id}
    for scene in ordered_scenes(canon):
        shots = shots_of(canon, scene.id)
        if not shots:
            return {"kind": "shots", "target_id": None, "scene_id": scene.id}
        for shot in shots:
            if not canon.live(image_record_id("panel", shot.id)):
                return {"kind": "panel", "target_id": None, "subject": shot.id}
    return _next_redraw(canon, getattr(ctx.painter, "name", None))


def _next_redraw(canon: Canon, painter: str | None) -> Task | None:
    """The first accepted picture that is stale (its character, place, shot, style or painter changed,
    e.g. after a revert): the agent proposes redrawing it, sheets first, then backgrounds, then panels."""
    subjects = [("reference", [c.id for c in canon.list("character")]),
                ("background", [loc.id for loc in canon.list("location")]),
                ("panel", [sh.id for sc in ordered_scenes(canon) for sh in shots_of(canon, sc.id)])]
    for kind, ids in subjects:
        for subject in ids:
            image = canon.live(image_record_id(kind, subject))
            if image is not None and image_status(canon, image, painter)[0] == "stale":
                return {"kind": kind, "target_id": None, "subject": subject}
    return None


# ----------------------------------------------------------------------------- what a panel is made of


def _rev(canon: Canon, record_id: str | None) -> int | None:
    rec = canon.live(record_id) if record_id else None
    return rec.rev if rec else None


def _by_name(canon: Canon, kind: str, name: str) -> Record | None:
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
    if kind == "reference":
        deps["character"] = [subject, _rev(canon, subject)]
    elif kind == "background":
        deps["location"] = [subject, _rev(canon, subject)]
    else:
        shot = canon.get(subject)
        deps["shot"] = [subject, shot.rev]
        chars = {}
        for ch in shot.data.get("characters", []):
            rec = _by_name(canon, "character", ch.get("name", ""))
            if rec is not None:
                chars[rec.id] = {"rev": rec.rev, "ref": _rev(canon, image_record_id("reference", rec.id))}
        _, speaker = shot_speaker(canon, shot.data)  # drawn even when the plan does not list them
        if speaker is not None and speaker.id not in chars:
            chars[speaker.id] = {"rev": speaker.rev, "ref": _rev(canon, image_record_id("reference", speaker.id))}
        deps["characters"] = chars
        loc = _by_name(canon, "location", shot.data.get("location", "")) if shot.data.get("location") else None
        if loc is not None:
            deps["location"] = [loc.id, loc.rev]
            deps["background"] = _rev(canon, image_record_id("background", loc.id))
    return deps


def image_status(canon: Canon, image: Record, painter: str | None = None) -> tuple[str, list[str]]:
    """("accepted" | "stale", reasons): stale when anything it was made from has a newer revision,
    or (given the project's current `painter` name) when it was generated by another painter."""
    kind, subject = image.data.get("kind", "panel"), image.data.get("subject", "")
    try:
        now = made_from(canon, kind, subject)
    except RecordNotFoundError:
        return "stale", [f"{subject} no longer exists"]
    then = image.data.get("made_from") or {}
    reasons = []
    for key in sorted(set(now) | set(then)):
        if now.get(key) != then.get(key):
            reasons.append(f"{key} changed since it was drawn ({then.get(key)} → {now.get(key)})")
    model = str(image.data.get("model") or "")
    if painter and image.data.get("source") == "generated" and not model.startswith(
            {"animatic": "animatic", "diffusers": "diffusers"}.get(painter, painter)):
        reasons.append(f"drawn by {model}; the project now paints with {painter}")
    return ("stale" if reasons else "accepted"), reasons


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


def _character(ctx: DirectorContext, rec: Record, **kw: Any) -> CharacterInShot:
    lora = (ctx.loras or {}).get(rec.id)
    return CharacterInShot(id=rec.id, name=str(rec.data.get("name", rec.id)),
                           look_tags=tuple(rec.data.get("look_tags", [])) + body_tags(rec.data),
                           reference_image=_image_path(ctx, "reference", rec.id), lora=lora, **kw)


def panel_request(ctx: DirectorContext, kind: str, subject: str, *, notes: list[str], seed: int) -> PanelRequest:
    """Everything the painter needs, from canon: look tags, style guide, the shot's directive."""
    canon = ctx.canon
    art, palette = _style(canon)
    note = " ".join(notes[-3:])
    base = PanelRequest(shot_id=subject, style_tags=art, palette=palette, note=note, seed=seed,
                        kind=PAINT_KIND[kind])
    if kind == "reference":
        return replace(base, characters=(_character(ctx, canon.get(subject)),), framing="medium")
    if kind == "background":
        loc = canon.get(subject)
        return replace(base, location_name=str(loc.data.get("name", "")),
                       location_tags=tuple(loc.data.get("look_tags", [])), framing="establishing")
    shot = canon.get(subject)
    data = shot.data
    first, who = shot_speaker(canon, data)
    speaker = first.get("speaker") if first else None
    chars = []
    for ch in data.get("characters", []):
        rec = _by_name(canon, "character", ch.get("name", ""))
        if rec is not None and all(c.id != rec.id for c in chars):   # two spellings of one person: once
            chars.append(_character(ctx, rec, expression=ch.get("expression", "neutral"),
                                    pose=ch.get("pose", ""), speaking=rec.data.get("name") == speaker))
    if who is not None and all(c.id != who.id for c in chars):
        chars.append(_character(ctx, who, expression=str(first.get("emotion") or "neutral"), speaking=True))
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
        request = panel_request(ctx, kind, subject, notes=notes, seed=seed)
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
