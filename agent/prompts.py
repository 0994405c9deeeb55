"""Every prompt text the director agent sends, in one place.

Prompts are short on purpose: the embedded model has a 4k context and 135M parameters. The JSON
schema travels separately (response_format), so prompts describe intent, not syntax.
"""
from __future__ import annotations

import json
from typing import Any

SYSTEM = (
    "You are the writers' room assistant for a vertical anime mini drama (short 9:16 episodes). "
    "You propose; the human director decides. Stay consistent with the story bible entries you are "
    "given: never change a character's name, look or role unless asked. Answer with JSON only."
)

TASKS = {
    "series": (
        "Propose the series title, a one-sentence logline, and the style guide: art style (as "
        "image-prompt words, e.g. 'anime cel shading, soft rim light'), a palette of 3-5 colours "
        "(hex like #1b2a4a), the tone, and the target episode length in seconds (30-90)."
    ),
    "character": (
        "Propose ONE new character for the series: name, role (lead, rival, mentor...), age, "
        "personality, look as 4-8 reusable image-prompt tags (hair, eyes, outfit, accessory), and "
        "voice notes (pitch, pace, timbre)."
    ),
    "location": "Propose ONE new location: name, short description, and 2-6 image-prompt tags.",
    "prop": "Propose ONE important prop: name, description, owner (a character name or empty), tags.",
    "outline": (
        "Propose the season outline: {episodes} episodes, each with number, title and a one-sentence "
        "logline. Each episode ends on a cliffhanger."
    ),
    "beats": (
        "Propose the beats of episode {episode} in the mini-drama shape: first a hook (grabs in the "
        "first seconds), then escalation, a twist, and a cliffhanger last. 4-6 beats, each with kind "
        "(hook, escalation, twist or cliffhanger) and a one-sentence summary."
    ),
    "scene": (
        "Write scene {number} of episode {episode}: title, location (one from the bible), characters "
        "present (only from the cast), a short action description, and 3-6 dialogue lines, each "
        "with speaker (from the cast), the line (short, spoken), and emotion."
    ),
    "shots": (
        "Plan the shots of scene {scene_id} for a vertical 9:16 anime episode: 3-6 shots. Per shot: "
        "framing (establishing, wide, medium, close-up, extreme close-up), angle, camera move (static, "
        "push-in, pull-out, pan, tilt, shake), the characters present with expression and pose, the "
        "location, lighting, mood, the dialogue line numbers it covers (every line exactly once, in "
        "order), a duration in seconds, and the transition into it (cut, crossfade, dip, slide, whip)."
    ),
}

#: Added to the beats task of episode 2 on: the series continues from the cliffhanger before.
BEATS_NEXT = (
    "Episode {episode} continues the series: its hook opens right where episode {previous} ended (the "
    "cliffhanger given above) and names what happened there; stay consistent with the facts listed."
)

REVISE = (
    "Revise this existing {kind} record as the director asks, keeping everything else the same.\n"
    "Director's request: {request}\nCurrent record: {current}"
)

ANSWER_SYSTEM = (
    "You answer the director's questions about their series using only the story bible entries "
    "given. Be brief (1-3 sentences). If the bible does not say, say so."
)


def _bible_block(entries: list[str]) -> str:
    if not entries:
        return "Story bible: (empty so far)"
    return "Story bible entries:\n" + "\n".join(f"- {e}" for e in entries)


def vision_block(vision: dict[str, Any] | None) -> str:
    """The director's vision (agent.kinds.vision) as the prompt states it; "" without one."""
    if not vision:
        return ""

    def items(key: str) -> str:
        return "; ".join(str(v) for v in vision.get(key) or []) or "(not given)"

    return ("Director's vision (follow it; it comes before everything else):\n"
            f"- Premise: {vision.get('premise', '')}\n- Themes: {items('themes')}\n"
            f"- Emotional core (what the audience feels at the end of episode 1): "
            f"{vision.get('emotional_core') or '(not given)'}\n- Tone references: {items('tone_references')}\n"
            f"- Never (rules no proposal may break): {items('never')}")


def proposal_messages(*, kind: str, premise: str, bible: list[str], task: dict[str, Any],
                      notes: list[str], rejected: list[str], current: dict[str, Any] | None,
                      existing_names: list[str], episodes: int, instruction: str = "",
                      vision: dict[str, Any] | None = None) -> list[dict[str, str]]:
    """Messages asking for one proposal of `kind`; `instruction` is the kind's task text (its
    registry entry names it; `TASKS` by default). `vision`: the director's accepted vision, stated
    first (every kind after it carries it)."""
    if current is not None:
        instruction = REVISE.format(kind=kind, request=task.get("request", ""),
                                    current=json.dumps(current, ensure_ascii=False))
    else:
        instruction = (instruction or TASKS[kind]).format(
            episodes=episodes, episode=task.get("episode", 1), number=task.get("number", 1),
            scene_id=task.get("scene_id", ""))
        if kind == "beats" and int(task.get("episode", 1)) > 1:
            instruction += "\n" + BEATS_NEXT.format(episode=task["episode"], previous=int(task["episode"]) - 1)
        if task.get("request"):
            instruction += f"\nDirector's request: {task['request']}"
    parts = [vision_block(vision) or f"Premise: {premise}", _bible_block(bible), instruction]
    if existing_names:
        parts.append("Already in the bible (do not repeat): " + ", ".join(existing_names))
    if rejected:
        parts.append("Drafts the director rejected: " + " | ".join(rejected[-3:]))
    if notes:
        parts.append("The director's notes (follow them): " + " | ".join(notes[-3:]))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "\n\n".join(parts)}]


def answer_messages(question: str, bible: list[str]) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": ANSWER_SYSTEM},
        {"role": "user", "content": f"{_bible_block(bible)}\n\nQuestion: {question}"},
    ]


def summarise(kind: str, data: dict[str, Any] | None) -> str:
    """One line about a proposal, for chat messages and rejected-draft memory (the kind's own
    `summarise` hook in the registry, agent.kinds)."""
    if not data:
        return kind
    from agent.kinds import KINDS
    from agent.kinds.base import summarise_fields

    known = KINDS.get(kind)
    return known.summarise(data) if known is not None else summarise_fields(kind, data)
