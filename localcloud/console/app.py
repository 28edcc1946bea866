"""The console as a WSGI app under /_localcloud/: one static page, and JSON for it and for scripts.

    GET  /_localcloud/                      the page
    GET  /_localcloud/jobs                  every import job (an upload no parse picked up yet: PENDING)
    GET  /_localcloud/jobs/{id}             one job, with its rejects file
    GET  /_localcloud/rejects?job={id}      its rejects file (CSV)
    GET  /_localcloud/contacts/{email}      the ledger's item and the provider's attempts
    GET  /_localcloud/dlq                   dead letters, grouped by reason
    GET  /_localcloud/metrics               queue depths, sends per second over the last minutes
    GET  /_localcloud/logs/{function}?level=&job=   recent log lines
    POST /_localcloud/preview?name=x.csv    how the body would be read, its first emails as they would be sent
    POST /_localcloud/upload?name=x.csv     the body goes to incoming/x.csv (&email_column=&name_columns=: which
                                            column is which, as the object's metadata)
    POST /_localcloud/dlq/redrive           {"reason": "blocked-exhausted"}

It answers only the loopback interface, never a page of another site or a Host that is not this machine
(emulator/guard.py, in front of it), and an action only with the header `X-Localcloud-Console`, which a page of
another origin cannot send without a CORS preflight. Every malformed request gets a 4xx and its reason.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from importlib.resources import files
from typing import Any

from common.domain.columns import ColumnMapping
from localcloud.cloud import LocalCloud, NotReady
from localcloud.config import CloudSettings, project_root
from localcloud.console.api import MAX_UPLOAD_BYTES, ConsoleApi, ConsoleError
from localcloud.emulator.guard import AccessPolicy, MalformedRequest, RequestGuard, request_body

PREFIX = "/_localcloud/"
ACTION_HEADER = "HTTP_X_LOCALCLOUD_CONSOLE"
STATIC = {"": ("index.html", "text/html; charset=utf-8"), "console.js": ("console.js", "text/javascript"),
          "console.css": ("console.css", "text/css")}
LOOPBACK = ("127.", "::1", "::ffff:127.")
RECONNECT_SECONDS = 15.0
MAX_ACTION_BYTES = 64 * 1024  # a redrive's JSON

StartResponse = Callable[..., Any]


class ConsoleApp:
    def __init__(self, settings: Callable[[], CloudSettings]):
        self._settings = settings
        self._api: ConsoleApi | None = None
        self._connected_at = 0.0
        self._connecting = threading.Lock()

    def api(self) -> ConsoleApi:
        """Connected on first use, and again now and then: the stack may be redeployed under it."""
        with self._connecting:
            if self._api is None or time.monotonic() - self._connected_at > RECONNECT_SECONDS:
                cloud = LocalCloud(self._settings()).connect()
                if self._api is None:
                    self._api = ConsoleApi(cloud)
                else:
                    self._api.cloud = cloud
                self._connected_at = time.monotonic()
            return self._api

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if not str(environ.get("REMOTE_ADDR", "127.0.0.1")).startswith(LOOPBACK):
            return _json(start_response, 403, {"error": "the console answers this machine only"})
        path = environ.get("PATH_INFO", "")[len(PREFIX):]
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and path in STATIC:
            name, content_type = STATIC[path]
            body = (files("localcloud.console") / "static" / name).read_bytes()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                      ("Cache-Control", "no-store")])
            return [body]
        try:
            if method == "POST":
                if not environ.get(ACTION_HEADER):
                    raise ConsoleError("actions need the X-Localcloud-Console header (sent by the console page)",
                                       status=403)
                return _json(start_response, 200, self._act(path, environ))
            if method != "GET":
                raise ConsoleError(f"{method} is not answered here", status=405)
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            if path == "rejects":
                name, body = self.api().rejects(query.get("job", [""])[0])
                filename = "".join(char for char in name if char.isprintable() and char not in '"\\')
                start_response("200 OK", [("Content-Type", "text/csv; charset=utf-8"),
                                          ("Content-Disposition", f'attachment; filename="{filename}"'),
                                          ("Content-Length", str(len(body)))])
                return [body]
            return _json(start_response, 200, self._read(path, query))
        except (ConsoleError, MalformedRequest) as error:
            return _json(start_response, error.status, {"error": str(error)})
        except NotReady as error:
            return _json(start_response, 503, {"error": str(error)})

    def _read(self, path: str, query: dict[str, list[str]]) -> Any:
        api = self.api()
        first, _, rest = path.partition("/")
        rest = urllib.parse.unquote(rest)
        if path == "jobs":
            return api.jobs()
        if first == "jobs" and rest:
            return api.job(rest)
        if first == "contacts" and rest:
            return api.contact(rest)
        if path == "dlq":
            return api.dlq()
        if path == "metrics":
            return api.metrics()
        if path == "functions":
            return {"functions": api.functions(), "endpoint": api.cloud.settings.endpoint,
                    "stack": api.cloud.settings.stack_name, "bucket": api.cloud.bucket,
                    "max_upload_bytes": MAX_UPLOAD_BYTES}
        if first == "logs" and rest:
            return api.logs(rest, level=query.get("level", [""])[0], job=query.get("job", [""])[0])
        raise ConsoleError(f"nothing at {PREFIX}{path}", status=404)

    def _act(self, path: str, environ: dict[str, Any]) -> Any:
        if path in ("upload", "preview"):
            query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
            name = query.get("name", [""])[0]
            said = ColumnMapping(query.get("email_column", [""])[0].strip(), query.get("name_columns", [""])[0].strip())
            mapping = said if said.email_column or said.name_columns else None
            body = request_body(environ, MAX_UPLOAD_BYTES, f"{name} is too large: the console takes files up to "
                                f"{MAX_UPLOAD_BYTES // 2**20} MB (upload larger ones with aws s3 cp)")
            return (self.api().upload if path == "upload" else self.api().preview)(name, body, mapping)
        if path == "dlq/redrive":
            try:
                reason = json.loads(request_body(environ, MAX_ACTION_BYTES, "the body is too large") or b"{}").get(
                    "reason", "")
            except (ValueError, AttributeError):
                raise ConsoleError('the body must be JSON: {"reason": "..."}') from None
            return self.api().redrive(str(reason))
        raise ConsoleError(f"no action at {PREFIX}{path}", status=404)


def _json(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
    payload = json.dumps(body, ensure_ascii=False, default=str).encode()
    reasons = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
               413: "Content Too Large", 415: "Unsupported Media Type", 503: "Service Unavailable"}
    start_response(f"{status} {reasons.get(status, '')}".strip(),
                   [("Content-Type", "application/json; charset=utf-8"), ("Content-Length", str(len(payload))),
                    ("Cache-Control", "no-store")])
    return [payload]


def serve(app: ConsoleApp, port: int) -> Any:
    """The console on a port of its own, on 127.0.0.1 only (for an endpoint that is not ours)."""
    from werkzeug.serving import make_server

    # The same guard as the emulator's: no page of another site, no Host but this machine.
    guarded = RequestGuard(app, AccessPolicy.load(project_root()))
    server = make_server("127.0.0.1", port, guarded, threaded=True)
    threading.Thread(target=server.serve_forever, name="console", daemon=True).start()
    return server
