"""TransactWriteItems as DynamoDB promises it: atomic (moto 5.2.5 undoes concurrent writes, docs/moto-bugs.md,
case 1) and idempotent by ClientRequestToken (moto ignores the token, case 4).

moto runs a transaction by writing item after item and, when one condition fails, restoring a deep
copy of every touched *table* taken at the start: a write another request committed in between is
lost (for the pipeline: a contact's claim vanished, so it could be claimed and emailed again). Here
every condition is checked first and the writes happen only when all hold, so nothing is rolled
back, and every DynamoDB backend operation runs under one lock, so no request sees a transaction
half applied. It changes nothing DynamoDB's API promises.
Test: tests/adapters/test_moto_patches.py::test_a_cancelled_transaction_never_undoes_a_concurrent_put

The token: a transaction that committed under a token answers the same request with the same token,
for 10 minutes, with success and applies nothing again (the retry of a request whose answer was lost);
the same token with a different request is IdempotentParameterMismatchException. Only committed
transactions are remembered: a cancelled one may be sent again. Checked and recorded under the same
lock as the transaction itself, so a retry racing its first request waits for it.
Test: tests/adapters/test_moto_patches.py::test_a_client_request_token_*
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import threading
import time
from collections import OrderedDict
from typing import Any

from localcloud.emulator.patches import motofast

_LOCK = threading.RLock()
SERIALISED_OPERATIONS = ("get_item", "put_item", "update_item", "delete_item", "query", "scan", "batch_get_item",
               "transact_get_items", "transact_write_items")


TOKEN_WINDOW_SECONDS = 600  # DynamoDB's idempotency window
_request = threading.local()  # the token and digest of the request this thread is serving
token_replays = 0  # requests answered from a token, not applied (the emulator's /_localcloud/faults says)


class _AlreadyCommitted(Exception):
    pass


def _with_client_request_token(handler: Any) -> Any:
    """moto's response handler, with the request's token handed to the backend (which holds the lock)."""
    @functools.wraps(handler)
    def transact_write_items(self: Any) -> Any:
        from moto.core.responses import ActionResult

        token = self.body.get("ClientRequestToken")
        other = {name: value for name, value in self.body.items() if name != "ClientRequestToken"}
        _request.token = (token, hashlib.sha256(json.dumps(other, sort_keys=True).encode()).hexdigest()) \
            if token else None
        try:
            return handler(self)
        except _AlreadyCommitted:
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        finally:
            _request.token = None
    return transact_write_items


def _committed_tokens(backend: Any) -> OrderedDict[str, tuple[str, float]]:
    """token -> (request digest, committed at), per account and region (a backend), oldest first."""
    if not hasattr(backend, "localcloud_tokens"):
        backend.localcloud_tokens = OrderedDict()
    tokens: OrderedDict[str, tuple[str, float]] = backend.localcloud_tokens
    expired = time.monotonic() - TOKEN_WINDOW_SECONDS
    while tokens and next(iter(tokens.values()))[1] < expired:
        tokens.popitem(last=False)
    return tokens


def _check_token(backend: Any) -> tuple[str, str] | None:
    """The request's (token, digest) if it must be remembered once committed; raises if already committed."""
    global token_replays
    from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException

    pending: tuple[str, str] | None = getattr(_request, "token", None)
    if pending is None:
        return None
    token, digest = pending
    committed = _committed_tokens(backend)
    if token in committed:
        if committed[token][0] != digest:
            raise DynamodbException(ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
                                    "Request with the same client token but different parameters")
        token_replays += 1
        raise _AlreadyCommitted
    return pending


def _atomic_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    pending_token = _check_token(self)
    _transact(self, transact_items)
    if pending_token is not None:
        _committed_tokens(self)[pending_token[0]] = (pending_token[1], time.monotonic())


def _transact(self: Any, transact_items: list[dict[str, Any]]) -> None:
    from moto.dynamodb.exceptions import TooManyTransactionsException, TransactionCanceledException

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned = _plan_transaction(self, transact_items)
    errors = [_condition_error(self, op, key) for _, op, key in planned]
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    # Every condition holds: apply. Keep the touched items in case an update expression is invalid
    # (a plain update or a put replaces attribute values, so a shallow copy of those items is enough).
    before = [(op["TableName"], key, _before_image(self.get_item(op["TableName"], key), op_type, op))
              for op_type, op, key in planned]
    try:
        for op_type, op, key in planned:
            _apply(self, op_type, op, key)
    except Exception:
        for table_name, key, item in before:
            if item is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, item.to_json()["Attributes"])
        raise


def _plan_transaction(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict]]:
    """(operation, its parameters, the item's key) for each item, validated as moto validates them."""
    from moto.dynamodb.exceptions import (
        MockValidationException,
        MultipleTransactionsException,
        TransactWriteSingleOpException,
    )

    seen: set[tuple[str, str]] = set()
    planned = []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
            raise MockValidationException("Unsupported transaction operation")
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        identity = (op["TableName"], str(dict(sorted(key.items()))))
        if identity in seen:
            raise MultipleTransactionsException()
        seen.add(identity)
        planned.append((op_type, op, key))
    return planned


def _condition_error(backend: Any, op: dict[str, Any], key: dict[str, Any]) -> tuple[Any, Any, Any]:
    """(code, message, old item) as TransactionCanceledException reports each item; all None if it holds."""
    current = backend.get_item(op["TableName"], key)
    if motofast.condition_holds(op.get("ConditionExpression"), op.get("ExpressionAttributeNames"),
                                op.get("ExpressionAttributeValues"), current):
        return None, None, None
    old = current.to_json()["Attributes"] if (
        current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD") else None
    return "ConditionalCheckFailed", "The conditional request failed", old


def _apply(backend: Any, op_type: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                         expression_attribute_values=values)
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key)
    elif op_type == "Update":
        backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                            expression_attribute_names=names, expression_attribute_values=values)


def _before_image(item: Any, op_type: str, op: dict[str, Any]) -> Any:
    if item is None:
        return None
    if op_type == "Update" and motofast.compile_update(op["UpdateExpression"]) is None:
        return copy.deepcopy(item)
    image = copy.copy(item)
    image.attrs = dict(item.attrs)  # read back with to_json() only
    return image


def serialised(method: Any) -> Any:
    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)
    return run


def apply() -> None:
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    DynamoHandler.transact_write_items = _with_client_request_token(  # type: ignore[method-assign]
        DynamoHandler.transact_write_items)
    DynamoDBBackend.transact_write_items = _atomic_transact_write_items  # type: ignore[method-assign]
    for name in SERIALISED_OPERATIONS:
        setattr(DynamoDBBackend, name, serialised(getattr(DynamoDBBackend, name)))
