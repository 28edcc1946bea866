"""What answers at an endpoint decides what the local cloud does there: tested on stand-in HTTP servers."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings
from localcloud.emulator.process import Answerer, identify


@contextmanager
def serving(paths: set[str]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 answering 200 on `paths` and 404 elsewhere."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path in paths else 404)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_a_localstack_is_told_from_a_plain_moto_and_from_anything_else():
    with serving({"/_localstack/health"}) as endpoint:
        assert identify(endpoint) is Answerer.LOCALSTACK
    with serving({"/moto-api/"}) as endpoint:
        assert identify(endpoint) is Answerer.PLAIN_MOTO
    with serving(set()) as endpoint:
        assert identify(endpoint) is Answerer.OTHER


def test_nothing_answering_is_nothing():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    assert identify(f"http://127.0.0.1:{port}") is Answerer.NOTHING


def test_the_local_runtime_runs_functions_only_on_the_embedded_cloud():
    # A LocalStack (with Docker) and AWS run the stack's functions themselves: a second runner would
    # process every message twice.
    cloud = LocalCloud(CloudSettings.load(endpoint="http://127.0.0.1:9"))
    for answerer in Answerer:
        cloud.answerer = answerer
        assert cloud.hosts_functions is (answerer is Answerer.LOCALCLOUD)
