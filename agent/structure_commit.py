"""Structural edits, from a plan to canon: `write` applies a planned structure proposal
(`agent.structure.plan`, checked by `agent.structure.check`) inside `Canon.commit_proposal`;
`commit` is `write` in its own transaction; `undo` reverts every record of
a committed structure proposal in one transaction; `card_markdown` is the review card.
"""
from __future__ import annotations

from typing import Any

from agent.structure import KIND, StructureError, check, label
from memory.canon import Canon, Record


def write(canon: Canon, data: dict[str, Any], *, actor: str, note: str) -> list[Record]:
    """Apply a checked structure proposal (call inside `Canon.commit_proposal`, which makes it one
    transaction): creates and revisions first, then tombstones. InputError, naming the problems,
    when canon moved on since it was planned."""
    problems = check(canon, data)
    if problems:
        raise StructureError("this change cannot be applied: " + "; ".join(problems))
    records = []
    changes = data.get("changes", [])
    for change in changes:
        if change["action"] in ("renumber", "revise"):
            records.append(canon.revise(change["record"], change["data"], actor=actor, note=note))
    for change in changes:   # shots before the panels that name them
        if change["action"] == "create":
            body = dict(change["data"])
            if change.get("fresh_shot"):
                body["made_from"] = {**body.get("made_from", {}),
                                     "shot": [change["fresh_shot"], canon.get(change["fresh_shot"]).rev]}
            records.append(canon.upsert(change["kind"], body, actor=actor, record_id=change["record"], note=note))
    for change in changes:
        if change["action"] == "tombstone":
            records.append(canon.delete(change["record"], actor=actor, note=note))
    return records


def commit(canon: Canon, data: dict[str, Any], *, proposal_id: str, actor: str = "human",
           action: str = "accept", inputs: dict[str, Any] | None = None) -> list[Record]:
    """Write the proposal in ONE transaction keyed by its proposal id (a second call returns the
    stored records); the caller derives the ledger lines (`Ledger.complete`)."""
    note = f"proposal {proposal_id}: {data.get('summary', '')}"
    records, _ = canon.commit_proposal(proposal_id, lambda: write(canon, data, actor=actor, note=note),
                                       kind=KIND, actor=actor, action=action, note=note,
                                       inputs={"op": data.get("op"), "summary": data.get("summary"), **(inputs or {})})
    return records


def undo(canon: Canon, proposal_id: str, *, actor: str = "human") -> list[Record]:
    """Revert every record of a committed structure proposal to the revision before it, in one
    transaction (records it created are tombstoned, tombstoned ones come back). Refused, naming
    them, when a record changed after it: undo those changes first.

    What was made later for a record the undo removes (a shot plan for the scene a split created,
    a panel for a moved shot, a take of a merged line) would hang off nothing: it is tombstoned in
    the same transaction (`orphans`), listed among the returned records, and the undo of this undo
    brings it back with the rest."""
    done = canon.commit_of(proposal_id)
    if done is None or done.kind != KIND:
        raise StructureError(f"{proposal_id!r} is not an accepted structure proposal; nothing to undo")
    later = [f"{rid} (rev {canon.get(rid).rev}, was {rev})" for rid, rev in done.records if canon.get(rid).rev != rev]
    if later:
        raise StructureError(f"cannot undo {done.note}: {', '.join(later)} changed after it; undo those first")

    def back() -> list[Record]:
        out = []
        for rid, rev in done.records:
            before = canon.get(rid, rev - 1) if rev > 1 else None
            current = canon.get(rid)
            if before is None or before.deleted:
                if not current.deleted:
                    out.append(canon.delete(rid, actor=actor, note=f"undo {proposal_id}"))
            else:
                out.append(canon.revert(rid, rev - 1, actor=actor, note=f"undo {proposal_id}"))
        for orphan in orphans(canon, [r.id for r in out]):
            out.append(canon.delete(orphan.id, actor=actor, note=f"undo {proposal_id}: {label(orphan)} "
                                                                 "hung off a record it removed"))
        return out

    records, _ = canon.commit_proposal(f"undo-{proposal_id}", back, kind=KIND, actor=actor, action="revert",
                                       note=f"undo {done.note}", inputs={"undoes": proposal_id})
    return records


def orphans(canon: Canon, changed: list[str]) -> list[Record]:
    """Live records that hang off what `changed` (record ids just reverted or tombstoned) no longer
    has: shots of a dead scene, panels of a dead shot, a dead scene's motion, takes and translations
    of lines that are in no live scene any more. Only records under `changed` are looked at, so an
    older, unrelated loose end is left alone."""
    dead_scenes = {rid for rid in changed if (rec := canon.get(rid)).kind == "scene" and rec.deleted}
    touched_scenes = {rid for rid in changed if canon.get(rid).kind == "scene"}
    found: dict[str, Record] = {}
    dead_shots = {rid for rid in changed if (rec := canon.get(rid)).kind == "shot" and rec.deleted}
    for shot in canon.list("shot"):
        if shot.data.get("scene_id") in dead_scenes:
            found[shot.id] = shot
            dead_shots.add(shot.id)
    for panel in canon.list("panel"):
        if panel.data.get("subject") in dead_shots:
            found[panel.id] = panel
    for scene_id in dead_scenes:
        motion = canon.live(f"motion-{scene_id}")
        if motion is not None:
            found[motion.id] = motion
    live_lines = {str(ln.get("id")) for sc in canon.list("scene") for ln in sc.data.get("lines", [])}
    for rec in [*canon.list("take"), *canon.list("line")]:
        line_id = str(rec.data.get("line_id") or "")
        if line_id not in live_lines and line_id.rsplit("-l", 1)[0] in touched_scenes:
            found[rec.id] = rec
    return [rec for rid, rec in found.items() if rid not in changed]


def last_commit(canon: Canon) -> str | None:
    """The proposal id of the newest structure commit not undone yet, or None."""
    commits = canon.commits(kind=KIND)
    undone = {str(c.inputs.get("undoes")) for c in commits if c.action == "revert"}
    for c in reversed(commits):
        if c.action != "revert" and c.proposal_id not in undone:
            return c.proposal_id
    return None


def card_markdown(data: dict[str, Any]) -> str:
    """The review card: what changes, record by record, grouped by what happens to it."""
    if not data:
        return "_no structural change_"
    heads = {"renumber": "Renumbered", "revise": "Changed", "create": "Created", "tombstone": "Removed (undo restores)"}
    out = [f"**{str(data.get('summary', '')).strip()}**", ""]
    for action in ("renumber", "revise", "create", "tombstone"):
        items = [c for c in data.get("changes", []) if c["action"] == action]
        if items:
            out.append(f"*{heads[action]}*")
            out += [f"- {c['what']}" for c in items]
            out.append("")
    for warning in data.get("warnings", []):
        out.append(f"⚠ {warning}")
    return "\n".join(out).strip()
