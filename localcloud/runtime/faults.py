"""Transient AWS errors injected into the functions' requests, to prove nothing is lost or doubled.

With a rate above zero, that share of the requests the functions make (S3, SQS, DynamoDB, Logs)
is answered locally with HTTP 503 instead of being sent: the error botocore's standard retry mode
retries with backoff. The choice is deterministic, so a run always exercises every operation:
with rate 1/N, the 1st, (N+1)th, (2N+1)th... call of each operation in each worker fails.
The application code has no retry loops of its own for these; this checks that it needs none.
"""

from __future__ import annotations

from typing import Any

from botocore.awsrequest import AWSResponse, HTTPHeaders


class _EmptyBody:
    def stream(self, **_: Any) -> Any:
        yield b""


class FaultInjector:
    def __init__(self, rate: float):
        self.rate = rate
        self._every = max(1, round(1 / rate)) if rate > 0 else 0
        self._calls: dict[str, int] = {}
        self.injected: dict[str, int] = {}

    def install(self, session: Any) -> None:
        if self.rate > 0:
            session.events.register("before-send", self._maybe_fail)

    def _maybe_fail(self, request: Any, event_name: str, **_: Any) -> AWSResponse | None:
        operation = ".".join(event_name.split(".")[1:3])
        calls = self._calls.get(operation, 0)
        self._calls[operation] = calls + 1
        if calls % self._every:
            return None
        self.injected[operation] = self.injected.get(operation, 0) + 1
        return AWSResponse(request.url, 503, HTTPHeaders(), _EmptyBody())

    def take(self) -> dict[str, int]:
        injected, self.injected = self.injected, {}
        return injected
