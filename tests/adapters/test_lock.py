"""Reproducible builds: functions/requirements.txt pins every package the functions ship, with hashes; `sam build`
packages exactly it (pip enforces the hashes), and the tests run the same versions."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"
PIN = re.compile(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)")


def pins(path: Path) -> dict[str, str]:
    """name (extras dropped, lower case) -> pinned version"""
    matches = (PIN.match(line) for line in path.read_text().splitlines())
    return {re.sub(r"\[.*\]", "", m[1]).lower(): m[2] for m in matches if m}


def test_every_locked_package_has_hashes():
    text = (FUNCTIONS / "requirements.txt").read_text()
    blocks = re.split(r"\n(?=[A-Za-z])", text.split("\n", 6)[-1])
    packages = [b for b in blocks if PIN.match(b)]
    assert packages and all("--hash=sha256:" in b for b in packages)


def test_the_lock_holds_what_requirements_in_asks_for():
    wanted, locked = pins(FUNCTIONS / "requirements.in"), pins(FUNCTIONS / "requirements.txt")
    assert {name: locked.get(name) for name in wanted} == wanted


def test_the_tests_run_exactly_the_versions_that_ship():
    locked = pins(FUNCTIONS / "requirements.txt")
    assert "botocore" in locked and "aws-xray-sdk" in locked
    assert {name: version(name) for name in locked} == locked
