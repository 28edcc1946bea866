"""Contact batches: many contacts per SQS message, within count and size limits."""

import json

import pytest

from common.domain.messages import (
    MAX_CONTACTS_PER_MESSAGE,
    ContactBatch,
    DelayedRetry,
    Delivery,
    MalformedMessage,
    claim_token,
    merge_retries,
    pack_batches,
)


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


def retry(job: str, delay: int, *rows: int, key: str = "incoming/a.csv", attempt: int = 2) -> DelayedRetry:
    return DelayedRetry(ContactBatch(job, key, tuple(Delivery(f"c{row}@example.com", "Ann", row, attempt)
                                                     for row in rows)), delay)


def test_retries_of_one_job_file_and_delay_are_merged_into_one_message():
    # Given the retries of three records: two of job-1 after 1 s, one of job-1 after 2 s, one of job-2
    retries = [retry("job-1", 1, 1, 2), retry("job-1", 2, 3), retry("job-1", 1, 4), retry("job-2", 1, 5)]
    # When they are merged
    merged = merge_retries(retries)
    # Then each job, file and delay travels in one message, in the order they came
    assert [(r.batch.job_id, r.delay_seconds, [d.row for d in r.batch.deliveries]) for r in merged] == [
        ("job-1", 1, [1, 2, 4]), ("job-1", 2, [3]), ("job-2", 1, [5])]


def test_merged_retries_keep_their_file_and_the_message_limits():
    # Given 150 retries of one job in two records, and one of the same job from another file
    retries = [retry("job", 1, *range(1, 80)), retry("job", 1, *range(80, 151)), retry("job", 1, 999, key="b.csv")]
    # When they are merged
    merged = merge_retries(retries)
    # Then no message holds more than the limit, and the other file's retry has its own message
    assert [(r.batch.source_key, len(r.batch.deliveries)) for r in merged] == [
        ("incoming/a.csv", MAX_CONTACTS_PER_MESSAGE), ("incoming/a.csv", 150 - MAX_CONTACTS_PER_MESSAGE), ("b.csv", 1)]
    assert sorted(d.row for r in merged for d in r.batch.deliveries) == [*range(1, 151), 999]


def test_an_address_is_never_twice_in_one_merged_message():
    # Given two records that both retry row 7's address (a redelivery repeating its follow-up), and row 8
    retries = [retry("job", 1, 7, 8), retry("job", 1, 7, attempt=3)]
    # When they are merged
    merged = merge_retries(retries)
    # Then the second copy goes out in a message of its own: nothing is lost, no claim is written twice
    assert [[(d.row, d.attempt) for d in r.batch.deliveries] for r in merged] == [[(7, 2), (8, 2)], [(7, 3)]]


def test_no_retries_merge_into_no_message():
    assert merge_retries([]) == []
