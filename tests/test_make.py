"""`storyreel make` end to end on the embedded defaults (real llama.cpp SmolLM2, animatic panels,
Piper voices, the real render), and its refusals."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from memory.ledger import Ledger
from tools.render.encode import ffprobe_exe

ROOT = Path(__file__).resolve().parents[1]


def make(*args: str, timeout: int = 1200):
    return subprocess.run([sys.executable, "-m", "ui.cli", "make", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=timeout, env={**os.environ, "OPENAI_BASE_URL": ""})


def test_make_needs_auto_accept(tmp_path):
    out = make("A premise.", "--project", str(tmp_path / "p"))
    assert out.returncode == 2 and "--auto-accept" in out.stderr and not (tmp_path / "p").exists()


@pytest.mark.slow
def test_make_end_to_end_on_embedded_defaults(tmp_path):
    project = tmp_path / "fox-rain"
    out = make("A shrine maiden who hears rain spirits must stop a storm that erases memories.",
               "--project", str(project), "--auto-accept", "--shots", "2")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    mp4 = project / "renders" / "ep01" / "episode.mp4"
    probe = json.loads(subprocess.run([ffprobe_exe(), "-v", "error", "-show_entries",
                                       "stream=codec_name,width,height:format=duration", "-of", "json", str(mp4)],
                                      capture_output=True, text=True, check=True).stdout)
    assert {"codec_name": "h264", "width": 1080, "height": 1920} in probe["streams"]
    assert any(s["codec_name"] == "aac" for s in probe["streams"])
    assert float(probe["format"]["duration"]) > 2
    for name in ("episode.srt", "episode.vtt", "timeline.otio", "contact_sheet.png"):
        assert (mp4.parent / name).exists()
    decisions = [e for e in Ledger(project / "ledger.jsonl").entries()
                 if e["action"] in ("accept", "edit", "upload", "reject", "redo", "revert")]
    assert decisions and {e["actor"] for e in decisions} == {"auto"}
    assert {"series", "character", "shot", "panel", "voice", "take", "motion"} <= {e["kind"] for e in decisions}
    assert "actor 'auto'" in out.stdout and "Cutting the episode" in out.stdout
