"""Where the local cloud finds its template, stack name, region, parameter overrides and endpoint."""

from __future__ import annotations

import os
import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"  # LocalStack's port, so awslocal and friends work too
SAMCONFIG_ENVIRONMENT = "localcloud"
MOTO_ACCOUNT_ID = "123456789012"


def project_root() -> Path:
    return Path(__file__).resolve().parent.parent


def parse_overrides(text: str) -> dict[str, str]:
    """`Key=Value Key2="a b"` as sam's --parameter-overrides takes it."""
    overrides = {}
    for pair in shlex.split(text):
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"parameter override {pair!r} is not Key=Value")
        overrides[key] = value
    return overrides


@dataclass
class CloudSettings:
    root: Path
    stack_name: str
    region: str
    endpoint: str
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    fault_rate: float = 0.0  # share of the functions' AWS requests answered with a transient 503

    @property
    def template_path(self) -> Path:
        return self.root / "template.yaml"

    @property
    def state_dir(self) -> Path:
        return Path(os.environ.get("LOCALCLOUD_STATE_DIR") or self.root / ".localcloud")

    @property
    def code_dir(self) -> Path:
        return self.root / "functions"

    @classmethod
    def load(cls, root: Path | None = None, endpoint: str | None = None,
             overrides: dict[str, str] | None = None) -> CloudSettings:
        """samconfig.toml's `localcloud` environment, then the environment, then explicit arguments."""
        root = root or project_root()
        config: dict = {}
        samconfig = root / "samconfig.toml"
        if samconfig.exists():
            with samconfig.open("rb") as handle:
                document = tomllib.load(handle)
            section = document.get(SAMCONFIG_ENVIRONMENT, {})
            config = {**section.get("global", {}).get("parameters", {}),
                      **section.get("deploy", {}).get("parameters", {})}
        parameters = parse_overrides(config.get("parameter_overrides", ""))
        if os.environ.get("EMAIL_PROVIDER"):  # `EMAIL_PROVIDER=ses localcloud run ...`, as the function reads it
            parameters["EmailProvider"] = os.environ["EMAIL_PROVIDER"]
        parameters.update(parse_overrides(os.environ.get("LOCALCLOUD_PARAMETER_OVERRIDES", "")))
        parameters.update(overrides or {})
        return cls(root=root, stack_name=config.get("stack_name", "welcome-pipeline"),
                   region=config.get("region", "us-east-1"),
                   endpoint=endpoint or os.environ.get("LOCALCLOUD_ENDPOINT") or DEFAULT_ENDPOINT,
                   parameter_overrides=parameters,
                   fault_rate=float(os.environ.get("LOCALCLOUD_FAULT_RATE") or 0.0))
