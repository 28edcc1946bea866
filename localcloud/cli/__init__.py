"""`localcloud`: run welcome-pipeline on this laptop (no Docker), or drive its stack on LocalStack or AWS.

The endpoint: --endpoint URL (or `aws`), else $AWS_ENDPOINT_URL, else $LOCALSTACK_HOST, else the
embedded local cloud at http://127.0.0.1:4566. Only up, run, deploy and invoke start or deploy
anything; every other command reads the stack that is there.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from botocore.exceptions import ClientError, NoCredentialsError

from common.domain.contacts import InvalidEmail
from common.domain.redrive import REDRIVABLE
from localcloud.cli import commands
from localcloud.cloud import LEVELS, LocalCloud, NotImported, NotReady
from localcloud.config import CloudSettings, parse_overrides
from localcloud.deploy import TemplateError
from localcloud.emulator.patches import UnsupportedMoto
from localcloud.emulator.process import EmulatorError


def _shared_options(suppress: bool) -> argparse.ArgumentParser:
    """--endpoint and --parameter-overrides, accepted before or after the command (as sam takes them)."""
    default = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--endpoint", default=default,
                        help="AWS endpoint URL, or `aws` for real AWS (default: $AWS_ENDPOINT_URL, $LOCALSTACK_HOST, "
                             "else http://127.0.0.1:4566)")
    parser.add_argument("--parameter-overrides", default=argparse.SUPPRESS if suppress else "",
                        help="template parameters, as `sam deploy` takes them: Key=Value ...")
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="localcloud", description=__doc__, parents=[_shared_options(False)],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands_ = parser.add_subparsers(dest="command", required=True)
    shared = _shared_options(True)

    def command(name: str, handler, help: str) -> argparse.ArgumentParser:
        sub = commands_.add_parser(name, help=help, parents=[shared])
        sub.set_defaults(handler=handler)
        return sub

    faults_help = ("faults the emulator injects into the functions' requests, e.g. "
                   "'sesv2.SendEmail=lost-answer:0.05,dynamodb.*=lost-answer:0.05' (default: $LOCALCLOUD_FAULTS; "
                   "docs/reliability.md)")
    up = command("up", commands.cmd_up, "emulator + stack + functions, in the foreground until Ctrl-C")
    up.add_argument("-v", "--verbose", action="store_true", help="print a line per invocation")
    up.add_argument("--faults", default=os.environ.get("LOCALCLOUD_FAULTS"), help=faults_help)
    command("deploy", commands.cmd_deploy, "create or update the stack on the endpoint")
    upload = command("upload", commands.cmd_upload, "upload files into incoming/ (the running functions import them)")
    upload.add_argument("files", nargs="+", type=Path)
    mapping_help = ("which column holds the address: a header label or a number from 1 (x-amz-meta-email-column); "
                    "for a file held as NEEDS_MAPPING")
    upload.add_argument("--email-column", help=mapping_help)
    upload.add_argument("--name-columns", help="the name's column(s), comma-separated, or none for \"Hi there\" "
                                               "(x-amz-meta-name-columns)")
    preview = command("preview", commands.cmd_preview, "how a file will be read and its first emails, as they "
                                                       "will be sent; nothing is uploaded")
    preview.add_argument("file", type=Path)
    preview.add_argument("--email-column", help="as upload's")
    preview.add_argument("--name-columns", help="as upload's")
    preview.add_argument("--rows", type=int, default=10, help="how many rows to show (default 10)")
    preview.add_argument("--json", action="store_true")
    run = command("run", commands.cmd_run, "upload files, wait until every row is settled, print the summary")
    run.add_argument("files", nargs="+", type=Path)
    run.add_argument("--json", action="store_true", help="print one JSON object with the jobs")
    run.add_argument("--timeout", type=float, default=900, help="seconds to wait for the jobs to settle")
    run.add_argument("--faults", default=os.environ.get("LOCALCLOUD_FAULTS"), help=faults_help)
    invoke = command("invoke", commands.cmd_invoke, "invoke a function once with an event (like `sam local invoke`)")
    invoke.add_argument("function", help="logical id (ParseCsvFunction) or function name")
    invoke.add_argument("-e", "--event", help="JSON event file (e.g. events/s3_put.json), or - for standard input")
    logs = command("logs", commands.cmd_logs, "a function's CloudWatch logs")
    logs.add_argument("function", help="logical id (SendEmailFunction) or function name")
    logs.add_argument("--filter", help="only lines containing this text")
    logs.add_argument("--since", default="10m", help="e.g. 30s, 10m, 2h, 1d (default: 10m, as sam logs)")
    logs.add_argument("--job", help="only JSON lines of this job (its id, or part of it)")
    logs.add_argument("--level", type=str.upper, choices=list(LEVELS), help="only JSON lines at this level or above")
    logs.add_argument("-f", "--follow", action="store_true")
    dlq = command("dlq", commands.cmd_dlq, "the dead-letter queue, read without consuming it (or redriven)")
    dlq.add_argument("action", nargs="?", choices=["show", "redrive"], default="show")
    dlq.add_argument("--reason", help=f"with redrive: {' or '.join(REDRIVABLE)}")
    dlq.add_argument("--json", action="store_true")
    dlq.add_argument("--parse-failures", action="store_true", help="the parse function's on-failure queue instead")
    outbox = command("outbox", commands.cmd_outbox,
                     "every send attempt the provider received (the emulator's SES with EmailProvider=ses)")
    outbox.add_argument("--json", action="store_true")
    outbox.add_argument("--last", type=int, default=0, help="only the last N attempts")
    status = command("status", commands.cmd_status, "import jobs and their counters")
    status.add_argument("job", nargs="?", help="a job id, or part of a file's key")
    status.add_argument("--json", action="store_true")
    status.add_argument("-w", "--watch", action="store_true", help="live table until the jobs are settled")
    contact = command("contact", commands.cmd_contact, "the ledger's record of one address: did they get the email?")
    contact.add_argument("email")
    contact.add_argument("--json", action="store_true")
    metrics = command("metrics", commands.cmd_metrics, "sums of the EMF metrics found in the functions' logs")
    metrics.add_argument("--json", action="store_true")
    events = command("events", commands.cmd_events, "write sample events for the deployed stack (sam local invoke -e)")
    events.add_argument("directory", nargs="?", type=Path, default=Path("events"))
    sample = command("sample", commands.cmd_sample, "write a sample contacts file in the seed's format")
    sample.add_argument("path", type=Path)
    sample.add_argument("--rows", type=int, default=1000)
    sample.add_argument("--start", type=int, default=0, help="first contact number (overlapping ranges share contacts)")
    sample.add_argument("--seed", type=int, default=7)
    sample.add_argument("--invalid-every", type=int, default=0, help="make every Nth line malformed")
    env_vars = command("env-vars", commands.cmd_env_vars,
                       "JSON for `sam local invoke --env-vars`: each function's environment as deployed")
    env_vars.add_argument("--function-endpoint", default="http://127.0.0.1:4566",
                          help="AWS_ENDPOINT_URL as the function's container sees it (with --docker-network host, "
                               "the same as here; '' for none, e.g. real AWS)")
    console = command("console", commands.cmd_console,
                      "the web console's URL; against an endpoint that is not ours, serve it (until Ctrl-C)")
    console.add_argument("--port", type=int, default=4567, help="its port on 127.0.0.1 when served here")
    faults = command("faults", commands.cmd_faults, "the faults the emulator injects, and every one it injected")
    faults.add_argument("plan", nargs="?", help="set this plan first (see `up --faults`)")
    faults.add_argument("--clear", action="store_true", help="inject nothing from now on")
    faults.add_argument("--json", action="store_true")
    command("stop", commands.cmd_stop, "stop the emulator this checkout started at the endpoint, and no other")
    docker_host = command("docker-host", commands.cmd_docker_host,
                          "a Docker endpoint on which every container uses the host's network, for `sam local "
                          "invoke` (until Ctrl-C)")
    docker_host.add_argument("--socket", type=Path, help="its Unix socket (default: .localcloud/docker.sock)")
    return parser


def _fail(message: str) -> None:
    """One plain line on stderr (no wrapping or markup: scripts and tests read it)."""
    print(f"localcloud: {message}", file=sys.stderr)


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
    except NotReady as error:
        _fail(str(error))
        return 1
    except (TemplateError, EmulatorError, UnsupportedMoto, NotImported, InvalidEmail, ValueError, KeyError) as error:
        _fail(str(error).strip("'"))
        return 2
    except (ClientError, NoCredentialsError) as error:
        _fail(f"{args.endpoint or 'the endpoint'}: {error}")
        return 2
    except BrokenPipeError:  # `localcloud logs ... | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        return 130
