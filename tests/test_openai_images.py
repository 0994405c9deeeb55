"""OpenAIImagesPainter against a real local HTTP server speaking the images API."""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from memory.errors import BackendError
from tools.backends.openai_images import OpenAIImagesPainter, build_prose_prompt
from tools.backends.protocols import CharacterInShot, PanelPainter, PanelRequest


def _png(size=(64, 96), colour=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


class ImagesServer:
    """A thread serving POST /v1/images/generations with a scripted reply; records requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.reply: tuple[int, dict] = (200, {})
        self.files: dict[str, bytes] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                server.requests.append({"path": self.path, "json": json.loads(self.rfile.read(length))})
                status, body = server.reply
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self):
                data = server.files.get(self.path)
                self.send_response(200 if data else 404)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(data or b"")))
                self.end_headers()
                self.wfile.write(data or b"")

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    srv = ImagesServer()
    yield srv
    srv.close()


REQUEST = PanelRequest(
    shot_id="ep1/s3", seed=11, width=90, height=160, framing="close-up", angle="low angle",
    location_name="Rooftop", lighting="sunset", mood="tense", style_tags=("cel shading",),
    characters=(CharacterInShot(id="aiko", name="Aiko", look_tags=("long black hair",), expression="angry"),),
    note="she clenches her fist",
)


def test_prose_prompt_reads_as_sentences():
    prompt = build_prose_prompt(REQUEST)
    assert prompt.startswith("A vertical 9:16 anime drama panel, close-up shot from low angle.")
    assert "Aiko (long black hair) looking angry" in prompt and "Setting: Rooftop." in prompt
    assert prompt.endswith("Director's note: she clenches her fist")
    sheet = build_prose_prompt(PanelRequest(shot_id="c", kind="character_sheet", characters=REQUEST.characters))
    assert sheet.startswith("An anime character reference sheet of Aiko")


def test_b64_reply_is_fitted_and_saved(server, tmp_path):
    server.reply = (200, {"created": int(time.time()), "data": [{"b64_json": base64.b64encode(_png()).decode()}]})
    painter = OpenAIImagesPainter(base_url=server.base_url, api_key="k", model="gpt-image-1", max_retries=0)
    assert isinstance(painter, PanelPainter)
    result = painter.paint(REQUEST, tmp_path)
    with Image.open(result.image) as img:
        assert img.format == "PNG" and img.size == (90, 160)
        assert img.getpixel((45, 80))[0] > 150
    assert result.image.parent == tmp_path and result.image.name.startswith("ep1_s3-11-")
    assert result.model == f"openai-images:gpt-image-1@{server.base_url}" and result.seed == 11
    sent = server.requests[-1]
    assert sent["path"] == "/v1/images/generations"
    assert sent["json"]["model"] == "gpt-image-1" and sent["json"]["size"] == "1024x1536"
    assert "response_format" not in sent["json"]          # gpt-image-1 rejects it
    assert "she clenches her fist" in sent["json"]["prompt"]
    assert [p.name for p in tmp_path.iterdir()] == [result.image.name]


def test_url_reply_is_downloaded_for_dalle(server, tmp_path):
    server.files["/files/panel.png"] = _png(colour=(20, 200, 20))
    server.reply = (200, {"created": 1, "data": [{"url": f"http://127.0.0.1:{server.port}/files/panel.png"}]})
    painter = OpenAIImagesPainter(base_url=server.base_url, model="dall-e-3", size="1024x1792", max_retries=0)
    result = painter.paint(REQUEST, tmp_path)
    assert server.requests[-1]["json"]["response_format"] == "b64_json"
    with Image.open(result.image) as img:
        assert img.size == (90, 160) and img.getpixel((45, 80))[1] > 150


def test_error_reply_carries_server_message(server, tmp_path):
    server.reply = (400, {"error": {
        "message": "Your request was rejected as a result of our safety system.",
        "type": "invalid_request_error", "code": "content_policy_violation", "param": None,
    }})
    painter = OpenAIImagesPainter(base_url=server.base_url, max_retries=0)
    with pytest.raises(BackendError, match=r"HTTP 400\): Your request was rejected .*content_policy_violation"):
        painter.paint(REQUEST, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("payload", [
    "this is not base64!!",
    base64.b64encode(b"GIF89a but really just text").decode(),
    base64.b64encode(_png()[:60]).decode(),                 # a truncated PNG
], ids=["not-base64", "not-an-image", "truncated-png"])
def test_corrupt_payload_is_a_backend_error(payload, server, tmp_path):
    server.reply = (200, {"created": 1, "data": [{"b64_json": payload}]})
    painter = OpenAIImagesPainter(base_url=server.base_url, max_retries=0)
    with pytest.raises(BackendError, match=server.base_url.replace("/", ".")):
        painter.paint(REQUEST, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_empty_reply_is_a_backend_error(server, tmp_path):
    server.reply = (200, {"created": 1, "data": []})
    with pytest.raises(BackendError, match="returned no image"):
        OpenAIImagesPainter(base_url=server.base_url, max_retries=0).paint(REQUEST, tmp_path)


def test_closed_port_names_the_url(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    painter = OpenAIImagesPainter(base_url=url, max_retries=0, timeout=5)
    with pytest.raises(BackendError, match=f"image server at {url} cannot be reached.*base_url"):
        painter.paint(REQUEST, Path(tmp_path))
