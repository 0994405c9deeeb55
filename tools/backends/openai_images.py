"""PanelPainter on an OpenAI-compatible image endpoint (OpenAI gpt-image-1 / dall-e-3, LocalAI, ...).

For creators without a local GPU who accept a remote service. The prompt is prose (these models
read sentences, not tag lists). The reply is untrusted: it is decoded, verified with Pillow and
fitted to the panel size before anything is written.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import io
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from memory.errors import BackendError
from tools.backends.diffusers_painter import fit_cover, panel_filename, save_png_atomic
from tools.backends.protocols import CharacterInShot, PanelRequest, PanelResult

_MAX_IMAGE_BYTES = 50 * 1024 * 1024


def _describe_character(character: CharacterInShot) -> str:
    parts = [character.name or character.id]
    if character.look_tags:
        parts.append(f"({', '.join(character.look_tags)})")
    if character.expression and character.expression != "neutral":
        parts.append(f"looking {character.expression}")
    if character.pose:
        parts.append(character.pose)
    if character.speaking:
        parts.append("speaking")
    return " ".join(parts)


def build_prose_prompt(request: PanelRequest) -> str:
    """A sentence-style prompt for the panel: kind, framing, who, where, light, mood, style, note."""
    if request.kind == "character_sheet":
        who = "; ".join(_describe_character(c) for c in request.characters) or "the character"
        sentences = [f"An anime character reference sheet of {who}: full body, standing, plain white background."]
    elif request.kind == "background":
        place = request.location_name or "the location"
        sentences = [f"An anime background painting of {place}, with no people in it."]
    else:
        sentences = [f"A vertical 9:16 anime drama panel, {request.framing} shot from {request.angle}."]
        if request.characters:
            sentences.append("In frame: " + "; ".join(_describe_character(c) for c in request.characters) + ".")
    if request.kind != "background" and request.location_name:
        sentences.append(f"Setting: {request.location_name}.")
    if request.location_tags:
        sentences.append(f"Place details: {', '.join(request.location_tags)}.")
    if request.lighting:
        sentences.append(f"Lighting: {request.lighting}.")
    if request.mood:
        sentences.append(f"Mood: {request.mood}.")
    if request.style_tags:
        sentences.append(f"Art style: {', '.join(request.style_tags)}.")
    if request.palette:
        sentences.append(f"Colour palette: {', '.join(request.palette)}.")
    sentences.append("No text, captions, speech bubbles or watermarks.")
    if request.negative:
        sentences.append(f"Avoid: {request.negative}.")
    if request.note:
        sentences.append(f"Director's note: {request.note}")
    return " ".join(sentences)


class OpenAIImagesPainter:
    """Paints panels through ``client.images.generate`` on any OpenAI-compatible server."""

    name = "openai-images"

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str = "gpt-image-1",
        size: str = "1024x1536",
        timeout: float = 120.0,
        max_retries: int = 2,
        quality: str | None = None,
    ) -> None:
        from openai import OpenAI

        self.base_url = base_url or "https://api.openai.com/v1"
        self.model = model
        self.size = size
        self.quality = quality
        self.timeout = timeout
        # The client wants a key even for local servers that ignore it.
        self._client = OpenAI(
            base_url=self.base_url, api_key=api_key or "not-needed", timeout=timeout, max_retries=max_retries
        )

    def _request_kwargs(self, prompt: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"model": self.model, "prompt": prompt, "size": self.size, "n": 1}
        # gpt-image-* always answer in base64 and reject response_format; dall-e-* default to URLs.
        if not self.model.startswith("gpt-image"):
            kwargs["response_format"] = "b64_json"
        if self.quality:
            kwargs["quality"] = self.quality
        return kwargs

    def _generate(self, prompt: str) -> Any:
        import openai

        try:
            return self._client.images.generate(**self._request_kwargs(prompt))
        except openai.APITimeoutError as exc:
            raise BackendError(
                f"image server at {self.base_url} did not answer within {self.timeout:g} s; check that it is "
                "running and not overloaded, or raise [painter] timeout"
            ) from exc
        except openai.APIConnectionError as exc:
            raise BackendError(
                f"image server at {self.base_url} cannot be reached ({exc}); start it or set [painter] "
                "base_url in project.toml"
            ) from exc
        except openai.APIStatusError as exc:
            raise BackendError(
                f"image server at {self.base_url} refused the request (HTTP {exc.status_code}): "
                f"{_server_message(exc)}"
                + ("; check [painter] api_key" if exc.status_code in (401, 403) else "")
            ) from exc

    def _fetch(self, url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=self.timeout) as reply:
                data = reply.read(_MAX_IMAGE_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise BackendError(f"could not download the image {url} from {self.base_url}: {exc}") from exc
        if len(data) > _MAX_IMAGE_BYTES:
            raise BackendError(f"image {url} from {self.base_url} is larger than {_MAX_IMAGE_BYTES} bytes")
        return data

    def _image_bytes(self, response: Any) -> bytes:
        data = getattr(response, "data", None) or []
        if not data:
            raise BackendError(f"image server at {self.base_url} returned no image for model {self.model}")
        item = data[0]
        if getattr(item, "b64_json", None):
            try:
                return base64.b64decode(item.b64_json, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BackendError(
                    f"image server at {self.base_url} returned b64_json that is not valid base64: {exc}"
                ) from exc
        if getattr(item, "url", None):
            return self._fetch(item.url)
        raise BackendError(f"image server at {self.base_url} returned neither b64_json nor url")

    def paint(self, request: PanelRequest, out_dir: Path) -> PanelResult:
        """Ask the server for one image, verify it, fit it to the panel size and write a PNG."""
        from PIL import Image, UnidentifiedImageError

        prompt = build_prose_prompt(request)
        raw = self._image_bytes(self._generate(prompt))
        try:
            with Image.open(io.BytesIO(raw)) as probe:
                probe.verify()
            with Image.open(io.BytesIO(raw)) as reopened:
                image = reopened.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise BackendError(
                f"image server at {self.base_url} returned {len(raw)} bytes that are not an image ({exc})"
            ) from exc
        fitted = fit_cover(image, request.width, request.height)
        model = f"openai-images:{self.model}@{self.base_url}"
        fingerprint = "\n".join((model, self.size, prompt, hashlib.sha256(raw).hexdigest()))
        path = save_png_atomic(fitted, Path(out_dir) / panel_filename(request, fingerprint))
        return PanelResult(image=path, seed=request.seed, model=model)


def _server_message(exc: Any) -> str:
    """The server's own error text (OpenAI error JSON), falling back to the client's message."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and error.get("message"):
            code = error.get("code") or error.get("type")
            return f"{error['message']}" + (f" [{code}]" if code else "")
        if isinstance(error, str):
            return error
    return str(getattr(exc, "message", exc))
