"""SES feedback after the send: a hard bounce or a complaint moves the contact it is about, once."""

from __future__ import annotations

import json

import pytest

from common.domain.feedback import MalformedFeedback, apply_feedback, read_ses_event
from common.domain.vocabulary import DeadLetterReason, FeedbackKind, FeedbackMove
from localcloud.deploy.events import ses_notification
from tests.unit.pipeline import Pipeline
from tests.unit.test_sending import assert_accounted, rows


def ses_event(name: str, message_id: str | None = None, kind_changes: dict | None = None) -> str:
    kind = {"ses_bounce.json": "Bounce", "ses_complaint.json": "Complaint"}[name]
    data = ses_notification(kind, "welcome@example.com", "ann.lee@example.com", "123456789012", "us-east-1",
                            "welcome-pipeline-welcome")
    if message_id:
        data["mail"]["messageId"] = message_id
    for key, value in (kind_changes or {}).items():
        data[data["eventType"].lower()][key] = value
    return json.dumps(data)


def test_ses_events_are_read_raw_or_inside_an_sns_envelope():
    (bounce,) = read_ses_event(ses_event("ses_bounce.json"))
    assert (bounce.kind, bounce.email, bounce.permanent) == (FeedbackKind.BOUNCE, "ann.lee@example.com", True)
    assert bounce.detail == "Permanent/General: smtp; 550 5.1.1 user unknown"
    envelope = json.dumps({"Type": "Notification", "Message": ses_event("ses_complaint.json")})
    (complaint,) = read_ses_event(envelope)
    assert (complaint.kind, complaint.detail) == (FeedbackKind.COMPLAINT, "complaint: abuse")
    assert read_ses_event(json.dumps({"eventType": "Delivery", "mail": {"messageId": "m"}})) == []
    with pytest.raises(MalformedFeedback):
        read_ses_event("not json")


@pytest.fixture
def sent_to_ann() -> tuple[Pipeline, str]:
    """Ann was emailed: her ledger entry is SENT with the provider's message id."""
    pipeline = Pipeline(provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann.lee@example.com", "bob@example.com"))
    pipeline.drain()
    (entry,) = [e for e in pipeline.outbox.recorded if e.to == "ann.lee@example.com"]
    return pipeline, entry.provider_message_id


def test_a_hard_bounce_moves_the_sent_contact_to_bounced_once_and_dead_letters_it(sent_to_ann):
    pipeline, message_id = sent_to_ann
    feedbacks = read_ses_event(ses_event("ses_bounce.json", message_id))
    # When SES reports a hard bounce for the email we sent
    (result,) = apply_feedback(feedbacks, pipeline.ledger, pipeline.queue)
    # Then the contact is BOUNCED, the job's counts moved from sent to bounced, and the identity still holds
    assert result.move is FeedbackMove.MOVED and result.row == 1
    job = pipeline.job()
    assert (job.sent, job.bounced) == (1, 1)
    assert_accounted(pipeline)
    (letter,) = pipeline.queue.letters
    assert (letter.reason, letter.email, letter.row) == (DeadLetterReason.BOUNCED, "ann.lee@example.com", 1)
    # And the same event again changes no count (its letter is written again, in case it was lost)
    (again,) = apply_feedback(feedbacks, pipeline.ledger, pipeline.queue)
    assert again.move is FeedbackMove.ALREADY_RECORDED
    assert (pipeline.job().sent, pipeline.job().bounced) == (1, 1)


def test_feedback_about_another_email_or_a_soft_bounce_moves_nothing(sent_to_ann):
    pipeline, message_id = sent_to_ann
    (other,) = apply_feedback(read_ses_event(ses_event("ses_bounce.json", "some-other-message")),
                              pipeline.ledger, pipeline.queue)
    (soft,) = apply_feedback(read_ses_event(ses_event("ses_bounce.json", message_id,
                                                      {"bounceType": "Transient"})), pipeline.ledger, pipeline.queue)
    assert (other.move, soft.move) == (FeedbackMove.NOT_OURS, None)
    assert (pipeline.job().sent, pipeline.job().bounced) == (2, 0) and not pipeline.queue.letters


def test_a_complaint_keeps_the_contact_counted_as_sent_and_counts_the_complaint(sent_to_ann):
    pipeline, message_id = sent_to_ann
    (result,) = apply_feedback(read_ses_event(ses_event("ses_complaint.json", message_id)),
                               pipeline.ledger, pipeline.queue)
    assert result.move is FeedbackMove.MOVED
    job = pipeline.job()
    assert (job.sent, job.bounced, job.complained) == (2, 0, 1)
    assert pipeline.queue.letters[0].reason is DeadLetterReason.COMPLAINED
    # And a later bounce of the same email does not overrule it
    (late,) = apply_feedback(read_ses_event(ses_event("ses_bounce.json", message_id)), pipeline.ledger,
                             pipeline.queue)
    assert late.move is FeedbackMove.NOT_SENT
    assert_accounted(pipeline)


def test_a_bounce_s_diagnostic_code_keeps_its_meaning_but_not_the_address_it_quotes():
    bounce_fields = {"bouncedRecipients": [{"emailAddress": "ann.lee@example.com", "status": "5.1.1",
                                            "diagnosticCode": "smtp; 550 5.1.1 <ann.lee@example.com>: unknown"}]}
    (bounce,) = read_ses_event(ses_event("ses_bounce.json", kind_changes=bounce_fields))
    assert bounce.detail == "Permanent/General: smtp; 550 5.1.1 <<address>>: unknown"
    assert bounce.email == "ann.lee@example.com"  # the ledger still finds her
