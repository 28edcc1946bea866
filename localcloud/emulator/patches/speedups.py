"""Costs profiling found on every request of moto 5.2.5's server; none changes an answer.

- update expressions parsed once per string, and plain updates and conditions compiled once
  (`motofast`, parity-tested in test_moto_patches.py: every case run with and without the fast paths);
- an SQS queue's attributes computed one by one as read (moto counts every message in the queue,
  three times, for each attribute of each message sent or received); test:
  test_queue_attributes_read_lazily_are_the_attributes_moto_computes;
- a table's sorted items kept between the pages of a Scan until an item is put or deleted (reading
  a 100k-item outbox took minutes); test: test_a_paginated_scan_sees_every_put_delete_and_update_between_its_pages;
- a backend that exists is returned without moto's registry scan; moto's list of its own services
  read from disk once; a response class's method names listed once (moto runs `inspect.getmembers`
  on the class for every request: 3.7% of the server's busy time in a 10k benchmark run).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping
from typing import Any

from localcloud.emulator.patches import motofast


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


def apply() -> None:
    from moto import backends
    from moto.core import responses as core_responses
    from moto.core.base_backend import BackendDict
    from moto.dynamodb import responses as dynamodb_responses
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser  # type: ignore[attr-defined]
    from moto.sqs.models import Queue

    DynamoDBBackend.update_item = _update_item(DynamoDBBackend.update_item)  # type: ignore[method-assign]
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
    Queue.attributes = property(_QueueAttributes)  # type: ignore[method-assign,assignment]
    BackendDict.__getitem__ = _existing_backend_first(BackendDict.__getitem__)  # type: ignore[method-assign]
    moto_modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: moto_modules
    # Response classes are defined at import and never change: their method names are listed once.
    method_names = core_responses.method_names_from_class
    core_responses.method_names_from_class = functools.cache(  # type: ignore[assignment]
        lambda clazz: frozenset(method_names(clazz)))
