"""Chaos, end to end: `python -m bench.chaos` (`make chaos`).

A multi-thousand-row run on a fresh embedded local cloud whose Lambda runtime runs in a process of its
own (`localcloud up`), while files keep arriving and this driver SIGKILLs, at random moments:
- execution environments of send_email (`env:SendEmail` in `ps`) and parse_csv (`env:ParseCsv`),
  busy or idle;
- the runtime's template process (`env-template`), which environments are forked from;
- once mid-run, the runtime itself, which it then starts again, as a person would.
Meanwhile the emulator loses answers after acting (`--faults`, by default a share of every DynamoDB, SQS,
S3 and Secrets Manager request of the functions: localcloud/emulator/faults.py).
Then it waits for the pipeline to settle: for as long as it makes progress, and, without any, for as long
as the stack's own timeouts allow work to stay out of sight (a message hidden for its visibility timeout, a
claim leased past its sender's invocation, a blocked contact's delay). Work still pending after that is
"not settled", told apart from "lost", which is checked only once everything is quiet: no address got two
emails, no valid address was lost, every job SUCCEEDED with
`rows = invalid + duplicate + sent + bounced + exhausted + unknown`, and UNKNOWN only where a send was
cut off and the provider could not say (the simulated provider always can: none is expected).

parse_csv environments are killed at most once every PARSE_KILL_SPACING seconds: an upload is
retried twice by Lambda (1 s, then 2 s later), so no upload is killed on all three attempts; one that
is goes to the parse-failures queue, as on AWS, a path tested on its own (tests/e2e/test_pipeline.py).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import random
import signal
import subprocess  # starts our own interpreter  # nosec B404
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from common.domain.contacts import Contact, read_contacts
from common.domain.sending import LEASE_MARGIN_SECONDS
from common.domain.vocabulary import Outcome, State
from localcloud.cli.commands import emf_totals
from localcloud.cloud import LocalCloud, Uploaded
from localcloud.config import CloudSettings, local_environment
from localcloud.emulator.process import free_port, injected_faults, set_faults, start_emulator, terminate
from localcloud.runtime.zygote import TEMPLATE_PROCESS_NAME
from localcloud.samples import write_sample

SEND_ENVIRONMENT, PARSE_ENVIRONMENT = "env:SendEmail", "env:ParseCsv"
RUNTIME = "runtime"
PARSE_KILL_SPACING = 4.0
KIND_WEIGHTS = {SEND_ENVIRONMENT: 6, PARSE_ENVIRONMENT: 2, TEMPLATE_PROCESS_NAME: 1}
MINIMUM_KILLS = {SEND_ENVIRONMENT: 3, PARSE_ENVIRONMENT: 1, TEMPLATE_PROCESS_NAME: 1}
FINAL_STATES = {State.SENT, State.BOUNCED, State.EXHAUSTED, State.UNKNOWN, State.COMPLAINED}
# Answers lost after the service acted, for a share of the functions' requests (the runtime's own are spared).
DEFAULT_FAULTS = ("dynamodb.*=lost-answer:0.02,sqs.*=lost-answer:0.05,s3.*=lost-answer:0.1,"
                  "secretsmanager.*=lost-answer:0.1")
SEND_QUEUES = ("ContactsQueueUrl", "RetryQueueUrl")
_PR_SET_CHILD_SUBREAPER = 36


@dataclass
class ChaosReport:
    rows: int
    files: int
    kills: dict[str, int]
    redeliveries: int
    lease_takeovers: int
    unknown: int
    sent_twice: list[str]
    lost: list[str]  # checked once the pipeline is quiet; empty while it is not settled
    not_settled: list[str]  # work still pending when the stack's own timeouts said it should be done
    jobs_wrong: list[str]  # settled, but not SUCCEEDED or not adding up
    wall_seconds: float
    settle_seconds: float  # from the last kill until every job settled and every queue was empty
    patience_seconds: float  # how long the pipeline may show no progress (from the stack's timeouts)
    answers_lost: dict[str, int] = field(default_factory=dict)  # by service.Operation
    token_replays: int = 0  # repeated DynamoDB transactions answered from their ClientRequestToken
    recoveries: list[str] = field(default_factory=list)  # what each restarted runtime cleaned up
    dead_letters: dict[str, int] = field(default_factory=dict)  # by reason

    @property
    def passed(self) -> bool:
        return not (self.sent_twice or self.lost or self.not_settled or self.jobs_wrong or self.unknown)


def _descendants_by_name(root: int) -> dict[str, list[int]]:
    """Live processes under `root` (Linux /proc), grouped by their name (comm)."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            name, rest = (entry / "stat").read_text().rsplit(")", 1)
        except (OSError, ValueError):
            continue
        state, parent = rest.split()[:2]
        if state != "Z":
            children.setdefault(int(parent), []).append(int(entry.name))
            names[int(entry.name)] = name.split("(", 1)[1]
    found: dict[str, list[int]] = {}
    stack = list(children.get(root, []))
    while stack:
        pid = stack.pop()
        found.setdefault(names[pid], []).append(pid)
        stack += children.get(pid, [])
    return found


def _reap_adopted(own_children: set[int]) -> None:
    """Orphans re-parented to this driver (a sub-reaper) are reaped here once they end."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in own_children:
            continue
        try:
            rest = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if rest[0] == "Z" and int(rest[1]) == os.getpid():
            with contextlib.suppress(ChildProcessError):
                os.waitpid(int(entry.name), os.WNOHANG)


class Runtime:
    """`localcloud up` for the endpoint, in a process of its own."""

    def __init__(self, endpoint: str, environment: dict[str, str], log_path: Path):
        self.endpoint, self.environment, self.log_path = endpoint, environment, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0

    def start(self, state_dir: Path) -> None:
        lock = state_dir / "runtime.json"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module  # nosec B603
                [sys.executable, "-m", "localcloud", "up", "--endpoint", self.endpoint], env=self.environment,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)
        self.started += 1
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # running once it has written its lock
            try:
                if json.loads(lock.read_text()).get("pid") == self.process.pid:
                    return
            except (OSError, ValueError):
                pass
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"the local runtime did not start; see {self.log_path}")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        terminate(self.process, timeout=30)


class Chaos:
    def __init__(self, rng: random.Random):
        self.rng = rng
        self.kills: Counter[str] = Counter()
        self._last_parse_kill = -PARSE_KILL_SPACING

    def enough(self) -> bool:
        """Every kind killed at least its minimum (tests/e2e/test_chaos.py asks for these)."""
        return all(self.kills[kind] >= least for kind, least in MINIMUM_KILLS.items())

    def kill_one(self) -> None:
        """SIGKILL one process of a randomly drawn kind among those running now."""
        # Under this driver: the runtime's processes, and environments whose template or runtime died (they
        # live on, re-parented to this sub-reaper).
        running = _descendants_by_name(os.getpid())
        if time.monotonic() - self._last_parse_kill < PARSE_KILL_SPACING:
            running[PARSE_ENVIRONMENT] = []
        kinds = [kind for kind in KIND_WEIGHTS if running.get(kind)]
        if not kinds:
            return
        kind = self.rng.choices(kinds, weights=[KIND_WEIGHTS[k] for k in kinds])[0]
        try:
            os.kill(self.rng.choice(running[kind]), signal.SIGKILL)
        except ProcessLookupError:
            return
        self.kills[kind] += 1
        if kind == PARSE_ENVIRONMENT:
            self._last_parse_kill = time.monotonic()


def _files(workdir: Path, rows: int, count: int) -> list[Path]:
    """`count` seed-format files of rows/count lines; neighbours share a tenth of their contacts; some rows invalid."""
    per_file = rows // count
    return [write_sample(workdir / f"chaos-{number:02d}.csv", per_file, start=number * (per_file - per_file // 10),
                         invalid_every=97) for number in range(count)]


def _queue_depths(cloud: LocalCloud) -> dict[str, tuple[int, int, int]]:
    """(visible, in flight, delayed) messages of each queue the pipeline works from."""
    sqs = cloud.client("sqs")
    urls = {name: cloud.deployed.output(name) for name in (*SEND_QUEUES, "ParseContinuationsQueueUrl")}
    urls["S3 events"] = sqs.get_queue_url(
        QueueName=cloud.deployed.function("ParseCsvFunction").async_queue)["QueueUrl"]
    depths = {}
    for name, url in urls.items():
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
        depths[name] = (int(attributes["ApproximateNumberOfMessages"]),
                        int(attributes["ApproximateNumberOfMessagesNotVisible"]),
                        int(attributes["ApproximateNumberOfMessagesDelayed"]))
    return depths


def settle_patience(cloud: LocalCloud) -> float:
    """How long the pipeline may show no progress at all and still be working, from the stack: a message whose
    invocation died unseen stays hidden for its queue's visibility timeout; a claim stays leased for its sender's
    timeout and the lease margin; a blocked contact waits for its retry delay."""
    sqs = cloud.client("sqs")
    visibility = max(int(sqs.get_queue_attributes(QueueUrl=cloud.deployed.output(name), AttributeNames=[
        "VisibilityTimeout"])["Attributes"]["VisibilityTimeout"]) for name in SEND_QUEUES)
    lease = cloud.deployed.function("SendEmailFunction").timeout_seconds + LEASE_MARGIN_SECONDS
    return visibility + lease + int(cloud.deployed.parameters.get("RetryMaxDelaySeconds", 900))


def _progress(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} chaos: {text}", file=sys.stderr, flush=True)


def _settle(cloud: LocalCloud, uploaded: list[Uploaded], patience: float, cap: float) -> list[str]:
    """Wait until every job is done and every queue empty, for as long as something moves (a count, a queue)
    and at most `patience` seconds of stillness (or `cap` in all); returns what was still pending."""
    started = last_change = said = time.monotonic()
    last: tuple | None = None
    while True:
        jobs, depths = cloud.jobs(uploaded), _queue_depths(cloud)
        if all(job.done for job in jobs) and not any(sum(depth) for depth in depths.values()):
            return []
        now = time.monotonic()
        if (state := (tuple(job.settled for job in jobs), tuple(depths.values()))) != last:
            last, last_change = state, now
        if now - last_change > patience or now - started > cap:
            return [f"{job.key} {job.status} {job.settled}/{job.rows}" for job in jobs if not job.done] + [
                f"{name}: {depth[0]} visible, {depth[1]} in flight, {depth[2]} delayed"
                for name, depth in depths.items() if sum(depth)] + [
                f"nothing moved for {now - last_change:.0f} s (patience {patience:.0f} s), {now - started:.0f} s "
                "after the last kill"]
        if now - said > 10:
            said = now
            _progress("settling: " + ", ".join(f"{job.settled}/{job.rows}" for job in jobs))
        time.sleep(1)


def _check(cloud: LocalCloud, files: list[Path],
           uploaded: list[Uploaded]) -> tuple[list[str], list[str], int, list[str]]:
    """Once quiet."""
    """(sent twice, lost, UNKNOWN, jobs whose counters do not add up) from the outbox, the ledger and the jobs."""
    delivered = Counter(entry.to for entry in cloud.outbox() if entry.outcome is Outcome.DELIVERED)
    sent_twice = sorted(address for address, count in delivered.items() if count > 1)
    addresses = {verdict.email for path in files
                 for verdict in read_contacts(path.read_text().splitlines()) if isinstance(verdict, Contact)}
    lost, unknown = [], 0
    for address in sorted(addresses):
        entry = cloud.contact(address)
        if entry is None:
            lost.append(f"{address}: not in the ledger")
        elif entry.state not in FINAL_STATES:
            lost.append(f"{address}: {entry.state} attempt {entry.attempt} carrier {entry.carrier} lease ends in "
                        f"{entry.lease_until - time.time():.0f} s, row {entry.row} of {entry.source_key}")
        elif entry.state in (State.SENT, State.COMPLAINED) and not delivered[address]:
            lost.append(f"{address}: SENT in the ledger, never received by the provider")
        unknown += entry is not None and entry.state is State.UNKNOWN
    unbalanced = [f"{job.key}: {job.status}, rows {job.rows} != {job.settled} accounted"
                  for job in cloud.jobs(uploaded)
                  if job.status.value != "SUCCEEDED"
                  or job.rows != job.invalid + job.duplicate + job.sent + job.bounced + job.exhausted + job.unknown]
    return sent_twice, lost, unknown, unbalanced


def run_chaos(rows: int, files: int, chaos_seconds: float, seed: int, workdir: Path,
              settle_cap: float = 3600, faults: str = DEFAULT_FAULTS) -> ChaosReport:
    rng = random.Random(seed)  # noqa: S311 - which process, when: not a secret  # nosec B311
    ctypes.CDLL(None).prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans re-parent here, to be killed too
    state_dir = workdir / "state"
    endpoint = f"http://127.0.0.1:{free_port()}"
    environment = {**os.environ, **local_environment(endpoint, "us-east-1"), "LOCALCLOUD_STATE_DIR": str(state_dir)}
    environment.pop("LOCALCLOUD_FAULTS", None)  # set once on the emulator below, not again by each runtime
    os.environ["LOCALCLOUD_STATE_DIR"] = str(state_dir)
    emulator = start_emulator(endpoint, workdir / "emulator.log", detached=False)
    runtime = Runtime(endpoint, environment, workdir / "runtime.log")
    try:
        cloud = LocalCloud(CloudSettings.load(endpoint=endpoint)).start(with_runtime=False)
        patience = settle_patience(cloud)
        if faults:
            set_faults(endpoint, f"{faults},seed={seed}")
        runtime.start(state_dir)
        paths = _files(workdir, rows, files)
        chaos = Chaos(rng)
        uploaded: list[Uploaded] = []
        started = time.monotonic()
        upload_at = [started + chaos_seconds * 0.8 * n / files for n in range(files)]
        kill_runtime_at = started + chaos_seconds * 0.5
        # At least `chaos_seconds`, and on a slow machine longer (3x at most), until every kind was killed as
        # often as the test asks: sending may start late in the window when parsing is slow.
        while ((now := time.monotonic()) < started + chaos_seconds
               or (not chaos.enough() and now < started + 3 * chaos_seconds)):
            while upload_at and upload_at[0] <= now:
                upload_at.pop(0)
                uploaded += cloud.upload([paths[len(uploaded)]])
            if kill_runtime_at and now >= kill_runtime_at:
                runtime.kill()
                chaos.kills[RUNTIME] += 1
                kill_runtime_at = 0
                time.sleep(rng.uniform(0.5, 2.0))
                runtime.start(state_dir)
                _progress("killed the runtime and started another")
            chaos.kill_one()
            _reap_adopted({process.pid for process in (emulator.process, runtime.process) if process})
            time.sleep(rng.uniform(0.2, 1.0))
        uploaded += cloud.upload(paths[len(uploaded):])
        chaos_over = time.monotonic()
        _progress(f"kills over: {dict(chaos.kills)}")
        not_settled = _settle(cloud, uploaded, patience, settle_cap)
        settled = time.monotonic()
        report = injected_faults(endpoint)
        set_faults(endpoint, "")  # the checks read in peace
        sent_twice, lost, unknown, unbalanced = _check(cloud, paths, uploaded)
        if not_settled:
            lost = []  # not quiet yet: a contact not final may still be on its way
        metrics = emf_totals([event["message"] for function in cloud.deployed.functions
                              for event in cloud.log_events(function)])
        recoveries = [line.strip() for line in runtime.log_path.read_text(errors="replace").splitlines()
                      if "died: killed the processes" in line]
        dead_letters = Counter(letter.get("reason", "?") for letter in cloud.dead_letters())
        return ChaosReport(
            rows=sum(sum(1 for line in path.read_text().splitlines() if line.strip()) for path in paths),
            files=len(paths), kills=dict(chaos.kills),
            redeliveries=int(metrics.get("MessagesRedelivered", {}).get("sum", 0)),
            lease_takeovers=int(metrics.get("LeaseTakeovers", {}).get("sum", 0)), unknown=unknown,
            sent_twice=sent_twice, lost=lost, not_settled=not_settled, jobs_wrong=[] if not_settled else unbalanced,
            wall_seconds=settled - started, settle_seconds=settled - chaos_over, patience_seconds=patience,
            answers_lost=dict(Counter(fault["target"] for fault in report["injected"])),
            token_replays=report["dynamodb_token_replays"], recoveries=recoveries, dead_letters=dict(dead_letters))
    finally:
        runtime.stop()
        emulator.stop()


def print_report(report: ChaosReport, console: Console) -> None:
    table = Table(title=f"Chaos: {report.rows:,} rows in {report.files} files, "
                        + ("PASSED" if report.passed else "FAILED"))
    table.add_column("")
    table.add_column("", justify="right")
    for kind, count in sorted(report.kills.items()):
        table.add_row(f"SIGKILL {kind}", str(count))
    table.add_row("messages redelivered (at least)", str(report.redeliveries))
    table.add_row("lease takeovers (at least)", str(report.lease_takeovers))
    table.add_row("answers lost after the service acted", str(sum(report.answers_lost.values())))
    for target, count in sorted(report.answers_lost.items()):
        table.add_row(f"  {target}", str(count))
    table.add_row("  DynamoDB repeats answered from their token", str(report.token_replays))
    table.add_row("UNKNOWN outcomes", str(report.unknown))
    for reason, count in sorted(report.dead_letters.items()):
        table.add_row(f"dead letters: {reason}", str(count))
    table.add_row("addresses sent twice", str(len(report.sent_twice)))
    table.add_row("valid addresses lost", str(len(report.lost)) if not report.not_settled else "not checked")
    table.add_row("not settled when the stack's timeouts said it should be", str(len(report.not_settled)))
    table.add_row("jobs not SUCCEEDED or not adding up", str(len(report.jobs_wrong)))
    table.add_row("wall time, s", f"{report.wall_seconds:.1f}")
    table.add_row("settling after the last kill, s", f"{report.settle_seconds:.1f}")
    table.add_row("patience without progress (from the stack), s", f"{report.patience_seconds:.0f}")
    console.print(table)
    for line in report.recoveries:
        console.print(f"[dim]restarted runtime: {line}[/]")
    for name, items in (("sent twice", report.sent_twice), ("lost", report.lost),
                        ("not settled", report.not_settled), ("jobs", report.jobs_wrong)):
        for item in items[:10]:
            console.print(f"[red]{name}: {item}[/]")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--files", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=30, help="how long the kills go on")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--settle-timeout", type=float, default=3600,
                        help="the most seconds to wait for settling in all (stillness is bounded by the stack's "
                             "timeouts anyway)")
    parser.add_argument("--faults", default=DEFAULT_FAULTS,
                        help=f"what the emulator does to the functions' requests ('' for nothing; default: "
                             f"{DEFAULT_FAULTS}; the seed is --seed)")
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--workdir", type=Path, help="keep the files and logs here (default: a temporary folder)")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up the emulator and runtime on `kill`
    if args.workdir:
        report = run_chaos(args.rows, args.files, args.seconds, args.seed, args.workdir, args.settle_timeout,
                           args.faults)
    else:
        with tempfile.TemporaryDirectory(prefix="welcome-chaos-") as workdir:
            report = run_chaos(args.rows, args.files, args.seconds, args.seed, Path(workdir), args.settle_timeout,
                               args.faults)
    if args.json:
        print(json.dumps({**asdict(report), "passed": report.passed}))
    else:
        print_report(report, Console())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
