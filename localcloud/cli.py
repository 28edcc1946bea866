"""`python -m localcloud`: run welcome-pipeline on this laptop, no Docker needed."""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.jobs import Job
from common.redrive import REDRIVABLE
from localcloud.cloud import LocalCloud, RunTimeout
from localcloud.emulator import EmulatorError, aws_client, stop_background_emulator
from localcloud.envvars import stack_env_vars
from localcloud.runtime import Invocation
from localcloud.samples import write_sample
from localcloud.settings import CloudSettings, parse_overrides
from localcloud.template import TemplateError

COUNTER_COLUMNS = ("rows", "invalid", "duplicate", "sent", "bounced", "retried", "exhausted", "unknown")

# Tables keep their columns readable when the output is not a terminal (a pipe, CI, make).
out = Console(width=None if sys.stdout.isatty() else 140)
err = Console(stderr=True)


def _since_ms(text: str | None) -> int | None:
    if not text:
        return None
    match = re.fullmatch(r"(\d+)([smhd])", text)
    if not match:
        raise argparse.ArgumentTypeError(f"--since takes e.g. 30s, 10m, 2h or 1d, not {text!r}")
    seconds = int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int((time.time() - seconds) * 1000)


def jobs_table(jobs: Sequence[Job], title: str = "Import jobs") -> Table:
    table = Table(title=title)
    table.add_column("file")
    table.add_column("status")
    for column in COUNTER_COLUMNS:
        table.add_column(column, justify="right")
    for job in jobs:
        colour = {"SUCCEEDED": "green", "FAILED": "red"}.get(job.status.value, "yellow")
        table.add_row(job.key, f"[{colour}]{job.status.value}[/]", *(str(getattr(job, c)) for c in COUNTER_COLUMNS))
    if len(jobs) > 1:
        table.add_row("[b]total[/]", "", *(f"[b]{sum(getattr(j, c) for j in jobs)}[/]" for c in COUNTER_COLUMNS))
    return table


def _print_invocation(invocation: Invocation) -> None:
    state = "[green]ok[/]" if invocation.ok else f"[red]{invocation.error.get('errorType')}[/]" \
        if invocation.error else "?"
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {invocation.function} {invocation.request_id[:8]} "
              f"{invocation.duration_ms:8.1f} ms {state}")


# -- commands ------------------------------------------------------------------------------
def cmd_up(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=True, on_invocation=_print_invocation if args.verbose else None)
    if cloud.runtime is None:
        err.print("[red]another `localcloud up` already runs the functions for this endpoint[/]")
        return 1
    _print_deployment(cloud)
    out.print(f"\nDrop a file: [b]aws s3 cp contacts.csv s3://{cloud.bucket}/incoming/ "
              f"--endpoint-url {cloud.settings.endpoint}[/]  (or: python -m localcloud upload contacts.csv)")
    out.print("Functions are running. Ctrl-C to stop (the emulator keeps its data until `localcloud stop`).")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        out.print("stopping the runtime...")
    return 0


def _print_deployment(cloud: LocalCloud) -> None:
    deployment = cloud.deployment
    if deployment is None:
        raise RuntimeError("the local cloud is not deployed")
    table = Table(title=f"Stack {cloud.settings.stack_name} on {cloud.settings.endpoint}")
    table.add_column("output")
    table.add_column("value")
    for name, value in deployment.outputs.items():
        table.add_row(name, value)
    out.print(table)
    if deployment.skipped:
        out.print("[dim]not emulated: " + ", ".join(deployment.skipped) + "[/]")


def cmd_deploy(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    _print_deployment(cloud)
    return 0


def cmd_upload(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    for uploaded in cloud.upload(args.files):
        out.print(f"uploaded s3://{cloud.bucket}/{uploaded.key}  job {uploaded.job_id}")
    if not cloud.runtime_running_elsewhere():
        out.print("[yellow]no `localcloud up` is running: the file is processed when one starts[/]")
    return 0


def cmd_run(cloud: LocalCloud, args: argparse.Namespace) -> int:
    missing = [str(p) for p in args.files if not p.is_file()]
    if missing:
        err.print(f"[red]no such file: {', '.join(missing)}[/]")
        return 2
    started = time.monotonic()
    cloud.start(with_runtime=True)
    uploaded = cloud.upload(args.files)
    try:
        if args.json:
            jobs = cloud.wait(uploaded, timeout=args.timeout)
        else:
            jobs = _wait_with_progress(cloud, uploaded, args.timeout)
    except RunTimeout as error:
        err.print(f"[red]{error}[/]")
        return 1
    finally:
        cloud.close()
    elapsed = time.monotonic() - started
    if args.json:
        totals = {c: sum(getattr(j, c) for j in jobs) for c in COUNTER_COLUMNS}
        print(json.dumps({"jobs": [j.to_json() for j in jobs], "totals": totals,
                          "elapsed_seconds": round(elapsed, 2)}, indent=2))
    else:
        out.print(jobs_table(jobs, title=f"Settled in {elapsed:.1f} s"))
        out.print("Inspect: [b]python -m localcloud outbox[/], [b]python -m localcloud dlq[/], "
                  "[b]python -m localcloud logs SendEmailFunction[/]")
    return 0 if all(j.status.value == "SUCCEEDED" for j in jobs) else 1


def _wait_with_progress(cloud: LocalCloud, uploaded: list, timeout: float) -> list[Job]:
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        tasks = [progress.add_task(f"{u.key} pending", total=None) for u in uploaded]

        def show(jobs: list[Job]) -> None:
            for task, job in zip(tasks, jobs, strict=True):
                progress.update(task, description=f"{job.key} {job.status.value.lower()}",
                                total=job.rows if job.stage.value not in ("PENDING", "PARSING") else None,
                                completed=job.settled)

        return cloud.wait(uploaded, timeout=timeout, on_progress=show)


def cmd_invoke(cloud: LocalCloud, args: argparse.Namespace) -> int:
    event = json.loads(args.event.read_text(encoding="utf-8")) if args.event else {}
    cloud.start(with_runtime=False)
    invocation = cloud.invoke(args.function, event)
    sys.stderr.write(invocation.log)
    err.print(f"[dim]REPORT RequestId: {invocation.request_id} Duration: {invocation.duration_ms:.2f} ms "
              f"Init Duration: {invocation.init_ms:.2f} ms Max Memory Used: {invocation.max_memory_mb} MB[/]")
    print(json.dumps(invocation.response if invocation.ok else invocation.error, indent=2, default=str))
    return 0 if invocation.ok else 1


LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


def log_line_matches(message: str, job: str | None, level: str | None) -> bool:
    """--job and --level look inside Powertools' JSON lines (moto ignores JSON filter patterns)."""
    if not job and not level:
        return True
    try:
        record = json.loads(message)
    except json.JSONDecodeError:
        return False
    if not isinstance(record, dict):
        return False
    if job and job not in str(record.get("correlation_id") or record.get("job_id") or ""):
        return False
    return not level or LEVELS.get(str(record.get("level")).upper(), 0) >= LEVELS[level]


def cmd_logs(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    since = _since_ms(args.since)
    seen: set[str] = set()
    while True:
        for event in cloud.log_events(args.function, since_ms=since, contains=args.filter):
            if event["eventId"] in seen or not log_line_matches(event["message"], args.job, args.level):
                continue
            seen.add(event["eventId"])
            print(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(event['timestamp'] / 1000))} "
                  f"{event['message'].rstrip()}")
            since = max(since or 0, event["timestamp"])
        if not args.follow:
            return 0
        sys.stdout.flush()
        time.sleep(1)


def cmd_dlq(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    if args.action == "redrive":
        if args.reason not in REDRIVABLE:
            err.print(f"[red]only {' and '.join(REDRIVABLE)} letters can be redriven: bounced addresses are "
                      "permanent, and an unknown outcome must first be checked with the provider[/]")
            return 2
        outcomes = cloud.redrive(args.reason)
        for why, count in outcomes.items():
            out.print(f"{count} x {why}")
        out.print(f"{sum(outcomes.values())} {args.reason} letter(s) handled; `localcloud up` or `run` processes "
                  "the redriven contacts")
        return 0
    output = "ParseFailuresQueueUrl" if args.parse_failures else "DeadLetterQueueUrl"
    letters = cloud.dead_letters(output)
    if args.json:
        print(json.dumps(letters, indent=2, ensure_ascii=False))
        return 0
    if args.parse_failures:
        for letter in letters:
            out.print_json(data=letter)
        out.print(f"{len(letters)} failed parse invocation(s)")
        return 0
    table = Table(title=f"Dead-letter queue: {len(letters)} message(s)")
    for column in ("reason", "email", "file", "row", "attempt", "provider response"):
        table.add_column(column)
    for letter in letters:
        table.add_row(letter.get("reason", "?"), letter.get("email", ""), letter.get("source_key", ""),
                      str(letter.get("row", "")), str(letter.get("attempt", "")),
                      letter.get("provider_response", "") or letter.get("message", "")[:80])
    out.print(table)
    return 0


def cmd_outbox(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    entries = cloud.outbox()
    if args.json:
        print(json.dumps([{"to": e.to, "attempt": e.attempt, "outcome": e.outcome.value,
                           "provider_message_id": e.provider_message_id, "idempotency_key": e.idempotency_key,
                           "subject": e.subject, "body": e.body, "received_at": e.received_at} for e in entries],
                         indent=2, ensure_ascii=False))
        return 0
    shown = entries[-args.last:] if args.last else entries
    if cloud.email_provider == "ses":
        table = Table(title=f"Emulator's SES: {len(entries)} message(s) accepted")
        for column in ("to", "subject", "SES message id"):
            table.add_column(column)
        for entry in shown:
            table.add_row(entry.to, entry.subject, entry.provider_message_id)
    else:
        table = Table(title=f"Simulated provider outbox: {len(entries)} attempt(s)")
        for column in ("received", "to", "attempt", "outcome", "provider message id"):
            table.add_column(column)
        for entry in shown:
            table.add_row(entry.received_at, entry.to, str(entry.attempt), entry.outcome.value,
                          entry.provider_message_id)
    out.print(table)
    return 0


def _selected_jobs(cloud: LocalCloud, selector: str | None) -> list[Job]:
    return [j for j in cloud.jobs() if not selector or selector == j.job_id or selector in j.key]


def cmd_status(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    jobs = _selected_jobs(cloud, args.job)
    if args.watch and not args.json:
        with Live(jobs_table(jobs), console=out, refresh_per_second=4) as live:
            while not all(job.done for job in jobs):
                time.sleep(0.5)
                jobs = _selected_jobs(cloud, args.job)
                live.update(jobs_table(jobs))
    if args.json:
        print(json.dumps({"jobs": [j.to_json() for j in jobs]}, indent=2))
    elif not args.watch:
        out.print(jobs_table(jobs))
    if args.job and not jobs:
        err.print(f"[red]no job matches {args.job!r}[/]")
        return 1
    return 0


def emf_totals(messages: list[str]) -> dict[str, dict[str, Any]]:
    """Sum the Embedded Metric Format lines Powertools wrote to the logs, per metric name."""
    totals: dict[str, dict[str, Any]] = {}
    for message in messages:
        if '"_aws"' not in message:
            continue
        try:
            record = json.loads(message)
        except json.JSONDecodeError:
            continue
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                values = record.get(metric["Name"])
                values = values if isinstance(values, list) else [values]
                total = totals.setdefault(metric["Name"], {"unit": metric.get("Unit", ""), "sum": 0.0,
                                                           "samples": 0, "max": None})
                for value in values:
                    if isinstance(value, (int, float)):
                        total["sum"] += value
                        total["samples"] += 1
                        total["max"] = value if total["max"] is None else max(total["max"], value)
    return totals


def cmd_metrics(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    messages = [e["message"] for f in cloud.deployment.functions for e in cloud.log_events(f)]
    totals = emf_totals(messages)
    if args.json:
        print(json.dumps(totals, indent=2))
        return 0
    table = Table(title="Metrics from the functions' logs (EMF)")
    for column in ("metric", "unit", "sum", "samples", "max"):
        table.add_column(column, justify="left" if column in ("metric", "unit") else "right")
    for name, total in sorted(totals.items()):
        table.add_row(name, total["unit"], f"{total['sum']:g}", str(total["samples"]),
                      "" if total["max"] is None else f"{total['max']:g}")
    out.print(table)
    return 0


def cmd_sample(cloud: LocalCloud, args: argparse.Namespace) -> int:
    path = write_sample(args.path, args.rows, start=args.start, seed=args.seed, invalid_every=args.invalid_every)
    out.print(f"wrote {args.rows} lines to {path}")
    return 0


def cmd_env_vars(cloud: LocalCloud, args: argparse.Namespace) -> int:
    """JSON for `sam local invoke --env-vars`: each function's environment as deployed."""
    if args.from_stack:
        cloudformation = (boto3.client("cloudformation", region_name=cloud.settings.region)
                          if cloud.settings.endpoint == "aws"
                          else aws_client("cloudformation", cloud.settings.endpoint, cloud.settings.region))
        variables = stack_env_vars(cloud.settings, cloudformation, args.function_endpoint)
    else:
        cloud.start(with_runtime=False)
        variables = {spec.logical_id: {**spec.environment, "AWS_ENDPOINT_URL": args.function_endpoint}
                     for spec in cloud.deployment.functions.values()}
    print(json.dumps(variables, indent=2))
    return 0


def cmd_stop(cloud: LocalCloud, args: argparse.Namespace) -> int:
    stopped = stop_background_emulator(cloud.settings.state_dir)
    out.print("stopped the background moto server" if stopped else "no background moto server was running")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localcloud", description=__doc__)
    parser.add_argument("--endpoint", help="AWS endpoint (default: $LOCALCLOUD_ENDPOINT or http://127.0.0.1:4566)")
    parser.add_argument("--parameter-overrides", default="",
                        help="template parameters, as `sam deploy` takes them: Key=Value ...")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="emulator + deploy + runtime, in the foreground until Ctrl-C")
    up.add_argument("-v", "--verbose", action="store_true", help="print a line per invocation")
    up.set_defaults(handler=cmd_up)
    commands.add_parser("deploy", help="create the template's resources on the endpoint").set_defaults(
        handler=cmd_deploy)
    upload = commands.add_parser("upload", help="upload files into incoming/ (the running runtime processes them)")
    upload.add_argument("files", nargs="+", type=Path)
    upload.set_defaults(handler=cmd_upload)
    run = commands.add_parser("run", help="upload files, wait until every row is settled, print the summary")
    run.add_argument("files", nargs="+", type=Path)
    run.add_argument("--json", action="store_true", help="print one JSON object with the jobs")
    run.add_argument("--timeout", type=float, default=900, help="seconds to wait for the jobs to settle")
    run.set_defaults(handler=cmd_run)
    invoke = commands.add_parser("invoke", help="invoke a function once with an event (like `sam local invoke`)")
    invoke.add_argument("function", help="logical id (ParseCsvFunction) or function name")
    invoke.add_argument("-e", "--event", type=Path, help="JSON event file, e.g. events/s3_put.json")
    invoke.set_defaults(handler=cmd_invoke)
    logs = commands.add_parser("logs", help="a function's CloudWatch logs")
    logs.add_argument("function")
    logs.add_argument("--filter", help="only lines containing this text")
    logs.add_argument("--since", help="e.g. 10m, 2h")
    logs.add_argument("--job", help="only JSON lines of this job (its id, or part of it)")
    logs.add_argument("--level", type=str.upper, choices=list(LEVELS), help="only JSON lines at this level or above")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.set_defaults(handler=cmd_logs)
    dlq = commands.add_parser("dlq", help="the dead-letter queue, read without consuming it (or redriven)")
    dlq.add_argument("action", nargs="?", choices=["show", "redrive"], default="show")
    dlq.add_argument("--reason", help=f"with redrive: {' or '.join(REDRIVABLE)}")
    dlq.add_argument("--json", action="store_true")
    dlq.add_argument("--parse-failures", action="store_true", help="the parse function's on-failure queue instead")
    dlq.set_defaults(handler=cmd_dlq)
    outbox = commands.add_parser("outbox", help="every send attempt the provider received "
                                                      "(the emulator's SES with EMAIL_PROVIDER=ses)")
    outbox.add_argument("--json", action="store_true")
    outbox.add_argument("--last", type=int, default=0, help="only the last N attempts")
    outbox.set_defaults(handler=cmd_outbox)
    status = commands.add_parser("status", help="import jobs and their counters")
    status.add_argument("job", nargs="?", help="a job id, or part of a file's key")
    status.add_argument("--json", action="store_true")
    status.add_argument("-w", "--watch", action="store_true", help="live table until the jobs are settled")
    status.set_defaults(handler=cmd_status)
    metrics = commands.add_parser("metrics", help="sums of the EMF metrics found in the functions' logs")
    metrics.add_argument("--json", action="store_true")
    metrics.set_defaults(handler=cmd_metrics)
    sample = commands.add_parser("sample", help="write a sample contacts file in the seed's format")
    sample.add_argument("path", type=Path)
    sample.add_argument("--rows", type=int, default=1000)
    sample.add_argument("--start", type=int, default=0, help="first contact number (overlapping ranges share contacts)")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--invalid-every", type=int, default=0, help="make every Nth line malformed")
    sample.set_defaults(handler=cmd_sample)
    env_vars = commands.add_parser("env-vars", help="JSON for `sam local invoke --env-vars`: each function's "
                                   "environment as deployed (here, or with --from-stack on LocalStack/AWS)")
    env_vars.add_argument("--from-stack", action="store_true",
                          help="read the stack from CloudFormation at --endpoint (LocalStack; `--endpoint aws`: AWS)")
    env_vars.add_argument("--function-endpoint", default="http://host.docker.internal:4566",
                          help="AWS_ENDPOINT_URL as seen from sam's container ('' for none, e.g. real AWS)")
    env_vars.set_defaults(handler=cmd_env_vars)
    commands.add_parser("stop", help="stop the background moto server").set_defaults(handler=cmd_stop)
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops `up` and `run` as cleanly as Ctrl-C
    try:
        settings = CloudSettings.load(endpoint=args.endpoint, overrides=parse_overrides(args.parameter_overrides))
        cloud = LocalCloud(settings)
        try:
            return args.handler(cloud, args)
        finally:
            cloud.close()
    except (TemplateError, EmulatorError, ValueError, KeyError) as error:
        err.print(f"[red]localcloud: {error}[/]")
        return 2
    except BrokenPipeError:  # `localcloud logs ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
