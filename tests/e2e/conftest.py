"""End-to-end fixtures: a moto server of our own on a free port, the template deployed on it, and the
local Lambda runtime running both functions, exactly as `localcloud up` does."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from localcloud.emulator import Emulator, start_moto
from localcloud.settings import CloudSettings

# Fast settings for tests: no slow sends, retries without delay; everything else as the template says.
FAST = {"SimulatedSlowRate": "0", "RetryBaseDelaySeconds": "0", "RetryMaxDelaySeconds": "1",
        "MaxSendAttempts": "3", "SendMaxConcurrency": "2"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_emulator(tmp: Path) -> Emulator:
    return start_moto(f"http://127.0.0.1:{free_port()}", tmp / "moto.log", detached=False)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    emulator = start_emulator(tmp_path_factory.mktemp("moto"))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def cloud(emulator, tmp_path_factory) -> Iterator[LocalCloud]:
    os.environ["LOCALCLOUD_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides=FAST)).start()
    yield cloud
    cloud.close()
