"""Faults where networks lose answers, injected at the emulator's door, per service and operation.

A retry is a second request, and the first one may well have acted: the hard faults are those that
happen *after* the service acted. The emulator can, at a seeded rate:

- `lost-answer`: act, then close the connection without answering (the client sees it dropped);
- `slow-answer`: act, then answer after `delay` seconds (past the client's read timeout, a lost answer too);
- `error-after`: act, then answer 500 InternalFailure;
- `refuse`: answer 503 ServiceUnavailable without acting.

A plan is a comma-separated list of `TARGET=KIND:RATE[:delay=SECONDS][:times=N]`, where TARGET is
`service.Operation` (botocore's names: `sesv2.SendEmail`, `dynamodb.TransactWriteItems`), `service.*`
or `*`; and optionally `seed=N` and `from=anyone`. By default only requests made by Lambda functions
(botocore's `exec-env/AWS_Lambda` user agent) are touched: the functions' network is what is tested, not
the CLI's or the runtime's. Example:

    sesv2.SendEmail=lost-answer:0.05,dynamodb.TransactWriteItems=lost-answer:0.05,seed=7

Set it with `localcloud up --faults PLAN` (or `run`), `LOCALCLOUD_FAULTS` when the emulator starts, or
`PUT /_localcloud/faults`; `GET /_localcloud/faults` lists every fault injected (docs/reliability.md).
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import Any

FAULTS_PATH = "/_localcloud/faults"
LAMBDA_USER_AGENT = "exec-env/AWS_Lambda"
MOST_RECORDS = 20_000
SLOW_SECONDS = 10.0  # an answer the emulator itself took this long over is noted in the report


class FaultKind(StrEnum):
    LOST_ANSWER = "lost-answer"
    SLOW_ANSWER = "slow-answer"
    ERROR_AFTER = "error-after"
    REFUSE = "refuse"


class FaultPlanError(ValueError):
    pass


@dataclass(frozen=True)
class FaultRule:
    target: str  # service.Operation, service.* or *
    kind: FaultKind
    rate: float
    delay: float = 0.0
    times: int | None = None  # at most this many faults from this rule

    def matches(self, service: str, operation: str) -> bool:
        return self.target in ("*", f"{service}.*", f"{service}.{operation}")

    def __str__(self) -> str:
        text = f"{self.target}={self.kind}:{self.rate:g}"
        text += f":delay={self.delay:g}" if self.delay else ""
        return text + (f":times={self.times}" if self.times is not None else "")


@dataclass(frozen=True)
class FaultPlan:
    rules: tuple[FaultRule, ...] = ()
    seed: int = 0
    from_anyone: bool = False

    @classmethod
    def parse(cls, spec: str) -> FaultPlan:
        rules, seed, from_anyone = [], 0, False
        for item in filter(None, (part.strip() for part in spec.split(","))):
            target, equals, value = item.partition("=")
            if not equals:
                raise FaultPlanError(f"{item!r}: expected TARGET=KIND:RATE, e.g. sesv2.SendEmail=lost-answer:0.05")
            if target == "seed":
                seed = _number(item, value, int)
            elif target == "from":
                if value not in ("anyone", "functions"):
                    raise FaultPlanError(f"{item!r}: from=functions (the default) or from=anyone")
                from_anyone = value == "anyone"
            else:
                rules.append(_rule(target, value, item))
        return cls(tuple(rules), seed, from_anyone)

    def __str__(self) -> str:
        extras = [f"seed={self.seed}"] if self.seed else []
        return ",".join([*map(str, self.rules), *extras, *(["from=anyone"] if self.from_anyone else [])])


def _number[N: (int, float)](item: str, text: str, kind: type[N]) -> N:
    try:
        return kind(text)
    except ValueError:
        raise FaultPlanError(f"{item!r}: {text!r} is not a number") from None


def _rule(target: str, value: str, item: str) -> FaultRule:
    if not re.fullmatch(r"\*|[a-z0-9-]+\.(\*|[A-Za-z0-9]+)", target):
        raise FaultPlanError(f"{item!r}: the target is service.Operation, service.* or *")
    kind_text, *rest = value.split(":")
    try:
        kind = FaultKind(kind_text)
    except ValueError:
        raise FaultPlanError(f"{item!r}: the kind is one of {', '.join(FaultKind)}") from None
    if not rest:
        raise FaultPlanError(f"{item!r}: a rate is needed, e.g. {kind}:0.05")
    rate = _number(item, rest[0], float)
    options = dict(option.partition("=")[::2] for option in rest[1:])
    if unknown := set(options) - {"delay", "times"}:
        raise FaultPlanError(f"{item!r}: unknown option {sorted(unknown)[0]!r} (delay=SECONDS, times=N)")
    delay = _number(item, options.get("delay", "0"), float)
    if not 0 <= rate <= 1 or delay < 0:
        raise FaultPlanError(f"{item!r}: the rate is between 0 and 1, the delay not negative")
    if kind is FaultKind.SLOW_ANSWER and not delay:
        raise FaultPlanError(f"{item!r}: slow-answer needs a delay, e.g. slow-answer:0.05:delay=20")
    times = _number(item, options["times"], int) if "times" in options else None
    return FaultRule(target, kind, rate, delay, times)


@dataclass
class InjectedFault:
    number: int
    at: float  # time.time()
    target: str
    kind: FaultKind
    status: int  # what the service answered (0 when refused before it acted)
    answer: str  # the start of that answer, to tell which request it was (an SES MessageId, say)


@dataclass
class FaultInjector:
    """WSGI middleware in front of the emulator's AWS APIs."""

    app: Callable[..., Iterable[bytes]]
    plan: FaultPlan = field(default_factory=FaultPlan)
    injected: list[InjectedFault] = field(default_factory=list)
    slow: list[dict[str, Any]] = field(default_factory=list)  # answers that took SLOW_SECONDS or more
    _seen: Counter[str] = field(default_factory=Counter)
    _fired: Counter[FaultRule] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set_plan(self, plan: FaultPlan) -> None:
        with self._lock:
            self.plan, self._seen, self._fired, self.injected, self.slow = plan, Counter(), Counter(), [], []

    def report(self) -> dict[str, Any]:
        from localcloud.emulator.patches import atomic_transactions

        with self._lock:
            injected = list(self.injected)
        return {"plan": str(self.plan), "injected": [{**vars(fault), "kind": str(fault.kind)} for fault in injected],
                "counts": Counter(f"{fault.target} {fault.kind}" for fault in injected), "slow": list(self.slow),
                "dynamodb_token_replays": atomic_transactions.token_replays}

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        plan = self.plan
        if not plan.rules or not (plan.from_anyone or LAMBDA_USER_AGENT in environ.get("HTTP_USER_AGENT", "")):
            return self._timed(environ, start_response)
        found = operation_of(environ)
        rule = self._draw(plan, *found) if found else None
        if rule is None or found is None:
            return self._timed(environ, start_response)
        target = f"{found[0]}.{found[1]}"
        if rule.kind is FaultKind.REFUSE:
            _drain(environ)
            self._record(target, rule.kind, 0, b"")
            return _error(start_response, environ, 503, "ServiceUnavailable", "refused by the local cloud's faults")
        status, headers, body = _act(self.app, environ)
        self._record(target, rule.kind, int(status.split()[0]), body)
        if rule.kind is FaultKind.ERROR_AFTER:
            return _error(start_response, environ, 500, "InternalFailure", "acted, then failed (local cloud faults)")
        if rule.kind is FaultKind.LOST_ANSWER:
            # The request acted; now the connection goes without a word. Writing the answer then fails, which
            # the server takes for a client that went away.
            connection: socket.socket = environ["werkzeug.socket"]
            connection.shutdown(socket.SHUT_RDWR)
        else:
            time.sleep(rule.delay)
        start_response(status, headers)
        return [body]

    def _timed(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """The request served as it is; one the emulator itself took long over is noted (a client may have
        given up on it: a lost answer nobody injected)."""
        started = time.monotonic()
        answer = self.app(environ, start_response)
        if (seconds := time.monotonic() - started) >= SLOW_SECONDS:
            found = operation_of(environ)
            with self._lock:
                if len(self.slow) < MOST_RECORDS:
                    self.slow.append({"at": time.time(), "target": ".".join(found) if found else "?",
                                      "seconds": round(seconds, 1),
                                      "answer": b"".join(answer)[:500].decode(errors="replace")
                                      if isinstance(answer, list) else ""})
        return answer

    def _draw(self, plan: FaultPlan, service: str, operation: str) -> FaultRule | None:
        rule = next((r for r in plan.rules if r.matches(service, operation)), None)
        if rule is None:
            return None
        with self._lock:
            if plan is not self.plan or (rule.times is not None and self._fired[rule] >= rule.times):
                return None
            number = self._seen[rule.target]
            self._seen[rule.target] += 1
            digest = hashlib.blake2b(f"{plan.seed}|{service}.{operation}|{number}".encode(), digest_size=8).digest()
            if int.from_bytes(digest) / 2**64 >= rule.rate:
                return None
            self._fired[rule] += 1
            return rule

    def _record(self, target: str, kind: FaultKind, status: int, body: bytes) -> None:
        with self._lock:
            if len(self.injected) < MOST_RECORDS:
                self.injected.append(InjectedFault(len(self.injected) + 1, time.time(), target, kind, status,
                                                   body[:500].decode(errors="replace")))


def _act(app: Callable[..., Iterable[bytes]], environ: dict[str, Any]) -> tuple[str, list[tuple[str, str]], bytes]:
    answered: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
        answered[:] = [status, headers]
        return lambda data: None

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    return answered[0], answered[1], body


def _drain(environ: dict[str, Any]) -> None:
    """Read the request body, so that a kept-alive connection is not left mid-request."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length > 0:
        environ["wsgi.input"].read(length)


def _error(start_response: Callable[..., Any], environ: dict[str, Any], status: int, code: str,
           message: str) -> Iterable[bytes]:
    if environ.get("HTTP_X_AMZ_TARGET") or environ.get("PATH_INFO", "").startswith(("/v2/", "/2015-03-31/")):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-ErrorType", code)]
    else:
        body = f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode()
        headers = [("Content-Type", "application/xml")]
    reason = {500: "Internal Server Error", 503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [*headers, ("Content-Length", str(len(body)))])
    return [body]


# -- which operation a request is --------------------------------------------------------------------


_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def operation_of(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(botocore service name, operation name) of an AWS request, None for anything else."""
    scope = _CREDENTIAL_SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    if scope is None:
        return None
    service, path = scope.group(1), environ.get("PATH_INFO", "")
    if service == "ses" and path.startswith("/v2/"):
        service = "sesv2"  # SES v1 and v2 sign with the same name
    if target := environ.get("HTTP_X_AMZ_TARGET"):
        return service, target.rsplit(".", 1)[-1]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
    if action := query.get("Action") or _form_action(environ):
        return service, action[0]
    headers = {name[5:].replace("_", "-").lower() for name in environ if name.startswith("HTTP_")}
    operation = _rest_operation(service, environ.get("REQUEST_METHOD", ""), path, set(query), headers)
    return (service, operation) if operation else None


def _form_action(environ: dict[str, Any]) -> list[str]:
    """The Action of a query-protocol POST; the body is read and put back for the service."""
    if not environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        return []
    import io

    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    environ["wsgi.input"] = io.BytesIO(body)
    return urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", [])


@dataclass(frozen=True)
class _Route:
    method: str
    path: re.Pattern[str]
    query: frozenset[str]  # query keys the operation requires
    headers: frozenset[str]  # headers it requires (lower case)
    literal: int  # characters of its path that are not placeholders (more: more specific)
    operation: str


_ROUTES_LOCK = threading.Lock()


def _routes(service: str) -> tuple[_Route, ...]:
    """Built once per service: reading a model takes a while, and a hundred requests may ask at once."""
    with _ROUTES_LOCK:
        return _built_routes(service)


@cache
def _built_routes(service: str) -> tuple[_Route, ...]:
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:  # noqa: BLE001 - a service botocore does not know: nothing to match
        return ()
    routes = []
    for name in model.operation_names:
        operation = model.operation_model(name)
        http = operation.http
        path, _, query = http.get("requestUri", "/").partition("?")
        pattern = re.sub(r"\\\{[^}]+?\\\+\\\}", ".+", re.escape(path))
        pattern = re.sub(r"\\\{[^}]+?\\\}", "[^/]+", pattern)
        keys = {key.partition("=")[0] for key in query.split("&") if key and not key.startswith("x-id")}
        shape = operation.input_shape
        members = shape.members.items() if shape is not None else ()
        needed = set(shape.required_members) if shape is not None else set()
        required = [(member.serialization.get("location"), member.serialization.get("name", name))
                    for name, member in members if name in needed]
        keys |= {key for location, key in required if location == "querystring"}
        headers = frozenset(key.lower() for location, key in required if location == "header")
        routes.append(_Route(http.get("method", "POST"), re.compile(pattern.rstrip("/") + "/?"), frozenset(keys),
                             headers, len(re.sub(r"\{[^}]+\}", "", path)), name))
    return tuple(routes)


def _rest_operation(service: str, method: str, path: str, query: set[str], headers: set[str]) -> str | None:
    candidates = [route for route in _routes(service) if route.method == method and route.query <= query
                  and route.headers <= headers and route.path.fullmatch(path)]
    if not candidates:
        return None
    return max(candidates, key=lambda route: (len(route.query), len(route.headers), route.literal)).operation
