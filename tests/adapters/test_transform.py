"""The SAM transform as `localcloud deploy` runs it: quiet when the template is fine."""

from __future__ import annotations

import gc
import logging

import boto3
from moto import mock_aws

from localcloud.config import CloudSettings
from tests.conftest import transformed_resources


def test_a_deployment_logs_no_warning_from_the_sam_translator(caplog):
    # Given the project's template, packaged as CloudFormation receives it
    settings = CloudSettings.load()

    # When it is transformed twice (samtranslator keeps the last translator's metrics until the next one)
    with caplog.at_level(logging.WARNING, logger="samtranslator"), mock_aws():
        for _ in range(2):
            resources = transformed_resources(settings, boto3.client("iam"))
        gc.collect()

    # Then the functions are there, and samtranslator said nothing (it warned of "unpublished metrics")
    assert "SendEmailFunction" in resources
    assert [r.getMessage() for r in caplog.records if r.name.startswith("samtranslator")] == []
