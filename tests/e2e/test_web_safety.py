"""The local cloud lets no web page in (localcloud/emulator/guard.py): other sites' origins, hosts that are not this
machine, and malformed requests to the console are refused with their reason; the standard tools are unaffected."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from localcloud.cloud import LocalCloud
from localcloud.config import aws_client
from localcloud.console.api import MAX_UPLOAD_BYTES
from tests.browser import browser_missing, launch_chromium

pytestmark = pytest.mark.embedded_cloud("the embedded cloud's guard and console")
EVIL = "http://evil.example"
ACTION = {"X-Localcloud-Console": "1"}


def request(cloud: LocalCloud, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request as curl would send it: these headers exactly (a Host given here replaces the real one)."""
    parsed = urllib.parse.urlsplit(cloud.settings.endpoint)
    connection = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def raw(cloud: LocalCloud, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Bytes on the socket, for what no HTTP client would send (a negative length, a CR/LF in a name)."""
    parsed = urllib.parse.urlsplit(cloud.settings.endpoint)
    with socket.create_connection((parsed.hostname, parsed.port), timeout=60) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        response = http.client.HTTPResponse(sock)
        response.begin()
        return response.status, response.read()


def keys(cloud: LocalCloud) -> set[str]:
    listing = cloud.client("s3").list_objects_v2(Bucket=cloud.bucket, Prefix="incoming/")
    return {item["Key"] for item in listing.get("Contents", [])}


def access_control(headers: dict[str, str]) -> list[str]:
    return [name for name in headers if name.startswith("access-control-")]


# -- origins -----------------------------------------------------------------------------------------
def test_another_sites_preflight_gets_no_allowance_and_its_upload_is_refused_before_s3(cloud):
    # Given a page of another site that would upload a contact into the bucket
    path = f"/{cloud.bucket}/incoming/cross-origin.csv"
    # When its browser asks first (a preflight), it is refused, with nothing that allows it
    status, headers, body = request(cloud, "OPTIONS", path, headers={
        "Origin": EVIL, "Access-Control-Request-Method": "PUT"})
    assert status == 403 and access_control(headers) == [] and "evil.example" in json.loads(body)["error"]
    # And when the upload is sent anyway, S3 never sees it
    status, headers, _ = request(cloud, "PUT", path, b"Eve, eve.cross@example.com\n", {"Origin": EVIL})
    assert status == 403 and access_control(headers) == []
    assert "incoming/cross-origin.csv" not in keys(cloud)


def test_pages_of_this_machine_are_still_allowed_and_answered_by_s3(cloud):
    status, headers, _ = request(cloud, "OPTIONS", f"/{cloud.bucket}/incoming/local.csv", headers={
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "PUT"})
    assert status == 200 and headers.get("access-control-allow-origin") in ("http://localhost:5173", "*")


def _with_origin(cloud: LocalCloud, origin: str):
    """A DynamoDB client of its own (the cloud's are shared) that sends this Origin, as a page's fetch would."""
    client = aws_client.__wrapped__("dynamodb", cloud.settings.endpoint, cloud.settings.region)
    client.meta.events.register("before-sign", lambda request, **_: request.headers.__setitem__("Origin", origin))
    return client


def test_another_sites_page_cannot_read_the_ledger_and_the_sdk_without_an_origin_can(cloud):
    table = cloud.deployed.output("ContactsTableName")
    with pytest.raises(ClientError) as refused:
        _with_origin(cloud, EVIL).scan(TableName=table, Limit=1)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "Items" in cloud.client("dynamodb").scan(TableName=table, Limit=1)
    assert "Items" in _with_origin(cloud, "http://127.0.0.1:3000").scan(TableName=table, Limit=1)


# -- hosts -------------------------------------------------------------------------------------------
def test_a_host_that_is_not_this_machine_is_refused_as_dns_rebinding(cloud):
    # Given evil.example made to resolve to 127.0.0.1: its page's requests are same-origin, with its Host
    for path in ("/_localcloud/contacts/ann@example.com", "/_localcloud/jobs", f"/{cloud.bucket}?list-type=2"):
        status, _, body = request(cloud, "GET", path, headers={"Host": "evil.example:4566"})
        assert status == 403 and "not this machine" in json.loads(body)["error"], path
    before = keys(cloud)
    status, _, _ = request(cloud, "POST", "/_localcloud/upload?name=rebound.csv", b"Eve, eve.dns@example.com\n",
                           {**ACTION, "Host": "evil.example"})
    assert status == 403 and keys(cloud) == before


def test_this_machines_names_are_answered(cloud):
    port = urllib.parse.urlsplit(cloud.settings.endpoint).port
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}", f"localhost.localstack.cloud:{port}"):
        status, _, _ = request(cloud, "GET", "/_localcloud/jobs", headers={"Host": host})
        assert status == 200, host
    # S3's virtual-host form: the bucket in the Host
    status, _, body = request(cloud, "GET", "/?list-type=2", headers={"Host": f"{cloud.bucket}.s3.localhost:{port}"})
    assert status == 200 and b"ListBucketResult" in body


# -- the console's malformed requests ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["a%0d%0aSet-Cookie:%20x=1.csv", "a%22b.csv", "..%2fescape.csv",
                                  "dir%5cfile.csv", "tab%09.csv", "%00.csv"])
def test_a_file_name_that_could_be_more_than_a_name_is_refused(cloud, name):
    before = keys(cloud)
    for action in ("preview", "upload"):
        status, _, body = request(cloud, "POST", f"/_localcloud/{action}?name={name}", b"Ann Lee, ann@example.com\n",
                                  ACTION)
        assert status == 400 and "rename the file" in json.loads(body)["error"], (action, name)
    assert keys(cloud) == before


@pytest.mark.parametrize("length", ["abc", "-1", "+5", "1e3", "٣"])
def test_a_length_that_is_not_a_number_of_bytes_is_refused(cloud, length):
    before = keys(cloud)
    status, body = raw(cloud, f"POST /_localcloud/upload?name=length.csv HTTP/1.1\nHost: 127.0.0.1\n"
                              f"X-Localcloud-Console: 1\nContent-Length: {length}\n", b"Ann Lee, ann@example.com\n")
    assert status == 400 and "Content-Length must be a number of bytes" in json.loads(body)["error"]
    assert keys(cloud) == before


def _chunked(body: bytes, size: int = 1 << 16) -> bytes:
    pieces = [body[i:i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def test_a_chunked_upload_is_read_and_the_cap_holds_for_it(cloud):
    head = ("POST /_localcloud/upload?name={} HTTP/1.1\nHost: 127.0.0.1\nX-Localcloud-Console: 1\n"
            "Transfer-Encoding: chunked\n")
    # A chunked body within the cap is uploaded whole
    status, body = raw(cloud, head.format("chunked.csv"), _chunked(b"Cy Chunk, cy.chunk@example.com\n" * 3))
    assert status == 200 and json.loads(body)["bytes"] == 93
    assert "incoming/chunked.csv" in keys(cloud)
    # And one a byte over it is refused, as a declared length would be
    status, body = raw(cloud, head.format("chunked-large.csv"), _chunked(b"x" * (MAX_UPLOAD_BYTES + 1), 1 << 20))
    assert status == 413 and "upload larger ones with aws s3 cp" in json.loads(body)["error"]
    assert "incoming/chunked-large.csv" not in keys(cloud)


def test_a_bad_fault_plan_length_is_a_400(cloud):
    status, body = raw(cloud, "PUT /_localcloud/faults HTTP/1.1\nHost: 127.0.0.1\nContent-Length: -1\n")
    assert status == 400 and "Content-Length" in json.loads(body)["error"]


# -- in a real browser --------------------------------------------------------------------------------
ATTACKS = """
async () => {
  const tried = async (what, request) => {
    try { const r = await request(); return [what, 'answered ' + r.status + ' ' + (await r.text()).slice(0, 80)]; }
    catch (error) { return [what, 'blocked: ' + error]; }
  };
  const emulator = %(endpoint)r;
  return Object.fromEntries(await Promise.all([
    tried('s3 put', () => fetch(emulator + '/%(bucket)s/incoming/from-a-page.csv',
                                {method: 'PUT', body: 'Eve Page, eve.page@example.com\\n'})),
    tried('s3 put, no-cors', () => fetch(emulator + '/%(bucket)s/incoming/from-a-page-no-cors.csv',
                                         {method: 'POST', mode: 'no-cors', body: 'Eve Page, eve.page@example.com\\n'})),
    tried('dynamodb scan', () => fetch(emulator + '/', {method: 'POST', body: '{"TableName": "%(table)s"}',
        headers: {'Content-Type': 'application/x-amz-json-1.0', 'X-Amz-Target': 'DynamoDB_20120810.Scan'}})),
    tried('console jobs', () => fetch(emulator + '/_localcloud/jobs')),
    tried('console upload', () => fetch(emulator + '/_localcloud/upload?name=from-a-page-console.csv',
        {method: 'POST', body: 'Eve Page, eve.page@example.com\\n', headers: {'X-Localcloud-Console': '1'}})),
  ]));
}
"""


class _EvilPage(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # http.server's name
        page = b"<!doctype html><title>another site</title><p>nothing to see"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def evil_site() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _EvilPage)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    if (why := browser_missing()) is not None:
        pytest.skip(why)
    with sync_playwright() as playwright:
        # evil.example resolves to this machine, as a DNS rebinding attack makes it
        launched = launch_chromium(playwright, ["--host-resolver-rules=MAP evil.example 127.0.0.1"])
        yield launched
        launched.close()


def test_in_a_browser_a_page_of_another_site_cannot_upload_read_the_ledger_or_call_the_console(
        cloud, browser, evil_site):
    # Given a page of another site open in the browser
    page = browser.new_page()
    page.goto(f"http://evil.example:{evil_site}/")
    # When it tries to upload into the bucket, scan the ledger and call the console's API
    results = page.evaluate(ATTACKS % {"endpoint": cloud.settings.endpoint, "bucket": cloud.bucket,
                                       "table": cloud.deployed.output("ContactsTableName")})
    # Then every attempt is blocked, and nothing reached the bucket
    assert all(outcome.startswith("blocked") for what, outcome in results.items() if what != "s3 put, no-cors"), \
        results
    assert not {key for key in keys(cloud) if "from-a-page" in key}
    page.close()


def test_in_a_browser_a_rebound_name_gets_no_console(cloud, browser):
    # Given evil.example resolving to 127.0.0.1: its pages are same-origin with the emulator's port
    port = urllib.parse.urlsplit(cloud.settings.endpoint).port
    page = browser.new_page()
    # When the browser opens the console under that name, and the page calls its API
    answer = page.goto(f"http://evil.example:{port}/_localcloud/")
    status = page.evaluate("async () => (await fetch('/_localcloud/contacts/ann@example.com')).status")
    # Then both are refused
    assert answer.status == 403 and "not this machine" in page.content() and status == 403
    page.close()
