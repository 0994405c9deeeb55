"""Voices from an OpenAI-compatible speech endpoint (``POST {base_url}/audio/speech``).

For real casting: OpenAI's gpt-4o-mini-tts (which takes acting ``instructions``), or any local
server that speaks the same API (Kokoro-FastAPI, openedai-speech, LocalAI...). The client is built
once in the constructor; every failure becomes a `BackendError` naming the server and the fix.
"""
from __future__ import annotations

import os
from pathlib import Path

from memory.errors import BackendError, InputError
from tools.backends.protocols import SpeechRequest
from tools.backends.voice_piper import PIPER_VOICE

DEFAULT_MODEL = "gpt-4o-mini-tts"
DEFAULT_VOICE = "alloy"
OPENAI_BASE_URL = "https://api.openai.com/v1"
#: Emotion -> acting note appended to the character's instructions (models that take instructions).
EMOTION_HINTS: dict[str, str] = {
    "angry": "Speak with barely controlled anger: clipped, forceful, a little faster.",
    "whisper": "Whisper the line, breathy and close to the microphone.",
    "shout": "Shout the line, loud and strained, as if across a street.",
    "sad": "Speak softly and slowly, voice heavy with sadness, close to tears.",
    "happy": "Speak brightly and warmly, smiling, a touch faster.",
    "scared": "Speak fast and shaky, breath short, terrified.",
    "surprised": "Speak with sudden surprise, pitch rising.",
    "excited": "Speak with excited energy, quick and bright.",
    "tender": "Speak gently and tenderly, softly.",
}
_SPEED_RANGE = (0.25, 4.0)


def supports_instructions(model: str) -> bool:
    """OpenAI's tts-1 family rejects ``instructions``; the gpt-4o *-tts models take them."""
    return not model.lower().startswith("tts-1")


class OpenAISpeechSynth:
    """`VoiceSynth` over an OpenAI-compatible ``audio.speech`` endpoint; asks for WAV replies."""

    name = "openai"

    def __init__(self, base_url: str | None = None, api_key: str | None = None, model: str = DEFAULT_MODEL,
                 timeout: float = 60.0, *, max_retries: int = 2, default_voice: str = DEFAULT_VOICE) -> None:
        import openai

        self.base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        self.model = model or DEFAULT_MODEL
        self.default_voice = default_voice
        self.label = f"{self.model} at {self.base_url}"
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            if base_url is None:
                raise BackendError(
                    "OpenAI speech needs an API key; set OPENAI_API_KEY or api_key in the voice settings, "
                    "or point base_url at a local OpenAI-compatible speech server"
                )
            key = "not-needed"  # local servers ignore the key, the client insists on one
        self._client = openai.OpenAI(base_url=self.base_url, api_key=key, timeout=timeout, max_retries=max_retries)

    def _instructions(self, request: SpeechRequest) -> str | None:
        if not supports_instructions(self.model):
            return None
        parts = [request.profile.instructions.strip()]
        hint = EMOTION_HINTS.get(request.emotion.strip().lower())
        if hint:
            parts.append(hint)
        text = " ".join(p for p in parts if p)
        return text or None

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        """Ask the server for the line as WAV and write it to ``out``."""
        import openai

        from memory.project import atomic_write_bytes

        text = (request.text or "").strip()
        if not text:
            raise InputError("the line to voice is empty; write the dialogue first")
        profile = request.profile
        speed = profile.rate
        if not _SPEED_RANGE[0] <= speed <= _SPEED_RANGE[1]:
            raise InputError(f"voice rate {speed} is outside the speech API's range {_SPEED_RANGE[0]}-{_SPEED_RANGE[1]}")
        # A profile cast for another engine (or left at Piper's voice name) gets the server's default voice.
        own_voice = profile.engine == "openai" and profile.voice not in ("", PIPER_VOICE)
        voice = profile.voice if own_voice else self.default_voice
        kwargs: dict = {"model": self.model, "voice": voice, "input": text, "response_format": "wav"}
        if abs(speed - 1.0) > 1e-6:
            kwargs["speed"] = speed
        instructions = self._instructions(request)
        if instructions:
            kwargs["instructions"] = instructions
        where = f"speech server at {self.base_url}"
        try:
            reply = self._client.audio.speech.create(**kwargs)
            data = reply.content
            content_type = reply.response.headers.get("content-type", "")
        except openai.APITimeoutError as exc:
            raise BackendError(f"{where} timed out; check that it is running and not overloaded, "
                               "or raise the voice timeout") from exc
        except openai.APIConnectionError as exc:
            raise BackendError(f"{where} cannot be reached ({exc.__cause__ or exc}); start it or fix the voice "
                               "base_url in project settings") from exc
        except openai.APIStatusError as exc:
            body = exc.body if isinstance(exc.body, dict) else {}
            message = body.get("message") or str(exc.message)
            fix = {401: "check the API key", 403: "check the API key's permissions",
                   404: f"check the model name {self.model!r} and the base_url",
                   429: "wait and retry, or raise the account's limits"}.get(exc.status_code)
            if fix is None:
                fix = "check the voice name and text" if exc.status_code < 500 else "the server failed; retry or check its log"
            raise BackendError(f"{where} answered HTTP {exc.status_code}: {message}; {fix}") from exc
        if not (len(data) > 44 and data[:4] == b"RIFF" and data[8:12] == b"WAVE"):
            excerpt = data[:80].decode("utf-8", "replace")
            raise BackendError(
                f"{where} did not send WAV audio (content-type {content_type or 'none'}, starts with {excerpt!r}); "
                "check that base_url points at an OpenAI-compatible speech endpoint"
            )
        atomic_write_bytes(Path(out), data)
        return Path(out)
