"""Named crash points for the fault tests: `STORYREEL_CRASH_AT=NAME` kills the process there.

The fault tests (tests/test_faults.py, bench/faults.py) run a real `storyreel chat` with this
variable set, so the process dies exactly between two writes, as a `kill -9` or a power cut would,
and then check that reopening the project loses and duplicates nothing. Unset, a crash point is one
environment lookup and does nothing.

`STORYREEL_CRASH_AT` may name several points separated by commas; `NAME@N` dies at the N-th time
the point is reached (1 = the first, the default), so a test can let earlier commits through.
"""
from __future__ import annotations

import os
import sys
import threading

ENV = "STORYREEL_CRASH_AT"
EXIT_CODE = 137   # what a shell reports for a process killed by SIGKILL

#: Every named point, where it is, and what a crash there must not lose.
POINTS = {
    "after-canon-write": "agent/nodes.py commit: the proposal's canon transaction is committed, "
                         "its ledger lines are not written yet",
    "after-ledger-write": "agent/nodes.py commit: ledger lines written, bible index and graph "
                          "checkpoint not yet",
    "mid-bible-index": "agent/nodes.py commit: some of the proposal's records indexed in chroma",
    "mid-upload-import": "ui/session.py upload: the uploaded file is (partly) in assets/uploads, "
                         "the card does not know it yet",
    "mid-take-write": "agent/voices.py: a take's audio is being written into the drafts",
    "mid-render-segment": "tools/render: a segment of the episode is being encoded",
}

_counts: dict[str, int] = {}
_counts_lock = threading.Lock()


def crash_point(name: str) -> None:
    """Die at once (exit 137, no cleanup, no flush) when STORYREEL_CRASH_AT names this point."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    for item in wanted.split(","):
        point, _, nth = item.strip().partition("@")
        if point != name:
            continue
        with _counts_lock:
            _counts[name] = _counts.get(name, 0) + 1
            reached = _counts[name]
        if reached == (int(nth) if nth.isdigit() else 1):
            sys.stderr.write(f"storyreel: crash point {name} reached ({ENV}); exiting {EXIT_CODE}\n")
            sys.stderr.flush()
            os._exit(EXIT_CODE)
