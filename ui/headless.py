"""`storyreel make`: the whole pipeline without a human at the controls.

Every proposal is accepted automatically and every acceptance is logged with actor `auto`, so the
ledger never claims a person decided it. A failed proposal is redone a few times, then the run stops
with the model's error (nothing accepted so far is lost; `storyreel studio` continues from there).
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TextIO

from agent.context import Targets
from memory.errors import BackendError, InputError
from ui.settings import Settings

MAX_REDOS = 3


def make_targets(shots: int) -> Targets:
    return Targets(characters=2, locations=1, props=1, episodes=3, scenes=1, shots=shots)


def open_or_create(path: Path):  # noqa: ANN201 - Project
    from memory.project import create_project, open_project, slugify_project_name

    path = Path(path).expanduser()
    if (path / "project.toml").exists():
        return open_project(path)
    if path.exists() and any(path.iterdir()):
        raise InputError(f"{path} exists and is not a Storyreel project; pick an empty or new folder")
    if path.exists():
        path.rmdir()
    if slugify_project_name(path.name) != path.name:
        raise InputError(f"--project {path}: use a folder name like {slugify_project_name(path.name)!r}")
    return create_project(path.parent, path.name)


def run_make(settings: Settings, premise: str, project_dir: Path, *, shots: int = 4, language: str = "en",
             music: Path | None = None, out: TextIO = sys.stdout) -> int:
    from agent.brain import close_chat_model, open_chat_model
    from agent.cut import render_cut
    from ui.session import open_session

    if not 1 <= shots <= 12:
        raise InputError(f"--shots {shots}: choose 1 to 12 shots")
    project = open_or_create(project_dir)
    (project.root / "state").mkdir(exist_ok=True)
    model = open_chat_model(settings.llm_settings(project), log_path=project.root / "state" / "llm-server.log")

    def say(text: str) -> None:
        out.write(text + "\n")
        out.flush()

    t0 = time.perf_counter()
    try:
        session = open_session(project, model, targets=make_targets(shots), actor="auto")
        with session:
            say(f"storyreel make · {project.root} · model: {model.description}")
            view = session.start()
            if not session.canon.list("series"):
                view = session.send(premise)
            step, redos = 0, 0
            while view.awaiting_decision:
                pending = view.pending or {}
                kind, title = pending.get("kind"), pending.get("title", "")
                if pending.get("failure") or not pending.get("data"):
                    redos += 1
                    if redos > MAX_REDOS:
                        raise BackendError(f"{title}: {pending.get('failure')} (after {MAX_REDOS} redos)")
                    say(f"  ! {title}: {pending.get('failure')} — redo {redos}/{MAX_REDOS}")
                    view = session.decide({"type": "redo"})
                    continue
                redos = 0
                step += 1
                view = session.decide({"type": "accept"})
                last = next((m["content"] for m in reversed(view.messages) if m["content"].startswith(
                    ("Accepted", "Edited"))), "")
                say(f"[{step:3d}] {kind:<11} {last[:100]}  ({time.perf_counter() - t0:5.1f} s)")
            say("Cutting the episode…")

            def bar(fraction: float, message: str) -> None:
                filled = int(fraction * 30)
                out.write(f"\r  [{'#' * filled}{'.' * (30 - filled)}] {fraction * 100:5.1f}% {message[:50]:<50}")
                out.flush()
            result = render_cut(session.canon, project.root, language=language, music=music, progress=bar)
            out.write("\n")
            autos = sum(1 for e in session.ledger.entries() if e["actor"] == "auto")
            say(f"Done in {time.perf_counter() - t0:.1f} s: {result.mp4}")
            say(f"  captions {result.srt.name}, {result.vtt.name}; timeline {result.otio.name}; "
                f"contact sheet {result.contact_sheet.name}; {result.duration_s:.1f} s long")
            say(f"  {autos} automatic decisions are in {project.ledger_path.name} with actor 'auto'")
    finally:
        close_chat_model(model)
    return 0
