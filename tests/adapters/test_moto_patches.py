"""The local cloud's DynamoDB fast paths answer exactly as moto's own code does.

Every case runs twice on identical tables - once with the fast paths, once with moto only - and
the outcome (the error code and message, or success) and the item left behind must be the same.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud.emulator.patches import motofast

ITEM = {"email": {"S": "ann@example.com"}, "state": {"S": "CLAIMED"}, "token": {"S": "t1"},
        "attempt": {"N": "1"}, "carrier": {"S": "m1"}, "lease_until": {"N": "100.000"}, "sent": {"N": "4"},
        "unsent": {"BOOL": True}, "name": {"S": "Ann"}}
NAMES = {"#state": "state", "#token": "token"}
HOLDS = "#state = :claimed AND #token = :token AND attempt = :attempt"
VALUES = {":claimed": {"S": "CLAIMED"}, ":token": {"S": "t1"}, ":attempt": {"N": "1"}}


def _outcome(call: Callable[[], Any]) -> tuple[str, str] | None:
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"], error.response["Error"].get("Message", "")
    except Exception as error:
        return type(error).__name__, str(error)
    return None


def _both_ways(case: Callable[[Any, str], Any]) -> list[tuple[tuple[str, str] | None, dict | None]]:
    """Run `case(client, table)` with the fast paths and with moto only; (outcome, item) of each."""
    results = []
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        for table, moto_only in (("fast", False), ("moto", True)):
            client.create_table(TableName=table, KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
                                AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
                                BillingMode="PAY_PER_REQUEST")
            client.put_item(TableName=table, Item=ITEM)
            if moto_only:
                with motofast.moto_only():
                    outcome = _outcome(lambda t=table: case(client, t))
            else:
                outcome = _outcome(lambda t=table: case(client, t))
            item = client.get_item(TableName=table, Key={"email": ITEM["email"]}).get("Item")
            results.append((outcome, item))
    return results


def _update(expression: str, condition: str | None = None, names: dict | None = None,
            values: dict | None = None, email: str = "ann@example.com", **extra: Any) -> Callable[[Any, str], Any]:
    def case(client: Any, table: str) -> Any:
        request: dict[str, Any] = {"TableName": table, "Key": {"email": {"S": email}}, "UpdateExpression": expression}
        if condition:
            request["ConditionExpression"] = condition
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        return client.update_item(**request, **extra)
    return case


PLAIN = {
    "settle when the claim holds": _update(
        "SET #state = :sent, updated_at = :now, provider_message_id = :pmid", HOLDS, NAMES,
        VALUES | {":sent": {"S": "SENT"}, ":now": {"S": "2026-11-25T12:00:00"}, ":pmid": {"S": "p-1"}}),
    "settle when the claim is lost": _update(
        "SET #state = :sent", HOLDS, NAMES, VALUES | {":token": {"S": "other"}, ":sent": {"S": "SENT"}},
        ReturnValuesOnConditionCheckFailure="ALL_OLD"),
    "add to a counter and start another": _update(
        "ADD sent :one, bounced :two", values={":one": {"N": "1"}, ":two": {"N": "2"}}),
    "set and remove": _update("SET lease_until = :lease REMOVE unsent", values={":lease": {"N": "250.5"}}),
    "either missing or earlier (missing)": _update(
        "SET next_slot = :end", "attribute_not_exists(next_slot) OR next_slot <= :start",
        values={":end": {"N": "12"}, ":start": {"N": "10"}}),
    "numbers compared by value": _update(
        "SET checked = :yes", "attempt < :two AND lease_until >= :hundred",
        values={":yes": {"BOOL": True}, ":two": {"N": "2"}, ":hundred": {"N": "1e2"}}),
    "a string never equals a number": _update(
        "SET checked = :yes", "attempt = :one", values={":yes": {"BOOL": True}, ":one": {"S": "1"}}),
    "exists": _update("SET checked = :yes", "attribute_exists(carrier)", values={":yes": {"BOOL": True}}),
}

ERRORS_OR_RARE = {
    "a key attribute as target": _update("SET email = :v", values={":v": {"S": "x"}}),
    "a missing name placeholder": _update("SET #nope = :v", values={":v": {"S": "x"}}),
    "a missing value placeholder": _update("SET a = :nope", values={":v": {"S": "x"}}),
    "a reserved word used bare": _update("SET name = :v", values={":v": {"S": "x"}}),
    "adding to a string": _update("ADD #state :one", names={"#state": "state"}, values={":one": {"N": "1"}}),
    "the same attribute twice": _update("SET a = :v, a = :w", values={":v": {"S": "x"}, ":w": {"S": "y"}}),
    "a new item": _update("ADD sent :one", values={":one": {"N": "1"}}, email="new@example.com"),
    "lower-case keyword": _update("set a = :v", values={":v": {"S": "x"}}),
    "a path into a map": _update("SET a.b = :v", values={":v": {"S": "x"}}),
    "a function in a condition": _update("SET a = :v", "begins_with(carrier, :m)",
                                         values={":v": {"S": "x"}, ":m": {"S": "m"}}),
    "AND and OR together": _update("SET a = :v", "attempt = :v OR attempt = :v AND sent = :v",
                                   values={":v": {"N": "1"}}),
}


@pytest.mark.parametrize("case", list(PLAIN.values()), ids=list(PLAIN))
def test_a_plain_update_takes_the_fast_path_and_ends_as_moto_ends(case: Callable[[Any, str], Any]) -> None:
    # Given identical tables, When the same plain update runs with the fast path and with moto only
    taken = motofast.fast_updates
    (fast, fast_item), (moto, moto_item) = _both_ways(case)
    # Then both end the same way, and the fast path was taken (or the condition failed on it)
    assert fast == moto
    assert fast_item == moto_item
    assert motofast.fast_updates > taken or fast is not None


@pytest.mark.parametrize("case", list(ERRORS_OR_RARE.values()), ids=list(ERRORS_OR_RARE))
def test_anything_else_is_left_to_moto_and_ends_as_moto_ends(case: Callable[[Any, str], Any]) -> None:
    (fast, fast_item), (moto, moto_item) = _both_ways(case)
    assert fast == moto
    assert fast_item == moto_item


def test_a_transaction_with_one_failed_condition_cancels_alike_and_writes_nothing():
    # Given a transaction of a plain update, a put and an update whose condition fails
    def case(client: Any, table: str) -> Any:
        return client.transact_write_items(TransactItems=[
            {"Update": {"TableName": table, "Key": {"email": ITEM["email"]}, "UpdateExpression": "SET a = :v",
                        "ConditionExpression": "attribute_exists(email)", "ExpressionAttributeValues": {
                            ":v": {"S": "x"}}}},
            {"Put": {"TableName": table, "Item": {"email": {"S": "bob@example.com"}},
                     "ConditionExpression": "attribute_not_exists(email)"}},
            {"Update": {"TableName": table, "Key": {"email": {"S": "cy@example.com"}}, "UpdateExpression": "SET a = :v",
                        "ConditionExpression": "attribute_exists(email)", "ExpressionAttributeValues": {
                            ":v": {"S": "x"}}}}])
    # When it runs both ways, Then both cancel with the same reasons and leave the item as it was
    (fast, fast_item), (moto, moto_item) = _both_ways(case)
    assert fast is not None and fast == moto
    assert fast_item == moto_item == ITEM


def test_an_item_over_the_size_limit_is_refused_alike():
    def case(client: Any, table: str) -> Any:
        return client.put_item(TableName=table, Item={"email": {"S": "big@example.com"},
                                                      **{f"a{i}": {"S": "x" * 50_000} for i in range(9)}})
    (fast, _), (moto, _) = _both_ways(case)
    assert fast is not None and fast == moto


def test_queue_attributes_read_lazily_are_the_attributes_moto_computes():
    # Given a queue with a redrive policy and two messages, one of them delayed
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": 3}}'
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30", "RedrivePolicy": redrive})[
            "QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="now")
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        # When every attribute is read, Then the counts and settings are those of the queue
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"
    assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
    assert attributes["VisibilityTimeout"] == "30"
    assert '"maxReceiveCount": 3' in attributes["RedrivePolicy"]


@pytest.mark.parametrize("names, values", [
    ({"#state": "state", "#unused": "x"}, {":v": {"S": "x"}}),
    ({"#state": "state"}, {":v": {"S": "x"}, ":unused": {"S": "y"}}),
    ({}, {":v": {"S": "x"}}),
    ({"#state": "state"}, {}),
], ids=["an unused name", "an unused value", "a missing name", "a missing value"])
def test_a_transaction_with_bad_placeholders_is_refused_alike(names, values):
    def case(client: Any, table: str) -> Any:
        update: dict[str, Any] = {"TableName": table, "Key": {"email": ITEM["email"]}, "UpdateExpression": "SET a = :v",
                                  "ConditionExpression": "#state = :v"}
        if names:
            update["ExpressionAttributeNames"] = names
        if values:
            update["ExpressionAttributeValues"] = values
        return client.transact_write_items(TransactItems=[{"Update": update}])
    (fast, fast_item), (moto, moto_item) = _both_ways(case)
    assert fast is not None and fast == moto
    assert fast_item == moto_item == ITEM


def test_a_long_poll_returns_when_a_delayed_message_becomes_receivable():
    # Given a long poll of up to five seconds on an empty queue
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as executor:
            poll = executor.submit(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5).get("Messages", []))
            # When a message delayed by two seconds arrives 0.3 s into it (receivable at 2.3 s)
            time.sleep(0.3)
            sqs.send_message(QueueUrl=url, MessageBody="retry", DelaySeconds=2)
            messages = poll.result()
        waited = time.monotonic() - started
    # Then the poll returns it soon after 2.3 s, as SQS does, not at the next whole second of
    # waiting (3 s), as moto's own polling does
    assert [m["Body"] for m in messages] == ["retry"]
    assert 2.2 < waited < 2.75


def test_items_with_blobs_and_every_other_type_are_stored_alike():
    # Given an item of every attribute type, blobs included (the one type JSON carries differently)
    item = {"email": {"S": "zed@example.com"}, "b": {"B": b"\x00\xff"}, "bs": {"BS": [b"x", b"y"]},
            "n": {"N": "1.50"}, "ns": {"NS": ["1", "2"]}, "ss": {"SS": ["a"]}, "bool": {"BOOL": False},
            "null": {"NULL": True}, "l": {"L": [{"S": "x"}, {"N": "2"}]}, "m": {"M": {"k": {"S": "v"}}}}

    def case(client: Any, table: str) -> Any:
        client.put_item(TableName=table, Item=item)
        return client.update_item(TableName=table, Key={"email": ITEM["email"]}, UpdateExpression="SET copied = :b",
                                  ExpressionAttributeValues={":b": {"B": b"\x01"}})
    # When it is written and read both ways, Then it comes back the same
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        results = []
        for table, moto_only in (("fast", False), ("moto", True)):
            client.create_table(TableName=table, KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
                                AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
                                BillingMode="PAY_PER_REQUEST")
            client.put_item(TableName=table, Item=ITEM)
            with motofast.moto_only() if moto_only else contextlib.nullcontext():
                case(client, table)
            results.append([client.get_item(TableName=table, Key={"email": key})["Item"]
                            for key in (item["email"], ITEM["email"])])
    assert results[0] == results[1]
    assert results[0][0]["b"] == {"B": b"\x00\xff"}


def test_a_paginated_scan_sees_every_put_delete_and_update_between_its_pages():
    # Given a table of 30 items, read by a scan of 7 items a page
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        for i in range(30):
            client.put_item(TableName="t", Item={"k": {"S": f"k{i:02}"}, "v": {"N": "0"}})

        def scan() -> dict[str, str]:
            pages = client.get_paginator("scan").paginate(TableName="t", PaginationConfig={"PageSize": 7})
            return {item["k"]["S"]: item["v"]["N"] for page in pages for item in page["Items"]}

        assert scan() == {f"k{i:02}": "0" for i in range(30)}
        # When items are deleted, added and updated between scans
        client.delete_item(TableName="t", Key={"k": {"S": "k03"}})
        client.put_item(TableName="t", Item={"k": {"S": "k99"}, "v": {"N": "1"}})
        client.update_item(TableName="t", Key={"k": {"S": "k10"}}, UpdateExpression="SET v = :two",
                           ExpressionAttributeValues={":two": {"N": "2"}})
        # Then the next scan sees exactly the table as it is
        expected = {f"k{i:02}": "0" for i in range(30) if i != 3} | {"k99": "1", "k10": "2"}
        assert scan() == expected


def test_messages_deleted_and_sent_at_the_same_time_are_neither_lost_nor_brought_back():
    # Given 1,500 received messages
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]
        for start in range(0, 1500, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"old {start + i}"}
                                                          for i in range(10)])
        handles = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            handles += [m["ReceiptHandle"] for m in batch]
        assert len(handles) == 1500

        # When eight threads delete them while four threads send 400 new ones
        def delete(part: list[str]) -> None:
            for start in range(0, len(part), 10):
                sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": h}
                                                                for i, h in enumerate(part[start:start + 10])])

        def send(worker: int) -> None:
            for n in range(100):
                sqs.send_message(QueueUrl=url, MessageBody=f"new {worker}-{n}")

        with ThreadPoolExecutor(max_workers=12) as executor:
            jobs = [executor.submit(delete, handles[i::8]) for i in range(8)]
            jobs += [executor.submit(send, w) for w in range(4)]
            for job in jobs:
                job.result()
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    # Then exactly the 400 new messages are left, all receivable, and no deleted one is in flight
    assert attributes == {"ApproximateNumberOfMessages": "400", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_a_cancelled_transaction_never_undoes_a_concurrent_put():
    # Given a thread running transactions that are always cancelled (their second condition fails)
    # while another commits puts: moto 5.2.5 alone loses some of them (docs/moto-bugs.md, case 1)
    import threading

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        client.put_item(TableName="t", Item={"k": {"S": "taken"}})
        done = threading.Event()
        cancelled = 0

        def cancelled_transactions() -> None:
            nonlocal cancelled
            while not done.is_set():
                with contextlib.suppress(client.exceptions.TransactionCanceledException):
                    client.transact_write_items(TransactItems=[
                        {"Put": {"TableName": "t", "Item": {"k": {"S": "other"}}}},
                        {"Put": {"TableName": "t", "Item": {"k": {"S": "taken"}},
                                 "ConditionExpression": "attribute_not_exists(k)"}}])
                cancelled += 1

        canceller = threading.Thread(target=cancelled_transactions)
        canceller.start()
        # When 2,000 puts commit meanwhile
        for i in range(2000):
            client.put_item(TableName="t", Item={"k": {"S": f"item-{i}"}})
        done.set()
        canceller.join()
        keys = {item["k"]["S"] for page in client.get_paginator("scan").paginate(TableName="t")
                for item in page["Items"]}
    # Then every committed put is there, and the cancelled transactions wrote nothing
    assert cancelled > 0
    assert {f"item-{i}" for i in range(2000)} <= keys and "other" not in keys


def test_every_dynamodb_operation_runs_under_the_emulator_s_lock_fast_paths_included():
    # The serialising wrapper must be the outermost: a fast update outside it raced (duplicate send slots)
    from moto.dynamodb.models import DynamoDBBackend

    from localcloud.emulator.patches import atomic_transactions

    for name in atomic_transactions.SERIALISED_OPERATIONS:
        assert getattr(DynamoDBBackend, name).__code__ is atomic_transactions.serialised(len).__code__, name


def test_a_response_class_s_method_names_listed_once_are_moto_s_own():
    # Given the emulator's patches (applied by the test session) and moto's own listing
    from moto.core import responses, utils
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    for handler in (DynamoHandler, SQSResponse):
        # When the server looks a class's methods up twice
        first, second = responses.method_names_from_class(handler), responses.method_names_from_class(handler)
        # Then they are moto's own names, listed once
        assert first == frozenset(utils.method_names_from_class(handler)) and second is first
        assert "transact_write_items" in first or "receive_message" in first


def _counter_transaction(table: str, add: int) -> list[dict[str, Any]]:
    return [{"Update": {"TableName": table, "Key": {"email": ITEM["email"]}, "UpdateExpression": "ADD sent :n",
                        "ExpressionAttributeValues": {":n": {"N": str(add)}}}}]


def test_a_client_request_token_seen_with_the_same_request_applies_nothing_twice():
    from localcloud.emulator.patches import atomic_transactions

    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        client.put_item(TableName="t", Item=ITEM)
        replays = atomic_transactions.token_replays
        # Given a transaction that committed under a token (sent: 4 -> 5)
        client.transact_write_items(TransactItems=_counter_transaction("t", 1), ClientRequestToken="move-1")
        # When the same request comes again with that token (a retry after a lost answer)
        client.transact_write_items(TransactItems=_counter_transaction("t", 1), ClientRequestToken="move-1")
        # Then it succeeds and applies nothing; a new token is a new request
        assert client.get_item(TableName="t", Key={"email": ITEM["email"]})["Item"]["sent"] == {"N": "5"}
        assert atomic_transactions.token_replays == replays + 1
        client.transact_write_items(TransactItems=_counter_transaction("t", 1), ClientRequestToken="move-2")
        assert client.get_item(TableName="t", Key={"email": ITEM["email"]})["Item"]["sent"] == {"N": "6"}


def test_a_client_request_token_with_another_request_is_a_mismatch_and_a_cancelled_one_is_not_remembered():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "email", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "email", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        client.put_item(TableName="t", Item=ITEM)
        client.transact_write_items(TransactItems=_counter_transaction("t", 1), ClientRequestToken="move-1")
        with pytest.raises(ClientError) as mismatch:
            client.transact_write_items(TransactItems=_counter_transaction("t", 2), ClientRequestToken="move-1")
        assert mismatch.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
        # A transaction cancelled by its condition commits nothing, so its token is free for the same request
        failing = [{"Update": {**_counter_transaction("t", 1)[0]["Update"], "ConditionExpression": "sent > :big",
                               "ExpressionAttributeValues": {":n": {"N": "1"}, ":big": {"N": "100"}}}}]
        for _ in range(2):
            with pytest.raises(ClientError) as cancelled:
                client.transact_write_items(TransactItems=failing, ClientRequestToken="move-3")
            assert cancelled.value.response["Error"]["Code"] == "TransactionCanceledException"
        assert client.get_item(TableName="t", Key={"email": ITEM["email"]})["Item"]["sent"] == {"N": "5"}
