"""The commands of `localcloud`; each takes the LocalCloud and its parsed arguments and returns the exit code."""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from common.domain.columns import ColumnMapping, Unsure, mapping_metadata
from common.domain.jobs import Job
from common.domain.preview import preview
from common.domain.redrive import REDRIVABLE
from localcloud.cloud import LocalCloud, RunTimeout, log_line_matches
from localcloud.deploy.events import write_events
from localcloud.emulator.process import Answerer, identify, injected_faults, set_faults, stop_background_emulator
from localcloud.emulator.server import CONSOLE_PREFIX
from localcloud.processes import descendants
from localcloud.samples import write_sample

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


def _print_invocation(invocation: Any) -> None:
    state = "[green]ok[/]" if invocation.ok else f"[red]{invocation.error.get('errorType')}[/]" \
        if invocation.error else "?"
    err.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {invocation.function} {invocation.request_id[:8]} "
              f"{invocation.duration_ms:8.1f} ms {state}")


UP_STOP_SECONDS = 3.0  # `localcloud up` ends within 5 s of Ctrl-C or SIGTERM, on a busy machine too

# -- commands ------------------------------------------------------------------------------
def _inject_faults(cloud: LocalCloud, plan: str | None) -> None:
    """--faults (or LOCALCLOUD_FAULTS): the emulator injects them from now on (emulator/faults.py)."""
    if not plan:
        return
    if cloud.answerer is not Answerer.LOCALCLOUD:
        raise ValueError(f"--faults: {cloud.settings.endpoint} is {cloud.answerer}; faults are injected by the "
                         "embedded local cloud's emulator only")
    report = set_faults(cloud.settings.endpoint, plan)
    err.print(f"[yellow]faults injected from now on: {report['plan']}[/] (`localcloud faults` lists them)")


def cmd_up(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=True, on_invocation=_print_invocation if args.verbose else None)
    if cloud.hosts_functions and cloud.runtime is None:
        err.print("[red]another `localcloud up` already runs the functions for this endpoint[/]")
        return 1
    _inject_faults(cloud, args.faults)
    _print_deployment(cloud)
    _write_events(cloud)
    endpoint = cloud.settings.endpoint
    out.print(f"\nWith the standard tools: [b]export AWS_ENDPOINT_URL={endpoint}[/] (AWS CLI v2.13+, SAM CLI, "
              "boto3; or pass --endpoint-url, or use awslocal), then")
    out.print(f"  aws s3 cp contacts.csv s3://{cloud.bucket}/incoming/\n"
              f"  sam logs -n SendEmailFunction --stack-name {cloud.settings.stack_name}")
    if not cloud.hosts_functions:
        out.print(f"{endpoint} is {cloud.answered_by}: it runs the functions itself, so the local runtime stands "
                  "aside.")
        return 0
    out.print(f"Console: [b]{console_url(cloud)}[/]")
    started = cloud.started_emulator
    out.print("Functions are running. Ctrl-C to stop them" + (
        " and the emulator this command started." if started else
        f" (the emulator at {endpoint} was running before, and keeps running)."))
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        err.print("stopping the functions" + (" and the emulator..." if started else "..."))
    finally:
        # Within 5 s of Ctrl-C, whatever a stopping thread waits for: past UP_STOP_SECONDS, every process this
        # one started is killed (a killed runtime is recovered by the next one: runtime/journal.py).
        watchdog = threading.Timer(UP_STOP_SECONDS, _end_now)
        watchdog.daemon = True
        watchdog.start()
        try:
            cloud.close()
        finally:  # each step, even when the one before failed
            from localcloud.runtime.zygote import end_templates  # (only `up` and `run` load the runtime)

            try:
                end_templates()
            finally:
                if started:  # its data goes with it: a short wait, then SIGKILL
                    stop_background_emulator(cloud.settings.state_dir, endpoint, timeout=0.5)
                watchdog.cancel()
    return 0


def _end_now() -> None:
    """Stopping took too long: say where it was (every thread's stack), then end it all at once."""
    print(f"localcloud: stopping took over {UP_STOP_SECONDS:.0f} s; ending every process it started. "
          "Where each thread was:", file=sys.stderr, flush=True)
    faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
    for pid in reversed(descendants(os.getpid())):
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    os._exit(130)


def console_url(cloud: LocalCloud) -> str:
    return cloud.settings.endpoint.rstrip("/") + CONSOLE_PREFIX


def _print_deployment(cloud: LocalCloud) -> None:
    deployment = cloud.deployment
    if deployment is None:
        raise RuntimeError("the local cloud is not deployed")
    settings = cloud.settings
    table = Table(title=f"Stack {settings.stack_name} on {settings.endpoint} (from {settings.endpoint_source}): "
                        f"{cloud.answered_by}")
    table.add_column("output")
    table.add_column("value")
    for name, value in deployment.outputs.items():
        table.add_row(name, value)
    out.print(table)
    if deployment.not_emulated:
        out.print("[yellow]the emulator cannot create: " + ", ".join(deployment.not_emulated) + "[/]")
    if cloud.answerer is Answerer.OTHER:
        out.print(f"[yellow]warning: {cloud.settings.endpoint} is {cloud.answerer}; the pipeline is tested on the "
                  "embedded local cloud and AWS[/]")


def _write_events(cloud: LocalCloud) -> None:
    if cloud.deployment is not None:
        written = write_events(cloud.deployment, cloud.settings.root / "events")
        out.print(f"[dim]wrote {len(written)} events for this stack to events/ "
                  "(for `invoke -e` and `sam local invoke -e`)[/]")


def cmd_deploy(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.start(with_runtime=False)
    _print_deployment(cloud)
    _write_events(cloud)
    return 0


def cmd_events(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.connect()
    for path in write_events(cloud.deployed, args.directory):
        out.print(f"wrote {path}")
    return 0


def _missing(files: list[Path]) -> int:
    missing = [str(p) for p in files if not p.is_file()]
    if missing:
        err.print(f"[red]localcloud: no such file: {', '.join(missing)}[/]")
        return 2
    return 0


def cmd_upload(cloud: LocalCloud, args: argparse.Namespace) -> int:
    if _missing(args.files):
        return 2
    cloud.connect()
    mapping = _mapping(args)
    for uploaded in cloud.upload(args.files, metadata=mapping_metadata(mapping)):
        out.print(f"uploaded s3://{cloud.bucket}/{uploaded.key}  job {uploaded.job_id}"
                  + (f"  ({mapping.describe()})" if mapping else ""))
    if cloud.hosts_functions and not cloud.runtime_running_elsewhere():
        out.print("[yellow]no `localcloud up` is running: the file is processed when one starts[/]")
    return 0


def cmd_run(cloud: LocalCloud, args: argparse.Namespace) -> int:
    if _missing(args.files):
        return 2
    started = time.monotonic()
    cloud.start(with_runtime=True)
    _inject_faults(cloud, args.faults)
    if cloud.answerer is Answerer.LOCALCLOUD and not args.json:
        out.print(f"Watch it in the console: [b]{console_url(cloud)}[/]")
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
        out.print("Inspect: [b]localcloud outbox[/], [b]localcloud dlq[/], [b]localcloud contact EMAIL[/], "
                  "[b]localcloud logs SendEmailFunction[/]"
                  + (f", or the console at [b]{console_url(cloud)}[/]"
                     if cloud.answerer is Answerer.LOCALCLOUD else ""))
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


def read_event(source: str | None) -> Any:
    """`-e FILE`, `-e -` (standard input, as sam local invoke reads it), or none: an empty event."""
    if source is None:
        return {}
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"cannot read the event file {source}: {error.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"the event {'on standard input' if source == '-' else source} is not JSON: {error}") from None


def cmd_invoke(cloud: LocalCloud, args: argparse.Namespace) -> int:
    event = read_event(args.event)
    cloud.start(with_runtime=False)
    if not cloud.hosts_functions:
        err.print(f"[red]{cloud.settings.endpoint} runs the functions itself: use `aws lambda invoke` or "
                  "`sam local invoke` there[/]")
        return 2
    invocation = cloud.invoke(args.function, event)
    sys.stderr.write(invocation.log)
    err.print(f"[dim]REPORT RequestId: {invocation.request_id} Duration: {invocation.duration_ms:.2f} ms "
              f"Init Duration: {invocation.init_ms:.2f} ms Max Memory Used: {invocation.max_memory_mb} MB[/]")
    print(json.dumps(invocation.response if invocation.ok else invocation.error, indent=2, default=str))
    return 0 if invocation.ok else 1


def cmd_logs(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.connect()
    since = _since_ms(args.since)
    seen: set[object] = set()
    while True:
        for event in cloud.log_events(args.function, since_ms=since, contains=args.filter):
            # An event's id where the endpoint gives one (ministack 1.5 gives none): else what makes it itself.
            key = event.get("eventId") or (event.get("logStreamName"), event["timestamp"], event["message"])
            if key in seen or not log_line_matches(event["message"], args.job, args.level):
                continue
            seen.add(key)
            print(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(event['timestamp'] / 1000))} "
                  f"{event['message'].rstrip()}")
            since = max(since or 0, event["timestamp"])
        if not args.follow:
            return 0
        sys.stdout.flush()
        time.sleep(1)


def cmd_dlq(cloud: LocalCloud, args: argparse.Namespace) -> int:
    cloud.connect()
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
    cloud.connect()
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
    cloud.connect()
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
    if not args.json:
        for job in jobs:
            details = [f"read as: {job.read_as}"] if job.read_as else []
            details += [f"failed: {job.failure_reason}"] if job.failure_reason else []
            details += [f"{count} {note}" for note, count in job.notes.items()]
            if details:
                out.print(f"[dim]{job.key}: {'; '.join(details)}[/]", highlight=False)
            if job.needs_mapping is not None:
                _print_held(job.needs_mapping, job.key.rsplit("/", 1)[-1], f"s3://{job.bucket}/incoming/")
    if args.job and not jobs:
        err.print(f"[red]no job matches {args.job!r}[/]")
        return 1
    return 0


def _print_held(unsure: Unsure, name: str, destination: str) -> None:
    """A file held unsent: why, what it holds, and how to say which column is which."""
    out.print(f"[yellow]{name}: held, nothing sent: {unsure.reason}[/]", highlight=False)
    table = Table(title="its columns and first rows")
    for column in unsure.columns:
        table.add_column(column)
    for row in unsure.first_rows:
        table.add_row(*row[:len(unsure.columns)], *([""] * (len(unsure.columns) - len(row))))
    out.print(table)
    out.print("Say which column is which (a header label or a number from 1; name-columns=none for \"Hi there\"), "
              "and upload it again:", highlight=False)
    out.print(f"  localcloud upload {name} --email-column 2 --name-columns 1\n"
              f"  aws s3 cp {name} {destination} --metadata email-column=2,name-columns=1", highlight=False)


def cmd_preview(cloud: LocalCloud, args: argparse.Namespace) -> int:
    """How a file will be read and its first greetings, as they will be sent; nothing is uploaded."""
    if _missing([args.file]):
        return 2
    with args.file.open("rb") as stream:
        seen = preview(stream, args.file.name, _mapping(args), rows=args.rows)
    if args.json:
        print(json.dumps(seen.to_json(), indent=2, ensure_ascii=False))
        return 0 if not (seen.failure or seen.unsure) else 1
    if seen.failure:
        err.print(f"[red]{args.file.name} would FAIL: {seen.failure}[/]", highlight=False)
        return 1
    out.print(f"[b]read as:[/] {seen.read_as}", highlight=False)
    if seen.unsure is not None:
        _print_held(seen.unsure, args.file.name, "s3://BUCKET/incoming/")
        return 1
    table = Table(title=f"{args.file.name}: its first rows, as they will be sent (nothing was uploaded)")
    for column in ("line", "", "address", "email text, or why not"):
        table.add_column(column)
    colours = {"sent": "green", "invalid": "red", "duplicate": "yellow"}
    for row in seen.rows:
        table.add_row(str(row.line), f"[{colours[row.verdict]}]{row.verdict}[/]", row.address,
                      row.greeting or row.reason)
    out.print(table)
    for note, count in seen.notes.items():
        out.print(f"[dim]{count} {note}[/]")
    return 0


def _mapping(args: argparse.Namespace) -> ColumnMapping | None:
    email, names = getattr(args, "email_column", None) or "", getattr(args, "name_columns", None) or ""
    return ColumnMapping(email, names) if email or names else None


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
    cloud.connect()
    messages = [e["message"] for f in cloud.deployed.functions for e in cloud.log_events(f)]
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
    """JSON for `sam local invoke --env-vars`: each function's environment as the stack's Lambda reports it."""
    cloud.connect()
    variables = {spec.logical_id: {**spec.environment, **({"AWS_ENDPOINT_URL": args.function_endpoint}
                                                           if args.function_endpoint else {})}
                 for spec in cloud.deployed.functions.values()}
    print(json.dumps(variables, indent=2))
    return 0


def cmd_contact(cloud: LocalCloud, args: argparse.Namespace) -> int:
    """The ledger's item for one address: did this person get their email?"""
    cloud.connect()
    entry = cloud.contact(args.email)
    pseudonym = cloud.pseudonym(args.email)
    if entry is None:
        if args.json:
            print(json.dumps({"email": args.email, "found": False, "pseudonym": pseudonym}))
        else:
            out.print(f"{args.email}: not in the ledger (never claimed: not imported yet, or its row was invalid); "
                      f"its log lines would say contact={pseudonym}")
        return 1
    fields = {"email": entry.email, "pseudonym": pseudonym, "state": entry.state.value, "attempt": entry.attempt,
              "provider_message_id": entry.provider_message_id, "file": entry.source_key, "row": entry.row,
              "job": entry.job_id, "detail": entry.detail}
    if args.json:
        print(json.dumps({**fields, "found": True}, indent=2, ensure_ascii=False))
        return 0
    table = Table(title=f"Ledger: {entry.email}", show_header=False)
    for name, value in fields.items():
        table.add_row(name, str(value))
    out.print(table)
    out.print(f"Its log lines: [b]localcloud logs SendEmailFunction --filter {pseudonym}[/]")
    return 0


def cmd_console(cloud: LocalCloud, args: argparse.Namespace) -> int:
    """Our emulator serves the console itself; for another endpoint (LocalStack, AWS) it is served here."""
    cloud.connect()
    if cloud.answerer is Answerer.LOCALCLOUD:
        out.print(f"Console: [b]{console_url(cloud)}[/] (served by the embedded local cloud)")
        return 0
    from localcloud.console.app import ConsoleApp, serve

    server = serve(ConsoleApp(lambda: cloud.settings), args.port)
    out.print(f"Console for {cloud.settings.endpoint}: [b]http://127.0.0.1:{args.port}{CONSOLE_PREFIX}[/] "
              "(this machine only). Ctrl-C to stop.")
    try:
        _until_interrupted()
    finally:
        server.shutdown()
    return 0


def cmd_faults(cloud: LocalCloud, args: argparse.Namespace) -> int:
    """The emulator's fault plan and what it injected; with a plan (or --clear), set it first."""
    answerer = identify(cloud.settings.endpoint)
    if answerer is not Answerer.LOCALCLOUD:
        raise ValueError(f"{cloud.settings.endpoint} is {answerer}: faults are the embedded local cloud's")
    if args.plan is not None or args.clear:
        set_faults(cloud.settings.endpoint, "" if args.clear else args.plan)
    report = injected_faults(cloud.settings.endpoint)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    out.print(f"plan: [b]{report['plan'] or 'none'}[/]")
    table = Table(title=f"Faults injected ({len(report['injected'])})")
    table.add_column("operation")
    table.add_column("fault")
    table.add_column("count", justify="right")
    for key, count in sorted(report["counts"].items()):
        operation, fault = key.split(" ", 1)
        table.add_row(operation, fault, str(count))
    out.print(table)
    out.print(f"DynamoDB transactions answered from their ClientRequestToken: {report['dynamodb_token_replays']}")
    return 0


def cmd_stop(cloud: LocalCloud, args: argparse.Namespace) -> int:
    endpoint = cloud.settings.endpoint
    stopped = stop_background_emulator(cloud.settings.state_dir, endpoint)
    out.print(f"stopped the emulator at {endpoint}" if stopped else f"no emulator of ours was running at {endpoint}")
    return 0


def cmd_docker_host(cloud: LocalCloud, args: argparse.Namespace) -> int:
    from localcloud.image.host_network import HostNetworkDocker

    endpoint = HostNetworkDocker(args.socket or cloud.settings.state_dir / "docker.sock")
    out.print(f"Docker with host networking for SAM CLI: [b]export DOCKER_HOST={endpoint.docker_host}[/] "
              "(docs/sam-local.md). Ctrl-C to stop.")
    try:
        _until_interrupted()
    finally:
        endpoint.close()
    return 0


def _until_interrupted() -> None:
    """Serve until Ctrl-C."""
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
