"""Voicing throughput: the dialogue of a 60 s episode on the offline English default, 1 core.

Usage: .venv/bin/python bench/voices.py [--lines 20]

Three characters cast on Piper joe by `propose_distinct_profiles` speak about 20 lines of mini-drama dialogue
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
  distinct_base_voices        different base voices (engine, voice, blend) casting gives a cast of 6
                              mixed descriptions (target >= 5)
  cast_pitch_spread           max / min median F0 of that cast's takes, one line each (target >= 1.6)
  kokoro_rtf                  Kokoro-82M real-time factor on one onnxruntime thread: the median over the
                              20 script lines (voices in turn) of wall seconds of `KokoroVoiceSynth.speak`
                              (phonemes, model, durations; no WAV writing) / seconds of speech it returned,
                              with the model loaded and a warm-up line run first, neither counted
                              (target <= 0.6). kokoro_cpu_rtf: the same with this process's CPU time,
                              which leaves out waiting for a core but not the slow-down from sharing
                              caches with other work (on 2 busy cores it still rises ~15 %;
                              load_average says how busy the machine was). kokoro_model_rtf /
                              kokoro_model_cpu_rtf: the model call alone (no phonemizer, no durations
                              math), medians likewise. kokoro_load_s: the load (the edited model cached)
  lipsync_frame_error         worst offset, in 24 fps frames, between a phoneme segment of the
                              synthesiser's track and the frames the render shows its mouth shape on,
                              over "Mama, maybe." on Piper and Kokoro (target <= 1)
  take_wer_median             Whisper-base word error rate of the 20 lines on each English engine (Piper
                              joe; Kokoro, its five voices in turn), median (target <= 0.1); also per
                              engine and per voice (take_wer_by_voice). Absent without faster-whisper.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.backends.protocols import SpeechRequest, VoiceProfile
from tools.casting import PIPER_JOE, propose_distinct_profiles

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


CAST_OF_SIX = [
    {"name": "Haru", "gender": "male", "personality": "a stubborn young swordsman", "voice": "deep, gruff"},
    {"name": "Mei", "gender": "female", "personality": "a bright, fast-talking courier", "voice": "high"},
    {"name": "Master Ko", "gender": "male", "personality": "an old innkeeper, calm"},
    {"name": "Yui", "personality": "a shy little girl"},
    {"name": "Lady Ume", "personality": "an elderly noblewoman; she is stern"},
    {"name": "Sora", "personality": "a cheeky boy who talks fast"},
]
CAST_LINE = "The lanterns are lit, and the river is rising. We leave before dawn."
KOKORO_VOICE_ROTATION = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")


def lipsync_frame_error(track: list, fps: int = 24, start: float = 0.3) -> float:
    """Worst offset (frames) between a track segment and the frames the render shows its shape on."""
    from tools.render import ShotSpec, TakeCue
    from tools.render.motion import mouth_shapes

    with tempfile.TemporaryDirectory(prefix="bench-lipsync-") as tmp:
        from tools.lipsync import write_track

        wav = Path(tmp) / "t.wav"
        write_track(wav, track)
        shot = ShotSpec("s", Path(tmp) / "panel.png", start + float(track[-1][1]) + 0.3, speakers=("a",),
                        takes=(TakeCue(wav, start, visemes=wav.with_name("t.visemes.json"), speaker="a"),))
        frames = mouth_shapes(shot, fps)["a"]
    worst = 0.0
    for a, b, shape in track:
        if shape == "rest" or ((b - a) * fps < 1.0 and shape not in ("mbp", "fv")):
            continue                      # shorter than a frame: only closures must show
        first_ideal = round((a + start) * fps)
        last_ideal = max(first_ideal + 1, round((b + start) * fps))
        runs, k = [], 0                   # the frames showing this shape, as contiguous runs
        while k < len(frames):
            if frames[k] == shape:
                j = k
                while j < len(frames) and frames[j] == shape:
                    j += 1
                runs.append((k, j))
                k = j
            else:
                k += 1
        near = [(a0, b0) for a0, b0 in runs if a0 <= last_ideal and b0 >= first_ideal]
        if not near:
            worst = max(worst, float(last_ideal - first_ideal))
            continue
        a0, b0 = max(near, key=lambda r: min(r[1], last_ideal) - max(r[0], first_ideal))
        worst = max(worst, abs(a0 - first_ideal), abs(b0 - last_ideal))
    return round(worst, 2)


def cast_figures() -> dict:
    """Casting and lip-sync figures (issue 12), measured in the same run."""
    from tools.audio import median_f0_hz
    from tools.backends.voice_kokoro import KokoroVoiceSynth
    from tools.backends.voice_piper import PiperVoiceSynth
    from tools.casting import voice_synth_for
    from tools.lipsync import track_for

    profiles = propose_distinct_profiles(CAST_OF_SIX, [])
    bases = {(p.engine, p.voice, p.blend) for p in profiles}
    cache: dict = {}
    f0 = []
    with tempfile.TemporaryDirectory(prefix="bench-cast-") as tmp:
        for index, (character, profile) in enumerate(zip(CAST_OF_SIX, profiles)):
            path = voice_synth_for(profile, cache=cache).synthesize(
                SpeechRequest(text=CAST_LINE, profile=profile), Path(tmp) / f"cast{index}.wav")
            f0.append(median_f0_hz(path))
            print(f"cast {character['name']:<9} {profile.engine}:{profile.voice}"
                  f"{'+' + profile.blend if profile.blend else ''} pitch {profile.pitch_semitones:+.1f} st "
                  f"-> {f0[-1]:.0f} Hz", flush=True)
        kokoro = KokoroVoiceSynth(threads=1)
        kokoro.speak("Warm up.", "en", voice="jf_alpha")
        from tools.audio import write_wav

        rtf: dict[str, list[float]] = {"wall": [], "cpu": [], "model": [], "model_cpu": []}
        takes: list[tuple[str, str, Path]] = []     # (engine, voice, wav) for the ear check
        for index, (_, _, line) in enumerate(SCRIPT):
            voice = KOKORO_VOICE_ROTATION[index % len(KOKORO_VOICE_ROTATION)]
            kokoro.model_seconds = kokoro.model_cpu_seconds = 0.0
            start, cpu_start = time.perf_counter(), time.process_time()
            audio, _ = kokoro.speak(line, "en", voice=voice)
            wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
            speech = len(audio) / 24_000
            for key, seconds in (("wall", wall), ("cpu", cpu), ("model", kokoro.model_seconds),
                                 ("model_cpu", kokoro.model_cpu_seconds)):
                rtf[key].append(seconds / speech)
            print(f"kokoro {voice:<13} {speech:5.2f} s speech, rtf {rtf['wall'][-1]:.3f} (cpu {rtf['cpu'][-1]:.3f})",
                  flush=True)
            takes.append(("kokoro", voice, write_wav(Path(tmp) / f"k{index:02d}.wav", audio, 24_000)))
        median = {key: round(statistics.median(values), 3) for key, values in rtf.items()}
        piper = PiperVoiceSynth(threads=1)
        for index, (_, _, line) in enumerate(SCRIPT):
            takes.append(("piper", "joe", piper.synthesize(SpeechRequest(text=line), Path(tmp) / f"p{index:02d}.wav")))
        wer = take_wers(takes)
        errors = []
        for name, synth, profile in (("piper", piper, VoiceProfile(noise=0.0)),
                                     ("kokoro", kokoro, VoiceProfile(engine="kokoro", voice="jf_nezumi"))):
            path = synth.synthesize(SpeechRequest(text="Mama, maybe.", profile=profile), Path(tmp) / f"{name}.wav")
            track = track_for(path)
            errors.append(lipsync_frame_error(track) if track else 99.0)
            print(f"lipsync {name}: {sum(1 for _, _, s in track or [] if s == 'mbp')} closures, "
                  f"frame error {errors[-1]}", flush=True)
    return {"distinct_base_voices": len(bases), "cast_pitch_spread": round(max(f0) / min(f0), 2),
            "kokoro_rtf": median["wall"], "kokoro_cpu_rtf": median["cpu"], "kokoro_model_rtf": median["model"],
            "kokoro_model_cpu_rtf": median["model_cpu"], "kokoro_load_s": round(kokoro.load_seconds, 2),
            "lipsync_frame_error": max(errors), "load_average": round(os.getloadavg()[0], 2), **wer}


def take_wers(takes: list[tuple[str, str, Path]]) -> dict:
    """Whisper-base on every take against its line: medians overall, per engine and per voice."""
    from tools.take_check import WhisperTranscriber, check_take

    if not WhisperTranscriber.is_available():
        print("take check: faster-whisper is not installed (bash scripts/setup.sh --test); no WER", flush=True)
        return {}
    whisper = WhisperTranscriber(threads=1)
    by: dict[str, list[float]] = {}
    for index, (engine, voice, wav) in enumerate(takes):
        line = SCRIPT[index % len(SCRIPT)][2]
        result = check_take(whisper, wav, line)
        for key in ("all", engine, f"{engine}:{voice}"):
            by.setdefault(key, []).append(result["wer"])
        if result["flagged"]:
            print(f"heard wrong ({engine}:{voice}, WER {result['wer']}): {line!r} -> {result['heard']!r}", flush=True)
    median = {k: round(statistics.median(v), 3) for k, v in by.items()}
    return {"take_wer_median": median.pop("all"), "take_wer_median_piper": median.pop("piper"),
            "take_wer_median_kokoro": median.pop("kokoro"), "take_wer_by_voice": median}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=len(SCRIPT))
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    script = (SCRIPT * (args.lines // len(SCRIPT) + 1))[: args.lines]
    profiles = propose_distinct_profiles(CHARACTERS, [], voices=(PIPER_JOE,))   # Piper's throughput
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
    result.update(cast_figures())
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
