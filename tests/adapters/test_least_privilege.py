"""Least privilege, read from the template as CloudFormation receives it (after the SAM transform): each function
has a role of its own that names its resources; nothing may receive or delete on every queue, touch every table or
bucket, or delete a ledger item."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from localcloud.config import CloudSettings
from tests.conftest import transformed_resources

DATA_SERVICES = ("sqs:", "dynamodb:", "s3:")
LEDGER_FORBIDDEN = {"dynamodb:DeleteItem", "dynamodb:DeleteTable", "dynamodb:Scan", "dynamodb:BatchWriteItem",
                    "dynamodb:*", "*"}
ALLOWED_MANAGED = ("service-role/AWSLambdaBasicExecutionRole", "AWSXrayWriteOnlyAccess")


@pytest.fixture(scope="module")
def resources() -> dict[str, Any]:
    with mock_aws():
        return transformed_resources(CloudSettings.load(), boto3.client("iam"))


def statements(role: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement of a role's inline policies; the branches of a Fn::If both count."""
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                yield from (branch for branch in statement["Fn::If"][1:] if "Ref" not in branch)
            else:
                yield statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def roles(resources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in resources.items() if r["Type"] == "AWS::IAM::Role"}


def test_each_function_has_a_role_of_its_own(resources):
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}
    role_of = {name: f["Properties"]["Role"]["Fn::GetAtt"][0] for name, f in functions.items()}
    assert role_of == {"ParseCsvFunction": "ParseCsvRole", "SendEmailFunction": "SendEmailRole",
                       "SesEventsFunction": "SesEventsRole"}
    assert set(roles(resources)) == set(role_of.values())  # SAM generated none


def test_no_role_gets_a_managed_policy_that_reaches_every_queue_or_table(resources):
    for name, role in roles(resources).items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            text = arn["Fn::Sub"] if isinstance(arn, dict) else arn
            assert text.endswith(ALLOWED_MANAGED), f"{name}: {text}"
            assert "SQSQueueExecutionRole" not in text and "DynamoDB" not in text


def test_every_data_action_names_its_resources(resources):
    for name, role in roles(resources).items():
        for statement in statements(role):
            actions = as_list(statement["Action"])
            if not any(a.startswith(DATA_SERVICES) for a in actions):
                continue
            assert not any(a.endswith(":*") or a == "*" for a in actions), f"{name} {statement['Sid']}: {actions}"
            for resource in as_list(statement["Resource"]):
                assert resource != "*" and not str(resource).endswith(":*"), f"{name} {statement['Sid']}"


def test_no_role_may_delete_or_scan_the_ledger(resources):
    for name, role in roles(resources).items():
        for statement in statements(role):
            if "ContactsTable" in json.dumps(statement["Resource"]):  # by GetAtt, or a Sub of its Ref
                assert not LEDGER_FORBIDDEN & set(as_list(statement["Action"])), f"{name} {statement['Sid']}"


def test_the_ledger_and_the_jobs_outlive_the_stack(resources):
    for table in ("ContactsTable", "JobsTable"):
        assert resources[table]["DeletionPolicy"] == resources[table]["UpdateReplacePolicy"] == "Retain"
        assert resources[table]["Properties"]["DeletionProtectionEnabled"] is True
        assert resources[table]["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"]


def test_only_send_email_may_send_email_from_the_sender_address_and_only_with_ses(resources):
    ses = [(name, s) for name, role in roles(resources).items() for s in statements(role)
           if any(a.startswith("ses:") for a in as_list(s["Action"]))]
    ((name, statement),) = ses
    assert name == "SendEmailRole" and as_list(statement["Action"]) == ["ses:SendEmail"]
    assert statement["Condition"] == {"StringEquals": {"ses:FromAddress": {"Ref": "SenderAddress"}}}
    (conditional,) = [s for s in resources["SendEmailRole"]["Properties"]["Policies"][0]["PolicyDocument"]
                      ["Statement"] if "Fn::If" in s]
    assert conditional["Fn::If"][0] == "UseSes" and conditional["Fn::If"][2] == {"Ref": "AWS::NoValue"}


def test_only_the_named_uploaders_may_put_files_where_they_are_imported(resources):
    # Uploading is emailing: with UploaderPrincipalArns set, everyone else is denied PutObject on incoming/
    statements_ = resources["UploadsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    (conditional,) = [s for s in statements_ if "Fn::If" in s]
    condition, deny, otherwise = conditional["Fn::If"]
    assert condition == "HasUploaderPrincipals" and otherwise == {"Ref": "AWS::NoValue"}
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:PutObject")
    assert deny["Resource"] == {"Fn::Sub": "${UploadsBucket.Arn}/incoming/*"}
    assert deny["Condition"] == {"ArnNotLike": {"aws:PrincipalArn": {"Ref": "UploaderPrincipalArns"}}}


def test_files_rejects_and_the_outbox_expire(resources):
    # Addresses and names at rest: imported files and rejects after ArchiveRetentionDays, the simulated
    # provider's outbox a month after each attempt (TTL); the ledger and jobs never (they are the record)
    rules = resources["UploadsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    expiring = {rule["Prefix"]: rule["ExpirationInDays"] for rule in rules if "Prefix" in rule}
    assert expiring == {prefix: {"Ref": "ArchiveRetentionDays"} for prefix in ("processed/", "failed/", "rejects/")}
    ttl = resources["OutboxTable"]["Properties"]["TimeToLiveSpecification"]
    assert ttl == {"AttributeName": "expires_at", "Enabled": True}
    assert "TimeToLiveSpecification" not in resources["ContactsTable"]["Properties"]


def test_the_stack_key_lets_cloudwatch_and_ses_publish_and_encrypts_what_holds_addresses(resources):
    key = resources["PipelineKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    services = [s for s in key["KeyPolicy"]["Statement"] if "Service" in s["Principal"]]
    (publish,) = services
    assert {"cloudwatch.amazonaws.com", "ses.amazonaws.com"} <= set(publish["Principal"]["Service"])
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    uses_key = {"Ref": "PipelineKey"}
    assert resources["AlarmTopic"]["Properties"]["KmsMasterKeyId"] == uses_key
    assert resources["SesEventsTopic"]["Properties"]["KmsMasterKeyId"] == uses_key
    assert resources["DeadLetterQueue"]["Properties"]["KmsMasterKeyId"] == uses_key
    (rule,) = resources["UploadsBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "aws:kms",
                                                     "KMSMasterKeyID": {"Fn::GetAtt": ["PipelineKey", "Arn"]}}


def test_only_ses_may_publish_to_the_ses_events_topic_for_this_configuration_set(resources):
    policy = resources["SesEventsTopicPolicy"]
    assert policy["Condition"] == "UseSes"
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "ses.amazonaws.com"} and statement["Action"] == "sns:Publish"
    source = statement["Condition"]["StringEquals"]["aws:SourceArn"]["Fn::Sub"]
    assert source.endswith(":configuration-set/${SendingConfigurationSet}")


def test_bounce_and_complaint_rates_have_alarms_that_reach_the_alarm_topic(resources):
    for name, metric, threshold in (("BounceRateAlarm", "Reputation.BounceRate", 0.05),
                                    ("ComplaintRateAlarm", "Reputation.ComplaintRate", 0.001)):
        alarm = resources[name]
        assert alarm["Condition"] == "UseSes"
        properties = alarm["Properties"]
        assert (properties["Namespace"], properties["MetricName"], properties["Threshold"]) == ("AWS/SES", metric,
                                                                                                 threshold)
        assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}]


def test_kms_is_granted_on_the_stack_key_only(resources):
    for name, role in roles(resources).items():
        for statement in statements(role):
            if any(a.startswith("kms:") for a in as_list(statement["Action"])):
                assert as_list(statement["Resource"]) == [{"Fn::GetAtt": ["PipelineKey", "Arn"]}], name
