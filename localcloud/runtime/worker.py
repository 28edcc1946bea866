"""One Lambda execution environment: a process with the function's environment and module state.

Like a Lambda sandbox it runs one invocation at a time, keeps its module state warm between
invocations, and is thrown away (killed) when an invocation times out.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import resource
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from localcloud.runtime.zygote import name_this_process


class _Capture(io.TextIOBase):
    """Stands in for stdout and stderr; loggers that bind the stream at import keep writing here."""

    def __init__(self) -> None:
        self._parts: list[str] = []

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def take(self) -> str:
        text, self._parts = "".join(self._parts), []
        return text


@dataclass
class LambdaContext:
    function_name: str
    function_version: str
    invoked_function_arn: str
    memory_limit_in_mb: int
    aws_request_id: str
    log_group_name: str
    log_stream_name: str
    deadline: float

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def _error_payload(error: BaseException) -> dict[str, Any]:
    return {"errorMessage": str(error), "errorType": type(error).__name__,
            "stackTrace": traceback.format_tb(error.__traceback__)}


def touched(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(operation, resource) pairs a request touches: a table, a queue's name, bucket/key, a secret, an identity.
    A transaction or a batch touches each of its tables with its own operation."""
    if operation == "TransactWriteItems":
        return [(f"{kind}Item", body["TableName"])  # Put -> PutItem, ConditionCheck -> ConditionCheckItem...
                for item in params.get("TransactItems", []) for kind, body in item.items()]
    if operation == "BatchWriteItem":
        return [(operation, table) for table in params.get("RequestItems", {})]
    if "TableName" in params:
        return [(operation, params["TableName"])]
    if "QueueUrl" in params:
        return [(operation, params["QueueUrl"].rstrip("/").rsplit("/", 1)[-1])]
    if "Bucket" in params:
        pairs = [(operation, f"{params['Bucket']}/{params.get('Key', '')}")]
        source = params.get("CopySource")
        if isinstance(source, dict):
            pairs.append(("GetObject", f"{source['Bucket']}/{source['Key']}"))
        return pairs
    if "SecretId" in params:
        return [(operation, params["SecretId"])]
    if "FromEmailAddress" in params:
        return [(operation, params["FromEmailAddress"])]
    return [(operation, "")]


class _RequestCounter:
    """Counts AWS requests by service and operation, through botocore's own events, and remembers which resources
    they touched (tests check those against the function's role)."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.resources: set[tuple[str, str, str]] = set()  # (service, operation, resource)
        self._lock = threading.Lock()

    def install(self) -> None:
        import boto3

        if boto3.DEFAULT_SESSION is None:  # a fork of localcloud.runtime.zygote has one, with its models loaded
            boto3.setup_default_session()
        events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        events.register("before-call.*.*", self._count)
        events.register("before-parameter-build.*.*", self._touch)
        # DynamoDB bills by item written: count the items of batched writes too ("...:items").
        events.register("before-parameter-build.dynamodb.TransactWriteItems", self._count_items)
        events.register("before-parameter-build.dynamodb.BatchWriteItem", self._count_items)

    def _add(self, name: str, count: int) -> None:
        with self._lock:
            self.counts[name] = self.counts.get(name, 0) + count

    def _count(self, model: Any, **_: Any) -> None:
        self._add(f"{model.service_model.service_name}.{model.name}", 1)

    def _touch(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        service = model.service_model.service_name
        with self._lock:
            self.resources.update((service, operation, resource) for operation, resource in touched(model.name, params))

    def _count_items(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            items = len(params.get("TransactItems", []))
        else:
            items = sum(len(requests) for requests in params.get("RequestItems", {}).values())
        self._add(f"dynamodb.{model.name}:items", items)

    def take(self) -> dict[str, int]:
        with self._lock:
            counts, self.counts = self.counts, {}
        return counts

    def take_resources(self) -> list[tuple[str, str, str]]:
        with self._lock:
            resources, self.resources = self.resources, set()
        return sorted(resources)


def serve(connection: Connection, handler: str, code_dir: str, environment: dict[str, str]) -> None:
    os.environ.clear()  # a Lambda sandbox sees only its own environment
    os.environ.update(environment)
    sys.path.insert(0, code_dir)
    requests = _RequestCounter()
    requests.install()  # before the handler's module makes its clients
    capture = _Capture()
    sys.stdout = sys.stderr = capture
    started = time.perf_counter()
    init_error: dict[str, Any] | None = None
    function = None
    try:
        module_name, _, attribute = handler.rpartition(".")
        function = getattr(importlib.import_module(module_name), attribute)
    except Exception as error:  # noqa: BLE001 - reported like Lambda's Runtime.ImportModuleError
        init_error = _error_payload(error)
        print(json.dumps(init_error))
    init_ms = (time.perf_counter() - started) * 1000
    connection.send({"ready": True})
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        context = LambdaContext(**request["context"])
        started = time.perf_counter()
        response, failed = None, init_error
        if function is not None:
            try:
                response = function(request["event"], context)
            except Exception as failure:  # noqa: BLE001 - the runtime reports it as the invocation's error
                failed = _error_payload(failure)
                print(json.dumps({"level": "ERROR", **failed}))
        connection.send({
            "response": response, "error": failed, "log": capture.take(), "aws_requests": requests.take(),
            "aws_resources": requests.take_resources(),
            "duration_ms": (time.perf_counter() - started) * 1000,
            "init_ms": init_ms, "max_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024})
        init_ms = 0.0


def run(fd: int) -> None:
    """Serve on FD, this end of a socket pair; the first message says what to run."""
    connection = Connection(fd)
    setup = connection.recv()
    if setup.get("process_name"):
        name_this_process(setup["process_name"])
    serve(connection, setup["handler"], setup["code_dir"], setup["environment"])


def main() -> None:
    """`python -m localcloud.runtime.worker FD` (environments are usually forks of the zygote instead)."""
    run(int(sys.argv[1]))


if __name__ == "__main__":
    main()
