"""Processes of this machine, as the runtime and the emulator's commands see them."""

from __future__ import annotations

import os
from pathlib import Path


def stat_fields(pid: int | str) -> list[str]:
    """/proc/PID/stat's fields after the process's name (state first, then the parent's pid; the start time is
    [19]). Raises OSError where there is no such process, or no /proc."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        return stat.read().rsplit(b")", 1)[1].decode().split()


def process_alive(pid: int) -> bool:
    """Running (a killed process nobody reaped yet is a zombie: not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return stat_fields(pid)[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc here: kill(pid, 0) is all there is


def descendants(pid: int) -> list[int]:
    """Every process under `pid` now, children first (from /proc; none where there is no /proc)."""
    children: dict[int, list[int]] = {}
    proc = Path("/proc")
    for entry in proc.iterdir() if proc.is_dir() else ():
        if entry.name.isdigit():
            try:
                parent = int(stat_fields(entry.name)[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found
