"""Amazon SES as the provider: what a send returns, and what each kind of SES error means."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError
from moto import mock_aws

from common.adapters.ses import SesProvider
from common.domain.provider import EmailRequest, ProviderConfigurationError, TransientProviderError
from common.domain.vocabulary import Outcome, Verdict
from localcloud.config import CloudSettings
from localcloud.deploy import deploy
from tests.unit.pipeline import Pipeline
from tests.unit.test_sending import assert_accounted, rows

SENDER = "welcome@example.com"
ANN = EmailRequest(to="ann@example.com", name="Ann <b>Lee</b>", attempt=1, idempotency_key="job#2#1")


@pytest.fixture
def ses_cloud():
    """The template deployed with EmailProvider=ses: identity, configuration set, events topic and queue."""
    with mock_aws():
        yield deploy(CloudSettings.load(overrides={"EmailProvider": "ses", "SenderAddress": SENDER}),
                     client_factory=lambda service: boto3.client(service))


def sent_messages() -> list:
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ses.models import ses_backends

    return ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages


def test_an_accepted_send_is_delivered_with_the_ses_message_id_and_both_bodies(ses_cloud):
    provider = SesProvider(SENDER, ses_cloud.outputs["SesConfigurationSetName"], client=boto3.client("sesv2"))
    result = provider.send(ANN)
    assert result.outcome is Outcome.DELIVERED and result.provider_message_id
    (message,) = sent_messages()
    assert (message.source, message.destinations["ToAddresses"], message.subject) == (
        SENDER, ["ann@example.com"], "Welcome!")
    assert "Hi Ann &lt;b&gt;Lee&lt;/b&gt;, Welcome!" in message.body  # the HTML body, name escaped


def test_a_sender_that_ses_has_not_verified_is_a_configuration_error_not_a_bounce(ses_cloud):
    provider = SesProvider("nobody@unverified.example", "", client=boto3.client("sesv2"))
    with pytest.raises(ProviderConfigurationError, match="not verified"):
        provider.send(ANN)


class RefusingClient:
    """An SES client whose SendEmail fails as told."""

    def __init__(self, error: Exception):
        self.error = error

    def send_email(self, **_):
        raise self.error


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "SendEmail")


@pytest.mark.parametrize(("error", "expected"), [
    (client_error("TooManyRequestsException", "Maximum sending rate exceeded.", 429), "not taken"),
    (client_error("LimitExceededException", "Daily message quota exceeded."), "not taken"),
    (client_error("SendingPausedException", "Sending is paused for this account."), "not taken"),
    (EndpointConnectionError(endpoint_url="https://email.us-east-1.amazonaws.com"), "not taken"),
    (client_error("MessageRejected", "Address blacklisted."), "bounced"),
    (client_error("MessageRejected", "Email address is not verified. The following identities failed the "
                                     "check in region US-EAST-1: ann@example.com"), "setup"),
    (client_error("MailFromDomainNotVerifiedException", "MAIL FROM domain not verified"), "setup"),
    (client_error("NotFoundException", "Configuration set <welcome> does not exist.", 404), "setup"),
    (client_error("AccessDeniedException", "not authorized to perform ses:SendEmail", 403), "setup"),
    (client_error("InternalFailure", "", 500), "maybe sent"),
    (ReadTimeoutError(endpoint_url="https://email.us-east-1.amazonaws.com"), "maybe sent"),
])
def test_each_ses_error_is_sorted_by_what_it_means_for_the_contact(error, expected):
    provider = SesProvider(SENDER, "welcome", client=RefusingClient(error))
    if expected == "bounced":
        result = provider.send(ANN)
        assert result.outcome is Outcome.BOUNCED and "Address blacklisted" in result.detail
        return
    with pytest.raises(TransientProviderError) as raised:
        provider.send(ANN)
    assert isinstance(raised.value, ProviderConfigurationError) == (expected == "setup")
    assert raised.value.maybe_sent == (expected == "maybe sent")
    assert "@" not in str(raised.value)  # SES's texts quote addresses; logs and dead letters get them without


def test_a_configuration_error_releases_the_contact_unsent_and_it_is_sent_once_after_the_fix(aws):
    # Given a provider whose account is misconfigured for the first send
    pipeline = Pipeline(aws, provider_settings={"bounce_rate": 0.0, "block_rate": 0.0})
    pipeline.upload("incoming/a.csv", rows("ann@example.com"))
    send = pipeline.provider.send
    calls = []

    def misconfigured_once(request):
        calls.append(request.to)
        if len(calls) == 1:
            raise ProviderConfigurationError("MailFromDomainNotVerifiedException: not verified")
        return send(request)

    pipeline.provider.send = misconfigured_once
    # When the message is delivered
    report = pipeline.deliver(pipeline.inbox[0])
    # Then the contact is not sent, not counted as bounced or retried, and its message must come back
    assert report.tally == {Verdict.MISCONFIGURED: 1} and report.must_retry and report.comes_back_in(0) is None
    assert pipeline.job().retried == 0
    # And once the account is fixed, the redelivery sends it once
    pipeline.drain()
    assert pipeline.delivered_per_address() == {"ann@example.com": 1}
    assert_accounted(pipeline)
