"""End-to-end benchmark on the embedded local cloud: `python -m bench.run --sizes 10000 --runs 1`.

For each size, two seed-format files (half the contacts each, overlapping so that about 10% of the
contacts repeat across files, and about 10% of lines repeating within a file) go through a fresh
emulator with the template's own settings (the seed's latency model: 10% of sends take 1-5 s).
Measured per run: wall seconds from upload to every job SUCCEEDED; the run's critical path (the
longest chain of one contact's simulated send latencies plus the retry delays send_email scheduled
for it, which no schedule can beat) and our ratio to it; CPU seconds per 1,000 contacts by process
kind; AWS requests per contact (counted by botocore events in the runtime's workers); the parse
invocations' peak memory. Results are printed and written to bench/results.md.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench import charts
from common.adapters.simulated import SimulatedProvider
from common.config import SimulatedProviderSettings
from common.domain.pacing import peak_per_second
from localcloud.cloud import LocalCloud
from localcloud.config import CloudSettings, parse_overrides
from localcloud.emulator.process import free_port, start_emulator
from localcloud.samples import write_sample

RESULTS = Path(__file__).resolve().parent / "results.md"
RATE_RESULTS = Path(__file__).resolve().parent / "rate.md"


@dataclass
class Run:
    contacts: int
    rows: int
    seconds: float
    requests: dict[str, int]
    parse_peak_mb: int
    sent: int
    attempts: int
    peak_sends_per_second: int
    max_send_rate: float
    gb_seconds: float = 0.0  # Lambda duration x memory, all functions
    invocations: int = 0
    event_source_requests: dict[str, int] | None = None  # the SQS pollers' own requests
    milestones: dict[str, float] | None = None  # seconds after the upload
    cpu_seconds: dict[str, float] | None = None  # by process kind, from the upload to every job SUCCEEDED
    progress: list[tuple[float, int]] = field(default_factory=list)  # (seconds after the upload, rows settled)
    arrivals: list[float] = field(default_factory=list)  # when the provider received each attempt
    latencies: list[float] = field(default_factory=list)  # the provider's latency of each attempt
    critical_path_seconds: float = 0.0
    retry_hops: list[float] = field(default_factory=list)  # seconds each retry came later than latency + delay

    @property
    def cpu_per_thousand(self) -> dict[str, float]:
        """CPU seconds per 1,000 contacts (rows) by process kind, and their total."""
        per = {name: seconds * 1000 / self.rows for name, seconds in (self.cpu_seconds or {}).items()}
        return per | {"total": sum(per.values())}

    def requests_per_contact(self, service: str) -> float:
        """The pipeline's own requests (the simulated provider's outbox writes left out)."""
        return sum(count for name, count in self.requests.items() if name.startswith(service + ".")
                   and ":" not in name and name != "dynamodb.BatchWriteItem") / self.rows


# Public list prices, us-east-1, as of 2026-11 (on-demand; free tiers ignored).
PRICES = {
    "lambda_gb_second_arm64": 0.0000133334, "lambda_request": 0.20 / 1e6,
    "sqs_request": 0.40 / 1e6,  # standard queue, per 64 KB chunk (our messages are under 24 KB)
    "dynamodb_write_unit": 0.625 / 1e6, "dynamodb_read_unit": 0.125 / 1e6,  # on-demand
    "s3_put_copy_list": 0.005 / 1000, "s3_get": 0.0004 / 1000,
    "ses_email": 0.10 / 1000,
}


def cost_per_million(run: Run) -> list[tuple[str, float, str]]:
    """(item, dollars per million contacts, how) from this run's counts. DynamoDB items here are
    under 1 KB: 1 write unit each, 2 in a transaction; consistent reads of small items: 1 read unit."""
    scale = 1e6 / run.rows
    r = run.requests
    sqs_function = sum(v for k, v in r.items() if k.startswith("sqs."))
    sqs_poller = sum(v for k, v in (run.event_source_requests or {}).items() if k.startswith("sqs."))
    pipeline_wru = (2 * r.get("dynamodb.TransactWriteItems:items", 0) + r.get("dynamodb.PutItem", 0)
                    + r.get("dynamodb.UpdateItem", 0))
    outbox_wru = r.get("dynamodb.BatchWriteItem:items", 0)
    reads = r.get("dynamodb.GetItem", 0) + r.get("dynamodb.Query", 0)
    s3_writes = sum(r.get(f"s3.{op}", 0) for op in ("PutObject", "CopyObject", "CreateMultipartUpload",
                                                     "UploadPart", "CompleteMultipartUpload"))
    s3_reads = r.get("s3.GetObject", 0) + r.get("s3.HeadObject", 0)
    return [
        ("Lambda duration", run.gb_seconds * scale * PRICES["lambda_gb_second_arm64"],
         f"{run.gb_seconds * scale:,.0f} GB-s (arm64; local durations, inflated by the emulator)"),
        ("Lambda requests", run.invocations * scale * PRICES["lambda_request"],
         f"{run.invocations * scale:,.0f} invocations"),
        ("SQS", (sqs_function + sqs_poller) * scale * PRICES["sqs_request"],
         f"{sqs_function * scale:,.0f} from the functions + {sqs_poller * scale:,.0f} from the event source"),
        ("DynamoDB writes (ledger, jobs)", pipeline_wru * scale * PRICES["dynamodb_write_unit"],
         f"{pipeline_wru * scale:,.0f} write units"),
        ("DynamoDB reads", reads * scale * PRICES["dynamodb_read_unit"], f"{reads * scale:,.0f} read units"),
        ("S3", s3_writes * scale * PRICES["s3_put_copy_list"] + s3_reads * scale * PRICES["s3_get"],
         f"{(s3_writes + s3_reads) * scale:,.0f} requests"),
        ("simulated provider's outbox (not with SES)", outbox_wru * scale * PRICES["dynamodb_write_unit"],
         f"{outbox_wru * scale:,.0f} write units"),
        ("Amazon SES (instead of the simulated provider)", run.sent * scale * PRICES["ses_email"],
         f"{run.sent * scale:,.0f} emails at $0.10 per 1,000"),
    ]


CPU_KINDS = ("emulator (moto server)", "function environments", "local runtime and bench")


def critical_path(attempts: list[tuple[str, int]], latency_for: Callable[[str, int], float],
                  delay_after: Callable[[str, int], float]) -> float:
    """The longest chain of one contact's attempts: each attempt's send latency, plus the delay its retry
    was scheduled with when one was (attempts: (address, attempt number) of every send the provider got)."""
    chains: Counter[str] = Counter()
    for email, attempt in attempts:
        chains[email] += latency_for(email, attempt) + delay_after(email, attempt)
    return max(chains.values(), default=0.0)


def retry_hops(attempts: list[tuple[str, int, float]], latency_for: Callable[[str, int], float],
               delay_after: Callable[[str, int], float]) -> list[float]:
    """For each retry (attempts: address, attempt number, when the provider got it): how much later it came
    than the previous attempt's arrival + its send latency + its retry delay. That is the pipeline's own
    time per hop: waiting for the message's wave to settle, sending the retry, polling, invoking."""
    arrived = {(email, attempt): at for email, attempt, at in attempts}
    return [at - arrived[(email, attempt - 1)] - latency_for(email, attempt - 1) - delay_after(email, attempt - 1)
            for email, attempt, at in attempts if (email, attempt - 1) in arrived]


class RetryDelays:
    """The retry delays send_email scheduled, read from its log lines as each invocation ends:
    (contact pseudonym, attempt) -> seconds."""

    MARK = '"retry_in_seconds"'

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, int], int] = {}

    def on_invocation(self, invocation: Any) -> None:
        if self.MARK not in invocation.log:
            return
        for line in invocation.log.splitlines():
            if self.MARK in line:
                record = json.loads(line)
                self.seconds[(record["contact"], int(record["attempt"]))] = int(record["retry_in_seconds"])


def _process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a live process (Linux /proc), 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(contacts: int, workdir: Path, overrides: dict[str, str] | None = None, clean: bool = False) -> Run:
    half = contacts // 2
    overlap = 0 if clean else contacts // 10
    options = {"duplicate_rate": 0.0, "tag_every": 0} if clean else {}
    files = [write_sample(workdir / f"bench-{contacts}-a.csv", half, start=0, **options),
             write_sample(workdir / f"bench-{contacts}-b.csv", half, start=half - overlap, **options)]
    emulator = start_emulator(f"http://127.0.0.1:{free_port()}", workdir / "moto.log", detached=False)
    try:
        delays = RetryDelays()
        cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides=overrides)).start(
            on_invocation=delays.on_invocation)
        try:
            def cpu_now() -> dict[str, float]:
                own = resource.getrusage(resource.RUSAGE_SELF)
                return {CPU_KINDS[0]: _process_cpu_seconds(emulator.process.pid) if emulator.process else 0.0,
                        CPU_KINDS[1]: sum(_process_cpu_seconds(pid) for pool in cloud.runtime.pools.values()
                                          for pid in pool.idle_pids),
                        CPU_KINDS[2]: own.ru_utime + own.ru_stime}

            # From the upload on: the stack's deployment and the files' writing are not the run's.
            cpu_before = cpu_now()
            started, started_at = time.monotonic(), time.time()
            progress: list[tuple[float, int]] = []
            jobs = cloud.wait(cloud.upload(files), timeout=3600, on_progress=lambda jobs: progress.append(
                (time.monotonic() - started, sum(job.settled for job in jobs))))
            seconds = time.monotonic() - started
            cpu_seconds = {kind: used - cpu_before.get(kind, 0.0) for kind, used in cpu_now().items()}
            if not all(job.status.value == "SUCCEEDED" for job in jobs):
                raise RuntimeError(f"the benchmark's jobs did not succeed: {jobs}")
            parameters = cloud.deployment.parameters
            provider = SimulatedProvider(SimulatedProviderSettings(
                seed=parameters["SimulatedSeed"], bounce_rate=float(parameters["SimulatedBounceRate"]),
                block_rate=float(parameters["SimulatedBlockRate"]), slow_rate=float(parameters["SimulatedSlowRate"]),
                slow_min_seconds=float(parameters["SimulatedSlowMinSeconds"]),
                slow_max_seconds=float(parameters["SimulatedSlowMaxSeconds"]), outbox_table=""), outbox=None)
            outbox = cloud.outbox()
            latencies = [provider.latency_for(e.to, e.attempt) for e in outbox]
            arrivals = [datetime.fromisoformat(e.received_at).timestamp() for e in outbox]
            pseudonym = functools.cache(cloud.pseudonyms().of)  # each address has several attempts

            def delay_after(email: str, attempt: int) -> float:
                return delays.seconds.get((pseudonym(email), attempt), 0)

            critical = critical_path([(e.to, e.attempt) for e in outbox], provider.latency_for, delay_after)
            hops = retry_hops([(e.to, e.attempt, at) for e, at in zip(outbox, arrivals, strict=True)],
                              provider.latency_for, delay_after)
            request_counts = sum((pool.aws_requests for pool in cloud.runtime.pools.values()), Counter())
            parse = cloud.runtime.pools["ParseCsvFunction"].invocations
            every = [(pool.spec.memory_mb, i) for pool in cloud.runtime.pools.values() for i in pool.invocations]
            poller = sum((source.requests for source in cloud.runtime.sources), Counter())
            failures = [f for source in cloud.runtime.sources for f in source.failures]
            failed_invocations = [i.error for pool in cloud.runtime.pools.values() for i in pool.invocations if i.error]
            if failures or failed_invocations:
                print(f"  local runtime: {len(failures)} event-source errors {failures[:3]}, "
                      f"{len(failed_invocations)} failed invocations {failed_invocations[:3]}", file=sys.stderr)
            first_attempts = [a for a, e in zip(arrivals, outbox, strict=True) if e.attempt == 1]
            milestones = {"every file parsed": max(i.ended_at for i in parse) - started_at,
                          "last first attempt sent": max(first_attempts) - started_at,
                          "last retry sent": max(arrivals) - started_at, "every job SUCCEEDED": seconds}
            return Run(contacts=contacts, rows=sum(j.rows for j in jobs), seconds=seconds,
                       requests=request_counts,
                       parse_peak_mb=max(i.max_memory_mb for i in parse), sent=sum(j.sent for j in jobs),
                       attempts=len(outbox), peak_sends_per_second=peak_per_second(arrivals),
                       max_send_rate=float(parameters["MaxSendRate"]),
                       gb_seconds=sum(memory / 1024 * i.duration_ms / 1000 for memory, i in every),
                       invocations=len(every), event_source_requests=dict(poller), milestones=milestones,
                       cpu_seconds=cpu_seconds, progress=progress, arrivals=arrivals, latencies=latencies,
                       critical_path_seconds=critical, retry_hops=hops)
        finally:
            cloud.close()
    finally:
        emulator.stop()


def rate_report(run: Run, command: str) -> str:
    charts.sends_per_second(run.arrivals, run.max_send_rate, RATE_RESULTS.with_name("rate-sends.png"))
    return "\n".join([
        "# Send-rate limit", "", f"`{command}` on this machine ({time.strftime('%Y-%m-%d')}).", "",
        "| contacts | MaxSendRate /s | send attempts | wall s | mean rate /s | peak in any 1 s window |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {run.contacts:,} | {run.max_send_rate:g} | {run.attempts:,} | {run.seconds:.1f} | "
        f"{run.attempts / run.seconds:.1f} | {run.peak_sends_per_second} |", "",
        "Arrivals are the times the simulated provider received each request (its outbox).", "",
        "![Sends per second, with the MaxSendRate line](rate-sends.png)", ""])


def chart_section(runs: dict[int, list[Run]], results: Path) -> list[str]:
    """Charts beside the results file, named after it: results-settled.png, results-sends.png..."""
    name = {chart: f"{results.stem}-{chart}.png" for chart in ("settled", "sends", "latency")}
    charts.settled_over_time({c: [r.progress for r in measured] for c, measured in runs.items()},
                             results.with_name(name["settled"]))
    largest = runs[max(runs)][0]
    charts.sends_per_second(largest.arrivals, largest.max_send_rate, results.with_name(name["sends"]))
    charts.latency_histogram(largest.latencies, results.with_name(name["latency"]))
    return ["", "## Charts", "", f"![Settled rows over time, every run]({name['settled']})", "",
            f"Sends per second and send latencies of the first {max(runs):,}-contact run:", "",
            f"![Sends per second]({name['sends']})", "", f"![Send latency histogram]({name['latency']})"]


def report(runs: dict[int, list[Run]], command: str, written_to: Path | None = None) -> str:
    lines = ["# Benchmark", "", f"`{command}` on this machine ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores).",
             "", "Medians of the runs:", "",
             "| contacts | runs | wall s | critical path s | wall / critical path | contacts/s "
             "| CPU s per 1,000 contacts | SQS requests per contact | DynamoDB requests per contact | parse peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for contacts, measured in runs.items():
        wall = statistics.median(r.seconds for r in measured)
        lines.append(
            f"| {contacts:,} | {len(measured)} | {wall:.1f} | "
            f"{statistics.median(r.critical_path_seconds for r in measured):.1f} | "
            f"{statistics.median(r.seconds / r.critical_path_seconds for r in measured):.2f} | "
            f"{measured[0].rows / wall:.0f} | {statistics.median(r.cpu_per_thousand['total'] for r in measured):.2f} | "
            f"{statistics.median(r.requests_per_contact('sqs') for r in measured):.3f} | "
            f"{statistics.median(r.requests_per_contact('dynamodb') for r in measured):.3f} | "
            f"{max(r.parse_peak_mb for r in measured)} |")
    lines += ["", "Every run:", "",
              "| contacts | run | wall s | critical path s | wall / critical path | CPU s per 1,000 contacts: "
              "emulator | environments | runtime | total | SQS req / contact | DynamoDB req / contact |",
              "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for contacts, measured in runs.items():
        for number, r in enumerate(measured, 1):
            cpu = r.cpu_per_thousand
            lines.append(f"| {contacts:,} | {number} | {r.seconds:.1f} | {r.critical_path_seconds:.1f} | "
                         f"{r.seconds / r.critical_path_seconds:.2f} | "
                         + " | ".join(f"{cpu.get(kind, 0.0):.2f}" for kind in CPU_KINDS)
                         + f" | {cpu['total']:.2f} | {r.requests_per_contact('sqs'):.3f} | "
                         f"{r.requests_per_contact('dynamodb'):.3f} |")
    lines += ["", "The critical path is the longest chain of one contact's simulated send latencies plus the retry "
              "delays send_email scheduled for it (its `retry_in_seconds` log lines): no schedule can beat it. CPU is "
              "user + system seconds from /proc of the emulator, of the execution environments alive at the end, and "
              "of this process (the local runtime's pollers and log writer, and the benchmark)."]
    for contacts, measured in runs.items():
        lines += ["", f"Where the time went ({contacts:,} contacts; seconds after the upload, "
                  "median of the runs):", "", "| milestone | s |", "|---|---:|"]
        lines += [f"| {name} | {statistics.median(r.milestones[name] for r in measured):.1f} |"
                  for name in measured[0].milestones or {}]
        hops = sorted(hop for r in measured for hop in r.retry_hops)
        if hops:
            lines += ["", f"Each retry came {statistics.median(hops):.2f} s (median; 90th percentile "
                      f"{hops[int(len(hops) * 0.9)]:.2f} s, most {hops[-1]:.2f} s) after the previous attempt's "
                      "send latency and retry delay: the wait for its message's wave to settle, the SQS send, the "
                      f"poll and the invocation ({len(hops):,} retries over the runs)."]
    for contacts, measured in runs.items():
        run = measured[0]
        lines += ["", f"AWS requests per 1,000 rows ({contacts:,} contacts, first run):", "",
                  "| service.operation | per 1,000 rows |", "|---|---:|"]
        for name, count in sorted(run.requests.items(), key=lambda item: -item[1]):
            lines.append(f"| {name} | {count * 1000 / run.rows:.2f} |")
        lines += ["", f"Per contact: {run.requests_per_contact('sqs'):.3f} SQS requests and "
                  f"{run.requests_per_contact('dynamodb'):.3f} "
                  "DynamoDB requests from the pipeline (the outbox's BatchWriteItem is the simulated provider's)."]
    for contacts, measured in runs.items():
        run = measured[0]
        costs = cost_per_million(run)
        pipeline = sum(d for item, d, _ in costs[:6])
        lines += ["", f"Estimated AWS cost per million contacts ({contacts:,}-contact run, us-east-1 list prices "
                  "of 2026-11, on-demand, free tiers ignored):", "", "| item | $ per million contacts | from |",
                  "|---|---:|---|"]
        lines += [f"| {item} | {dollars:,.2f} | {how} |" for item, dollars, how in costs]
        lines.append(f"| **pipeline total (without the provider)** | **{pipeline:,.2f}** | |")
        poller = run.event_source_requests or {}
        lines += ["", f"Event source (local poller) for {poller.get('messages', 0):,} messages delivered: "
                  f"{poller.get('sqs.ReceiveMessage', 0):,} ReceiveMessage, "
                  f"{poller.get('sqs.DeleteMessageBatch', 0):,} DeleteMessageBatch."]
    if written_to is not None:
        lines += chart_section(runs, written_to)
    lines += ["", "dynamodb.BatchWriteItem is the simulated provider's outbox, not the pipeline's own state."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--parameter-overrides", default="",
                        help='template parameters for the run, as sam takes them ("SendsInFlight=128 ...")')
    parser.add_argument("--clean", action="store_true",
                        help="no duplicates and every send delivered at once: the pipeline's own request floor")
    parser.add_argument("--max-send-rate", type=float, default=0,
                        help="instead: one run of the first size with this MaxSendRate; writes bench/rate.md")
    args = parser.parse_args()
    command = "python -m bench.run " + " ".join(sys.argv[1:])
    if args.max_send_rate:
        with tempfile.TemporaryDirectory() as workdir:
            run = one_run(args.sizes[0], Path(workdir), {"MaxSendRate": f"{args.max_send_rate:g}"})
        text = rate_report(run, command)
        RATE_RESULTS.write_text(text)
        print(text)
        return 0 if run.peak_sends_per_second <= args.max_send_rate else 1
    runs: dict[int, list[Run]] = {}
    with tempfile.TemporaryDirectory() as workdir:
        for contacts in args.sizes:
            for number in range(args.runs):
                overrides = parse_overrides(args.parameter_overrides)
                if args.clean:
                    overrides |= {"SimulatedBounceRate": "0", "SimulatedBlockRate": "0"}
                run = one_run(contacts, Path(workdir), overrides, clean=args.clean)
                runs.setdefault(contacts, []).append(run)
                print(f"{contacts} contacts, run {number + 1}: {run.seconds:.1f} s, critical path "
                      f"{run.critical_path_seconds:.1f} s (x{run.seconds / run.critical_path_seconds:.2f}), CPU s per "
                      f"1,000 contacts {run.cpu_per_thousand['total']:.2f} (" + ", ".join(
                          f"{kind.split()[0]} {run.cpu_per_thousand[kind]:.2f}" for kind in CPU_KINDS) + ")",
                      file=sys.stderr)
    # The standard runs are written down, with their charts; experiments are printed only.
    results = None if args.parameter_overrides else RESULTS.with_name("results-clean.md") if args.clean else RESULTS
    text = report(runs, command, written_to=results)
    if results is not None:
        results.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
