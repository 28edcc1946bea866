"""Where the local cloud works: the endpoint, the stack, the template and its local parameter values.

The endpoint follows the conventions every local-AWS tool honours, first match wins:
`--endpoint` (`aws` for real AWS with the default credential chain), `AWS_ENDPOINT_URL` (botocore
then also honours the per-service `AWS_ENDPOINT_URL_<SERVICE>`), `LOCALSTACK_HOST` (as awslocal reads
it), else the embedded local cloud on 127.0.0.1:4566, LocalStack's port.

Local parameter values live in `localcloud.toml`, not in samconfig.toml: nothing `sam deploy
--config-env X` can ship to AWS carries them.
"""

from __future__ import annotations

import os
import platform
import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
REAL_AWS = "aws"
LOCAL_SETTINGS_FILE = "localcloud.toml"
LOCAL_CREDENTIALS = dict.fromkeys(("aws_access_key_id", "aws_secret_access_key"), "test")  # emulators accept any
# The operator tools send no email; their writes are the ledger's token-guarded transactions and SQS sends whose
# copies the ledger absorbs (functions/common/adapters/aws.py says why for each service), so retrying is safe.
CLIENT_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 6}, max_pool_connections=64)


def host_architecture() -> str:
    """This machine's architecture as Lambda names it: what a local stack's functions run as."""
    return "arm64" if platform.machine().lower() in ("arm64", "aarch64") else "x86_64"


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


def resolve_endpoint(explicit: str | None, environ: Mapping[str, str]) -> tuple[str, str]:
    """(endpoint, where it came from)."""
    if explicit:
        return explicit, "--endpoint"
    if environ.get("AWS_ENDPOINT_URL"):
        return environ["AWS_ENDPOINT_URL"], "AWS_ENDPOINT_URL"
    if environ.get("LOCALSTACK_HOST"):
        host = environ["LOCALSTACK_HOST"]
        host = host if ":" in host else f"{host}:4566"
        return f"http://{host}", "LOCALSTACK_HOST"
    return DEFAULT_ENDPOINT, "default"


@cache
def aws_client(service: str, endpoint: str, region: str) -> Any:
    """One client per service, endpoint and region. `endpoint` "aws" is real AWS (default credential chain)."""
    session = boto3.session.Session()
    if endpoint == REAL_AWS:
        return session.client(service, region_name=region, config=CLIENT_CONFIG)  # type: ignore[call-overload]
    per_service = os.environ.get(f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}")
    return session.client(service, endpoint_url=per_service or endpoint, region_name=region,  # type: ignore[call-overload]
                          config=CLIENT_CONFIG, **LOCAL_CREDENTIALS)


def local_environment(endpoint: str, region: str) -> dict[str, str]:
    """What a process needs so that boto3, awslocal or the AWS CLI talk to this endpoint."""
    environment = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": region, "AWS_REGION": region,
                   "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
                   "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"]}
    environment.update({name: value for name, value in os.environ.items() if name.startswith("AWS_ENDPOINT_URL_")})
    return environment


@dataclass
class CloudSettings:
    root: Path
    stack_name: str
    region: str
    endpoint: str
    endpoint_source: str = "default"
    parameter_overrides: dict[str, str] = field(default_factory=dict)

    @property
    def template_path(self) -> Path:
        return self.root / "template.yaml"

    @property
    def state_dir(self) -> Path:
        return Path(os.environ.get("LOCALCLOUD_STATE_DIR") or self.root / ".localcloud")

    @property
    def code_dir(self) -> Path:
        return self.root / "functions"

    @property
    def is_real_aws(self) -> bool:
        return self.endpoint == REAL_AWS

    def client(self, service: str) -> Any:
        return aws_client(service, self.endpoint, self.region)

    @classmethod
    def load(cls, root: Path | None = None, endpoint: str | None = None,
             overrides: dict[str, str] | None = None, environ: Mapping[str, str] | None = None) -> CloudSettings:
        """localcloud.toml, then the environment, then explicit arguments."""
        root = root or project_root()
        environ = os.environ if environ is None else environ
        local: dict[str, Any] = {}
        if (root / LOCAL_SETTINGS_FILE).exists():
            with (root / LOCAL_SETTINGS_FILE).open("rb") as handle:
                local = tomllib.load(handle)
        parameters = {key: str(value) for key, value in (local.get("parameters") or {}).items()}
        if environ.get("EMAIL_PROVIDER"):  # `EMAIL_PROVIDER=ses localcloud run ...`, as the function reads it
            parameters["EmailProvider"] = environ["EMAIL_PROVIDER"]
        parameters.update(parse_overrides(environ.get("LOCALCLOUD_PARAMETER_OVERRIDES", "")))
        parameters.update(overrides or {})
        url, source = resolve_endpoint(endpoint, environ)
        if url != REAL_AWS:  # a local stack's functions run on this machine: its architecture (AWS keeps arm64)
            parameters.setdefault("Architecture", host_architecture())
        return cls(root=root, stack_name=local.get("stack_name", "welcome-pipeline"),
                   region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or local.get("region")
                   or "us-east-1",
                   endpoint=url, endpoint_source=source, parameter_overrides=parameters)
