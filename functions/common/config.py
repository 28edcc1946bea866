"""Settings read once from the environment, validated, failing fast with one clear message.

Every value here reaches the function from template.yaml (Globals or the function's
Environment); the defaults below are only for optional tuning knobs.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from common.domain.lines import DEFAULT_MAX_LINE_BYTES

T = TypeVar("T")


class ConfigError(RuntimeError):
    """The function's environment is missing or has invalid settings."""


class _Env:
    """Collects every problem before raising, so one deploy fixes them all."""

    def __init__(self, environ: Mapping[str, str]):
        self._environ = environ
        self.problems: list[str] = []

    def required(self, name: str) -> str:
        value = self._environ.get(name, "").strip()
        if not value:
            self.problems.append(f"{name} is not set")
        return value

    def parsed(self, name: str, parse: Callable[[str], T], default: T, check: Callable[[T], bool] | None = None,
               expect: str = "") -> T:
        raw = self._environ.get(name, "").strip()
        if not raw:
            return default
        try:
            value = parse(raw)
        except ValueError:
            self.problems.append(f"{name}={raw!r} is not a valid {parse.__name__}")
            return default
        if check is not None and not check(value):
            self.problems.append(f"{name}={raw!r} must be {expect}")
        return value

    def done(self, what: str) -> None:
        if self.problems:
            raise ConfigError(f"{what}: " + "; ".join(self.problems))


@dataclass(frozen=True)
class ParseSettings:
    contacts_queue_url: str
    jobs_table: str
    continuations_queue_url: str
    processed_objects: str  # move | keep | delete
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES
    max_file_bytes: int = 0  # 0: no limit
    max_rows_per_file: int = 0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ParseSettings:
        env = _Env(os.environ if environ is None else environ)
        settings = cls(contacts_queue_url=env.required("CONTACTS_QUEUE_URL"), jobs_table=env.required("JOBS_TABLE"),
                       continuations_queue_url=env.required("PARSE_CONTINUATIONS_QUEUE_URL"),
                       processed_objects=env.parsed("PROCESSED_OBJECTS", str, "move",
                                                    lambda v: v in ("move", "keep", "delete"),
                                                    "'move', 'keep' or 'delete'"),
                       max_line_bytes=env.parsed("MAX_LINE_BYTES", int, DEFAULT_MAX_LINE_BYTES,
                                                 lambda v: 1024 <= v <= 10 * 1024 * 1024,
                                                 "a number of bytes from 1024 to 10485760"),
                       max_file_bytes=env.parsed("MAX_FILE_BYTES", int, 0, lambda v: v >= 0, "0 or more"),
                       max_rows_per_file=env.parsed("MAX_ROWS_PER_FILE", int, 0, lambda v: v >= 0, "0 or more"))
        env.done("parse_csv configuration")
        return settings


@dataclass(frozen=True)
class SimulatedProviderSettings:
    seed: str
    bounce_rate: float
    block_rate: float
    slow_rate: float
    slow_min_seconds: float
    slow_max_seconds: float
    outbox_table: str
    throttle_rate: float = 0.0


@dataclass(frozen=True)
class SendSettings:
    contacts_table: str
    jobs_table: str
    contacts_queue_url: str
    retry_queue_url: str
    dead_letter_queue_url: str
    sender_address: str
    provider: str
    max_attempts: int
    retry_base_delay_seconds: int
    retry_max_delay_seconds: int
    sends_in_flight: int
    simulated: SimulatedProviderSettings | None
    pseudonym_key_secret: str  # Secrets Manager ARN of the key that pseudonymises addresses in logs
    ses_configuration_set: str = ""
    max_send_rate: float = 0.0  # emails per second across all invocations; 0: no limit
    send_rate_table: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SendSettings:
        env = _Env(os.environ if environ is None else environ)

        def positive(value: float) -> bool:
            return value > 0

        def rate(value: float) -> bool:
            return 0.0 <= value <= 1.0

        provider = env.parsed("EMAIL_PROVIDER", str, "simulated", lambda p: p in ("simulated", "ses"),
                              "'simulated' or 'ses'")
        simulated = None
        if provider == "simulated":
            simulated = SimulatedProviderSettings(
                seed=env.parsed("SIMULATED_SEED", str, "welcome"),
                bounce_rate=env.parsed("SIMULATED_BOUNCE_RATE", float, 0.1, rate, "between 0 and 1"),
                block_rate=env.parsed("SIMULATED_BLOCK_RATE", float, 0.1, rate, "between 0 and 1"),
                slow_rate=env.parsed("SIMULATED_SLOW_RATE", float, 0.1, rate, "between 0 and 1"),
                slow_min_seconds=env.parsed("SIMULATED_SLOW_MIN_SECONDS", float, 1.0, lambda v: v >= 0, ">= 0"),
                slow_max_seconds=env.parsed("SIMULATED_SLOW_MAX_SECONDS", float, 5.0, lambda v: v >= 0, ">= 0"),
                outbox_table=env.required("OUTBOX_TABLE"),
                throttle_rate=env.parsed("SIMULATED_THROTTLE_RATE", float, 0.0, rate, "between 0 and 1"),
            )
            if simulated.bounce_rate + simulated.block_rate > 1:
                env.problems.append("SIMULATED_BOUNCE_RATE + SIMULATED_BLOCK_RATE must not exceed 1")
            if simulated.slow_min_seconds > simulated.slow_max_seconds:
                env.problems.append("SIMULATED_SLOW_MIN_SECONDS must not exceed SIMULATED_SLOW_MAX_SECONDS")
        settings = cls(
            contacts_table=env.required("CONTACTS_TABLE"),
            jobs_table=env.required("JOBS_TABLE"),
            contacts_queue_url=env.required("CONTACTS_QUEUE_URL"),
            retry_queue_url=env.required("RETRY_QUEUE_URL"),
            dead_letter_queue_url=env.required("DEAD_LETTER_QUEUE_URL"),
            sender_address=env.required("SENDER_ADDRESS"),
            provider=provider,
            max_attempts=env.parsed("MAX_SEND_ATTEMPTS", int, 5, positive, "> 0"),
            retry_base_delay_seconds=env.parsed("RETRY_BASE_DELAY_SECONDS", int, 30, lambda v: v >= 0, ">= 0"),
            retry_max_delay_seconds=env.parsed("RETRY_MAX_DELAY_SECONDS", int, 900, lambda v: 0 <= v <= 900,
                                               "between 0 and 900 (the SQS DelaySeconds limit)"),
            sends_in_flight=env.parsed("SENDS_IN_FLIGHT", int, 32, positive, "> 0"),
            simulated=simulated,
            pseudonym_key_secret=env.required("PSEUDONYM_KEY_SECRET"),
            ses_configuration_set=env.required("SES_CONFIGURATION_SET") if provider == "ses" else "",
            max_send_rate=env.parsed("MAX_SEND_RATE", float, 0.0, lambda v: v >= 0, ">= 0 (0: no limit)"),
            send_rate_table=env.parsed("SEND_RATE_TABLE", str, ""),
        )
        if settings.max_send_rate and not settings.send_rate_table:
            env.problems.append("MAX_SEND_RATE needs SEND_RATE_TABLE (the table that hands out send slots)")
        env.done("send_email configuration")
        return settings


@dataclass(frozen=True)
class FeedbackSettings:
    contacts_table: str
    jobs_table: str
    dead_letter_queue_url: str
    pseudonym_key_secret: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> FeedbackSettings:
        env = _Env(os.environ if environ is None else environ)
        settings = cls(contacts_table=env.required("CONTACTS_TABLE"), jobs_table=env.required("JOBS_TABLE"),
                       dead_letter_queue_url=env.required("DEAD_LETTER_QUEUE_URL"),
                       pseudonym_key_secret=env.required("PSEUDONYM_KEY_SECRET"))
        env.done("ses_events configuration")
        return settings
