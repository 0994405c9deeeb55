"""Proposal tools for the production: reframe a shot, redo a panel, recast a voice, redo a take,
change a scene's motion; and the director's direct instructions for dubbing and pronunciation (logged
edits of the project's glossary, as before: the translations and takes they lead to are proposals)."""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, Field

from agent.tools import Outcome, Tool, ToolContext, ToolError
from agent.tools.refs import Catalog, resolve
from agent.tools.revise import describe_changes, prepared_plan
from memory.canon import Record
from memory.errors import StoryreelError

FRAMING = Literal["establishing", "wide", "medium", "close-up", "extreme close-up"]
CAMERA = Literal["static", "push-in", "pull-out", "pan", "tilt", "shake"]
TIGHTER = {"establishing": "wide", "wide": "medium", "medium": "close-up", "close-up": "extreme close-up",
           "extreme close-up": "extreme close-up"}
LOOSER = {v: k for k, v in TIGHTER.items() if k != v} | {"establishing": "establishing"}
CAMERA_WORDS: tuple[tuple[str, str], ...] = (
    (r"\b(push(es|ing)?[- ]in|zoom(s|ing)?[- ]in|dolly[- ]in)\b", "push-in"),
    (r"\b(pull(s|ing)?[- ]out|zoom(s|ing)?[- ]out|dolly[- ]out)\b", "pull-out"),
    (r"\bpan(s|ning)?\b", "pan"), (r"\btilt(s|ing)?\b", "tilt"), (r"\bshak(e|y|ing)\b", "shake"),
    (r"\b(static|still camera|locked[- ]off|no camera move(ment)?)\b", "static"),
)
ANGLE_WORDS: tuple[tuple[str, str], ...] = (
    (r"\b(low[- ]angle|from below|looking up at)\b", "low"), (r"\b(high[- ]angle|from above|looking down)\b", "high"),
    (r"\b(bird'?s[- ]eye|overhead|top[- ]down)\b", "bird's eye"), (r"\b(dutch|tilted|canted)\b", "dutch"),
    (r"\b(eye[- ]level)\b", "eye level"), (r"\bover[- ]the[- ]shoulder\b", "over the shoulder"),
)


def shot_changes(text: str, shot: dict[str, Any], cast: list[str]) -> dict[str, Any]:
    """What words ask of a shot's plan: framing ("closer", "wider", "close-up"), angle ("from
    below"), camera move ("push in"), cast members to add. {} when they are for the painter alone."""
    from agent import notes as note_parser

    lowered = text.casefold()
    changes = dict(note_parser.panel_note_changes(text, shot, cast))
    framing = str(shot.get("framing", "medium"))
    if re.search(r"\b(closer|tighter|push closer|close in)\b", lowered) and not re.search(r"close[- ]?up", lowered):
        changes["framing"] = TIGHTER.get(framing, "close-up")   # one step tighter than it is
    if re.search(r"\b(wider|further|farther|pull back)\b", lowered):
        changes["framing"] = LOOSER.get(framing, "wide")
    if changes.get("framing") == framing:
        changes.pop("framing")
    for pattern, move in CAMERA_WORDS:
        if re.search(pattern, lowered) and move != shot.get("camera_move"):
            changes["camera_move"] = move
            break
    for pattern, angle in ANGLE_WORDS:
        if re.search(pattern, lowered) and angle != shot.get("angle"):
            changes["angle"] = angle
            break
    return changes


def edited_plan(tc: ToolContext, shot: Record, changes: dict[str, Any]) -> dict[str, Any]:
    """The scene's accepted plan with one shot changed (framing, angle, camera move, cast added)."""
    from agent import revisions

    edit = {"shot_id": shot.id, **{k: v for k, v in changes.items() if k in ("add_characters", "framing")}}
    plan = revisions.shot_edit_plan(tc.ctx.canon, edit)
    index = int(shot.data.get("index", 1)) - 1
    for key in ("angle", "camera_move"):
        if key in changes:
            plan["shots"][index] = {**plan["shots"][index], key: changes[key]}
    return plan


class ReframeShotArgs(BaseModel):
    shot: str = Field(min_length=1, max_length=120, description="the shot: id, 'shot 4', 'scene 2 shot 1'")
    framing: FRAMING | None = None
    angle: str | None = Field(default=None, max_length=40)
    camera_move: CAMERA | None = None
    instruction: str = Field(default="", max_length=500, description="the change in words, e.g. 'closer'")


class RedoPanelArgs(BaseModel):
    shot: str = Field(min_length=1, max_length=120)
    note: str = Field(default="", max_length=500, description="what the new picture should change")


class RecastArgs(BaseModel):
    character: str = Field(min_length=1, max_length=120)
    instruction: str = Field(default="", max_length=500, description="how the voice should change")


class RedoTakeArgs(BaseModel):
    line: str = Field(min_length=1, max_length=200, description="the line id, or its words in quotes")
    note: str = Field(default="", max_length=500, description="how to say it, e.g. 'softer, slower'")


class ChangeMotionArgs(BaseModel):
    target: str = Field(min_length=1, max_length=120, description="a scene or a shot")
    instruction: str = Field(min_length=1, max_length=500)


class DubArgs(BaseModel):
    language: str = Field(min_length=2, max_length=40, description="a language name or code: Japanese, ja")


class PronounceArgs(BaseModel):
    word: str = Field(min_length=1, max_length=80)
    as_: str = Field(min_length=1, max_length=120, alias="as", description="how to say it, e.g. 'Eye-ko'")

    model_config = {"populate_by_name": True}


def _need(tc: ToolContext, backend: str, what: str) -> None:
    if getattr(tc.ctx, backend) is None:
        raise ToolError(f"{what} is off in this session (no {backend} backend); start the studio or chat with "
                        "the storyboard and voices on (the default), then ask again")


def reframe_shot(tc: ToolContext, args: ReframeShotArgs) -> Outcome:
    cat = Catalog.of(tc.ctx.canon)
    shot = resolve(cat, args.shot, ("shot",), what="shot")
    changes = {k: v for k, v in (("framing", args.framing), ("angle", args.angle),
                                 ("camera_move", args.camera_move)) if v and v != shot.data.get(k)}
    if not changes and args.instruction:
        changes = shot_changes(args.instruction, shot.data, [str(c.data.get("name")) for c in cat.characters])
    scene = cat.scene_of(shot)
    assert scene is not None
    if not changes:
        from agent.tools.revise import revision_task

        return Outcome(tasks=[revision_task(shot, args.instruction or tc.text)])
    return prepared_plan(tc, scene, edited_plan(tc, shot, changes), args.instruction or tc.text,
                         f"shot {shot.data.get('index')}: {describe_changes(shot.data, changes)}")


def redo_panel(tc: ToolContext, args: RedoPanelArgs) -> Outcome:
    _need(tc, "painter", "the storyboard")
    cat = Catalog.of(tc.ctx.canon)
    shot = resolve(cat, args.shot, ("shot",), what="shot")
    panel = {"kind": "panel", "target_id": None, "subject": shot.id}
    changes = shot_changes(args.note, shot.data, [str(c.data.get("name")) for c in cat.characters]) \
        if args.note else {}
    if changes:  # the painter draws what the plan says: revise the plan, then draw the panel again
        scene = cat.scene_of(shot)
        assert scene is not None
        out = prepared_plan(tc, scene, edited_plan(tc, shot, changes), args.note,
                            f"shot {shot.data.get('index')}: {describe_changes(shot.data, changes)}")
        out.tasks = [panel]  # after the plan is decided
        return out
    return Outcome(tasks=[panel], notes=[args.note] if args.note else [])


def recast(tc: ToolContext, args: RecastArgs) -> Outcome:
    _need(tc, "voices", "voice casting")
    char = resolve(Catalog.of(tc.ctx.canon), args.character, ("character",), what="character")
    return Outcome(tasks=[{"kind": "casting", "target_id": None, "subject": char.id}],
                   notes=[args.instruction] if args.instruction else [])


def redo_take(tc: ToolContext, args: RedoTakeArgs) -> Outcome:
    _need(tc, "voices", "voice takes")
    cat = Catalog.of(tc.ctx.canon)
    line = resolve(cat, args.line, ("line",), what="line")
    return Outcome(tasks=[{"kind": "take", "target_id": None, "subject": line.id,
                           "scene_id": str(line.data.get("scene_id")), "language": "en"}],
                   notes=[args.note] if args.note else [])


def change_motion(tc: ToolContext, args: ChangeMotionArgs) -> Outcome:
    _need(tc, "painter", "motion")
    cat = Catalog.of(tc.ctx.canon)
    rec = resolve(cat, args.target, ("scene", "shot"), what="scene or shot")
    scene = cat.scene_of(rec)
    assert scene is not None
    note = args.instruction if rec.kind == "scene" else f"shot {rec.data.get('index')}: {args.instruction}"
    return Outcome(tasks=[{"kind": "motion", "target_id": None, "scene_id": scene.id}], notes=[note])


def dub(tc: ToolContext, args: DubArgs) -> Outcome:
    from agent import voices

    ctx = tc.ctx
    try:
        code = voices.language_code(args.language)
    except StoryreelError as exc:
        raise ToolError(str(exc)) from exc
    langs = voices.dub_languages(ctx.canon)
    rec = ctx.canon.upsert("glossary", {"languages": sorted({*langs, code})}, actor="human",
                           record_id="dub-languages", note=f"dub into {code}")
    _logged(tc, rec)
    return Outcome(say=(f"Dubbing episode 1 into {voices.LANGUAGE_NAMES.get(code, code)}: I'll propose the "
                        "translations scene by scene, then takes in each character's voice."), wrote=True)


def pronounce(tc: ToolContext, args: PronounceArgs) -> Outcome:
    from agent import voices
    from agent.kinds import lookup

    ctx = tc.ctx
    entries, _ = voices.lexicon(ctx.canon)
    entries[args.word.strip()] = args.as_.strip()
    rec = ctx.canon.upsert("glossary", {"entries": entries}, actor="human", record_id="lexicon",
                           note=f"pronounce {args.word!r} as {args.as_!r}")
    _logged(tc, rec)
    # the card waits as it was, except a take or audition: voiced again with the new pronunciation
    return Outcome(say=f"Noted: “{args.word}” is said “{args.as_}” in every take from now on.", wrote=True,
                   keep_card=lookup((tc.pending or {}).get("kind")).media != "audio")


def _logged(tc: ToolContext, rec: Record) -> None:
    tc.ctx.bible.index(rec)
    tc.ctx.ledger.append(actor="human", action="edit", record_id=rec.id, kind=rec.kind, rev=rec.rev,
                         inputs={"request": tc.text}, note=tc.text[:120])


TOOLS = (
    Tool("reframe_shot", "Propose another framing, angle or camera move for one shot.",
         ReframeShotArgs, reframe_shot, "production", target=lambda a: a.shot,
         refs=(("shot", ("shot",)),)),
    Tool("redo_panel", "Draw a shot's panel again, with a note for the painter.",
         RedoPanelArgs, redo_panel, "production", target=lambda a: a.shot,
         refs=(("shot", ("shot",)),)),
    Tool("recast", "Propose another voice for a character (calmer, deeper, faster…).",
         RecastArgs, recast, "production", target=lambda a: a.character,
         refs=(("character", ("character",)),)),
    Tool("redo_take", "Record a line's take again, with a note on how to say it.",
         RedoTakeArgs, redo_take, "production", target=lambda a: a.line,
         refs=(("line", ("line",)),)),
    Tool("change_motion", "Propose new motion (camera moves, grade, pacing) for a scene or one of its shots.",
         ChangeMotionArgs, change_motion, "production", target=lambda a: a.target,
         refs=(("target", ("scene", "shot")),)),
    Tool("dub", "Dub the episode into another language (translations and takes are proposed next).",
         DubArgs, dub, "production", target=lambda a: a.language),
    Tool("pronounce", "Say a word another way in every take (the project's lexicon).",
         PronounceArgs, pronounce, "production", target=lambda a: a.word),
)


