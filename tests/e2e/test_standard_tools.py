"""The local cloud with the tools people use every day, run as subprocesses exactly as the README shows:
the AWS CLI v2, awslocal and the SAM CLI, against the stack `localcloud up` deployed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from common.domain.jobs import Upload
from localcloud.cloud import Uploaded
from localcloud.samples import write_sample

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def aws_cli_v2() -> str | None:
    """PyPI's awscli is v1 (no `aws logs tail`); Debian's `awscli` package is v2."""
    for candidate in (shutil.which("aws"), "/usr/bin/aws", "/usr/local/bin/aws"):
        if candidate and Path(candidate).exists():
            version = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
            if version.startswith("aws-cli/2."):
                return candidate
    return None


AWS = aws_cli_v2()
needs_aws = pytest.mark.skipif(AWS is None and not os.environ.get("CI"),
                               reason="AWS CLI v2 not installed (apt-get install awscli); .ci/run installs it")


@pytest.fixture
def shell(cloud, tmp_path):
    """A user's shell: the standard tools on PATH, credentials for the local endpoint, AWS_ENDPOINT_URL set."""
    assert AWS, "AWS CLI v2 is needed (apt-get install awscli)"
    venv_bin = str(Path(sys.executable).parent)
    env = {name: value for name, value in os.environ.items() if not name.startswith("AWS_ENDPOINT_URL")}
    env.update({"PATH": os.pathsep.join([str(Path(AWS).parent), venv_bin, env.get("PATH", "")]),
                "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": cloud.settings.endpoint, "SAM_CLI_TELEMETRY": "0", "AWS_PAGER": ""})

    def run(*args: str, extra: dict[str, str] | None = None) -> str:
        result = subprocess.run(list(args), cwd=tmp_path, env={**env, **(extra or {})}, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(args)}: {result.stderr}"
        return result.stdout

    return run


@needs_aws
def test_a_newcomer_follows_the_readme_with_the_aws_and_sam_clis(cloud, shell, tmp_path):
    endpoint = ["--endpoint-url", cloud.settings.endpoint]  # Debian's AWS CLI 2.9 predates AWS_ENDPOINT_URL
    # Given the stack's outputs, as CloudFormation reports them
    stack = json.loads(shell(AWS, "cloudformation", "describe-stacks", "--stack-name", cloud.settings.stack_name,
                             *endpoint))["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    bucket = outputs["UploadsBucketName"]
    assert bucket == cloud.bucket and stack["StackStatus"].endswith("_COMPLETE")

    # When a file is dropped with `aws s3 cp`
    contacts = write_sample(tmp_path / "contacts.csv", 40, start=7000)
    shell(AWS, "s3", "cp", str(contacts), f"s3://{bucket}/incoming/", *endpoint)

    # Then it is imported and settled by the stack's functions
    etag = hashlib.md5(contacts.read_bytes(), usedforsecurity=False).hexdigest()  # a one-part upload's ETag
    job_id = Upload(bucket=bucket, key="incoming/contacts.csv", etag=etag).job_id
    (job,) = cloud.wait([Uploaded(key="incoming/contacts.csv", job_id=job_id)], timeout=120)
    assert job.status.value == "SUCCEEDED" and job.rows == 40

    # And the functions' logs are there for `aws logs tail` and `sam logs`
    parse_group = f"/aws/lambda/{outputs['ParseCsvFunctionName']}"
    tailed = shell(AWS, "logs", "tail", parse_group, "--since", "10m", *endpoint)
    assert "START RequestId" in tailed and job_id in tailed
    sam_logs = shell("sam", "logs", "-n", "SendEmailFunction", "--stack-name", cloud.settings.stack_name)
    assert "REPORT RequestId" in sam_logs and re.search(r'"service": ?"send_email"', sam_logs)

    # And awslocal says what `aws --endpoint-url` says (LOCALSTACK_HOST, as awslocal reads it)
    host = urlparse(cloud.settings.endpoint).netloc
    listed = shell("awslocal", "s3", "ls", f"s3://{bucket}/processed/", extra={"LOCALSTACK_HOST": host})
    assert "contacts.csv" in listed
    assert listed == shell(AWS, "s3", "ls", f"s3://{bucket}/processed/", *endpoint)


@needs_aws
def test_a_csv_with_an_upper_case_extension_is_imported_too(cloud, shell, tmp_path):
    contacts = write_sample(tmp_path / "Contacts.CSV", 5, start=7500)
    shell(AWS, "s3", "cp", str(contacts), f"s3://{cloud.bucket}/incoming/", "--endpoint-url", cloud.settings.endpoint)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        jobs = [j for j in cloud.jobs() if j.key == "incoming/Contacts.CSV"]
        if jobs and jobs[0].done:
            break
        time.sleep(0.5)
    assert jobs and jobs[0].status.value == "SUCCEEDED" and jobs[0].rows == 5
