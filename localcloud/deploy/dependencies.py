"""The functions' locked dependencies, installed as `sam build` installs them for Lambda: for Python 3.13 on the
function's architecture, binary wheels only, every hash checked (functions/requirements.txt), into a folder that
is zipped with the code. Cached by what went in, so a second deployment costs nothing.

The embedded local cloud's runtime runs the functions with this project's own virtual environment and needs none
of it; an endpoint that runs the code itself (a LocalStack, AWS) gets the real package.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess  # runs pip  # nosec B404
import sys
from pathlib import Path

LAMBDA_PYTHON = "3.13"
# The wheel tags the Lambda runtime (Amazon Linux 2023, glibc 2.34) accepts, newest first.
PLATFORMS = {
    "x86_64": ("manylinux_2_28_x86_64", "manylinux2014_x86_64"),
    "arm64": ("manylinux_2_28_aarch64", "manylinux2014_aarch64"),
}


class DependencyError(RuntimeError):
    pass


def installed_dependencies(requirements: Path, architecture: str, cache: Path) -> Path:
    """The folder holding `requirements` installed for Lambda on `architecture` (built once per content)."""
    if architecture not in PLATFORMS:
        raise DependencyError(f"architecture {architecture!r}: Lambda has {' and '.join(PLATFORMS)}")
    key = hashlib.sha256(requirements.read_bytes() + f"|{architecture}|{LAMBDA_PYTHON}".encode()).hexdigest()[:16]
    target = cache / f"dependencies-{architecture}-{key}"
    if (target / ".complete").exists():
        return target
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
               "--target", str(partial), "--implementation", "cp", "--python-version", LAMBDA_PYTHON,
               "--only-binary=:all:", "--no-deps", "--require-hashes", "-r", str(requirements)]
    for tag in PLATFORMS[architecture]:
        command += ["--platform", tag]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603 - our own pip  # nosec B603
    if done.returncode != 0:
        raise DependencyError(f"installing {requirements} for Lambda ({architecture}, Python {LAMBDA_PYTHON}) "
                              f"failed: {done.stderr.strip()[-2000:]}")
    (partial / ".complete").write_text(" ".join(command[3:]) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target
