"""End-to-end benchmark on the embedded local cloud: `python -m bench.run --sizes 10000 --runs 1`.

For each size, two seed-format files (half the contacts each, overlapping so that about 10% of the
contacts repeat across files, and about 10% of lines repeating within a file) go through a fresh
emulator with the template's own settings (the seed's latency model: 10% of sends take 1-5 s).
Measured: wall seconds from upload to every job SUCCEEDED; the floor of that run (sum of the
simulated latencies of every send attempt / sends that may be in flight at once); AWS requests per
1,000 contacts by service and operation (counted by botocore events in the runtime's workers);
the parse invocations' peak memory. Results are printed and written to bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

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
    floor_seconds: float
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
    cpu_seconds: dict[str, float] | None = None  # by process kind, over the whole run
    progress: list[tuple[float, int]] = field(default_factory=list)  # (seconds after the upload, rows settled)
    arrivals: list[float] = field(default_factory=list)  # when the provider received each attempt
    latencies: list[float] = field(default_factory=list)  # the provider's latency of each attempt


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


def _process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a live process (Linux /proc), 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_run(contacts: int, workdir: Path, overrides: dict[str, str] | None = None, clean: bool = False) -> Run:
    own_before = resource.getrusage(resource.RUSAGE_SELF)
    half = contacts // 2
    overlap = 0 if clean else contacts // 10
    options = {"duplicate_rate": 0.0, "tag_every": 0} if clean else {}
    files = [write_sample(workdir / f"bench-{contacts}-a.csv", half, start=0, **options),
             write_sample(workdir / f"bench-{contacts}-b.csv", half, start=half - overlap, **options)]
    emulator = start_emulator(f"http://127.0.0.1:{free_port()}", workdir / "moto.log", detached=False)
    try:
        cloud = LocalCloud(CloudSettings.load(endpoint=emulator.endpoint, overrides=overrides)).start()
        try:
            started, started_at = time.monotonic(), time.time()
            progress: list[tuple[float, int]] = []
            jobs = cloud.wait(cloud.upload(files), timeout=3600, on_progress=lambda jobs: progress.append(
                (time.monotonic() - started, sum(job.settled for job in jobs))))
            seconds = time.monotonic() - started
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
            latency = sum(latencies)
            arrivals = [datetime.fromisoformat(e.received_at).timestamp() for e in outbox]
            in_flight = int(parameters["SendMaxConcurrency"]) * int(parameters["SendsInFlight"])
            request_counts = sum((pool.aws_requests for pool in cloud.runtime.pools.values()), Counter())
            parse = cloud.runtime.pools["ParseCsvFunction"].invocations
            every = [(pool.spec.memory_mb, i) for pool in cloud.runtime.pools.values() for i in pool.invocations]
            poller = sum((source.requests for source in cloud.runtime.sources), Counter())
            failures = [f for source in cloud.runtime.sources for f in source.failures]
            failed_invocations = [i.error for pool in cloud.runtime.pools.values() for i in pool.invocations if i.error]
            if failures or failed_invocations:
                print(f"  local runtime: {len(failures)} event-source errors {failures[:3]}, "
                      f"{len(failed_invocations)} failed invocations {failed_invocations[:3]}", file=sys.stderr)
            own = resource.getrusage(resource.RUSAGE_SELF)
            cpu_seconds = {
                "emulator (moto server)": _process_cpu_seconds(emulator.process.pid) if emulator.process else 0.0,
                "function environments": sum(_process_cpu_seconds(pid) for pool in cloud.runtime.pools.values()
                                             for pid in pool.idle_pids),
                "local runtime and bench": own.ru_utime + own.ru_stime - own_before.ru_utime - own_before.ru_stime}
            first_attempts = [a for a, e in zip(arrivals, outbox, strict=True) if e.attempt == 1]
            milestones = {"every file parsed": max(i.ended_at for i in parse) - started_at,
                          "last first attempt sent": max(first_attempts) - started_at,
                          "last retry sent": max(arrivals) - started_at, "every job SUCCEEDED": seconds}
            return Run(contacts=contacts, rows=sum(j.rows for j in jobs), seconds=seconds,
                       floor_seconds=latency / in_flight, requests=request_counts,
                       parse_peak_mb=max(i.max_memory_mb for i in parse), sent=sum(j.sent for j in jobs),
                       attempts=len(outbox), peak_sends_per_second=peak_per_second(arrivals),
                       max_send_rate=float(parameters["MaxSendRate"]),
                       gb_seconds=sum(memory / 1024 * i.duration_ms / 1000 for memory, i in every),
                       invocations=len(every), event_source_requests=dict(poller), milestones=milestones,
                       cpu_seconds=cpu_seconds, progress=progress, arrivals=arrivals, latencies=latencies)
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
    lines = ["# Benchmark", "", f"`{command}` on this machine ({time.strftime('%Y-%m-%d')}).", "",
             "| contacts | rows | runs | median wall s | contacts/s | floor s | wall / floor | parse peak MB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for contacts, measured in runs.items():
        wall = statistics.median(r.seconds for r in measured)
        floor = statistics.median(r.floor_seconds for r in measured)
        lines.append(f"| {contacts:,} | {measured[0].rows:,} | {len(measured)} | {wall:.1f} | "
                     f"{measured[0].rows / wall:.0f} | {floor:.1f} | {wall / floor:.1f} | "
                     f"{max(r.parse_peak_mb for r in measured)} |")
    for contacts, measured in runs.items():
        lines += ["", f"Where the time went ({contacts:,} contacts; seconds after the upload, "
                  "median of the runs):", "", "| milestone | s |", "|---|---:|"]
        lines += [f"| {name} | {statistics.median(r.milestones[name] for r in measured):.1f} |"
                  for name in measured[0].milestones or {}]
    for contacts, measured in runs.items():
        run = measured[0]
        if run.cpu_seconds:
            lines += ["", f"CPU seconds ({contacts:,} contacts, first run, {run.seconds:.1f} s of wall time on "
                      f"{os.cpu_count()} cores; processes still alive at the end): "
                      + ", ".join(f"{name} {value:.1f}" for name, value in run.cpu_seconds.items()) + "."]
    for contacts, measured in runs.items():
        run = measured[0]
        lines += ["", f"AWS requests per 1,000 rows ({contacts:,} contacts, first run):", "",
                  "| service.operation | per 1,000 rows |", "|---|---:|"]
        for name, count in sorted(run.requests.items(), key=lambda item: -item[1]):
            lines.append(f"| {name} | {count * 1000 / run.rows:.2f} |")
        pipeline_dynamodb = sum(v for k, v in run.requests.items()
                                if k.startswith("dynamodb.") and ":" not in k and k != "dynamodb.BatchWriteItem")
        sqs = sum(v for k, v in run.requests.items() if k.startswith("sqs."))
        lines += ["", f"Per contact: {sqs / run.rows:.3f} SQS requests and {pipeline_dynamodb / run.rows:.3f} "
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
    lines += ["", "The floor is the sum of the simulated send latencies of every attempt in the outbox divided "
              "by SendMaxConcurrency x SendsInFlight. dynamodb.BatchWriteItem is the simulated provider's "
              "outbox, not the pipeline's own state."]
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
                print(f"{contacts} contacts, run {number + 1}: {run.seconds:.1f} s (floor {run.floor_seconds:.1f} s)",
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
