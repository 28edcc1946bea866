"""Delivering one contact batch: claim in the ledger, send, settle, follow up.

The rules that make sending at-most-once (see docs/ledger.md):
- A contact is sent only by the holder of its claim: (token, attempt, carrier message id).
- A claim whose holder died mid-send is resumed only after its lease ran out, and only by a
  redelivery of the same message; the provider is asked what happened before anything is sent
  again, and when it cannot say, the contact becomes UNKNOWN instead of risking a second email.
- A send the provider refused without taking it (throttling) takes the blocked path: a delayed
  retry that counts as an attempt. A send whose answer was lost keeps its claim, and its message
  comes back to ask the provider; with a provider that cannot be asked (SES), it is UNKNOWN at once.
- Follow-ups (a delayed retry, a dead letter) are written after the ledger move, and a
  redelivery of the same message writes them again; a stale copy of a retry loses its claim.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from common.domain.ledger import Claim, DuplicateMark, LedgerEntry, Move, Transition
from common.domain.messages import ContactBatch, DeadLetter, DelayedRetry, Delivery, MalformedMessage, merge_retries
from common.domain.pacing import SendPacer
from common.domain.provider import EmailRequest, ProviderConfigurationError, SendResult, TransientProviderError
from common.domain.vocabulary import DEAD_LETTER_FOR_STATE, SETTLEMENTS, DeadLetterReason, Outcome, State, Verdict
from common.domain.waves import Waves, one_wave
from common.ports import DeadLetters, EmailProvider, Ledger, RetryQueue

# A lease outlives the invocation by this much, so a live sender is never taken over.
LEASE_MARGIN_SECONDS = 30
# No send starts in the invocation's last seconds: its claim is released instead of timing out mid-send.
DEADLINE_MARGIN_SECONDS = 10


class _Next(StrEnum):
    """What to do with our own claim found by a redelivery, besides reporting a verdict."""

    RESUME = "resume"  # its holder died mid-send and the lease ran out
    FOLLOW_UP = "follow_up"  # settled; its retry or dead letter may never have been written


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    base_delay_seconds: int
    max_delay_seconds: int

    def delay_before(self, next_attempt: int, draw: float) -> int:
        """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2^(n-2))]."""
        ceiling = min(self.max_delay_seconds, self.base_delay_seconds * 2 ** max(next_attempt - 2, 0))
        return int(min(self.max_delay_seconds, math.ceil(ceiling * draw)))


@dataclass(frozen=True)
class ContactResult:
    job_id: str
    source_key: str
    row: int
    email: str  # normalised; handlers log its pseudonym (pseudonyms.py), never the address
    attempt: int
    verdict: Verdict
    detail: str = ""
    # For a contact that comes back: when trying it again is worth it (None: after the message's
    # visibility timeout, as SQS decides).
    ready_at: float | None = None
    retry_in_seconds: int | None = None  # RETRY_SCHEDULED: the delay its retry was sent with


@dataclass
class BatchReport:
    results: list[ContactResult] = field(default_factory=list)
    send_seconds: list[float] = field(default_factory=list)  # each provider call's latency
    taken_over: int = 0  # claims of a holder that died mid-send, resumed by this delivery

    @property
    def tally(self) -> Counter[Verdict]:
        return Counter(r.verdict for r in self.results)

    @property
    def must_retry(self) -> bool:
        return any(r.verdict in _COMES_BACK for r in self.results)

    def comes_back_in(self, now: float) -> float | None:
        """Seconds until everything that must come back is ready (out of time: at once; held by another
        delivery's live lease: when the lease ends); None when a visibility timeout must decide."""
        ready = [r.ready_at for r in self.results if r.verdict in _COMES_BACK]
        if not ready or any(at is None for at in ready):
            return None
        return max(0.0, max(at for at in ready if at is not None) - now)


_COMES_BACK = (Verdict.RETRY_LATER, Verdict.MISCONFIGURED, Verdict.OUT_OF_TIME)


class RecordNeedsRetry(RuntimeError):
    """Raised after everything else in the message was settled: SQS must deliver it again."""


@dataclass
class SendPorts:
    ledger: Ledger
    provider: EmailProvider
    retries: RetryQueue
    dead_letters: DeadLetters
    # Runs the sends (many in flight) and hands their results back in waves (common/waves.py).
    send_in_waves: Callable[[Callable[[EmailRequest], SendAttempt], Sequence[EmailRequest]],
                            Waves[SendAttempt]] = one_wave
    draw: Callable[[], float] = random.random
    clock: Callable[[], float] = time.time
    pacer: SendPacer | None = None  # MaxSendRate across invocations; None: no limit
    sleep: Callable[[float], None] = time.sleep
    delivery_id: Callable[[], str] = lambda: uuid.uuid4().hex  # names each delivery's claims (Claim.holder)


def deliver_message(body: str, carrier: str, ports: SendPorts, policy: RetryPolicy,
                    now: float, lease_until: float, send_deadline: float | None = None) -> BatchReport:
    """A message that cannot be read is dead-lettered with the reason, not retried forever."""
    try:
        batch = ContactBatch.decode(body)
    except MalformedMessage as error:
        ports.dead_letters.put([DeadLetter(reason=DeadLetterReason.MALFORMED_MESSAGE, email="", name="", job_id="",
                                           source_key="", row=0, attempt=0, provider_response=str(error),
                                           message=body[:10_000])])
        return BatchReport()
    return deliver_batch(batch, carrier, ports, policy, now, lease_until, send_deadline)


def deliver_batch(batch: ContactBatch, carrier: str, ports: SendPorts, policy: RetryPolicy,
                  now: float, lease_until: float, send_deadline: float | None = None) -> BatchReport:
    if send_deadline is not None and ports.clock() >= send_deadline:
        # Not even the claims are worth starting: leave the whole message to its redelivery.
        return BatchReport(results=[ContactResult(batch.job_id, batch.source_key, d.row, d.email, d.attempt,
                                                  Verdict.OUT_OF_TIME, "no time left in this invocation", ready_at=now)
                                    for d in batch.deliveries])
    report = BatchReport()
    work = _Work(batch, carrier, lease_until, policy, ports.draw, now, holder=ports.delivery_id())
    to_send, to_resume = _claim(batch, carrier, work, ports, report, now)
    to_send += _take_over(work, ports, report, to_resume, now)
    _send_and_settle(work, ports, report, to_send, send_deadline)
    work.commit(ports, report)  # what claiming and taking over decided, when nothing was sent
    return report


def _claim(batch: ContactBatch, carrier: str, work: _Work, ports: SendPorts, report: BatchReport,
           now: float) -> tuple[list[Claim], list[tuple[Claim, LedgerEntry]]]:
    """1. Claim every contact; sort the losers out by what holds their email."""
    to_send: list[Claim] = []
    to_resume: list[tuple[Claim, LedgerEntry]] = []
    claims = work.claims(report)
    lost = ports.ledger.claim(claims)
    for claim in claims:
        if claim.email not in lost:
            to_send.append(claim)
            continue
        entry = lost[claim.email]
        verdict = _verdict_for_existing(claim, entry, now)
        if verdict is _Next.RESUME and entry is not None:
            to_resume.append((claim, entry))
        elif verdict is _Next.FOLLOW_UP and entry is not None:
            work.follow_up_again(claim, entry, now)
            report.results.append(work.result(claim, Verdict.ALREADY_DONE, f"found {entry.state}, follow-up repeated"))
        elif verdict is Verdict.DUPLICATE:
            work.transitions.append(DuplicateMark(job_id=batch.job_id, row=claim.row, carrier=carrier))
            report.results.append(work.result(claim, Verdict.DUPLICATE))
        elif verdict is Verdict.RETRY_LATER and entry is not None:  # another delivery holds it, for now
            report.results.append(work.result(claim, verdict, f"leased by another delivery for "
                                              f"{entry.lease_until - now:.0f} s", ready_at=entry.lease_until))
        elif isinstance(verdict, Verdict):
            report.results.append(work.result(claim, verdict, f"found {entry.state if entry else 'no entry'}"))
    return to_send, to_resume


def _take_over(work: _Work, ports: SendPorts, report: BatchReport, to_resume: list[tuple[Claim, LedgerEntry]],
               now: float) -> list[Claim]:
    """2. A claim whose holder died is taken over (conditionally: one resumer wins) and reconciled;
    returns the taken-over claims that must be sent."""
    if not to_resume:
        return []
    to_send: list[Claim] = []
    resumes = [(replace(c, take_over_lease_before=now), entry) for c, entry in to_resume]
    busy = ports.ledger.claim([c for c, _ in resumes])
    for claim, entry in resumes:
        if claim.email in busy:
            report.results.append(work.result(claim, Verdict.RETRY_LATER, "claim taken over elsewhere"))
            continue
        report.taken_over += 1
        if entry.unsent:
            to_send.append(claim)
        elif not ports.provider.can_look_up:
            work.settle(claim, None, report)  # None: the outcome cannot be known
        elif (known := ports.provider.look_up(work.idempotency_key(claim))) is not None:
            work.settle(claim, known, report)
        else:
            to_send.append(claim)
    return to_send


def _send_and_settle(work: _Work, ports: SendPorts, report: BatchReport, to_send: list[Claim],
                     send_deadline: float | None) -> None:
    """3. Send the claimed contacts, many in flight at once, and settle them in two waves (the fast
    majority, then the rest): most retries and dead letters do not wait for the slowest send."""
    requests = [EmailRequest(to=c.email, name=c.name, attempt=c.attempt, idempotency_key=work.idempotency_key(c))
                for c in to_send]
    for wave in ports.send_in_waves(_send_safely(ports, send_deadline), requests):
        for index, (outcome, seconds) in wave:
            claim = to_send[index]
            report.send_seconds.append(seconds)
            if isinstance(outcome, SendResult):
                work.settle(claim, outcome, report)
            elif outcome.maybe_sent and not ports.provider.can_look_up:
                # It may have gone out, and nobody can say: never sent again (no redelivery would learn more).
                work.settle(claim, None, report, f"{outcome}; the provider cannot be asked, so it is never resent")
            elif (verdict := _verdict_for_unsent(outcome)) is Verdict.RETRY_SCHEDULED:
                work.settle(claim, SendResult(Outcome.BLOCKED, provider_message_id="",
                                              detail=f"throttled: {outcome}"), report)
            else:
                work.transitions.append(Move(claim=claim, state=State.CLAIMED, counter=None,
                                             unsent=not outcome.maybe_sent))
                report.results.append(work.result(claim, verdict, str(outcome),
                                                  ready_at=work.now if verdict is Verdict.OUT_OF_TIME else None))
        work.commit(ports, report)


def _verdict_for_existing(claim: Claim, entry: LedgerEntry | None, now: float) -> Verdict | _Next:
    if entry is None:
        return Verdict.STALE  # a retry whose ledger item is gone
    if entry.token != claim.token:
        return Verdict.DUPLICATE
    if entry.attempt > claim.attempt:
        return Verdict.ALREADY_DONE  # handed over to a later attempt
    if entry.attempt < claim.attempt or entry.carrier != claim.carrier:
        return Verdict.STALE
    if entry.state is State.CLAIMED:
        return _Next.RESUME if entry.lease_until <= now else Verdict.RETRY_LATER
    if entry.state in (State.SENT, State.COMPLAINED):
        return Verdict.ALREADY_DONE
    return _Next.FOLLOW_UP


class DeadlineReached(TransientProviderError):
    """Too little of the invocation is left to start a send: the claim is released, unsent."""


SendAttempt = tuple[SendResult | TransientProviderError, float]


def _verdict_for_unsent(error: TransientProviderError) -> Verdict:
    """RETRY_SCHEDULED: throttled, certainly not taken, so the blocked path with its growing delay
    and its cap. Otherwise the claim is released and the message comes back (RETRY_LATER for an
    answer lost in transport: the provider is asked first)."""
    if isinstance(error, ProviderConfigurationError):
        return Verdict.MISCONFIGURED
    if isinstance(error, DeadlineReached):
        return Verdict.OUT_OF_TIME
    if error.maybe_sent:
        return Verdict.RETRY_LATER
    return Verdict.RETRY_SCHEDULED


def _send_safely(ports: SendPorts, deadline: float | None) -> Callable[[EmailRequest], SendAttempt]:
    clock = ports.clock

    def send(request: EmailRequest) -> SendAttempt:
        while ports.pacer is not None:
            start = ports.pacer.next_start()
            if deadline is not None and start >= deadline:
                return DeadlineReached("no send slot before this invocation's deadline; not started"), 0.0
            if (wait := start - clock()) > 0:
                ports.sleep(wait)
            if ports.pacer.on_time(start, clock()):
                break  # else this thread woke too late for its slot: take the next one
        if deadline is not None and clock() >= deadline:
            return DeadlineReached("the invocation is about to time out; not started"), 0.0
        started = time.perf_counter()
        try:
            result: SendResult | TransientProviderError = ports.provider.send(request)
        except TransientProviderError as error:
            result = error
        return result, time.perf_counter() - started
    return send


class _Work:
    """The moves and follow-ups one delivery of a batch accumulates."""

    def __init__(self, batch: ContactBatch, carrier: str, lease_until: float, policy: RetryPolicy,
                 draw: Callable[[], float], now: float, holder: str):
        self.batch = batch
        self.holder = holder
        self.policy = policy
        self.draw = draw
        self.now = now
        self.carrier = carrier
        self.lease_until = lease_until
        self.transitions: list[Transition] = []
        self.retries: list[tuple[Move, Delivery, int]] = []  # what to retry, and after how many seconds
        self._delays: dict[int, int] = {}
        self.letters: list[tuple[Move, DeadLetter]] = []

    def claims(self, report: BatchReport) -> list[Claim]:
        claims, seen = [], set()
        for d in self.batch.deliveries:
            claim = Claim(email=d.email, token=self.batch.token(d), attempt=d.attempt, carrier=self.carrier,
                          lease_until=self.lease_until, job_id=self.batch.job_id, row=d.row, name=d.name,
                          source_key=self.batch.source_key, holder=self.holder)
            if d.email in seen:  # one transaction cannot touch an item twice; the second row is a duplicate
                self.transitions.append(DuplicateMark(job_id=self.batch.job_id, row=d.row, carrier=self.carrier))
                report.results.append(self.result(claim, Verdict.DUPLICATE))
                continue
            seen.add(d.email)
            claims.append(claim)
        return claims

    @staticmethod
    def idempotency_key(claim: Claim) -> str:
        return f"{claim.token}#{claim.attempt}"

    def result(self, claim: Claim, verdict: Verdict, detail: str = "", ready_at: float | None = None,
               retry_in_seconds: int | None = None) -> ContactResult:
        return ContactResult(claim.job_id, claim.source_key, claim.row, claim.email, claim.attempt, verdict, detail,
                             ready_at, retry_in_seconds)

    def settle(self, claim: Claim, sent: SendResult | None, report: BatchReport,
               unknown_because: str = "outcome unknown and the provider cannot be asked") -> None:
        """`sent` None: the outcome is unknown, and the provider cannot be asked."""
        if sent is None:
            self._move(claim, Verdict.UNKNOWN, report, "", unknown_because)
        elif sent.outcome is Outcome.DELIVERED:
            self._move(claim, Verdict.SENT, report, sent.provider_message_id, sent.detail)
        elif sent.outcome is Outcome.BOUNCED:
            self._move(claim, Verdict.BOUNCED, report, sent.provider_message_id, sent.detail)
        elif claim.attempt < self.policy.max_attempts:
            delay = self._delay_before(claim.attempt + 1)
            move = self._move(claim, Verdict.RETRY_SCHEDULED, report, sent.provider_message_id, sent.detail,
                              next_attempt_at=self.now + delay, retry_in_seconds=delay)
            self.retries.append((move, self._next_attempt(claim), delay))
        else:
            self._move(claim, Verdict.EXHAUSTED, report, sent.provider_message_id, sent.detail)

    def commit(self, ports: SendPorts, report: BatchReport) -> None:
        """Settle the ledger with the job counters, then write the follow-ups of what settled."""
        if not (self.transitions or self.retries or self.letters):
            return
        rejected = {id(m) for m in ports.ledger.settle(self.transitions)}
        retries = self.retry_batches(rejected)
        letters = [d for move, d in self.letters if id(move) not in rejected]
        for move in self.transitions:
            if id(move) in rejected and isinstance(move, Move):
                report.results.append(self.result(move.claim, Verdict.STALE, "claim lost before settling"))
        if letters:  # first: a retry may wait for the retries of other records to share its message
            ports.dead_letters.put(letters)
        if retries:
            ports.retries.send_retries(retries)
        self.transitions, self.retries, self.letters = [], [], []

    def follow_up_again(self, claim: Claim, entry: LedgerEntry, now: float) -> None:
        """A redelivery found our own settled move: its follow-up may not have been written."""
        move = Move(claim=claim, state=entry.state, counter=None)
        if entry.state is State.BLOCKED:
            delay = min(self.policy.max_delay_seconds, max(0, math.ceil(entry.next_attempt_at - now)))
            self.retries.append((move, self._next_attempt(claim), delay))
            return
        self.letters.append((move, self._letter(claim, DEAD_LETTER_FOR_STATE[entry.state], entry.detail)))

    def _move(self, claim: Claim, verdict: Verdict, report: BatchReport, provider_message_id: str, detail: str,
              next_attempt_at: float = 0.0, retry_in_seconds: int | None = None) -> Move:
        """Settle as the vocabulary says: the verdict's ledger state, job counter and dead letter."""
        state, counter, letter = SETTLEMENTS[verdict]
        move = Move(claim=claim, state=state, counter=counter, provider_message_id=provider_message_id,
                    detail=detail, next_attempt_at=next_attempt_at)
        self.transitions.append(move)
        report.results.append(self.result(claim, verdict, detail, retry_in_seconds=retry_in_seconds))
        if letter is not None:
            self.letters.append((move, self._letter(claim, letter, detail)))
        return move

    def _delay_before(self, attempt: int) -> int:
        """One jittered delay per attempt number in a delivery: its blocked contacts travel together."""
        if attempt not in self._delays:
            self._delays[attempt] = self.policy.delay_before(attempt, self.draw())
        return self._delays[attempt]

    @staticmethod
    def _next_attempt(claim: Claim) -> Delivery:
        """The same contact and row (so the same token), one attempt further."""
        return Delivery(email=claim.email, name=claim.name, row=claim.row, attempt=claim.attempt + 1)

    def retry_batches(self, rejected: set[int]) -> list[DelayedRetry]:
        """Retries of the moves that settled, packed many to a message by delay (merge_retries)."""
        return merge_retries(DelayedRetry(ContactBatch(self.batch.job_id, self.batch.source_key, (delivery,)), delay)
                             for move, delivery, delay in self.retries if id(move) not in rejected)

    def _letter(self, claim: Claim, reason: DeadLetterReason, detail: str) -> DeadLetter:
        return DeadLetter(reason=reason, email=claim.email, name=claim.name, job_id=claim.job_id,
                          source_key=claim.source_key, row=claim.row, attempt=claim.attempt,
                          provider_response=detail)
