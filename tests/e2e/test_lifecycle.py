"""`localcloud up` stops when asked, and stops what it started; `localcloud stop` stops the emulator at the endpoint
it is given and no other."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from localcloud.emulator.process import free_port
from localcloud.processes import descendants, process_alive
from localcloud.samples import write_sample
from tests.e2e.conftest import FAST

pytestmark = [pytest.mark.e2e, pytest.mark.embedded_cloud("starts and stops emulators of its own")]
ROOT = Path(__file__).resolve().parents[2]
STOP_WITHIN_SECONDS = 5


def answers(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def environment(tmp_path: Path, port: int) -> dict[str, str]:
    return {**os.environ, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "LOCALCLOUD_STATE_DIR": str(tmp_path / "s"),
            "LOCALCLOUD_PARAMETER_OVERRIDES": " ".join(f"{k}={v}" for k, v in FAST.items())}


def localcloud(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "localcloud", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return f"{pid} (ended)"


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process tree from /proc")
@pytest.mark.parametrize(("how", "frozen"), [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGTERM, True)],
                         ids=["ctrl-c", "sigterm", "sigterm-emulator-frozen"])
def test_up_stops_within_seconds_while_busy_and_leaves_nothing_it_started(tmp_path, how, frozen):
    # Given `localcloud up` running the functions, busy with a file of 3,000 contacts (and, once, its emulator
    # frozen: whatever a stopping thread then waits for, up still ends in time)
    port = free_port()
    env = environment(tmp_path, port)
    up = subprocess.Popen([sys.executable, "-m", "localcloud", "up"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    said: list[str] = []  # read all along, as a terminal reads it (a full pipe would block `up`)
    reader = threading.Thread(target=lambda: said.extend(up.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("Functions are running" in line for line in said):
            assert up.poll() is None and time.monotonic() < deadline, "".join(said)
            time.sleep(0.1)
        assert localcloud(env, "upload", str(write_sample(tmp_path / "busy.csv", 3000))).returncode == 0
        deadline = time.monotonic() + 60
        while "SENDING" not in localcloud(env, "status").stdout and time.monotonic() < deadline:
            time.sleep(0.2)
        started = set(descendants(up.pid))
        assert started, "up started no process of its own"
        if frozen:  # and the emulator stops answering (SIGSTOP): every request of the runtime's now hangs
            [emulator] = [pid for pid in started if "localcloud.emulator.server" in command_line(pid)]
            os.kill(emulator, signal.SIGSTOP)
        # When it is asked to stop
        asked = time.monotonic()
        up.send_signal(how)
        with contextlib.suppress(subprocess.TimeoutExpired):
            up.wait(timeout=60)
        took = time.monotonic() - asked
    finally:
        if up.poll() is None:
            up.kill()
        reader.join(timeout=10)
    # Then it ended within seconds, with every process it started, the emulator included
    while (left := [pid for pid in started if process_alive(pid)]) and time.monotonic() - asked < STOP_WITHIN_SECONDS:
        time.sleep(0.05)
    ended = time.monotonic() - asked
    forced = any("stopping took over" in line for line in said)  # its watchdog: stacks of what hung, then kills
    print(f"up exited in {took:.2f} s, everything it started had ended in {ended:.2f} s"
          + (" (by its watchdog; where it hung:)\n" + "".join(said[-80:]) if forced else ""))
    assert took < STOP_WITHIN_SECONDS, f"up took {took:.1f} s to stop; it said:\n" + "".join(said[-40:])
    assert left == [], f"still running {ended:.1f} s after the signal: {[command_line(pid) for pid in left]}"
    assert not answers(port)


def test_stop_stops_the_emulator_at_its_endpoint_and_no_other(tmp_path):
    # Given two emulators from one checkout, on two ports, each deployed by `localcloud deploy`
    first, second = free_port(), free_port()
    env_first, env_second = environment(tmp_path, first), environment(tmp_path, second)
    try:
        assert localcloud(env_first, "deploy").returncode == 0
        assert localcloud(env_second, "deploy").returncode == 0
        assert answers(first) and answers(second)
        # When the second is stopped, named by AWS_ENDPOINT_URL
        stopped = localcloud(env_second, "stop")
        # Then it is stopped, and the first still answers, its stack there
        assert stopped.returncode == 0 and f"stopped the emulator at http://127.0.0.1:{second}" in stopped.stdout
        assert not answers(second)
        assert answers(first) and localcloud(env_first, "status").returncode == 0
        # And stopping the second again says nothing of ours runs there, and stops nothing
        again = localcloud(env_second, "stop")
        assert again.returncode == 0 and "no emulator of ours" in again.stdout and answers(first)
        # And the first is stopped when named (--endpoint, as every command takes it)
        assert localcloud(env_second, "--endpoint", f"http://127.0.0.1:{first}", "stop").returncode == 0
        assert not answers(first)
    finally:
        localcloud(env_first, "stop")
        localcloud(env_second, "stop")
