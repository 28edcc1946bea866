"""Pseudonyms of addresses for log lines: a keyed hash (HMAC-SHA256) under the deployment's own secret.

A bare hash of an address can be reversed by anyone who hashes a list of addresses; without the key
it cannot. The same key gives the same pseudonym, so an operator with access to the stack's secret
(`localcloud contact EMAIL`) finds a contact's lines in the logs.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass

PSEUDONYM_LENGTH = 16  # hex digits: 64 bits, no collisions to expect below billions of addresses
MIN_KEY_BYTES = 32


# Something@something.tld inside a provider's text ("550 5.1.1 <ann@example.com>: user unknown").
_ADDRESS = re.compile(r"[^\s<>\"'(),;:\[\]]+@[^\s<>\"'(),;:\[\]]+\.[^\s<>\"'(),;:\[\]]+")
REDACTED = "<address>"


def redact_addresses(text: str) -> str:
    """A provider's text (an SES error, a bounce's diagnostic code) without the addresses it quotes: such texts
    end up in logs, the ledger and dead letters, where contacts are named by pseudonym only."""
    return _ADDRESS.sub(REDACTED, text) if "@" in text else text


class WeakPseudonymKey(ValueError):
    """The key is too short to keep pseudonyms from being guessed."""


@dataclass(frozen=True)
class Pseudonyms:
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) < MIN_KEY_BYTES:
            raise WeakPseudonymKey(f"the pseudonym key has {len(self.key)} bytes; at least {MIN_KEY_BYTES} are needed")

    def of(self, email: str) -> str:
        """The pseudonym of a normalised address (the ledger's key)."""
        return hmac.new(self.key, email.encode(), hashlib.sha256).hexdigest()[:PSEUDONYM_LENGTH]
