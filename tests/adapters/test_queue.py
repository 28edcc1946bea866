"""SendMessageBatch entries that SQS reports as Failed are sent again; malformed ones fail loudly."""

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
