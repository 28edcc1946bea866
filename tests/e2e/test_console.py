"""The web console (localcloud/console/): its JSON for scripts, its refusals, and the page in a real browser."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator

import pytest

from localcloud.cloud import LocalCloud
from localcloud.console.api import MAX_UPLOAD_BYTES
from tests.browser import browser_missing, launch_chromium

ACTION = {"X-Localcloud-Console": "1"}


def console(cloud: LocalCloud) -> str:
    return cloud.settings.endpoint + "/_localcloud/"


def call(cloud: LocalCloud, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         method: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(console(cloud) + path, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def until(found: Callable[[], dict | None], failure: str, timeout: float) -> dict:
    """Asks `found` every 0.3 s until it answers something."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (value := found()) is not None:
            return value
        time.sleep(0.3)
    raise AssertionError(failure)


def wait_until_settled(cloud: LocalCloud, job_id: str, timeout: float = 60) -> dict:
    def settled() -> dict | None:
        status, job = call(cloud, "jobs/" + urllib.request.quote(job_id, safe=""))
        return job if status == 200 and job["status"] in ("SUCCEEDED", "FAILED") else None
    return until(settled, f"job {job_id} did not settle", timeout)


def wait_for_reason(cloud: LocalCloud, reason: str) -> dict:
    def letters_of_reason() -> dict | None:
        status, dlq = call(cloud, "dlq")
        assert status == 200, dlq
        return {r["reason"]: r for r in dlq["reasons"]}.get(reason)
    return until(letters_of_reason, f"no {reason} dead letter", timeout=30)


def incoming_keys(cloud: LocalCloud) -> set[str]:
    listing = cloud.client("s3").list_objects_v2(Bucket=cloud.bucket, Prefix="incoming/")
    return {item["Key"] for item in listing.get("Contents", [])}


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_an_upload_through_the_console_is_imported_and_its_job_contact_and_rejects_are_served(cloud):
    # Given a file with two contacts and one invalid row, uploaded as the console's page does
    text = b"Ann Lee, ann.console@example.com\nnot a row\nBob Ray, bob.console+bounce@example.com\n"
    status, uploaded = call(cloud, "upload?name=console-api.csv", text, {**ACTION, "Content-Type": "text/csv"})
    assert status == 200, uploaded
    assert uploaded["key"] == "incoming/console-api.csv"
    # When it settles
    job = wait_until_settled(cloud, uploaded["job_id"])
    # Then the job JSON carries the counters, the reasons and a link to its rejects file
    assert (job["status"], job["rows"], job["sent"], job["bounced"], job["invalid"]) == ("SUCCEEDED", 3, 1, 1, 1)
    assert sum(job["invalid_reasons"].values()) == 1
    with urllib.request.urlopen(console(cloud) + job["rejects_url"], timeout=30) as response:
        assert b"not a row" in response.read()
    # And the contact answers with its ledger item and the provider's attempt
    status, contact = call(cloud, "contacts/ANN.console@example.com")
    assert status == 200 and contact["found"] and contact["state"] == "SENT"
    # (the simulated provider may block a send at random: each block is an attempt of its own)
    attempts = contact["attempts"]
    assert [a["attempt"] for a in attempts] == list(range(1, contact["attempt"] + 1))
    assert [a["outcome"] for a in attempts] == ["blocked"] * (len(attempts) - 1) + ["delivered"]
    assert attempts[-1]["provider_message_id"] == contact["provider_message_id"]
    # And the bounce is in the dead letters (written just after the job's counters), grouped by reason,
    # not redrivable
    bounced = wait_for_reason(cloud, "bounced")
    assert bounced["count"] >= 1 and bounced["redrivable"] is False
    # And the jobs list and the metrics answer for scripts
    assert uploaded["job_id"] in {j["job_id"] for j in call(cloud, "jobs")[1]["jobs"]}
    assert set(call(cloud, "metrics")[1]["depths"]) >= {"contacts", "retries", "dead letters"}


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_a_file_is_previewed_as_it_will_be_sent_and_uploaded_with_its_columns_said(cloud):
    # Given a file the reader is unsure of (no header; a second column that may be names)
    before = incoming_keys(cloud)
    text = b"ann.preview@example.com,Ann Preview\n"
    # When it is previewed: it would be held, and nothing is uploaded
    status, seen = call(cloud, "preview?name=held.csv", text, ACTION)
    assert status == 200 and seen["needs_mapping"]["reason"].startswith("the file has no header")
    # When it is previewed with its columns said, Then the email is shown as it will be sent
    status, seen = call(cloud, "preview?name=held.csv&email_column=1&name_columns=2", text, ACTION)
    assert [r["greeting"] for r in seen["rows"]] == ["Hi Ann Preview, Welcome!"]
    assert incoming_keys(cloud) == before
    # And uploaded so, the columns travel as the object's metadata and the job sends as previewed
    status, uploaded = call(cloud, "upload?name=held.csv&email_column=1&name_columns=2", text, ACTION)
    assert status == 200, uploaded
    job = wait_until_settled(cloud, uploaded["job_id"])
    assert (job["status"], job["sent"]) == ("SUCCEEDED", 1)
    assert cloud.contact("ann.preview@example.com").name == "Ann Preview"


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_a_file_that_is_not_csv_text_is_refused_and_nothing_is_uploaded(cloud):
    before = incoming_keys(cloud)
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)
    status, answer = call(cloud, "upload?name=photo.csv", png, ACTION)
    assert status == 415 and "not a CSV file" in answer["error"]
    status, answer = call(cloud, "upload?name=contacts.xlsx", b"Ann, ann@example.com\n", ACTION)
    assert status == 415 and "'xlsx' files are not read" in answer["error"]
    assert incoming_keys(cloud) == before


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_a_file_over_the_console_limit_is_refused_before_it_is_read(cloud):
    before = incoming_keys(cloud)
    size = 200 * 1024 * 1024
    chunk = b"Ann, ann@example.com\n" * 50_000

    def body() -> Iterator[bytes]:
        sent = 0
        while sent < size:
            part = chunk[: size - sent]
            sent += len(part)
            yield part

    status, answer = call(cloud, "upload?name=huge.csv", body(),  # type: ignore[arg-type]
                          {**ACTION, "Content-Length": str(size)})
    assert status == 413 and f"up to {MAX_UPLOAD_BYTES // 2**20} MB" in answer["error"]
    assert incoming_keys(cloud) == before


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_redriving_letters_that_must_never_be_redriven_is_refused_and_changes_nothing(cloud):
    before = call(cloud, "dlq")[1]["total"]
    for reason in ("bounced", "unknown-outcome", "", "anything"):
        status, answer = call(cloud, "dlq/redrive", json.dumps({"reason": reason}).encode(), ACTION)
        assert status == 400 and "can be redriven" in answer["error"], answer
    assert call(cloud, "dlq")[1]["total"] == before


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_actions_without_the_console_header_are_refused(cloud):
    # A page of another origin cannot add the header without a CORS preflight the console never grants
    before = incoming_keys(cloud)
    status, answer = call(cloud, "upload?name=csrf.csv", b"Eve, eve@example.com\n", {"Content-Type": "text/plain"})
    assert status == 403 and "X-Localcloud-Console" in answer["error"]
    assert incoming_keys(cloud) == before
    request = urllib.request.Request(console(cloud) + "upload?name=x.csv", method="OPTIONS",
                                     headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert "Access-Control-Allow-Origin" not in refused.value.headers


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_bad_lookups_get_clear_answers(cloud):
    assert call(cloud, "contacts/not-an-address")[0] == 400
    status, answer = call(cloud, "contacts/nobody.ever@example.com")
    assert status == 200 and answer["found"] is False and "not in the ledger" in answer["why"]
    assert call(cloud, "jobs/no-such-job")[0] == 404
    assert call(cloud, "logs/NoSuchFunction")[0] == 404
    assert call(cloud, "logs/SendEmailFunction?level=LOUD")[0] == 400


# -- the page, in a real browser ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def page() -> Iterator:
    from playwright.sync_api import sync_playwright

    if (why := browser_missing()) is not None:
        pytest.skip(why)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 1100})
        yield page
        browser.close()


@pytest.mark.embedded_cloud("the console our emulator serves")
def test_in_a_browser_a_dropped_file_settles_its_contact_is_found_and_the_dlq_opens(cloud, page, tmp_path):
    from playwright.sync_api import expect

    # Given the console is open
    page.goto(console(cloud))
    expect(page.locator("#where")).to_contain_text(cloud.bucket)
    # When a CSV is chosen in the upload box
    upload = tmp_path / "console-browser.csv"
    upload.write_text("Cy Dunn, cy.browser@example.com\nDee Fox, dee.browser+bounce@example.com\n"
                      "Eli Gray, eli.browser+blocked@example.com\nbroken\n")
    page.set_input_files("#file-input", str(upload))
    # Then it is previewed first: each row as it will be sent, nothing uploaded yet
    expect(page.locator("#preview-rows")).to_contain_text("Hi Cy Dunn, Welcome!")
    expect(page.locator("#preview-rows")).to_contain_text("too few columns")
    assert "incoming/console-browser.csv" not in incoming_keys(cloud)
    # When Upload is pressed
    page.click("#preview-upload")
    expect(page.locator("#upload-result")).to_contain_text("Uploaded s3://")
    # Then its job appears and reaches SUCCEEDED with a full progress bar, without reloading the page
    row = page.locator("#jobs tbody tr[data-key='incoming/console-browser.csv']")
    expect(row).to_have_attribute("data-status", "SUCCEEDED", timeout=60_000)
    expect(row.locator(".settled")).to_have_text("4 / 4")
    # And its detail shows how it was read and why a row was invalid
    row.click()
    expect(page.locator("#job-detail")).to_contain_text("Read as:")
    expect(page.locator("#job-detail .reasons")).to_be_visible()
    # When a contact is looked up, its ledger item and its provider attempts are shown
    page.fill("#contact-email", "eli.browser+blocked@example.com")
    page.click("#contact-form button")
    expect(page.locator("#contact-ledger")).to_contain_text("SENT")
    expect(page.locator("#contact-attempts tbody tr")).to_have_count(3)  # +blocked: blocked twice, then delivered
    # And the dead-letter queue lists the bounce, which cannot be redriven
    bounced = page.locator("#dlq tbody tr[data-reason='bounced']")
    expect(bounced).to_be_visible(timeout=10_000)
    expect(bounced.locator("button")).to_be_disabled()
    # And a file that is not CSV text is refused with a clear message
    not_csv = tmp_path / "picture.csv"
    not_csv.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    page.set_input_files("#file-input", str(not_csv))
    expect(page.locator("#upload-result")).to_contain_text("not a CSV file")
    expect(page.locator("#preview")).to_be_hidden()
    expect(page.locator("#problem")).to_be_hidden()


def test_for_an_endpoint_not_ours_the_cli_serves_the_console_on_a_port_of_its_own(cloud):
    # (On a LocalStack-like endpoint, `make test-localstack` and `make test-ministack`; here, against our emulator
    # through the same endpoint a LocalStack would be reached at.)
    from localcloud.console.app import ConsoleApp, serve
    from localcloud.emulator.process import free_port

    port = free_port()
    server = serve(ConsoleApp(lambda: cloud.settings), port)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localcloud/jobs", timeout=30) as response:
            served = {job["job_id"] for job in json.load(response)["jobs"]}
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_localcloud/", timeout=30) as response:
            assert b"local cloud console" in response.read()
    finally:
        server.shutdown()
    assert served == {job.job_id for job in cloud.jobs()}
