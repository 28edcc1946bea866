"""The AWS endpoint: an already running one (LocalStack, moto) or a moto server we start."""

from __future__ import annotations

import os
import signal
import subprocess  # starts our own interpreter  # nosec B404
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.config import Config

LOCAL_CREDENTIALS = dict.fromkeys(("aws_access_key_id", "aws_secret_access_key"), "test")  # emulator only
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=64)


class EmulatorError(RuntimeError):
    pass


def local_environment(endpoint: str, region: str) -> dict[str, str]:
    """What a process needs so that any boto3 client, awslocal or the AWS CLI talks to the emulator."""
    return {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"], "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region}


@cache
def aws_client(service: str, endpoint: str, region: str) -> Any:
    return boto3.session.Session().client(service, endpoint_url=endpoint, region_name=region, config=CLIENT_CONFIG,
                                          **LOCAL_CREDENTIALS)


def endpoint_answers(endpoint: str, timeout: float = 1.0) -> bool:
    try:
        urllib.request.urlopen(endpoint.rstrip("/") + "/moto-api/", timeout=timeout)  # noqa: S310 - the local endpoint  # nosec B310
        return True
    except urllib.error.HTTPError:
        return True  # something answers HTTP there (LocalStack answers 404 for this path)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class Emulator:
    endpoint: str
    started_here: bool
    process: subprocess.Popen | None = None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_moto(endpoint: str, log_path: Path, detached: bool) -> Emulator:
    parsed = urlparse(endpoint)
    if parsed.hostname not in ("127.0.0.1", "localhost"):
        raise EmulatorError(f"nothing answers at {endpoint}, and a moto server can only be started on this machine")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module  # nosec B603
            [sys.executable, "-m", "localcloud.motoserver", "-H", parsed.hostname, "-p", str(parsed.port or 80)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detached,
            cwd=Path(__file__).resolve().parent.parent)
    deadline = time.monotonic() + 30
    while not endpoint_answers(endpoint, timeout=0.5):
        if process.poll() is not None:
            raise EmulatorError(f"moto server exited with {process.returncode}; see {log_path}")
        if time.monotonic() > deadline:
            process.kill()
            raise EmulatorError(f"moto server did not answer at {endpoint} within 30 s; see {log_path}")
        time.sleep(0.1)
    return Emulator(endpoint=endpoint, started_here=True, process=process)


def ensure_emulator(endpoint: str, state_dir: Path) -> Emulator:
    """Use what answers at the endpoint; otherwise start moto there, in the background, for later commands too."""
    if endpoint_answers(endpoint):
        return Emulator(endpoint=endpoint, started_here=False)
    emulator = start_moto(endpoint, state_dir / "moto.log", detached=True)
    (state_dir / "moto.pid").write_text(str(emulator.process.pid) if emulator.process else "")
    return emulator


def stop_background_emulator(state_dir: Path) -> bool:
    pid_file = state_dir / "moto.pid"
    if not pid_file.exists():
        return False
    try:
        os.kill(int(pid_file.read_text()), signal.SIGTERM)
        stopped = True
    except (ValueError, ProcessLookupError):
        stopped = False
    pid_file.unlink(missing_ok=True)
    return stopped
