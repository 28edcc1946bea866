"""Who may call the local cloud (localcloud/emulator/guard.py): origins and hosts, and the settings that widen them."""

from __future__ import annotations

import json

import pytest

from localcloud.emulator.guard import AccessPolicy, RequestGuard

DEFAULT = AccessPolicy()


@pytest.mark.parametrize("origin", [
    "http://localhost", "http://localhost:3000", "https://localhost:8443", "http://127.0.0.1:4566",
    "http://[::1]:4566", "HTTP://LOCALHOST:5173/"])
def test_pages_of_this_machine_may_call(origin):
    assert DEFAULT.refusal("127.0.0.1:4566", origin) is None


@pytest.mark.parametrize("origin", [
    "http://evil.example", "https://evil.example:4566", "null", "file://", "http://localhost.evil.example",
    "http://127.0.0.1.evil.example", "ftp://localhost", "http://evil.localhost:4566", "http://localhost:0",
    "http://localhost:99999", "chrome-extension://abc"])
def test_pages_of_other_sites_are_refused_with_their_origin_named(origin):
    reason = DEFAULT.refusal("127.0.0.1:4566", origin)
    assert reason is not None and repr(origin) in reason and "LOCALCLOUD_EXTRA_CORS_ALLOWED_ORIGINS" in reason


def test_requests_without_an_origin_are_the_tools_and_go_on():
    # Given the AWS CLI, an SDK, SAM CLI or a function: they send no Origin
    assert DEFAULT.refusal("127.0.0.1:4566", None) is None
    assert DEFAULT.refusal(None, None) is None


@pytest.mark.parametrize("host", [
    "127.0.0.1:4566", "localhost:4566", "localhost", "[::1]:4566", "::1", "127.0.0.2:4566",
    "my-bucket.s3.localhost:4566", "localhost.localstack.cloud:4566", "bucket.s3.localhost.localstack.cloud:4566",
    "LOCALHOST:4566"])
def test_hosts_of_this_machine_are_answered(host):
    assert DEFAULT.refusal(host, None) is None


@pytest.mark.parametrize("host", [
    "evil.example", "evil.example:4566", "localhost.evil.example:4566", "10.0.0.5:4566", "192.168.1.2",
    "127.0.0.1.nip.io:4566", "[2001:db8::1]:4566", "localstack.cloud:4566"])
def test_other_hosts_are_refused_as_dns_rebinding(host):
    reason = DEFAULT.refusal(host, None)
    assert reason is not None and repr(host) in reason


def test_the_lists_grow_from_the_settings_file_and_the_environment(tmp_path):
    # Given a localcloud.toml that allows one origin and one host, and an environment that allows more
    (tmp_path / "localcloud.toml").write_text(
        '[access]\nextra_cors_allowed_origins = ["https://app.example"]\nextra_allowed_hosts = ["devbox"]\n')
    policy = AccessPolicy.load(tmp_path, environ={"LOCALCLOUD_EXTRA_CORS_ALLOWED_ORIGINS": "http://a.test:8080/, ",
                                                  "LOCALCLOUD_EXTRA_ALLOWED_HOSTS": "devbox2"})
    # Then each is allowed, and nothing else
    assert policy.refusal("devbox:4566", "https://app.example") is None
    assert policy.refusal("devbox2:4566", "http://a.test:8080") is None
    assert policy.refusal("devbox3:4566", None) is not None
    assert policy.refusal("localhost", "http://a.test") is not None


def test_the_opt_out_turns_both_checks_off(tmp_path):
    assert AccessPolicy.load(tmp_path, environ={"LOCALCLOUD_DISABLE_CORS_CHECKS": "1"}).refusal(
        "evil.example", "http://evil.example") is None
    (tmp_path / "localcloud.toml").write_text("[access]\ndisable_cors_checks = true\n")
    assert AccessPolicy.load(tmp_path, environ={}).refusal("evil.example", "http://evil.example") is None
    assert AccessPolicy.load(tmp_path.parent / "none", environ={}).checks is True


def test_a_refused_request_never_reaches_the_app_and_gets_its_reason():
    reached = []

    def app(environ, start_response):
        reached.append(environ)
        start_response("200 OK", [("Access-Control-Allow-Origin", "*")])
        return [b"ok"]

    guard = RequestGuard(app, DEFAULT)
    answers = []
    body = b"".join(guard({"HTTP_HOST": "127.0.0.1:4566", "HTTP_ORIGIN": "http://evil.example",
                           "REQUEST_METHOD": "OPTIONS"}, lambda status, headers: answers.append((status, headers))))
    status, headers = answers[0]
    assert status.startswith("403") and not reached
    assert not any(name.lower().startswith("access-control-") for name, _ in headers)
    assert "evil.example" in json.loads(body)["error"]
    # And an allowed one does
    assert b"".join(guard({"HTTP_HOST": "localhost:4566"}, lambda *_: None)) == b"ok" and len(reached) == 1
