"""OpenAISpeechSynth against a real HTTP server on 127.0.0.1 that speaks POST /v1/audio/speech."""
from __future__ import annotations

import io
import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from memory.errors import BackendError, InputError
from tools.audio import take_info
from tools.backends.protocols import SpeechRequest, VoiceProfile, VoiceSynth
from tools.backends.voice_openai import OpenAISpeechSynth


def _wav_bytes(seconds: float = 0.5, rate: int = 24_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(buffer, 0.4 * np.sin(2 * np.pi * 200 * t), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


class _SpeechServer(ThreadingHTTPServer):
    mode = "wav"          # wav | 400 | 500 | html
    requests: list[dict]


class _Handler(BaseHTTPRequestHandler):
    server: _SpeechServer

    def log_message(self, *args: object) -> None:  # keep pytest output clean
        pass

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        if self.path != "/v1/audio/speech":
            self._reply(404, b'{"error": {"message": "no such route"}}', "application/json")
        elif self.server.mode == "wav":
            self._reply(200, _wav_bytes(), "audio/wav")
        elif self.server.mode in ("400", "500"):
            message = {"400": f"Invalid voice '{body.get('voice')}'", "500": "CUDA out of memory"}[self.server.mode]
            error = {"error": {"message": message, "type": "invalid_request_error", "param": "voice", "code": None}}
            self._reply(int(self.server.mode), json.dumps(error).encode(), "application/json")
        else:
            self._reply(200, b"<html><body>Welcome to nginx!</body></html>", "text/html")


@pytest.fixture()
def server() -> Iterator[_SpeechServer]:
    httpd = _SpeechServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _synth(server: _SpeechServer, **kwargs: object) -> OpenAISpeechSynth:
    return OpenAISpeechSynth(base_url=f"http://127.0.0.1:{server.server_address[1]}/v1", api_key="sk-test",
                             timeout=5.0, max_retries=0, **kwargs)


def test_speech_reply_is_written_and_request_carries_voice_speed_and_acting(server: _SpeechServer,
                                                                            tmp_path: Path) -> None:
    synth = _synth(server)
    assert isinstance(synth, VoiceSynth)
    profile = VoiceProfile(engine="openai", voice="nova", rate=1.2, instructions="A weary detective.")

    out = synth.synthesize(SpeechRequest(text="Not again.", profile=profile, emotion="sad"), tmp_path / "l.wav")

    assert take_info(out).duration_s == pytest.approx(0.5)
    sent = server.requests[-1]
    assert sent["path"] == "/v1/audio/speech" and sent["auth"] == "Bearer sk-test"
    assert sent["body"]["model"] == "gpt-4o-mini-tts"
    assert sent["body"]["voice"] == "nova"
    assert sent["body"]["input"] == "Not again."
    assert sent["body"]["response_format"] == "wav"
    assert sent["body"]["speed"] == pytest.approx(1.2)
    assert sent["body"]["instructions"].startswith("A weary detective.")
    assert "sadness" in sent["body"]["instructions"]


def test_tts1_models_get_no_instructions_and_other_engines_get_the_default_voice(server: _SpeechServer,
                                                                                   tmp_path: Path) -> None:
    synth = _synth(server, model="tts-1")
    synth.synthesize(SpeechRequest(text="Hi.", profile=VoiceProfile(instructions="cheerful"), emotion="happy"),
                     tmp_path / "l.wav")
    body = server.requests[-1]["body"]
    assert "instructions" not in body and "speed" not in body
    assert body["voice"] == "alloy"
    synth.synthesize(SpeechRequest(text="Hi.", profile=VoiceProfile(engine="openai")), tmp_path / "l.wav")
    assert server.requests[-1]["body"]["voice"] == "alloy"  # Piper's voice name is never sent


@pytest.mark.parametrize("mode, status, words", [
    ("400", 400, "Invalid voice 'nova'"),
    ("500", 500, "CUDA out of memory"),
])
def test_http_errors_name_the_server_status_and_message(server: _SpeechServer, tmp_path: Path, mode: str,
                                                        status: int, words: str) -> None:
    server.mode = mode
    synth = _synth(server)
    with pytest.raises(BackendError) as caught:
        synth.synthesize(SpeechRequest(text="Hi.", profile=VoiceProfile(engine="openai", voice="nova")),
                         tmp_path / "l.wav")
    message = str(caught.value)
    assert f"127.0.0.1:{server.server_address[1]}/v1" in message
    assert f"HTTP {status}" in message and words in message
    assert not (tmp_path / "l.wav").exists()


def test_a_reply_that_is_not_audio_is_refused(server: _SpeechServer, tmp_path: Path) -> None:
    server.mode = "html"
    with pytest.raises(BackendError, match=r"did not send WAV audio \(content-type text/html.*nginx"):
        _synth(server).synthesize(SpeechRequest(text="Hi."), tmp_path / "l.wav")
    assert not (tmp_path / "l.wav").exists()


def test_connection_refused_names_the_url_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    synth = OpenAISpeechSynth(base_url=f"http://127.0.0.1:{port}/v1", timeout=2.0, max_retries=0)
    with pytest.raises(BackendError, match=rf"127\.0\.0\.1:{port}/v1 cannot be reached.*start it"):
        synth.synthesize(SpeechRequest(text="Hi."), tmp_path / "l.wav")


def test_timeout_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        synth = OpenAISpeechSynth(base_url=f"http://127.0.0.1:{port}/v1", timeout=0.5, max_retries=0)
        with pytest.raises(BackendError, match=rf"127\.0\.0\.1:{port}/v1 timed out"):
            synth.synthesize(SpeechRequest(text="Hi."), tmp_path / "l.wav")


def test_bad_input_is_refused_before_any_request(server: _SpeechServer, tmp_path: Path) -> None:
    synth = _synth(server)
    with pytest.raises(InputError, match="empty"):
        synth.synthesize(SpeechRequest(text="  "), tmp_path / "l.wav")
    with pytest.raises(InputError, match="rate 9.0"):
        synth.synthesize(SpeechRequest(text="Hi.", profile=VoiceProfile(rate=9.0)), tmp_path / "l.wav")
    assert server.requests == []
