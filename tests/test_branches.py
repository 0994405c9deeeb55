"""Branches of canon (memory/branches.py): copy-on-write revisions, bible and renders per branch,
compare, adopt (one transaction, also under kill -9), discard and reopen. Real SQLite and chroma."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from memory.branches import (
    MAIN,
    BranchBible,
    BranchCanon,
    BranchConflictError,
    BranchError,
    Branches,
    branch_name,
    branch_of_thread,
    check_branch_name,
    entry_branch,
    render_dir,
    thread_id,
)
from memory.canon import Canon
from memory.ledger import Ledger
from memory.project import create_project

REPO = Path(__file__).resolve().parents[1]
REN = {"name": "Ren", "role": "rival", "personality": "cold and clever", "age": 17}
AIKO = {"name": "Aiko", "role": "lead", "personality": "shy but stubborn", "look": "red scarf"}
SCENE = {"name": "Rain at the shrine", "episode": 3, "number": 1, "setting": "shrine",
         "lines": [{"speaker": "character-ren", "text": "I will come back."}]}


def accept(canon: Canon, ledger: Ledger, pid: str, write) -> list:
    records, _ = canon.commit_proposal(pid, write, kind="character", actor="human", action="accept")
    ledger.complete(canon, pid)
    return records


@pytest.fixture
def project(tmp_path: Path):
    project = create_project(tmp_path, "Fox Rain")
    canon = Canon(project.canon_path)
    ledger = Ledger(project.ledger_path)
    accept(canon, ledger, "p-cast", lambda: [
        canon.create("character", REN, actor="human", record_id="character-ren"),
        canon.create("character", AIKO, actor="human", record_id="character-aiko"),
        canon.create("scene", SCENE, actor="human", record_id="scene-3-1"),
    ])
    yield project, canon, ledger
    canon.close()


def branch_work(canon: Canon, ledger: Ledger, name: str = "ren-dies") -> BranchCanon:
    """Open `name` and change Ren and the episode-3 scene on it, as accepted proposals."""
    Branches(canon, ledger).open(name, "What if Ren dies in episode 3?")
    view = BranchCanon(canon.db_path, name)
    accept(view, ledger, "p-ren-dead", lambda: [
        view.revise("character-ren", {**REN, "status": "dead", "personality": "brave at the end"},
                    actor="human"),
        view.revise("scene-3-1", {**SCENE, "lines": [{"speaker": "character-aiko", "text": "Ren is gone."}]},
                    actor="human"),
    ])
    return view


# --- names and threads (table-driven) ----------------------------------------------------------


@pytest.mark.parametrize("name, ok", [
    ("ren-dies", True), ("a", True), ("ep3-alt", True), ("main", False), ("Ren", False),
    ("-x", False), ("x-", False), ("two words", False), ("../x", False), ("", False), ("a" * 41, False),
])
def test_branch_names(name, ok):
    if ok:
        assert check_branch_name(name) == name
    else:
        with pytest.raises(BranchError, match="lower-case"):
            check_branch_name(name)


@pytest.mark.parametrize("words, name", [
    ("What if Ren dies in episode 3?", "what-if-ren-dies-in-episode-3"), ("MAIN", "branch"),
    ("  Ren's  fall ", "ren-s-fall"), ("???", "branch"),
])
def test_branch_name_from_words(words, name):
    assert branch_name(words) == name
    check_branch_name(name)


@pytest.mark.parametrize("branch, thread", [(MAIN, "writers-room"), ("ren-dies", "writers-room@branch:ren-dies")])
def test_thread_ids(branch, thread):
    assert thread_id("writers-room", branch) == thread
    assert branch_of_thread(thread) == branch


# --- copy-on-write canon ------------------------------------------------------------------------


def test_branch_changes_leave_main_untouched(project):
    _, canon, ledger = project
    main_before = {r.id: (r.rev, r.data) for r in canon.list()}
    view = branch_work(canon, ledger)
    created = accept(view, ledger, "p-ghost", lambda: [view.create(
        "character", {"name": "Ren's ghost", "role": "spirit"}, actor="human")])
    assert {r.id: (r.rev, r.data) for r in canon.list()} == main_before
    assert canon.live(created[0].id) is None
    # the branch sees its own revisions over main's, numbered on from main's
    ren = view.get("character-ren")
    assert (ren.rev, ren.data["status"]) == (2, "dead")
    assert [r.rev for r in view.history("character-ren")] == [1, 2]
    assert view.get("character-ren", 1).data == REN
    assert [r.id for r in view.list("character")] == ["character-ren", "character-aiko", created[0].id]
    assert [r.id for r in view.children("scene", "episode", 3)] == ["scene-3-1"]
    assert view.children("scene", "episode", 3)[0].data["lines"][0]["text"] == "Ren is gone."
    assert canon.children("scene", "episode", 3)[0].data == SCENE
    # copy-on-write: only the branch's revisions are stored, main's records are not copied
    assert view.revision_count() - canon.revision_count() == 3
    # "as of now": what main accepts meanwhile shows on the branch
    accept(canon, ledger, "p-aiko-older", lambda: [canon.revise("character-aiko", {**AIKO, "age": 30},
                                                                actor="human")])
    assert view.get("character-aiko").data["age"] == 30
    view.close()


def test_deleting_on_a_branch_hides_only_there(project):
    _, canon, ledger = project
    Branches(canon, ledger).open("no-aiko")
    with BranchCanon(canon.db_path, "no-aiko") as view:
        view.delete("character-aiko", actor="human")
        assert [r.id for r in view.list("character")] == ["character-ren"]
        assert view.live("character-aiko") is None
    assert canon.live("character-aiko") is not None


def test_unknown_and_closed_branches_are_refused(project):
    _, canon, ledger = project
    branches = Branches(canon, ledger)
    with pytest.raises(BranchError, match="no branch 'nope'"):
        BranchCanon(canon.db_path, "nope")
    branches.open("ren-dies")
    with pytest.raises(BranchError, match="already exists"):
        branches.open("ren-dies")
    branches.discard("ren-dies", note="too dark")
    with BranchCanon(canon.db_path, "ren-dies") as view, pytest.raises(BranchError, match="is discarded; reopen"):
        view.revise("character-ren", REN, actor="human")
    with pytest.raises(BranchError, match="only an open branch"):
        branches.adopt("ren-dies")


def test_compare_shows_the_difference(project):
    _, canon, ledger = project
    branch_work(canon, ledger).close()
    branches = Branches(canon, ledger)
    diffs = {d.record_id: d for d in branches.compare(MAIN, "ren-dies")}
    assert set(diffs) == {"character-ren", "scene-3-1"}
    assert diffs["character-ren"].left == REN
    assert diffs["character-ren"].right["status"] == "dead"
    only_ep3 = branches.compare(MAIN, "ren-dies", episode=3)
    assert [d.record_id for d in only_ep3] == ["scene-3-1"]
    assert branches.compare(MAIN, "ren-dies", episode=1) == []
    assert [d.record_id for d in branches.compare(MAIN, "ren-dies", record_ids=["character-ren"])] == ["character-ren"]


def test_adopt_makes_main_equal_the_branch_and_the_ledger_shows_it(project):
    proj, canon, ledger = project
    view = branch_work(canon, ledger)
    branch_state = {r.id: r.data for r in view.list()}
    view.close()
    written = Branches(canon, ledger).adopt("ren-dies")
    assert {(r.id, r.rev) for r in written} == {("character-ren", 2), ("scene-3-1", 2)}
    assert {r.id: r.data for r in canon.list()} == branch_state
    assert "adopted from branch ren-dies" in canon.get("character-ren").note
    assert Branches(canon, ledger).get("ren-dies").status == "adopted"
    entries = ledger.entries()
    on_branch = [(e["action"], e["record_id"]) for e in entries if entry_branch(e) == "ren-dies"]
    assert on_branch == [("branch-open", None), ("accept", "character-ren"), ("accept", "scene-3-1")]
    adopted = [e for e in entries if e["action"] == "adopt"]
    assert [(e["record_id"], e["rev"], e["branch"], e["from_branch"]) for e in adopted] == [
        ("character-ren", 2, "main", "ren-dies"), ("scene-3-1", 2, "main", "ren-dies")]
    from memory.doctor import diagnose
    report, doctor_canon = diagnose(proj)
    doctor_canon.close()
    assert [f.message for f in report.problems if f.area in ("canon", "ledger")] == []


def test_old_ledger_lines_read_as_main():
    assert entry_branch({"action": "accept"}) == MAIN
    assert entry_branch({"action": "accept", "branch": "x"}) == "x"


def test_adopt_refuses_a_conflict_naming_the_records(project):
    _, canon, ledger = project
    branch_work(canon, ledger).close()
    accept(canon, ledger, "p-ren-main", lambda: [canon.revise("character-ren", {**REN, "age": 18},
                                                              actor="human")])
    branches = Branches(canon, ledger)
    with pytest.raises(BranchConflictError, match="character-ren") as caught:
        branches.adopt("ren-dies")
    assert caught.value.records == ("character-ren",)
    assert canon.get("character-ren").data["age"] == 18 and canon.get("scene-3-1").rev == 1
    assert branches.get("ren-dies").status == "open"
    written = branches.adopt("ren-dies", prefer_branch=True)
    assert canon.get("character-ren").data["status"] == "dead"
    assert [r.rev for r in written if r.id == "character-ren"] == [3]


def test_discard_and_reopen_keep_everything(project):
    _, canon, ledger = project
    branch_work(canon, ledger).close()
    branches = Branches(canon, ledger)
    assert branches.discard("ren-dies", note="not this way").status == "discarded"
    with pytest.raises(BranchError, match="is discarded, not open"):
        branches.discard("ren-dies")
    assert branches.reopen("ren-dies").status == "open"
    with branches.view("ren-dies") as view:
        assert view.get("character-ren").data["status"] == "dead"
    assert [e["action"] for e in ledger.entries() if e["action"].startswith("branch-")] == [
        "branch-open", "branch-discard", "branch-reopen"]


def test_renders_of_a_branch_go_to_their_own_folder(project):
    proj, _, _ = project
    assert render_dir(proj, 3) == proj.root / "renders" / "ep03"
    assert render_dir(proj, 3, "ren-dies") == proj.root / "renders" / "branches" / "ren-dies" / "ep03"
    with pytest.raises(BranchError):
        render_dir(proj, 3, "../main")
    from agent.cut import last_render
    from agent.cut import render_dir as cut_render_dir

    assert cut_render_dir(proj, 3, "ja", "ren-dies") == render_dir(proj, 3, "ren-dies") / "ja"
    main_mp4 = render_dir(proj, 3) / "episode.mp4"
    main_mp4.parent.mkdir(parents=True)
    main_mp4.write_bytes(b"main cut")
    assert last_render(proj, 3, branch="ren-dies") is None            # a branch never shows main's cut
    branch_mp4 = render_dir(proj, 3, "ren-dies") / "episode.mp4"
    branch_mp4.parent.mkdir(parents=True)
    branch_mp4.write_bytes(b"branch cut")
    assert last_render(proj, 3, branch="ren-dies")["mp4"] == branch_mp4
    assert last_render(proj, 3)["mp4"].read_bytes() == b"main cut"


# --- the bible on a branch ----------------------------------------------------------------------


def test_bible_search_on_a_branch_merges_and_main_stays(project):
    from memory.bible import Bible

    proj, canon, ledger = project
    bible = Bible(proj.chroma_dir)
    try:
        bible.rebuild(canon)
        query = "who is dead"
        main_before = [(h.record_id, h.text) for h in bible.search(query, k=3)]
        view = branch_work(canon, ledger)
        branch_bible = BranchBible(bible, view)
        assert branch_bible.sync() == 2
        hits = branch_bible.search(query, k=3)
        ren = next(h for h in hits if h.record_id == "character-ren")
        assert "dead" in ren.text
        assert len({h.record_id for h in hits}) == len(hits) == 3   # main's Ren is hidden, not doubled
        assert [(h.record_id, h.text) for h in bible.search(query, k=3)] == main_before
        assert bible.count() == 3 and branch_bible.count() == 2
        view.close()
    finally:
        bible.close()


# --- kill -9 during adopt -----------------------------------------------------------------------

ADOPT_SCRIPT = textwrap.dedent("""
    import sys
    from memory.branches import Branches
    from memory.canon import Canon
    from memory.ledger import Ledger
    root = sys.argv[1]
    canon = Canon(root + "/canon.sqlite")
    Branches(canon, Ledger(root + "/ledger.jsonl")).adopt("ren-dies")
""")


@pytest.mark.parametrize("crash_at", ["adopt-mid-write@1", "adopt-mid-write@2", "adopt-after-commit", ""])
def test_kill_during_adopt_leaves_old_or_new_main(project, crash_at):
    from memory.doctor import diagnose

    proj, canon, ledger = project
    old = {r.id: r.data for r in canon.list(include_deleted=True)}
    view = branch_work(canon, ledger)
    new = {r.id: r.data for r in view.list(include_deleted=True)}
    view.close()
    canon.close()
    env = {**os.environ, "STORYREEL_CRASH_AT": crash_at, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", ADOPT_SCRIPT, str(proj.root)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == (137 if crash_at else 0), done.stderr
    reopened = Canon(proj.canon_path)
    try:
        Ledger(proj.ledger_path).complete(reopened)   # what opening a session does first
        now = {r.id: r.data for r in reopened.list(include_deleted=True)}
        assert now in (old, new), "main is a mix of the old main and the branch"
        assert (now == new) == (crash_at in ("adopt-after-commit", ""))
        status = Branches(reopened).get("ren-dies").status
        assert status == ("adopted" if now == new else "open")
    finally:
        reopened.close()
    report, doctor_canon = diagnose(proj)
    if doctor_canon is not None:
        doctor_canon.close()
    assert [f.message for f in report.problems if f.area in ("canon", "ledger")] == []


# --- the session and the chat tools -------------------------------------------------------------


@pytest.fixture
def session(tmp_path):
    from agent.context import Targets
    from tests.fakes import ScriptedChatModel
    from tests.router_table import build_fixture
    from ui.session import DirectorSession

    proj = create_project(tmp_path, "Fox Rain")
    with Canon(proj.canon_path) as c:
        build_fixture(c)
    s = DirectorSession(proj, ScriptedChatModel(),
                        targets=Targets(characters=3, locations=2, props=1, episodes=1, scenes=3))
    s.start()
    s.send("A premise.")
    yield s
    s.close()


def test_a_branch_in_the_chat_is_reviewed_apart_then_adopted(session):
    import sqlite3

    s = session
    ren_before = s.canon.get("character-ren").data
    view = s.send("what if Ren dies in episode 3?")
    name = s.branch
    assert name == "ren-dies-in-episode-3"
    assert s.thread_id == "writers-room@branch:" + name
    assert "branch “ren-dies-in-episode-3”" in view.messages[-1]["content"]
    s.llm.script = {"CharacterProposal": [{**ren_before, "personality": "doomed, brave at the end"}]}
    view = s.send("make Ren braver")
    assert view.pending["target_id"] == "character-ren"
    s.decide({"type": "accept"})
    assert s.canon.get("character-ren").data["personality"] == "doomed, brave at the end"
    with Canon(s.project.canon_path) as main:
        assert main.get("character-ren").data == ren_before
    accepted = [e for e in s.ledger.entries() if e["action"] == "accept" and e["record_id"] == "character-ren"]
    assert [entry_branch(e) for e in accepted] == [name]
    # back on main: main's record, main's thread; the compare names the difference
    view = s.send("go back to the main line")
    assert (s.branch, s.thread_id) == (MAIN, "writers-room")
    assert s.canon.get("character-ren").data == ren_before
    view = s.send(f"compare {name} with main")
    assert "character-ren: personality" in view.messages[-1]["content"]
    view = s.send(f"adopt the {name} branch")
    assert "Adopted branch" in view.messages[-1]["content"]
    assert s.canon.get("character-ren").data["personality"] == "doomed, brave at the end"
    assert s.bible.search("doomed brave", kinds=["character"], k=1)[0].record_id == "character-ren"
    with sqlite3.connect(s.project.checkpoints_path) as conn:
        threads = {row[0] for row in conn.execute("SELECT DISTINCT thread_id FROM checkpoints")}
    assert threads == {"writers-room", "writers-room@branch:" + name}


def test_branch_tools_without_a_session_say_how():
    from types import SimpleNamespace

    from agent.tools import ToolContext, ToolError, call

    tc = ToolContext(ctx=SimpleNamespace(branches=None), state={}, text="what if?")
    with pytest.raises(ToolError, match="storyreel studio"):
        call("open_branch", {"question": "what if?"}).run(tc)


@pytest.mark.parametrize("tool, clause, args", [
    ("open_branch", "open a branch called ren-dies", {"name": "ren-dies"}),
    ("switch_branch", "switch to the ren-dies branch", {"name": "ren-dies"}),
    ("switch_branch", "go back to the main line", {"name": "main"}),
    ("compare_branches", "compare ren-dies with main", {"left": "ren-dies", "right": "main"}),
    ("compare_branches", "compare the alt-end branch", {"left": "main", "right": "alt-end"}),
    ("compare_branches", "compare the branches", {"left": "main", "right": None}),
    ("adopt_branch", "adopt this branch", {"name": None}),
    ("discard_branch", "discard branch alt-end, too dark", {"name": "alt-end"}),
])
def test_router_arguments_of_branch_tools(tool, clause, args):
    from agent.tools.branches import router_arguments

    got = router_arguments(tool, clause)
    assert {k: got[k] for k in args} == args


def test_the_authorship_report_per_branch(project, tmp_path):
    from memory.authorship import authorship_report

    proj, canon, ledger = project
    view = branch_work(canon, ledger)
    accept(view, ledger, "p-aiko-edit", lambda: [view.revise("character-aiko", {**AIKO, "look": "blue scarf"},
                                                             actor="human")])
    ledger.append(actor="human", action="reject", record_id="character-aiko", kind="character",
                  note="not blue", branch="ren-dies")
    on_branch = {i.item_id: i for i in authorship_report(view, ledger).items}
    on_main = {i.item_id: i for i in authorship_report(canon, ledger).items}
    assert (on_branch["character-ren"].rev, on_branch["character-ren"].proposal_id) == (2, "p-ren-dead")
    assert (on_main["character-ren"].rev, on_main["character-ren"].proposal_id) == (1, "p-cast")
    assert on_branch["character-aiko"].proposal_id == "p-aiko-edit"
    assert [r.note for r in authorship_report(view, ledger).rejections] == ["not blue"]
    assert authorship_report(canon, ledger).rejections == ()
    view.close()
    # adopted, main's new revisions keep the authorship of the branch's decisions
    Branches(canon, ledger).adopt("ren-dies")
    adopted = {i.item_id: i for i in authorship_report(canon, ledger).items}
    assert (adopted["character-ren"].rev, adopted["character-ren"].proposal_id) == (2, "p-ren-dead")
    assert adopted["character-ren"].action == "adopt ren-dies: accept"
    assert adopted["character-aiko"].proposal_id == "p-aiko-edit"
    # the CLI: storyreel report --branch NAME writes into reports/branches/NAME/
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    canon.close()
    done = subprocess.run([sys.executable, "-m", "ui.cli", "report", str(proj.root), "--branch", "ren-dies",
                           "--format", "json"], env=env, cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    written = proj.root / "reports" / "branches" / "ren-dies" / "authorship-series.json"
    assert written.is_file() and "branch ren-dies" in written.read_text()


def test_the_branches_panel_compares_switches_and_acts(session, tmp_path):
    from ui.app import Studio, build_app
    from ui.branches import panel_act, panel_compare_html, panel_status
    from ui.settings import Settings

    s = session
    s.send("open a branch called ren-dies")
    assert s.branch == "ren-dies"
    s.llm.script = {"CharacterProposal": [{**s.canon.get("character-ren").data, "personality": "doomed"}]}
    s.send("make Ren braver")
    s.decide({"type": "accept"})
    assert "branch ren-dies" in panel_status(s) and "`ren-dies` (open, 1 record(s) changed)" in panel_status(s)
    page = panel_compare_html(s, "main", "ren-dies")
    assert "character-ren" in page and "doomed" in page and "diff_" in page
    assert "No differences" in panel_compare_html(s, "main", "ren-dies", episode=1)   # Ren is series-wide
    assert panel_act(s, "discard", "ren-dies").startswith("Discarded") and s.branch == MAIN
    assert s.canon.get("character-ren").data["personality"] != "doomed"
    panel_act(s, "reopen", "ren-dies")
    s.switch_branch("ren-dies")
    assert any(m["content"] == "make Ren braver" for m in s.view().messages)   # the branch's own chat
    assert s.credits().files[0].parent == s.project.root / "reports" / "branches" / "ren-dies"
    assert panel_act(s, "adopt", "ren-dies").startswith("Adopted") and s.branch == MAIN
    assert s.canon.get("character-ren").data["personality"] == "doomed"
    with pytest.raises(BranchError, match="pick a branch"):
        panel_act(s, "adopt", MAIN)
    studio = Studio(Settings(projects_dir=tmp_path), s.llm)
    studio.session = s
    assert build_app(studio) is not None   # the Branches tab's wiring builds


def test_a_bare_undo_reverts_the_last_change_of_its_own_line(project):
    _, canon, ledger = project
    branch_work(canon, ledger).close()
    assert Ledger(ledger.path).last_decided()["record_id"] == "scene-3-1"
    assert entry_branch(Ledger(ledger.path).last_decided()) == MAIN
    assert entry_branch(Ledger(ledger.path, branch="ren-dies").last_decided()) == "ren-dies"
    accept(canon, ledger, "p-aiko-main", lambda: [canon.revise("character-aiko", {**AIKO, "age": 30},
                                                               actor="human")])
    assert Ledger(ledger.path, branch="ren-dies").last_decided()["record_id"] == "scene-3-1"
    assert Ledger(ledger.path).last_decided()["record_id"] == "character-aiko"
