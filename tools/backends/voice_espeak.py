"""espeak-ng (the Debian binary): instant, robotic, and it speaks about a hundred languages.

The fallback for languages no neural voice covers, and a scratch voice for timing an animatic.
Text goes to the binary on stdin (never through a shell), so quotes, dashes and ``$`` in
dialogue are spoken, not interpreted.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

from memory.errors import BackendError, InputError
from tools.backends.protocols import SpeechRequest
from tools.backends.voice_piper import PIPER_VOICE, prosody_for

#: espeak-ng's default speed in words per minute and its default pitch (0-99 scale).
_BASE_WPM = 175
_BASE_PITCH = 50
#: espeak-ng's pitch scale is not musical; about 4 units per semitone sounds right around 50.
_PITCH_UNITS_PER_SEMITONE = 4.0
_TIMEOUT_S = 60


class EspeakVoiceSynth:
    """`VoiceSynth` over the espeak-ng binary; the voice is the request's language unless the
    profile names an espeak voice (e.g. ``en-us+f3``)."""

    name = "espeak"
    label = "espeak-ng (robotic)"

    def __init__(self, binary: str = "espeak-ng") -> None:
        self._binary_name = binary
        self._voices: frozenset[str] | None = None
        self._lock = threading.Lock()

    def _binary(self) -> str:
        path = shutil.which(self._binary_name)
        if not path:
            raise BackendError(
                f"the {self._binary_name!r} program is not installed; run 'apt-get install espeak-ng' "
                "or cast the character with another voice engine"
            )
        return path

    def known_voices(self) -> frozenset[str]:
        """Language codes, voice names and voice files espeak-ng accepts after ``-v`` (lower case)."""
        with self._lock:
            if self._voices is None:
                proc = subprocess.run([self._binary(), "--voices"], capture_output=True, text=True,
                                      timeout=_TIMEOUT_S, check=False)
                names: set[str] = set()
                for line in proc.stdout.splitlines()[1:]:
                    parts = line.split()
                    if len(parts) >= 5:
                        names.update({parts[1].lower(), parts[3].lower(), parts[4].lower(),
                                      parts[4].rsplit("/", 1)[-1].lower()})
                self._voices = frozenset(names)
            return self._voices

    def _voice_for(self, request: SpeechRequest) -> str:
        profile = request.profile
        own_voice = profile.engine == "espeak" and profile.voice not in ("", PIPER_VOICE)
        wanted = profile.voice if own_voice else request.language
        wanted = (wanted or "en").strip()
        base = wanted.split("+", 1)[0].lower().replace("_", "-")
        if base not in self.known_voices():
            close = sorted(v for v in self.known_voices() if v.split("-")[0] == base.split("-")[0])[:8]
            hint = f" (close: {', '.join(close)})" if close else ""
            raise InputError(
                f"espeak-ng has no voice or language {wanted!r}{hint}; use a code from 'espeak-ng --voices' "
                "such as en, en-us, fr, de, ja"
            )
        variant = "+" + wanted.split("+", 1)[1] if "+" in wanted else ""
        if request.emotion.strip().lower() == "whisper" and not variant:
            variant = "+whisper"
        return base + variant

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        """Speak the line with espeak-ng; writes a 22.05 kHz 16-bit WAV."""
        text = (request.text or "").strip()
        if not text:
            raise InputError("the line to voice is empty; write the dialogue first")
        profile = request.profile
        if not 0.3 <= profile.rate <= 3.0:
            raise InputError(f"voice rate {profile.rate} is out of range; use 0.3-3.0 (1.0 = normal speed)")
        prosody = prosody_for(request.emotion)
        voice = self._voice_for(request)
        wpm = round(_BASE_WPM * profile.rate * prosody.rate)
        pitch = round(_BASE_PITCH + _PITCH_UNITS_PER_SEMITONE * (profile.pitch_semitones + prosody.pitch_semitones))
        amplitude = round(100 * max(0.05, profile.energy) * 10 ** (prosody.gain_db / 20.0))
        out = Path(out)
        tmp = out.with_name(f".{out.name}.espeak.wav")
        command = [self._binary(), "-v", voice, "-s", str(max(80, min(450, wpm))), "-p", str(max(0, min(99, pitch))),
                   "-a", str(max(0, min(200, amplitude))), "-b", "1", "-w", str(tmp), "--stdin"]
        try:
            proc = subprocess.run(command, input=text.encode("utf-8"), capture_output=True, timeout=_TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired as exc:
            raise BackendError(f"espeak-ng took over {_TIMEOUT_S} s for a {len(text)}-character line") from exc
        if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size <= 44:
            tmp.unlink(missing_ok=True)
            reason = proc.stderr.decode("utf-8", "replace").strip() or f"exit code {proc.returncode}"
            raise BackendError(f"espeak-ng failed for voice {voice!r}: {reason}")
        tmp.replace(out)
        return out
