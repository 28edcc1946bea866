"""Pseudonyms in log lines: keyed, so a list of addresses cannot be hashed to find someone."""

from __future__ import annotations

import hashlib

import pytest

from common.domain.pseudonyms import Pseudonyms, WeakPseudonymKey, redact_addresses

KEY = b"k" * 64


def test_the_same_key_gives_the_same_pseudonym_so_log_lines_can_be_followed():
    assert Pseudonyms(KEY).of("ann@example.com") == Pseudonyms(KEY).of("ann@example.com")
    assert Pseudonyms(KEY).of("ann@example.com") != Pseudonyms(KEY).of("bob@example.com")


def test_without_the_key_hashing_a_list_of_addresses_does_not_find_the_contact():
    # Given the pseudonym of one address under a deployment's key
    pseudonym = Pseudonyms(KEY).of("ann@example.com")
    # Then neither a bare hash nor another deployment's key reproduces it
    assert pseudonym != hashlib.sha256(b"ann@example.com").hexdigest()[:len(pseudonym)]
    assert pseudonym != Pseudonyms(b"o" * 64).of("ann@example.com")
    assert len(pseudonym) == 16 and int(pseudonym, 16) >= 0


def test_a_short_key_is_refused():
    with pytest.raises(WeakPseudonymKey, match="at least 32"):
        Pseudonyms(b"short")


@pytest.mark.parametrize(("text", "redacted"), [
    ("MessageRejected: Email address is not verified: ann@example.com", "MessageRejected: Email address is not "
                                                                          "verified: <address>"),
    ("550 5.1.1 <Bob.Smith+x@mail.example.co.uk>: user unknown (bob@b.example)", "550 5.1.1 <<address>>: user "
                                                                                   "unknown (<address>)"),
    ("421 4.7.0 temporarily blocked, try again later", "421 4.7.0 temporarily blocked, try again later"),
])
def test_provider_texts_lose_the_addresses_they_quote(text, redacted):
    assert redact_addresses(text) == redacted
