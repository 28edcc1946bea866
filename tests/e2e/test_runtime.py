"""The local Lambda runtime's own semantics: context, timeouts, errors, warm environments, concurrency."""

from __future__ import annotations

from dataclasses import replace

import pytest

from localcloud.deploy import Deployment, FunctionSpec
from localcloud.runtime.runtime import CloudWatchLogWriter, FunctionPool
from localcloud.samples import write_sample

pytestmark = [pytest.mark.e2e, pytest.mark.embedded_cloud("tests the local Lambda runtime")]


def pool_for(cloud, handler: str, timeout: int = 3) -> FunctionPool:
    deployment: Deployment = cloud.deployment
    spec = FunctionSpec(logical_id="Probe", name="probe", arn="arn:aws:lambda:us-east-1:123456789012:function:probe",
                        handler=f"tests.e2e.handlers_for_runtime.{handler}", timeout_seconds=timeout,
                        memory_mb=128, environment={"POWERTOOLS_SERVICE_NAME": "probe"})
    return FunctionPool(spec, deployment, CloudWatchLogWriter(deployment), concurrency=1)


def test_a_warm_environment_is_reused_and_sees_the_template_timeout(cloud):
    pool = pool_for(cloud, "sleepy")
    first, second = pool.invoke({}), pool.invoke({})
    assert first.ok and second.ok
    assert first.response["pid"] == second.response["pid"]
    assert first.init_ms > 0 and second.init_ms == 0
    assert 2_000 < first.response["remaining_ms"] <= 3_000
    assert first.response["function"] == "probe"
    pool.close()


def test_an_invocation_past_its_timeout_is_killed_and_the_next_one_starts_fresh(cloud):
    pool = pool_for(cloud, "sleepy", timeout=1)
    slow = pool.invoke({"seconds": 40})
    assert slow.timed_out and slow.error["errorType"] == "Sandbox.Timedout"
    assert slow.error["errorMessage"] == "Task timed out after 1.00 seconds"
    fresh = pool.invoke({})
    assert fresh.ok and fresh.init_ms > 0
    pool.close()


def test_an_exception_is_the_invocations_error_like_lambdas(cloud):
    pool = pool_for(cloud, "failing")
    failed = pool.invoke({})
    assert failed.error["errorType"] == "ValueError" and failed.error["errorMessage"] == "bad input"
    assert failed.error["stackTrace"]
    pool.close()


def test_the_send_function_never_runs_more_environments_than_its_maximum_concurrency(cloud, tmp_path):
    # Given more contact batches than the send function may process at once
    cloud.wait(cloud.upload([write_sample(tmp_path / "many.csv", 600, start=50_000)]), timeout=120)
    spec = cloud.deployment.function("SendEmailFunction")
    limit = sum(source.max_concurrency for source in spec.sqs_sources)  # first attempts and retries, each its own
    streams = cloud.client("logs").describe_log_streams(logGroupName=spec.log_group)["logStreams"]
    assert streams and len(streams) <= limit
    # and every AWS request the functions made was counted by service and operation
    requests = cloud.runtime.pools[spec.logical_id].aws_requests
    assert requests["dynamodb.TransactWriteItems"] > 0 and requests["dynamodb.BatchWriteItem"] > 0


def test_each_sqs_event_source_runs_at_most_its_own_maximum_concurrency(cloud):
    # Given the send function's pool, with room for both its event sources, and one source allowed 1 at a time
    from localcloud.runtime.runtime import SqsEventSource

    spec = cloud.deployment.function("SendEmailFunction")
    pool = cloud.runtime.pools[spec.logical_id]
    assert pool.concurrency == sum(source.max_concurrency for source in spec.sqs_sources)
    narrow = SqsEventSource(cloud.deployment, pool, replace(spec.sqs_sources[0], max_concurrency=1))
    # When it takes a slot, it gets no second one while the first is held, though the function has room
    assert narrow.take_slot()
    assert not narrow.take_slot()
    # And once released, the slot is its again
    narrow.give_back_slot()
    assert narrow.take_slot()
    narrow.give_back_slot()


def test_the_runtime_replaces_what_dies_and_the_next_file_settles_promptly(cloud, tmp_path):
    # Given the template process environments are forked from, and every idle environment, killed
    import os
    import signal
    import time

    from localcloud.runtime.zygote import zygote_for

    before = zygote_for(cloud.settings.root)
    victims = [before.pid] + [pid for pool in cloud.runtime.pools.values() for pid in pool.idle_pids]
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    # When a file is dropped
    started = time.monotonic()
    (job,) = cloud.wait(cloud.upload([write_sample(tmp_path / "after-kills.csv", 60, start=9100)]), timeout=90)
    # Then new environments (from a new template process) import and send it, without waiting out a
    # visibility timeout
    assert job.status.value == "SUCCEEDED" and job.rows == 60
    assert time.monotonic() - started < 60
    assert zygote_for(cloud.settings.root).pid != before.pid
