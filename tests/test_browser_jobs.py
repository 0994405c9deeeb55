"""The studio stays usable while a card's pictures are drawn as jobs (issue 13), in Debian's Chromium.

The studio runs in this process (gradio on a free loopback port) around a session whose job runner
paints with a slow fake painter (the animatic renderer behind a gate the test opens: the Protocol
boundary), so the drafting card stays drafting for as long as the test needs: a bible question gets
its answer and the History tab opens meanwhile; then the card turns into the candidates.
"""
from __future__ import annotations

import threading

import pytest

from tests.test_browser_studio import browser, field, free_port, open_studio, prepared_project  # noqa: F401
from tests.test_jobs_session import SlowPainter

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_a_question_and_the_history_tab_while_the_card_drafts(browser, tmp_path):  # noqa: F811
    import gradio as gr

    from agent.context import Targets
    from memory.project import update_project_settings
    from tests.fakes import ScriptedChatModel
    from tools.jobs import Registry
    from tools.jobs.inprocess import InProcessJobRunner
    from tools.jobs.roles import painter_role_for
    from ui.app import Studio, build_app
    from ui.session import DirectorSession
    from ui.settings import Settings

    targets = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)
    project = prepared_project(tmp_path, "reference", candidates=2, targets=targets)
    update_project_settings(project, "targets", targets.as_settings())
    gate = threading.Event()
    painter = SlowPainter(gate=gate)
    model = ScriptedChatModel()
    studio = Studio(Settings(projects_dir=tmp_path), model)
    studio.session = DirectorSession(project, model, targets=targets, painter=painter, candidates=2,
                                     job_runner=InProcessJobRunner(project, Registry([painter_role_for(painter)])))
    studio.session.start()
    port = free_port()
    app = build_app(studio)
    app.queue(default_concurrency_limit=1).launch(server_name="127.0.0.1", server_port=port, quiet=True,
                                                  prevent_thread_lock=True, allowed_paths=[str(project.root)])
    try:
        page = open_studio(browser, port, height=1300, timeout_s=30)
        card = page.locator("#card")
        card.get_by_text("Candidates (").wait_for()       # painted in the step while preparing
        page.click("#redo")                                # drawn again: now as jobs, held by the gate
        card.get_by_text("drafting reference sheet candidates for Aiko").wait_for()
        assert page.locator("#cancel-drafting").is_visible()
        assert not page.locator("#accept").is_enabled()
        card.get_by_text("#1 running").wait_for()          # the timer refresh shows the jobs' progress

        field(page, "message").fill("What does Aiko wear?")
        page.click("#send")
        page.locator("#chat").get_by_text("red scarf").first.wait_for(timeout=10_000)
        assert "drafting reference sheet candidates" in card.inner_text()
        assert not gate.is_set() and painter.calls >= 1

        page.get_by_role("tab", name="History & undo").click()
        page.locator("#record-dd").wait_for(state="visible", timeout=10_000)
        assert "drafting reference sheet candidates" in card.inner_text()

        gate.set()                                         # the painter finishes: the card turns
        card.get_by_text("Candidates (").wait_for(timeout=30_000)
        page.locator("#candidates").locator("img").first.wait_for()
        assert "drafting" not in card.inner_text()
        assert not page.locator("#cancel-drafting").is_visible()
        assert page.locator("#accept").is_enabled()
    finally:
        gate.set()
        app.close()
        studio.close()
        gr.close_all()
