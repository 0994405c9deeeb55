"""The review card in the real studio, driven by Playwright in Debian's Chromium: the motion card
plays its preview, the edit form opens inline under the card and closes on a decision, a failed card
can be written by hand, an edit saved on a card that is no longer shown is refused (two tabs),
whatever card came next (a picture card's candidates are never accepted by it), a revision shows
its difference against canon, and an idle studio neither polls nor burns CPU.

One studio start; the project is advanced in-process to its motion card first (scripted model,
animatic painter, Piper voices), the LLM of the studio is the scripted loopback server.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.fake_openai import FakeOpenAIServer
from tests.test_browser_studio import browser, field, free_port, open_studio, prepared_project, start_studio  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _ledger(project) -> list[dict]:
    return [json.loads(line) for line in project.ledger_path.read_text().splitlines() if line.strip()]


def _fill_character_form(page, name: str) -> None:
    form = page.locator("#edit-form")
    form.get_by_label("name", exact=True).fill(name)
    form.get_by_label("role", exact=True).fill("fox spirit")
    form.get_by_label("personality", exact=True).fill("sly, curious")
    form.get_by_label("look tags (one per line)").fill("white fox ears\nred kimono")


def test_review_card_motion_preview_inline_edit_failed_card_and_stale_edits(browser, tmp_path):  # noqa: F811
    from agent.context import Targets
    from agent.voices import VoiceBackends
    from memory.canon import Canon
    from memory.project import update_project_settings

    targets = Targets(characters=2, locations=1, props=0, episodes=1, scenes=1)
    project = prepared_project(tmp_path, "motion", voices=VoiceBackends(), candidates=1, targets=targets)
    update_project_settings(project, "painter", {"candidates": 1})
    update_project_settings(project, "targets", targets.as_settings())   # the studio plans no more
    port = free_port()
    with FakeOpenAIServer() as llm:
        proc = start_studio(tmp_path, port, llm.url, "fox-rain")
        try:
            page = open_studio(browser, port, height=1300, timeout_s=60)
            card = page.locator("#card")
            card.get_by_text("Motion").first.wait_for()

            # 8.10: readable rows, and the preview plays in the card
            text = card.inner_text()
            assert "None" not in text and "assets/drafts" not in text
            assert "shot 1" in text and "scene-ep1-1" in text and "push-in" in text
            page.wait_for_function(
                "() => { const v = document.querySelector('#motion-preview video'); "
                "return v && v.src && v.readyState >= 1 && isFinite(v.duration) && v.duration > 0.5; }")

            # 8.1: Edit opens inline under the card, with dropdowns; a decision closes it
            page.click("#edit")
            form = page.locator("#edit-form")
            form.wait_for()
            card_box = card.bounding_box()
            form_box = form.bounding_box()
            tabs_box = page.get_by_role("tab", name="Storyboard").bounding_box()
            assert card_box["y"] < form_box["y"] < tabs_box["y"], (card_box, form_box, tabs_box)
            assert form_box["y"] - (card_box["y"] + card_box["height"]) < 700
            assert form.get_by_label("camera move").count() >= 3          # one dropdown per shot row
            assert "[" not in form.locator("textarea").first.input_value()   # no JSON in the form
            page.click("#accept")
            form.wait_for(state="detached")
            page.locator("#chat").get_by_text("Accepted: motion-scene-ep1-1").wait_for()
            card.get_by_text("Waiting for you").wait_for()

            # 8.5: a failed card can be written by hand; 8.1: a stale save is refused (two tabs)
            llm.model.script["CharacterProposal"] = ["not json at all"] * 40
            field(page, "message").fill("Add a new character: a fox spirit")
            page.click("#send")
            card.get_by_text("The model failed").wait_for()
            assert "Edit to write it yourself" in card.inner_text()
            assert page.locator("#edit").is_enabled()
            assert not page.locator("#retry").is_visible()        # Retry only when a step stalled
            page.click("#edit")
            form.wait_for()
            _fill_character_form(page, "Mina")

            other = open_studio(browser, port, height=1300, timeout_s=60)
            other.locator("#card").get_by_text("The model failed").wait_for()
            other.click("#redo")                                   # the card is decided elsewhere
            other.locator("#card").get_by_text("draft 2").wait_for()

            before = _ledger(project)
            form.locator("#save-edit").click()                     # the form of the old card
            page.locator("#status").get_by_text("already decided").wait_for()
            form.wait_for(state="detached")
            canon = Canon(project.canon_path)
            assert canon.find_by_name("character", "Mina") is None
            canon.close()
            assert [e for e in _ledger(project)[len(before):] if e["action"] in ("accept", "edit")] == []

            page.locator("#card").get_by_text("draft 2").wait_for()
            other.click("#edit")                                   # tab 2 edits the card now shown...
            other.locator("#edit-form").wait_for()
            _fill_character_form(other, "Kumo")
            page.click("#edit")                                    # ...and tab 1 writes it first
            form.wait_for()
            _fill_character_form(page, "Mina")
            form.locator("#save-edit").click()
            form.wait_for(state="detached")
            page.locator("#chat").get_by_text("Edited and accepted: character-mina").wait_for()
            card.get_by_text("Character reference sheet").wait_for()
            assert not page.locator("#edit").is_enabled()          # a picture card has no form

            # tab 2's form is now stale while a picture card is pending: never an accept
            before = _ledger(project)
            other.locator("#edit-form #save-edit").click()
            other.locator("#status").get_by_text("already decided").wait_for()
            canon = Canon(project.canon_path)
            assert canon.find_by_name("character", "Kumo") is None
            assert canon.live("ref-character-mina") is None
            mina = canon.find_by_name("character", "Mina")
            assert mina.actor == "human" and mina.data["look_tags"] == ["white fox ears", "red kimono"]
            canon.close()
            assert [e for e in _ledger(project)[len(before):] if e["action"] in ("accept", "edit", "upload")] == []

            # a revision shows its difference against canon on the card (old → new)
            llm.model.script["CharacterProposal"] = []             # the model answers again
            field(page, "message").fill("make Aiko older")
            page.click("#send")
            card.get_by_text("Changes against canon").wait_for()
            row = card.locator("tr", has_text="Age")
            assert "17" in row.inner_text() and "→" in row.inner_text()
            page.screenshot(path=str(tmp_path / "review.png"), full_page=True)

            # 9.10: with nothing running, an open studio neither polls nor burns CPU
            other.close()
            page.get_by_role("tab", name="Episode").click()
            page.locator("#timeline-strip").get_by_text("sc1 s1").wait_for()
            page.wait_for_timeout(2000)
            calls: list[str] = []
            page.on("request", lambda r: calls.append(r.url) if "/gradio_api/" in r.url else None)
            before_cpu, t0 = _cpu_seconds(proc.pid), time.time()
            page.wait_for_timeout(8000)      # (a Playwright wait: request events arrive during it)
            idle_pct = 100 * (_cpu_seconds(proc.pid) - before_cpu) / (time.time() - t0)
            assert calls == [], calls
            assert idle_pct <= 2.0, f"idle studio used {idle_pct:.1f} % CPU"
        finally:
            proc.terminate()
            proc.wait(20)
