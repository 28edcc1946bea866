"""template.yaml deployed as a CloudFormation stack (SAM transform, moto's CloudFormation in-process), read back
from the stack, updated in place; local settings that never reach a SAM environment; endpoint conventions."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from localcloud.config import DEFAULT_ENDPOINT, CloudSettings, resolve_endpoint
from localcloud.deploy import TemplateError, deploy, read_stack
from localcloud.deploy.events import stack_events
from localcloud.emulator import patches

ROOT = Path(__file__).resolve().parents[2]


def _deploy(**overrides: str):
    return deploy(CloudSettings.load(overrides=overrides), client_factory=lambda service: boto3.client(service))


def test_every_resource_of_the_template_is_a_resource_of_the_stack(aws):
    # Given the stack deployed from template.yaml (the `aws` fixture)
    cloudformation = boto3.client("cloudformation")
    # Then CloudFormation knows it, with its outputs, and every function as one of its resources
    stack = cloudformation.describe_stacks(StackName="welcome-pipeline")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert {o["OutputKey"] for o in stack["Outputs"]} >= {"UploadsBucketName", "ContactsQueueUrl", "JobsTableName"}
    kinds = {kind for kind, _ in aws.resources.values()}
    assert {"AWS::Lambda::Function", "AWS::Lambda::EventSourceMapping", "AWS::CloudWatch::Alarm",
            "AWS::S3::BucketPolicy", "AWS::Lambda::EventInvokeConfig", "AWS::IAM::Role"} <= kinds
    assert set(aws.functions) == {"ParseCsvFunction", "SendEmailFunction"}
    # And the functions' settings come from Lambda as deployed, not from local naming rules
    send = aws.functions["SendEmailFunction"]
    assert send.name == aws.outputs["SendEmailFunctionName"] and send.name.startswith("welcome-pipeline-SendEmail")
    assert send.environment["CONTACTS_TABLE"] == aws.outputs["ContactsTableName"]
    # And send_email reads first attempts and retries from two queues, each event source with its own limit
    assert sorted(source.queue_url for source in send.sqs_sources) == sorted(
        [aws.outputs["ContactsQueueUrl"], aws.outputs["RetryQueueUrl"]])
    assert {(source.batch_size, source.max_concurrency, source.report_batch_item_failures)
            for source in send.sqs_sources} == {(10, 24, True)}
    parse = aws.functions["ParseCsvFunction"]
    assert parse.async_retries == 2 and parse.on_failure_queue_url.endswith(
        aws.outputs["ParseFailuresQueueUrl"].rsplit("/", 1)[1])
    # And the bucket notifies the parse function of every upload in incoming/ (it decides what it reads)
    notifications = boto3.client("s3").get_bucket_notification_configuration(Bucket=aws.outputs["UploadsBucketName"])
    rules = [{r["Name"].lower(): r["Value"] for r in c["Filter"]["Key"]["FilterRules"]}
             for c in notifications["LambdaFunctionConfigurations"]]
    assert rules == [{"prefix": "incoming/"}]


def test_deploying_again_is_a_stack_update_and_an_unchanged_stack_is_left_alone():
    def pseudonym_key(deployment) -> str:
        return boto3.client("secretsmanager").get_secret_value(
            SecretId=deployment.outputs["PseudonymKeySecretArn"])["SecretString"]

    with mock_aws():
        first = _deploy()
        assert first.changed
        key = pseudonym_key(first)
        assert not _deploy().changed  # nothing changed: no update
        # When a parameter changes
        updated = _deploy(MaxSendAttempts="7")
        # Then the same stack is updated in place: same tables, the function sees the new value
        assert updated.changed
        assert updated.outputs["ContactsTableName"] == first.outputs["ContactsTableName"]
        assert updated.functions["SendEmailFunction"].environment["MAX_SEND_ATTEMPTS"] == "7"
        assert read_stack(updated.settings, lambda service: boto3.client(service)).parameters[
            "MaxSendAttempts"] == "7"
        # And the generated pseudonym key is kept, so log lines before and after still match
        assert pseudonym_key(updated) == key and len(key) == 64


def test_a_wrong_parameter_is_refused_before_anything_is_deployed():
    with mock_aws():
        with pytest.raises(TemplateError, match="unknown parameters: NoSuchParameter"):
            _deploy(NoSuchParameter="1")
        with pytest.raises(TemplateError, match="EmailProvider='pigeon' is not one of"):
            _deploy(EmailProvider="pigeon")
        assert boto3.client("cloudformation").list_stacks()["StackSummaries"] == []


def test_one_resource_of_the_stack_is_described_as_aws_cloudformation_describe_stack_resource_does(aws):
    # Given the deployed stack, some of whose resources are not created (the SES ones, by their Condition)
    cloudformation = boto3.client("cloudformation")
    # When one resource is asked for by its logical id
    detail = cloudformation.describe_stack_resource(StackName="welcome-pipeline", LogicalResourceId="RetryQueue")
    # Then it is that resource
    assert detail["StackResourceDetail"]["PhysicalResourceId"] == aws.outputs["RetryQueueUrl"]
    # And a resource the stack does not have is a ValidationError, as on AWS
    with pytest.raises(ClientError, match="Resource NoSuchThing does not exist for stack welcome-pipeline"):
        cloudformation.describe_stack_resource(StackName="welcome-pipeline", LogicalResourceId="NoSuchThing")


def test_events_name_the_deployed_stack_s_bucket_queues_and_account(aws):
    events = stack_events(aws)
    s3 = events["s3_put.json"]["Records"][0]["s3"]
    assert s3["bucket"]["name"] == aws.outputs["UploadsBucketName"]
    queue_arn = events["sqs_contacts.json"]["Records"][0]["eventSourceARN"]
    assert queue_arn == aws.functions["SendEmailFunction"].sqs_sources[0].queue_arn
    assert events["ses_bounce.json"]["mail"]["sendingAccountId"] == aws.account
    # And none is committed with an account or bucket of its own
    tracked = subprocess.run(["git", "ls-files", "events"], cwd=ROOT, capture_output=True, text=True).stdout.split()
    assert [name for name in tracked if name.endswith(".json")] == []


def test_local_parameter_values_are_in_no_sam_environment():
    samconfig = tomllib.loads((ROOT / "samconfig.toml").read_text())
    for environment in samconfig.values():
        if isinstance(environment, dict):
            for command in environment.values():
                assert "parameter_overrides" not in command.get("parameters", {})
    local = tomllib.loads((ROOT / "localcloud.toml").read_text())
    assert local["parameters"]["MaxSendRate"] == 0


def test_the_endpoint_follows_the_conventions_of_local_aws_tools():
    assert resolve_endpoint("http://x:1", {"AWS_ENDPOINT_URL": "http://y:2"}) == ("http://x:1", "--endpoint")
    assert resolve_endpoint(None, {"AWS_ENDPOINT_URL": "http://y:2", "LOCALSTACK_HOST": "z"})[0] == "http://y:2"
    assert resolve_endpoint(None, {"LOCALSTACK_HOST": "localstack"})[0] == "http://localstack:4566"
    assert resolve_endpoint(None, {"LOCALSTACK_HOST": "127.0.0.1:4599"})[0] == "http://127.0.0.1:4599"
    assert resolve_endpoint(None, {}) == (DEFAULT_ENDPOINT, "default")
    assert CloudSettings.load(endpoint="aws").is_real_aws


def test_the_emulator_refuses_a_moto_its_patches_were_not_written_for(monkeypatch):
    monkeypatch.setattr(patches, "version", lambda name: "9.9.9")
    with pytest.raises(patches.UnsupportedMoto, match=f"written for moto {patches.MOTO_VERSION}, and moto 9.9.9"):
        patches.check_moto_version()


def test_resource_types_the_endpoint_cannot_create_are_named_at_deploy_time():
    # Given an endpoint whose CloudFormation says it creates no alarms
    with mock_aws():
        from moto.cloudformation.parsing import get_model_map

        supported = set(get_model_map()) - {"AWS::CloudWatch::Alarm"}
        deployment = deploy(CloudSettings.load(), client_factory=lambda service: boto3.client(service),
                            supported_types=supported)
    # Then the deployment names each alarm, not dropping it silently
    assert {"DeadLetterQueueNotEmptyAlarm (AWS::CloudWatch::Alarm)", "UnknownOutcomeAlarm (AWS::CloudWatch::Alarm)",
            "ParseErrorsAlarm (AWS::CloudWatch::Alarm)"} <= set(deployment.not_emulated)


def test_editing_the_template_and_deploying_again_updates_the_same_stack(tmp_path):
    # Given the project copied, deployed, then its template edited (a queue's visibility timeout)
    (tmp_path / "functions").symlink_to(ROOT / "functions")
    template = (ROOT / "template.yaml").read_text()
    (tmp_path / "template.yaml").write_text(template)
    with mock_aws():
        first = deploy(CloudSettings.load(root=tmp_path), client_factory=lambda service: boto3.client(service))
        assert "VisibilityTimeout: 960" in template
        (tmp_path / "template.yaml").write_text(template.replace("VisibilityTimeout: 960", "VisibilityTimeout: 901"))
        # When it is deployed again
        second = deploy(CloudSettings.load(root=tmp_path), client_factory=lambda service: boto3.client(service))
        url = second.outputs["ParseContinuationsQueueUrl"]
        timeout = boto3.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    # Then it is an update of the same stack: same queue, new setting, same tables
    assert second.changed and url == first.outputs["ParseContinuationsQueueUrl"]
    assert timeout["Attributes"]["VisibilityTimeout"] == "901"
    assert second.outputs["ContactsTableName"] == first.outputs["ContactsTableName"]


def test_the_localcloud_command_is_installed_in_the_venv():
    import shutil
    import sys

    script = shutil.which("localcloud", path=str(Path(sys.executable).parent))
    assert script is not None
    result = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "AWS_ENDPOINT_URL" in result.stdout


def test_the_parse_only_benchmark_runs(tmp_path):
    # bench.parse_only keeps its own stand-in of the jobs port: it must follow the port
    from localcloud.samples import write_sample

    sample = write_sample(tmp_path / "s.csv", 300)
    result = subprocess.run([sys.executable, "-m", "bench.parse_only", str(sample)], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["rows"] == 300
