"""`python -m localcloud.emulator.server -H HOST -p PORT`: moto's server, patched, with the local cloud's own routes.

Beside the AWS APIs it answers, under `/_localcloud/` (as LocalStack keeps its own under `/_localstack/`):
- `GET /_localcloud/health`: who answers here (so the CLI can tell this emulator from a plain moto);
- `GET /_localcloud/ses/messages`: the messages moto's SES accepted (SES has no API to list them);
- `GET|PUT|DELETE /_localcloud/faults`: the faults injected in front of the AWS APIs (emulator/faults.py);
- everything else under it: the web console (localcloud/console/), reading the stack through this endpoint.

A request from a web page of another site, or with a Host that is not this machine, reaches none of it
(emulator/guard.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterable
from importlib.metadata import version
from typing import Any

from localcloud.emulator.faults import FAULTS_PATH, FaultInjector, FaultPlan, FaultPlanError
from localcloud.emulator.guard import AccessPolicy, MalformedRequest, RequestGuard, request_body

HEALTH_PATH = "/_localcloud/health"
SES_MESSAGES_PATH = "/_localcloud/ses/messages"
CONSOLE_PREFIX = "/_localcloud/"
SERVICE_NAME = "welcome-pipeline localcloud"
MAX_FAULT_PLAN_BYTES = 64 * 1024


def _ses_messages() -> list[dict[str, Any]]:
    from moto.ses.models import ses_backends

    return [{"id": m.id, "source": m.source, "destinations": m.destinations, "subject": m.subject, "body": m.body}
            for _, regions in ses_backends.items() for _, backend in regions.items()
            for m in backend.sent_messages if hasattr(m, "subject")]


def _faults_route(faults: FaultInjector, environ: dict[str, Any]) -> tuple[str, Any]:
    method = environ.get("REQUEST_METHOD", "GET")
    if method == "PUT":
        try:
            spec = request_body(environ, MAX_FAULT_PLAN_BYTES,
                                f"a fault plan is at most {MAX_FAULT_PLAN_BYTES} bytes").decode(errors="replace")
        except MalformedRequest as error:
            return "400 Bad Request", {"error": str(error)}
        try:
            faults.set_plan(FaultPlan.parse(spec))
        except FaultPlanError as error:
            return "400 Bad Request", {"error": str(error)}
    elif method == "DELETE":
        faults.set_plan(FaultPlan())
    return "200 OK", faults.report()


def with_local_routes(app: Callable[..., Iterable[bytes]],
                      console: Callable[..., Iterable[bytes]] | None = None) -> Callable[..., Iterable[bytes]]:
    """`app`: the AWS APIs as served (behind a FaultInjector, whose plan `/_localcloud/faults` then sets)."""
    own = (HEALTH_PATH, SES_MESSAGES_PATH, FAULTS_PATH)
    faults = app if isinstance(app, FaultInjector) else None

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        status = "200 OK"
        if console is not None and path.startswith(CONSOLE_PREFIX) and path not in own:
            return console(environ, start_response)
        if console is not None and path == CONSOLE_PREFIX.rstrip("/"):
            start_response("308 Permanent Redirect", [("Location", CONSOLE_PREFIX), ("Content-Length", "0")])
            return [b""]
        if path == HEALTH_PATH:
            from moto.cloudformation.parsing import get_model_map

            body: Any = {"service": SERVICE_NAME, "moto": version("moto"),
                         "cloudformation_types": sorted(get_model_map())}
        elif path == SES_MESSAGES_PATH:
            body = {"messages": _ses_messages()}
        elif path == FAULTS_PATH and faults is not None:
            status, body = _faults_route(faults, environ)
        else:
            return app(environ, start_response)
        payload = json.dumps(body).encode()
        start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]

    return serve


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=4566)
    args = parser.parse_args(argv)

    from localcloud.emulator.patches import apply

    apply()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import run_simple

    # One log line per request cost an eighth of the server's time under load; warnings and errors stay.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    from localcloud.config import CloudSettings
    from localcloud.console.app import ConsoleApp

    # The console reads the stack through this very endpoint, as any client would.
    console = ConsoleApp(lambda: CloudSettings.load(endpoint=f"http://127.0.0.1:{args.port}"))
    faults = FaultInjector(DomainDispatcherApplication(create_backend_app))
    try:
        faults.set_plan(FaultPlan.parse(os.environ.get("LOCALCLOUD_FAULTS", "")))
    except FaultPlanError as error:
        sys.exit(f"LOCALCLOUD_FAULTS: {error}")
    from localcloud.config import project_root

    # In front of everything: no page of another site, no Host but this machine (emulator/guard.py).
    guarded = RequestGuard(with_local_routes(faults, console), AccessPolicy.load(project_root()))
    run_simple(args.host, args.port, guarded,
               threaded=True, use_reloader=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
