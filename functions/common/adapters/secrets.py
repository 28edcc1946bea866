"""Secrets Manager: the deployment's pseudonym key (a secret the stack generates)."""

from __future__ import annotations

from typing import Any

from common.adapters.aws import client


def read_secret(secret_id: str, secrets: Any | None = None) -> bytes:
    """The secret's value; handlers read it once per cold start (wiring)."""
    value: str = (secrets or client("secretsmanager")).get_secret_value(SecretId=secret_id)["SecretString"]
    return value.encode()
