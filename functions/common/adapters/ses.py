"""Amazon SES (v2) as the email provider: one SendEmail per contact, errors sorted by what they mean.

- Accepted: DELIVERED here; a hard bounce or complaint may still come later, as an SES event
  (see common.feedback and the ses_events function).
- The recipient refused (MessageRejected for the message itself): BOUNCED, never retried.
- Throttled, daily quota reached, sending paused: TransientProviderError(maybe_sent=False), which
  the send path treats like a block: a delayed retry.
- The connection never opened (no route, connect timeout): certainly not sent, retried like a block.
- Anything after the request may have left (read timeout, connection dropped, an unreadable answer,
  SES 5xx): maybe sent. SES cannot be asked by idempotency key, so such a contact becomes UNKNOWN
  rather than risk a second email.
- The sender's own setup is wrong (identity not verified, sandbox recipient, missing configuration
  set, no permission): ProviderConfigurationError, loud, and the contact is left unsent for later.

The client makes exactly one request per call (`common.adapters.aws.RETRIES`): botocore's own
retries would resend after a read timeout or a 5xx, and email someone twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, EndpointConnectionError

from common.adapters.aws import client as aws_client
from common.domain.provider import EmailRequest, ProviderConfigurationError, SendResult, TransientProviderError
from common.domain.pseudonyms import redact_addresses
from common.domain.vocabulary import Outcome
from common.domain.welcome import render_welcome

if TYPE_CHECKING:
    from mypy_boto3_sesv2 import SESV2Client


NOT_TAKEN = {"TooManyRequestsException", "ThrottlingException", "Throttling", "LimitExceededException",
             "SendingPausedException"}


SETUP_ERRORS = {"MailFromDomainNotVerifiedException", "NotFoundException", "AccessDeniedException",
                "AccessDenied", "AccountSuspendedException", "BadRequestException", "ValidationException",
                "UnrecognizedClientException", "InvalidClientTokenId", "ConfigurationSetDoesNotExist"}


def ses_client() -> Any:
    """SES v2 with one request per call."""
    return aws_client("sesv2")


class SesProvider:
    can_look_up = False  # SES keeps no record a sender can query by idempotency key

    def __init__(self, sender: str, configuration_set: str, client: SESV2Client | None = None):
        self._sender = sender
        self._configuration_set = configuration_set
        self._client = client or ses_client()

    def send(self, request: EmailRequest) -> SendResult:
        email = render_welcome(request.name)
        message: dict[str, Any] = {
            "FromEmailAddress": self._sender,
            "Destination": {"ToAddresses": [request.to]},
            "Content": {"Simple": {
                "Subject": {"Data": email.subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": email.text, "Charset": "UTF-8"},
                         "Html": {"Data": email.html, "Charset": "UTF-8"}}}},
        }
        if self._configuration_set:
            message["ConfigurationSetName"] = self._configuration_set
        try:
            response = self._client.send_email(**message)
        except (EndpointConnectionError, ConnectTimeoutError) as error:  # the connection never opened
            raise TransientProviderError(f"SES unreachable: {error}") from None
        except ClientError as error:
            return _classify(error)
        except BotoCoreError as error:  # read timeout, connection dropped, unreadable answer: after it went out
            raise TransientProviderError(f"SES answer lost: {error}", maybe_sent=True) from None
        return SendResult(outcome=Outcome.DELIVERED, provider_message_id=response["MessageId"],
                          detail="accepted by SES")

    def look_up(self, idempotency_key: str) -> SendResult | None:
        raise NotImplementedError("SES cannot be asked about an earlier send")


def _classify(error: ClientError) -> SendResult:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    detail = redact_addresses(f"{code}: {message}")
    if code in NOT_TAKEN:
        raise TransientProviderError(detail) from None
    if code == "MessageRejected":
        if "not verified" in message.lower():
            # The sender identity (or, in the SES sandbox, the recipient) is not verified: fix the account.
            raise ProviderConfigurationError(detail) from None
        return SendResult(outcome=Outcome.BOUNCED, provider_message_id="", detail=detail)
    if code in SETUP_ERRORS or 400 <= status < 500:
        raise ProviderConfigurationError(detail) from None
    raise TransientProviderError(detail, maybe_sent=True) from None  # 5xx: SES may have taken it
