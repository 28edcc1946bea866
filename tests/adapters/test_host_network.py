"""The Docker endpoint for `sam local invoke`: containers get host networking; every other request passes through."""

from __future__ import annotations

import json
import socket
import threading

from localcloud.image.host_network import HostNetworkDocker, host_networked

SAM_CREATE = {
    "Image": "public.ecr.aws/lambda/python:3.13-rapid-x86_64", "Cmd": ["send_email.app.lambda_handler"],
    "Entrypoint": ["/var/rapid/aws-lambda-rie", "--log-level", "error"],
    "ExposedPorts": {"8080/tcp": {}},
    "HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5432"}]},
                   "Binds": ["/tmp/build:/var/task:ro,delegated"]},
}


def test_a_sam_container_gets_host_networking_and_its_emulator_listens_where_sam_would_have_published_it():
    changed = host_networked(SAM_CREATE, free_port=lambda: 6000)
    assert changed["HostConfig"] == {"NetworkMode": "host", "Binds": ["/tmp/build:/var/task:ro,delegated"]}
    assert "ExposedPorts" not in changed
    assert changed["Entrypoint"] == ["/var/rapid/aws-lambda-rie",
                                     "--runtime-interface-emulator-address", "127.0.0.1:5432",
                                     "--runtime-api-address", "127.0.0.1:6000", "--log-level", "error"]
    assert changed["Cmd"] == SAM_CREATE["Cmd"]


def test_any_other_container_gets_host_networking_and_keeps_its_entrypoint():
    changed = host_networked({"Image": "x", "Entrypoint": ["/bin/sh"], "HostConfig": {"NetworkMode": "bridge"}})
    assert changed["HostConfig"]["NetworkMode"] == "host" and changed["Entrypoint"] == ["/bin/sh"]


class RecordingDaemon:
    """A stand-in for dockerd on a Unix socket: records each request, answers 200 with the body's length."""

    def __init__(self, path):
        self.requests: list[tuple[bytes, bytes]] = []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen(4)
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        connection, _ = self.server.accept()
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length")), b"0"))
            if b"chunked" in head.lower():
                while b"0\r\n\r\n" not in buffer:  # the body may come in later packets than the head
                    buffer += connection.recv(65536)
                end = buffer.index(b"0\r\n\r\n") + 5
                body, buffer = buffer[:end], buffer[end:]
            else:
                while len(buffer) < length:
                    buffer += connection.recv(65536)
                body, buffer = buffer[:length], buffer[length:]
            self.requests.append((head, body))
            answer = b'{"ok":%d}' % len(body)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(answer) + answer)


def request(sock, data: bytes) -> bytes:
    sock.sendall(data)
    answer = b""
    while b'"ok"' not in answer or not answer.endswith(b"}"):
        answer += sock.recv(65536)
    return answer


def test_requests_on_one_connection_pass_through_and_only_container_creation_is_changed(tmp_path):
    # Given the endpoint in front of a daemon
    daemon = RecordingDaemon(tmp_path / "dockerd.sock")
    endpoint = HostNetworkDocker(tmp_path / "docker.sock", daemon_socket=str(tmp_path / "dockerd.sock"))
    client = socket.socket(socket.AF_UNIX)
    client.connect(str(tmp_path / "docker.sock"))
    # When a client sends, on one kept-alive connection, a ping, a chunked upload and a container creation
    request(client, b"GET /_ping HTTP/1.1\r\nHost: docker\r\n\r\n")
    request(client, b"POST /v1.41/build HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    body = json.dumps(SAM_CREATE).encode()
    request(client, b"POST /v1.41/containers/create HTTP/1.1\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n" % len(body) + body)
    client.close()
    endpoint.close()
    # Then the daemon saw the first two as sent, and the creation with host networking, its length corrected
    (ping_head, ping_body), (build_head, build_body), (create_head, create_body) = daemon.requests
    assert ping_head.startswith(b"GET /_ping") and ping_body == b""
    assert build_head.startswith(b"POST /v1.41/build") and build_body == b"5\r\nhello\r\n0\r\n\r\n"
    created = json.loads(create_body)
    assert created["HostConfig"]["NetworkMode"] == "host"
    assert b"Content-Length: %d" % len(create_body) in create_head
