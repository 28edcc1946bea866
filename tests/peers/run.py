"""`python -m tests.peers.run ministack|localemu`: the end-to-end suite against an emulator nobody on this team wrote
(`make test-ministack`, `make test-localstack`).

It starts the emulator on a free loopback port from its own virtual environment (.venv-ministack, .venv-localemu),
waits until it answers its health route, runs `tests/e2e` with AWS_ENDPOINT_URL pointing at it (the stack is
deployed there by the suite's own fixture, with each function packaged with its dependencies), prints how many
tests ran against it and how many were skipped as needing the embedded local cloud, and stops it. Arguments after
`--` go to pytest: `python -m tests.peers.run localemu -- -k standard_tools`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess  # starts the emulator and pytest  # nosec B404
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree  # nosec B405 - reads pytest's own report
from dataclasses import dataclass
from pathlib import Path

from localcloud.config import host_architecture
from localcloud.emulator.process import Answerer, free_port, identify_with_version

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Peer:
    name: str
    answerer: Answerer
    python: Path  # its own virtual environment's interpreter

    def command(self, port: int) -> list[str]:
        if self.answerer is Answerer.MINISTACK:
            return [str(self.python.with_name("ministack"))]
        return [str(self.python), str(Path(__file__).with_name("launch_localemu.py")), "start", "--host",
                "127.0.0.1", "--port", str(port)]

    def environment(self, port: int, scratch: Path) -> dict[str, str]:
        """Loopback only; for localemu, Lambda containers on the host's network (no Docker bridge here) running the
        runtime image built on this machine."""
        if self.answerer is Answerer.MINISTACK:
            return {"GATEWAY_PORT": str(port), "BIND_HOST": "127.0.0.1"}
        image = f"public.ecr.aws/lambda/python:3.13-{host_architecture()}"
        return {"GATEWAY_LISTEN": f"127.0.0.1:{port}", "OVERRIDE_IN_DOCKER": "0",
                "FILESYSTEM_ROOT": str(scratch / "localemu"), "TMPDIR": str(scratch),
                "LAMBDA_RUNTIME_IMAGE_MAPPING": json.dumps({"python3.13": image}),
                # (each container on a loopback address of its own: launch_localemu.py)
                "LAMBDA_DOCKER_NETWORK": "host", "HOSTNAME_FROM_LAMBDA": "127.0.0.1"}


PEERS = {"ministack": Peer("ministack", Answerer.MINISTACK, ROOT / ".venv-ministack" / "bin" / "python"),
         "localemu": Peer("localemu", Answerer.LOCALEMU, ROOT / ".venv-localemu" / "bin" / "python")}


def start(peer: Peer, port: int, scratch: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as output:
        process = subprocess.Popen(  # nosec B603 - the emulator from its own venv
            peer.command(port), env={**os.environ, **peer.environment(port, scratch)}, cwd=scratch,
            stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while identify_with_version(endpoint)[0] is not peer.answerer:
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise SystemExit(f"{peer.name} did not answer at {endpoint}; see {log}:\n"
                             + log.read_text(errors="replace")[-3000:])
        time.sleep(0.5)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def counted(report: Path) -> dict[str, int]:
    """passed, failed and skipped tests, from pytest's JUnit XML report."""
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # nosec B314 - pytest's own file
        outcome = {child.tag for child in case}
        counts["skipped" if "skipped" in outcome else "failed" if outcome & {"failure", "error"} else "passed"] += 1
    return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("peer", choices=sorted(PEERS))
    parser.add_argument("pytest_args", nargs="*", help="more pytest arguments (e.g. -k pipeline)")
    args = parser.parse_args()
    peer = PEERS[args.peer]
    if not peer.python.exists():
        target = "test-ministack" if peer.name == "ministack" else "test-localstack"
        raise SystemExit(f"{peer.python} is missing: `make {target}` creates it")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix=f"welcome-{peer.name}-") as scratch:
        log = ROOT / ".localcloud" / "peers" / f"{peer.name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        process = start(peer, port, Path(scratch), log)
        answerer, version = identify_with_version(endpoint)
        print(f"{peer.name}: {answerer} {version} answers at {endpoint}", flush=True)
        report = Path(scratch) / "report.xml"
        try:
            tests = subprocess.run(  # nosec B603 - our own pytest
                [sys.executable, "-m", "pytest", "tests/e2e", "-p", "no:cacheprovider", "-rs",
                 f"--junitxml={report}", *args.pytest_args], cwd=ROOT, check=False,
                env={**os.environ, "AWS_ENDPOINT_URL": endpoint, "LOCALCLOUD_STATE_DIR": str(Path(scratch) / "state")})
        finally:
            stop(process)
        counts = counted(report) if report.exists() else {"passed": 0, "failed": 0, "skipped": 0}
        ran = counts["passed"] + counts["failed"]
        print(f"end-to-end tests against {answerer} {version}: {ran} ran ({counts['passed']} passed, "
              f"{counts['failed']} failed); {counts['skipped']} skipped as needing the embedded local cloud "
              f"(its log: {log})")
    return tests.returncode if ran else 1


if __name__ == "__main__":
    sys.exit(main())
