"""Voicing throughput: the dialogue of a 60 s episode on the offline English default, 1 core.

Usage: .venv/bin/python bench/voices.py [--lines 20]

Three characters cast by `propose_distinct_profiles` speak about 20 lines of mini-drama dialogue
with emotions, through one `PiperVoiceSynth` (model loaded once, counted in the wall time, as is
librosa's first-call warm-up), each take shaped (pitch shift, emotion), converted to 48 kHz and
measured (peak, integrated loudness). Pinned to CPU 0 with one onnxruntime thread.

Prints progress lines, then LAST one JSON line:
  wall_per_speech_s           total wall seconds / seconds of speech produced (target <= 0.15)
  voice_loads                 Piper model loads in the session (must be 1)
  cpu_per_speech_s            the same with this process's CPU time (robust to a busy machine)
  total_speech_s, wall_s, load_s, lines
  baseline_wall_per_speech_s  bare Piper synthesis of the same lines (no shaping, no 48 kHz
                              conversion, model already loaded), measured in the same run
  overhead_ratio              wall_per_speech_s / baseline_wall_per_speech_s
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.backends.protocols import SpeechRequest
from tools.casting import propose_distinct_profiles

CHARACTERS = [
    {"name": "Haru", "gender": "male", "personality": "a stubborn young swordsman", "voice": "deep, gruff"},
    {"name": "Mei", "gender": "female", "personality": "a bright, fast-talking courier", "voice": "high"},
    {"name": "Master Ko", "gender": "male", "personality": "an old innkeeper, calm"},
]
# (speaker index, emotion, line): a typical mini-drama cold open and confrontation.
SCRIPT = [
    (0, "neutral", "The last train left an hour ago. We're stuck here tonight."),
    (1, "happy", "Then we finally get to see the famous lantern festival!"),
    (2, "neutral", "Rooms are upstairs. Mind the third step, it squeaks."),
    (0, "angry", "We didn't come for lanterns. Someone is following us."),
    (1, "scared", "Wait, the man in the grey coat? I saw him at the station too."),
    (2, "whisper", "Keep your voices down. The walls here are thin."),
    (0, "neutral", "How long has he been watching this inn?"),
    (2, "sad", "Since the night my daughter disappeared. Three winters now."),
    (1, "sad", "I'm so sorry. Nobody ever told us."),
    (0, "angry", "Then he answers to me tonight."),
    (2, "shout", "Haru, no! You don't know what he is!"),
    (1, "scared", "Haru, please, come back inside!"),
    (0, "shout", "Show yourself! I know you're out there!"),
    (2, "whisper", "He's gone. For now."),
    (1, "neutral", "He left something on the step. A red lantern."),
    (0, "neutral", "It's warm. Someone lit it a moment ago."),
    (2, "sad", "That is my daughter's lantern. I would know it anywhere."),
    (1, "happy", "Then she's alive. She has to be!"),
    (0, "neutral", "At dawn, we follow the river. All three of us."),
    (2, "neutral", "Get some sleep. Tomorrow will be a long day."),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=len(SCRIPT))
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    script = (SCRIPT * (args.lines // len(SCRIPT) + 1))[: args.lines]
    profiles = propose_distinct_profiles(CHARACTERS, [])
    for character, profile in zip(CHARACTERS, profiles):
        print(f"cast {character['name']}: pitch {profile.pitch_semitones:+.1f} st, rate {profile.rate:.2f}, "
              f"noise {profile.noise:.2f}", flush=True)

    start = time.perf_counter()
    cpu_start = time.process_time()
    from tools.audio import to_project_wav
    from tools.backends.voice_piper import PiperVoiceSynth

    synth = PiperVoiceSynth(threads=1)
    total_speech = 0.0
    with tempfile.TemporaryDirectory(prefix="bench-voices-") as tmp:
        folder = Path(tmp)
        for index, (speaker, emotion, text) in enumerate(script):
            raw = synth.synthesize(SpeechRequest(text=text, profile=profiles[speaker], emotion=emotion, seed=index),
                                   folder / f"raw{index:02d}.wav")
            info = to_project_wav(raw, folder / f"line{index:02d}.wav")
            total_speech += info.duration_s
            print(f"line {index + 1:2d}/{len(script)} {CHARACTERS[speaker]['name']:<9} {emotion:<7} "
                  f"{info.duration_s:5.2f} s {info.loudness_lufs:6.1f} LUFS  elapsed {time.perf_counter() - start:6.2f} s",
                  flush=True)
        wall = time.perf_counter() - start
        cpu = time.process_time() - cpu_start
        assert synth.load_count == 1, f"Piper loaded {synth.load_count} times"

        # Baseline, same run: the bare engine on the same lines (loaded model, no shaping/conversion).
        from piper import SynthesisConfig

        voice = synth.load()  # the already-loaded voice; no second load
        base_start = time.perf_counter()
        base_speech = 0.0
        for _, _, text in script:
            chunks = list(voice.synthesize(text, syn_config=SynthesisConfig()))
            base_speech += sum(len(c.audio_float_array) for c in chunks) / voice.config.sample_rate
        base_wall = time.perf_counter() - base_start
        assert synth.load_count == 1

    result = {
        "wall_per_speech_s": round(wall / total_speech, 4),
        "voice_loads": synth.load_count,
        "cpu_per_speech_s": round(cpu / total_speech, 4),
        "total_speech_s": round(total_speech, 2),
        "wall_s": round(wall, 2),
        "load_s": round(synth.load_seconds, 2),
        "lines": len(script),
        "baseline_wall_per_speech_s": round(base_wall / base_speech, 4),
        "overhead_ratio": round((wall / total_speech) / (base_wall / base_speech), 2),
    }
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
