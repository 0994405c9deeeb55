"""Read-only tools, answered at once: a question from the bible (naming the records it used), the
production's status per episode, and one record shown as the bible holds it."""
from __future__ import annotations

from pydantic import BaseModel, Field

from agent.tools import Outcome, Tool, ToolContext
from agent.tools.refs import Catalog, display, resolve
from memory.errors import StoryreelError

# What questions are answered from: the bible's prose (not shots or translated lines).
ANSWER_KINDS = ("series", "style", "character", "location", "prop", "outline", "episode", "beats", "scene",
                "voice", "glossary")
ANY_KIND = ("character", "location", "prop", "scene", "shot", "episode", "series", "style", "outline", "beats",
            "line", "voice")


def bible_excerpt(text: str, limit: int = 240) -> str:
    """A bible hit ("Character Aiko — role: lead; look: …") shortened at a fact boundary, never
    mid-fact: whole facts while they fit, at least one, then "…"."""
    if len(text) <= limit:
        return text
    head, sep, rest = text.partition(" — ")
    facts = rest.split("; ") if sep else [text]
    kept: list[str] = []
    for fact in facts:
        if kept and len(head + sep + "; ".join([*kept, fact])) > limit:
            break
        kept.append(fact)
    return (head + sep if sep else "") + "; ".join(kept) + ("; …" if len(kept) < len(facts) else "")


class AskBibleArgs(BaseModel):
    question: str = Field(min_length=1, max_length=500, description="the director's question, in their words")


class StatusArgs(BaseModel):
    episode: int | None = Field(default=None, ge=1, le=100, description="one episode; omit for every episode")


class ShowArgs(BaseModel):
    record: str = Field(min_length=1, max_length=120,
                        description="a record id or name: 'Aiko', 'scene 2', 'shot 4', 'style'")


def ask_bible(tc: ToolContext, args: AskBibleArgs) -> Outcome:
    from agent import prompts
    from agent.llm import unescape_entities

    ctx = tc.ctx
    hits = ctx.bible.search(args.question, kinds=list(ANSWER_KINDS), k=4)
    texts = [h.text for h in hits]
    try:
        answer = unescape_entities(ctx.llm.complete(prompts.answer_messages(args.question, texts),
                                                    temperature=0.2, max_tokens=160).strip())
    except StoryreelError as exc:
        answer = f"(I could not ask the model: {exc})"
    if hits:
        answer += "\n\nFrom the bible: " + " · ".join(bible_excerpt(t) for t in texts[:2])
        answer += "\nRecords used: " + ", ".join(dict.fromkeys(h.record_id for h in hits))
    return Outcome(say=answer)


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def status_text(ctx: object, episode: int | None = None) -> str:
    """What is accepted, stale and missing, per episode, and what the agent proposes next."""
    from agent import cut, kinds, storyboard, voices

    canon = ctx.canon  # type: ignore[attr-defined]
    targets = ctx.targets  # type: ignore[attr-defined]
    out: list[str] = []
    room = [f"series {'accepted' if canon.live('series') else 'missing'}"]
    for kind, want in (("character", targets.characters), ("location", targets.locations), ("prop", targets.props)):
        have = len(canon.list(kind))
        room.append(f"{have}/{want} {kind}s" + (f" ({want - have} missing)" if have < want else ""))
    room.append(f"outline {'accepted' if canon.live('outline') else 'missing'}")
    out.append("Writers' room: " + ", ".join(room) + ".")
    episodes = sorted({int(r.data.get("number", 0)) for r in canon.list("episode")} | {1})
    for ep in ([episode] if episode else episodes):
        scenes = [s for s in storyboard.ordered_scenes(canon) if int(s.data.get("episode", 1)) == ep]
        parts = [f"beats {'accepted' if canon.live(f'beats-ep{ep}') else 'missing'}",
                 f"{len(scenes)}/{targets.scenes} scenes"]
        accepted = stale = missing = plans = 0
        stale_ids: list[str] = []
        for sc in scenes:
            shots = storyboard.shots_of(canon, sc.id)
            plans += bool(shots)
            for shot in shots:
                panel = canon.live(storyboard.image_record_id("panel", shot.id))
                if panel is None:
                    missing += 1
                    continue
                state, _ = storyboard.image_status(canon, panel)
                if state == "stale":
                    stale += 1
                    stale_ids.append(shot.id)
                else:
                    accepted += 1
        parts.append(f"shot plans {plans}/{len(scenes)}")
        parts.append(f"panels: {accepted} accepted, {stale} stale, {missing} missing"
                     + (f" (stale: {', '.join(stale_ids[:4])})" if stale_ids else ""))
        lines = [(sc, ln) for sc, ln in voices.episode_lines(canon, ep)] if scenes else []
        t_ok = t_stale = t_missing = 0
        for _, ln in lines:
            take = canon.live(voices.take_id(ln["id"], voices.PRIMARY_LANGUAGE)) if ln.get("id") else None
            if take is None:
                t_missing += 1
            elif voices.take_status(canon, take)[0] == "stale":
                t_stale += 1
            else:
                t_ok += 1
        parts.append(f"takes: {t_ok} accepted, {t_stale} stale, {t_missing} missing")
        motion = sum(1 for sc in scenes if canon.live(cut.motion_id(sc.id)))
        parts.append(f"motion {motion}/{len(scenes)} scenes")
        try:
            cut.episode_spec(canon, ctx.project_root, episode=ep)  # type: ignore[attr-defined]
            ready = "ready to render"
        except StoryreelError as exc:
            ready = f"not ready to render: {exc}"
        out.append(f"Episode {ep}: " + ", ".join(parts) + f"; {ready}.")
    nxt = kinds.next_task(canon, ctx)  # type: ignore[arg-type]  (the kinds' planners, in order)
    if nxt is None:
        out.append("Next: nothing is left to propose; ask for changes, or render.")
    else:
        subject = nxt.get("subject") or nxt.get("scene_id") or ""
        out.append(f"Next: a {nxt['kind']} proposal" + (f" for {subject}" if subject else "") + ".")
    return "\n".join(out)


def status(tc: ToolContext, args: StatusArgs) -> Outcome:
    return Outcome(say=status_text(tc.ctx, args.episode))


def show(tc: ToolContext, args: ShowArgs) -> Outcome:
    from memory.bible import record_text

    rec = resolve(Catalog.of(tc.ctx.canon), args.record, ANY_KIND, what="record")
    if rec.kind == "line":
        return Outcome(say=f"{display(rec)}: {rec.data.get('speaker')} ({rec.data.get('emotion', '')}) — "
                           f"“{rec.data.get('line')}”")
    return Outcome(say=f"{display(rec)}, rev {rec.rev}:\n{record_text(rec)}")


TOOLS = (
    Tool("ask_bible", "Answer a question about the story from the bible, naming the records used.",
         AskBibleArgs, ask_bible, "ask", read_only=True),
    Tool("status", "Say what is accepted, stale and missing per episode, and what comes next.",
         StatusArgs, status, "ask", read_only=True,
         target=lambda a: f"episode-{a.episode}" if a.episode else None),
    Tool("show", "Show one record (character, place, prop, scene, shot, line, style) as the bible has it.",
         ShowArgs, show, "ask", read_only=True, target=lambda a: a.record,
         refs=(("record", ANY_KIND),)),
)
