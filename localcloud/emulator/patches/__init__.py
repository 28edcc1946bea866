"""Every change the emulator makes to moto, applied in one place and only to the moto they were written for.

- `atomic_transactions`: a cancelled TransactWriteItems no longer undoes concurrent writes;
- `sqs_queues`: deletes under the queue's lock (no message back, none lost); long polls end when a
  delayed message matures;
- `speedups` and `motofast`: the costs profiling found on every request (parity-tested);
- `lambda_hosting`: the stack's functions run in the local runtime, not in moto's Docker Lambda;
- `localcloud.emulator.cloudformation`: the resource types moto's CloudFormation lacks.

Each rebinds moto internals, so a moto other than `MOTO_VERSION` is refused rather than half-patched.
"""

from __future__ import annotations

from importlib.metadata import version

MOTO_VERSION = "5.2.5"
_applied = False


class UnsupportedMoto(RuntimeError):
    pass


def check_moto_version() -> None:
    installed = version("moto")
    if installed != MOTO_VERSION:
        raise UnsupportedMoto(f"the local cloud's emulator patches were written for moto {MOTO_VERSION}, and moto "
                              f"{installed} is installed; install moto[server]=={MOTO_VERSION} "
                              "(requirements-dev.txt), or re-check each patch against the new version")


def apply() -> None:
    """Patch moto in this process: the emulator's server, or mock_aws in tests."""
    check_moto_version()
    global _applied
    if _applied:
        return
    from localcloud.emulator import cloudformation
    from localcloud.emulator.patches import atomic_transactions, lambda_hosting, speedups, sqs_queues

    # Order matters: `speedups` wraps DynamoDB's update_item with its fast path, and `atomic_transactions`
    # then serialises every DynamoDB operation, the fast path included (the other way round, fast updates
    # ran outside the lock and two conditional updates could both succeed).
    for patch in (speedups, atomic_transactions, sqs_queues, lambda_hosting):
        patch.apply()
    cloudformation.register()
    _applied = True
