"""`python launch_localemu.py start --host H --port P`, with localemu's own Python: localemu with four version-guarded
patches, for `make test-localstack` only (docs/local-cloud.md, "Other emulators").

1. localemu 1.3.2 runs `docker pull` for the Lambda runtime image on every CreateFunction
   (services/lambda_/invocation/docker_runtime_executor.py, `_ensure_runtime_image_present`), even when the image
   is there, so with no registry reachable every function is Failed. The patch skips the pull when the image is
   local (`make lambda-image` builds it), and pulls as before when it is not.
2. This machine has no Docker bridge, so Lambda containers share the host's network, and the init localemu copies
   into each one (/var/rapid/init, LocalStack's lambda-runtime-init) listens on fixed addresses: its invoke endpoint
   on port 9563 (LOCALEMU_INTEROP_PORT changes it), its Runtime API on "127.0.0.1:9001" and its X-Ray daemon on
   "127.0.0.1:2000" (literals in the binary; a second container exits on the taken X-Ray port). The patch gives
   each container a loopback address of its own (127.a.b.c, as long as 127.0.0.1, so the two literals are
   rewritten in a copy of the init of the same size) and a free invoke port. Without it, one container at a time.
3. localemu's DynamoDB is moto's, called from many request threads at once. moto is not safe for that: concurrent
   TransactWriteItems fail with 500 "dictionary changed size during iteration" (botocore's backoff then runs a
   function out of time), and a cancelled transaction restores a copy of the whole table, undoing a concurrent
   committed write (docs/moto-bugs.md, case 1). The patch serialises its DynamoDB calls into moto, as our own
   emulator does (localemu/services/moto.py, `dispatch_to_moto`, which the provider and its fallback both call).
4. moto-ext 5.1.54 (localemu's moto) deep-copies every table a transaction touches before it writes, to restore
   it if a condition fails: each TransactWriteItems costs the size of the ledger, and the suite's run slowed to a
   transaction every few seconds, with localemu at 100% of a core in copy.deepcopy. As in our own emulator
   (localcloud/emulator/patches/atomic_transactions.py), every condition is checked first and the writes happen
   only when all hold, so nothing needs restoring; with (3), no other request runs in between. A copy, not an
   import of ours: those patches, and the fast condition evaluation they use, are checked against moto 5.2.5
   only, so here conditions are moto-ext's own and the refusals are moto-ext's.
"""

import copy
import hashlib
import importlib.metadata
import socket
import sys
import tempfile
import threading
from pathlib import Path

CHECKED_VERSIONS = {"1.3.2"}

installed = importlib.metadata.version("localemu")
if installed not in CHECKED_VERSIONS:
    sys.exit(f"launch_localemu: localemu {installed} is not a version this patch was checked against "
             f"({', '.join(sorted(CHECKED_VERSIONS))}); check _ensure_runtime_image_present, then add it")

# -- 1. no pull of an image that is here -------------------------------------------------------------------------
from localemu.services.lambda_.invocation import docker_runtime_executor as executor  # noqa: E402
from localemu.utils.container_utils.container_client import NoSuchImage  # noqa: E402

_pull_always = executor._ensure_runtime_image_present


def _pull_when_missing(image: str, platform: object) -> None:
    try:
        executor.CONTAINER_CLIENT.inspect_image(image, pull=False)
    except NoSuchImage:
        _pull_always(image, platform)
        return
    executor.PULLED_IMAGES.add((image, platform))


executor._ensure_runtime_image_present = _pull_when_missing

# -- 2. each Lambda container on addresses of its own -------------------------------------------------------------
from localemu import config  # noqa: E402
from localemu.services.lambda_.invocation.executor_endpoint import INVOCATION_PORT  # noqa: E402
from localemu.utils.net import get_free_tcp_port  # noqa: E402

CHECKED_INITS = {  # sha256 of localemu 1.3.2's runtime/lambda-init/<arch>/init
    "cf3bb0f8b349cb0eb58ab8fc797c10d97db5d132f233edc088350e602069bb70",  # x86_64
    "2c9882349d354bda5fb7f26a5fb13a2f6bd1687d84c6650d39e47c4b83df2b18",  # arm64
}
RUNTIME_API, XRAY = b"127.0.0.1:9001", b"127.0.0.1:2000"
LOOPBACKS = [f"127.{a}.{b}.{c}" for a in range(1, 10) for b in range(10) for c in range(10)]  # 9 characters each

if INVOCATION_PORT != 9563 or config.LAMBDA_PREBUILD_IMAGES or config.LAMBDA_INIT_BIN_PATH:
    sys.exit("launch_localemu: containers on addresses of their own need the init copied in at each start "
             "(no LAMBDA_PREBUILD_IMAGES, no LAMBDA_INIT_BIN_PATH)")

_lock = threading.Lock()
_taken: dict[str, str] = {}  # executor id -> its loopback address
_starting = threading.local()  # the address of the container this thread is starting
_client_path = executor.get_runtime_client_path
_do_start = executor.DockerRuntimeExecutor._do_start
_stop = executor.DockerRuntimeExecutor.stop


def _free(address: str) -> bool:
    """Nothing listens on the address's Runtime API and X-Ray ports (localemu shares the containers' network)."""
    with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        try:
            tcp.bind((address, 9001))
            udp.bind((address, 2000))
        except OSError:
            return False
    return True


def _take(executor_id: str) -> str:
    with _lock:
        for address in LOOPBACKS:
            if address not in _taken.values() and _free(address):
                _taken[executor_id] = address
                return address
    raise RuntimeError("launch_localemu: no loopback address left for another Lambda container")


def _release(executor_id: str) -> None:
    with _lock:
        _taken.pop(executor_id, None)


def _init_for(arch: object, address: str) -> Path:
    """A folder holding var/rapid/init, its two addresses rewritten to `address` (made once per address)."""
    source = Path(_client_path(arch=arch))
    root = Path(tempfile.gettempdir()) / "localemu-lambda-init" / source.name / address
    target = root / "var" / "rapid" / "init"
    if not target.exists():
        data = (source / "var" / "rapid" / "init").read_bytes()
        if hashlib.sha256(data).hexdigest() not in CHECKED_INITS:
            raise RuntimeError(f"launch_localemu: the Lambda init under {source} is not one this patch was checked on")
        for literal in (RUNTIME_API, XRAY):
            if data.count(literal) != 1:
                raise RuntimeError(f"launch_localemu: {literal!r} is not in the Lambda init exactly once")
            data = data.replace(literal, address.encode() + literal[len(b"127.0.0.1"):])
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"init.{threading.get_ident()}")
        partial.write_bytes(data)
        partial.chmod(0o755)  # nosec B103 - an executable for the container, in our own scratch folder
        partial.replace(target)
    return root


def _client_path_for_this_start(arch: object = None) -> object:
    address = getattr(_starting, "address", None)
    return _init_for(arch, address) if address else _client_path(arch=arch)


def _start_on_own_addresses(self, env_vars: dict[str, str]) -> None:
    address, port = _take(self.id), get_free_tcp_port()
    env_vars.update({"LOCALEMU_INTEROP_PORT": str(port),
                     "AWS_XRAY_DAEMON_ADDRESS": f"{address}:2000", "_AWS_XRAY_DAEMON_ADDRESS": address})
    self.executor_endpoint.container_port = port  # invocations go to http://127.0.0.1:<port>/invoke
    _starting.address = address
    try:
        _do_start(self, env_vars)
    except BaseException:
        _release(self.id)
        raise
    finally:
        _starting.address = None


def _stop_and_release(self) -> None:
    try:
        _stop(self)
    finally:
        _release(self.id)


executor.get_runtime_client_path = _client_path_for_this_start
executor.DockerRuntimeExecutor._do_start = _start_on_own_addresses
executor.DockerRuntimeExecutor.stop = _stop_and_release

# -- 3. one DynamoDB call into moto at a time ---------------------------------------------------------------------
from localemu.services import moto as moto_dispatch  # noqa: E402

_dispatch_to_moto = moto_dispatch.dispatch_to_moto
_one_at_a_time = threading.RLock()


def _dispatch_dynamodb_alone(context: object) -> object:
    """Every call into moto passes here (the provider's own handlers and the operations it leaves to moto)."""
    if context.service.service_name != "dynamodb":
        return _dispatch_to_moto(context)
    with _one_at_a_time:
        return _dispatch_to_moto(context)


moto_dispatch.dispatch_to_moto = _dispatch_dynamodb_alone

# -- 4. transactions checked first, no copy of the tables ----------------------------------------------------------
from moto.dynamodb.comparisons import get_filter_expression  # noqa: E402
from moto.dynamodb.exceptions import (  # noqa: E402
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend  # noqa: E402

MOTO_EXT = importlib.metadata.version("moto-ext")
if MOTO_EXT != "5.1.54":
    sys.exit(f"launch_localemu: moto-ext {MOTO_EXT} is not the version this patch was checked against (5.1.54); "
             "check DynamoDBBackend.transact_write_items, then add it")


def _transact_write_items_checked_first(self: DynamoDBBackend, transact_items: list[dict]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    planned = _planned(self, transact_items)
    errors = [_condition_error(self, op_type, op, key) for op_type, op, key in planned]
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    before = [(op["TableName"], key, copy.deepcopy(self.get_item(op["TableName"], key))) for _, op, key in planned]
    try:
        for op_type, op, key in planned:
            _apply(self, op_type, op, key)
    except Exception:  # an update expression moto rejects while applying: the items as they were
        for table_name, key, item in before:
            if item is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, item.to_json()["Attributes"])
        raise


def _planned(backend: DynamoDBBackend, transact_items: list[dict]) -> list[tuple[str, dict, dict]]:
    """(operation, its parameters, its item's key) for each, refused as moto refuses them."""
    planned, seen = [], set()
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        table = backend.get_table(op["TableName"])
        if op_type == "Put":
            key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
            if table.range_key_attr is not None:
                key[table.range_key_attr] = op["Item"][table.range_key_attr]
        else:
            key = op["Key"]
        if (op["TableName"], str(key)) in seen:
            raise MultipleTransactionsException()
        seen.add((op["TableName"], str(key)))
        planned.append((op_type, op, key))
    return planned


def _condition_error(backend: DynamoDBBackend, op_type: str, op: dict, key: dict) -> tuple:
    """(code, message, old item) as TransactionCanceledException reports each item; all None if it holds."""
    if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
        return "ValueError", "Unsupported transaction operation", None
    current = backend.get_item(op["TableName"], key)
    condition = op.get("ConditionExpression")
    if condition is None or get_filter_expression(
            condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")).expr(current):
        return None, None, None
    old = current.to_json()["Attributes"] if (
        current and op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD") else None
    return "ConditionalCheckFailed", "The conditional request failed", old


def _apply(backend: DynamoDBBackend, op_type: str, op: dict, key: dict) -> None:
    names, values = op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
    if op_type == "Put":
        backend.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                         expression_attribute_values=values)
    elif op_type == "Delete":
        backend.delete_item(op["TableName"], key)
    elif op_type == "Update":
        backend.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                            expression_attribute_names=names, expression_attribute_values=values)


DynamoDBBackend.transact_write_items = _transact_write_items_checked_first

from localemu.cli.main import main  # noqa: E402

sys.argv[0] = "localemu"
main()
