"""`storyreel` commands. Imports stay inside the commands so that `--help` answers at once."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ui.settings import Settings, build_settings

DEFAULT_PORT = 7860


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="storyreel",
        description="Storyreel: a director's assistant for AI anime mini dramas. The AI proposes; "
                    "you accept, edit, reject or redo every creative decision.")
    p.add_argument("--projects-dir", type=Path, default=None,
                   help="where projects live (default: $STORYREEL_HOME or ~/storyreel-projects)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    new = sub.add_parser("new", help="create a project folder")
    new.add_argument("name", help='series name, e.g. "Fox Rain" (becomes the folder fox-rain)')

    studio = sub.add_parser("studio", help="open the director studio in the browser")
    studio.add_argument("project", nargs="?",
                        help="project name or folder (default: the one used last; others in the studio)")
    studio.add_argument("--host", default="127.0.0.1",
                        help="bind address (default 127.0.0.1: this machine only); any other address asks "
                             "for a login: user 'storyreel', password the token printed at start "
                             "($STORYREEL_STUDIO_TOKEN to choose it)")
    studio.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    _llm_args(studio)
    _take_check_arg(studio)

    chat = sub.add_parser("chat", help="the same conversation in the terminal (reads stdin; scriptable)")
    chat.add_argument("project", help="project name or folder")
    chat.add_argument("--jsonl", action="store_true",
                      help="scriptable: read a plain line or a JSON object per line, write one JSON event per "
                           "line (message, proposal, decision, error, waiting; see README)")
    _llm_args(chat)
    _take_check_arg(chat)

    make = sub.add_parser("make", help="headless: premise to finished episodes, accepting every proposal",
                          description="Runs the whole pipeline (bible, beats, episodes 1…N, panels, takes, "
                                      "motion, cut) on the configured or embedded backends. Every automatic "
                                      "acceptance is logged in the ledger with actor 'auto'; where the model's "
                                      "output stays unusable, a safe default is used and logged as an 'auto' "
                                      "fallback. A new project gets make's targets in project.toml [targets].")
    make.add_argument("premise", nargs="?", default=None,
                      help="the series premise (not needed to continue a series with --episode)")
    make.add_argument("--project", type=Path, required=True, help="project folder (created if new)")
    make.add_argument("--auto-accept", action="store_true",
                      help="required: accept every proposal automatically (logged as actor 'auto')")
    make.add_argument("--shots", type=int, default=4,
                      help="shots per scene (default 4; a new project plans one scene)")
    make.add_argument("--episodes", type=int, default=1,
                      help="make episodes 1 to N (default 1), the story so far and its continuity facts "
                           "accepted between them; each is rendered to renders/epNN/")
    make.add_argument("--episode", type=int, default=None,
                      help="continue an existing series (--project) with this episode only")
    make.add_argument("--cold-open", action="store_true",
                      help="open each episode from 2 on with a 3-6 s 'previously on' of accepted shots of the "
                           "episode before (accepted automatically, logged 'auto')")
    make.add_argument("--vision", type=Path, default=None, metavar="FILE",
                      help="your vision of the series, the first card (TOML with premise, themes, emotional_core, "
                           "tone_references, never; or Markdown/text with those headings); accepted as yours. "
                           "Without it the premise is the vision, accepted as 'auto'")
    make.add_argument("--redos", type=int, default=3, metavar="N",
                      help="redo a card the model failed up to N times before its safe draft is accepted "
                           "(logged as a fallback; default 3, 0 to 10; fewer is faster on a small model)")
    make.add_argument("--language", default="en", help="caption/voice language of the cut (default en)")
    make.add_argument("--music", type=Path, default=None, help="a music bed (any audio file); default none")
    make.add_argument("--jobs", choices=("inprocess", "ray"), default=None,
                      help="where pictures, takes and clips are made as jobs: in this process (default, or "
                           "project.toml [jobs] backend) or on a Ray cluster ([jobs] address, default \"auto\")")
    _llm_args(make)
    _take_check_arg(make)

    reindex = sub.add_parser("reindex", help="rebuild the story bible index (chroma) from canon")
    reindex.add_argument("project", help="project name or folder")

    doctor = sub.add_parser(
        "doctor", help="check a project's stores agree (and --repair what can be repaired)",
        description="Checks canon and checkpoint integrity, ledger against canon, the bible index, files "
                    "canon refers to, and temporaries left by a crash. Exit code 0 when healthy, 1 when "
                    "problems remain. --repair never deletes: it moves bad files into state/quarantine/.")
    doctor.add_argument("project", help="project name or folder")
    doctor.add_argument("--repair", action="store_true",
                        help="fix what can be fixed (derived ledger lines, bible index, duplicates, "
                             "moving bad checkpoints and orphaned temporaries aside)")

    report = sub.add_parser(
        "report", help="the authorship report: who wrote, edited, accepted or uploaded what (HTML, PDF, JSON)",
        description="Per record, dialogue line, shot, panel and take: written by the director, proposed and "
                    "accepted as is, proposed and edited (fields and edit ratio), accepted automatically "
                    "('auto') or uploaded; the share of each per area (story, dialogue, visuals, voices, edit), "
                    "the rejections and their notes, and the models used. Computed from the ledger and canon "
                    "revisions. Written as authorship-epNN (or authorship-series) .html, .pdf and .json.")
    report.add_argument("project", help="project name or folder")
    report.add_argument("--episode", type=int, default=None,
                        help="one episode (its own records plus the bible it uses); default: the whole series")
    report.add_argument("--out", type=Path, default=None, help="folder for the files (default PROJECT/reports/, "
                        "or PROJECT/reports/branches/NAME/ with --branch)")
    report.add_argument("--branch", default=None, metavar="NAME",
                        help="the report of a branch (its canon and decisions over main's); default: main")
    report.add_argument("--format", action="append", choices=("html", "pdf", "json"), default=None,
                        help="only this format (repeat for several; default all three)")

    export = sub.add_parser(
        "export", help="the season: every rendered episode's MP4, SRT, VTT and OTIO in one folder",
        description="Copies each rendered episode's files as epNN.mp4/.srt/.vtt/.otio into one folder, plus "
                    "season.otio (one track: the episodes in order) and season_contact_sheet.png (a row of "
                    "panels per episode). Episodes without a render are named and left out.")
    export.add_argument("project", help="project name or folder")
    export.add_argument("--out", type=Path, default=None, help="folder for the files (default PROJECT/renders/season/)")
    export.add_argument("--language", default="en", help="which renders (default en; a dub's code for its renders)")
    return p


def _take_check_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-take-check", action="store_true",
                   help="do not check takes by ear (Whisper transcribes each take in the background when "
                        "faster-whisper is installed; project.toml [voice] take_check = false does the same)")


def _llm_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm-url", default=None,
                   help="OpenAI-compatible base URL (overrides OPENAI_BASE_URL and project.toml)")
    p.add_argument("--llm-model", default=None, help="model name on that server (STORYREEL_LLM_MODEL)")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from memory.errors import StoryreelError

    try:
        settings = build_settings(args)
        if args.command == "make":
            return cmd_make(settings, args)
        if args.command == "doctor":
            return cmd_doctor(settings, args)
        if args.command == "report":
            return cmd_report(settings, args)
        if args.command == "export":
            return cmd_export(settings, args)
        if args.command == "chat":
            return cmd_chat(settings, jsonl=bool(getattr(args, "jsonl", False)))
        return {"new": cmd_new, "studio": cmd_studio,
                "reindex": cmd_reindex}[args.command](settings)
    except StoryreelError as exc:
        print(f"storyreel: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last resort: a message, not a traceback
        return _unexpected(exc)


def _unexpected(exc: Exception) -> int:
    """An error Storyreel has no message for: one line naming it, the traceback only on request."""
    import sqlite3

    text = " ".join(str(exc).split())[:300] or "(no message)"
    if isinstance(exc, sqlite3.DatabaseError):
        hint = ("a project database is damaged; check it with `storyreel doctor PROJECT` "
                "(`--repair` fixes what it can)")
    elif isinstance(exc, OSError):
        hint = f"a file or folder could not be used{f' ({exc.filename})' if exc.filename else ''}; check it exists, is writable and its name is not too long"
    else:
        hint = "this is a bug in Storyreel; nothing more was changed"
    print(f"storyreel: unexpected {type(exc).__name__}: {text}. {hint[0].upper() + hint[1:]}. "
          "Run again with STORYREEL_DEBUG=1 for the traceback.", file=sys.stderr)
    if os.environ.get("STORYREEL_DEBUG") == "1":
        import traceback

        traceback.print_exception(exc, file=sys.stderr)
    return 1


def cmd_new(settings: Settings) -> int:
    from memory.project import create_project

    project = create_project(settings.projects_dir, settings.project_name or "")
    print(f"Created {project.name!r} in {project.root}")
    print(f"Open it with: storyreel studio {project.root}")
    return 0


def cmd_make(settings: Settings, args: argparse.Namespace) -> int:
    from memory.errors import InputError
    from ui.headless import run_make

    if not args.auto_accept:
        raise InputError("make runs without you: pass --auto-accept (every acceptance is logged as actor "
                         "'auto'); to decide yourself, use `storyreel studio` or `storyreel chat`")
    if args.premise is None and args.episode is None and getattr(args, "vision", None) is None:
        raise InputError("make needs the series premise: storyreel make \"PREMISE\" --project DIR --auto-accept "
                         "(or --vision FILE naming it, or --episode N to continue an existing series)")
    return run_make(settings, args.premise, args.project, shots=args.shots, language=args.language,
                    music=args.music, jobs=getattr(args, "jobs", None) or "settings", episodes=args.episodes,
                    episode=args.episode, cold_open=bool(getattr(args, "cold_open", False)),
                    vision=getattr(args, "vision", None), redos=getattr(args, "redos", 3))


def cmd_reindex(settings: Settings) -> int:
    from memory.bible import Bible
    from memory.doctor import require_canon
    from memory.ledger import Ledger
    from memory.project import ProjectLock

    project = settings.open_project()
    with ProjectLock(project):
        canon = require_canon(project, Ledger(project.ledger_path))  # never index an emptied canon
        count = Bible(project.chroma_dir).rebuild(canon)
        canon.close()
    print(f"Re-indexed {count} bible records of {project.name!r}")
    return 0


def cmd_doctor(settings: Settings, args: argparse.Namespace) -> int:
    from memory.doctor import run_doctor

    return run_doctor(settings.open_project(), repair=args.repair, out=sys.stdout)


def cmd_report(settings: Settings, args: argparse.Namespace) -> int:
    from memory.authorship import CATEGORIES, CATEGORY_LABELS, authorship_report
    from memory.canon import Canon
    from memory.errors import InputError
    from memory.ledger import Ledger
    from ui.report import FORMATS, reports_dir, write_report

    project = settings.open_project()
    if not project.canon_path.is_file():
        raise InputError(f"{project.root} has no canon yet (nothing was accepted); there is no authorship "
                         "to report")
    out = args.out
    if args.branch and args.branch != "main":
        from dataclasses import replace

        from memory.branches import BranchCanon, check_branch_name

        out = out or reports_dir(project) / "branches" / check_branch_name(args.branch)
        with BranchCanon(project.canon_path, args.branch) as canon:
            report = authorship_report(canon, Ledger(project.ledger_path), episode=args.episode)
        report = replace(report, title=f"{report.title or project.name} (branch {args.branch})")
    else:
        with Canon(project.canon_path) as canon:
            report = authorship_report(canon, Ledger(project.ledger_path), episode=args.episode)
    written = write_report(report, project, out, tuple(args.format or FORMATS))
    total = report.overall
    print(f"Authorship of {report.title or project.name!r}"
          f"{f' episode {report.episode}' if report.episode else ''}: {total.total} items, "
          + ", ".join(f"{total.counts[c]} {CATEGORY_LABELS[c]}" for c in CATEGORIES)
          + f"; {total.rejections} rejections")
    for path in written.values():
        print(f"  {path}")
    return 0


def cmd_export(settings: Settings, args: argparse.Namespace) -> int:
    from agent.series import export_season
    from memory.canon import Canon
    from memory.errors import InputError

    project = settings.open_project()
    if not project.canon_path.is_file():
        raise InputError(f"{project.root} has no canon yet (nothing was accepted); there is no season to export")
    with Canon(project.canon_path) as canon:
        result = export_season(canon, project, args.out, language=args.language)
    print(f"Exported {len(result.episodes)} episode(s) of {project.name!r} to {result.folder}: "
          + ", ".join(f"episode {n}" for n in result.episodes))
    for path in result.files:
        print(f"  {path}")
    for text in result.missing:
        print(f"  left out: {text}")
    return 0


def cmd_studio(settings: Settings) -> int:
    from ui.app import run_studio

    return run_studio(settings)


def cmd_chat(settings: Settings, *, jsonl: bool = False) -> int:
    from ui.terminal import run_chat

    return run_chat(settings, sys.stdin, sys.stdout, jsonl=jsonl)


if __name__ == "__main__":  # pragma: no cover
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    sys.exit(main())
