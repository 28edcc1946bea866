"""SendMessageBatch entries that SQS reports as Failed are sent again; malformed ones fail loudly."""

from __future__ import annotations

import pytest

from common.adapters.sqs import QueueSendError, SqsSender


class FlakySqs:
    """Fails the first entry of each batch once (a server-side fault), then accepts everything."""

    def __init__(self, sender_fault: bool = False):
        self.calls: list[list[str]] = []
        self.sender_fault = sender_fault
        self._failed_once: set[str] = set()

    def send_message_batch(self, QueueUrl, Entries):
        self.calls.append([e["MessageBody"] for e in Entries])
        failed, ok = [], []
        for entry in Entries:
            if entry["MessageBody"] not in self._failed_once and entry is Entries[0]:
                self._failed_once.add(entry["MessageBody"])
                failed.append({"Id": entry["Id"], "SenderFault": self.sender_fault, "Code": "InternalError"})
            else:
                ok.append({"Id": entry["Id"]})
        return {"Successful": ok, "Failed": failed}


def test_failed_entries_are_sent_again_until_every_message_is_in():
    sqs = FlakySqs()
    sent = SqsSender("url", client=sqs, sleep=lambda s: None).send_entries(
        {"MessageBody": f"m{i}"} for i in range(12))
    assert sent == 12
    assert sqs.calls == [[f"m{i}" for i in range(10)], ["m0"], ["m10", "m11"], ["m10"]]


def test_an_entry_sqs_calls_malformed_is_an_error_not_a_retry():
    with pytest.raises(QueueSendError, match="malformed"):
        SqsSender("url", client=FlakySqs(sender_fault=True), sleep=lambda s: None).send_entries(
            [{"MessageBody": "m0"}])


class BrokenSqs:
    """SQS that fails one entry of every batch, every time (a partition that does not recover)."""

    def __init__(self) -> None:
        self.calls = 0

    def send_message_batch(self, QueueUrl, Entries):
        self.calls += 1
        return {"Successful": [{"Id": e["Id"]} for e in Entries[1:]],
                "Failed": [{"Id": Entries[0]["Id"], "SenderFault": False, "Code": "InternalError"}]}


def test_an_entry_that_fails_every_retry_is_an_error_not_silently_dropped():
    # Given SQS failing the same entry on every attempt
    sqs = BrokenSqs()
    # When three messages are sent, Then the send fails loudly after the last attempt (its caller retries the
    # whole record), having sent the other two once
    with pytest.raises(QueueSendError, match="1 messages still failed after 6 attempts"):
        SqsSender("url", client=sqs, sleep=lambda s: None).send_entries({"MessageBody": f"m{i}"} for i in range(3))
    assert sqs.calls == 6


def test_failed_entries_are_retried_after_growing_pauses_capped_at_two_seconds():
    # Given SQS failing one entry every time
    sleeps: list[float] = []
    with pytest.raises(QueueSendError):
        SqsSender("url", client=BrokenSqs(), sleep=sleeps.append).send_entries([{"MessageBody": "m0"}])
    # Then the pauses between attempts double from 0.1 s, and never exceed 2 s
    assert sleeps == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 2.0])


class RecordingSqs:
    """Accepts everything and records each call; its answers leave out the lists SQS may omit when empty."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def send_message_batch(self, **request):
        self.calls.append(("send_message_batch", request))
        return {"Successful": [{"Id": e["Id"]} for e in request["Entries"]]}  # no "Failed": none failed

    def change_message_visibility(self, **request):
        self.calls.append(("change_message_visibility", request))

    def send_message(self, **request):
        self.calls.append(("send_message", request))


def batch(*emails: str):
    from common.domain.messages import ContactBatch, Delivery

    return ContactBatch(job_id="job-1", source_key="incoming/a.csv",
                        deliveries=tuple(Delivery(email=e, name="N", row=i + 1) for i, e in enumerate(emails)))


def test_contact_batches_and_delayed_retries_go_to_their_queue_with_their_delay():
    from common.adapters.sqs import ContactsQueue
    from common.domain.messages import DelayedRetry

    sqs = RecordingSqs()
    queue = ContactsQueue("https://sqs/contacts", client=sqs)
    first, second = batch("a@example.com"), batch("b@example.com")
    # When a batch is sent, and two retries with their delays
    assert queue.send([first]) == 1
    assert queue.send_retries([DelayedRetry(first, 30), DelayedRetry(second, 0)]) == 2
    # Then each request names the queue, and each message carries the batch as encoded, with its delay
    (_, plain), (_, retries) = sqs.calls
    assert plain == {"QueueUrl": "https://sqs/contacts", "Entries": [{"MessageBody": first.encode(), "Id": "0"}]}
    assert retries["QueueUrl"] == "https://sqs/contacts"
    assert retries["Entries"] == [{"MessageBody": first.encode(), "DelaySeconds": 30, "Id": "0"},
                                  {"MessageBody": second.encode(), "DelaySeconds": 0, "Id": "1"}]


@pytest.mark.parametrize(("seconds", "visibility"), [(0, 2), (0.2, 2), (7.2, 8), (60, 60), (10**6, 43_200)])
def test_a_message_comes_back_after_the_seconds_asked_rounded_up_within_sqs_limits(seconds, visibility):
    from common.adapters.sqs import ContactsQueue

    sqs = RecordingSqs()
    ContactsQueue("https://sqs/contacts", client=sqs).return_after("receipt-1", seconds)
    assert sqs.calls == [("change_message_visibility", {"QueueUrl": "https://sqs/contacts",
                                                        "ReceiptHandle": "receipt-1", "VisibilityTimeout": visibility})]


def test_a_dead_letter_names_its_contact_by_pseudonym_and_carries_its_reason_as_an_attribute():
    from common.adapters.sqs import DeadLetterQueue
    from common.domain.messages import DeadLetter
    from common.domain.vocabulary import DeadLetterReason

    sqs = RecordingSqs()
    letter = DeadLetter(reason=DeadLetterReason.BOUNCED, email="ann@example.com", name="Ann", job_id="job-1",
                        source_key="incoming/a.csv", row=3, attempt=1, provider_response="550 mailbox unavailable")
    assert DeadLetterQueue("https://sqs/dlq", pseudonym=lambda e: f"p({e})", client=sqs).put([letter]) == 1
    ((_, request),) = sqs.calls
    assert request["QueueUrl"] == "https://sqs/dlq"
    (entry,) = request["Entries"]
    assert entry["MessageBody"] == letter.body(lambda e: f"p({e})") and "Ann" not in entry["MessageBody"]
    assert entry["MessageAttributes"] == {"reason": {"DataType": "String", "StringValue": "bounced"}}


def test_an_answer_without_a_successful_list_sends_again_until_it_lists_them():
    class AllFailedOnce(RecordingSqs):
        def send_message_batch(self, **request):
            self.calls.append(("send_message_batch", request))
            if len(self.calls) == 1:
                return {"Failed": [{"Id": e["Id"], "SenderFault": False} for e in request["Entries"]]}
            return {"Successful": [{"Id": e["Id"]} for e in request["Entries"]], "Failed": []}

    sqs = AllFailedOnce()
    assert SqsSender("url", client=sqs, sleep=lambda s: None).send_entries([{"MessageBody": "m0"}]) == 1
    assert len(sqs.calls) == 2


def test_a_continuation_asks_for_the_next_segment_of_its_job_on_its_queue():
    from common.adapters.sqs import ParseContinuations
    from common.domain.messages import ContinuationRequest

    sqs = RecordingSqs()
    ParseContinuations("https://sqs/continuations", client=sqs).request("job-1", 4)
    assert sqs.calls == [("send_message", {"QueueUrl": "https://sqs/continuations",
                                           "MessageBody": ContinuationRequest("job-1", 4).encode()})]


def test_without_a_client_the_queues_make_an_sqs_client_of_their_own():
    from common.adapters.sqs import ContactsQueue

    sender = SqsSender("https://sqs/contacts")
    assert sender.queue_url == "https://sqs/contacts"
    assert sender._client.meta.service_model.service_name == "sqs"
    assert ContactsQueue("https://sqs/contacts")._client.meta.service_model.service_name == "sqs"
    from common.adapters.sqs import ParseContinuations

    assert ParseContinuations("https://sqs/c")._client.meta.service_model.service_name == "sqs"
