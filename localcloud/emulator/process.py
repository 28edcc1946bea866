"""The emulator as a process: what answers at an endpoint, and starting or stopping ours."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess  # starts our own interpreter  # nosec B404
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from urllib.parse import urlparse

from localcloud.emulator.faults import FAULTS_PATH
from localcloud.emulator.server import HEALTH_PATH, SERVICE_NAME
from localcloud.processes import process_alive


class EmulatorError(RuntimeError):
    pass


class Answerer(StrEnum):
    """Who answers at an endpoint, told by its health route; our local runtime runs the functions only for ours,
    and a LocalStack-like emulator runs them itself."""

    NOTHING = "nothing"
    LOCALCLOUD = "the embedded local cloud"
    LOCALSTACK = "a LocalStack"
    LOCALEMU = "localemu (LocalStack's community fork)"
    MINISTACK = "ministack"
    PLAIN_MOTO = "a plain moto server"
    OTHER = "an endpoint that is neither the local cloud, LocalStack nor moto"


# Each LocalStack-like emulator's own health route, in the order they are asked (ministack answers LocalStack's too).
PEER_HEALTH = ((Answerer.MINISTACK, "/_ministack/health"), (Answerer.LOCALEMU, "/_localemu/health"),
               (Answerer.LOCALSTACK, "/_localstack/health"))


PLAIN_MOTO_REFUSAL = (
    "a plain moto server cannot run this pipeline correctly: its DynamoDB transactions roll back concurrent "
    "writes and concurrent SQS deletes bring messages back (a 981-row run hung at 2.5 GB), and its Lambda needs "
    "Docker. Stop it and run `localcloud up` on that port, which starts moto with those fixed "
    "(see docs/local-cloud.md)")


def _get(url: str, timeout: float) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a local endpoint the user chose  # nosec B310
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, b""


def identify(endpoint: str, timeout: float = 1.0) -> Answerer:
    return identify_with_version(endpoint, timeout)[0]


def identify_with_version(endpoint: str, timeout: float = 1.0) -> tuple[Answerer, str]:
    """Who answers at the endpoint, and the version it says it is (where it says)."""
    base = endpoint.rstrip("/")
    try:
        status, body = _get(base + HEALTH_PATH, timeout)
        if status == 200 and SERVICE_NAME in body.decode(errors="replace"):
            return Answerer.LOCALCLOUD, str(json.loads(body).get("moto", ""))
        for answerer, route in PEER_HEALTH:
            status, body = _get(base + route, timeout)
            if status == 200:
                return answerer, _version(body)
        if _get(base + "/moto-api/", timeout)[0] == 200:
            return Answerer.PLAIN_MOTO, ""
    except (urllib.error.URLError, OSError):
        return Answerer.NOTHING, ""
    return Answerer.OTHER, ""


def _version(body: bytes) -> str:
    try:
        return str(json.loads(body).get("version", ""))
    except (ValueError, AttributeError):
        return ""


def health(endpoint: str) -> dict:
    return json.loads(_get(endpoint.rstrip("/") + HEALTH_PATH, 2.0)[1] or b"{}")


def set_faults(endpoint: str, plan: str) -> dict:
    """Have the emulator at `endpoint` inject these faults from now on (emulator/faults.py); '' for none.
    Returns its report (what it injected so far: nothing, after a new plan)."""
    request = urllib.request.Request(endpoint.rstrip("/") + FAULTS_PATH, data=plan.encode(),  # noqa: S310
                                     method="PUT")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our emulator  # nosec B310
            return json.load(response)
    except urllib.error.HTTPError as error:
        raise ValueError(f"--faults: {json.loads(error.read() or b'{}').get('error', error)}") from None


def injected_faults(endpoint: str) -> dict:
    """The emulator's fault report: its plan, every fault injected, and DynamoDB token replays."""
    with urllib.request.urlopen(endpoint.rstrip("/") + FAULTS_PATH, timeout=30) as response:  # noqa: S310  # nosec B310
        return json.load(response)


def free_port() -> int:
    """A TCP port nothing listens on now, on 127.0.0.1 (for an emulator, a runtime API, a test's own cloud)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def terminate(process: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not ended within `timeout` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


@dataclass
class Emulator:
    endpoint: str
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        terminate(self.process, timeout=10)


def start_emulator(endpoint: str, log_path: Path, detached: bool) -> Emulator:
    """Our moto server on the endpoint's port (this machine only), once it answers."""
    parsed = urlparse(endpoint)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise EmulatorError(f"nothing answers at {endpoint}, and the emulator can only be started on this machine "
                            "(127.0.0.1)")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module  # nosec B603
            [sys.executable, "-m", "localcloud.emulator.server", "-H", "127.0.0.1", "-p", str(parsed.port or 80)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detached)
    deadline = time.monotonic() + 30
    while identify(endpoint, timeout=0.5) is not Answerer.LOCALCLOUD:
        if process.poll() is not None:
            raise EmulatorError(f"the emulator exited with {process.returncode}: "
                                + _last_line(log_path) + f" (log: {log_path})")
        if time.monotonic() > deadline:
            process.kill()
            raise EmulatorError(f"the emulator did not answer at {endpoint} within 30 s; see {log_path}")
        time.sleep(0.1)
    return Emulator(endpoint=endpoint, process=process)


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def _background_files(state_dir: Path, endpoint: str) -> tuple[Path, Path]:
    """The pid file and log of the emulator started for this endpoint: one per port, so that two can run."""
    port = urlparse(endpoint).port or 80
    return state_dir / f"emulator-{port}.pid", state_dir / f"emulator-{port}.log"


def start_background_emulator(endpoint: str, state_dir: Path) -> Emulator:
    """Started once for this and later commands; `localcloud stop` ends it."""
    pid_file, log = _background_files(state_dir, endpoint)
    emulator = start_emulator(endpoint, log, detached=True)
    pid_file.write_text(str(emulator.process.pid) if emulator.process else "")
    return emulator


def stop_background_emulator(state_dir: Path, endpoint: str, timeout: float = 10) -> bool:
    """Stops the emulator this checkout started at `endpoint`, and no other; False if none of ours runs there."""
    pid_file, _ = _background_files(state_dir, endpoint)
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return False
    pid_file.unlink(missing_ok=True)
    if not _is_our_emulator(pid, urlparse(endpoint).port or 80):
        return False  # ended already, and its pid perhaps another process's now
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(pid):
        os.kill(pid, signal.SIGKILL)
    return True


def _is_our_emulator(pid: int, port: int) -> bool:
    """The process is our emulator on this port (from /proc where there is one; else its being alive)."""
    if not process_alive(pid):
        return False
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except FileNotFoundError:  # ended just now; or no /proc here (macOS), and its being alive is all there is
        return not Path("/proc").is_dir()
    except OSError:
        return False
    return b"localcloud.emulator.server" in arguments and str(port).encode() in arguments
