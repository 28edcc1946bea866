"""PNG charts for bench/results.md and bench/rate.md (matplotlib: a development requirement, never in the
Lambda package)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt


def settled_over_time(runs: dict[int, list[Sequence[tuple[float, int]]]], path: Path) -> Path:
    """Settled rows against seconds after the upload: one panel per size, one line per run."""
    figure, panels = plt.subplots(1, len(runs), figsize=(6 * len(runs), 4), squeeze=False)
    for axes, (contacts, progress_per_run) in zip(panels[0], runs.items(), strict=True):
        for number, progress in enumerate(progress_per_run, 1):
            if progress:
                seconds, settled = zip(*progress, strict=True)
                axes.plot(seconds, settled, label=f"run {number}")
        axes.set(xlabel="seconds after the upload", ylabel="rows settled", title=f"{contacts:,} contacts")
        axes.grid(alpha=0.3)
        axes.legend(fontsize="small")
    figure.suptitle("Settled rows over time")
    return _save(figure, path)


def sends_per_second(arrivals: Sequence[float], max_send_rate: float, path: Path) -> Path:
    """Provider requests in each whole second of the run, with the MaxSendRate line when there is one."""
    start = min(arrivals)
    per_second = Counter(int(at - start) for at in arrivals)
    seconds = range(max(per_second) + 1)
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.bar(list(seconds), [per_second.get(s, 0) for s in seconds], width=1.0, label="sends in that second")
    if max_send_rate:
        axes.axhline(max_send_rate, color="tab:red", linestyle="--", label=f"MaxSendRate {max_send_rate:g}/s")
    axes.set(xlabel="seconds after the first send", ylabel="sends", title="Sends per second")
    axes.grid(alpha=0.3, axis="y")
    axes.legend(fontsize="small")
    return _save(figure, path)


def latency_histogram(latencies: Sequence[float], path: Path) -> Path:
    """The provider's latency of every send attempt (the simulated provider's deterministic draws)."""
    figure, axes = plt.subplots(figsize=(8, 4))
    axes.hist(latencies, bins=60, log=True)
    axes.set(xlabel="send latency, seconds", ylabel="send attempts (log scale)",
             title=f"Send latency of {len(latencies):,} attempts")
    axes.grid(alpha=0.3)
    return _save(figure, path)


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
