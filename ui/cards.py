"""Proposals and bible records as readable Markdown, shared by the studio and the terminal."""
from __future__ import annotations

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
                lines.append(f"    {i}. **{_esc(sh.get('framing'))}** · {_esc(sh.get('angle'))} · "
                             f"*{_esc(sh.get('camera_move'))}* · {sh.get('duration_s')} s · {who} · "
                             f"lines {sh.get('lines')} · {_esc(sh.get('lighting', ''))} "
                             f"{_esc(sh.get('mood', ''))} · ← {_esc(sh.get('transition', 'cut'))}")
        elif isinstance(value, list):
            lines.append(f"- **{_label(key)}:** " + ", ".join(f"`{_esc(v)}`" for v in value))
        elif key != "id":
            lines.append(f"- **{_label(key)}:** {_esc(value)}")
    return "\n".join(lines)


def card_markdown(request: dict[str, Any] | None) -> str:
    if not request:
        return "_Nothing to review._"
    if request.get("kind") == "input":
        return f"### Waiting for you\n{_esc(request.get('prompt', ''))}"
    parts = [f"### {_esc(request.get('title', request.get('kind', '')))}"
             f" <small>take {request.get('attempt', 1)}</small>"]
    if request.get("failure"):
        parts.append(f"**⚠ The model failed:** {_esc(request['failure'])}\n\nPress **Redo** to try again, "
                     "or **Edit** to write it yourself.")
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
    elif request.get("data") and request.get("kind") == "translation":
        d = request["data"]
        rows = "\n".join(f"{i}. {_esc(src)}\n    → **{_esc(dst)}**"
                         for i, (src, dst) in enumerate(zip(d.get("source", []), d.get("lines", [])), 1))
        parts.append(f"Scene `{_esc(d.get('scene_id'))}` into **{_esc(d.get('language'))}**\n\n{rows}")
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
