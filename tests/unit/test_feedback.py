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


# -- every field of what feedback reads and records ---------------------------------------------------------
def test_a_notification_style_event_and_its_details_are_read_in_full():
    # Given an SES *notification* (notificationType, as identity notifications send), with a status but no
    # diagnostic code, in an SNS envelope
    event = {"notificationType": "Bounce", "mail": {"messageId": "m-1"},
             "bounce": {"bounceType": "Permanent", "bounceSubType": "Suppressed",
                        "bouncedRecipients": [{"emailAddress": " Ann.Lee@Example.com ", "status": "5.1.1"}]}}
    (bounce,) = read_ses_event(json.dumps({"Type": "Notification", "Message": json.dumps(event)}))
    assert (bounce.kind, bounce.email, bounce.provider_message_id, bounce.permanent, bounce.detail) == (
        FeedbackKind.BOUNCE, "ann.lee@example.com", "m-1", True, "Permanent/Suppressed: 5.1.1")


def test_a_bounce_without_a_code_or_status_is_described_by_its_type_alone():
    event = {"eventType": "Bounce", "mail": {"messageId": "m-1"},
             "bounce": {"bounceType": "Transient", "bounceSubType": "MailboxFull",
                        "bouncedRecipients": [{"emailAddress": "ann@example.com"}]}}
    (bounce,) = read_ses_event(json.dumps(event))
    assert (bounce.permanent, bounce.detail) == (False, "Transient/MailboxFull")


def test_a_complaint_without_a_feedback_type_says_unspecified():
    event = {"eventType": "Complaint", "mail": {"messageId": "m-1"},
             "complaint": {"complainedRecipients": [{"emailAddress": "ann@example.com"}]}}
    (complaint,) = read_ses_event(json.dumps(event))
    assert complaint.detail == "complaint: unspecified"


def test_a_message_field_without_the_sns_envelope_is_not_unwrapped():
    # An SES event that happens to carry a "Message" key is still read as itself
    event = json.loads(ses_event("ses_bounce.json"))
    event["Message"] = "not json"
    (bounce,) = read_ses_event(json.dumps(event))
    assert bounce.email == "ann.lee@example.com"


def test_an_unreadable_event_says_what_was_wrong():
    with pytest.raises(MalformedFeedback, match=r"^not an SES event: KeyError\('mail'\)$"):
        read_ses_event(json.dumps({"eventType": "Bounce"}))


def test_an_address_that_is_not_valid_is_still_compared_lower_cased():
    event = json.loads(ses_event("ses_bounce.json"))
    event["bounce"]["bouncedRecipients"][0]["emailAddress"] = " Not An Address "
    (bounce,) = read_ses_event(json.dumps(event))
    assert bounce.email == "not an address"


def test_feedback_results_and_letters_carry_the_contact_s_job_row_and_attempt(sent_to_ann):
    pipeline, message_id = sent_to_ann
    soft = json.loads(ses_event("ses_bounce.json", message_id, {"bounceType": "Transient"}))
    unknown = json.loads(ses_event("ses_bounce.json", "m-other"))
    unknown["bounce"]["bouncedRecipients"][0]["emailAddress"] = "nobody@example.com"
    hard = read_ses_event(ses_event("ses_bounce.json", message_id))
    feedbacks = read_ses_event(json.dumps(soft)) + read_ses_event(json.dumps(unknown)) + hard
    # When a soft bounce, a bounce of an address we never sent to, and Ann's hard bounce are applied
    results = apply_feedback(feedbacks, pipeline.ledger, pipeline.queue)
    # Then each result names its feedback, what was done, and where the contact came from
    job_id = pipeline.job_ids[0]
    assert [(r.feedback, r.move, r.job_id, r.row) for r in results] == [
        (feedbacks[0], None, "", 0), (feedbacks[1], FeedbackMove.NOT_OURS, "", 0),
        (feedbacks[2], FeedbackMove.MOVED, job_id, 1)]
    # And Ann's letter carries her contact, job, file, row, attempt and the bounce's detail
    (letter,) = pipeline.queue.letters
    assert (letter.reason, letter.email, letter.name, letter.job_id, letter.source_key, letter.row, letter.attempt,
            letter.provider_response) == (DeadLetterReason.BOUNCED, "ann.lee@example.com", "Name 0", job_id,
                                          "incoming/a.csv", 1, 1, "Permanent/General: smtp; 550 5.1.1 user unknown")


def test_a_diagnostic_code_is_kept_whole_to_its_last_character():
    event = json.loads(ses_event("ses_bounce.json"))
    event["bounce"]["bouncedRecipients"][0]["diagnosticCode"] = "smtp; 550 5.7.1 rejected by MX"
    (bounce,) = read_ses_event(json.dumps(event))
    assert bounce.detail == "Permanent/General: smtp; 550 5.7.1 rejected by MX"
