"""Voices: a casting per character (its voice profile with an audition) and a take per line. The
draft is synthesised audio (`agent.voices`); Edit adjusts the voice and synthesises again, Accept
keeps it, a take also takes the director's own recording.
"""
from __future__ import annotations

from typing import Any, Literal

from langgraph.types import Command
from pydantic import ValidationError

from agent import voices
from agent.context import DirectorContext
from agent.kinds.base import Kind, _card_error, _to_commit, finish_media, problems_text, validate
from agent.kinds.cards import esc
from agent.schemas import PROPOSAL_MODELS, PROPOSAL_TITLES
from agent.state import DirectorState, Pending, Task
from memory.canon import Record
from memory.errors import StoryreelError


def _propose_casting(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
                     ) -> Command[Literal["review"]]:
    """A casting with an audition, synthesised with the proposed voice."""
    summary = ""
    try:
        pending["data"] = voices.propose_casting(ctx, task, proposal_id=pending["proposal_id"],
                                                 notes=list(state.get("notes") or []),
                                                 overrides=task.get("overrides"))
        if pending["data"]["engine"] == "espeak":
            pending["warnings"] = ["espeak-ng is a robotic last-resort voice."]
        pending["warnings"] = [*(pending.get("warnings") or []),
                               *voices.casting_clashes(ctx.canon, pending["data"])]
        summary = (f"{pending['data']['subject_name']}: {pending['data']['engine']}, rate "
                   f"{pending['data']['rate']}, pitch {pending['data']['pitch_semitones']:+} st")
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    return finish_media(kind, state, ctx, task, pending, summary)


def _propose_take(kind: Kind, state: DirectorState, ctx: DirectorContext, task: Task, pending: Pending
                  ) -> Command[Literal["review"]]:
    """A take of one line in the speaker's voice (for the task's language)."""
    from tools.jobs import has_role

    summary = ""
    as_job = has_role(ctx.job_runner, "tts")   # voiced by the job runner: the card is up at once, drafting
    try:
        make = voices.submit_take if as_job else voices.propose_take
        pending["data"] = make(ctx, task, proposal_id=pending["proposal_id"], attempt=pending["attempt"],
                               overrides=task.get("overrides"))
        summary = f"{pending['data']['speaker']}: “{pending['data']['text'][:60]}” ({task.get('language')})"
        if as_job:
            summary += " — voicing as a job; the card shows its progress"
        if pending["data"]["engine"] == "espeak":
            hint = "espeak-ng is a robotic last-resort voice."
            if task.get("language") == "ja":
                from tools.backends.voice_kokoro import INSTALL_HINT

                hint += f" For a natural offline Japanese voice add Kokoro: {INSTALL_HINT}"
            pending["warnings"] = [hint]
    except StoryreelError as exc:
        pending["failure"] = str(exc)
    return finish_media(kind, state, ctx, task, pending, summary)


def _decide(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """Edit = adjust and synthesise again; Accept needs a take; a take also takes an upload."""
    decided = decision["type"]
    if decided == "jobs_done":
        return _voiced(kind, state, decision, pending)
    drafting = (pending.get("data") or {}).get("drafting")
    if decided == "edit":
        try:
            adjust = validate(kind, decision.get("data") or {})
        except ValidationError as exc:
            return _card_error(f"The adjustment is not valid: {problems_text(exc)}")
        if "spoken_text" in adjust:   # a take's respelling is the text it speaks
            adjust["text"] = adjust.pop("spoken_text", "")
        task = {**(state.get("task") or {}), "overrides": adjust}
        return Command(goto="propose", update={"task": task})
    if decided == "upload":
        if not kind.upload:
            return _card_error("Uploads replace images and takes; edit the fields of this proposal instead.")
        return _to_commit(pending, decision, "upload", upload=decision["path"])
    if drafting:
        return _card_error("The take is still being voiced: wait for it, Cancel, or upload a recording.")
    if not (pending.get("data") or {}).get("candidates"):
        return _card_error("There is no take to accept: press Redo, or upload a recording.")
    return _to_commit(pending, decision, "accept")


def _voiced(kind: Kind, state: DirectorState, decision: dict[str, Any], pending: Pending) -> Command:
    """The take's TTS job is done: the card turns into the take (same proposal); nothing is voiced here."""
    from langgraph.runtime import get_runtime  # the review node's run context (a kind's review gets none)

    data = dict(pending.get("data") or {})
    try:
        data = voices.take_from_results(get_runtime(DirectorContext).context, data, list(decision.get("results") or []))
    except StoryreelError as exc:
        return Command(goto="review", update={"pending": {**pending, "failure": str(exc)}})
    text = (f"Proposal: {kind.title} — {data.get('speaker')}: “{str(data.get('text'))[:60]}” "
            f"({data.get('language')}). Listen on the card.")
    return Command(goto="review", update={"pending": {**pending, "data": data}, "review_error": None,
                                          "messages": [{"role": "assistant", "content": text}]})


def _casting_rejected(state: DirectorState, ctx: DirectorContext, pending: Pending, note: str, decided: str
                      ) -> Command | dict[str, Any]:
    """A rejected or redone casting is not proposed again: its voice goes on the rejected list."""
    if not pending.get("data"):
        return {}
    task = dict(state.get("task") or {})
    prof = {k: pending["data"][k] for k in voices.PROFILE_FIELDS if k in pending["data"]}
    task["rejected_profiles"] = [*task.get("rejected_profiles", []), prof]
    task.pop("overrides", None)
    return {"task": task}


def _write(kind: Kind, ctx: DirectorContext, pending: Pending, actor: str, note: str) -> list[Record]:
    return voices.accept_audio(ctx, kind.name, dict(pending["data"] or {}), upload=pending.get("upload"),
                               actor=actor, note=note)


def casting_card(d: dict[str, Any]) -> str:
    parts = [(f"**{esc(d.get('subject_name'))}** — engine `{esc(d.get('engine'))}` · voice "
              f"`{esc(d.get('voice'))}` · rate {d.get('rate')} · pitch {d.get('pitch_semitones'):+} st · "
              f"energy {d.get('energy')}\n\nAudition line: “{esc(d.get('sample_line'))}”. Listen below; "
              "**Edit** to adjust and re-audition, **Accept** to cast it.")]
    if d.get("base_voice"):
        parts.append(f"Base voice: **{esc(d['base_voice'])}**")
    if d.get("alternatives"):   # an Edit with engine + voice = the `pick` value auditions it
        rows = "\n".join(f"| {esc(a.get('label'))} | `{esc(a.get('engine'))}` | `{esc(a.get('pick'))}` | "
                         f"{'another character speaks with it' if a.get('taken_by_cast') else 'free'} |"
                         for a in d["alternatives"])
        parts.append("Other voices to audition (**Edit**: set engine and voice to the value shown):\n\n"
                     f"| voice | engine | voice value | |\n|---|---|---|---|\n{rows}")
    if d.get("languages"):
        parts.append("Per language: " + ", ".join(f"{k}: {v.get('engine')}/{v.get('voice')}"
                                                  for k, v in d["languages"].items()))
    return "\n\n".join(parts)


def take_card(d: dict[str, Any]) -> str:
    drafting = d.get("drafting")
    if drafting:    # voiced as a job: what, its progress, a failed job's reason
        from agent.kinds.visual import drafting_line

        head = (f"**{esc(d.get('speaker'))}** *({esc(d.get('emotion'))}, {esc(d.get('language'))})*: "
                f"“{esc(d.get('text'))}”\n\n⏳ {esc(drafting_line(drafting))}")
        jobs = [f"- {job.get('state', 'queued')}" + (f": {esc(job['error'])}" if job.get("error") else
                                                     f" · {esc(job['message'])}" if job.get("message") else "")
                for job in drafting.get("status") or []]
        hint = ("The job failed: **Retry** runs it again; **Redo** or upload your own recording."
                if drafting.get("failed") else "Cancelled: **Redo** voices it again, or **Skip this step**."
                if drafting.get("cancelled") else
                "The chat and the other tabs stay usable meanwhile; **Cancel** stops this job.")
        return "\n\n".join(filter(None, [head, "\n".join(jobs), hint]))
    c = (d.get("candidates") or [{}])[0]
    parts = [(f"**{esc(d.get('speaker'))}** *({esc(d.get('emotion'))}, {esc(d.get('language'))})*: "
              f"“{esc(d.get('text'))}”\n\n{c.get('duration_s')} s · peak {c.get('peak_dbfs')} dBFS · "
              f"{c.get('loudness_lufs')} LUFS · {esc(d.get('engine'))} rate {d.get('rate')} pitch "
              f"{d.get('pitch_semitones'):+} st\n\n**Edit** to adjust rate, pitch or the spoken text "
              "(emphasis, respelling); **Redo** for a fresh take; or upload your own recording.")]
    lips = c.get("lipsync") or d.get("lipsync")
    if lips:
        parts.append("Lip sync: " + ("mouth shapes from the phonemes" if lips == "phonemes"
                                     else "mouth flaps on loudness (no phoneme timings for this take)"))
    check = d.get("check") or c.get("check")   # agent.take_checks: heard in the background
    if check and check.get("pending"):
        parts.append("Heard: *checking by ear…* (Whisper listens in the background; this card updates)")
    elif check and check.get("unavailable"):
        parts.append(f"Not checked by ear: {esc(check['unavailable'])}")
    elif check and check.get("error"):
        parts.append(f"The ear check failed: {esc(check['error'])}")
    elif check:
        flag = " ⚠ **does not match the line**" if check.get("flagged") else ""
        parts.append(f"Heard: “{esc(check.get('heard'))}” · word error rate {float(check.get('wer', 0)):.0%}{flag}")
        if (check.get("suggestion") or {}).get("message"):
            said = str(check["suggestion"]["message"]).rstrip("?")
            parts.append(f"Try: *{esc(check['suggestion']['message'])}* (say “{esc(said)}” in the chat "
                         "to add it to the lexicon)")
    return "\n\n".join(parts)


KINDS = (
    # the voices' planner: a casting per speaking character, then takes, translations per dub
    Kind(name="casting", title=PROPOSAL_TITLES["casting"], schema=PROPOSAL_MODELS["casting"], family="voices",
         plan=voices.next_voice_task, propose=_propose_casting, review=_decide, on_reject=_casting_rejected,
         commit=_write, card=casting_card, media="audio", edit="adjust", rows_resizable=False,
         failure_help="Press **Redo** to try again, or **Edit** to choose the engine and voice settings yourself."),
    Kind(name="take", title=PROPOSAL_TITLES["take"], schema=PROPOSAL_MODELS["take"], family="voices",
         propose=_propose_take, review=_decide, commit=_write, card=take_card, media="audio", edit="adjust",
         upload=True, rows_resizable=False,
         failure_help=("Press **Redo** to try again, **Edit** to change the rate, pitch or spoken text, or "
                       "**upload your own** recording.")),
)
