"""DynamoDB adapters under concurrency, on moto's mock patched as the emulator is: slots, outbox, claims."""

from __future__ import annotations

import threading

import boto3

from common.adapters.dynamo_send_slots import DynamoSendSlots
from common.domain.vocabulary import Outcome, Verdict
from tests.unit.pipeline import Pipeline
from tests.unit.test_sending import rows


def test_dynamodb_hands_out_each_slot_once_to_concurrent_callers(aws):
    table = aws.outputs["SendRateTableName"]
    taken: list[int] = []
    lock = threading.Lock()

    def reserve_many() -> None:
        source = DynamoSendSlots(table, client=boto3.client("dynamodb"))
        for _ in range(20):
            granted = source.reserve(5, earliest=0)
            with lock:
                taken.extend(granted)

    workers = [threading.Thread(target=reserve_many) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(taken) == len(set(taken)) == 400


def test_the_dynamodb_outbox_stores_every_concurrent_send_before_it_returns(aws):
    from concurrent.futures import ThreadPoolExecutor

    import boto3

    from common.adapters.dynamo_outbox import DynamoOutbox
    from common.domain.provider import OutboxEntry

    outbox = DynamoOutbox(aws.outputs["OutboxTableName"], client=boto3.client("dynamodb"))

    def record(n: int) -> int:
        outbox.record(OutboxEntry(to=f"u{n}@example.com", attempt=1, outcome=Outcome.DELIVERED,
                                  provider_message_id=f"m{n}", idempotency_key=f"job#{n}#1", subject="s", body="b",
                                  received_at="2026-11-25T00:00:00.000+00:00"))
        return len(outbox.find(f"job#{n}#1"))  # visible as soon as record returned

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert list(pool.map(record, range(120))) == [1] * 120
    assert len(list(outbox.entries())) == 120


def test_concurrent_invocations_racing_on_one_email_send_once(aws):
    # On the DynamoDB adapter (moto, patched as the emulator is): its conditional writes decide the race.
    from concurrent.futures import ThreadPoolExecutor

    for round_number in range(5):
        pipeline = Pipeline(aws, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
        email = f"race{round_number}@example.com"
        for name in ("a", "b", "c", "d"):
            pipeline.upload(f"incoming/{name}-{round_number}.csv", rows(email), etag=f"{name}{round_number}")
        messages = list(pipeline.inbox)
        pipeline.inbox.clear()
        with ThreadPoolExecutor(max_workers=4) as pool:
            reports = list(pool.map(pipeline.deliver, messages))
        assert pipeline.attempts_per_address() == {email: 1}
        assert sorted(r.results[0].verdict for r in reports) == sorted(
            [Verdict.SENT] + [Verdict.DUPLICATE] * 3)
