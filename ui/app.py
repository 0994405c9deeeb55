"""The director studio: one gradio Blocks app over a DirectorSession.

Chat on the left, the review card in the middle (Accept / Edit / Reject with a note / Redo), the
bible, outline, history (undo) and decision log on the right; below, one episode picker for the
storyboard, voices, episode and credits tabs, and the series board (every episode's status and
render, start the next one, export the season). Every handler reads the session and re-renders from
it, so a reload or a restart shows exactly what is on disk.
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from typing import Any

from agent.kinds import lookup
from agent.kinds.cards import esc
from memory.errors import InputError, StoryreelError
from ui.cards import (
    bible_markdown,
    card_markdown,
    editable,
    outline_markdown,
    safe_draft,
    shot_label,
)
from ui.settings import Settings

CSS = """
#card {border: 2px solid #6b5bd2; border-radius: 12px; padding: 12px; min-height: 220px}
#model-badge {font-size: 0.9em}
#edit-form {border: 1px solid #6b5bd2; border-radius: 10px; padding: 6px}
#edit-form .edit-row {border-left: 3px solid #6b5bd2}
.demo-warning {background: #fff4ce; color: #5a4500; padding: 6px 10px; border-radius: 8px}
"""


def check_port_free(host: str, port: int) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT is not "in use"
        try:
            s.bind((host, port))
        except OSError as exc:
            raise StoryreelError(
                f"port {port} on {host} is already in use ({exc.strerror}); another studio may be "
                f"running: open http://{host}:{port}, or start this one with --port {port + 1}") from exc


class Studio:
    """The studio's process-wide state: the model and the one open project session."""

    def __init__(self, settings: Settings, model: Any) -> None:
        self.settings = settings
        self.model = model
        self.session: Any = None
        self.mutex = threading.RLock()

    def open(self, name_or_path: str) -> None:
        from ui.session import open_session

        project = self.settings.open_project(name_or_path)
        with self.mutex:
            if self.session is not None and self.session.project.root == project.root:
                return
            new = open_session(project, self.model, targets=self.settings.targets,
                               take_check=self.settings.take_check, jobs="settings")   # pictures as jobs
            if self.session is not None:
                self.session.close()
            self.session = new
        new.start()

    def create(self, name: str) -> None:
        from memory.project import create_project

        project = create_project(self.settings.projects_dir, name)
        self.open(str(project.root))

    def open_latest(self) -> None:
        """`storyreel studio` with no project: reopen the one touched last (if it is free)."""
        from memory.project import list_projects

        if not self.settings.projects_dir.exists():
            return
        projects = list_projects(self.settings.projects_dir)
        if not projects:
            return
        latest = max(projects, key=lambda p: max((f.stat().st_mtime for f in (p.root / "ledger.jsonl",
                                                                               p.root / "project.toml")
                                                  if f.exists()), default=0.0))
        try:
            self.open(str(latest.root))
        except StoryreelError:
            pass  # locked or broken: the studio starts with the picker instead

    def projects(self) -> list[str]:
        from memory.project import list_projects

        if not self.settings.projects_dir.exists():
            return []
        return [p.root.name for p in list_projects(self.settings.projects_dir)]

    def close(self) -> None:
        with self.mutex:
            if self.session is not None:
                self.session.close()
                self.session = None


def _model_badge(studio: Studio) -> str:
    from agent.brain import DEMO_NOTICE
    from agent.router import router_name

    text = f"**Model:** {studio.model.description} · **Router:** {router_name(studio.model)}"
    if getattr(studio.model, "is_demo", False):
        text += f'\n\n<div class="demo-warning">⚠ {DEMO_NOTICE}</div>'
    return text


def _progress_html(fraction: float, state: str, message: str) -> str:
    colour = {"failed": "#c0392b", "done": "#2e9e48"}.get(state, "#6b5bd2")
    return (f'<div class="render-job" data-state="{state}"><div style="background:#e6e4f0;border-radius:6px;'
            f'height:14px"><div style="width:{fraction * 100:.1f}%;background:{colour};height:14px;'
            f'border-radius:6px"></div></div><small>{state} · {fraction * 100:.0f}% · '
            f'{str(message).replace("<", "&lt;")}</small></div>')


def _strip_html(timeline: list[tuple[str, float, float]], canon: Any = None) -> str:
    """The cut as a strip of shots, each as wide as it is long (scene numbers read from `canon`)."""
    total = sum(d for _, _, d in timeline) or 1.0
    cells = "".join(f'<div title="{shot_label(sid, canon=canon)} ({sid}) · {dur:.2f} s" style="flex:{dur / total:.4f};'
                    f'border:1px solid #999;padding:2px;font-size:11px;overflow:hidden;white-space:nowrap;'
                    f'background:#f4f2fb">{shot_label(sid, short=True, canon=canon)}<br>{dur:.1f}s</div>'
                    for sid, _, dur in timeline)
    end = max((start + dur for _, start, dur in timeline), default=0.0)
    return f'<div class="timeline-strip" style="display:flex;gap:2px">{cells}</div><small>{end:.1f} s</small>'


def _cold_open_thumbs(s: Any, pending: dict[str, Any]) -> str:
    """A card's picks of panels (a cold open's: agent.kinds.recap) as thumbnails, with their times."""
    from urllib.parse import quote

    picks = (pending.get("data") or {}).get("picks")
    cells = []
    for k, pick in enumerate(picks if isinstance(picks, list) else [], 1):
        if not isinstance(pick, dict) or not pick.get("panel"):
            continue
        try:
            src = "/gradio_api/file=" + quote(str(s.image_path(str(pick.get("panel") or "")).resolve()))
        except (StoryreelError, ValueError, OSError):
            continue
        label = f"{k} · {float(pick.get('in_s', 0)):.2f}–{float(pick.get('out_s', 0)):.2f} s"
        cells.append(f'<figure style="display:inline-block;margin:4px"><img src="{src}" alt="{label}" '
                     f'style="height:160px"><figcaption>{label}</figcaption></figure>')
    return f'\n\n<div class="cold-open-picks">{"".join(cells)}</div>' if cells else ""


def _player(path: Path) -> str:
    """A plain <audio> player for a project WAV (served from the studio's allowed paths)."""
    from urllib.parse import quote

    src = "/gradio_api/file=" + quote(str(Path(path).resolve()))
    return (f'<div class="take-player"><b>Listen</b><br><audio controls preload="auto" src="{src}" '
            f'style="width:100%"></audio><br><a href="{src}" download>download WAV</a></div>')


def last_render(root: Path, episode: int = 1, language: str = "en", branch: str = "main") -> list[Path]:
    """The episode's last finished render on disk (so a restarted studio shows it): the MP4 first,
    then its captions, timeline and contact sheet; empty when it was never rendered."""
    from agent.cut import last_render as files_of_last_render

    files = files_of_last_render(root, episode, language, branch) or {}   # a branch's: renders/branches/
    return [files[k] for k in ("mp4", "srt", "vtt", "otio", "contact_sheet") if k in files]


def render_warnings(session: Any, episode: int = 1, language: str = "en") -> list[str]:
    """What the cut would use that is stale or missing (panels, takes, motion), named."""
    from agent.cut import render_warnings as cut_warnings

    return cut_warnings(session.canon, session.project, episode=episode, language=language,
                        painter=getattr(session.context.painter, "name", None))


def quiet_when_idle(app: Any) -> None:
    """Let an idle studio sleep: gradio's queue polls every 1 ms (progress every 10 ms) while
    nothing is queued, about 3 % of a core with nothing running; 50 ms / 100 ms (gradio's own values
    on Windows) add at most 50 ms before an event starts. Gradio reads them on every loop."""
    queue = getattr(app, "_queue", None)
    if queue is not None and hasattr(queue, "sleep_when_free"):
        queue.sleep_when_free = max(float(queue.sleep_when_free), 0.05)
        queue.progress_update_sleep_when_free = max(float(getattr(queue, "progress_update_sleep_when_free", 0)), 0.1)


def _take_rows(voices: dict[str, Any]) -> list[list[Any]]:
    """The Voices tab's takes table: one row per line and language, with what the ear check heard."""
    from agent.take_checks import check_summary

    return [[t["line_id"], t["language"], t["speaker"], (t["text"] or "")[:50],
             (t["take"].data.get("source", "") if t["take"] else ""), t["status"], check_summary(t.get("check"))]
            for t in voices["takes"]]


def _checking(pending: dict[str, Any] | None, voices: dict[str, Any]) -> bool:
    """Whether an ear check is still running for the card or a take (the check timer ticks meanwhile)."""
    card = pending or {}
    check = (card.get("data") or {}).get("check") if lookup(card.get("kind")).media == "audio" else None
    return bool((check or {}).get("pending")) or any((t.get("check") or {}).get("pending") for t in voices["takes"])


def _board(s: Any, episode: int) -> tuple[list[tuple[str, str]], list[str], str]:
    """The storyboard of ``episode``: (image, caption) per drawn shot, their shot ids, and the job table."""
    shots, ids, job_rows = [], [], []
    for entry in s.storyboard(episode):
        for sh in entry["shots"]:
            d = sh["shot"].data
            caption = f"{sh['shot'].id} · {d.get('framing')} · {sh['status']}"
            if sh.get("job"):     # a panel job a batch (or its card) queued: queued, running, ready, failed
                caption += f" · job {sh['job']['words']}"
                job_rows.append(f"| {sh['shot'].id} | {d.get('framing')} | {esc(sh['job']['words']).replace('|', '/')} |")
            if sh["image"] is not None:
                shots.append((str(sh["image"]), caption))
                ids.append(sh["shot"].id)
    for row in s.batch_jobs(episode):   # takes and scene motion a batch (or a card) queued
        job_rows.append(f"| {row['item']} | {row['what']} | {esc(row['words']).replace('|', '/')} |")
    table = "| item | framing / what | job |\n|---|---|---|\n" + "\n".join(job_rows) if job_rows else ""
    return shots, ids, table


def _cast_markdown(vo: dict[str, Any]) -> str:
    """The Voices tab's cast list: each character's engine, rate and pitch."""
    return "### Cast\n" + ("\n".join(
        f"- **{r.data.get('name')}**: {r.data.get('engine')} · rate {r.data.get('rate')} · pitch "
        f"{r.data.get('pitch_semitones'):+} st" + (" · robotic" if r.data.get("engine") == "espeak" else "")
        for r in vo["cast"]) or "_no voices cast yet_")


def _episode_choices(canon: Any, current: int) -> list[tuple[str, int]]:
    """The episode picker's choices: every episode of the series by number and title (and the one
    shown, also before there is an outline)."""
    from agent.series import outline_episodes, series_episodes

    titles = outline_episodes(canon)
    numbers = sorted({*series_episodes(canon), current})

    def label(n: int) -> str:
        title = str(titles.get(n, {}).get("title") or "")
        return f"Episode {n}" + (f" · {title}" if title and title != f"Episode {n}" else "")

    return [(label(n), n) for n in numbers]


def _esc(text: Any) -> str:
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _series_html(board: list[Any]) -> str:
    """The series board: one row per episode with its status, what keeps it there, and its render."""
    from urllib.parse import quote

    if not board:
        return '<div class="series-board"><i>No season outline yet: accept one in the writers\' room.</i></div>'
    colours = {"outline": "#8a8a99", "writing": "#6b5bd2", "storyboard": "#2d7fc1", "voiced": "#1f9e8f",
               "cut": "#2e9e48", "stale": "#d9822b"}
    rows = []
    for row in board:
        reasons = "; ".join(row.reasons[:2]) + (f" (+{len(row.reasons) - 2} more)" if len(row.reasons) > 2 else "")
        render = "—"
        if row.render is not None:
            src = "/gradio_api/file=" + quote(str(Path(row.render).resolve()))
            render = (f'<video controls preload="none" src="{src}" style="height:96px"></video><br>'
                      f'<a href="{src}" download>ep{row.episode:02d} MP4</a>')
        rows.append(f'<tr class="series-row" data-episode="{row.episode}" data-status="{row.status}">'
                    f"<td>{row.episode}</td><td>{_esc(row.title)}</td>"
                    f'<td><span style="background:{colours.get(row.status, "#555")};color:white;padding:1px 8px;'
                    f'border-radius:8px">{row.status}</span></td><td><small>{_esc(reasons)}</small></td>'
                    f"<td>{render}</td></tr>")
    return ('<table class="series-board"><thead><tr><th>#</th><th>title</th><th>status</th><th>what is left</th>'
            f"<th>render</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def _drafting(pending: dict[str, Any]) -> tuple[dict[str, Any] | None, bool, bool]:
    """A card's drafting entry (its pictures drawn as jobs), whether it is still drawing (not
    failed or cancelled), and whether a job failed (Retry runs it again)."""
    drafting = (pending.get("data") or {}).get("drafting") if isinstance(pending.get("data"), dict) else None
    if not drafting:
        return None, False, False
    return drafting, not pending.get("failure"), bool(drafting.get("failed"))


def build_app(studio: Studio) -> Any:
    import gradio as gr

    with gr.Blocks(title="Storyreel studio", fill_width=True) as app:
        with gr.Row():
            header = gr.Markdown("## Storyreel", elem_id="header")
            badge = gr.Markdown(elem_id="model-badge")
        with gr.Row():
            project_dd = gr.Dropdown(label="Project", choices=studio.projects(), scale=3, elem_id="project-dd")
            open_btn = gr.Button("Open", scale=1, elem_id="open-project")
            new_name = gr.Textbox(label="New project name", placeholder="Fox Rain", scale=3,
                                  elem_id="new-project-name")
            new_btn = gr.Button("New project", scale=1, variant="secondary", elem_id="new-project")
        status = gr.Markdown(elem_id="status")
        with gr.Row():
            with gr.Column(scale=5):
                chat = gr.Chatbot(label="Writers' room", height=520, elem_id="chat")
                with gr.Row():
                    msg = gr.Textbox(label="Message", placeholder="A premise, a question, or a change…",
                                     scale=5, lines=2, elem_id="message")
                    send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
            with gr.Column(scale=4):
                card = gr.Markdown(elem_id="card")
                card_pid = gr.State("")          # the proposal the card shows; every decision names it
                editing = gr.State("")           # the proposal the edit form was opened on ("": closed)
                draft = gr.State(None)           # the form's values while rows are added or removed
                motion_video = gr.Video(label="Motion preview (low-res)", visible=False, height=360,
                                        elem_id="motion-preview", interactive=False)
                candidates = gr.Gallery(label="Candidates (click one to pick it)", columns=4, height=360,
                                        allow_preview=False, visible=False, object_fit="contain",
                                        elem_id="candidates")
                pick_radio = gr.Radio(label="Pick", choices=[], visible=False, elem_id="pick")
                take_audio = gr.HTML(visible=False, elem_id="take-audio")
                with gr.Row():
                    accept = gr.Button("Accept", variant="primary", elem_id="accept")
                    edit = gr.Button("Edit", elem_id="edit")
                    redo = gr.Button("Redo", elem_id="redo")
                    retry = gr.Button("Retry", elem_id="retry", visible=False)
                    skip = gr.Button("Skip this step", elem_id="skip", visible=False)
                    cancel_draft = gr.Button("Cancel", elem_id="cancel-drafting", visible=False, variant="stop")
                draft_ticker = gr.Timer(1.0, active=False)   # ticks only while the card's pictures are drafting

                @gr.render(inputs=[editing, card_pid, draft])
                def edit_form(open_pid: str, shown_pid: str, draft_value: Any) -> None:
                    render_edit_form(open_pid, shown_pid, draft_value)

                upload = gr.UploadButton("Upload your own image or recording", file_types=["image", "audio"],
                                         visible=False, elem_id="upload")
                note = gr.Textbox(label="Note for the agent (used when rejecting)", lines=2, elem_id="note")
                reject = gr.Button("Reject with note", variant="stop", elem_id="reject")
            with gr.Column(scale=4):
                with gr.Tab("Bible"):
                    bible = gr.Markdown(elem_id="bible")
                with gr.Tab("Outline"):
                    outline = gr.Markdown(elem_id="outline")
                with gr.Tab("History & undo"):
                    record_dd = gr.Dropdown(label="Record", choices=[], elem_id="record-dd")
                    rev_num = gr.Number(label="Revert to revision (0 deletes)", precision=0, elem_id="rev-num")
                    revert = gr.Button("Revert", elem_id="revert")
                    history = gr.Markdown(elem_id="history")
                with gr.Tab("Decisions"):
                    ledger = gr.Dataframe(headers=["time", "actor", "action", "record", "rev", "note"],
                                          interactive=False, elem_id="ledger")

        with gr.Row():   # the one episode picker: storyboard, voices, episode and credits show this episode
            episode_dd = gr.Dropdown(label="Episode", choices=[], value=None, scale=1, elem_id="episode-dd")
            gr.Markdown("The storyboard, voices, episode and credits tabs show the episode picked here; "
                        "the *Series* tab lists them all.", elem_id="episode-hint")
        with gr.Tabs():
            with gr.Tab("Storyboard", elem_id="storyboard-tab") as storyboard_tab:
                board = gr.Gallery(label="Shots (click one to review or redraw it)", columns=8,
                                   height=420, allow_preview=False, object_fit="contain", elem_id="storyboard")
                board_ids = gr.State([])
                board_jobs = gr.Markdown(elem_id="storyboard-jobs")   # each shot's panel job (issue 13)
                with gr.Row():
                    draft_all_btn = gr.Button("Draft all missing panels", elem_id="draft-all-panels")
                    export = gr.Button("Export contact sheet (PNG + PDF)", elem_id="export-sheet")
                sheet_files = gr.File(label="Contact sheet", file_count="multiple", elem_id="sheet-files")
            with gr.Tab("Episode", elem_id="episode-tab") as episode_tab:
                with gr.Row():
                    ep_lang = gr.Dropdown(label="Language", choices=["en"], value="en", elem_id="ep-lang")
                    music = gr.File(label="Music bed (optional)", file_types=["audio"], elem_id="music")
                with gr.Row():
                    render_btn = gr.Button("Render episode", variant="primary", elem_id="render")
                    cold_open_btn = gr.Button("Add 'previously on'", elem_id="add-cold-open")
                render_progress = gr.HTML(elem_id="render-progress")
                strip = gr.HTML(elem_id="timeline-strip")
                player = gr.Video(label="Episode", elem_id="episode-player", height=480)
                downloads = gr.File(label="Downloads", file_count="multiple", elem_id="episode-files")
                shown_job = gr.State("")
                ticker = gr.Timer(1.0, active=False)   # ticks only while a render job runs
                check_ticker = gr.Timer(2.0, active=False)   # ticks only while a take is being checked by ear
            with gr.Tab("Voices", elem_id="voices-tab") as voices_tab:
                voices_md = gr.Markdown(elem_id="voices")
                takes_table = gr.Dataframe(headers=["line", "lang", "speaker", "text", "take", "status", "heard"],
                                           interactive=False, elem_id="takes")
                with gr.Row():
                    g_term = gr.Textbox(label="Glossary term", placeholder="Aiko", elem_id="g-term")
                    g_lang = gr.Textbox(label="Language", placeholder="Japanese", elem_id="g-lang")
                    g_target = gr.Textbox(label="Translation", placeholder="愛子", elem_id="g-target")
                g_add = gr.Button("Add to glossary", elem_id="g-add")
            with gr.Tab("Series", elem_id="series-tab") as series_tab:
                series_html = gr.HTML(elem_id="series-board")
                with gr.Row():
                    start_next = gr.Button("Start the next episode", elem_id="start-episode", interactive=False)
                    export_season_btn = gr.Button("Export season (every rendered episode)", elem_id="export-season")
                season_note = gr.Markdown(elem_id="season-note")
                season_files = gr.File(label="Season export", file_count="multiple", elem_id="season-files")
            with gr.Tab("Credits", elem_id="credits-tab") as credits_tab:
                credits_scope = gr.Radio(["Picked episode", "Whole series"], value="Picked episode",
                                         label="Authorship report for", elem_id="credits-scope")
                credits_md = gr.Markdown(elem_id="credits")
                credits_files = gr.File(label="Report (HTML, PDF, JSON)", file_count="multiple",
                                        elem_id="credits-files")
            with gr.Tab("Branches", elem_id="branches-tab") as branches_tab:   # what-ifs (ui/branches.py)
                branch_status = gr.Markdown(elem_id="branch-status")
                with gr.Row():
                    branch_pick = gr.Dropdown(label="Branch", choices=[], elem_id="branch-pick")
                    branch_against = gr.Dropdown(label="Compare with", choices=["main"], value="main",
                                                 elem_id="branch-against")
                    branch_subject = gr.Textbox(label="Record (name or id; empty: all it changed)",
                                                elem_id="branch-subject")
                    branch_episode = gr.Number(label="Episode (empty: all)", precision=0, value=None,
                                               elem_id="branch-episode")
                with gr.Row():
                    branch_compare = gr.Button("Compare", elem_id="branch-compare")
                    branch_switch = gr.Button("Work on this branch", elem_id="branch-switch")
                    branch_adopt = gr.Button("Adopt into main", variant="primary", elem_id="branch-adopt")
                    branch_discard = gr.Button("Discard", elem_id="branch-discard")
                    branch_reopen = gr.Button("Reopen", elem_id="branch-reopen")
                branch_diff = gr.HTML(elem_id="branch-diff")
        outputs = [header, badge, chat, card, candidates, bible, outline, board, board_ids, record_dd, ledger,
                   accept, edit, redo, reject, retry, skip, upload, status, project_dd, pick_radio, take_audio,
                   voices_md, takes_table, card_pid, motion_video, check_ticker, episode_dd, cancel_draft,
                   draft_ticker, board_jobs]

        def snapshot(message: str = "") -> dict[Any, Any]:
            s = studio.session
            if s is None:
                return {header: "## Storyreel\nCreate or open a project to start.", badge: _model_badge(studio),
                        chat: [], card: card_markdown(None), candidates: gr.update(visible=False, value=None),
                        bible: "", outline: "", board: [], board_ids: [],
                        record_dd: gr.update(choices=[], value=None), ledger: [],
                        accept: gr.update(interactive=False), edit: gr.update(interactive=False),
                        redo: gr.update(interactive=False), reject: gr.update(interactive=False),
                        retry: gr.update(interactive=False), skip: gr.update(visible=False),
                        upload: gr.update(visible=False),
                        status: message, project_dd: gr.update(choices=studio.projects()),
                        pick_radio: gr.update(choices=[], value=None, visible=False),
                        take_audio: gr.update(visible=False, value=None), voices_md: "", takes_table: [],
                        card_pid: "", motion_video: gr.update(visible=False, value=None),
                        check_ticker: gr.Timer(active=False), episode_dd: gr.update(choices=[], value=None),
                        cancel_draft: gr.update(visible=False), draft_ticker: gr.Timer(active=False)}
            view = s.view()
            pending = view.pending or {}
            drafting, drafting_now, job_failed = _drafting(pending)
            records = s.records()
            choices = [r.id for recs in records.values() for r in recs]
            choices += [rid for kind in ("outline", "beats", "scene", "shot", "panel") for rid in s.canon.ids(kind)]
            entries = s.ledger.tail(200)
            rows = [[e["time"][:19], e["actor"], e["action"], e.get("record_id") or "", e.get("rev") or "",
                     (e.get("note") or "")[:80]] for e in reversed(entries)]
            deciding = view.awaiting_decision
            shown = lookup(pending.get("kind"))   # what the card's kind shows under it (agent.kinds)
            visual = shown.media == "images"
            cands = (pending.get("data") or {}).get("candidates", []) if visual else []
            gallery = [(str(s.image_path(c["path"])), f"#{i + 1} · seed {c['seed']}") for i, c in enumerate(cands)]
            current = s.current_episode()
            shots, ids, jobs_md = _board(s, current)
            audio_kind = shown.media == "audio"
            audio_cands = (pending.get("data") or {}).get("candidates", []) if audio_kind else []
            vo = s.voices()
            cast_md, take_rows = _cast_markdown(vo), _take_rows(vo)
            preview = None
            if shown.media == "clip" and (pending.get("data") or {}).get("preview"):
                try:
                    preview = str(s.image_path(pending["data"]["preview"]))
                except StoryreelError:
                    preview = None
            if view.stalled:
                message = (message + "\n\n" if message else "") + "⚠ The last step stopped half-way. Press Retry."
            for notice in view.notices:   # e.g. resuming that step failed again: Retry, or Skip to leave it
                message = (message + "\n\n" if message else "") + f"⚠ {notice}"
            on_branch = f" · branch {s.branch}" if s.branch != "main" else ""   # a what-if (Branches tab)
            return {header: f"## Storyreel · {s.project.name}{on_branch}", badge: _model_badge(studio), chat: [{"role": m["role"], "content": m["content"]} for m in view.messages],
                    card: card_markdown(view.pending) + _cold_open_thumbs(s, pending),
                    candidates: gr.update(visible=bool(gallery), value=gallery or None, selected_index=0 if gallery else None),
                    bible: bible_markdown(records), outline: outline_markdown(s.outline()), board: shots,
                    board_jobs: jobs_md,
                    board_ids: ids, record_dd: gr.update(choices=choices), ledger: rows,
                    accept: gr.update(interactive=deciding and not drafting
                                      and (bool(pending.get("data")) or safe_draft(pending) is not None)),
                    edit: gr.update(interactive=deciding and editable(pending)),
                    redo: gr.update(interactive=deciding), reject: gr.update(interactive=deciding),
                    retry: gr.update(visible=view.stalled or job_failed, interactive=view.stalled or job_failed),
                    # a failed step (or one that stopped half-way) can always be left
                    skip: gr.update(visible=view.stalled or (deciding and bool(pending.get("failure")))),
                    upload: gr.update(visible=deciding and shown.upload),
                    status: message,
                    project_dd: gr.update(choices=studio.projects(), value=s.project.root.name),
                    pick_radio: gr.update(choices=[label for _, label in gallery], visible=bool(gallery),
                                          value=gallery[0][1] if gallery else None),
                    take_audio: gr.update(visible=bool(audio_cands),
                                          value=_player(s.image_path(audio_cands[0]["path"])) if audio_cands else ""),
                    voices_md: cast_md, takes_table: take_rows,
                    card_pid: pending.get("proposal_id") or "",
                    motion_video: gr.update(visible=bool(preview), value=preview),
                    check_ticker: gr.Timer(active=_checking(view.pending, vo)),
                    episode_dd: gr.update(choices=_episode_choices(s.canon, current), value=current),
                    cancel_draft: gr.update(visible=deciding and drafting_now),
                    draft_ticker: gr.Timer(active=deciding and drafting_now)}

        def guarded(fn: Any) -> Any:
            def run(*args: Any) -> dict[Any, Any]:
                try:
                    fn(*args)
                    return snapshot()
                except StoryreelError as exc:
                    return snapshot(f"✖ {exc}")
            return run

        def need_session() -> Any:
            if studio.session is None:
                raise InputError("open or create a project first")
            return studio.session

        def render_edit_form(open_pid: str, shown_pid: str, draft_value: Any) -> None:
            """The edit form, inline under the card, bound to the proposal it was opened on.

            Shown only while that proposal is still the card (a decision or a new card closes it);
            every save names the proposal, so the session refuses it for any other card."""
            from ui import edit_form as ef

            s = studio.session
            pending = (s.view().pending if s else None) or {}
            if not open_pid or open_pid != shown_pid or pending.get("proposal_id") != open_pid \
                    or not editable(pending):
                return
            kind = lookup(pending["kind"])
            model = kind.schema
            vocab = {"cast": [r.data.get("name", "") for r in s.canon.list("character")],
                     "places": [r.data.get("name", "") for r in s.canon.list("location")]}
            layout = ef.form_layout(model, vocab)
            data = (draft_value["data"] if isinstance(draft_value, dict) and draft_value.get("pid") == open_pid
                    else ef.start_data(model, pending.get("data") or pending.get("draft")))
            adjust_only = kind.edit == "adjust"
            resizable = kind.rows_resizable   # motion rows follow the shot plan, voice settings are one row
            comps: list[Any] = []
            row_actions: list[tuple[Any, str, int | None]] = []   # (button, table, row or None: add)

            def widget(w: Any, value: Any, label: str) -> Any:
                shown = ef.widget_value(w, value)
                if w.kind in ("choice", "multi"):
                    choices = list(w.choices)
                    extra = shown if isinstance(shown, list) else [shown]
                    choices += [v for v in extra if v and v not in choices]
                    return gr.Dropdown(choices=choices, value=shown, label=label, multiselect=w.kind == "multi",
                                       allow_custom_value=w.custom, interactive=True)
                if w.kind == "check":
                    return gr.Checkbox(value=shown, label=label, interactive=True)
                if w.kind in ("number", "int"):
                    return gr.Number(value=shown, label=label, precision=0 if w.kind == "int" else None,
                                     interactive=True)
                text = str(shown)
                return gr.Textbox(value=text, label=label, interactive=not w.read_only,
                                  lines=3 if w.kind == "lines" or len(text) > 60 else 1)

            with gr.Column(elem_id="edit-form", variant="panel"):
                gr.Markdown("#### Adjust, then listen again" if adjust_only else
                            "#### Edit the proposal, then accept" + (
                                "" if pending.get("data") else " (the model failed: start from its usable "
                                "fields and safe defaults)" if pending.get("draft") else
                                " (the model failed: write it yourself)"))
                for item in layout:
                    if isinstance(item, ef.Table):
                        rows = data.get(item.name) or []
                        gr.Markdown(f"**{item.label.capitalize()}** ({len(rows)})")
                        for r, row in enumerate(rows):
                            head = f"{item.row_name.capitalize()} {r + 1}"
                            if row.get("shot_id"):
                                head += f" — {shot_label(row['shot_id'], canon=s.canon if s else None)}"
                            with gr.Row(elem_classes=["edit-row"], equal_height=False):
                                for col in item.columns:
                                    comps.append(widget(col, row.get(col.name), f"{head} · {col.label}"
                                                        if col is item.columns[0] else col.label))
                                if resizable:
                                    rm = gr.Button(f"Remove {item.row_name} {r + 1}", size="sm", min_width=80,
                                                   elem_classes=["remove-row"])
                                    row_actions.append((rm, item.name, r))
                        if resizable:
                            add = gr.Button(f"+ Add a {item.row_name}", size="sm", elem_classes=["add-row"])
                            row_actions.append((add, item.name, None))
                    else:
                        comps.append(widget(item, data.get(item.name), item.label))
                save = gr.Button("Re-audition with these settings" if adjust_only else "Save edit and accept",
                                 variant="primary", elem_id="save-edit")
                cancel = gr.Button("Close the form", size="sm", elem_id="cancel-edit")

            def resize(table: str, index: int | None) -> Any:
                def apply(*values: Any) -> dict[str, Any]:
                    current = ef.lenient_assemble(layout, data, list(values))
                    changed = (ef.add_row(layout, current, table) if index is None
                               else ef.remove_row(current, table, index))
                    return {"pid": open_pid, "data": changed}
                return apply

            for button, table, index in row_actions:
                button.click(resize(table, index), comps, [draft])

            def on_save(*values: Any) -> dict[Any, Any]:
                return guarded(lambda: need_session().decide(
                    {"type": "edit", "data": ef.assemble(layout, data, list(values)), "proposal_id": open_pid}))()

            save.click(on_save, comps, outputs)
            cancel.click(lambda: ("", None), None, [editing, draft])

        def do_send(text: str) -> dict[Any, Any]:
            result = guarded(lambda: need_session().send(text))()
            return {**result, msg: text if str(result[status]).startswith("✖") else ""}

        send.click(do_send, [msg], [*outputs, msg])
        msg.submit(do_send, [msg], [*outputs, msg])
        def chosen_index(label: str | None) -> int:
            return int(label.split(" ")[0].lstrip("#")) - 1 if label else 0

        # Every decision names the card it was made on (card_pid, as the browser last received it).
        accept.click(guarded(lambda label, pid: need_session().decide(
            {"type": "accept", "choice": chosen_index(label), "proposal_id": pid})), [pick_radio, card_pid], outputs)
        redo.click(guarded(lambda pid: need_session().decide({"type": "redo", "proposal_id": pid})),
                   [card_pid], outputs)
        retry.click(guarded(lambda: need_session().retry()), None, outputs)
        skip.click(guarded(lambda: need_session().skip()), None, outputs)
        cancel_draft.click(guarded(lambda pid: need_session().cancel_drafting(pid)), [card_pid], outputs)

        def refresh_drafting(shown_pid: str) -> dict[Any, Any]:
            """One tick while the card's pictures are drawn as jobs: only the card (its progress) while
            they run; the whole view once it turns into the candidates, fails or is left."""
            s = studio.session
            if s is None:
                return {draft_ticker: gr.Timer(active=False)}
            view = s.view()
            if view.pending is None and not view.stalled:
                return {}          # a run is in flight (the card turning into its candidates): next tick
            pending = view.pending or {}
            _, running, _ = _drafting(pending)
            if running and pending.get("proposal_id") == shown_pid:
                return {card: card_markdown(view.pending)}
            return snapshot()

        draft_ticker.tick(refresh_drafting, [card_pid], outputs, show_progress="hidden")
        upload.upload(guarded(lambda f, pid: need_session().upload(Path(getattr(f, "name", f)), proposal_id=pid)),
                      [upload, card_pid], outputs)

        def pick(evt: gr.SelectData) -> str | None:
            """A click on a candidate picks it in the radio that Accept reads."""
            s = studio.session
            cands = (((s.view().pending or {}).get("data") or {}).get("candidates", [])) if s else []
            index = int(evt.index)
            return f"#{index + 1} · seed {cands[index]['seed']}" if index < len(cands) else None

        # gradio injects SelectData by the annotation's class; with postponed annotations it sees
        # only the string "gr.SelectData", so hand it the class itself.
        pick.__annotations__["evt"] = gr.SelectData
        candidates.select(pick, None, [pick_radio])

        def open_shot(ids: list[str], evt: gr.SelectData) -> dict[Any, Any]:
            return guarded(lambda: need_session().open_item("panel", ids[int(evt.index)]))()

        open_shot.__annotations__["evt"] = gr.SelectData
        board.select(open_shot, [board_ids], outputs)

        def board_view() -> tuple[Any, ...]:
            """The Storyboard tab on opening: the picked episode's shots as they are now."""
            s = studio.session
            return _board(s, s.current_episode()) if s is not None else ([], [], "")

        storyboard_tab.select(board_view, None, [board, board_ids, board_jobs])

        def voices_view() -> tuple[Any, ...]:
            """The Voices tab on opening: the cast and the picked episode's takes as they are now."""
            s = studio.session
            if s is None:
                return "", []
            vo = s.voices()
            return _cast_markdown(vo), _take_rows(vo)

        voices_tab.select(voices_view, None, [voices_md, takes_table])

        def do_export() -> Any:
            try:
                s = need_session()
                png, pdf = s.export_contact_sheet(s.current_episode())
                return [str(png), str(pdf)]
            except StoryreelError as exc:
                gr.Warning(str(exc))
                return None

        export.click(do_export, None, [sheet_files])

        def draft_all_panels() -> dict[Any, Any]:
            """Queue a panel job for every missing or stale shot of the picked episode (agent.tools.batch)."""
            try:
                s = need_session()
                return snapshot(s.draft_all("panels", s.current_episode()))
            except StoryreelError as exc:
                return snapshot(f"✖ {exc}")

        draft_all_btn.click(draft_all_panels, None, outputs)

        def start_render(language: str, music_file: Any) -> tuple[Any, ...]:
            try:
                s = need_session()
                episode = s.current_episode()
                warnings = render_warnings(s, episode, language or "en")
                job = s.render(episode=episode, language=language or "en",
                               music=Path(getattr(music_file, "name", music_file)) if music_file else None)
            except StoryreelError as exc:
                return f'<div class="render-error">✖ {exc}</div>', gr.Timer(active=False)
            note = ""
            if warnings:
                items = "".join(f"<li>{str(w).replace('<', '&lt;')}</li>" for w in warnings)
                note = (f'<div class="render-warnings">⚠ Rendering with {len(warnings)} stale or missing '
                        f'item(s); redo them on the card or in the storyboard, then render again:<ul>{items}</ul></div>')
                gr.Warning(f"Rendering with {len(warnings)} stale or missing item(s): " + "; ".join(warnings[:3]))
            return _progress_html(job.progress, "queued", "starting") + note, gr.Timer(active=True)

        render_btn.click(start_render, [ep_lang, music], [render_progress, ticker])

        def add_cold_open() -> dict[Any, Any]:
            def propose() -> None:
                s = need_session()
                s.add_cold_open(s.current_episode())
            return guarded(propose)()

        cold_open_btn.click(add_cold_open, None, outputs)

        def episode_view(language: str | None) -> tuple[Any, ...]:
            """The Episode tab from disk and canon: timeline strip, languages, the last render."""
            s = studio.session
            if s is None:
                return "", gr.update(choices=["en"]), None, None
            from agent.voices import dub_languages

            episode = s.current_episode()
            try:
                strip_html = _strip_html(s.episode_timeline(episode=episode), s.canon)
            except StoryreelError as exc:
                strip_html = f"<small>Timeline: {str(exc).replace('<', '&lt;')}</small>"
            strip_html = f'<div class="episode-shown"><b>Episode {episode}</b></div>' + strip_html
            files = last_render(s.project.root, episode, language or "en", s.branch)
            return (strip_html, gr.update(choices=["en", *dub_languages(s.canon)]),
                    str(files[0]) if files else None, [str(p) for p in files] or None)

        def poll(shown: str, language: str | None) -> tuple[Any, ...]:
            """One tick while a render runs: progress; on the end, the player, files and stop."""
            s = studio.session
            job = s.jobs.latest("render") if s else None
            if job is None:
                return gr.update(), gr.update(), gr.update(), gr.update(), shown, gr.update(), gr.Timer(active=False)
            html = _progress_html(job.progress, job.state, job.error or job.message)
            if job.active:
                return html, gr.update(), gr.update(), gr.update(), shown, gr.update(), gr.Timer(active=True)
            if job.state == "done" and job.id != shown:
                r = job.result
                strip_html, langs, _, _ = episode_view(language)
                files = [str(p) for p in (r.mp4, r.srt, r.vtt, r.otio, r.contact_sheet)]
                return html, strip_html, str(r.mp4), files, job.id, langs, gr.Timer(active=False)
            return html, gr.update(), gr.update(), gr.update(), shown, gr.update(), gr.Timer(active=False)

        ticker.tick(poll, [shown_job, ep_lang], [render_progress, strip, player, downloads, shown_job, ep_lang,
                                                  ticker])
        episode_tab.select(episode_view, [ep_lang], [strip, ep_lang, player, downloads])
        ep_lang.input(episode_view, [ep_lang], [strip, ep_lang, player, downloads])

        def resume_polling() -> Any:
            """After a reload while a render runs, keep following it."""
            s = studio.session
            job = s.jobs.latest("render") if s else None
            return gr.Timer(active=bool(job and job.active))

        g_add.click(guarded(lambda t, lang, tgt: need_session().set_glossary(t, lang, tgt)),
                    [g_term, g_lang, g_target], outputs)

        def do_reject(text: str, pid: str) -> dict[Any, Any]:
            return {**guarded(lambda: need_session().decide({"type": "reject", "note": text, "proposal_id": pid}))(),
                    note: ""}

        reject.click(do_reject, [note, card_pid], [*outputs, note])
        edit.click(lambda pid: (pid, None), [card_pid], [editing, draft])
        for btn in (accept, redo, reject):   # a decision closes the form (a new card would as well)
            btn.click(lambda: ("", None), None, [editing, draft])

        def do_revert(record_id: str | None, rev: float | None) -> dict[Any, Any]:
            done: list[Any] = []
            result = guarded(lambda: done.append(need_session().undo(
                record_id or None, None if rev is None else int(rev))))()
            if done:
                rec = done[0]
                text = (f"✔ Reverted {rec.id}: it is deleted now (rev {rec.rev}; revert again to bring it back)"
                        if rec.deleted else f"✔ Reverted {rec.id} to its earlier content, saved as rev {rec.rev}")
                gr.Info(text)
                result[status] = text
            return result

        revert.click(do_revert, [record_dd, rev_num], outputs)

        def show_history(record_id: str | None) -> str:
            if not record_id or studio.session is None:
                return ""
            from ui.cards import record_markdown

            try:
                revs = studio.session.history(record_id)
            except StoryreelError as exc:
                return f"✖ {exc}"
            return "\n\n".join(("~~deleted~~ " if r.deleted else "") + record_markdown(r)
                                + f"\n<small>{r.created_at[:19]} · {r.note}</small>" for r in reversed(revs))

        record_dd.change(show_history, [record_dd], [history])
        revert.click(show_history, [record_dd], [history])
        open_btn.click(guarded(lambda name: studio.open(name) if name else None), [project_dd], outputs)

        def do_new(name: str) -> dict[Any, Any]:
            return {**guarded(lambda: studio.create(name))(), new_name: ""}

        new_btn.click(do_new, [new_name], [*outputs, new_name])
        def pick_episode(number: Any) -> dict[Any, Any]:
            return guarded(lambda: need_session().pick_episode(int(number)) if number is not None else None)()

        def series_view() -> tuple[Any, ...]:
            """The Series tab: the board, and the button that starts the next outline episode."""
            s = studio.session
            if s is None:
                return "", gr.update(value="Start the next episode", interactive=False)
            from agent.episodes import outline_count
            from agent.series import latest_started_episode

            board = s.series_board()
            nxt = latest_started_episode(s.canon) + 1
            if outline_count(s.canon) == 0:
                return _series_html(board), gr.update(value="Start the next episode", interactive=False)
            if nxt > outline_count(s.canon):
                return _series_html(board), gr.update(value=f"All {outline_count(s.canon)} episodes started",
                                                      interactive=False)
            return _series_html(board), gr.update(value=f"Start episode {nxt}", interactive=True)

        def start_next_episode() -> dict[Any, Any]:
            def start() -> None:
                from agent.series import latest_started_episode

                s = need_session()
                number = latest_started_episode(s.canon) + 1
                s.start_episode(number)
                s.pick_episode(number)
            return guarded(start)()

        def credits_view(scope: str | None) -> tuple[Any, ...]:
            """The Credits tab: the authorship report of the picked episode or the series, and its files."""
            s = studio.session
            if s is None:
                return "", None
            try:
                view = s.credits(None if scope == "Whole series" else s.current_episode())
            except StoryreelError as exc:
                return f"✖ {exc}", None
            return view.markdown, [str(p) for p in view.files] or None

        def do_export_season() -> tuple[Any, ...]:
            try:
                result = need_session().export_season()
            except StoryreelError as exc:
                return f"✖ {exc}", None
            text = (f"✔ Exported episode{'s' if len(result.episodes) != 1 else ''} "
                    f"{', '.join(map(str, result.episodes))} to `{result.folder}`")
            if result.missing:
                text += "\n\nLeft out:\n" + "\n".join(f"- {m}" for m in result.missing)
            return text, [str(p) for p in result.files]

        episode_outputs = [strip, ep_lang, player, downloads]
        episode_dd.input(pick_episode, [episode_dd], outputs).then(
            episode_view, [ep_lang], episode_outputs).then(credits_view, [credits_scope], [credits_md, credits_files])
        series_tab.select(series_view, None, [series_html, start_next])
        start_next.click(start_next_episode, None, outputs).then(series_view, None, [series_html, start_next]).then(
            episode_view, [ep_lang], episode_outputs)
        export_season_btn.click(do_export_season, None, [season_note, season_files]).then(
            series_view, None, [series_html, start_next])
        credits_tab.select(credits_view, [credits_scope], [credits_md, credits_files])
        credits_scope.input(credits_view, [credits_scope], [credits_md, credits_files])

        def branches_view(message: str = "") -> tuple[Any, ...]:
            """The Branches tab: where the studio works, the branches, and the pickers."""
            from ui.branches import panel_status

            s = studio.session
            if s is None:
                return "", gr.update(choices=[], value=None), gr.update(choices=["main"], value="main")
            names = [row["name"] for row in s.context.branches.names()]
            others = names[1:]
            current = s.branch if s.branch != "main" else (others[-1] if others else None)
            text = (f"{message}\n\n" if message else "") + panel_status(s)
            return (text, gr.update(choices=names, value=current), gr.update(choices=names, value="main"))

        def branch_compare_view(pick: str | None, against: str | None, subject: str | None,
                                episode: float | None) -> str:
            from ui.branches import panel_compare_html

            s = studio.session
            if s is None:
                return ""
            try:
                return panel_compare_html(s, against or "main", pick or "", (subject or "").strip() or None,
                                          int(episode) if episode else None)
            except StoryreelError as exc:
                return f"<p>✖ {_esc(exc)}</p>"

        def branch_action(action: str) -> Any:
            def act(pick: str | None) -> tuple[Any, ...]:
                from ui.branches import panel_act

                try:
                    s = need_session()
                    if action == "switch":
                        s.switch_branch(pick or "main")
                        said = f"✔ Working on {pick or 'main'}."
                    else:
                        said = "✔ " + panel_act(s, action, pick or "")
                except StoryreelError as exc:
                    said = f"✖ {exc}"
                return branches_view(said)
            return act

        branch_outputs = [branch_status, branch_pick, branch_against]
        branches_tab.select(branches_view, None, branch_outputs)
        branch_compare.click(branch_compare_view, [branch_pick, branch_against, branch_subject, branch_episode],
                             [branch_diff])
        for button, action in ((branch_switch, "switch"), (branch_adopt, "adopt"), (branch_discard, "discard"),
                               (branch_reopen, "reopen")):
            button.click(branch_action(action), [branch_pick], branch_outputs).then(lambda: snapshot(), None, outputs)
        app.load(series_view, None, [series_html, start_next])
        app.load(lambda: snapshot(), None, outputs)
        app.load(episode_view, [ep_lang], [strip, ep_lang, player, downloads])
        app.load(resume_polling, None, [ticker])

        def refresh_checks() -> dict[Any, Any]:
            """One tick while a take is checked by ear: the card and the takes table, then stop."""
            s = studio.session
            if s is None:
                return {card: gr.update(), takes_table: gr.update(), check_ticker: gr.Timer(active=False)}
            view, vo = s.view(), s.voices()
            return {card: card_markdown(view.pending), takes_table: _take_rows(vo),
                    check_ticker: gr.Timer(active=_checking(view.pending, vo))}

        check_ticker.tick(refresh_checks, None, [card, takes_table, check_ticker])
    return app


def run_studio(settings: Settings) -> int:
    """Start the studio on settings.host:settings.port; blocks until Ctrl-C or SIGTERM."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    check_port_free(settings.host, settings.port)
    from agent.brain import close_chat_model, open_chat_model

    project = settings.open_project() if settings.project_name else None
    log_dir = project.root / "state" if project else settings.projects_dir
    log_dir.mkdir(parents=True, exist_ok=True)
    model = open_chat_model(settings.llm_settings(project), log_path=Path(log_dir) / "llm-server.log")
    studio = Studio(settings, model)
    try:
        if project is not None:
            studio.open(str(project.root))
        else:
            studio.open_latest()
        app = build_app(studio)
        import gradio as gr
        from starlette.middleware import Middleware

        from ui import serving

        print(f"Storyreel studio on http://{settings.host}:{settings.port} · model: {model.description}",
              flush=True)
        auth = None
        if serving.needs_token(settings.host):   # reachable by others: ask for a token
            token = os.environ.get("STORYREEL_STUDIO_TOKEN") or serving.new_token()
            auth = (serving.AUTH_USER, token)
            print(f"The studio listens on {settings.host}, not only this machine: log in as user "
                  f"'{serving.AUTH_USER}' with the token {token}", flush=True)

        def open_root() -> Path | None:
            return studio.session.project.root if studio.session is not None else None
        # Only the open project's assets/ and renders/ are served (live lists: the studio can switch
        # projects); its canon, state, ledger and settings and every other project are blocked.
        app.queue(default_concurrency_limit=1).launch(
            server_name=settings.host, server_port=settings.port, prevent_thread_lock=True, quiet=True,
            css=CSS, theme=gr.themes.Soft(), footer_links=[], auth=auth,
            auth_message="Storyreel studio: user 'storyreel', the token printed when the studio started.",
            allowed_paths=serving.live_allowed(open_root),
            blocked_paths=serving.live_blocked(open_root, settings.projects_dir),
            num_workers=0,   # files served in this process, where the live lists are
            app_kwargs={"middleware": [Middleware(serving.DownloadActiveContent)]})
        quiet_when_idle(app)
        import signal

        def stop(signum: int, frame: Any) -> None:
            raise KeyboardInterrupt
        signal.signal(signal.SIGTERM, stop)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        app.close()
    finally:
        studio.close()
        close_chat_model(model)
    return 0
