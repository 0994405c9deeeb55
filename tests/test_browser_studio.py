"""The real studio process driven by Playwright in Debian's Chromium (no browser download).

The LLM is a scripted OpenAI-compatible server on loopback, so the browser flow is deterministic;
everything else (gradio, session, chroma, sqlite, ledger, checkpointer) is the shipped code.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAIServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CHROMIUM = "/usr/bin/chromium"
ROOT = Path(__file__).resolve().parents[1]
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_studio(projects: Path, port: int, llm_url: str, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "ui.cli", "--projects-dir", str(projects), "studio",
                             *extra, "--port", str(port), "--llm-url", llm_url],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"studio exited early: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("studio did not answer within 90 s")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing; .ci/run installs Debian's chromium")
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield b
        b.close()


def prepared_project(tmp_path: Path, until: str | None, **session_kwargs):
    """A project advanced in-process (scripted model, animatic painter) until the card shows
    `until` (None: until nothing is left to decide); the studio under test then opens it."""
    from agent.context import Targets
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from tools.backends.animatic import AnimaticPainter
    from ui.session import DirectorSession

    project = create_project(tmp_path, "Fox Rain")
    kwargs = {"painter": AnimaticPainter(), "targets": Targets(), **session_kwargs}
    with DirectorSession(project, ScriptedChatModel(), **kwargs) as s:
        s.start()
        view = s.send("A shrine maiden hears rain spirits.")
        while view.awaiting_decision and view.pending["kind"] != until:
            view = s.decide({"type": "accept"})
    return project


def open_studio(browser, port: int, *, height: int = 1100, timeout_s: int = 30):
    page = browser.new_page(viewport={"width": 1500, "height": height})
    page.set_default_timeout(timeout_s * 1000)
    page.goto(f"http://127.0.0.1:{port}/")
    return page


def field(page, elem_id: str):
    return page.locator(f"#{elem_id}").locator("textarea, input").first


def test_create_propose_accept_reload_and_restart(browser, tmp_path):
    port = free_port()
    with FakeOpenAIServer() as llm:
        proc = start_studio(tmp_path, port, llm.url)
        try:
            page = open_studio(browser, port, height=1100, timeout_s=30)
            field(page, "new-project-name").fill("Fox Rain")
            page.click("#new-project")
            page.locator("#header").get_by_text("Storyreel · Fox Rain").wait_for()
            assert (tmp_path / "fox-rain" / "project.toml").exists()
            page.locator("#card").get_by_text("Waiting for you").wait_for()

            field(page, "message").fill("A shrine maiden hears rain spirits before a storm.")
            page.click("#send")
            # the director's vision comes first ("Your vision comes first" is also in the waiting text:
            # wait for words only the card has)
            page.locator("#card").get_by_text("draft the vision for me").wait_for()
            assert "Your vision" in page.locator("#card").inner_text()
            page.click("#accept")
            page.locator("#card").get_by_text("Logline and style guide").wait_for()
            assert "Fox Rain" in page.locator("#card").inner_text()
            assert "before a storm" in page.locator("#bible").inner_text()   # the vision tops the bible
            assert "none yet" in page.locator("#bible").inner_text()  # not canon before accepting

            page.click("#accept")
            page.locator("#card").get_by_text("Aiko").wait_for()
            bible = page.locator("#bible")
            bible.get_by_text("anime cel shading, soft rim light").wait_for()
            assert "Fox Rain" in bible.inner_text()

            page.click("#edit")                     # the form, every field editable
            form = page.locator("#edit-form")
            form.get_by_label("age", exact=True).fill("31")
            form.locator("#save-edit").click()
            page.locator("#card").get_by_text("Ren").wait_for()
            bible.get_by_text("Aiko").first.wait_for()
            assert "31" in bible.inner_text()

            page.locator("#note textarea").fill("make him a villain")
            page.click("#reject")                   # the agent revises with the note: Kaito next
            page.locator("#card").get_by_text("draft 2").wait_for()

            page.reload()
            page.locator("#card").get_by_text("draft 2").wait_for()
            assert "anime cel shading" in page.locator("#bible").inner_text()
            assert "A shrine maiden hears rain spirits" in page.locator("#chat").inner_text()
            page.screenshot(path=str(tmp_path / "studio.png"), full_page=True)
        finally:
            proc.send_signal(signal.SIGKILL)  # a crash, not a clean exit
            proc.wait(10)

        proc = start_studio(tmp_path, port, llm.url, "fox-rain")
        try:
            page = open_studio(browser, port, height=1100, timeout_s=30)
            page.locator("#card").get_by_text("draft 2").wait_for()  # the pending proposal survived
            assert "anime cel shading" in page.locator("#bible").inner_text()
            assert "A shrine maiden hears rain spirits" in page.locator("#chat").inner_text()
        finally:
            proc.terminate()
            proc.wait(20)


def test_port_taken_gives_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        out = subprocess.run([sys.executable, "-m", "ui.cli", "--projects-dir", str(tmp_path), "studio",
                              "--port", str(port), "--llm-url", "http://127.0.0.1:9/v1"],
                             cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert f"port {port} on 127.0.0.1 is already in use" in out.stderr and "--port" in out.stderr


def test_accept_shot_plan_pick_panel_candidate_see_it_in_storyboard(browser, tmp_path):
    from agent.storyboard import _seed
    from memory.canon import Canon

    project = prepared_project(tmp_path, "shots")
    port = free_port()
    with FakeOpenAIServer() as llm:
        proc = start_studio(tmp_path, port, llm.url, "fox-rain")
        try:
            page = open_studio(browser, port, height=1200, timeout_s=30)
            page.locator("#card").get_by_text("Shot plan").wait_for()
            page.click("#accept")
            page.locator("#card").get_by_text("Panel · draft 1").wait_for()
            thumbs = page.locator("#candidates img")
            thumbs.nth(1).wait_for()
            assert thumbs.count() == 2
            thumbs.nth(1).click()                   # pick candidate #2 by clicking its picture
            second = page.locator("#pick input[type=radio]").nth(1)
            page.wait_for_function("() => document.querySelectorAll('#pick input[type=radio]')[1].checked")
            assert second.is_checked()
            page.click("#accept")
            page.locator("#status").get_by_text("✖").wait_for(state="detached")
            page.locator("#chat").get_by_text("Accepted: panel-scene-ep1-1-s1").wait_for()
            page.get_by_role("tab", name="Storyboard").click()
            board = page.locator("#storyboard")
            board.get_by_text("scene-ep1-1-s1 · establishing · accepted").wait_for()
            assert board.locator("img").count() >= 1
            page.screenshot(path=str(tmp_path / "storyboard.png"), full_page=True)
        finally:
            proc.terminate()
            proc.wait(20)
    canon = Canon(project.canon_path)
    panel = canon.get("panel-scene-ep1-1-s1")
    assert panel.actor == "human" and panel.data["source"] == "generated"
    assert panel.data["seed"] == _seed("scene-ep1-1-s1", 1, 1)   # candidate #2 (index 1) was picked


def test_play_a_take_on_the_review_card_and_accept_it(browser, tmp_path):
    from agent.voices import VoiceBackends
    from memory.canon import Canon

    project = prepared_project(tmp_path, "take", voices=VoiceBackends())
    port = free_port()
    with FakeOpenAIServer() as llm:
        proc = start_studio(tmp_path, port, llm.url, "fox-rain")
        try:
            page = open_studio(browser, port, height=1200, timeout_s=30)
            page.locator("#card").get_by_text("Line take").wait_for()
            audio = page.locator("#take-audio audio").first
            audio.wait_for(state="attached")
            assert audio.get_attribute("src")
            page.wait_for_function(
                "() => { const a = document.querySelector('#take-audio audio'); "
                "return a && a.readyState >= 1 && isFinite(a.duration) && a.duration > 0.3; }")
            duration = page.evaluate("document.querySelector('#take-audio audio').duration")
            page.evaluate("document.querySelector('#take-audio audio').play().catch(() => null)")
            page.click("#accept")
            page.locator("#chat").get_by_text("Accepted: take-scene-ep1-1-l1-en").wait_for()
        finally:
            proc.terminate()
            proc.wait(20)
    take = Canon(project.canon_path).get("take-scene-ep1-1-l1-en")
    assert take.actor == "human" and abs(take.data["duration_s"] - duration) < 0.1


def test_episode_tab_renders_in_the_background_with_progress_and_a_player(browser, tmp_path):
    from agent.context import Targets
    from agent.voices import VoiceBackends
    from memory.project import update_project_settings

    project = prepared_project(tmp_path, None, voices=VoiceBackends(), candidates=1,
                               targets=Targets(characters=2, locations=1, props=0, episodes=1, scenes=1))
    update_project_settings(project, "painter", {"candidates": 1})
    port = free_port()
    with FakeOpenAIServer() as llm:
        proc = start_studio(tmp_path, port, llm.url, "fox-rain")
        try:
            page = open_studio(browser, port, height=1300, timeout_s=60)
            page.get_by_role("tab", name="Episode").click()
            page.locator("#timeline-strip").get_by_text("s3").wait_for()
            page.click("#render")
            page.locator("#render-progress .render-job").wait_for()
            field(page, "message").fill("What does Aiko wear?")     # chat while it renders
            page.click("#send")
            page.locator("#chat").get_by_text("red scarf").first.wait_for()
            page.locator('#render-progress .render-job[data-state="done"]').wait_for(timeout=180_000)
            page.locator("#episode-player video").wait_for(state="attached")
            page.wait_for_function("() => { const v = document.querySelector('#episode-player video'); "
                                   "return v && v.src && v.readyState >= 1 && v.duration > 2; }")
            page.wait_for_function("() => { const t = document.querySelector('#episode-files').innerText; "
                                   "return t.includes('episode') && t.includes('srt') && t.includes('otio'); }")
            page.screenshot(path=str(tmp_path / "episode.png"), full_page=True)
        finally:
            proc.terminate()
            proc.wait(20)
    assert (project.root / "renders" / "ep01" / "episode.mp4").exists()


def test_studio_without_a_project_reopens_the_latest(browser, tmp_path):
    from memory.project import create_project

    create_project(tmp_path, "Fox Rain")
    port = free_port()
    with FakeOpenAIServer() as llm:
        proc = start_studio(tmp_path, port, llm.url)
        try:
            page = open_studio(browser, port, height=1100, timeout_s=30)
            page.locator("#header").get_by_text("Storyreel · Fox Rain").wait_for()
            page.locator("#card").get_by_text("Waiting for you").wait_for()
        finally:
            proc.terminate()
            proc.wait(20)
