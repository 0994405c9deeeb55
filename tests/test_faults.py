"""Kill a real Storyreel process at named points and check that reopening the project loses nothing.

Each entry of `KILL_POINTS` names a crash point (memory/faults.py: `STORYREEL_CRASH_AT=NAME` makes
the process `os._exit(137)` there, as a `kill -9` would), the project state to start from, and the
process to kill: `storyreel chat` fed a script on stdin, `storyreel make` (the render), or a small
driver calling `DirectorSession.upload` (the chat has no upload command). The "kill-9-..." points
send a real SIGKILL instead, timed from the fake LLM's requests, around the commits of a chat that
accepts three proposals (the probe's random kills, without depending on the machine's speed). After
the kill the project is reopened and `check_reopened` asserts zero loss:

- the project opens (nothing refused), and the card it shows is a valid proposal (the pending
  proposal is intact; re-accepting a card that was already committed changes nothing);
- every decision accepted before the kill, and the one being committed, is in canon exactly once
  (no second live record, no second revision from one proposal), with exactly one ledger line;
- ledger, canon, bible index and checkpoints agree (the doctor finds no problem in them);
- for the render point: the previous episode.mp4 is unchanged and still decodes.

`run_kill_point(name, tmp_path) -> bool` is what bench/faults.py calls for each point.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from memory.faults import ENV, EXIT_CODE, POINTS
from tests.fake_openai import FakeOpenAIServer

ROOT = Path(__file__).resolve().parents[1]
PREMISE = "A shrine maiden hears rain spirits."
#: A short series, so a prepared project reaches takes and a cut in seconds.
SMALL = {"characters": 1, "locations": 1, "props": 0, "episodes": 1, "scenes": 1, "shots": 1}


@dataclass(frozen=True)
class KillPoint:
    crash_at: str                 # STORYREEL_CRASH_AT for the killed process
    prepare: str | None           # advance in-process until this card is pending; "all": accept everything
                                  # and render once; None: a new project
    process: str                  # "chat" | "upload" | "render" | "timed" (SIGKILL, no crash hook)
    stdin: tuple[str, ...] = ()   # the chat's script
    committing: tuple[str, ...] = ()   # records the killed process was committing (must be in canon once)
    slow: bool = False
    after_request: int = 0        # "timed": SIGKILL `delay` s after the fake LLM's n-th request
    delay: float = 0.0


#: When the timed kill points send SIGKILL to a chat accepting three proposals: `delay`
#: seconds after the fake LLM received its `n`-th request (request n drafts proposal n; the accept of
#: proposal n, its commit and the next draft follow within a few hundredths of a second). The
#: probe's random kills, made independent of how fast the machine is today.
TIMED_KILLS = ((1, 0.0), (1, 0.02), (1, 0.03), (1, 0.035), (1, 0.04), (1, 0.05), (2, 0.0), (2, 0.003),
               (2, 0.006), (2, 0.01), (2, 0.04), (3, 0.01), (3, 0.02), (3, 0.03), (4, 0.1))


KILL_POINTS: dict[str, KillPoint] = {
    # Accept the vision (commit 1), the series (commit 2), then Aiko (commit 3), dying inside the third.
    "after-canon-write": KillPoint("after-canon-write@3", None, "chat", (PREMISE, *["/accept"] * 3),
                                   ("vision", "series", "style", "character-aiko")),
    "after-ledger-write": KillPoint("after-ledger-write@3", None, "chat", (PREMISE, *["/accept"] * 3),
                                    ("vision", "series", "style", "character-aiko")),
    # The series commit writes two records (the vision's one is indexed first): die after the series.
    "mid-bible-index": KillPoint("mid-bible-index@2", None, "chat", (PREMISE, "/accept", "/accept"),
                                 ("vision", "series", "style")),
    # The very first commit of a project (the director's vision), before any ledger line exists.
    "first-commit-after-canon-write": KillPoint("after-canon-write@1", None, "chat", (PREMISE, "/accept"),
                                                ("vision",)),
    "mid-upload-import": KillPoint("mid-upload-import", "reference", "upload", slow=True),
    "mid-take-write": KillPoint("mid-take-write", "take", "chat", ("/redo",), slow=True),
    "mid-render-segment": KillPoint("mid-render-segment", "all", "render", slow=True),
    # kill -9 at moments around the commits of a chat accepting three proposals
    **{f"kill-9-request{n}+{delay}s": KillPoint("", None, "timed", (PREMISE, *["/accept"] * 4),   # vision first
                                               slow=True, after_request=n, delay=delay)
       for n, delay in TIMED_KILLS},
}


# ----------------------------------------------------------------------------- preparing


def _open(project):
    from tests.fakes import ScriptedChatModel
    from ui.session import open_session

    return open_session(project, ScriptedChatModel())


def prepare(tmp_path: Path, until: str | None):
    """A new project; advanced in-process with the project's real backends until `until` is the card."""
    from memory.project import create_project

    project = create_project(tmp_path / "projects", "Fox Rain", targets=SMALL)
    if until is None:
        return project
    with _open(project) as s:
        s.start()
        view = s.send(PREMISE)
        while view.awaiting_decision and view.pending["kind"] != until:
            view = s.decide({"type": "accept", "proposal_id": view.pending.get("proposal_id")})
        if until == "all":
            from agent.cut import render_cut

            render_cut(s.canon, project.root)
        else:
            assert view.pending and view.pending["kind"] == until, f"never reached a {until} card"
    return project


def _png(path: Path) -> Path:
    from PIL import Image

    Image.new("RGB", (540, 960), (200, 40, 60)).save(path)
    return path


_UPLOAD_DRIVER = textwrap.dedent("""
    import sys
    from pathlib import Path
    from memory.project import open_project
    from tests.fakes import ScriptedChatModel
    from ui.session import open_session
    with open_session(open_project(Path(sys.argv[1])), ScriptedChatModel()) as s:
        s.start()
        s.upload(Path(sys.argv[2]))
    print("upload finished")
""")


def kill_timed(point: KillPoint, project, llm) -> None:
    """SIGKILL the chat `point.delay` s after the fake LLM got its `point.after_request`-th request."""
    import time

    cmd = [sys.executable, "-m", "ui.cli", "--projects-dir", str(project.root.parent), "chat",
           project.root.name, "--llm-url", llm.url]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env={**os.environ, "OPENAI_BASE_URL": ""})
    try:
        assert proc.stdin is not None
        proc.stdin.write(("\n".join([*point.stdin, "/quit"]) + "\n").encode())
        proc.stdin.close()
        deadline = time.monotonic() + 120
        while len(llm.requests) < point.after_request and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(point.delay)
    finally:
        proc.kill()
        proc.wait(30)


def kill(point: KillPoint, project, llm_url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """Run the point's process with the crash hook set; it should die with exit code 137."""
    env = {**os.environ, ENV: point.crash_at, "OPENAI_BASE_URL": ""}
    if point.process == "chat":
        cmd = [sys.executable, "-m", "ui.cli", "--projects-dir", str(project.root.parent), "chat",
               project.root.name, "--llm-url", llm_url]
        stdin = "\n".join([*point.stdin, "/quit"]) + "\n"
    elif point.process == "upload":
        cmd = [sys.executable, "-c", _UPLOAD_DRIVER, str(project.root), str(_png(tmp_path / "mine.png"))]
        stdin = ""
    elif point.process == "render":
        shutil.rmtree(project.root / "state" / "render-cache" / "segments", ignore_errors=True)
        cmd = [sys.executable, "-m", "ui.cli", "make", PREMISE, "--project", str(project.root), "--auto-accept",
               "--shots", "1", "--llm-url", llm_url]
        stdin = ""
    else:
        raise ValueError(f"unknown process {point.process!r}")
    return subprocess.run(cmd, cwd=ROOT, input=stdin, capture_output=True, text=True, env=env, timeout=600,
                          check=False)


# ----------------------------------------------------------------------------- checking


def _decided(project) -> list[dict]:
    from memory.doctor import accepted_decisions
    from memory.ledger import Ledger

    return accepted_decisions(Ledger(project.ledger_path))


def _decodes(mp4: Path) -> bool:
    from tools.render.encode import ffmpeg_exe

    out = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", str(mp4), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=120, check=False)
    return out.returncode == 0 and not out.stderr.strip()


def check_reopened(project, point: KillPoint, before: list[dict], pending_before: dict | None,
                   mp4_before: str | None) -> list[str]:
    """Every way the reopened project lost or duplicated something (empty: zero loss)."""
    from memory.doctor import diagnose, duplicate_records

    problems: list[str] = []
    try:
        session = _open(project)
    except Exception as exc:  # noqa: BLE001 - any refusal is a loss here
        return [f"the project does not reopen: {type(exc).__name__}: {exc}"]
    with session:
        view = session.start()
        card = view.pending or {}
        if point.process == "timed" and card.get("kind") == "input":
            pass                                   # killed before the first proposal: fine
        elif (pending_before or {}).get("kind") == "input":     # nothing was pending: still nothing
            if card.get("kind") != "input":
                problems.append(f"a card appeared from nowhere after reopening: {dict(card)}")
        elif not view.awaiting_decision or not card.get("data") or card.get("failure"):
            problems.append(f"no valid proposal on the card after reopening: {dict(card)}")
        same_card = card.get("proposal_id") == (pending_before or {}).get("proposal_id")
        if point.process == "upload" and not same_card:
            problems.append(f"the pending {pending_before.get('kind')} card was lost "
                            f"(now {card.get('kind')} {card.get('proposal_id')})")
        if card.get("proposal_id") and session.canon.commit_of(card["proposal_id"]):
            # The card came back although its accept was committed (the step's checkpoint was not
            # on disk yet): accepting it again must change nothing.
            session.decide({"type": "accept", "proposal_id": card["proposal_id"]})
        session._bible_sync.join(120)
        canon = session.canon
        revisions = set(canon.revision_keys())
        lost = [f"{e['record_id']} rev {e['rev']}" for e in before
                if (e["record_id"], e["rev"]) not in revisions]
        if lost:
            problems.append(f"accepted before the kill, gone after: {', '.join(lost)}")
        for record_id in point.committing:
            if canon.live(record_id) is None:
                problems.append(f"{record_id} (being committed at the kill) is not in canon")
        per_proposal = Counter((rid, canon.get(rid, rev).note) for rid, rev in revisions
                               if canon.get(rid, rev).note.startswith("proposal "))
        twice = [f"{rid} ({note})" for (rid, note), n in per_proposal.items() if n > 1]
        if twice:
            problems.append(f"one proposal wrote a record twice: {', '.join(twice)}")
        if duplicate_records(canon):
            problems.append(f"duplicate live records: {duplicate_records(canon)}")
        lines = Counter((e["record_id"], e["rev"]) for e in _decided(project))
        if [k for k, n in lines.items() if n > 1]:
            problems.append(f"decisions logged twice: {[k for k, n in lines.items() if n > 1]}")
        if set(lines) != revisions:
            problems.append(f"ledger and canon disagree: canon only {sorted(revisions - set(lines))}, "
                            f"ledger only {sorted(set(lines) - revisions)}")
    report, canon = diagnose(project)
    if canon is not None:
        canon.close()
    problems += [f"doctor: {f.area}: {f.message}" for f in report.problems if f.area != "temporaries"]
    if mp4_before is not None:
        mp4 = project.root / "renders" / "ep01" / "episode.mp4"
        if not mp4.exists() or hashlib.sha256(mp4.read_bytes()).hexdigest() != mp4_before:
            problems.append("the previous episode.mp4 changed or vanished")
        elif not _decodes(mp4):
            problems.append("the previous episode.mp4 no longer decodes")
    return problems


def kill_and_check(name: str, tmp_path: Path) -> list[str]:
    """Prepare, kill at the point, reopen and check; returns the problems found (empty: zero loss)."""
    point = KILL_POINTS[name]
    with FakeOpenAIServer() as llm:
        project = prepare(tmp_path, point.prepare)
        before = _decided(project)
        pending_before = None
        if point.prepare is not None:
            with _open(project) as s:
                pending_before = dict(s.view().pending or {})
        mp4 = project.root / "renders" / "ep01" / "episode.mp4"
        mp4_before = hashlib.sha256(mp4.read_bytes()).hexdigest() if mp4.exists() else None
        if point.process == "timed":     # whatever was committed must be whole, the rest not there yet
            kill_timed(point, project, llm)
            return check_reopened(project, point, before, None, None)
        out = kill(point, project, llm.url, tmp_path)
        if out.returncode != EXIT_CODE:
            return [(f"the process was not killed at {point.crash_at} (exit {out.returncode}): "
                     f"{out.stdout[-800:]} {out.stderr[-1500:]}")]
        return check_reopened(project, point, before, pending_before, mp4_before)


def run_kill_point(name: str, tmp_path: Path) -> bool:
    """True when killing at `name` lost nothing (bench/faults.py counts these)."""
    return not kill_and_check(name, Path(tmp_path))


# ----------------------------------------------------------------------------- the tests


def _param(name: str):
    return pytest.param(name, marks=[pytest.mark.slow] if KILL_POINTS[name].slow else [], id=name)


@pytest.mark.parametrize("name", [_param(n) for n in KILL_POINTS])
def test_kill_point_loses_nothing(name, tmp_path) -> None:
    assert kill_and_check(name, tmp_path) == []


def test_every_crash_point_has_a_kill_test() -> None:
    named = {point.crash_at.split("@")[0] for point in KILL_POINTS.values() if point.crash_at}
    assert named == set(POINTS)


@pytest.mark.parametrize(("setting", "exit_code", "reached"), [
    ("", 0, 2),                 # unset: nothing happens
    ("other-point", 0, 2),
    ("demo", EXIT_CODE, 0),     # the first time it is reached
    ("demo@2", EXIT_CODE, 1),   # the second time
    ("demo@3", 0, 2),           # never reached three times
    ("x, demo@2", EXIT_CODE, 1),
])
def test_crash_point_exits_at_the_named_time(setting, exit_code, reached) -> None:
    code = ("from memory.faults import crash_point\n"
            "for _ in range(2):\n    crash_point('demo')\n    print('passed', flush=True)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         env={**os.environ, ENV: setting}, check=False)
    assert out.returncode == exit_code and out.stdout.count("passed") == reached
    assert ("crash point demo reached" in out.stderr) == (exit_code == EXIT_CODE)


# ----------------------------------------------------------------------------- the commit node alone


@pytest.mark.parametrize(("kind", "data", "ids"), [
    ("series", None, ["series", "style"]),
    ("character", 0, ["character-aiko"]),
    ("outline", "outline", ["outline", "episode-1", "episode-2", "episode-3", "episode-4", "episode-5"]),
])
def test_commit_node_run_twice_writes_once(tmp_path, kind, data, ids) -> None:
    """The commit step re-runs from its first line after a crash: the second run must be a no-op
    that reports the same records (and leaves one revision and one ledger line per record)."""
    from langgraph.runtime import Runtime

    from agent.nodes import commit
    from memory.project import create_project
    from tests.fakes import CHARACTERS, OUTLINE, SERIES, ScriptedChatModel
    from ui.session import DirectorSession

    payload = {None: SERIES, 0: CHARACTERS[0], "outline": OUTLINE}[data]
    state = {"premise": PREMISE, "notes": [], "pending": {
        "proposal_id": "p-twice", "kind": kind, "target_id": None, "data": dict(payload), "decided": "accept",
        "actor": "human", "retrieved": []}}
    with DirectorSession(create_project(tmp_path, "Fox Rain"), ScriptedChatModel()) as s:
        runtime = Runtime(context=s.context)
        first = commit(state, runtime).update["messages"][0]["content"]
        second = commit(state, runtime).update["messages"][0]["content"]
        assert first == second and all(f"{rid} (rev 1)" in first for rid in ids)
        assert sorted(r.id for r in s.canon.list()) == sorted(ids)
        assert s.canon.revision_count() == len(ids)
        lines = [(e["record_id"], e["rev"]) for e in s.ledger.entries() if e["action"] == "accept"]
        assert sorted(lines) == sorted((rid, 1) for rid in ids)
        s._bible_sync.join(60)
        assert s.bible.missing(s.canon) == ([], [], [])
