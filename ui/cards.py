"""Proposals and bible records as readable Markdown, shared by the studio and the terminal."""
from __future__ import annotations

import re
from typing import Any

from memory.canon import Record

LABELS = {
    "look_tags": "Look (image tags)", "voice_notes": "Voice", "art_style": "Art style",
    "target_episode_seconds": "Target episode length (s)", "logline": "Logline",
}


def _label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " ").capitalize())


def _esc(value: Any) -> str:
    """Keep model text from injecting HTML; Markdown shows '&' and quotes as they are."""
    return str(value).replace("<", "&lt;").replace(">", "&gt;")


_SHOT_ID = re.compile(r"scene-ep(\d+)-(\d+)-s(\d+)$")


def shot_label(shot_id: str, *, short: bool = False) -> str:
    """`scene-ep1-2-s3` as "scene 2 · shot 3" (short: "sc2 s3"); other ids as they are."""
    m = _SHOT_ID.search(str(shot_id))
    if not m:
        return str(shot_id)
    return f"sc{m[2]} s{m[3]}" if short else f"scene {m[2]} · shot {m[3]}"


def _palette(colours: list[str]) -> str:
    chips = []
    for c in colours:
        c_esc = _esc(c)
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
            lines.append(f"- **Palette:** {_palette(value)}")
        elif key == "lines" and isinstance(value, list):
            lines.append("- **Dialogue:**")
            for ln in value:
                lines.append(f"    - **{_esc(ln.get('speaker', '?'))}** *({_esc(ln.get('emotion', ''))})*: "
                             f"“{_esc(ln.get('line', ''))}”")
        elif key == "beats" and isinstance(value, list):
            lines.append("- **Beats:**")
            for i, b in enumerate(value, 1):
                lines.append(f"    {i}. **{_esc(b.get('kind', ''))}** — {_esc(b.get('summary', ''))}")
        elif key == "episodes" and isinstance(value, list):
            lines.append("- **Episodes:**")
            for ep in value:
                lines.append(f"    {ep.get('number', '?')}. **{_esc(ep.get('title', ''))}** — "
                             f"{_esc(ep.get('logline', ''))}")
        elif key == "shots" and isinstance(value, list):
            lines.append("- **Shots:**")
            for i, sh in enumerate(value, 1):
                who = ", ".join(f"{_esc(c.get('name'))} ({_esc(c.get('expression', ''))})"
                                for c in sh.get("characters", [])) or "no one"
                said = sh.get("lines") or []
                parts = [f"**{_esc(sh.get('framing') or 'medium')}**", _esc(sh.get("angle") or "eye level"),
                         f"*{_esc(sh.get('camera_move') or 'static')}*", f"{sh.get('duration_s') or 3.0} s", who,
                         ("line " if len(said) == 1 else "lines ") + ", ".join(map(str, said)) if said else "no lines",
                         _esc(" ".join(filter(None, [sh.get("lighting"), sh.get("mood")])) or "—"),
                         f"← {_esc(sh.get('transition') or 'cut')}"]
                lines.append(f"    {i}. " + " · ".join(parts))
        elif isinstance(value, list):
            lines.append(f"- **{_label(key)}:** " + ", ".join(f"`{_esc(v)}`" for v in value))
        elif key != "id":
            lines.append(f"- **{_label(key)}:** {_esc(value)}")
    return "\n".join(lines)


VISUAL_CARDS = ("reference", "background", "panel")
AUDIO_CARDS = ("casting", "take")


def editable(request: dict[str, Any] | None) -> bool:
    """Whether the card's Edit form applies: field proposals and voice settings, also when the
    model or the voice failed (the form then starts from the schema or the partial draft).
    Pictures are picked or uploaded instead."""
    from agent.schemas import PROPOSAL_MODELS

    if not request or request.get("kind") in (*VISUAL_CARDS, "input", None):
        return False
    return request.get("kind") in PROPOSAL_MODELS


def _failure_help(request: dict[str, Any]) -> str:
    """What the director can do about a failed proposal: only actions the card really offers."""
    kind = request.get("kind")
    if kind in VISUAL_CARDS:
        return "Press **Redo** to try again, or **upload your own** image."
    if kind == "take":
        return ("Press **Redo** to try again, **Edit** to change the rate, pitch or spoken text, or "
                "**upload your own** recording.")
    if kind == "casting":
        return "Press **Redo** to try again, or **Edit** to choose the engine and voice settings yourself."
    if editable(request):
        return "Press **Redo** to try again, or **Edit** to write it yourself."
    return "Press **Redo** to try again, or **Reject with note** to say what to change."


def _cell_text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_cell_text(v) for v in value) or "—"
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_cell_text(v)}" for k, v in value.items()) or "—"
    return _esc(value).replace("|", "\\|").replace("\n", " ") if value not in (None, "") else "—"


def diff_markdown(diff: Any) -> str:
    """A revision's difference against canon (`{field: [old, new]}` or `{field: {"old", "new"}}`)
    as an old → new table."""
    if not isinstance(diff, dict) or not diff:
        return ""
    rows = ["| field | now in canon | proposed |", "|---|---|---|"]
    for key, change in diff.items():
        if isinstance(change, dict):
            old, new = change.get("old"), change.get("new")
        elif isinstance(change, (list, tuple)) and len(change) == 2:
            old, new = change
        else:
            old, new = None, change
        rows.append(f"| **{_label(str(key))}** | {_cell_text(old)} | → {_cell_text(new)} |")
    return "**Changes against canon**\n\n" + "\n".join(rows)


def motion_markdown(data: dict[str, Any]) -> str:
    """A motion proposal as one readable row per shot; the preview clip plays under the card."""
    rows = []
    for i, m in enumerate(data.get("shots", []), 1):
        effects = [name for name in ("vignette", "flicker", "flash") if m.get(name)]
        rows.append(f"{i}. **{_esc(shot_label(m.get('shot_id', '?')))}** — camera "
                    f"*{_esc(m.get('camera_move') or 'static')}* ({_esc(str(m.get('ease') or 'in_out').replace('_', '-'))})"
                    f" · grade {_esc(m.get('grade') or 'none')} · "
                    + (f"effects: {', '.join(effects)}" if effects else "no effects")
                    + f" · ← {_esc(m.get('transition') or 'cut')} · pad {float(m.get('pad_s') or 0):.1f} s")
    scene = shot_label(f"{data.get('scene_id', '')}-s1").split(" · ")[0]
    preview = ("The low-res preview plays below." if data.get("preview")
               else "No preview clip was made for this proposal.")
    return f"Motion for **{_esc(scene)}** (`{_esc(data.get('scene_id', ''))}`), per shot:\n\n" + "\n".join(rows) \
        + f"\n\n{preview}"


def card_markdown(request: dict[str, Any] | None) -> str:
    if not request:
        return "_Nothing to review._"
    if request.get("kind") == "input":
        return f"### Waiting for you\n{_esc(request.get('prompt', ''))}"
    parts = [(f"### {_esc(request.get('title', request.get('kind', '')))}"
              f" <small>· draft {request.get('attempt', 1)}</small>")]
    if request.get("failure"):
        parts.append(f"**⚠ The model failed:** {_esc(request['failure'])}\n\n{_failure_help(request)}")
        if request.get("draft") and editable(request):
            used = "; ".join(_esc(f) for f in request.get("fallbacks") or []) or "its usable fields"
            parts.append(f"Edit starts from a safe draft ({used}).")
    if request.get("diff"):
        parts.append(diff_markdown(request["diff"]))
    if request.get("data") and request.get("kind") in ("reference", "background", "panel"):
        d = request["data"]
        seeds = ", ".join(f"#{i + 1}: seed {c.get('seed')}" for i, c in enumerate(d.get("candidates", [])))
        parts.append(f"**{_esc(d.get('subject_name', d.get('subject')))}** — painter `{_esc(d.get('painter'))}`"
                     f"\n\nCandidates ({seeds}). Click one below to pick it, then **Accept**; or "
                     "**Reject with note**, **Redo**, or upload your own.")
        if d.get("animatic"):
            parts.append("*Animatic sketch (offline storyboard renderer), not final art.*")
    elif request.get("data") and request.get("kind") == "casting":
        d = request["data"]
        parts.append(f"**{_esc(d.get('subject_name'))}** — engine `{_esc(d.get('engine'))}` · voice "
                     f"`{_esc(d.get('voice'))}` · rate {d.get('rate')} · pitch {d.get('pitch_semitones'):+} st · "
                     f"energy {d.get('energy')}\n\nAudition line: “{_esc(d.get('sample_line'))}”. Listen below; "
                     "**Edit** to adjust and re-audition, **Accept** to cast it.")
        if d.get("base_voice"):
            parts.append(f"Base voice: **{_esc(d['base_voice'])}**")
        if d.get("alternatives"):   # an Edit with engine + voice = the `pick` value auditions it
            rows = "\n".join(f"| {_esc(a.get('label'))} | `{_esc(a.get('engine'))}` | `{_esc(a.get('pick'))}` | "
                             f"{'another character speaks with it' if a.get('taken_by_cast') else 'free'} |"
                             for a in d["alternatives"])
            parts.append("Other voices to audition (**Edit**: set engine and voice to the value shown):\n\n"
                         f"| voice | engine | voice value | |\n|---|---|---|---|\n{rows}")
        if d.get("languages"):
            parts.append("Per language: " + ", ".join(f"{k}: {v.get('engine')}/{v.get('voice')}"
                                                      for k, v in d["languages"].items()))
    elif request.get("data") and request.get("kind") == "take":
        d = request["data"]
        c = (d.get("candidates") or [{}])[0]
        parts.append(f"**{_esc(d.get('speaker'))}** *({_esc(d.get('emotion'))}, {_esc(d.get('language'))})*: "
                     f"“{_esc(d.get('text'))}”\n\n{c.get('duration_s')} s · peak {c.get('peak_dbfs')} dBFS · "
                     f"{c.get('loudness_lufs')} LUFS · {_esc(d.get('engine'))} rate {d.get('rate')} pitch "
                     f"{d.get('pitch_semitones'):+} st\n\n**Edit** to adjust rate, pitch or the spoken text "
                     "(emphasis, respelling); **Redo** for a fresh take; or upload your own recording.")
        lips = c.get("lipsync") or d.get("lipsync")
        if lips:
            parts.append("Lip sync: " + ("mouth shapes from the phonemes" if lips == "phonemes"
                                         else "mouth flaps on loudness (no phoneme timings for this take)"))
        check = c.get("check") or d.get("check")
        if check:
            flag = " ⚠ **does not match the line**" if check.get("flagged") else ""
            parts.append(f"Heard: “{_esc(check.get('heard'))}” · word error rate {float(check.get('wer', 0)):.0%}{flag}")
            if (check.get("suggestion") or {}).get("message"):
                parts.append(f"Try: *{_esc(check['suggestion']['message'])}* (say it in the chat to add it)")
    elif request.get("data") and request.get("kind") == "translation":
        d = request["data"]
        rows = "\n".join(f"{i}. {_esc(src)}\n    → **{_esc(dst)}**"
                         for i, (src, dst) in enumerate(zip(d.get("source", []), d.get("lines", [])), 1))
        parts.append(f"Scene `{_esc(d.get('scene_id'))}` into **{_esc(d.get('language'))}**\n\n{rows}")
    elif request.get("data") and request.get("kind") == "motion":
        parts.append(motion_markdown(request["data"]))
    elif request.get("data"):
        parts.append(data_markdown(request["kind"], request["data"]))
    for w in request.get("warnings") or []:
        parts.append(f"> ⚠ {_esc(w)}")
    if request.get("error"):
        parts.append(f"**✖ {_esc(request['error'])}**")
    return "\n\n".join(parts)


def record_markdown(rec: Record) -> str:
    name = rec.data.get("name") or rec.data.get("title") or rec.id
    return f"#### {_esc(name)} <small>`{rec.id}` rev {rec.rev} · {rec.actor}</small>\n" + data_markdown(
        rec.kind, rec.data)


def _plain(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k.replace('_', ' ')} {_plain(v)}" for k, v in value.items() if k != "id")
    return str(value)


def bible_text(records: dict[str, list[Record]]) -> str:
    """The bible as plain text for a terminal: headings underlined, one field per line."""
    titles = {"series": "Series", "style": "Style guide", "character": "Characters",
              "location": "Locations", "prop": "Props"}
    out: list[str] = []
    for kind, recs in records.items():
        title = titles.get(kind, kind.capitalize())
        out += ["", title, "=" * len(title)]
        if not recs:
            out.append("  (none yet)")
        for rec in recs:
            name = rec.data.get("name") or rec.data.get("title") or rec.id
            out.append(f"{name}  [{rec.id}, rev {rec.rev}, {rec.actor}]")
            for key, value in rec.data.items():
                if key in ("id", "name") or value in (None, "", []):
                    continue
                out.append(f"  {_label(key)}: {_plain(value)}")
    return "\n".join(out).strip("\n")


def bible_markdown(records: dict[str, list[Record]]) -> str:
    titles = {"series": "Series", "style": "Style guide", "character": "Characters",
              "location": "Locations", "prop": "Props"}
    parts = []
    for kind, recs in records.items():
        parts.append(f"### {titles.get(kind, kind)}")
        parts.append("\n\n".join(record_markdown(r) for r in recs) if recs else "_none yet_")
    return "\n\n".join(parts)


def outline_markdown(outline: dict[str, Any]) -> str:
    parts = ["### Season outline"]
    rec = outline.get("outline")
    parts.append(data_markdown("outline", rec.data) if rec else "_no outline yet_")
    for beats in outline.get("beats", []):
        parts.append(f"### Episode {beats.data.get('episode')} beats\n" + data_markdown("beats", beats.data))
    scenes = outline.get("scenes", [])
    if scenes:
        parts.append("### Scenes")
        for sc in sorted(scenes, key=lambda r: (r.data.get("episode", 0), r.data.get("number", 0))):
            parts.append(f"#### Ep {sc.data.get('episode')} · Scene {sc.data.get('number')}: "
                         f"{_esc(sc.data.get('title', ''))} <small>rev {sc.rev}</small>\n"
                         + data_markdown("scene", {k: v for k, v in sc.data.items()
                                                   if k not in ("episode", "number", "title")}))
    return "\n\n".join(parts)
