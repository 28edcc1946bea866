"""Shared test set-up: no test talks to a real AWS account or to a developer's running endpoint."""

import os

# `make test-e2e` with AWS_ENDPOINT_URL set runs the e2e suite against that endpoint (a LocalStack, say).
E2E_ENDPOINT = os.environ.get("AWS_ENDPOINT_URL", "")

# moto's mock_aws does not intercept clients that are pointed at an endpoint URL.
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    del os.environ[_name]
os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                   "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                   "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_NAMESPACE": "WelcomePipelineTests"})

# moto in-process (mock_aws) gets the same patches as the local cloud's server: atomic transactions,
# functions hosted by the runtime (not moto's Docker Lambda), the CloudFormation types moto lacks.
from localcloud.emulator.patches import apply as _patch_moto  # noqa: E402

_patch_moto()

from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from localcloud.config import CloudSettings  # noqa: E402
from localcloud.deploy import Deployment, deploy  # noqa: E402
from localcloud.deploy.template import load_template, transform  # noqa: E402


def transformed_resources(settings: CloudSettings, iam: Any) -> dict[str, Any]:
    """The template's resources as CloudFormation receives them: the code packaged to S3, then the SAM transform."""
    template = load_template(settings.template_path)
    template["Globals"]["Function"]["CodeUri"] = "s3://artifacts/functions.zip"
    return transform(template, settings.region, iam)["Resources"]


@pytest.fixture
def aws() -> Iterator[Deployment]:
    """The stack of template.yaml, deployed into moto's in-process mock (no server, no network)."""
    with mock_aws():
        yield deploy(CloudSettings.load(), client_factory=lambda service: boto3.client(service))


