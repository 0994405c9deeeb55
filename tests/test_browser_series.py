"""The studio for a series, driven by Playwright in Debian's Chromium: the episode picker shared by
the storyboard, voices and episode tabs, the series board, the season export and the Credits tab.

Episode 1 is made by the real session (scripted model, animatic painter) up to its panels, then
voiced with takes written to canon; episode 2 (beats, a scene, a shot plan and current panels) is
written to canon directly, as a director's accepted cards would leave it.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAIServer
from tests.test_browser_studio import browser, free_port, open_studio, start_studio  # noqa: F401 - fixture

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def two_episode_project(tmp_path: Path):
    from agent.context import Targets
    from agent.episodes import start_episode
    from agent.storyboard import image_record_id, made_from
    from memory.canon import Canon
    from memory.ledger import Ledger
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from tests.test_series_board import plan_ep2_shots, voice_ep1
    from tools.backends.animatic import AnimaticPainter
    from ui.session import DirectorSession

    project = create_project(tmp_path, "Fox Rain")
    with DirectorSession(project, ScriptedChatModel(), painter=AnimaticPainter(), candidates=1,
                         targets=Targets(characters=2, locations=1, props=0, episodes=2, scenes=1)) as s:
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        while view.awaiting_decision and view.pending["kind"] not in ("casting", "take"):
            view = s.decide({"type": "accept"})
    with Canon(project.canon_path) as canon:
        voice_ep1(canon, project)
        start_episode(canon, Ledger(project.ledger_path), 2)      # the director's "Start episode 2"
        plan_ep2_shots(canon, project)
        for shot in canon.children("shot", "scene_id", "scene-ep2-1"):
            ep1 = canon.get(image_record_id("panel", shot.id.replace("ep2", "ep1"))).data
            canon.upsert("panel", {**ep1, "subject": shot.id, "made_from": made_from(canon, "panel", shot.id)},
                         actor="human", record_id=image_record_id("panel", shot.id), note="episode 2 panel")
    return project


def pick(page, label: str) -> None:
    """Pick ``label`` in the episode picker and wait until the studio shows it back."""
    page.locator("#episode-dd input").first.click()
    page.get_by_role("option", name=label, exact=True).click()
    page.wait_for_function("label => document.querySelector('#episode-dd input').value === label", arg=label)


def test_pick_an_episode_see_the_series_board_and_the_credits(browser, tmp_path):  # noqa: F811
    project = two_episode_project(tmp_path)
    port = free_port()
    with FakeOpenAIServer() as llm:
        proc = start_studio(tmp_path, port, llm.url, "fox-rain")
        try:
            page = open_studio(browser, port, height=1400, timeout_s=40)
            page.locator("#header").get_by_text("Storyreel · Fox Rain").wait_for()
            page.wait_for_function("() => document.querySelector('#episode-dd input').value === 'Episode 2'")

            page.get_by_role("tab", name="Storyboard").click()
            board = page.locator("#storyboard")
            board.get_by_text("scene-ep2-1-s1 · establishing · accepted").wait_for()
            assert "scene-ep1-1" not in board.inner_text()         # episode 2's shots only

            pick(page, "Episode 1")                                  # its shots only
            board.get_by_text("scene-ep1-1-s1 · establishing · accepted").wait_for()
            assert "scene-ep2-1" not in board.inner_text()
            page.get_by_role("tab", name="Voices").click()
            page.wait_for_function("() => document.querySelector('#takes').innerText.includes('scene-ep1-1-l1')")

            pick(page, "Episode 2")                                  # and back to episode 2
            page.get_by_role("tab", name="Storyboard").click()
            board.get_by_text("scene-ep2-1-s1 · establishing · accepted").wait_for()
            assert "scene-ep1-1" not in board.inner_text()
            page.get_by_role("tab", name="Voices").click()
            page.wait_for_function("() => document.querySelector('#takes').innerText.includes('scene-ep2-1-l1')")
            assert "scene-ep1-1-l1" not in page.locator("#takes").inner_text()
            page.get_by_role("tab", name="Episode").click()
            page.locator("#timeline-strip").get_by_text("Episode 2").wait_for()

            page.get_by_role("tab", name="Series").click()           # one row per outline episode
            rows = page.locator("#series-board tr.series-row")
            rows.nth(1).wait_for()
            statuses = {int(r.get_attribute("data-episode")): r.get_attribute("data-status")
                        for r in rows.all()}
            assert statuses[1] == "voiced" and statuses[2] == "storyboard"
            assert "has no accepted en take" in rows.nth(1).inner_text()
            assert all(statuses[n] == "outline" for n in statuses if n > 2)
            start = page.locator("#start-episode")
            page.wait_for_function("() => document.querySelector('#start-episode').innerText.includes('Start episode')")
            page.click("#export-season")                             # nothing rendered: named, no crash
            page.locator("#season-note").get_by_text("render one first").wait_for()
            page.screenshot(path=str(tmp_path / "series.png"), full_page=True)

            page.get_by_role("tab", name="Credits").click()          # the picked episode's report
            credits = page.locator("#credits")
            credits.get_by_text("episode 2").first.wait_for()
            assert "Authorship of" in credits.inner_text()
            files = page.locator("#credits-files")
            link = files.locator('a[download="authorship-ep02.json"]')
            link.wait_for()
            answer = page.request.get(urllib.parse.urljoin(page.url, link.get_attribute("href")))
            assert answer.status == 200 and json.loads(answer.body())["episode"] == 2
            # the report folder itself is served (ui.serving), HTML as a download only
            direct = page.request.get(urllib.parse.urljoin(page.url, "/gradio_api/file=" + urllib.parse.quote(
                str((project.root / "reports" / "authorship-ep02.html").resolve()))))
            assert direct.status == 200 and "attachment" in direct.headers.get("content-disposition", "")
            page.locator("#credits-scope").get_by_text("Whole series").click()
            credits.get_by_text("the series").first.wait_for()
            files.locator('a[download="authorship-series.json"]').wait_for()

            page.get_by_role("tab", name="Series").click()           # start the next episode from the board
            page.wait_for_function("() => document.querySelector('#start-episode').innerText.includes('Start episode 3')")
            start.click()
            page.wait_for_function("() => document.querySelector('#episode-dd input').value === 'Episode 3'")
            page.locator('#series-board tr.series-row[data-episode="3"][data-status="writing"]').wait_for()
        finally:
            proc.terminate()
            proc.wait(20)
    assert (project.root / "reports" / "authorship-ep02.html").is_file()
    assert re.search(r"authorship-series", " ".join(p.name for p in (project.root / "reports").iterdir()))
