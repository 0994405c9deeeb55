"""Proposals and bible records as readable Markdown, shared by the studio and the terminal."""
from __future__ import annotations

from typing import Any

from agent.kinds import lookup
from agent.kinds.cards import LABELS, data_markdown, motion_markdown, shot_label  # noqa: F401 - used here and re-exported
from agent.kinds.cards import esc as _esc
from agent.kinds.cards import label as _label
from memory.canon import Record


def editable(request: dict[str, Any] | None) -> bool:
    """Whether the card's Edit form applies (the kind's `edit` in agent.kinds): field proposals and
    voice settings, also when the model or the voice failed (the form then starts from the schema
    or the partial draft). Pictures are picked or uploaded instead."""
    return bool(request) and lookup(request.get("kind")).edit != "none"   # type: ignore[union-attr]


def safe_draft(request: dict[str, Any] | None) -> dict[str, Any] | None:
    """The safe draft a failed field card offers (its usable fields plus named defaults), which
    Accept takes as the director's edit; None where the card did not fail or has no form."""
    if not request or not request.get("failure") or request.get("data") or not request.get("draft"):
        return None
    return dict(request["draft"]) if editable(request) else None


def _failure_help(request: dict[str, Any]) -> str:
    """What the director can do about a failed proposal: only actions the card really offers."""
    return lookup(request.get("kind")).failure_help


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
            parts.append(f"**Accept** takes a safe draft ({used}); **Edit** starts from it.")
    if request.get("diff"):
        parts.append(diff_markdown(request["diff"]))
    if request.get("data"):
        parts.append(lookup(request.get("kind")).card(request["data"]))   # the kind's card body
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
    titles = {"vision": "Your vision", "series": "Series", "style": "Style guide", "character": "Characters",
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
    titles = {"vision": "Your vision", "series": "Series", "style": "Style guide", "character": "Characters",
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
