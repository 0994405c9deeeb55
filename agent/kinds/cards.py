"""Card bodies as Markdown: the field list every field proposal shows, and the helpers the kinds'
own card renderers share (escaping, palette chips, shot labels). No gradio here: the studio and the
terminal both read these through `ui.cards`."""
from __future__ import annotations

import re
from typing import Any

LABELS = {
    "look_tags": "Look (image tags)", "voice_notes": "Voice", "art_style": "Art style",
    "target_episode_seconds": "Target episode length (s)", "logline": "Logline",
}


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def esc(value: Any) -> str:
    """Keep model text from injecting HTML; Markdown shows '&' and quotes as they are."""
    return str(value).replace("<", "&lt;").replace(">", "&gt;")


_SCENE_ID = re.compile(r"scene-ep(\d+)-(\d+)$")
_SHOT_ID = re.compile(r"(scene-ep\d+-\d+)-s(\d+)$")


def scene_number(scene_id: str, canon: Any = None) -> int | None:
    """A scene's place in its episode: the live scene's `number` field in `canon`. The id
    (`scene-ep1-2`) is only the name the scene was given when it was created, so after a reorder or
    split it no longer says where the scene is; it is read only without a canon (or for a scene
    canon does not have), and None when it is no scene id."""
    if canon is not None:
        rec = canon.live(str(scene_id))
        if rec is not None and rec.kind == "scene" and rec.data.get("number") is not None:
            return int(rec.data["number"])
    m = _SCENE_ID.search(str(scene_id))
    return int(m[2]) if m else None


def shot_label(shot_id: str, *, short: bool = False, canon: Any = None) -> str:
    """`scene-ep1-2-s3` as "scene 2 · shot 3" (short: "sc2 s3"), the scene's number read from
    `canon` when given (see `scene_number`); other ids as they are."""
    m = _SHOT_ID.search(str(shot_id))
    if not m:
        return str(shot_id)
    shot = canon.live(str(shot_id)) if canon is not None else None
    index = int(shot.data.get("index") or m[2]) if shot is not None else int(m[2])
    scene = scene_number(str(shot.data.get("scene_id") or m[1]) if shot is not None else m[1], canon)
    return f"sc{scene} s{index}" if short else f"scene {scene} · shot {index}"


def palette(colours: list[str]) -> str:
    chips = []
    for c in colours:
        c_esc = esc(c)
        if c.startswith("#") and len(c) in (4, 7):
            chips.append(f'<span style="display:inline-block;width:1.1em;height:1.1em;background:{c_esc};'
                         f'border:1px solid #888;vertical-align:middle;margin-right:3px"></span>`{c_esc}`')
        else:
            chips.append(f"`{c_esc}`")
    return " ".join(chips)


def data_markdown(kind: str, data: dict[str, Any]) -> str:
    """The body of a card: fields as a list, dialogue as a script, beats as a numbered list."""
    lines: list[str] = []
    for key, value in data.items():
        if key == "palette" and isinstance(value, list):
            lines.append(f"- **Palette:** {palette(value)}")
        elif key == "lines" and isinstance(value, list):
            lines.append("- **Dialogue:**")
            for ln in value:
                lines.append(f"    - **{esc(ln.get('speaker', '?'))}** *({esc(ln.get('emotion', ''))})*: "
                             f"“{esc(ln.get('line', ''))}”")
        elif key == "beats" and isinstance(value, list):
            lines.append("- **Beats:**")
            for i, b in enumerate(value, 1):
                lines.append(f"    {i}. **{esc(b.get('kind', ''))}** — {esc(b.get('summary', ''))}")
        elif key == "episodes" and isinstance(value, list):
            lines.append("- **Episodes:**")
            for ep in value:
                lines.append(f"    {ep.get('number', '?')}. **{esc(ep.get('title', ''))}** — "
                             f"{esc(ep.get('logline', ''))}")
        elif key == "shots" and isinstance(value, list):
            lines.append("- **Shots:**")
            for i, sh in enumerate(value, 1):
                who = ", ".join(f"{esc(c.get('name'))} ({esc(c.get('expression', ''))})"
                                for c in sh.get("characters", [])) or "no one"
                said = sh.get("lines") or []
                parts = [f"**{esc(sh.get('framing') or 'medium')}**", esc(sh.get("angle") or "eye level"),
                         f"*{esc(sh.get('camera_move') or 'static')}*", f"{sh.get('duration_s') or 3.0} s", who,
                         ("line " if len(said) == 1 else "lines ") + ", ".join(map(str, said)) if said else "no lines",
                         esc(" ".join(filter(None, [sh.get("lighting"), sh.get("mood")])) or "—"),
                         f"← {esc(sh.get('transition') or 'cut')}"]
                lines.append(f"    {i}. " + " · ".join(parts))
        elif isinstance(value, list):
            lines.append(f"- **{label(key)}:** " + ", ".join(f"`{esc(v)}`" for v in value))
        elif key != "id":
            lines.append(f"- **{label(key)}:** {esc(value)}")
    return "\n".join(lines)


def motion_markdown(data: dict[str, Any]) -> str:
    """A motion proposal as one readable row per shot; the preview clip plays under the card.

    The card is one scene's, named by its id: a card is drawn from its data alone, and the id's
    number is not the scene's place after a reorder or split (`scene_number`)."""
    rows = []
    for i, m in enumerate(data.get("shots", []), 1):
        effects = [name for name in ("vignette", "flicker", "flash") if m.get(name)]
        found = _SHOT_ID.search(str(m.get("shot_id", "")))
        name = f"shot {found[2]}" if found else str(m.get("shot_id", "?"))
        rows.append(f"{i}. **{esc(name)}** — camera "
                    f"*{esc(m.get('camera_move') or 'static')}* ({esc(str(m.get('ease') or 'in_out').replace('_', '-'))})"
                    f" · grade {esc(m.get('grade') or 'none')} · "
                    + (f"effects: {', '.join(effects)}" if effects else "no effects")
                    + f" · ← {esc(m.get('transition') or 'cut')} · pad {float(m.get('pad_s') or 0):.1f} s")
    preview = ("The low-res preview plays below." if data.get("preview")
               else "No preview clip was made for this proposal.")
    return f"Motion for scene `{esc(data.get('scene_id', ''))}`, per shot:\n\n" + "\n".join(rows) \
        + f"\n\n{preview}"
