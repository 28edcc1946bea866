"""Processes of this machine, as the runtime and the emulator's commands see them."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Running (a killed process nobody reaped yet is a zombie: not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True  # no /proc here: kill(pid, 0) is all there is
