"""End-to-end fixtures: an emulator of our own on a free port (or the endpoint in AWS_ENDPOINT_URL), the stack
deployed on it, and the local Lambda runtime running the functions, exactly as `localcloud up` does."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings
from localcloud.emulator.process import Emulator, free_port
from localcloud.emulator.process import start_emulator as start_local_emulator
from tests.conftest import E2E_ENDPOINT

# Fast settings for tests: no slow sends, retries without delay; everything else as the template says.
FAST = {"SimulatedSlowRate": "0", "RetryBaseDelaySeconds": "0", "RetryMaxDelaySeconds": "1",
        "MaxSendAttempts": "3", "SendMaxConcurrency": "2"}


def start_emulator(tmp: Path) -> Emulator:
    return start_local_emulator(f"http://127.0.0.1:{free_port()}", tmp / "emulator.log", detached=False)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> Iterator[Emulator]:
    """Our own emulator on a free port, or the endpoint `make test-e2e` was given in AWS_ENDPOINT_URL."""
    if E2E_ENDPOINT:
        yield Emulator(endpoint=E2E_ENDPOINT)
        return
    emulator = start_emulator(tmp_path_factory.mktemp("emulator"))
    yield emulator
    emulator.stop()


@pytest.fixture(scope="session")
def cloud(emulator, tmp_path_factory) -> Iterator[LocalCloud]:
    os.environ["LOCALCLOUD_STATE_DIR"] = str(tmp_path_factory.mktemp("state"))
    cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides=FAST)).start()
    yield cloud
    cloud.close()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Against another endpoint (a LocalStack: `make test-localstack`, `make test-ministack`), the tests that need
    the embedded local cloud itself are skipped, each saying what it needs."""
    if not E2E_ENDPOINT:
        return
    for item in items:
        if (needs := item.get_closest_marker("embedded_cloud")) is not None:
            item.add_marker(pytest.mark.skip(reason=f"needs the embedded local cloud: {needs.args[0]}"))
