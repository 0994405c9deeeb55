"""Sum a figure over a process and all its descendants, read from /proc (Linux)."""
from __future__ import annotations

import os
from collections.abc import Callable


def tree_sum(pid: int, figure: Callable[[list[str]], float]) -> float:
    """`figure(stat fields after the command name)` summed over `pid` and every live descendant."""
    children: dict[int, list[int]] = {}
    values: dict[int, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            values[int(entry)] = figure(fields)
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += values.get(p, 0.0)
        stack.extend(children.get(p, []))
    return total


def tree_rss_mb(pid: int) -> float:
    page = os.sysconf("SC_PAGE_SIZE")
    return tree_sum(pid, lambda f: int(f[21]) * page / 2**20)


def tree_cpu_seconds(pid: int) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    return tree_sum(pid, lambda f: (int(f[11]) + int(f[12])) / tick)
