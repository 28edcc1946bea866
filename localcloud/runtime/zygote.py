"""Execution environments forked from a template process that has the functions' libraries imported.

A cold start spent about a second of CPU importing boto3, botocore, Powertools and the X-Ray SDK;
with ten or twenty environments starting at once on a two-core machine, that alone held back the
first seconds of a run. The template imports those third-party libraries once - nothing of ours,
no clients, no threads - and each execution environment is a fork of it that then does what
Lambda's init does: take its own environment variables, import the handler's module, create its
clients. The init duration reported is that part only.

`python -m localcloud.runtime.zygote FD`: FD is this end of a socket pair; each request on it carries the
socket of a new environment, and the answer is the new process's id.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import signal
import socket
import struct
import subprocess  # starts our own interpreter  # nosec B404
import sys
import threading
from pathlib import Path

# Third-party modules every function imports; preloading changes what they do in no way.
PRELOAD = ("boto3", "botocore.session", "botocore.client", "aws_xray_sdk.core", "aws_lambda_powertools",
           "aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.data_classes",
           "email_validator")
# botocore reads these services' models, endpoint rules and partitions from JSON files the first time a
# client is made; a throwaway client of each in the template leaves them in boto3's default session.
WARM_SERVICES = ("dynamodb", "sqs", "s3", "sesv2", "logs")
TEMPLATE_PROCESS_NAME = "env-template"  # what `ps` shows for it (environments: env:<function>)
# Lambda's own value; botocore puts it in every request's user agent (exec-env/...), and reads it when the
# default session is made, here in the template.
EXECUTION_ENV = "AWS_Lambda_python3.13"
_PID = struct.Struct("!i")


class Zygote:
    def __init__(self, root: Path):
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module  # nosec B603
            [sys.executable, "-m", "localcloud.runtime.zygote", str(theirs.fileno())], pass_fds=[theirs.fileno()],
            cwd=root, env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(root)},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        theirs.close()
        self._control = ours
        self._lock = threading.Lock()

    def fork(self, environment_socket: socket.socket) -> int:
        """A new process serving the worker protocol (localcloud.runtime.worker) on `environment_socket`."""
        with self._lock:
            socket.send_fds(self._control, [b"f"], [environment_socket.fileno()])
            answer = b""
            while len(answer) < _PID.size:
                chunk = self._control.recv(_PID.size - len(answer))
                if not chunk:
                    raise RuntimeError("the environment template process exited")
                answer += chunk
        return _PID.unpack(answer)[0]

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def close(self) -> None:
        self._control.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)


_log = logging.getLogger("localcloud.runtime")
_zygotes: dict[Path, Zygote] = {}
_zygotes_lock = threading.Lock()


def zygote_for(root: Path) -> Zygote:
    """One template process per code root, started on first use (and again if it died), ending with this process."""
    with _zygotes_lock:
        zygote = _zygotes.get(root)
        if zygote is None or not zygote.alive:
            if zygote is not None:
                _log.warning("the environment template process %d died; starting another", zygote.pid)
                zygote.close()
            zygote = _zygotes[root] = Zygote(root)
        return zygote


def end_templates() -> None:
    """Every template process of this process, ended now (each would end a moment after this process does)."""
    with _zygotes_lock:
        zygotes = list(_zygotes.values())
        _zygotes.clear()
    for zygote in zygotes:
        zygote.close()


def name_this_process(name: str) -> None:
    """Set what `ps` and /proc/PID/comm show (Linux; elsewhere nothing happens)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(name[:15])


def _warm_default_session() -> None:
    """Explicit region, endpoint and keys: nothing is resolved from this process's environment, so
    each environment still takes its own (and makes its own clients, with its own settings)."""
    import boto3

    os.environ["AWS_EXECUTION_ENV"] = EXECUTION_ENV
    for service in WARM_SERVICES:
        boto3.client(service, region_name="us-east-1", endpoint_url="http://127.0.0.1:9",  # type: ignore[call-overload]
                     aws_access_key_id="warm", aws_secret_access_key="warm")  # noqa: S106  # nosec B106 - not a credential


def main() -> None:
    from localcloud.runtime import worker

    control = socket.socket(fileno=int(sys.argv[1]))
    name_this_process(TEMPLATE_PROCESS_NAME)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the environments that end
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    _warm_default_session()
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1, 1)
        except OSError:
            return
        if not message or not fds:
            return  # the runtime went away
        pid = os.fork()
        if pid == 0:
            control.close()
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            try:
                worker.run(fds[0])
            finally:
                os._exit(0)
        os.close(fds[0])
        control.sendall(_PID.pack(pid))


if __name__ == "__main__":
    main()
