"""Contact batches: many contacts per SQS message, within count and size limits."""

import json

import pytest

from common.domain.messages import ContactBatch, Delivery, MalformedMessage, claim_token, pack_batches


def deliveries(n: int, name: str = "Ann") -> list[Delivery]:
    return [Delivery(email=f"c{i}@example.com", name=name, row=i + 1) for i in range(n)]


def test_contacts_are_packed_up_to_the_count_limit():
    batches = list(pack_batches(deliveries(250), job_id="job", source_key="incoming/a.csv", max_contacts=100))
    assert [len(b.deliveries) for b in batches] == [100, 100, 50]
    assert [d.row for b in batches for d in b.deliveries] == list(range(1, 251))


def test_long_names_split_batches_before_the_byte_limit():
    batches = list(pack_batches(deliveries(100, name="é" * 190), job_id="job", source_key="k", max_bytes=24_000))
    assert len(batches) > 1
    assert all(len(b.encode().encode()) <= 24_000 for b in batches)


def test_a_batch_survives_encoding():
    batch = ContactBatch(job_id="b/k@e", source_key="incoming/ü.csv",
                         deliveries=(Delivery("a@example.com", "Zoë", 3, attempt=2),))
    assert ContactBatch.decode(batch.encode()) == batch
    assert batch.token(batch.deliveries[0]) == claim_token("b/k@e", 3) == "b/k@e#3"


@pytest.mark.parametrize("body", ["not json", "{}", json.dumps({"v": 99, "job": "j", "key": "k", "contacts": []}),
                                  json.dumps({"v": 1, "job": "j", "key": "k", "contacts": [{"email": "x"}]})])
def test_a_message_that_is_not_a_batch_is_malformed(body):
    with pytest.raises(MalformedMessage):
        ContactBatch.decode(body)
