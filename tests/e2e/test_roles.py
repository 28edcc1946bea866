"""Every AWS request the functions make on the local cloud is an action their roles grant (tests/e2e/roles.py)."""

from __future__ import annotations

import pytest

from localcloud.samples import write_sample
from tests.e2e.roles import calls_outside_roles, touched_so_far

pytestmark = [pytest.mark.e2e,
              pytest.mark.embedded_cloud("reads every call the functions made, as the local runtime saw them")]


def test_every_call_parse_and_send_made_is_granted_by_their_roles(cloud, tmp_path):
    # Given a file imported and sent (invalid rows, duplicates, bounces and blocked retries among its rows)
    before = touched_so_far(cloud)
    (job,) = cloud.wait(cloud.upload([write_sample(tmp_path / "roles.csv", 400, start=31_000, invalid_every=40,
                                                   tag_every=20)]), timeout=180)
    assert job.status.value == "SUCCEEDED" and job.bounced and job.retried
    # Then no request either function (or its event source) made falls outside its role
    assert calls_outside_roles(cloud, before) == []
    touched = {(service, operation) for service, operation, _ in cloud.runtime.pools["SendEmailFunction"].aws_resources}
    assert {("dynamodb", "UpdateItem"), ("dynamodb", "PutItem"), ("sqs", "SendMessageBatch")} <= touched
