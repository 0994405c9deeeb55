"""The studio serves only the open project's assets and renders (issue 9, point 4).

The real studio process (as the browser tests start it) with two projects in the projects folder:
gradio's `/gradio_api/file=` must refuse the open project's canon, checkpoints, ledger and settings,
any other project, paths spelled to climb out of assets, and links out of it; it serves the open
project's assets and renders, and hands out HTML as a download, never inline. With a --host other
than loopback, nothing is served without the token printed at start.
"""
from __future__ import annotations

import http.cookiejar
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from ui.serving import blocked_paths, needs_token, served_paths

ROOT = Path(__file__).resolve().parents[1]
DEAD_LLM = "http://127.0.0.1:9/v1"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _png(path: Path) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 32), (200, 30, 30)).save(path)
    return path


def _two_projects(projects: Path) -> tuple[Path, Path]:
    from memory.project import create_project
    from tests.fakes import ScriptedChatModel
    from ui.session import DirectorSession

    open_one = create_project(projects, "Fox Rain")
    with DirectorSession(open_one, ScriptedChatModel()) as s:     # canon, ledger, checkpoints on disk
        s.start()
        s.send("A shrine maiden hears rain spirits.")
    other = create_project(projects, "Other Show")
    with DirectorSession(other, ScriptedChatModel()) as s:
        s.start()
    root = open_one.root
    _png(root / "assets" / "panels" / "shot-1" / "v1.png")
    _png(root / "renders" / "ep01" / "contact_sheet.png")
    (root / "assets" / "page.html").write_text("<script>alert(1)</script>")
    os.symlink(root / "canon.sqlite", root / "assets" / "canon-link.png")
    _png(other.root / "assets" / "panels" / "secret.png")
    return root, other.root


def _start(projects: Path, port: int, *extra: str, env: dict | None = None) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "--projects-dir", str(projects), "studio", "fox-rain",
         "--port", str(port), "--llm-url", DEAD_LLM, *extra], cwd=ROOT,
        env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 90
    while time.time() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"studio exited early: {proc.stdout.read()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2):
                return proc
        except urllib.error.HTTPError:
            return proc          # answering (401 with a token): up
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("studio did not answer within 90 s")


def _stop(proc: subprocess.Popen) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def _get(port: int, path: str, opener: urllib.request.OpenerDirector | None = None):
    url = f"http://127.0.0.1:{port}/gradio_api/file=" + urllib.parse.quote(path)
    try:
        with (opener or urllib.request.build_opener()).open(url, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), b""


@pytest.mark.slow
def test_only_the_open_projects_assets_and_renders_are_served(tmp_path):
    projects = tmp_path / "projects"
    root, other = _two_projects(projects)
    port = _free_port()
    proc = _start(projects, port)
    try:
        refused = {
            "canon": root / "canon.sqlite",
            "checkpoints": root / "state" / "checkpoints.sqlite",
            "ledger": root / "ledger.jsonl",
            "settings": root / "project.toml",
            "another project's asset": other / "assets" / "panels" / "secret.png",
            "another project's canon": other / "canon.sqlite",
            "climbing out of assets": f"{root}/assets/../canon.sqlite",
            "a link out of assets": root / "assets" / "canon-link.png",
            "outside every project": Path("/etc/passwd"),
        }
        for what, path in refused.items():
            assert Path(str(path).replace("/assets/..", "")).exists(), what
            status, _, body = _get(port, str(path))
            assert status != 200 and b"SQLite" not in body, f"{what} was served ({status})"
        for served in (root / "assets" / "panels" / "shot-1" / "v1.png", root / "renders" / "ep01" / "contact_sheet.png"):
            status, headers, body = _get(port, str(served))
            assert status == 200 and body == served.read_bytes(), served
            assert headers.get("content-type") == "image/png"
        status, headers, body = _get(port, str(root / "assets" / "page.html"))
        assert status == 200 and "attachment" in headers.get("content-disposition", "")
        assert headers.get("content-type") == "application/octet-stream" and b"<script>" in body
    finally:
        out = _stop(proc)
    assert "token" not in out            # loopback: no login


@pytest.mark.slow
def test_a_studio_on_another_host_asks_for_the_printed_token(tmp_path):
    projects = tmp_path / "projects"
    root, _ = _two_projects(projects)
    port = _free_port()
    asset = root / "assets" / "panels" / "shot-1" / "v1.png"
    proc = _start(projects, port, "--host", "0.0.0.0", env={"STORYREEL_STUDIO_TOKEN": "t0ken-for-tests"})
    try:
        status, _, _ = _get(port, str(asset))
        assert status == 401
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        bad = urllib.parse.urlencode({"username": "storyreel", "password": "guess"}).encode()
        with pytest.raises(urllib.error.HTTPError):
            opener.open(f"http://127.0.0.1:{port}/login", data=bad, timeout=10)
        good = urllib.parse.urlencode({"username": "storyreel", "password": "t0ken-for-tests"}).encode()
        with opener.open(f"http://127.0.0.1:{port}/login", data=good, timeout=10) as r:
            assert r.status == 200
        status, _, body = _get(port, str(asset), opener)
        assert status == 200 and body == asset.read_bytes()
    finally:
        out = _stop(proc)
    assert "log in as user 'storyreel' with the token t0ken-for-tests" in out


@pytest.mark.parametrize("host, token", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                         ("[::1]", False), ("0.0.0.0", True), ("192.168.1.20", True),
                                         ("::", True)])
def test_which_hosts_need_a_token(host, token):
    assert needs_token(host) is token


def test_served_and_blocked_paths_of_a_project(tmp_path):
    from memory.project import create_project

    a = create_project(tmp_path, "Fox Rain").root
    b = create_project(tmp_path, "Other Show").root
    assert served_paths(a) == [str(a / "assets"), str(a / "renders"), str(a / "reports")]
    assert served_paths(None) == []
    blocked = blocked_paths(a, tmp_path)
    assert str(a / "canon.sqlite") in blocked and str(a / "state") in blocked and str(b) in blocked
    assert str(a) not in blocked and not any(p.startswith(str(a / "assets")) for p in blocked)
