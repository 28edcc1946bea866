"""Makes moto's DynamoDB transactions atomic under concurrency, as DynamoDB's are.

moto (5.2) runs TransactWriteItems by writing item after item and, when one condition fails,
restoring a deep copy of every touched *table* taken at the start. Two requests served at once
by the threaded server then lose writes: a cancelled transaction puts back a copy that predates
a concurrent, committed one (seen here as a claim that vanished). The deep copy also costs time
in proportion to the table's size on every transaction.

The replacement checks every condition first and writes only when all hold, so nothing needs
rolling back, and every DynamoDB backend operation runs under one lock, so no request sees a
transaction half applied. It changes nothing that DynamoDB's API promises.

`apply` also installs the fast paths of `localcloud.motofast` (plain conditions and updates) and
fixes for costs profiling found on every request: update expressions are parsed once per string;
an SQS queue's attributes are computed one by one as asked for (moto 5.2 counts every message in
the queue, three times, to look up one attribute for each message sent or received); a backend
that exists is returned without the registry scan moto makes on every look-up; moto's list of its
own services is read from disk once; a table's sorted items are kept between the pages of a scan.
And two fixes of behaviour: SQS long polls end when a delayed message matures, as SQS's do, and
SQS deletes take the queue's lock (concurrent deletes brought messages back; a concurrent send
could be lost).
"""

from __future__ import annotations

import copy
import functools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from typing import Any

from localcloud.emulator.patches import motofast

_LOCK = threading.RLock()
_SERIALISED = ("get_item", "put_item", "update_item", "delete_item", "query", "scan", "batch_get_item",
               "transact_get_items", "transact_write_items")
_applied = False


def _atomic_transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
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


def _update_item(original: Any) -> Any:
    @functools.wraps(original)
    def update_item(self: Any, table_name: str, key: dict[str, Any], update_expression: str,
                    expression_attribute_names: dict[str, Any], expression_attribute_values: dict[str, Any],
                    *args: Any, **kwargs: Any) -> Any:
        updated = motofast.fast_update_item(self, table_name, key, update_expression, expression_attribute_names,
                                            expression_attribute_values, *args, **kwargs)
        if updated is not None:
            return updated
        return original(self, table_name, key, update_expression, expression_attribute_names,
                        expression_attribute_values, *args, **kwargs)
    return update_item


class _QueueAttributes(Mapping[str, Any]):
    """moto's `Queue.attributes`, each value computed when read (the message counts cost O(queue)):
    the same names, the same values, and the same conversions as moto's property."""

    def __init__(self, queue: Any):
        self._queue = queue

    def _names(self) -> list[str]:
        queue = self._queue
        names = list(queue.BASE_ATTRIBUTES)
        names += queue.FIFO_ATTRIBUTES if queue.fifo_queue else []
        names += queue.KMS_ATTRIBUTES if queue.kms_master_key_id else []
        names += ["Policy"] if queue.policy else []
        names += ["RedrivePolicy"] if queue.redrive_policy else []
        return names

    def __getitem__(self, key: str) -> Any:
        from moto.core.utils import camelcase_to_underscores

        if key not in self._names():
            raise KeyError(key)
        if key == "Policy":
            return self._queue.policy
        if key == "RedrivePolicy":
            return json.dumps(self._queue.redrive_policy)
        value = getattr(self._queue, camelcase_to_underscores(key))
        return str(value).lower() if isinstance(value, bool) else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())


def _wait_for_messages(self: Any, timeout: int) -> None:
    """SQS long polling: return as soon as a message is receivable. moto waits for a notification
    that a delayed message's maturing never sends, so a long poll over a retry sat out its timeout."""
    deadline = time.monotonic() + timeout
    with self._messages_lock:
        while not self.messages and (left := deadline - time.monotonic()) > 0:
            self._messages_lock.wait(min(left, 0.05))


def _under_queue_lock(original: Any) -> Any:
    """moto's `Queue.delete_message` rebuilds the message list without the queue's lock: a message
    added meanwhile (a retry) was lost, and of two messages deleted at once one came back after its
    visibility timeout (seen as 25 messages redelivered 360 s late in a 100k run)."""
    @functools.wraps(original)
    def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
        with self._messages_lock:
            return original(self, *args, **kwargs)
    return locked


def _counting_writes(original: Any) -> Any:
    @functools.wraps(original)
    def write(self: Any, *args: Any, **kwargs: Any) -> Any:
        self.localcloud_version = getattr(self, "localcloud_version", 0) + 1
        return original(self, *args, **kwargs)
    return write


def _sorted_once(original: Any) -> Any:
    """moto sorts every item of a table for each page of a Scan (quadratic over a paginated scan of
    a large table: reading a 100k-item outbox took minutes). The sorted list is kept until an item
    is put or deleted; updates change items in place, and the list holds the items themselves."""
    @functools.wraps(original)
    def all_items(self: Any) -> Any:
        version = getattr(self, "localcloud_version", 0)
        cached = getattr(self, "localcloud_sorted", None)
        if cached is None or cached[0] != version:
            cached = (version, original(self))
            self.localcloud_sorted = cached
        return list(cached[1])
    return all_items


def _existing_backend_first(original: Any) -> Any:
    @functools.wraps(original)
    def getitem(self: Any, account_id: str) -> Any:
        # moto's own look-up scans its registry of backends (a list compared by equality) every time.
        if dict.__contains__(self, account_id):
            return dict.__getitem__(self, account_id)
        return original(self, account_id)
    return getitem


def _serialised(method: Any) -> Any:
    @functools.wraps(method)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return method(*args, **kwargs)
    return run


def apply() -> None:
    """Patch moto in this process (the server's, or mock_aws's in tests); see the module docstring."""
    global _applied
    if _applied:
        return
    from moto import backends
    from moto.core.base_backend import BackendDict
    from moto.dynamodb import responses as dynamodb_responses
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
    from moto.sqs.models import Queue

    DynamoDBBackend.transact_write_items = _atomic_transact_write_items  # type: ignore[method-assign]
    DynamoDBBackend.update_item = _update_item(DynamoDBBackend.update_item)  # type: ignore[method-assign]
    for name in _SERIALISED:
        setattr(DynamoDBBackend, name, _serialised(getattr(DynamoDBBackend, name)))
    Item.__init__ = motofast.item_init  # type: ignore[method-assign]
    Table.put_item = _counting_writes(Table.put_item)  # type: ignore[method-assign]
    Table.delete_item = _counting_writes(Table.delete_item)  # type: ignore[method-assign]
    Table.all_items = _sorted_once(Table.all_items)  # type: ignore[method-assign]
    dynamodb_responses.create_condition_expression_parser = motofast.ValidatingConditionParser  # type: ignore[assignment]
    dynamodb_responses.DynamoHandler.parse_parameters = motofast.json_parameters(  # type: ignore[method-assign,assignment]
        dynamodb_responses.DynamoHandler.parse_parameters)
    # The parsed tree is only read (moto's validator works on a deep copy of it).
    UpdateExpressionParser.make = classmethod(  # type: ignore[method-assign]
        functools.lru_cache(maxsize=512)(UpdateExpressionParser.make.__func__))  # type: ignore[arg-type]
    Queue.wait_for_messages = _wait_for_messages  # type: ignore[method-assign]
    Queue.delete_message = _under_queue_lock(Queue.delete_message)  # type: ignore[method-assign]
    Queue.attributes = property(_QueueAttributes)  # type: ignore[method-assign,assignment]
    BackendDict.__getitem__ = _existing_backend_first(BackendDict.__getitem__)  # type: ignore[method-assign]
    moto_modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: moto_modules
    _applied = True
