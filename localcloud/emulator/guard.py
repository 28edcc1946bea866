"""Who may talk to the local cloud: this machine's tools, and web pages of this machine only.

The local cloud holds people's names and addresses and can send email, and a browser will send a request to it
from any page it shows. So, in front of every service and the console (as LocalStack does with its CORS
allow-list):

- a request whose `Origin` is not on the allow-list is refused (403) before it reaches anything, and a preflight
  from such an origin gets no `Access-Control-Allow-*`: a page of another site can neither send nor read;
- a request whose `Host` is not this machine is refused (403): a site whose name was made to resolve to
  127.0.0.1 (DNS rebinding) is its own origin, so only the Host tells it apart.

Requests without an `Origin` (the AWS CLI, SDKs, SAM CLI, awslocal, the functions) are unaffected. The lists
grow with `[access]` in localcloud.toml or the environment (docs/security.md):
`LOCALCLOUD_EXTRA_CORS_ALLOWED_ORIGINS`, `LOCALCLOUD_EXTRA_ALLOWED_HOSTS` (comma-separated), and
`LOCALCLOUD_DISABLE_CORS_CHECKS=1` turns both checks off.

What it lets through is read with `request_body`: a length that is not a number of bytes, or a body over the
route's limit however it is sent, is refused with its reason, never read to the end of the stream.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# Names that resolve to this machine and that no other site can own: `localhost` and its subdomains (RFC 6761;
# S3's virtual hosts: bucket.s3.localhost), and LocalStack's public name for 127.0.0.1, which awslocal and
# LocalStack's documentation use.
LOCAL_NAMES = ("localhost", "localhost.localstack.cloud")
WEB_SCHEMES = ("http", "https")
TRUE = ("1", "true", "yes")


def _split_list(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(str(item).strip().rstrip("/").lower() for item in value if str(item).strip())


def _host_name(host: str) -> str:
    """`Host` without its port: `[::1]:4566` is `::1`, `localhost:4566` is `localhost`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def is_this_machine(name: str) -> bool:
    """A loopback address, `localhost`, or a name under it."""
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return any(name == local or name.endswith("." + local) for local in LOCAL_NAMES)


@dataclass(frozen=True)
class AccessPolicy:
    extra_origins: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    checks: bool = True

    @classmethod
    def load(cls, root: Path | None = None, environ: Mapping[str, str] | None = None) -> AccessPolicy:
        """`[access]` of localcloud.toml, with the environment's lists added and its opt-out winning."""
        environ = os.environ if environ is None else environ
        table: dict[str, Any] = {}
        settings_file = (root or Path.cwd()) / "localcloud.toml"
        if settings_file.is_file():
            with settings_file.open("rb") as handle:
                table = tomllib.load(handle).get("access") or {}
        disabled = bool(table.get("disable_cors_checks", False)) or \
            environ.get("LOCALCLOUD_DISABLE_CORS_CHECKS", "").strip().lower() in TRUE
        return cls(
            extra_origins=_split_list(table.get("extra_cors_allowed_origins", []))
            + _split_list(environ.get("LOCALCLOUD_EXTRA_CORS_ALLOWED_ORIGINS", "")),
            extra_hosts=_split_list(table.get("extra_allowed_hosts", []))
            + _split_list(environ.get("LOCALCLOUD_EXTRA_ALLOWED_HOSTS", "")),
            checks=not disabled)

    def refusal(self, host: str | None, origin: str | None) -> str | None:
        """Why a request with these headers is refused; None if it may go on."""
        if not self.checks:
            return None
        if host is not None and not self._host_allowed(_host_name(host)):
            return (f"Host {host!r} is not this machine; the local cloud answers localhost, 127.0.0.1 and [::1] "
                    "(more: LOCALCLOUD_EXTRA_ALLOWED_HOSTS)")
        if origin is not None and not self._origin_allowed(origin.strip().rstrip("/").lower()):
            return (f"Origin {origin!r} may not call the local cloud: only pages of this machine may "
                    "(more: LOCALCLOUD_EXTRA_CORS_ALLOWED_ORIGINS)")
        return None

    def _host_allowed(self, name: str) -> bool:
        return is_this_machine(name) or name in self.extra_hosts

    def _origin_allowed(self, origin: str) -> bool:
        if origin in self.extra_origins or "*" in self.extra_origins:
            return True
        parts = urlsplit(origin)  # "null" (a file, a sandboxed frame) has no scheme: refused
        try:
            port_ok = parts.port is None or parts.port > 0
        except ValueError:
            return False
        return parts.scheme in WEB_SCHEMES and port_ok and parts.hostname is not None and \
            (parts.hostname in ("localhost", "127.0.0.1", "::1")) and not parts.path


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class RequestGuard:
    """WSGI middleware: a request the policy refuses gets 403 and a one-line reason, nothing else."""

    def __init__(self, app: WsgiApp, policy: AccessPolicy):
        self.app = app
        self.policy = policy

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        reason = self.policy.refusal(environ.get("HTTP_HOST"), environ.get("HTTP_ORIGIN"))
        if reason is None:
            return self.app(environ, start_response)
        payload = json.dumps({"error": reason}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(payload))),
                                         ("Vary", "Origin")])
        return [payload]


class MalformedRequest(ValueError):
    """A request a route will not read: the reason, and the HTTP status that says it."""

    def __init__(self, reason: str, status: int = 400):
        super().__init__(reason)
        self.status = status


def request_body(environ: dict[str, Any], limit: int, too_large: str) -> bytes:
    """The request's body, at most `limit` bytes however it is sent (a length, or chunks); a length that is not
    a number of bytes is refused (400), a body over the limit too (413), without holding it."""
    declared = str(environ.get("CONTENT_LENGTH") or "").strip()
    stream = environ["wsgi.input"]
    if declared and not (declared.isascii() and declared.isdigit()):  # "-1" must not read to the stream's end
        raise MalformedRequest(f"Content-Length must be a number of bytes, not {declared!r}")
    if declared:
        length = int(declared)
        if length > limit:
            _discard(stream, length)
            raise MalformedRequest(too_large, status=413)
        return _read(stream, length)
    if not environ.get("wsgi.input_terminated"):  # no length and no chunks: no body
        return b""
    body = _read(stream, limit + 1)  # chunked: read up to one byte past the limit
    if len(body) > limit:  # (the server drains what else is there; chunks could go on forever)
        raise MalformedRequest(too_large, status=413)
    return body


def _read(stream: Any, most: int) -> bytes:
    parts, remaining = [], most
    try:
        while remaining > 0 and (chunk := stream.read(min(remaining, 1 << 20))):
            parts.append(chunk)
            remaining -= len(chunk)
    except (OSError, ValueError) as error:  # a malformed chunk
        raise MalformedRequest(f"the body could not be read: {error}") from None
    return b"".join(parts)


def _discard(stream: Any, length: int) -> None:
    """Read what the client said it sends, so that it sees the answer instead of a reset connection."""
    with contextlib.suppress(MalformedRequest):
        while length > 0 and (chunk := _read(stream, min(length, 1 << 20))):
            length -= len(chunk)
