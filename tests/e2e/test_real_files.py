"""Real export shapes (tests/data/exports) uploaded as people upload them, end to end: the email each address
received says what its row means, and a file whose columns are unclear is held until they are said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from localcloud.cloud import LocalCloud

pytestmark = pytest.mark.e2e
EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
EXPECTED = json.loads((EXPORTS / "expected.json").read_text())
SENT = ("outlook-de.csv", "google-contacts.csv", "mailchimp-no-names.csv", "excel-mac.csv", "excel-unicode-text.txt",
        "linkedin-connections.csv", "stray-quote.csv")


def emails_received(cloud: LocalCloud, addresses: set[str]) -> dict[str, set[str]]:
    """Each address's email texts, as the provider received them (every attempt carries the same text)."""
    received: dict[str, set[str]] = {}
    for entry in cloud.outbox():
        if entry.to in addresses:
            received.setdefault(entry.to, set()).add(entry.body)
    return received


def test_real_exports_are_emailed_as_their_rows_mean_and_an_unclear_one_waits_for_its_columns(cloud, tmp_path):
    # Given exports of Outlook (German), Google, Mailchimp, Excel for Mac, Excel's Unicode Text, LinkedIn, and a
    # file with a stray quote, copied into the bucket as they are
    files = [tmp_path / f"real-{name}" for name in SENT]
    for path, name in zip(files, SENT, strict=True):
        path.write_bytes((EXPORTS / name).read_bytes())
    jobs = cloud.wait(cloud.upload(files), timeout=300)
    # Then every job settles, and every address received exactly the greeting its row means, and nobody else
    assert [job.status.value for job in jobs] == ["SUCCEEDED"] * len(SENT), [(j.key, j.failure_reason) for j in jobs]
    expected = {email: greeting for name in SENT for email, greeting in EXPECTED[name]["greetings"].items()}
    assert emails_received(cloud, set(expected)) == {email: {greeting} for email, greeting in expected.items()}
    assert sum(job.invalid for job in jobs) == sum(EXPECTED[name].get("invalid", 0) for name in SENT)
    # When a file whose second column may or may not be names is uploaded: it is held, nothing sent
    held = tmp_path / "real-no-header.csv"
    held.write_text("zed.real@example.com,Zed Real\n")
    (job,) = cloud.wait(cloud.upload([held]), timeout=120)
    assert job.status.value == "NEEDS_MAPPING" and "which column, if any, holds the name" in job.needs_mapping.reason
    assert emails_received(cloud, {"zed.real@example.com"}) == {}
    # And uploaded again saying which column is which, it is sent so
    (job,) = cloud.wait(cloud.upload([held], metadata={"email-column": "1", "name-columns": "2"}), timeout=120)
    assert job.status.value == "SUCCEEDED"
    assert emails_received(cloud, {"zed.real@example.com"}) == {"zed.real@example.com": {"Hi Zed Real, Welcome!"}}
