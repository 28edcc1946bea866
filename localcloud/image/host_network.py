"""A Docker endpoint on which every container runs in the host's network namespace, for `sam local invoke`.

SAM CLI 1.170 creates its containers on Docker's default bridge whatever `--docker-network host` says
(aws/aws-sam-cli#4236: it skips connecting to "host" but never asks for host networking) and talks to
the Lambda Runtime Interface Emulator through a port published on the bridge. Here containers must not
use the bridge: the functions reach the local cloud on 127.0.0.1, and nothing else on the machine is a
target. Pointed at this endpoint (`DOCKER_HOST=unix://...`), SAM CLI runs unchanged; each container it
creates is given host networking, and the emulator listens on the 127.0.0.1 port SAM CLI would have
published (its Runtime API on another free port), so SAM CLI's own requests reach it. Every other
Docker API request passes through byte for byte.

`localcloud docker-host` serves it until Ctrl-C; the sam-local tests start it themselves.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from localcloud.emulator.process import free_port

DOCKER_SOCKET = "/var/run/docker.sock"
RIE_PORT = "8080/tcp"  # where SAM CLI's emulator listens inside the container
_CREATE = re.compile(rb"^POST (/v[\d.]+)?/containers/create[?\s]")
_HEAD_END = b"\r\n\r\n"


def host_networked(config: dict[str, Any], free_port: Callable[[], int] = free_port) -> dict[str, Any]:
    """A container-create request, changed to host networking. SAM CLI's emulator listens where SAM CLI
    would have published its port, its Runtime API on another free port of 127.0.0.1."""
    host = dict(config.get("HostConfig") or {})
    published = (host.pop("PortBindings", None) or {}).get(RIE_PORT) or []
    host["NetworkMode"] = "host"
    changed = {**config, "HostConfig": host}
    changed.pop("ExposedPorts", None)
    changed.pop("NetworkingConfig", None)
    entrypoint = list(config.get("Entrypoint") or [])
    if published and entrypoint and entrypoint[0].endswith("aws-lambda-rie"):
        address = f"{published[0].get('HostIp') or '127.0.0.1'}:{published[0]['HostPort']}"
        changed["Entrypoint"] = [entrypoint[0], "--runtime-interface-emulator-address", address,
                                 "--runtime-api-address", f"127.0.0.1:{free_port()}", *entrypoint[1:]]
    return changed


class _Reader:
    """Buffered reads from a socket: up to a delimiter, or a number of bytes."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buffer = b""

    def until(self, delimiter: bytes) -> bytes | None:
        while delimiter not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(delimiter)
        return head + delimiter

    def exactly(self, count: int) -> bytes:
        while len(self.buffer) < count:
            chunk = self.sock.recv(max(65536, count - len(self.buffer)))
            if not chunk:
                raise ConnectionError("the client closed mid-request")
            self.buffer += chunk
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data


def _pipe(source: socket.socket, target: socket.socket, first: bytes = b"") -> None:
    with contextlib.suppress(OSError):
        if first:
            target.sendall(first)
        while chunk := source.recv(65536):
            target.sendall(chunk)
    with contextlib.suppress(OSError):
        target.shutdown(socket.SHUT_WR)


def _headers(head: bytes) -> dict[bytes, bytes]:
    lines = head.split(b"\r\n")[1:]
    return {name.strip().lower(): value.strip() for name, _, value in (line.partition(b":") for line in lines) if name}


def _forward_body(reader: _Reader, daemon: socket.socket, headers: dict[bytes, bytes]) -> None:
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        while True:
            size_line = reader.until(b"\r\n")
            if size_line is None:
                raise ConnectionError("the client closed mid-request")
            size = int(size_line.split(b";")[0], 16)
            daemon.sendall(size_line + reader.exactly(size + 2))
            if size == 0:
                return
    elif length := int(headers.get(b"content-length", b"0")):
        daemon.sendall(reader.exactly(length))


def _serve(client: socket.socket, daemon_socket: str) -> None:
    daemon = socket.socket(socket.AF_UNIX)
    daemon.connect(daemon_socket)
    answers = threading.Thread(target=_pipe, args=(daemon, client), daemon=True)
    answers.start()
    reader = _Reader(client)
    try:
        while (head := reader.until(_HEAD_END)) is not None:
            headers = _headers(head)
            if _CREATE.match(head):
                body = json.dumps(host_networked(json.loads(reader.exactly(int(headers[b"content-length"]))))).encode()
                head = re.sub(rb"(?im)^content-length:.*$", b"Content-Length: %d" % len(body), head[:-4]) + _HEAD_END
                daemon.sendall(head + body)
                continue
            daemon.sendall(head)
            if b"upgrade" in headers:  # attach: from here on a raw stream both ways
                _pipe(client, daemon, reader.buffer)
                return
            _forward_body(reader, daemon, headers)
    except (OSError, ConnectionError, ValueError, KeyError):
        pass
    finally:
        with contextlib.suppress(OSError):
            daemon.shutdown(socket.SHUT_WR)
        answers.join(timeout=30)
        client.close()
        daemon.close()


class HostNetworkDocker:
    """Serves the endpoint on a Unix socket, in background threads, until closed."""

    def __init__(self, path: Path, daemon_socket: str = DOCKER_SOCKET):
        self.path = path
        self.daemon_socket = daemon_socket
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX)
        self._listener.bind(str(path))
        os.chmod(path, 0o600)
        self._listener.listen(64)
        self._thread = threading.Thread(target=self._accept, name="docker-host-network", daemon=True)
        self._thread.start()

    @property
    def docker_host(self) -> str:
        return f"unix://{self.path}"

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=_serve, args=(client, self.daemon_socket), daemon=True).start()

    def close(self) -> None:
        self._listener.close()
        self.path.unlink(missing_ok=True)
